"""Canonical hashes of the protocol structs and ids, byte for byte as contracts/src/Gear.sol.

Rule: a struct hashes as keccak256 of its fields packed (`abi.encodePacked`: addresses 20
bytes, uint128 16 bytes, uint64 8 bytes, bool 1 byte, bytes4 4 bytes, `bytes` raw); an
array hashes as keccak256 of its elements' hashes concatenated (empty array:
keccak256(b"")). `encode_*` return the packed preimage, the `*_hash` functions its hash.
Also: code ids (blake2b-256, as Gear), Ethereum message ids, and program (Mirror) addresses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from eth_utils import keccak, to_canonical_address, to_checksum_address

from .structs import (
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    Message,
    StateTransition,
    ValueClaim,
)

EMPTY_ARRAY_HASH = keccak(b"")


def _addr(address: str) -> bytes:
    return to_canonical_address(address)


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def _b(flag: bool) -> bytes:
    return b"\x01" if flag else b"\x00"


def array_hash(hashes: Iterable[bytes]) -> bytes:
    """keccak256 of the concatenated 32-byte element hashes."""
    return keccak(b"".join(hashes))


def encode_message(m: Message) -> bytes:
    return (
        m.id
        + _addr(m.destination)
        + m.payload
        + _u(m.value, 16)
        + m.reply_details.to
        + m.reply_details.code
        + _b(m.call)
    )


def message_hash(m: Message) -> bytes:
    return keccak(encode_message(m))


def messages_hash(messages: Iterable[Message]) -> bytes:
    return array_hash(message_hash(m) for m in messages)


def encode_value_claim(c: ValueClaim) -> bytes:
    return c.message_id + _addr(c.destination) + _u(c.value, 16)


def value_claim_hash(c: ValueClaim) -> bytes:
    return keccak(encode_value_claim(c))


def value_claims_hash(claims: Iterable[ValueClaim]) -> bytes:
    return array_hash(value_claim_hash(c) for c in claims)


def encode_state_transition(t: StateTransition) -> bytes:
    return (
        _addr(t.actor_id)
        + t.new_state_hash
        + _b(t.exited)
        + _addr(t.inheritor)
        + _u(t.value_to_receive, 16)
        + value_claims_hash(t.value_claims)
        + messages_hash(t.messages)
    )


def state_transition_hash(t: StateTransition) -> bytes:
    return keccak(encode_state_transition(t))


def transitions_hash(transitions: Iterable[StateTransition]) -> bytes:
    return array_hash(state_transition_hash(t) for t in transitions)


def encode_chain_commitment(c: ChainCommitment) -> bytes:
    return transitions_hash(c.transitions) + c.head


def chain_commitment_hash(c: ChainCommitment) -> bytes:
    return keccak(encode_chain_commitment(c))


def encode_code_commitment(c: CodeCommitment) -> bytes:
    return c.id + _b(c.valid)


def code_commitment_hash(c: CodeCommitment) -> bytes:
    return keccak(encode_code_commitment(c))


def code_commitments_hash(codes: Iterable[CodeCommitment]) -> bytes:
    return array_hash(code_commitment_hash(c) for c in codes)


def chain_commitments_hash(chains: Iterable[ChainCommitment]) -> bytes:
    """H(batch.chain_commitment): the array hash of its zero or one chain commitments."""
    return array_hash(chain_commitment_hash(c) for c in chains)


def encode_batch_parts(
    block_hash: bytes,
    block_number: int,
    previous_committed_batch_hash: bytes,
    chain_commitments_hash_: bytes,
    code_commitments_hash_: bytes,
    burned: int,
) -> bytes:
    """The batch preimage from its header (`Gear.batchHashFromParts`)."""
    return (
        block_hash
        + _u(block_number, 8)
        + previous_committed_batch_hash
        + chain_commitments_hash_
        + code_commitments_hash_
        + _u(burned, 16)
    )


def encode_batch(b: BatchCommitment) -> bytes:
    return encode_batch_parts(
        b.block_hash,
        b.block_number,
        b.previous_committed_batch_hash,
        chain_commitments_hash(b.chain_commitment),
        code_commitments_hash(b.code_commitments),
        b.burned,
    )


def batch_hash(b: BatchCommitment) -> bytes:
    """The batch's hash: what the Router stores as `latestCommittedBatchHash`."""
    return keccak(encode_batch(b))


# -- ids --


def code_id(code: bytes) -> bytes:
    """Gear's code id: blake2b-256 of the WASM bytes."""
    return hashlib.blake2b(code, digest_size=32).digest()


def eth_message_id(mirror: str, nonce: int) -> bytes:
    """Id of the `nonce`-th message sent to program `mirror` from Ethereum (0 = init):
    keccak256(mirror ‖ uint256(nonce))."""
    return keccak(_addr(mirror) + _u(nonce, 32))


_CLONE_PREFIX = bytes.fromhex("3d602d80600a3d3981f3363d3d373d3d3d363d73")
_CLONE_RUNTIME_PREFIX = bytes.fromhex("363d3d373d3d3d363d73")
_CLONE_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


def mirror_code_hash(mirror_impl: str) -> bytes:
    """EXTCODEHASH of every program's Mirror (an ERC-1167 clone of `mirror_impl`)."""
    return keccak(_CLONE_RUNTIME_PREFIX + _addr(mirror_impl) + _CLONE_SUFFIX)


def program_id(router: str, mirror_impl: str, code_id_: bytes, salt: bytes) -> str:
    """The actor id (Mirror address) `Router.createProgram(code_id_, salt, ...)` will give."""
    create2_salt = keccak(code_id_ + salt)
    init_code_hash = keccak(_CLONE_PREFIX + _addr(mirror_impl) + _CLONE_SUFFIX)
    digest = keccak(b"\xff" + _addr(router) + create2_salt + init_code_hash)
    return to_checksum_address(digest[12:])

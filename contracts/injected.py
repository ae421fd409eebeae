"""Injected transactions, sequencer blocks and promises: their structs, EIP-712 digests
and signatures (pure).

A dApp calls a program without an Ethereum transaction by signing an
`InjectedTransaction`; the sequencer orders accepted transactions into `SequencerBlock`s
anchored to an Ethereum block and signs each block's header; every validator that
executed a transaction signs a `Promise` over its reply. All three are EIP-712 structs
under the Router's domain (`eip712.domain_separator`: name "gexe Router", version "1",
chain id, Router address), so a signature is bound to one network:

    InjectedTransaction(address destination,bytes payload,uint128 value,bytes32 referenceBlock,bytes32 salt)
    SequencerBlock(bytes32 anchor,uint64 anchorNumber,uint64 height,bytes32 parent,bytes32 transactionsHash)
    Promise(bytes32 txHash,bytes32 replyHash,bytes4 replyCode)

- the transaction hash is the EIP-712 digest of the transaction; it is also the id of the
  message the transaction queues, so a reply's `reply_to` names the transaction;
- `transactionsHash` = keccak256 of the concatenated transaction hashes, in block order;
- `replyHash` = keccak256 of the reply payload.

Two sequencer blocks with the same `(anchor, height)` and different hashes, signed by one
key, are an equivocation (`Slasher.reportSequencerEquivocation`): an honest sequencer
signs one block per height on any branch of Ethereum, and after a reorg it builds on the
common ancestor's blocks, whose anchors differ from the dropped ones.

Invariants: the hashes here are byte-for-byte what `Slasher.sol` computes (tested);
signatures are 65 bytes r ‖ s ‖ v with v in {27, 28} and low s (eth-account's).

When modifying this part: every struct is signed by users, sequencers or validators and
checked on chain or by clients — a change is a protocol change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from eth_account import Account
from eth_utils import keccak, to_canonical_address

from .eip712 import BadSignature as BadSignature  # re-exported: callers catch it from here
from .eip712 import domain_separator
from .eip712 import recover_address as recover

INJECTED_TYPEHASH = keccak(
    b"InjectedTransaction(address destination,bytes payload,uint128 value,"
    b"bytes32 referenceBlock,bytes32 salt)"
)
SEQUENCER_BLOCK_TYPEHASH = keccak(
    b"SequencerBlock(bytes32 anchor,uint64 anchorNumber,uint64 height,bytes32 parent,"
    b"bytes32 transactionsHash)"
)
PROMISE_TYPEHASH = keccak(b"Promise(bytes32 txHash,bytes32 replyHash,bytes4 replyCode)")


def _u(value: int, bits: int, what: str) -> bytes:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{what} must fit in uint{bits}")
    return value.to_bytes(32, "big")


def _b32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise ValueError(f"{what} must be 32 bytes")
    return bytes(value)


def sign_digest(private_key: bytes | str, digest: bytes) -> bytes:
    return bytes(Account.unsafe_sign_hash(digest, private_key).signature)


@dataclass(frozen=True, slots=True)
class InjectedTransaction:
    """A dApp's message to a program, sent over a validator's RPC. `reference_block` is a
    recent Ethereum block hash: the transaction expires `VALIDITY_BLOCKS` after it and is
    only valid on a chain that contains it; `salt` makes equal requests distinct."""

    destination: bytes  # 20: the program (its Mirror's address)
    payload: bytes
    reference_block: bytes  # 32
    salt: bytes  # 32
    value: int = 0  # u128; must be 0 (no value can be attached off chain)

    VALIDITY_BLOCKS: ClassVar[int] = 32

    def __post_init__(self) -> None:
        if len(self.destination) != 20:
            raise ValueError("destination must be a 20-byte address")
        _b32(self.reference_block, "reference_block")
        _b32(self.salt, "salt")
        _u(self.value, 128, "value")

    def struct_hash(self) -> bytes:
        return keccak(
            INJECTED_TYPEHASH
            + bytes(12)
            + self.destination
            + keccak(self.payload)
            + _u(self.value, 128, "value")
            + self.reference_block
            + self.salt
        )


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    tx: InjectedTransaction
    signature: bytes  # 65


@dataclass(frozen=True, slots=True)
class SequencerBlockHeader:
    anchor: bytes  # 32: the Ethereum block whose events run just before this block's txs
    anchor_number: int
    height: int  # 1, 2, 3, ... over the sequencer's whole chain
    parent: bytes  # 32: the previous sequencer block's hash (zero for height 1)
    transactions_hash: bytes  # 32

    def __post_init__(self) -> None:
        _b32(self.anchor, "anchor")
        _u(self.anchor_number, 64, "anchor_number")
        _u(self.height, 64, "height")
        _b32(self.parent, "parent")
        _b32(self.transactions_hash, "transactions_hash")

    def struct_hash(self) -> bytes:
        return keccak(
            SEQUENCER_BLOCK_TYPEHASH
            + self.anchor
            + _u(self.anchor_number, 64, "anchor_number")
            + _u(self.height, 64, "height")
            + self.parent
            + self.transactions_hash
        )


@dataclass(frozen=True, slots=True)
class Promise:
    tx_hash: bytes  # 32
    reply_hash: bytes  # 32: keccak256(reply payload)
    reply_code: bytes  # 4: Gear's reply code

    def __post_init__(self) -> None:
        _b32(self.tx_hash, "tx_hash")
        _b32(self.reply_hash, "reply_hash")
        if len(self.reply_code) != 4:
            raise ValueError("reply_code must be 4 bytes")

    def struct_hash(self) -> bytes:
        return keccak(
            PROMISE_TYPEHASH + self.tx_hash + self.reply_hash + self.reply_code + bytes(28)
        )


def transactions_hash(tx_hashes: list[bytes] | tuple[bytes, ...]) -> bytes:
    return keccak(b"".join(tx_hashes))


class Domain:
    """One network's EIP-712 domain (chain id, Router): digests, signing, recovery."""

    def __init__(self, chain_id: int, router: str | bytes) -> None:
        self.chain_id = chain_id
        self.router = to_canonical_address(router)

    @cached_property
    def separator(self) -> bytes:
        return domain_separator(self.chain_id, "0x" + self.router.hex())

    def digest(self, struct_hash: bytes) -> bytes:
        return keccak(b"\x19\x01" + self.separator + struct_hash)

    # transactions
    def tx_hash(self, tx: InjectedTransaction) -> bytes:
        return self.digest(tx.struct_hash())

    def sign_tx(self, private_key: bytes | str, tx: InjectedTransaction) -> SignedTransaction:
        return SignedTransaction(tx, sign_digest(private_key, self.tx_hash(tx)))

    def tx_sender(self, stx: SignedTransaction) -> bytes:
        return recover(self.tx_hash(stx.tx), stx.signature)

    # sequencer blocks
    def block_hash(self, header: SequencerBlockHeader) -> bytes:
        return self.digest(header.struct_hash())

    def sign_block(self, private_key: bytes | str, header: SequencerBlockHeader) -> bytes:
        return sign_digest(private_key, self.block_hash(header))

    def block_signer(self, header: SequencerBlockHeader, signature: bytes) -> bytes:
        return recover(self.block_hash(header), signature)

    # promises
    def promise_digest(self, p: Promise) -> bytes:
        return self.digest(p.struct_hash())

    def sign_promise(self, private_key: bytes | str, p: Promise) -> bytes:
        return sign_digest(private_key, self.promise_digest(p))

    def promise_signer(self, p: Promise, signature: bytes) -> bytes:
        return recover(self.promise_digest(p), signature)


def reply_promise(tx_hash: bytes, payload: bytes, code: bytes) -> Promise:
    return Promise(tx_hash, keccak(payload), code)

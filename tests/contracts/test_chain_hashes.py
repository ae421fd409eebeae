"""Python hashes (gexe.contracts.hashing / eip712) equal the Solidity ones, byte for byte."""

from __future__ import annotations

import dataclasses
import random

import eth_abi
import pytest
from chainkit import Net
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from gexe.contracts import (
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    Message,
    ReplyDetails,
    StateTransition,
    ValueClaim,
    batch_digest,
    batch_hash,
    chain_commitment_hash,
    code_commitment_hash,
    code_id,
    domain_separator,
    eth_message_id,
    message_hash,
    mirror_code_hash,
    program_id,
    recover_signer,
    sign_batch,
    state_transition_hash,
    to_abi,
    typed_data,
    value_claim_hash,
)
from gexe.contracts.hashing import (
    chain_commitments_hash,
    code_commitments_hash,
    encode_batch_parts,
    messages_hash,
)
from gexe.contracts.structs import BATCH_COMMITMENT_ABI, batch_from_abi

CASES = 60
U128 = (1 << 128) - 1


class Gen:
    """Seeded random protocol structs, biased towards edge values."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def b32(self) -> bytes:
        return self.r.choice([bytes(32), b"\xff" * 32, self.r.randbytes(32), self.r.randbytes(32)])

    def addr(self) -> str:
        raw = self.r.choice([bytes(20), b"\xff" * 20, self.r.randbytes(20), self.r.randbytes(20)])
        return "0x" + raw.hex()

    def u128(self) -> int:
        return self.r.choice([0, 1, U128, self.r.getrandbits(128), self.r.getrandbits(64)])

    def payload(self) -> bytes:
        return self.r.randbytes(self.r.choice([0, 1, 31, 32, 33, 64, self.r.randrange(300)]))

    def flag(self) -> bool:
        return self.r.random() < 0.5

    def message(self) -> Message:
        code = self.r.choice([bytes(4), b"\x01\x00\x00\x00", self.r.randbytes(4)])
        to = self.r.choice([bytes(32), self.b32()])
        return Message(
            self.b32(),
            self.addr(),
            self.payload(),
            self.u128(),
            ReplyDetails(to, code),
            self.flag(),
        )

    def claim(self) -> ValueClaim:
        return ValueClaim(self.b32(), self.addr(), self.u128())

    def transition(self) -> StateTransition:
        return StateTransition(
            self.addr(),
            self.b32(),
            self.flag(),
            self.addr(),
            self.u128(),
            tuple(self.claim() for _ in range(self.r.randrange(4))),
            tuple(self.message() for _ in range(self.r.randrange(4))),
        )

    def chain(self) -> ChainCommitment:
        return ChainCommitment(
            tuple(self.transition() for _ in range(self.r.randrange(4))), self.b32()
        )

    def code(self) -> CodeCommitment:
        return CodeCommitment(self.b32(), self.flag())

    def batch(self) -> BatchCommitment:
        return BatchCommitment(
            self.b32(),
            self.r.choice([0, 1, (1 << 64) - 1, self.r.getrandbits(40)]),
            self.b32(),
            tuple(self.chain() for _ in range(self.r.randrange(2))),
            tuple(self.code() for _ in range(self.r.randrange(4))),
            self.u128(),
        )


@pytest.fixture(scope="module")
def harness(net_session: Net):
    return net_session.deploy("HashHarness")


@pytest.mark.parametrize(
    ("fn", "make", "py"),
    [
        ("messageHash", Gen.message, message_hash),
        ("valueClaimHash", Gen.claim, value_claim_hash),
        ("stateTransitionHash", Gen.transition, state_transition_hash),
        ("chainCommitmentHash", Gen.chain, chain_commitment_hash),
        ("codeCommitmentHash", Gen.code, code_commitment_hash),
        ("batchHash", Gen.batch, batch_hash),
    ],
)
def test_struct_hashes_match_solidity(harness, fn, make, py) -> None:
    gen = Gen(hash(fn) & 0xFFFF)
    for _ in range(CASES):
        obj = make(gen)
        assert bytes(harness.call(fn, to_abi(obj))) == py(obj), obj


def test_array_hashes_match_solidity(harness) -> None:
    gen = Gen(7)
    for n in range(CASES):
        msgs = [gen.message() for _ in range(n % 5)]
        codes = [gen.code() for _ in range(n % 4)]
        assert bytes(harness.call("messagesHash", [to_abi(m) for m in msgs])) == messages_hash(msgs)
        assert bytes(harness.call("codeCommitmentsHash", [to_abi(c) for c in codes])) == (
            code_commitments_hash(codes)
        )


def test_batch_hash_covers_burned_and_header_parts_match(harness) -> None:
    """`burned` is the batch's last field and hash input; the header form (what equivocation
    proofs carry) gives the same hash in Solidity and Python."""
    gen = Gen(13)
    for _ in range(CASES):
        b = gen.batch()
        chains = chain_commitments_hash(b.chain_commitment)
        codes = code_commitments_hash(b.code_commitments)
        parts = (b.block_hash, b.block_number, b.previous_committed_batch_hash, chains, codes)
        assert bytes(harness.call("chainCommitmentsHash", to_abi(b)[3])) == chains
        assert bytes(harness.call("batchHashFromParts", *parts, b.burned)) == batch_hash(b)
        assert keccak(encode_batch_parts(*parts, b.burned)) == batch_hash(b)
        other = dataclasses.replace(b, burned=b.burned ^ 1)
        assert batch_hash(other) != batch_hash(b)
        assert bytes(harness.call("batchHash", to_abi(other))) == batch_hash(other)
        encoded = eth_abi.encode([BATCH_COMMITMENT_ABI], [to_abi(b)])
        assert batch_from_abi(eth_abi.decode([BATCH_COMMITMENT_ABI], encoded)[0]) == b


def test_batch_built_positionally_defaults_burned_to_zero() -> None:
    b = BatchCommitment(bytes(32), 1, bytes(32), (), ())
    assert b.burned == 0
    assert encode_batch_parts(bytes(32), 1, bytes(32), keccak(b""), keccak(b""), 0) == bytes(32) + (
        1
    ).to_bytes(8, "big") + bytes(32) + keccak(b"") * 2 + bytes(16)
    assert batch_from_abi(to_abi(b)[:5]) == b  # a 5-field tuple still decodes
    with pytest.raises(ValueError):
        BatchCommitment(bytes(32), 1, bytes(32), burned=1 << 128)


def test_eth_message_ids_match_solidity(harness) -> None:
    gen = Gen(11)
    for _ in range(CASES):
        mirror, nonce = (
            to_checksum_address(gen.addr()),
            gen.r.choice([0, 1, gen.r.getrandbits(64), (1 << 256) - 1]),
        )
        assert bytes(harness.call("ethMessageId", mirror, nonce)) == eth_message_id(mirror, nonce)


def test_empty_arrays_hash_to_keccak_of_nothing() -> None:
    t = StateTransition("0x" + "11" * 20, bytes(32))
    expected = keccak(
        bytes.fromhex("11" * 20)
        + bytes(32)
        + b"\x00"
        + bytes(20)
        + bytes(16)
        + keccak(b"")
        + keccak(b"")
    )
    assert state_transition_hash(t) == expected


def test_eip712_digest_matches_router_and_eth_account(net: Net) -> None:
    gen = Gen(3)
    router = net.deployment.router
    assert bytes(net.router.call("domainSeparator")) == domain_separator(net.chain_id, router)
    for _ in range(CASES):
        h = gen.b32()
        digest = batch_digest(h, net.chain_id, router)
        assert bytes(net.router.call("batchDigest", h)) == digest
        signable = encode_typed_data(full_message=typed_data(h, net.chain_id, router))
        assert keccak(b"\x19" + signable.version + signable.header + signable.body) == digest


def test_sign_and_recover_round_trip(net: Net) -> None:
    h = keccak(b"batch")
    v = net.validators[0]
    sig = sign_batch(v.key, h, net.chain_id, net.deployment.router)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert recover_signer(sig, h, net.chain_id, net.deployment.router) == v.address
    assert recover_signer(sig, h, net.chain_id + 1, net.deployment.router) != v.address


def test_program_id_and_mirror_code_hash_predictions(net: Net) -> None:
    cid = net.validated_code()
    salt = b"\x42" * 32
    predicted = program_id(net.deployment.router, net.deployment.mirror_impl, cid, salt)
    actor = net.router.create_program(net.owner, cid, salt)
    assert actor == predicted
    assert keccak(bytes(net.w3.eth.get_code(actor))) == mirror_code_hash(net.deployment.mirror_impl)


def test_code_id_is_blake2b_256() -> None:
    import hashlib

    assert code_id(b"wasm") == hashlib.blake2b(b"wasm", digest_size=32).digest()
    assert len(code_id(b"")) == 32

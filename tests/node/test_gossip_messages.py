"""Gossip message encoding, envelope signatures and the junk score (no network)."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from gexe.node.gossip_messages import (
    DEFAULT_MAX_MESSAGE_SIZE,
    ENVELOPE_TAG,
    ApproveBatch,
    BadSignature,
    DecodeError,
    EthSigner,
    GossipDomain,
    InconsistentPayload,
    InvalidField,
    NotAValidator,
    Oversized,
    RequestBatchValidation,
    SignedEnvelope,
    SignerMismatch,
    TrailingBytes,
    Truncated,
    UnknownType,
    VerifyError,
    WrongEra,
    decode,
    decode_message,
    encode_message,
    recover_digest_signer,
    seal,
    signing_digest,
    to_address,
    verify,
)
from gexe.node.gossip_score import JunkPolicy, JunkTracker, RateBudget

KEYS = [bytes([i + 1]) * 32 for i in range(4)]
SIGNERS = [EthSigner(k) for k in KEYS]
VALIDATORS = {s.address for s in SIGNERS[:3]}  # SIGNERS[3] is not a validator
DOMAIN = GossipDomain(chain_id=31337, router=b"\x42" * 20)
DIGEST = bytes(range(32))
BLOCK = b"\xbb" * 32
PREV = b"\xcc" * 32


def approve(signer: EthSigner, era: int = 7, digest: bytes = DIGEST) -> ApproveBatch:
    return ApproveBatch(digest, era, signer.address, signer.sign_digest(digest))


def request(era: int = 7, batch: bytes = b"batch-bytes") -> RequestBatchValidation:
    return RequestBatchValidation(DIGEST, era, BLOCK, PREV, batch)


def sealed(msg=None, *, era: int = 7, signer: EthSigner = SIGNERS[0], domain=DOMAIN):
    return seal(
        msg if msg is not None else approve(signer, era), era=era, domain=domain, signer=signer
    )


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    "msg",
    [
        request(),
        request(batch=b""),
        request(era=2**64 - 1, batch=bytes(range(256)) * 10),
        approve(SIGNERS[1]),
        approve(SIGNERS[2], era=0),
    ],
)
def test_message_round_trip(msg):
    data = encode_message(msg)
    assert data[0] == msg.TYPE
    back = decode_message(data)
    assert back == msg and type(back) is type(msg)
    assert encode_message(back) == data  # canonical


def test_message_layouts_are_fixed():
    a = approve(SIGNERS[0])
    assert len(encode_message(a)) == 1 + 32 + 8 + 20 + 65
    r = request(batch=b"xyz")
    assert encode_message(r) == (
        b"\x10" + DIGEST + struct.pack(">Q", 7) + BLOCK + PREV + struct.pack(">I", 3) + b"xyz"
    )


@pytest.mark.parametrize("msg", [request(), approve(SIGNERS[1], era=7)])
def test_envelope_round_trip(msg):
    env = sealed(msg, signer=SIGNERS[1])
    data = env.encode()
    assert data[0] == ENVELOPE_TAG
    assert len(data) == SignedEnvelope.OVERHEAD + len(msg.body())
    back = decode(data)
    assert back == env
    assert back.message() == msg
    assert back.encode() == data


def test_decode_truncated_everywhere():
    data = sealed().encode()
    for n in range(len(data)):
        with pytest.raises(Truncated):
            decode(data[:n])
    msg = encode_message(request(batch=b"12345"))
    for n in range(len(msg)):
        with pytest.raises(Truncated):
            decode_message(msg[:n])


def test_decode_declared_payload_longer_than_data_is_truncated():
    data = bytearray(sealed().encode())
    struct.pack_into(">I", data, 30, len(data))  # payload_len field
    with pytest.raises(Truncated):
        decode(bytes(data))


def test_decode_oversized():
    env = sealed(request(batch=b"x" * 5000))
    data = env.encode()
    assert decode(data, max_size=len(data)) == env
    with pytest.raises(Oversized):
        decode(data, max_size=len(data) - 1)
    with pytest.raises(Oversized):
        decode(b"\x01" + b"\x00" * DEFAULT_MAX_MESSAGE_SIZE)  # default bound is 1 MiB
    with pytest.raises(Oversized):
        decode_message(encode_message(request(batch=b"y" * 100)), max_size=50)


def test_decode_declared_payload_over_limit_is_oversized():
    data = bytearray(sealed().encode())
    struct.pack_into(">I", data, 30, 2000)
    with pytest.raises(Oversized):
        decode(bytes(data), max_size=1000)


def test_decode_wrong_type():
    data = sealed().encode()
    with pytest.raises(UnknownType):
        decode(b"\x02" + data[1:])
    with pytest.raises(UnknownType):  # a bare message is not an envelope
        decode(encode_message(approve(SIGNERS[0])))
    bad_payload_type = bytearray(data)
    bad_payload_type[29] = 0x7F
    with pytest.raises(UnknownType):
        decode(bytes(bad_payload_type))
    with pytest.raises(UnknownType):
        decode_message(b"\x99" + b"\x00" * 10)


def test_decode_trailing_bytes():
    with pytest.raises(TrailingBytes):
        decode(sealed().encode() + b"\x00")
    with pytest.raises(TrailingBytes):
        decode_message(encode_message(approve(SIGNERS[0])) + b"\x00")
    # trailing bytes inside the payload (payload_len covers them) are caught too
    env = sealed()
    fat = SignedEnvelope(
        env.era, env.sender, env.payload_type, env.payload + b"\x00", env.signature
    )
    with pytest.raises(TrailingBytes):
        decode(fat.encode())


def test_decode_rejects_non_canonical_signatures():
    env = sealed()
    sig = bytearray(env.signature)
    for v in (0, 1, 29):
        sig[64] = v
        bad = SignedEnvelope(env.era, env.sender, env.payload_type, env.payload, bytes(sig))
        with pytest.raises(InvalidField):
            decode(bad.encode())
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(env.signature[32:64], "big")
    high_s = env.signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - env.signature[64]])
    bad = SignedEnvelope(env.era, env.sender, env.payload_type, env.payload, high_s)
    with pytest.raises(InvalidField):
        decode(bad.encode())
    zero_r = b"\x00" * 32 + env.signature[32:]
    with pytest.raises(InvalidField):
        decode(SignedEnvelope(env.era, env.sender, env.payload_type, env.payload, zero_r).encode())


def test_decode_error_hierarchy_and_reasons():
    errors = [Truncated, Oversized, UnknownType, TrailingBytes, InvalidField]
    assert all(issubclass(e, DecodeError) and issubclass(e, ValueError) for e in errors)
    assert len({e.reason for e in errors}) == len(errors)
    verrs = [BadSignature, SignerMismatch, NotAValidator, WrongEra, InconsistentPayload]
    assert all(issubclass(e, VerifyError) for e in verrs)
    assert len({e.reason for e in verrs}) == len(verrs)


def test_message_fields_are_validated():
    with pytest.raises(ValueError):
        ApproveBatch(b"\x00" * 31, 1, b"\x00" * 20, b"\x00" * 65)
    with pytest.raises(ValueError):
        RequestBatchValidation(DIGEST, -1, BLOCK, PREV)
    with pytest.raises(ValueError):
        RequestBatchValidation(DIGEST, 2**64, BLOCK, PREV)
    with pytest.raises(TypeError):
        RequestBatchValidation(DIGEST, 1, BLOCK, PREV, "text")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        approve(SIGNERS[0]).era = 3  # type: ignore[misc]


def test_to_address():
    a = SIGNERS[0].address
    assert to_address(a) == a
    assert to_address("0x" + a.hex()) == a
    assert to_address("0x" + a.hex().upper()) == a
    with pytest.raises(ValueError):
        to_address("0x1234")


# --------------------------------------------------------------------------- signatures


def test_signer_matches_eth_account():
    from eth_account import Account

    acct = Account.from_key(KEYS[0])
    assert SIGNERS[0].address == to_address(acct.address)
    sig = SIGNERS[0].sign_digest(DIGEST)
    assert sig == bytes(acct.unsafe_sign_hash(DIGEST).signature)
    assert EthSigner.from_account(acct).address == SIGNERS[0].address
    assert KEYS[0].hex() not in repr(SIGNERS[0])


def test_verify_right_key():
    env = sealed(signer=SIGNERS[1], msg=approve(SIGNERS[1]))
    assert verify(env, VALIDATORS, DOMAIN) == SIGNERS[1].address
    assert verify(env, {"0x" + a.hex() for a in VALIDATORS}, DOMAIN, era=7) == SIGNERS[1].address


def test_verify_wrong_key_claiming_a_validator():
    env = sealed(msg=request(), signer=SIGNERS[3])  # not a validator
    forged = SignedEnvelope(
        env.era, SIGNERS[0].address, env.payload_type, env.payload, env.signature
    )
    with pytest.raises(SignerMismatch):
        verify(forged, VALIDATORS, DOMAIN)
    with pytest.raises(NotAValidator):
        verify(env, VALIDATORS, DOMAIN)


def test_verify_tampered_payload():
    env = sealed(msg=request())
    other = request(batch=b"other")
    tampered = SignedEnvelope(env.era, env.sender, env.payload_type, other.body(), env.signature)
    with pytest.raises(SignerMismatch):
        verify(tampered, VALIDATORS, DOMAIN)


def test_verify_wrong_era():
    env = sealed(msg=request(era=7), era=7)
    with pytest.raises(WrongEra):
        verify(env, VALIDATORS, DOMAIN, era=8)
    # relabelling the era breaks the signature (era is in the digest)
    relabelled = SignedEnvelope(
        8, env.sender, env.payload_type, request(era=8).body(), env.signature
    )
    with pytest.raises(SignerMismatch):
        verify(relabelled, VALIDATORS, DOMAIN)
    # payload era disagreeing with the envelope era
    mismatched = seal(request(era=6), era=7, domain=DOMAIN, signer=SIGNERS[0])
    with pytest.raises(InconsistentPayload):
        verify(mismatched, VALIDATORS, DOMAIN)


@pytest.mark.parametrize(
    "other",
    [
        GossipDomain(chain_id=1, router=DOMAIN.router),
        GossipDomain(chain_id=DOMAIN.chain_id, router=b"\x43" * 20),
    ],
    ids=["other-chain", "other-router"],
)
def test_verify_other_domain(other):
    env = sealed(domain=other)
    assert verify(env, VALIDATORS, other) == SIGNERS[0].address
    with pytest.raises(SignerMismatch):
        verify(env, VALIDATORS, DOMAIN)


def test_verify_approve_batch_consistency():
    # validator field must be the envelope signer
    env = seal(approve(SIGNERS[1]), era=7, domain=DOMAIN, signer=SIGNERS[0])
    with pytest.raises(InconsistentPayload):
        verify(env, VALIDATORS, DOMAIN)
    # the inner signature must be by that validator over batch_digest
    wrong_inner = ApproveBatch(DIGEST, 7, SIGNERS[0].address, SIGNERS[1].sign_digest(DIGEST))
    env = seal(wrong_inner, era=7, domain=DOMAIN, signer=SIGNERS[0])
    with pytest.raises(InconsistentPayload):
        verify(env, VALIDATORS, DOMAIN)


def test_signing_digest_binds_every_field():
    base = signing_digest(DOMAIN, 7, 0x10, b"p")
    assert signing_digest(DOMAIN, 8, 0x10, b"p") != base
    assert signing_digest(DOMAIN, 7, 0x11, b"p") != base
    assert signing_digest(DOMAIN, 7, 0x10, b"q") != base
    assert signing_digest(GossipDomain(1, DOMAIN.router), 7, 0x10, b"p") != base


def test_recover_digest_signer_rejects_garbage():
    with pytest.raises(InvalidField):
        recover_digest_signer(DIGEST, b"\x00" * 65)
    assert recover_digest_signer(DIGEST, SIGNERS[2].sign_digest(DIGEST)) == SIGNERS[2].address


# --------------------------------------------------------------------------- junk score


def test_junk_tracker_bans_at_threshold_and_decays():
    t = JunkTracker(JunkPolicy(threshold=3, half_life=10, ban_seconds=100, weights={"big": 2.5}))
    assert not t.record("p", "truncated", 0.0)
    assert not t.record("p", "truncated", 0.0)
    assert t.counts("p") == {"truncated": 2} and t.total("p") == 2
    assert t.score("p", 10.0) == pytest.approx(1.0)  # one half-life later
    assert not t.record("p", "truncated", 10.0)  # 2.0 < 3
    assert t.record("p", "big", 10.0)  # 4.5 >= 3: banned now
    assert not t.record("p", "big", 11.0)  # already banned: reported once
    assert t.is_banned("p", 50.0) and t.banned(50.0) == {"p"}
    assert not t.is_banned("p", 110.0)
    t.unban("p", 110.0)
    assert t.score("p", 110.0) == 0.0 and t.total("p") == 5
    assert t.total("q") == 0 and not t.is_banned("q", 0.0)


def test_rate_budget_allows_a_burst_then_the_rate_per_key():
    b = RateBudget(rate=10.0, burst=3.0)
    assert [b.take("v", 0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take("w", 0.0)  # another validator's budget is its own
    assert not b.take("v", 0.05)  # half a token back
    assert b.take("v", 0.15) and not b.take("v", 0.15)  # one more
    assert [b.take("v", 100.0) for _ in range(4)] == [True, True, True, False]  # capped
    with pytest.raises(ValueError):
        RateBudget(rate=0.0, burst=3.0)

"""Gossip types of the native path (node/gossip_injected.py): round trips through the bare
encoding and the signed envelope, and strict decoding — truncation anywhere, trailing
bytes, counts over the limits, non-canonical signatures, a Promises message signed by
someone other than the validator it names."""

from __future__ import annotations

import os
import struct

import pytest
from eth_account import Account
from gexe.contracts.injected import (
    Domain,
    InjectedTransaction,
    Promise,
    SequencerBlockHeader,
    transactions_hash,
)
from gexe.node.gossip_injected import (
    MAX_PROMISES,
    MAX_TXS_PER_BLOCK,
    MAX_TXS_PER_FORWARD,
    InjectedTx,
    PromiseRequest,
    Promises,
    SequencerBlockMsg,
    SequencerBlockRequest,
)
from gexe.node.gossip_messages import (
    DecodeError,
    EthSigner,
    GossipDomain,
    InconsistentPayload,
    InvalidField,
    Oversized,
    TrailingBytes,
    Truncated,
    decode,
    decode_message,
    encode_message,
    seal,
    verify,
)

DOMAIN = Domain(31337, "0x" + "42" * 20)
GDOMAIN = GossipDomain(chain_id=31337, router=b"\x42" * 20)
USER = Account.from_key(b"\x07" * 32)
VKEYS = [b"\x21" * 32, b"\x22" * 32]
SIGNERS = [EthSigner(k) for k in VKEYS]
VALIDATORS = {s.address for s in SIGNERS}


def stx(payload: bytes = b"PING", value: int = 0):
    t = InjectedTransaction(b"\x33" * 20, payload, b"\x44" * 32, os.urandom(32), value)
    return DOMAIN.sign_tx(USER.key, t)


def block(n_txs: int = 3, payload: bytes = b"PING") -> SequencerBlockMsg:
    txs = tuple(stx(payload + bytes([i])) for i in range(n_txs))
    header = SequencerBlockHeader(
        b"\x55" * 32, 77, 9, b"\x66" * 32, transactions_hash([DOMAIN.tx_hash(t.tx) for t in txs])
    )
    return SequencerBlockMsg(1, header, DOMAIN.sign_block(VKEYS[0], header), txs)


def promises(n: int = 2, validator: EthSigner = SIGNERS[0]) -> Promises:
    ps = []
    for i in range(n):
        p = Promise(os.urandom(32), os.urandom(32), bytes([0, 1, 0, i]))
        ps.append((p, DOMAIN.sign_promise(VKEYS[SIGNERS.index(validator)], p)))
    return Promises(1, validator.address, tuple(ps))


def samples() -> list[object]:
    b2 = block(2)
    return [
        InjectedTx(1, (stx(),)),
        InjectedTx(1, ()),
        InjectedTx(2**64 - 1, (stx(b"", value=2**128 - 1),)),
        InjectedTx(3, (stx(os.urandom(5000)), stx(), stx(b"x"))),
        InjectedTx(3, (stx(),), resend=2**63 - 1),
        block(0),
        block(3),
        SequencerBlockMsg(1, b2.header, b2.signature, b2.txs, resend=12345),
        SequencerBlockRequest(1, 5, 68),
        SequencerBlockRequest(0, 0, 2**64 - 1),
        SequencerBlockRequest(1, 7, 70, resend=123456789),
        promises(0),
        promises(3),
        PromiseRequest(1, ()),
        PromiseRequest(4, (os.urandom(32), os.urandom(32)), resend=99),
    ]


@pytest.mark.parametrize("msg", samples(), ids=lambda m: type(m).__name__)
def test_round_trip_bare_and_enveloped(msg: object) -> None:
    data = encode_message(msg)  # type: ignore[arg-type]
    assert data[0] == type(msg).TYPE  # type: ignore[attr-defined]
    assert decode_message(data) == msg
    signer = SIGNERS[0]
    env = seal(msg, era=msg.era, domain=GDOMAIN, signer=signer)  # type: ignore[arg-type,attr-defined]
    back = decode(env.encode())
    assert back == env
    assert verify(back, VALIDATORS, GDOMAIN) == signer.address
    assert back.message() == msg


def test_resends_are_distinct_messages() -> None:
    """Gossip drops content it has seen: a re-forward or a repeated ask must differ."""
    t = stx()
    assert encode_message(InjectedTx(1, (t,))) != encode_message(InjectedTx(1, (t,), resend=1))
    assert encode_message(SequencerBlockRequest(1, 2, 3)) != encode_message(
        SequencerBlockRequest(1, 2, 3, resend=1)
    )
    with pytest.raises(ValueError):
        InjectedTx(1, (t,), resend=2**64)


def test_tags_are_in_the_native_range() -> None:
    tags = [
        InjectedTx.TYPE,
        SequencerBlockMsg.TYPE,
        SequencerBlockRequest.TYPE,
        Promises.TYPE,
        PromiseRequest.TYPE,
    ]
    assert tags == [0x20, 0x21, 0x22, 0x23, 0x24]


def test_decoded_transaction_keeps_its_hash_and_sender() -> None:
    m = InjectedTx(1, (stx(b"hello"),))
    back = decode_message(encode_message(m))
    assert isinstance(back, InjectedTx)
    assert DOMAIN.tx_hash(back.txs[0].tx) == DOMAIN.tx_hash(m.txs[0].tx)
    assert DOMAIN.tx_sender(back.txs[0]) == bytes.fromhex(USER.address[2:])


@pytest.mark.parametrize(
    "msg",
    [InjectedTx(1, (stx(b"abc"),)), block(2, b"x"), SequencerBlockRequest(1, 2, 3), promises(2)],
    ids=lambda m: type(m).__name__,
)
def test_every_truncation_and_any_trailing_byte_is_refused(msg: object) -> None:
    data = encode_message(msg)  # type: ignore[arg-type]
    for cut in range(1, len(data)):
        with pytest.raises(DecodeError):
            decode_message(data[:cut])
    with pytest.raises(Truncated):
        decode_message(data[:1])  # a tag and nothing else
    for extra in (b"\x00", b"\xff" * 9):
        with pytest.raises(TrailingBytes):
            decode_message(data + extra)


def test_truncated_enveloped_message_is_refused() -> None:
    env = seal(block(1), era=1, domain=GDOMAIN, signer=SIGNERS[0]).encode()
    for cut in (1, 20, len(env) // 2, len(env) - 66, len(env) - 1):
        with pytest.raises(DecodeError):
            decode(env[:cut])
    with pytest.raises(TrailingBytes):
        decode(env + b"\x00")


def _tx_count_offset() -> int:
    # tag, era, anchor, anchor_number, height, parent, transactions_hash, signature
    return 1 + 8 + 32 + 8 + 8 + 32 + 32 + 65


def test_block_with_too_many_transactions_is_refused_before_reading_them() -> None:
    data = bytearray(encode_message(block(0)))
    off = _tx_count_offset()
    assert struct.unpack(">I", data[off : off + 4])[0] == 0
    for n in (MAX_TXS_PER_BLOCK + 1, 2**32 - 1):
        data[off : off + 4] = struct.pack(">I", n)
        with pytest.raises(InvalidField, match="limit"):
            decode_message(bytes(data))
    # at the limit the count is fine, and the missing transactions are a truncation
    data[off : off + 4] = struct.pack(">I", MAX_TXS_PER_BLOCK)
    with pytest.raises(Truncated):
        decode_message(bytes(data))
    with pytest.raises(ValueError, match="more than"):
        b = block(1)
        SequencerBlockMsg(1, b.header, b.signature, b.txs * (MAX_TXS_PER_BLOCK + 1))


def test_promises_over_the_limit_are_refused() -> None:
    data = bytearray(encode_message(promises(0)))
    off = 1 + 8 + 20
    data[off : off + 4] = struct.pack(">I", MAX_PROMISES + 1)
    with pytest.raises(InvalidField, match="limit"):
        decode_message(bytes(data))
    one = promises(1).promises
    with pytest.raises(ValueError, match="more than"):
        Promises(1, SIGNERS[0].address, one * (MAX_PROMISES + 1))


def test_promise_requests_over_the_limit_are_refused() -> None:
    data = bytearray(encode_message(PromiseRequest(1, ())))
    off = 1 + 8
    data[off : off + 4] = struct.pack(">I", MAX_PROMISES + 1)
    with pytest.raises(InvalidField, match="limit"):
        decode_message(bytes(data))
    with pytest.raises(ValueError, match="more than"):
        PromiseRequest(1, (bytes(32),) * (MAX_PROMISES + 1))
    with pytest.raises(ValueError, match="32 bytes"):
        PromiseRequest(1, (bytes(31),))


def test_forward_with_too_many_transactions_is_refused_before_reading_them() -> None:
    data = bytearray(encode_message(InjectedTx(1, ())))
    off = 1 + 8
    for n in (MAX_TXS_PER_FORWARD + 1, 2**32 - 1):
        data[off : off + 4] = struct.pack(">I", n)
        with pytest.raises(InvalidField, match="limit"):
            decode_message(bytes(data))
    with pytest.raises(ValueError, match="more than"):
        InjectedTx(1, (stx(),) * (MAX_TXS_PER_FORWARD + 1))


def test_payload_length_beyond_the_message_is_a_truncation() -> None:
    data = bytearray(encode_message(InjectedTx(1, (stx(b"abcd"),))))
    off = 1 + 8 + 4 + 20 + 16 + 32 + 32  # the payload length
    assert struct.unpack(">I", data[off : off + 4])[0] == 4
    data[off : off + 4] = struct.pack(">I", 2**32 - 1)
    with pytest.raises(Truncated):
        decode_message(bytes(data))


def test_oversized_message_is_refused() -> None:
    data = encode_message(InjectedTx(1, (stx(b"a" * 2000),)))
    with pytest.raises(Oversized):
        decode_message(data, max_size=1000)


def _set_v(data: bytes, sig: bytes, v: int) -> bytes:
    i = data.index(sig)
    return data[: i + 64] + bytes([v]) + data[i + 65 :]


def test_non_canonical_signatures_inside_messages_are_refused() -> None:
    m = InjectedTx(1, (stx(),))
    data = encode_message(m)
    with pytest.raises(InvalidField):
        decode_message(_set_v(data, m.txs[0].signature, 29))
    b = block(1)
    data = encode_message(b)
    with pytest.raises(InvalidField):  # the block's own signature
        decode_message(_set_v(data, b.signature, 0))
    with pytest.raises(InvalidField):  # a transaction's
        decode_message(_set_v(data, b.txs[0].signature, 1))
    p = promises(1)
    data = encode_message(p)
    with pytest.raises(InvalidField):
        decode_message(_set_v(data, p.promises[0][1], 30))
    # high s (the same signature's malleable twin) is not canonical either
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    sig = m.txs[0].signature
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    data = encode_message(m)
    i = data.index(sig)
    with pytest.raises(InvalidField):
        decode_message(data[:i] + twin + data[i + 65 :])


def test_promises_must_be_signed_by_the_validator_they_name() -> None:
    p = promises(1, validator=SIGNERS[0])
    env = seal(p, era=1, domain=GDOMAIN, signer=SIGNERS[1])  # relayed under another key
    with pytest.raises(InconsistentPayload):
        verify(decode(env.encode()), VALIDATORS, GDOMAIN)


def test_field_checks_on_construction() -> None:
    with pytest.raises(ValueError):
        InjectedTx(-1, (stx(),))
    with pytest.raises(ValueError):
        SequencerBlockRequest(1, 2**64, 1)
    b = block(0)
    with pytest.raises(ValueError):
        SequencerBlockMsg(1, b.header, b.signature[:64], ())
    with pytest.raises(ValueError):
        Promises(1, b"\x01" * 19, ())

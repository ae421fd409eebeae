"""Gossip messages of the native path: injected transactions, sequencer blocks, promises.

Same rules as `gossip_messages` (fixed-width big-endian fields, strict decoding, each
travels in a validator-signed envelope); this module only adds the message types, which
register themselves with the envelope decoder when `gossip_messages` is imported.

- `InjectedTx` (0x20): a validator forwards users' signed transactions to the sequencer
  — those it accepted since its last forward, up to `MAX_TXS_PER_FORWARD` and
  `MAX_FORWARD_BYTES` of payload per message — and re-forwards them until they are
  ordered or expire (a re-forward sets `resend`, else gossip's duplicate filter would
  drop identical bytes for its whole memory).
- `SequencerBlockMsg` (0x21): the sequencer's signed block: header, signature and the
  signed transactions in order. Receivers check the header signature against the
  configured sequencer and that `transactions_hash` matches the transactions.
- `SequencerBlockRequest` (0x22): "re-gossip your blocks from `from_height`" — a
  validator that sees a gap asks (each ask with a fresh `resend`: an identical one would
  be dropped by gossip's duplicate filter); whoever holds the blocks answers.
- `Promises` (0x23): a validator's signed promises for the replies it computed in one
  execution step (a sequencer block or an Ethereum block).
- `PromiseRequest` (0x24): "promise these again" — a node holding executed transactions
  whose quorum has not come (a validator died between executing and gossiping its
  promises, or the message was lost) asks; every validator that executed them answers
  with a `Promises` from its stored results.

When modifying this part: the encodings are protocol; tags 0x20-0x2f belong here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gexe.contracts.injected import (
    InjectedTransaction,
    Promise,
    SequencerBlockHeader,
    SignedTransaction,
)

from .gossip_messages import (
    _U32,
    _U64,
    _check_len,
    _check_signature_bytes,
    _check_u64,
    _Reader,
    _register,
)

MAX_TXS_PER_BLOCK = 1024
MAX_TXS_PER_FORWARD = 1024
MAX_FORWARD_BYTES = 512 * 1024  # payload bytes per InjectedTx (a message is ≤ 1 MiB)
MAX_PROMISES = 4096


def _encode_tx(stx: SignedTransaction) -> bytes:
    t = stx.tx
    return b"".join(
        (
            t.destination,
            t.value.to_bytes(16, "big"),
            t.reference_block,
            t.salt,
            _U32.pack(len(t.payload)),
            t.payload,
            stx.signature,
        )
    )


def _count(r: _Reader, what: str, limit: int) -> int:
    """A u32 item count, refused above `limit` before any item is read."""
    n = r.u32(f"count of {what}")
    if n > limit:
        raise ValueError(f"{n} {what}, limit {limit}")
    return n


def _read_tx(r: _Reader) -> SignedTransaction:
    dest = r.take(20, "destination")
    value = int.from_bytes(r.take(16, "value"), "big")
    ref = r.take(32, "reference_block")
    salt = r.take(32, "salt")
    n = r.u32("payload length")
    payload = r.take(n, "payload")
    sig = r.take(65, "tx signature")
    _check_signature_bytes(sig)
    return SignedTransaction(InjectedTransaction(dest, payload, ref, salt, value), sig)


@_register
@dataclass(frozen=True, slots=True)
class InjectedTx:
    TYPE: ClassVar[int] = 0x20

    era: int
    txs: tuple[SignedTransaction, ...]
    # 0 when first sent; a re-forward sets it so that gossip's duplicate filter (message
    # id = sha256 of the bytes, remembered 120 s) lets the copy through
    resend: int = 0

    def __post_init__(self) -> None:
        _check_u64("era", self.era)
        _check_u64("resend", self.resend)
        if len(self.txs) > MAX_TXS_PER_FORWARD:
            raise ValueError(f"more than {MAX_TXS_PER_FORWARD} transactions in one forward")

    def body(self) -> bytes:
        return b"".join(
            (
                _U64.pack(self.era),
                _U32.pack(len(self.txs)),
                *(_encode_tx(t) for t in self.txs),
                _U64.pack(self.resend),
            )
        )

    @classmethod
    def from_body(cls, body: bytes) -> InjectedTx:
        r = _Reader(body)
        era = r.u64("era")
        n = _count(r, "transactions in a forward", MAX_TXS_PER_FORWARD)
        txs = tuple(_read_tx(r) for _ in range(n))
        resend = r.u64("resend")
        r.finish("InjectedTx")
        return cls(era, txs, resend)


@_register
@dataclass(frozen=True, slots=True)
class SequencerBlockMsg:
    TYPE: ClassVar[int] = 0x21

    era: int
    header: SequencerBlockHeader
    signature: bytes  # 65: the sequencer's EIP-712 signature over the header
    txs: tuple[SignedTransaction, ...]
    # 0 when first sent; a re-send (answering a request) sets it so that gossip's
    # duplicate filter (message id = sha256 of the bytes) lets the copy through
    resend: int = 0

    def __post_init__(self) -> None:
        _check_u64("era", self.era)
        _check_len("signature", self.signature, 65)
        _check_u64("resend", self.resend)
        if len(self.txs) > MAX_TXS_PER_BLOCK:
            raise ValueError(f"more than {MAX_TXS_PER_BLOCK} transactions in a block")

    def body(self) -> bytes:
        h = self.header
        return b"".join(
            (
                _U64.pack(self.era),
                h.anchor,
                _U64.pack(h.anchor_number),
                _U64.pack(h.height),
                h.parent,
                h.transactions_hash,
                self.signature,
                _U32.pack(len(self.txs)),
                *(_encode_tx(t) for t in self.txs),
                _U64.pack(self.resend),
            )
        )

    @classmethod
    def from_body(cls, body: bytes) -> SequencerBlockMsg:
        r = _Reader(body)
        era = r.u64("era")
        header = SequencerBlockHeader(
            r.take(32, "anchor"),
            r.u64("anchor_number"),
            r.u64("height"),
            r.take(32, "parent"),
            r.take(32, "transactions_hash"),
        )
        sig = r.take(65, "block signature")
        _check_signature_bytes(sig)
        n = _count(r, "transactions in a block", MAX_TXS_PER_BLOCK)
        txs = tuple(_read_tx(r) for _ in range(n))
        resend = r.u64("resend")
        r.finish("SequencerBlockMsg")
        return cls(era, header, sig, txs, resend)


@_register
@dataclass(frozen=True, slots=True)
class SequencerBlockRequest:
    TYPE: ClassVar[int] = 0x22

    era: int
    from_height: int
    to_height: int  # inclusive; bounded by the answerer
    resend: int = 0  # differs between asks, so that a repeated ask is not a duplicate

    def __post_init__(self) -> None:
        _check_u64("era", self.era)
        _check_u64("from_height", self.from_height)
        _check_u64("to_height", self.to_height)
        _check_u64("resend", self.resend)

    def body(self) -> bytes:
        return b"".join(
            _U64.pack(v) for v in (self.era, self.from_height, self.to_height, self.resend)
        )

    @classmethod
    def from_body(cls, body: bytes) -> SequencerBlockRequest:
        r = _Reader(body)
        out = cls(r.u64("era"), r.u64("from_height"), r.u64("to_height"), r.u64("resend"))
        r.finish("SequencerBlockRequest")
        return out


@_register
@dataclass(frozen=True, slots=True)
class Promises:
    TYPE: ClassVar[int] = 0x23

    era: int
    validator: bytes  # 20: must be the envelope's signer
    promises: tuple[tuple[Promise, bytes], ...]  # (promise, 65-byte EIP-712 signature)

    def __post_init__(self) -> None:
        _check_u64("era", self.era)
        _check_len("validator", self.validator, 20)
        if len(self.promises) > MAX_PROMISES:
            raise ValueError(f"more than {MAX_PROMISES} promises in one message")

    def body(self) -> bytes:
        return b"".join(
            (
                _U64.pack(self.era),
                self.validator,
                _U32.pack(len(self.promises)),
                *(p.tx_hash + p.reply_hash + p.reply_code + s for p, s in self.promises),
            )
        )

    @classmethod
    def from_body(cls, body: bytes) -> Promises:
        r = _Reader(body)
        era = r.u64("era")
        validator = r.take(20, "validator")
        n = _count(r, "promises", MAX_PROMISES)
        out = []
        for _ in range(n):
            p = Promise(r.take(32, "tx_hash"), r.take(32, "reply_hash"), r.take(4, "reply_code"))
            sig = r.take(65, "promise signature")
            _check_signature_bytes(sig)
            out.append((p, sig))
        r.finish("Promises")
        return cls(era, validator, tuple(out))


@_register
@dataclass(frozen=True, slots=True)
class PromiseRequest:
    TYPE: ClassVar[int] = 0x24

    era: int
    tx_hashes: tuple[bytes, ...]  # 32 each
    resend: int = 0  # differs between asks, so that a repeated ask is not a duplicate

    def __post_init__(self) -> None:
        _check_u64("era", self.era)
        _check_u64("resend", self.resend)
        if len(self.tx_hashes) > MAX_PROMISES:
            raise ValueError(f"more than {MAX_PROMISES} transactions in one request")
        for h in self.tx_hashes:
            _check_len("tx_hash", h, 32)

    def body(self) -> bytes:
        return b"".join(
            (
                _U64.pack(self.era),
                _U32.pack(len(self.tx_hashes)),
                *self.tx_hashes,
                _U64.pack(self.resend),
            )
        )

    @classmethod
    def from_body(cls, body: bytes) -> PromiseRequest:
        r = _Reader(body)
        era = r.u64("era")
        n = _count(r, "transactions in a promise request", MAX_PROMISES)
        hashes = tuple(r.take(32, "tx_hash") for _ in range(n))
        resend = r.u64("resend")
        r.finish("PromiseRequest")
        return cls(era, hashes, resend)

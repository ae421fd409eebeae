"""Typed gossip messages, their canonical binary encoding, and signed envelopes.

Sans-IO: bytes in, values out. Nothing here touches the network; `gossip.py` is the
libp2p edge that uses it.

Wire format (all integers big-endian, fixed width; no pickle, no JSON):

    message  := type:u8 || body                      (encode_message / decode_message)
    envelope := 0x01 || era:u64 || sender:20 || payload_type:u8
                || payload_len:u32 || payload || signature:65

`payload` is the *body* of a message (its type travels in `payload_type`). The
envelope signature is an Ethereum-style recoverable ECDSA signature (r || s || v,
v in {27, 28}, low-s) over

    keccak256(DOMAIN_TAG || router:20 || chain_id:u64 || era:u64 || payload_type:u8 || payload)

so an envelope cannot be replayed on another chain, another Router or in another
era. Decoding is strict: truncated input, oversized input (configurable bound,
default 1 MiB), unknown type tags, malformed fields and trailing bytes each raise a
specific `DecodeError` subclass; `verify` raises a specific `VerifyError` subclass.
Every error class carries a short `reason` string used as a junk-counter key.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from eth_keys import keys as _eth_keys
from eth_utils import keccak
from gexe.contracts.eip712 import BadSignature as ContractBadSignature
from gexe.contracts.eip712 import recover_address

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DOMAIN_TAG",
    "ENVELOPE_TAG",
    "ApproveBatch",
    "BadSignature",
    "BatchHeader",
    "DecodeError",
    "EthSigner",
    "GossipDomain",
    "GossipError",
    "GossipMessage",
    "InconsistentPayload",
    "InvalidField",
    "NotAValidator",
    "Oversized",
    "RequestBatchValidation",
    "SignedEnvelope",
    "Signer",
    "SignerMismatch",
    "TrailingBytes",
    "Truncated",
    "UnknownType",
    "VerifyError",
    "WrongEra",
    "decode",
    "decode_message",
    "encode_message",
    "recover_digest_signer",
    "seal",
    "signing_digest",
    "to_address",
    "verify",
]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20  # 1 MiB, the whole encoded envelope
ENVELOPE_TAG = 0x01
DOMAIN_TAG = b"gexe/gossip/v1"

_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_U64_MAX = (1 << 64) - 1
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2


# --------------------------------------------------------------------------- errors


class GossipError(Exception):
    """Base of every decode/verify failure. `reason` keys the per-peer junk counter."""

    reason: ClassVar[str] = "invalid"


class DecodeError(GossipError, ValueError):
    reason = "malformed"


class Truncated(DecodeError):
    reason = "truncated"


class Oversized(DecodeError):
    reason = "oversized"


class UnknownType(DecodeError):
    reason = "unknown_type"


class TrailingBytes(DecodeError):
    reason = "trailing_bytes"


class InvalidField(DecodeError):
    reason = "invalid_field"


class VerifyError(GossipError):
    reason = "unverified"


class BadSignature(VerifyError):
    reason = "bad_signature"


class SignerMismatch(VerifyError):
    """The signature recovers to an address other than the envelope's sender."""

    reason = "signer_mismatch"


class NotAValidator(VerifyError):
    reason = "not_a_validator"


class WrongEra(VerifyError):
    reason = "wrong_era"


class InconsistentPayload(VerifyError):
    """The payload contradicts its envelope (era, validator, inner signature)."""

    reason = "inconsistent_payload"


# --------------------------------------------------------------------------- helpers


def to_address(value: str | bytes) -> bytes:
    """A 20-byte address from bytes or a 0x-hex string (any case)."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise ValueError(f"not a hex address: {value!r}") from exc
    else:
        raise TypeError(f"address must be bytes or str, not {type(value).__name__}")
    if len(raw) != 20:
        raise ValueError(f"address must be 20 bytes, got {len(raw)}")
    return raw


def _check_len(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")


def _check_u64(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U64_MAX:
        raise ValueError(f"{name} must be an integer in [0, 2**64), got {value!r}")


def _check_signature_bytes(sig: bytes) -> None:
    """Raise InvalidField unless sig is a canonical 65-byte r||s||v, v in {27,28}, low s."""
    r = int.from_bytes(sig[0:32], "big")
    s = int.from_bytes(sig[32:64], "big")
    v = sig[64]
    if v not in (27, 28):
        raise InvalidField(f"signature v must be 27 or 28, got {v}")
    if not 0 < r < _SECP256K1_N:
        raise InvalidField("signature r out of range")
    if not 0 < s <= _HALF_N:
        raise InvalidField("signature s out of range (must be low-s, EIP-2)")


def recover_digest_signer(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that produced `signature` over the 32-byte `digest`."""
    _check_signature_bytes(signature)
    try:
        return recover_address(digest, signature)
    except ContractBadSignature as exc:
        raise BadSignature(str(exc)) from None


class _Reader:
    """Bounds-checked cursor over a bytes object; every short read raises Truncated."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self._pos = pos

    def take(self, n: int, what: str) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise Truncated(
                f"truncated {what}: need {n} bytes at offset {self._pos}, "
                f"have {len(self._data) - self._pos}"
            )
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u32(self, what: str) -> int:
        return _U32.unpack(self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return _U64.unpack(self.take(8, what))[0]

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def finish(self, what: str) -> None:
        extra = self.remaining()
        if extra:
            raise TrailingBytes(f"{extra} trailing byte(s) after {what}")


# --------------------------------------------------------------------------- messages


class GossipMessage(Protocol):
    TYPE: ClassVar[int]
    era: int

    def body(self) -> bytes: ...


_REGISTRY: dict[int, Callable[[bytes], GossipMessage]] = {}


def _register(cls):  # noqa: ANN001, ANN202 - class decorator
    tag = cls.TYPE
    if tag in _REGISTRY or tag == ENVELOPE_TAG:
        raise ValueError(f"duplicate gossip type tag 0x{tag:02x}")
    _REGISTRY[tag] = cls.from_body
    return cls


@_register
@dataclass(frozen=True, slots=True)
class RequestBatchValidation:
    """Sequencer → validators: please check and sign this batch.

    The batch is named by `(previous_batch_hash, block_hash)`: validators rebuild it
    locally from their own results and sign only when their digest equals
    `batch_digest`. `batch` may carry the batch's ABI encoding (for diagnostics); it
    is empty in the node's own requests, which keeps requests small.
    """

    TYPE: ClassVar[int] = 0x10

    batch_digest: bytes  # 32: the EIP-712 digest validators sign
    era: int
    block_hash: bytes  # 32
    previous_batch_hash: bytes  # 32: the committed batch this one extends (zero: none)
    batch: bytes = b""

    def __post_init__(self) -> None:
        _check_len("batch_digest", self.batch_digest, 32)
        _check_u64("era", self.era)
        _check_len("block_hash", self.block_hash, 32)
        _check_len("previous_batch_hash", self.previous_batch_hash, 32)
        if not isinstance(self.batch, bytes):
            raise TypeError("batch must be bytes")
        if len(self.batch) > 0xFFFFFFFF:
            raise ValueError("batch too large")

    def body(self) -> bytes:
        return b"".join(
            (
                self.batch_digest,
                _U64.pack(self.era),
                self.block_hash,
                self.previous_batch_hash,
                _U32.pack(len(self.batch)),
                self.batch,
            )
        )

    @classmethod
    def from_body(cls, body: bytes) -> RequestBatchValidation:
        r = _Reader(body)
        digest = r.take(32, "batch_digest")
        era = r.u64("era")
        block_hash = r.take(32, "block_hash")
        previous = r.take(32, "previous_batch_hash")
        n = r.u32("batch length")
        batch = r.take(n, "batch")
        r.finish("RequestBatchValidation")
        return cls(digest, era, block_hash, previous, batch)


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """What a batch hash is made of (`Gear.batchHashFromParts`): the shared fields and the
    hashes of the batch's arrays. Carried in an approval so that any node holding two
    approvals by one validator for the same `(previous_batch_hash, block_hash)` can prove
    the equivocation on chain without the batches themselves."""

    block_hash: bytes  # 32
    block_number: int
    previous_batch_hash: bytes  # 32
    chain_commitments_hash: bytes  # 32
    code_commitments_hash: bytes  # 32
    burned: int  # u128

    SIZE: ClassVar[int] = 32 + 8 + 32 + 32 + 32 + 16

    def __post_init__(self) -> None:
        _check_len("block_hash", self.block_hash, 32)
        _check_u64("block_number", self.block_number)
        _check_len("previous_batch_hash", self.previous_batch_hash, 32)
        _check_len("chain_commitments_hash", self.chain_commitments_hash, 32)
        _check_len("code_commitments_hash", self.code_commitments_hash, 32)
        if not 0 <= self.burned < 1 << 128:
            raise ValueError("burned must fit in 128 bits")

    def encode(self) -> bytes:
        return (
            self.block_hash
            + _U64.pack(self.block_number)
            + self.previous_batch_hash
            + self.chain_commitments_hash
            + self.code_commitments_hash
            + self.burned.to_bytes(16, "big")
        )

    @classmethod
    def read(cls, r: _Reader) -> BatchHeader:
        return cls(
            r.take(32, "block_hash"),
            r.u64("block_number"),
            r.take(32, "previous_batch_hash"),
            r.take(32, "chain_commitments_hash"),
            r.take(32, "code_commitments_hash"),
            int.from_bytes(r.take(16, "burned"), "big"),
        )

    def batch_hash(self) -> bytes:
        return keccak(
            self.block_hash
            + self.block_number.to_bytes(8, "big")
            + self.previous_batch_hash
            + self.chain_commitments_hash
            + self.code_commitments_hash
            + self.burned.to_bytes(16, "big")
        )


@_register
@dataclass(frozen=True, slots=True)
class ApproveBatch:
    """Validator → sequencer: my signature over `batch_digest`.

    `signature` is the validator's recoverable ECDSA signature over the 32-byte
    `batch_digest` itself (the EIP-712 digest the Router checks); gossip verifies it
    recovers to `validator` and that `validator` is the envelope's signer. `header`
    (optional, appended to the body) names what was signed; when present, gossip checks
    that it hashes to `batch_digest` under the network's EIP-712 domain.
    """

    TYPE: ClassVar[int] = 0x11

    batch_digest: bytes  # 32
    era: int
    validator: bytes  # 20
    signature: bytes  # 65, r || s || v (v in {27, 28})
    header: BatchHeader | None = None

    def __post_init__(self) -> None:
        _check_len("batch_digest", self.batch_digest, 32)
        _check_u64("era", self.era)
        _check_len("validator", self.validator, 20)
        _check_len("signature", self.signature, 65)
        if self.header is not None and not isinstance(self.header, BatchHeader):
            raise TypeError("header must be a BatchHeader")

    def body(self) -> bytes:
        head = self.batch_digest + _U64.pack(self.era) + self.validator + self.signature
        return head if self.header is None else head + self.header.encode()

    @classmethod
    def from_body(cls, body: bytes) -> ApproveBatch:
        r = _Reader(body)
        digest = r.take(32, "batch_digest")
        era = r.u64("era")
        validator = r.take(20, "validator")
        sig = r.take(65, "signature")
        header = BatchHeader.read(r) if r.remaining() >= BatchHeader.SIZE else None
        r.finish("ApproveBatch")
        _check_signature_bytes(sig)
        return cls(digest, era, validator, sig, header)


def encode_message(msg: GossipMessage) -> bytes:
    """Standalone encoding of a message: type tag || body."""
    return _U8.pack(msg.TYPE) + msg.body()


def _decode_body(tag: int, body: bytes) -> GossipMessage:
    factory = _REGISTRY.get(tag)
    if factory is None:
        raise UnknownType(f"unknown gossip payload type 0x{tag:02x}")
    try:
        return factory(body)
    except DecodeError:
        raise
    except (ValueError, TypeError) as exc:  # field validation in __post_init__
        raise InvalidField(str(exc)) from None


def decode_message(data: bytes, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> GossipMessage:
    """Inverse of encode_message."""
    data = bytes(data)
    if len(data) > max_size:
        raise Oversized(f"message is {len(data)} bytes, limit {max_size}")
    if not data:
        raise Truncated("empty message")
    return _decode_body(data[0], data[1:])


# --------------------------------------------------------------------------- envelope


@dataclass(frozen=True, slots=True)
class GossipDomain:
    """What an envelope signature is bound to besides its era."""

    chain_id: int
    router: bytes  # 20

    def __post_init__(self) -> None:
        _check_u64("chain_id", self.chain_id)
        object.__setattr__(self, "router", to_address(self.router))


def signing_digest(domain: GossipDomain, era: int, payload_type: int, payload: bytes) -> bytes:
    return keccak(
        b"".join(
            (
                DOMAIN_TAG,
                domain.router,
                _U64.pack(domain.chain_id),
                _U64.pack(era),
                _U8.pack(payload_type),
                payload,
            )
        )
    )


@dataclass(frozen=True, slots=True)
class SignedEnvelope:
    era: int
    sender: bytes  # 20, claimed signer (checked against the recovered one)
    payload_type: int
    payload: bytes  # message body (without its type tag)
    signature: bytes  # 65

    HEADER_SIZE: ClassVar[int] = 1 + 8 + 20 + 1 + 4
    OVERHEAD: ClassVar[int] = HEADER_SIZE + 65

    def __post_init__(self) -> None:
        _check_u64("era", self.era)
        _check_len("sender", self.sender, 20)
        if not isinstance(self.payload_type, int) or not 0 <= self.payload_type <= 0xFF:
            raise ValueError("payload_type must fit in a byte")
        if not isinstance(self.payload, bytes):
            raise TypeError("payload must be bytes")
        _check_len("signature", self.signature, 65)

    def encode(self) -> bytes:
        return b"".join(
            (
                _U8.pack(ENVELOPE_TAG),
                _U64.pack(self.era),
                self.sender,
                _U8.pack(self.payload_type),
                _U32.pack(len(self.payload)),
                self.payload,
                self.signature,
            )
        )

    def message(self) -> GossipMessage:
        """The typed payload (decoded strictly; raises DecodeError)."""
        return _decode_body(self.payload_type, self.payload)


def decode(data: bytes, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> SignedEnvelope:
    """Parse an encoded envelope, strictly, including its payload.

    Raises Oversized (len > max_size), Truncated, UnknownType (envelope tag or payload
    type), InvalidField (bad signature encoding, payload field), TrailingBytes.
    """
    data = bytes(data)
    if len(data) > max_size:
        raise Oversized(f"envelope is {len(data)} bytes, limit {max_size}")
    r = _Reader(data)
    tag = r.u8("envelope tag")
    if tag != ENVELOPE_TAG:
        raise UnknownType(f"not a signed envelope: type tag 0x{tag:02x}")
    era = r.u64("era")
    sender = r.take(20, "sender")
    payload_type = r.u8("payload type")
    n = r.u32("payload length")
    if n > max_size:
        raise Oversized(f"declared payload length {n} exceeds limit {max_size}")
    payload = r.take(n, "payload")
    signature = r.take(65, "signature")
    r.finish("envelope")
    _check_signature_bytes(signature)
    env = SignedEnvelope(era, sender, payload_type, payload, signature)
    env.message()  # strict payload check: unknown type / malformed body fail here
    return env


# --------------------------------------------------------------------------- signing


class Signer(Protocol):
    @property
    def address(self) -> bytes: ...

    def sign_digest(self, digest: bytes) -> bytes:
        """65-byte r || s || v (v in {27, 28}) over a 32-byte digest."""
        ...


class EthSigner:
    """A secp256k1 key that signs 32-byte digests Ethereum-style (never logs the key)."""

    __slots__ = ("_key", "_address")

    def __init__(self, private_key: bytes | str) -> None:
        if isinstance(private_key, str):
            private_key = bytes.fromhex(private_key.removeprefix("0x"))
        self._key = _eth_keys.PrivateKey(private_key)
        self._address = self._key.public_key.to_canonical_address()

    @classmethod
    def from_account(cls, account) -> EthSigner:  # noqa: ANN001 - eth_account LocalAccount
        return cls(bytes(account.key))

    @property
    def address(self) -> bytes:
        return self._address

    def sign_digest(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise ValueError("digest must be 32 bytes")
        sig = self._key.sign_msg_hash(digest)
        return sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v + 27])

    def __repr__(self) -> str:
        return f"EthSigner(0x{self._address.hex()})"


def seal(msg: GossipMessage, *, era: int, domain: GossipDomain, signer: Signer) -> SignedEnvelope:
    """Sign `msg` for `era` under `domain`."""
    payload = msg.body()
    digest = signing_digest(domain, era, msg.TYPE, payload)
    return SignedEnvelope(era, bytes(signer.address), msg.TYPE, payload, signer.sign_digest(digest))


def _check_payload(env: SignedEnvelope, msg: GossipMessage, domain: GossipDomain) -> None:
    if msg.era != env.era:
        raise InconsistentPayload(f"payload era {msg.era} != envelope era {env.era}")
    if getattr(msg, "TYPE", None) == 0x23 and msg.validator != env.sender:  # type: ignore[attr-defined]
        raise InconsistentPayload("Promises.validator is not the envelope signer")
    if isinstance(msg, ApproveBatch):
        if msg.validator != env.sender:
            raise InconsistentPayload("ApproveBatch.validator is not the envelope signer")
        try:
            inner = recover_digest_signer(msg.batch_digest, msg.signature)
        except GossipError:
            raise InconsistentPayload("ApproveBatch signature does not recover") from None
        if inner != msg.validator:
            raise InconsistentPayload("ApproveBatch signature is not by its validator")
        if msg.header is not None:
            from gexe.contracts import batch_digest

            want = batch_digest(
                msg.header.batch_hash(), domain.chain_id, "0x" + domain.router.hex()
            )
            if want != msg.batch_digest:
                raise InconsistentPayload("ApproveBatch header does not hash to its digest")


def verify(
    env: SignedEnvelope,
    validators: Iterable[str | bytes],
    domain: GossipDomain,
    *,
    era: int | None = None,
) -> bytes:
    """Check `env` and return the recovered signer (20-byte address), or raise.

    `validators` is the validator set of `env.era` (addresses as bytes or hex). When
    `era` is given, the envelope must be for exactly that era (WrongEra otherwise).
    Checks, cheapest first: era, sender in set, signature recovers to sender, payload
    decodes and agrees with the envelope.
    """
    if era is not None and env.era != era:
        raise WrongEra(f"envelope era {env.era}, expected {era}")
    members = {to_address(a) for a in validators}
    if env.sender not in members:
        raise NotAValidator(f"0x{env.sender.hex()} is not a validator of era {env.era}")
    digest = signing_digest(domain, env.era, env.payload_type, env.payload)
    signer = recover_digest_signer(digest, env.signature)
    if signer != env.sender:
        raise SignerMismatch(f"signature by 0x{signer.hex()}, envelope claims 0x{env.sender.hex()}")
    _check_payload(env, env.message(), domain)
    return signer


# the native path's messages (tags 0x20-0x2f) register themselves on import
from . import gossip_injected as _gossip_injected  # noqa: E402, F401

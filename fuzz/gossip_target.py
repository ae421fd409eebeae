"""Target `gossip`: decoding and verifying hostile gossip bytes.

Cases: envelopes sealed by real keys (`RequestBatchValidation` with random fields and
batch bytes, `ApproveBatch` signed by a validator, by an outsider, or with an inner
signature by someone else), fresh or mutated — byte flips, truncation, extension,
edge values in the era and payload-length fields, another payload type, signature
bytes with v ∉ {27, 28}, zero or high-s, payloads spliced from another envelope — and
raw bytes; each decoded with the default size bound or one at the input's edge.

Property: `decode`, `decode_message` and `verify` return a value or raise a
`GossipError` subclass, nothing else. What decodes is canonical (it re-encodes to the
same bytes), and what verifies was signed by a validator of the set under this chain
id and Router, in the era it claims.
"""

from __future__ import annotations

from typing import Any

from gexe.node.gossip_messages import (
    DEFAULT_MAX_MESSAGE_SIZE,
    ApproveBatch,
    EthSigner,
    GossipDomain,
    GossipError,
    RequestBatchValidation,
    SignedEnvelope,
    decode,
    decode_message,
    encode_message,
    seal,
    verify,
)

from .base import Finding, Target, must
from .source import EDGE_U32, Recorder, Source

DOMAIN = GossipDomain(chain_id=31337, router=b"\x42" * 20)
SIGNERS = [EthSigner(bytes([i + 1]) * 32) for i in range(4)]
VALIDATORS = [s.address for s in SIGNERS[:3]]  # the fourth is an outsider
ERAS = (0, 1, 7, 2**32, 2**64 - 1)
MODES = ("valid", "mutate", "mutate", "mutate", "message", "raw")
OPS = ("flip", "truncate", "extend", "era", "length", "type", "sig_v", "sig_s", "splice")
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class GossipTarget(Target):
    name = "gossip"
    about = "decode / decode_message / verify on mutated envelopes and random bytes"

    def __init__(self) -> None:
        self.decoded = 0
        self.verified = 0

    def _envelope(self, src: Source) -> bytes:
        era = src.pick(ERAS)
        signer = src.pick(SIGNERS)
        if src.bool():
            msg: Any = RequestBatchValidation(
                src.bytes(32).ljust(32, b"\1"),
                era if src.int(0, 7) else src.pick(ERAS),
                src.bytes(32).ljust(32, b"\2"),
                src.bytes(32).ljust(32, b"\3"),
                src.bytes(64),
            )
        else:
            digest = src.bytes(32).ljust(32, b"\4")
            inner = src.pick(SIGNERS) if src.int(0, 3) == 0 else signer
            msg = ApproveBatch(digest, era, signer.address, inner.sign_digest(digest))
        domain = DOMAIN if src.int(0, 7) else GossipDomain(1, DOMAIN.router)
        return seal(msg, era=era, domain=domain, signer=signer).encode()

    def generate(self, src: Source) -> tuple[bytes, int, int | None]:
        mode = src.pick(MODES)
        if mode == "raw":
            data = src.rest()
        elif mode == "message":
            data = src.pick((b"\x10", b"\x11", b"\x00", b"\x01")) + src.bytes(200)
        else:
            data = self._envelope(src)
            if mode == "mutate":
                for _ in range(src.int(1, 3)):
                    data = self._mutate(src, data)
        max_size = src.pick((DEFAULT_MAX_MESSAGE_SIZE, len(data), max(len(data) - 1, 0), 0))
        era = src.pick((None, None, 7, 0, 2**64 - 1))
        return data, max_size, era

    def _mutate(self, src: Source, data: bytes) -> bytes:
        b = bytearray(data)
        n = len(b)
        op = src.pick(OPS)
        if op == "flip" and n:
            b[src.int(0, n - 1)] ^= src.int(1, 255)
        elif op == "truncate":
            del b[src.int(0, n) :]
        elif op == "extend":
            b += src.bytes(70)
        elif op == "era" and n >= 9:
            b[1:9] = src.pick(ERAS).to_bytes(8, "big")
        elif op == "length" and n >= 34:
            value = src.pick((*EDGE_U32, n - 99, n - 100, n - 98))  # 99: header + signature
            b[30:34] = (value & 0xFFFFFFFF).to_bytes(4, "big")
        elif op == "type" and n >= 30:
            b[29] = src.pick((0x00, 0x01, 0x10, 0x11, 0x12, 0xFF))
        elif op == "sig_v" and n >= 65:
            b[-1] = src.pick((0, 1, 26, 27, 28, 29, 0xFF))
        elif op == "sig_s" and n >= 65:
            s = src.pick((0, 1, _N // 2, _N // 2 + 1, _N - 1, _N, 2**256 - 1))
            b[-33:-1] = s.to_bytes(32, "big")
        elif op == "splice" and n >= 34:
            other = self._envelope(src)
            b[34:-65] = other[34:-65]
        return bytes(b)

    def seeds(self) -> list[bytes]:
        return [Recorder().pick(MODES, "valid").done(), Recorder().pick(MODES, "mutate").done()]

    def show(self, case: Any) -> str:
        data, max_size, era = case
        return f"data={data.hex()} max_size={max_size} era={era}"

    def check(self, case: tuple[bytes, int, int | None]) -> None:
        data, max_size, era = case
        try:
            self._check(data, max_size, era)
        except Finding:
            raise
        except Exception as e:
            raise Finding(f"{type(e).__name__} escaped: {e}") from e

    def _check(self, data: bytes, max_size: int, era: int | None) -> None:
        try:
            msg = decode_message(data, max_size=max_size)
        except GossipError:
            pass
        else:
            must(encode_message(msg) == data, "decode_message is not canonical")
        try:
            env = decode(data, max_size=max_size)
        except GossipError:
            return
        self.decoded += 1
        must(isinstance(env, SignedEnvelope), f"decode returned {type(env).__name__}")
        must(env.encode() == data, "decode is not canonical: re-encoding differs")
        must(len(data) <= max_size, "decoded an envelope over the size bound")
        try:
            signer = verify(env, VALIDATORS, DOMAIN, era=era)
        except GossipError:
            return
        self.verified += 1
        must(signer in VALIDATORS and signer == env.sender, "verified a non-validator")
        must(era is None or env.era == era, "verified an envelope of another era")
        msg = env.message()
        must(msg.era == env.era, "verified a payload whose era differs from its envelope")
        if isinstance(msg, ApproveBatch):
            must(msg.validator == signer, "verified an approval on someone else's behalf")

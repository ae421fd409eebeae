"""Records kept in the store's key-value half, with their byte encodings (pure).

- `BlockRecord`: one processed Ethereum block — its identity (hash, number, parent,
  timestamp) and two pointers into the content-addressed half: the runtime state after
  the block (`state_root`, see snapshot.py) and the validator's encoding of the block's
  result (`result`, `ZERO_HASH` when there is none). Rolling back to a block is moving
  the head pointer to its record; nothing is recomputed.
- `CodeVerdict`: whether an uploaded code is valid, and why not.
- `SeqRecord`: one executed sequencer block (the native path): where it sits (height,
  parent, the Ethereum block it is anchored to), the runtime state after it, its result
  and the block's own bytes (so it can be re-gossiped).

Invariants: encodings are fixed-layout, versioned by their first byte, and decoding
rejects anything else with `RecordError` (the store reports it as corruption).

When modifying this part: a new field means a new version byte and a decoder that still
reads the old one, or a schema bump (`store.SCHEMA_VERSION`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ZERO_HASH = bytes(32)

_BLOCK_V1 = b"\x01"
_BLOCK = struct.Struct(">32sQ32sQ32s32s")
_VERDICT_V1 = b"\x01"
_SEQ_V1 = b"\x01"
_SEQ = struct.Struct(">32sQ32sQ32s32s32s32s")


class RecordError(ValueError):
    """Bytes that do not decode as the expected record."""


@dataclass(frozen=True, slots=True)
class BlockRecord:
    hash: bytes
    number: int
    parent_hash: bytes
    timestamp: int
    state_root: bytes  # CAS key of the runtime-state snapshot after this block
    result: bytes = ZERO_HASH  # CAS key of the block result's encoding, or ZERO_HASH

    def __post_init__(self) -> None:
        for name in ("hash", "parent_hash", "state_root", "result"):
            if len(getattr(self, name)) != 32:
                raise ValueError(f"BlockRecord.{name} must be 32 bytes")
        if not (0 <= self.number < 1 << 64 and 0 <= self.timestamp < 1 << 64):
            raise ValueError("BlockRecord number and timestamp must fit in 64 bits")

    def encode(self) -> bytes:
        return _BLOCK_V1 + _BLOCK.pack(
            self.hash, self.number, self.parent_hash, self.timestamp, self.state_root, self.result
        )

    @classmethod
    def decode(cls, data: bytes) -> BlockRecord:
        if len(data) != 1 + _BLOCK.size or data[:1] != _BLOCK_V1:
            raise RecordError(f"not a block record ({len(data)} bytes)")
        h, number, parent, ts, root, result = _BLOCK.unpack_from(data, 1)
        return cls(h, number, parent, ts, root, result)


@dataclass(frozen=True, slots=True)
class BlockRef:
    """An Ethereum block by number and hash (number -1 with the zero hash: "before the
    first block", the end of the empty batch chain)."""

    number: int
    hash: bytes
    sequenced: bool = False  # a sequencer block anchored at `number` (not a batch target)


@dataclass(frozen=True, slots=True)
class CodeVerdict:
    valid: bool
    reason: str = ""  # empty when valid

    def encode(self) -> bytes:
        return _VERDICT_V1 + (b"\x01" if self.valid else b"\x00") + self.reason.encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> CodeVerdict:
        if len(data) < 2 or data[:1] != _VERDICT_V1 or data[1] > 1:
            raise RecordError(f"not a code verdict ({len(data)} bytes)")
        try:
            reason = data[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("code verdict reason is not UTF-8") from None
        return cls(data[1] == 1, reason)


@dataclass(frozen=True, slots=True)
class SeqRecord:
    hash: bytes  # the sequencer block's EIP-712 hash
    height: int
    anchor: bytes  # the Ethereum block it follows
    anchor_number: int
    parent: bytes  # previous sequencer block (ZERO_HASH at height 1)
    state_root: bytes  # CAS key of the runtime state after it
    result: bytes  # CAS key of its result's encoding
    block: bytes  # CAS key of the SequencerBlockMsg body (re-gossip)

    def __post_init__(self) -> None:
        for name in ("hash", "anchor", "parent", "state_root", "result", "block"):
            if len(getattr(self, name)) != 32:
                raise ValueError(f"SeqRecord.{name} must be 32 bytes")
        if not (0 <= self.height < 1 << 64 and 0 <= self.anchor_number < 1 << 64):
            raise ValueError("SeqRecord height and anchor number must fit in 64 bits")

    def encode(self) -> bytes:
        return _SEQ_V1 + _SEQ.pack(
            self.hash,
            self.height,
            self.anchor,
            self.anchor_number,
            self.parent,
            self.state_root,
            self.result,
            self.block,
        )

    @classmethod
    def decode(cls, data: bytes) -> SeqRecord:
        if len(data) != 1 + _SEQ.size or data[:1] != _SEQ_V1:
            raise RecordError(f"not a sequencer-block record ({len(data)} bytes)")
        return cls(*_SEQ.unpack_from(data, 1))

"""Key layout of the store's key-value half: one short prefix per kind of record.

The KV half (LMDB database `kv`) holds everything that is not content-addressed:
the schema version and other metadata, block records, the canonical-chain index,
code verdicts, compiled-code caches. Each kind owns one prefix byte plus `/`; the
functions below are the only place keys are spelled, so a reader can see the whole
layout here.

Invariants:
- Prefixes are unique and never reused for another meaning, even after removal.
- Numbers in keys are unsigned 64-bit big-endian, so LMDB's byte order is numeric order.
- Hashes in keys are the raw 32 bytes.

When modifying this part: adding a prefix is compatible; changing the encoding of an
existing key or record is a schema change — bump `store.SCHEMA_VERSION`.
"""

from __future__ import annotations

import re

META = b"m/"  # m/<ascii name>            -> bytes (schema version, head hash, …)
BLOCK = b"b/"  # b/<block hash>           -> BlockRecord (records.py)
BLOCK_INDEX = b"n/"  # n/<u64 number><hash> -> b"" (every known block, forks included)
CANON = b"c/"  # c/<u64 number>           -> block hash on the canonical chain
CODE_VERDICT = b"v/"  # v/<code id>       -> CodeVerdict (records.py)
COMPILED = b"x/"  # x/<tag>/<code id>     -> serialized compiled module (engine-specific)
COMMITTED_BATCH = b"k/"  # k/<batch hash> -> block hash ‖ u64 number the batch ends at
SEQ_BLOCK = b"q/"  # q/<sequencer block hash> -> SeqRecord (records.py)
SEQ_TIP = b"t/"  # t/<eth block hash>    -> hash of the last sequencer block run at or before it
SEQ_HEIGHT = b"h/"  # h/<u64 height>       -> sequencer block hash on our chain (overwritten)
INCLUDED = b"i/"  # i/<tx hash>           -> sequencer block hash that carried the transaction

PREFIXES = (
    META,
    BLOCK,
    BLOCK_INDEX,
    CANON,
    CODE_VERDICT,
    COMPILED,
    COMMITTED_BATCH,
    SEQ_BLOCK,
    SEQ_TIP,
    SEQ_HEIGHT,
    INCLUDED,
)

# Metadata names used by the store itself.
META_SCHEMA = "schema_version"
META_HEAD = "head"

_NAME = re.compile(r"[a-z0-9_.\-]{1,64}")


def _u64(n: int) -> bytes:
    if not 0 <= n < 1 << 64:
        raise ValueError(f"block number {n} does not fit in 64 bits")
    return n.to_bytes(8, "big")


def _hash(h: bytes, what: str) -> bytes:
    if len(h) != 32:
        raise ValueError(f"{what} must be 32 bytes, got {len(h)}")
    return bytes(h)


def meta_key(name: str) -> bytes:
    if not _NAME.fullmatch(name):
        raise ValueError(f"metadata name {name!r} must match {_NAME.pattern}")
    return META + name.encode("ascii")


def block_key(block_hash: bytes) -> bytes:
    return BLOCK + _hash(block_hash, "block hash")


def block_index_key(number: int, block_hash: bytes) -> bytes:
    return BLOCK_INDEX + _u64(number) + _hash(block_hash, "block hash")


def block_index_prefix(number: int) -> bytes:
    return BLOCK_INDEX + _u64(number)


def split_block_index_key(key: bytes) -> tuple[int, bytes]:
    body = key[len(BLOCK_INDEX) :]
    return int.from_bytes(body[:8], "big"), body[8:]


def canon_key(number: int) -> bytes:
    return CANON + _u64(number)


def code_verdict_key(code_id: bytes) -> bytes:
    return CODE_VERDICT + _hash(code_id, "code id")


def compiled_key(tag: str, code_id: bytes) -> bytes:
    if not _NAME.fullmatch(tag):
        raise ValueError(f"compiled-code tag {tag!r} must match {_NAME.pattern}")
    return COMPILED + tag.encode("ascii") + b"/" + _hash(code_id, "code id")


def committed_batch_key(batch_hash: bytes) -> bytes:
    return COMMITTED_BATCH + _hash(batch_hash, "batch hash")


def seq_block_key(seq_hash: bytes) -> bytes:
    return SEQ_BLOCK + _hash(seq_hash, "sequencer block hash")


def seq_tip_key(block_hash: bytes) -> bytes:
    return SEQ_TIP + _hash(block_hash, "block hash")


def seq_height_key(height: int) -> bytes:
    return SEQ_HEIGHT + _u64(height)


def included_key(tx_hash: bytes) -> bytes:
    return INCLUDED + _hash(tx_hash, "transaction hash")

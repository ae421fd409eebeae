"""Helpers for the store tests: deterministic fake blocks written through a BlockWriter.

`write_block(writer, n)` writes block `n` of a synthetic chain — a few hundred blobs, a
runtime-state snapshot pointing at them, the block record — and moves the head. The
same function runs in crash-test child processes (see `CHILD_PRELUDE`).
"""

from __future__ import annotations

from gexe.node.records import ZERO_HASH, BlockRecord
from gexe.node.snapshot import store_runtime_state
from gexe.runtime import RuntimeState, Storage, blake2b256

BLOBS_PER_BLOCK = 200


def block_hash(n: int, fork: bytes = b"") -> bytes:
    return blake2b256(b"block", fork, n.to_bytes(8, "big")) if n > 0 else ZERO_HASH


def block_blobs(n: int, fork: bytes = b"") -> list[bytes]:
    return [(b"%s/%d/%d|" % (fork, n, j)) * 100 for j in range(BLOBS_PER_BLOCK)]


def block_state(n: int, fork: bytes = b"") -> RuntimeState:
    """Program i's state hash is the hash of blob i of the last block (10 programs)."""
    programs = {bytes(31) + bytes([i]): blake2b256(block_blobs(n, fork)[i]) for i in range(10)}
    return RuntimeState(programs, frozenset([bytes(31) + b"\x01"]), {bytes(31) + b"\x02": n + 5})


def write_block(
    writer: Storage,
    n: int,
    *,
    fork: bytes = b"",
    parent_fork: bytes | None = None,
    set_head: bool = True,
) -> BlockRecord:
    for b in block_blobs(n, fork):
        writer.write(b)
    root = store_runtime_state(writer, block_state(n, fork))
    result = writer.write(b"result of %d%s" % (n, fork))
    parent = block_hash(n - 1, fork if parent_fork is None else parent_fork)
    rec = BlockRecord(block_hash(n, fork), n, parent, 1_700_000_000 + 12 * n, root, result)
    writer.put_block(rec)  # type: ignore[attr-defined]
    if set_head:
        writer.set_head(rec.hash)  # type: ignore[attr-defined]
    return rec


CHILD_PRELUDE = """
import sys, time
sys.path.insert(0, {helpers_dir!r})
from gexe.node.store import Store, BlockWriter
from node_store_helpers import write_block
store = Store({path!r})
"""

"""Runtime-state snapshots: `RuntimeState` ⇄ content-addressed blobs (sans-IO over `Storage`).

After each block the node stores the runtime's `RuntimeState` (program id → state hash,
the programs left queued, the waitlist wake-ups) so that any retained block can become
the head again by a pointer change (`BlockRecord.state_root`).

Layout. The program map is split into 256 buckets by the last byte of the program id
(program ids are Ethereum addresses behind 12 zero bytes, so the last byte is uniform).
Each non-empty bucket is one blob of sorted `(id, state hash)` pairs; the root blob lists
the non-empty buckets' hashes plus the queued set and the wake-ups. A block that changes
k programs rewrites at most k buckets and the root, whatever the total number of
programs, and consecutive blocks share every unchanged bucket.

Invariants:
- Encodings are canonical (sorted, fixed width), so equal states give equal roots,
  whether built from scratch or incrementally (`store_runtime_state(previous=…)`).
- Program ids and state hashes are 32 bytes.

When modifying this part: any change to the encoding changes roots of stored blocks —
bump `store.SCHEMA_VERSION`. This is local storage, not consensus: other validators
never see these roots.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Iterable, Mapping

from gexe.runtime import RuntimeState, Storage
from gexe.runtime.storage import read_required

_ROOT_MAGIC = b"GXS1"
_BUCKET_MAGIC = b"GXB1"
_U32 = struct.Struct(">I")
_WAKE = struct.Struct(">32sQ")


class SnapshotError(ValueError):
    """A snapshot blob that does not decode."""


def bucket_of(program_id: bytes) -> int:
    return program_id[-1]


def _encode_bucket(entries: Mapping[bytes, bytes]) -> bytes:
    parts = [_BUCKET_MAGIC, _U32.pack(len(entries))]
    for pid in sorted(entries):
        h = entries[pid]
        if len(pid) != 32 or len(h) != 32:
            raise ValueError("program ids and state hashes must be 32 bytes")
        parts.append(pid)
        parts.append(h)
    return b"".join(parts)


def _decode_bucket(data: bytes) -> dict[bytes, bytes]:
    if data[:4] != _BUCKET_MAGIC or len(data) < 8:
        raise SnapshotError("not a program-map bucket")
    (n,) = _U32.unpack_from(data, 4)
    if len(data) != 8 + 64 * n:
        raise SnapshotError("program-map bucket has the wrong length")
    return {data[8 + 64 * i : 40 + 64 * i]: data[40 + 64 * i : 72 + 64 * i] for i in range(n)}


def _encode_root(
    buckets: Mapping[int, bytes], queued: Iterable[bytes], wakeups: Mapping[bytes, int]
) -> bytes:
    q = sorted(queued)
    parts = [_ROOT_MAGIC, bytes([len(buckets) >> 8, len(buckets) & 0xFF])]
    for b in sorted(buckets):
        parts.append(bytes([b]))
        parts.append(buckets[b])
    parts.append(_U32.pack(len(q)))
    parts.extend(q)
    parts.append(_U32.pack(len(wakeups)))
    parts.extend(_WAKE.pack(pid, wakeups[pid]) for pid in sorted(wakeups))
    return b"".join(parts)


def _decode_root(data: bytes) -> tuple[dict[int, bytes], list[bytes], dict[bytes, int]]:
    try:
        if data[:4] != _ROOT_MAGIC:
            raise SnapshotError("not a runtime-state snapshot")
        nb = int.from_bytes(data[4:6], "big")
        off = 6
        buckets = {}
        for _ in range(nb):
            buckets[data[off]] = data[off + 1 : off + 33]
            off += 33
        (nq,) = _U32.unpack_from(data, off)
        off += 4
        queued = [data[off + 32 * i : off + 32 * (i + 1)] for i in range(nq)]
        off += 32 * nq
        (nw,) = _U32.unpack_from(data, off)
        off += 4
        wakeups = {}
        for _ in range(nw):
            pid, deadline = _WAKE.unpack_from(data, off)
            wakeups[pid] = deadline
            off += _WAKE.size
    except (IndexError, struct.error):
        raise SnapshotError("runtime-state snapshot is truncated") from None
    if off != len(data) or any(len(h) != 32 for h in buckets.values()):
        raise SnapshotError("runtime-state snapshot has the wrong length")
    return buckets, queued, wakeups


def store_runtime_state(
    storage: Storage,
    state: RuntimeState,
    *,
    previous: bytes | None = None,
    changed: Iterable[bytes] | None = None,
) -> bytes:
    """Write `state` into `storage`; return its root hash.

    With `previous` (the root of the state this one was derived from) and `changed` (a
    superset of the program ids whose entry differs, e.g. the block result's
    transitions), only the touched buckets are rebuilt. Without them every bucket is.
    """
    programs = state.programs
    if previous is not None and changed is not None:
        buckets, _, _ = _decode_root(read_required(storage, previous, "snapshot root"))
        touched: dict[int, list[bytes]] = {}
        for pid in changed:
            touched.setdefault(bucket_of(pid), []).append(pid)
        for b, pids in touched.items():
            old = buckets.get(b)
            entries = (
                _decode_bucket(read_required(storage, old, "snapshot bucket"))
                if old is not None
                else {}
            )
            for pid in pids:
                h = programs.get(pid)
                if h is None:
                    entries.pop(pid, None)
                else:
                    entries[pid] = h
            if entries:
                buckets[b] = storage.write(_encode_bucket(entries))
            else:
                buckets.pop(b, None)
    else:
        grouped: dict[int, dict[bytes, bytes]] = {}
        for pid, h in programs.items():
            grouped.setdefault(bucket_of(pid), {})[pid] = h
        buckets = {b: storage.write(_encode_bucket(e)) for b, e in grouped.items()}
    return storage.write(_encode_root(buckets, state.queued, state.wakeups))


def load_runtime_state(storage: Storage, root: bytes) -> RuntimeState:
    """The `RuntimeState` whose snapshot root is `root` (raises `MissingBlob`)."""
    buckets, queued, wakeups = _decode_root(read_required(storage, root, "snapshot root"))
    programs: dict[bytes, bytes] = {}
    for b in sorted(buckets):
        programs.update(_decode_bucket(read_required(storage, buckets[b], "snapshot bucket")))
    return RuntimeState(programs, frozenset(queued), wakeups)


def program_state_hash(storage: Storage, root: bytes, program_id: bytes) -> bytes | None:
    """One program's state hash in the snapshot `root`, reading two blobs; None if absent."""
    buckets, _, _ = _decode_root(read_required(storage, root, "snapshot root"))
    bh = buckets.get(bucket_of(program_id))
    if bh is None:
        return None
    data = read_required(storage, bh, "snapshot bucket")
    if data[:4] != _BUCKET_MAGIC:
        raise SnapshotError("not a program-map bucket")
    (n,) = _U32.unpack_from(data, 4)
    ids = [data[8 + 64 * i : 40 + 64 * i] for i in range(n)]
    i = bisect_left(ids, program_id)
    if i < n and ids[i] == program_id:
        return data[40 + 64 * i : 72 + 64 * i]
    return None


def snapshot_children(root_blob: bytes) -> list[bytes]:
    """Keys of the bucket blobs a root blob points at (for integrity checks)."""
    buckets, _, _ = _decode_root(root_blob)
    return [buckets[b] for b in sorted(buckets)]

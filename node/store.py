"""The node's LMDB store: a content-addressed half and a key-value half, one write
transaction per processed block.

Two named LMDB databases in one environment:
- `cas` — blobs keyed by their BLAKE2b-256 hash. `Store` and `BlockWriter` implement
  the runtime's `Storage` protocol (`read(key)`, `write(data) -> key`) over it: program
  states, memory pages, queues, code, snapshots, block results.
- `kv`  — everything else under the prefixes of namespaces.py: metadata (schema
  version, head), block records by hash and by number, the canonical-chain index, code
  verdicts, compiled-code caches.

Writing a block. `store.begin_block()` returns a `BlockWriter`: a thread-safe overlay
that the block processor (many threads) writes blobs into and the node adds KV puts
and deletes to. `commit()` writes all of it in ONE LMDB write transaction (fsync'd
when `sync=True`), so after a crash the store holds either the previous block or the
new one, never part of it; `abort()` (or leaving the `with` block without committing)
drops it. The meta page is not fsync'd on its own (LMDB's NOMETASYNC): an OS crash or
power loss can undo the last commit, never corrupt the store — the node then processes
that block again, deterministically, and a sequencer catches up from its peers before
signing again (validator/native.py `recover`). Reads through the writer see its own pending writes first.

Reorgs. Each processed block leaves a `BlockRecord` pointing at its state snapshot.
`set_head(hash)` moves the head to any stored block (rolling back is a pointer change
plus a canonical-index fix-up); `prune_blocks(keep)` deletes records older than the
last `keep` blocks. CAS blobs are never deleted (no garbage collection yet), so every
retained record's state stays readable.

Invariants:
- Every CAS value hashes to its key (`verify()` re-checks all of them).
- The head record, its snapshot root and its result blob are in the store.
- `c/<n>` entries exist exactly for the canonical blocks numbered ≤ the head's number
  (minus what was pruned).
- One writable `Store` per directory at a time (an exclusive lock file enforces it
  across processes and within one).
- The schema version is written at creation; any other version refuses to open.

When modifying this part: changing what a key or record means is a schema change —
bump `SCHEMA_VERSION` (old stores then refuse to open with a clear message). All
blocking calls (notably `commit()`, which fsyncs) belong in `trio.to_thread.run_sync`
when called from async code.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import lmdb
from gexe.runtime import blake2b256

from . import namespaces as ns
from .records import ZERO_HASH, BlockRecord, CodeVerdict, RecordError, SeqRecord
from .snapshot import SnapshotError, snapshot_children

SCHEMA_VERSION = 1
DEFAULT_MAP_SIZE = 64 << 30  # virtual reservation; the file grows with the data (sparse)
MAX_DBS = 4
LOCK_FILE = "gexe-store.lock"


class StoreError(Exception):
    """A store problem reported as one line: what, where, what to do."""


class SchemaMismatch(StoreError):
    pass


class StoreLocked(StoreError):
    pass


class StoreCorrupt(StoreError):
    pass


@dataclass(frozen=True, slots=True)
class CommitStats:
    blobs: int  # blobs in the overlay (some may already have been stored)
    blob_bytes: int
    kv_puts: int
    kv_deletes: int


@dataclass(frozen=True, slots=True)
class VerifyReport:
    blobs: int
    blob_bytes: int
    mismatched: tuple[bytes, ...]  # CAS keys whose value does not hash to them
    problems: tuple[str, ...]  # structural problems, one line each

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.problems


class _Reads:
    """Typed KV reads on top of `get(key)`; shared by `Store` and `BlockWriter`."""

    def get(self, key: bytes) -> bytes | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_meta(self, name: str) -> bytes | None:
        return self.get(ns.meta_key(name))

    def head_hash(self) -> bytes | None:
        return self.get_meta(ns.META_HEAD)

    def block(self, block_hash: bytes) -> BlockRecord | None:
        data = self.get(ns.block_key(block_hash))
        if data is None:
            return None
        try:
            return BlockRecord.decode(data)
        except RecordError as e:
            raise StoreCorrupt(
                f"block record 0x{block_hash.hex()}: {e}; run verify and "
                "restore the data directory from a backup"
            ) from None

    def head(self) -> BlockRecord | None:
        h = self.head_hash()
        return None if h is None else self.block(h)

    def block_by_number(self, number: int) -> BlockRecord | None:
        """The canonical block at `number` (ancestor of the head), if retained."""
        h = self.get(ns.canon_key(number))
        return None if h is None else self.block(h)

    def code_verdict(self, code_id: bytes) -> CodeVerdict | None:
        data = self.get(ns.code_verdict_key(code_id))
        if data is None:
            return None
        try:
            return CodeVerdict.decode(data)
        except RecordError as e:
            raise StoreCorrupt(f"code verdict 0x{code_id.hex()}: {e}") from None

    def committed_batch(self, batch_hash: bytes) -> tuple[bytes, int] | None:
        """(block hash, block number) a committed batch ends at, if recorded."""
        data = self.get(ns.committed_batch_key(batch_hash))
        if data is None:
            return None
        if len(data) != 40:
            raise StoreCorrupt(f"committed-batch record 0x{batch_hash.hex()} is corrupt")
        return data[:32], int.from_bytes(data[32:], "big")

    def compiled(self, tag: str, code_id: bytes) -> bytes | None:
        return self.get(ns.compiled_key(tag, code_id))

    # -- the native path's sequencer blocks

    def seq_block(self, seq_hash: bytes) -> SeqRecord | None:
        data = self.get(ns.seq_block_key(seq_hash))
        if data is None:
            return None
        try:
            return SeqRecord.decode(data)
        except RecordError as e:
            raise StoreCorrupt(f"sequencer-block record 0x{seq_hash.hex()}: {e}") from None

    def seq_tip(self, block_hash: bytes) -> SeqRecord | None:
        """The last sequencer block run at or before Ethereum block `block_hash`."""
        h = self.get(ns.seq_tip_key(block_hash))
        return None if h is None else self.seq_block(h)

    def seq_at_height(self, height: int) -> SeqRecord | None:
        h = self.get(ns.seq_height_key(height))
        return None if h is None else self.seq_block(h)

    def included_in(self, tx_hash: bytes) -> bytes | None:
        """The sequencer block that carried `tx_hash` (on some branch; check it)."""
        return self.get(ns.included_key(tx_hash))


class Store(_Reads):
    """An open LMDB store directory. Thread-safe for reads; writes go through
    `begin_block()` (or the small one-transaction conveniences below)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        readonly: bool = False,
        sync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock_fd: int | None = None
        if not readonly:
            self._prepare_dir()
        elif not (self.path / "data.mdb").is_file():
            raise StoreError(f"{self.path}: no store here; check the data directory")
        try:
            self._env = lmdb.open(
                str(self.path),
                map_size=map_size,
                max_dbs=MAX_DBS,
                subdir=True,
                readonly=readonly,
                create=not readonly,
                writemap=False,
                sync=sync,
                # one fsync per commit instead of two (11 -> 6 ms here); LMDB stays
                # consistent, and an OS crash can undo only the last commit: a block
                # the node then processes again (see "Writing a block")
                metasync=False,
                lock=True,
                mode=0o600,
                max_readers=256,
            )
        except lmdb.Error as e:
            self._release_lock()
            raise StoreError(
                f"{self.path}: cannot open the LMDB store: {e}; check the path and its permissions"
            ) from None
        try:
            self._open_dbs()
            self._check_schema()
        except BaseException:
            self.close()
            raise

    # -- opening

    def _prepare_dir(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreError(
                f"{self.path}: cannot create the store directory: "
                f"{e.strerror}; check the path and its permissions"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(
                f"{self.path}: the store is already open for writing by another "
                "process (or this one); stop it or use another data "
                "directory"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _open_dbs(self) -> None:
        try:
            self._cas = self._env.open_db(b"cas", create=not self.readonly)
            self._kv = self._env.open_db(b"kv", create=not self.readonly)
        except lmdb.NotFoundError:
            raise StoreError(
                f"{self.path}: not a gexe store (no cas/kv databases); check the data directory"
            ) from None

    def _check_schema(self) -> None:
        found = self.get_meta(ns.META_SCHEMA)
        if found is None:
            with self._env.begin() as txn:
                foreign = any(k not in (b"cas", b"kv") for k in txn.cursor().iternext(values=False))
                empty = txn.stat(self._cas)["entries"] == 0 and txn.stat(self._kv)["entries"] == 0
            if foreign or not empty or self.readonly:
                raise StoreError(
                    f"{self.path}: not a gexe store (no schema version); use an "
                    "empty or gexe-created data directory"
                )
            with self._env.begin(write=True, db=self._kv) as txn:
                txn.put(ns.meta_key(ns.META_SCHEMA), str(SCHEMA_VERSION).encode())
            return
        try:
            version = int(found)
        except ValueError:
            version = -1
        if version != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{self.path}: store schema version {found.decode(errors='replace')}, but this "
                f"gexe uses version {SCHEMA_VERSION}; point the node at a fresh data directory "
                "or run the gexe version that created it (nothing was changed)"
            )

    def close(self) -> None:
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()
            self._env = None  # type: ignore[assignment]
        self._release_lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- content-addressed half (runtime Storage protocol)

    def read(self, key: bytes) -> bytes | None:
        with self._env.begin(db=self._cas) as txn:
            return txn.get(key)

    def contains(self, key: bytes) -> bool:
        return self.read(key) is not None

    def write(self, data: bytes) -> bytes:
        """Store one blob in its own transaction. Not for the block path (use a
        `BlockWriter`); handy for tools and tests."""
        key = blake2b256(data)
        self._write_txn(lambda txn: txn.put(key, bytes(data), db=self._cas, overwrite=False))
        return key

    # -- key-value half

    def get(self, key: bytes) -> bytes | None:
        with self._env.begin(db=self._kv) as txn:
            return txn.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """KV entries whose key starts with `prefix`, in key order (one read txn)."""
        with self._env.begin(db=self._kv) as txn:
            cur = txn.cursor()
            if not cur.set_range(prefix):
                return
            for k, v in cur:
                if not k.startswith(prefix):
                    break
                yield k, v

    def blocks_at(self, number: int) -> list[BlockRecord]:
        """Every retained block at `number`, forks included."""
        out = []
        for k, _ in list(self.scan(ns.block_index_prefix(number))):
            rec = self.block(ns.split_block_index_key(k)[1])
            if rec is not None:
                out.append(rec)
        return out

    def put_meta(self, name: str, value: bytes) -> None:
        """Set one metadata entry in its own transaction."""
        with self.begin_block() as w:
            w.put_meta(name, value)
            w.commit()

    # -- blocks

    def begin_block(self) -> BlockWriter:
        if self.readonly:
            raise StoreError(f"{self.path}: the store is open read-only")
        return BlockWriter(self)

    def set_head(self, block_hash: bytes) -> None:
        """Move the head to a stored block (rollback or fast-forward) in one transaction."""
        with self.begin_block() as w:
            w.set_head(block_hash)
            w.commit()

    rollback_to = set_head

    def prune_blocks(self, keep: int) -> int:
        """Delete block records numbered below `head.number - keep + 1` (forks included)
        and their canonical-index entries; return how many records went. The head and
        the `keep - 1` blocks before it stay, so a reorg up to that depth is a pointer
        change. Blobs stay (no garbage collection yet)."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        head = self.head()
        if head is None:
            return 0
        cutoff = head.number - keep + 1
        if cutoff <= 0:
            return 0
        limit = ns.block_index_prefix(cutoff)

        def prune(txn: lmdb.Transaction) -> int:
            cur = txn.cursor(db=self._kv)
            victims = []
            if cur.set_range(ns.BLOCK_INDEX):
                for k in cur.iternext(values=False):
                    if not k.startswith(ns.BLOCK_INDEX) or k >= limit:
                        break
                    victims.append(k)
            for k in victims:
                number, h = ns.split_block_index_key(k)
                txn.delete(k, db=self._kv)
                txn.delete(ns.block_key(h), db=self._kv)
                txn.delete(ns.canon_key(number), db=self._kv)
                txn.delete(ns.seq_tip_key(h), db=self._kv)
            self._prune_seq(txn, cur, cutoff, txn.get(ns.seq_tip_key(head.hash), db=self._kv))
            return len(victims)

        return self._write_txn(prune)

    def _prune_seq(
        self, txn: lmdb.Transaction, cur: lmdb.Cursor, cutoff: int, keep: bytes | None
    ) -> None:
        """Sequencer blocks anchored below `cutoff` go with their blocks, and so do the
        transaction index entries pointing at them (a transaction expires 32 blocks
        after its reference block, long before `keep_blocks` runs out)."""
        gone: set[bytes] = set()
        if cur.set_range(ns.SEQ_BLOCK):
            for k, v in cur:
                if not k.startswith(ns.SEQ_BLOCK):
                    break
                rec = SeqRecord.decode(v)
                if rec.anchor_number < cutoff and rec.hash != keep:  # the tip stays
                    gone.add(rec.hash)
        if not gone:
            return
        for key in [ns.seq_block_key(h) for h in gone]:
            data = txn.get(key, db=self._kv)
            rec = SeqRecord.decode(data)
            txn.delete(key, db=self._kv)
            hk = ns.seq_height_key(rec.height)
            if txn.get(hk, db=self._kv) == rec.hash:
                txn.delete(hk, db=self._kv)
        stale = []
        if cur.set_range(ns.INCLUDED):
            for k, v in cur:
                if not k.startswith(ns.INCLUDED):
                    break
                if v in gone:
                    stale.append(k)
        for k in stale:
            txn.delete(k, db=self._kv)

    # -- integrity

    def verify(self) -> VerifyReport:
        """Re-hash every CAS entry and check the KV half's pointers (one read txn)."""
        mismatched: list[bytes] = []
        problems: list[str] = []
        blobs = size = 0
        with self._env.begin() as txn:
            for k, v in txn.cursor(db=self._cas):
                blobs += 1
                size += len(v)
                if len(k) != 32 or blake2b256(v) != k:
                    mismatched.append(bytes(k))

            def blob(key: bytes) -> bytes | None:
                return txn.get(key, db=self._cas)

            kv = txn.cursor(db=self._kv)
            records: dict[bytes, BlockRecord] = {}
            if kv.set_range(ns.BLOCK):
                for k, v in kv:
                    if not k.startswith(ns.BLOCK):
                        break
                    try:
                        rec = BlockRecord.decode(v)
                    except RecordError as e:
                        problems.append(f"block record {k[2:].hex()}: {e}")
                        continue
                    if rec.hash != k[2:]:
                        problems.append(f"block record {k[2:].hex()} holds block {rec.hash.hex()}")
                    records[rec.hash] = rec
                    problems.extend(self._check_record(rec, blob))
            head = txn.get(ns.meta_key(ns.META_HEAD), db=self._kv)
            if head is not None and head not in records:
                problems.append(f"head {head.hex()} has no block record")
            if kv.set_range(ns.CANON):
                for k, v in kv:
                    if not k.startswith(ns.CANON):
                        break
                    number = int.from_bytes(k[2:], "big")
                    rec = records.get(v)
                    if rec is None or rec.number != number:
                        problems.append(
                            f"canonical block {number} -> {v.hex()} has no matching record"
                        )
            if kv.set_range(ns.BLOCK_INDEX):
                for k in kv.iternext(values=False):
                    if not k.startswith(ns.BLOCK_INDEX):
                        break
                    number, h = ns.split_block_index_key(k)
                    if h not in records:
                        problems.append(f"block index {number}/{h.hex()} has no record")
            if kv.set_range(ns.SEQ_BLOCK):
                for k, v in kv:
                    if not k.startswith(ns.SEQ_BLOCK):
                        break
                    try:
                        seq = SeqRecord.decode(v)
                    except RecordError as e:
                        problems.append(f"sequencer-block record {k[2:].hex()}: {e}")
                        continue
                    if seq.hash != k[2:]:
                        problems.append(f"sequencer-block record {k[2:].hex()} holds another")
                    for what in ("state_root", "result", "block"):
                        if blob(getattr(seq, what)) is None:
                            problems.append(f"sequencer block {seq.height}: {what} blob missing")
        return VerifyReport(blobs, size, tuple(mismatched), tuple(problems))

    @staticmethod
    def _check_record(rec: BlockRecord, blob) -> list[str]:  # type: ignore[no-untyped-def]
        out = []
        root = blob(rec.state_root)
        if root is None:
            out.append(f"block {rec.number} {rec.hash.hex()}: state root missing")
        else:
            try:
                missing = [c for c in snapshot_children(bytes(root)) if blob(c) is None]
            except SnapshotError as e:
                out.append(f"block {rec.number} {rec.hash.hex()}: state root: {e}")
            else:
                if missing:
                    out.append(
                        f"block {rec.number} {rec.hash.hex()}: {len(missing)} snapshot "
                        "buckets missing"
                    )
        if rec.result != ZERO_HASH and blob(rec.result) is None:
            out.append(f"block {rec.number} {rec.hash.hex()}: result blob missing")
        return out

    def stats(self) -> dict[str, int]:
        with self._env.begin() as txn:
            return {
                "blobs": txn.stat(self._cas)["entries"],
                "kv_entries": txn.stat(self._kv)["entries"],
                "map_size": self._env.info()["map_size"],
                "used_bytes": (self._env.info()["last_pgno"] + 1) * self._env.stat()["psize"],
            }

    # -- internals

    def _write_txn(self, fn):  # type: ignore[no-untyped-def]
        if self.readonly:
            raise StoreError(f"{self.path}: the store is open read-only")
        try:
            with self._env.begin(write=True) as txn:
                return fn(txn)
        except lmdb.MapFullError:
            raise StoreError(
                f"{self.path}: the store is full (map size "
                f"{self._env.info()['map_size']:,} bytes); raise the map size in "
                "the node config and restart — nothing was written"
            ) from None


@dataclass(eq=False)
class BlockWriter(_Reads):
    """Pending writes of one block; implements the runtime `Storage` protocol.

    Thread-safe: many threads may `write()`/`read()` at once. `commit()` must be called
    once the writers are done; writes after `commit()`/`abort()` raise `StoreError`.
    """

    store: Store
    _blobs: dict[bytes, bytes] = field(default_factory=dict, repr=False)
    _kv: dict[bytes, bytes | None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _state: str = "open"  # open | committing | committed | aborted | failed

    # -- Storage protocol

    def read(self, key: bytes) -> bytes | None:
        data = self._blobs.get(key)
        return data if data is not None else self.store.read(key)

    def contains(self, key: bytes) -> bool:
        return self.read(key) is not None

    def write(self, data: bytes) -> bytes:
        key = blake2b256(data)
        if key not in self._blobs:
            with self._lock:
                self._check_open()
                self._blobs.setdefault(key, bytes(data))
        return key

    # -- KV

    def get(self, key: bytes) -> bytes | None:
        if key in self._kv:
            return self._kv[key]
        return self.store.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._check_open()
            self._kv[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        with self._lock:
            self._check_open()
            self._kv[bytes(key)] = None

    def put_meta(self, name: str, value: bytes) -> None:
        if name == ns.META_SCHEMA:
            raise ValueError("the schema version is written by the store itself")
        self.put(ns.meta_key(name), value)

    def put_code_verdict(self, code_id: bytes, verdict: CodeVerdict) -> None:
        self.put(ns.code_verdict_key(code_id), verdict.encode())

    def put_committed_batch(self, batch_hash: bytes, block_hash: bytes, number: int) -> None:
        if len(block_hash) != 32 or not 0 <= number < 1 << 64:
            raise ValueError("a committed batch ends at a 32-byte block hash and a u64 number")
        self.put(ns.committed_batch_key(batch_hash), bytes(block_hash) + number.to_bytes(8, "big"))

    def put_compiled(self, tag: str, code_id: bytes, data: bytes) -> None:
        self.put(ns.compiled_key(tag, code_id), data)

    def put_seq(self, record: SeqRecord, tx_hashes: list[bytes]) -> None:
        """Record an executed sequencer block: its record, its height on our chain, the
        transactions it carried, and the new sequencer tip of its anchor."""
        for key in (record.state_root, record.result, record.block):
            if not self.contains(key):
                raise StoreError(f"sequencer block {record.height}: 0x{key.hex()} is not stored")
        self.put(ns.seq_block_key(record.hash), record.encode())
        self.put(ns.seq_height_key(record.height), record.hash)
        self.put(ns.seq_tip_key(record.anchor), record.hash)
        for t in tx_hashes:
            self.put(ns.included_key(t), record.hash)

    def put_seq_tip(self, block_hash: bytes, seq_hash: bytes) -> None:
        self.put(ns.seq_tip_key(block_hash), seq_hash)

    def put_block(self, record: BlockRecord) -> None:
        """Add a block record (by hash and in the number index). Its snapshot root and
        result blob must be in this writer or the store. Does not move the head."""
        if not self.contains(record.state_root):
            raise StoreError(
                f"block {record.number}: state root {record.state_root.hex()} "
                "is not stored; write the snapshot before the record"
            )
        if record.result != ZERO_HASH and not self.contains(record.result):
            raise StoreError(
                f"block {record.number}: result {record.result.hex()} is not "
                "stored; write the result before the record"
            )
        self.put(ns.block_key(record.hash), record.encode())
        self.put(ns.block_index_key(record.number, record.hash), b"")

    def set_head(self, block_hash: bytes) -> BlockRecord:
        """Make a stored block (or one put in this writer) the head; fix the canonical
        index: entries above it are removed, its ancestors are marked canonical down to
        the first one that already was. Returns the new head's record."""
        rec = self.block(block_hash)
        if rec is None:
            raise StoreError(
                f"cannot set the head to block 0x{block_hash.hex()}: no such "
                "block record (pruned, or never stored)"
            )
        old = self.head()
        if old is not None:
            for n in range(rec.number + 1, old.number + 1):
                self.delete(ns.canon_key(n))
        cur: BlockRecord | None = rec
        while cur is not None and self.get(ns.canon_key(cur.number)) != cur.hash:
            self.put(ns.canon_key(cur.number), cur.hash)
            cur = self.block(cur.parent_hash) if cur.number > 0 else None
        self.put(ns.meta_key(ns.META_HEAD), rec.hash)
        return rec

    # -- finishing

    def commit(self) -> CommitStats:
        """Write everything in one LMDB write transaction (durable when the store syncs)."""
        with self._lock:
            self._check_open()
            self._state = "committing"
        try:
            self.store._write_txn(self._apply)
        except BaseException:
            self._state = "failed"
            raise
        self._state = "committed"
        stats = CommitStats(
            len(self._blobs),
            sum(map(len, self._blobs.values())),
            sum(v is not None for v in self._kv.values()),
            sum(v is None for v in self._kv.values()),
        )
        self._blobs = {}
        self._kv = {}
        return stats

    def _apply(self, txn: lmdb.Transaction) -> None:
        cas = txn.cursor(db=self.store._cas)
        cas.putmulti(sorted(self._blobs.items()), overwrite=False)
        for k, v in sorted(self._kv.items()):
            if v is None:
                txn.delete(k, db=self.store._kv)
            else:
                txn.put(k, v, db=self.store._kv)

    def abort(self) -> None:
        with self._lock:
            if self._state in ("open", "failed"):
                self._state = "aborted"
            self._blobs = {}
            self._kv = {}

    @property
    def state(self) -> str:
        return self._state

    def __len__(self) -> int:
        return len(self._blobs)

    def _check_open(self) -> None:
        if self._state != "open":
            raise StoreError(
                f"this block writer is {self._state}; start a new one with store.begin_block()"
            )

    def __enter__(self) -> BlockWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._state == "open":
            self.abort()

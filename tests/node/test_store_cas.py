"""The LMDB store: content-addressed half, BlockWriter overlay, schema and integrity checks."""

from __future__ import annotations

import hashlib
import threading

import lmdb
import pytest
from gexe.node import namespaces as ns
from gexe.node.records import CodeVerdict
from gexe.node.store import (
    SCHEMA_VERSION,
    SchemaMismatch,
    Store,
    StoreError,
    StoreLocked,
)
from gexe.runtime import Storage


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db")
    yield s
    s.close()


def test_cas_round_trip_and_key_is_blake2b_256(store):
    data = b"hello gexe" * 10
    key = store.write(data)
    assert key == hashlib.blake2b(data, digest_size=32).digest()
    assert store.read(key) == data
    assert store.write(data) == key  # idempotent
    assert store.read(b"\x00" * 32) is None
    assert isinstance(store, Storage)


def test_block_writer_is_storage_and_reads_its_own_writes(store):
    base = store.write(b"already stored")
    with store.begin_block() as w:
        assert isinstance(w, Storage)
        k = w.write(b"pending")
        assert w.read(k) == b"pending"
        assert w.read(base) == b"already stored"
        assert store.read(k) is None  # not visible before commit
        w.put_meta("observer_block", b"42")
        assert w.get_meta("observer_block") == b"42"
        assert store.get_meta("observer_block") is None
        w.commit()
    assert store.read(k) == b"pending"
    assert store.get_meta("observer_block") == b"42"


def test_commit_makes_everything_visible_at_once(store):
    """A reader's snapshot taken before the commit sees none of it; after, all of it."""
    w = store.begin_block()
    keys = [w.write(b"blob %d" % i) for i in range(500)]
    w.put_code_verdict(b"\x07" * 32, CodeVerdict(False, "memory.grow"))
    env = store._env
    before = env.begin(db=store._cas)
    try:
        w.commit()
        assert all(before.get(k) is None for k in keys)
    finally:
        before.abort()
    assert all(store.read(k) is not None for k in keys)
    assert store.code_verdict(b"\x07" * 32) == CodeVerdict(False, "memory.grow")


def test_abort_and_closed_writers(store):
    w = store.begin_block()
    k = w.write(b"dropped")
    w.abort()
    assert store.read(k) is None
    with pytest.raises(StoreError, match="aborted"):
        w.write(b"late")
    with store.begin_block() as w2:
        k2 = w2.write(b"left without commit")
    assert w2.state == "aborted"
    assert store.read(k2) is None
    w3 = store.begin_block()
    w3.commit()
    with pytest.raises(StoreError, match="committed"):
        w3.put_meta("x", b"1")


def test_kv_delete_is_seen_through_the_overlay(store):
    store.put_meta("thing", b"v")
    with store.begin_block() as w:
        w.delete(ns.meta_key("thing"))
        assert w.get_meta("thing") is None
        assert store.get_meta("thing") == b"v"
        w.commit()
    assert store.get_meta("thing") is None


def test_concurrent_writes_from_threads(store):
    w = store.begin_block()
    n_threads, per_thread = 8, 400
    barrier = threading.Barrier(n_threads)
    keys: list[list[bytes]] = [[] for _ in range(n_threads)]

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            # half the blobs are shared between threads: duplicates must collapse
            data = b"shared %d" % i if i % 2 else b"thread %d blob %d" % (t, i)
            keys[t].append(w.write(data))
            assert w.read(keys[t][-1]) == data

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stats = w.commit()
    expected = n_threads * per_thread // 2 + per_thread // 2
    assert stats.blobs == expected
    assert store.stats()["blobs"] == expected
    assert all(store.read(k) is not None for ks in keys for k in ks)
    assert store.verify().ok


def test_verify_reports_a_corrupted_blob(store):
    good = store.write(b"good")
    bad = store.write(b"original")
    assert store.verify().ok
    with store._env.begin(write=True, db=store._cas) as txn:  # simulate bit rot
        txn.put(bad, b"tampered")
    report = store.verify()
    assert not report.ok
    assert report.mismatched == (bad,)
    assert good not in report.mismatched


def test_schema_version_is_written_and_checked(tmp_path):
    path = tmp_path / "db"
    Store(path).close()
    env = lmdb.open(str(path), max_dbs=4)
    kv = env.open_db(b"kv")
    with env.begin(write=True, db=kv) as txn:
        assert txn.get(ns.meta_key(ns.META_SCHEMA)) == str(SCHEMA_VERSION).encode()
        txn.put(ns.meta_key(ns.META_SCHEMA), b"999")
    env.close()
    with pytest.raises(SchemaMismatch) as e:
        Store(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(path) in msg and "999" in msg and str(SCHEMA_VERSION) in msg
    assert "fresh data directory" in msg
    with pytest.raises(SchemaMismatch):
        Store(path, readonly=True)


def test_foreign_lmdb_is_refused(tmp_path):
    path = tmp_path / "other"
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"someone", b"else")
    env.close()
    with pytest.raises(StoreError, match="not a gexe store"):
        Store(path)


def test_one_writer_per_directory(tmp_path):
    with Store(tmp_path / "db"):
        with pytest.raises(StoreLocked, match="already open"):
            Store(tmp_path / "db")
    Store(tmp_path / "db").close()  # released on close


def test_readonly_store_reads_but_refuses_writes(tmp_path):
    with Store(tmp_path / "db") as s:
        k = s.write(b"x")
    with Store(tmp_path / "db", readonly=True) as r:
        assert r.read(k) == b"x"
        with pytest.raises(StoreError, match="read-only"):
            r.begin_block()
    with pytest.raises(StoreError, match="no store here"):
        Store(tmp_path / "nothing", readonly=True)


def test_map_full_is_a_clear_error_and_keeps_the_store(tmp_path):
    with Store(tmp_path / "db", map_size=1 << 20) as s:
        k = s.write(b"kept")
        w = s.begin_block()
        for i in range(40):
            w.write(i.to_bytes(4, "big") * 16384)  # 64 KiB each, 2.5 MiB total
        with pytest.raises(StoreError, match="store is full"):
            w.commit()
        assert s.read(k) == b"kept"
        assert s.verify().ok

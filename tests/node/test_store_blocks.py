"""Block records, the head, the canonical index, reorg rollback and pruning."""

from __future__ import annotations

import pytest
from gexe.node.records import BlockRecord, CodeVerdict, RecordError
from gexe.node.snapshot import load_runtime_state
from gexe.node.store import Store, StoreError
from node_store_helpers import block_hash, block_state, write_block


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db")
    yield s
    s.close()


def chain(store: Store, numbers, fork: bytes = b"", parent_fork: bytes | None = None) -> None:
    first = True
    for n in numbers:
        with store.begin_block() as w:
            write_block(w, n, fork=fork, parent_fork=parent_fork if first else None)
            w.commit()
        first = False


def canonical(store: Store, upto: int) -> list[bytes | None]:
    return [(r.hash if (r := store.block_by_number(n)) else None) for n in range(1, upto + 1)]


def test_records_round_trip():
    rec = BlockRecord(b"\x01" * 32, 7, b"\x02" * 32, 99, b"\x03" * 32, b"\x04" * 32)
    assert BlockRecord.decode(rec.encode()) == rec
    assert CodeVerdict.decode(CodeVerdict(False, "bad ✗").encode()) == CodeVerdict(False, "bad ✗")
    with pytest.raises(RecordError):
        BlockRecord.decode(rec.encode()[:-1])
    with pytest.raises(ValueError):
        BlockRecord(b"\x01", 1, b"\x02" * 32, 0, b"\x03" * 32)


def test_head_and_blocks_by_hash_and_number(store):
    assert store.head() is None
    chain(store, range(1, 6))
    head = store.head()
    assert head is not None and head.number == 5 and head.hash == block_hash(5)
    assert canonical(store, 5) == [block_hash(n) for n in range(1, 6)]
    assert store.block(block_hash(3)).parent_hash == block_hash(2)
    assert load_runtime_state(store, head.state_root) == block_state(5)
    assert store.verify().ok


def test_put_block_requires_its_snapshot(store):
    rec = BlockRecord(b"\x01" * 32, 1, bytes(32), 0, b"\x09" * 32)
    with store.begin_block() as w, pytest.raises(StoreError, match="state root"):
        w.put_block(rec)
    with pytest.raises(StoreError, match="no such block"):
        store.set_head(b"\x05" * 32)


def test_reorg_is_a_pointer_change(store):
    chain(store, range(1, 6))  # 1-2-3-4-5
    chain(store, [4, 5, 6], fork=b"B", parent_fork=b"")  # 3-4B-5B-6B, not yet head
    store.set_head(block_hash(5))  # writing fork blocks moved the head; go back first
    assert store.head().hash == block_hash(5)

    store.rollback_to(block_hash(3))  # reorg: back to the common ancestor
    assert store.head().number == 3
    assert canonical(store, 5) == [block_hash(1), block_hash(2), block_hash(3), None, None]
    assert load_runtime_state(store, store.head().state_root) == block_state(3)

    store.set_head(block_hash(6, b"B"))  # fast-forward along fork B
    assert canonical(store, 6) == [
        block_hash(1),
        block_hash(2),
        block_hash(3),
        block_hash(4, b"B"),
        block_hash(5, b"B"),
        block_hash(6, b"B"),
    ]
    assert [r.hash for r in store.blocks_at(4)] == sorted([block_hash(4), block_hash(4, b"B")])

    store.set_head(block_hash(5))  # and back to the first fork, in one step
    assert canonical(store, 6) == [block_hash(n) for n in range(1, 6)] + [None]
    assert load_runtime_state(store, store.head().state_root) == block_state(5)
    assert store.verify().ok


def test_prune_keeps_the_last_n_blocks(store):
    chain(store, range(1, 11))
    chain(store, [3, 4], fork=b"old", parent_fork=b"")
    store.set_head(block_hash(10))
    assert store.prune_blocks(keep=4) == 6 + 2  # blocks 1..6 and the two fork blocks
    assert store.head().number == 10
    assert canonical(store, 10) == [None] * 6 + [block_hash(n) for n in range(7, 11)]
    assert store.block(block_hash(4, b"old")) is None
    store.rollback_to(block_hash(7))  # still possible within the kept window
    assert load_runtime_state(store, store.head().state_root) == block_state(7)
    with pytest.raises(StoreError, match="pruned"):
        store.rollback_to(block_hash(6))
    assert store.prune_blocks(keep=100) == 0
    assert store.verify().ok


def test_block_writer_sees_its_own_block_records(store):
    chain(store, [1])
    with store.begin_block() as w:
        rec = write_block(w, 2)
        assert w.head() == rec and store.head().number == 1
        assert w.block_by_number(2) == rec
        w.commit()
    assert store.head() == rec

"""Runtime-state snapshots: round trips, incremental == full, cost proportional to change."""

from __future__ import annotations

import random

import pytest
from gexe.node.snapshot import (
    SnapshotError,
    load_runtime_state,
    program_state_hash,
    store_runtime_state,
)
from gexe.runtime import MemoryStorage, RuntimeState


def pid(i: int) -> bytes:
    return bytes(12) + i.to_bytes(20, "big")


def h(i: int, v: int = 0) -> bytes:
    return (i * 1000 + v).to_bytes(32, "big")


def test_round_trip_and_lookup():
    st = MemoryStorage()
    state = RuntimeState(
        {pid(i): h(i) for i in range(1000)}, frozenset([pid(3), pid(1)]), {pid(5): 17, pid(2): 9}
    )
    root = store_runtime_state(st, state)
    assert load_runtime_state(st, root) == state
    assert program_state_hash(st, root, pid(777)) == h(777)
    assert program_state_hash(st, root, pid(5000)) is None
    empty = store_runtime_state(st, RuntimeState())
    assert load_runtime_state(st, empty) == RuntimeState()


def test_incremental_equals_full_and_touches_few_blobs():
    rng = random.Random(7)
    st = MemoryStorage()
    programs = {pid(i): h(i) for i in range(10_000)}
    root = store_runtime_state(st, RuntimeState(programs))
    for step in range(5):
        changed = rng.sample(sorted(programs), 10) + [pid(20_000 + step)]  # 10 updates, 1 new
        programs = dict(programs)
        for p in changed:
            programs[p] = h(int.from_bytes(p, "big"), step + 1)
        state = RuntimeState(programs, frozenset(changed[:2]), {changed[0]: step})
        before = len(st)
        inc = store_runtime_state(st, state, previous=root, changed=changed)
        assert len(st) - before <= len(changed) + 1  # changed buckets + the root
        assert inc == store_runtime_state(MemoryStorage(), state)  # canonical
        assert load_runtime_state(st, inc) == state
        root = inc


def test_garbage_is_rejected():
    st = MemoryStorage()
    with pytest.raises(SnapshotError):
        load_runtime_state(st, st.write(b"GXS1\x00"))
    with pytest.raises(SnapshotError):
        load_runtime_state(st, st.write(b"not a snapshot"))

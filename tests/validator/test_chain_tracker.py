"""The sans-IO chain tracker: apply in order, confirmations, reorgs, restart, depth limit."""

from __future__ import annotations

import hashlib

import pytest
from gexe.validator.chain import Apply, ChainTracker, Header, ReorgTooDeep, Revert


def chain(n: int, fork: str = "a", base: Header | None = None, start: int = 0) -> list[Header]:
    out: list[Header] = []
    parent = base.hash if base else bytes(32)
    first = base.number + 1 if base else start
    for i in range(first, first + n):
        h = hashlib.sha256(f"{fork}{i}".encode()).digest()
        out.append(Header(i, h, parent, 1000 + i))
        parent = h
    return out


def drive(t: ChainTracker, canon: list[Header], limit: int = 1000) -> list[object]:
    """Feed what the tracker wants from the canonical chain `canon` until idle."""
    by_n = {h.number: h for h in canon}
    head = canon[-1].number
    out: list[object] = []
    for _ in range(limit):
        n = t.want(head)
        if n is None:
            return out
        d = t.feed(by_n[n])
        if d is not None:
            out.append(d)
    raise AssertionError("tracker did not settle")


def test_applies_every_block_in_order() -> None:
    c = chain(10)
    t = ChainTracker(start=0)
    ds = drive(t, c)
    assert [d.header.number for d in ds] == list(range(10))  # type: ignore[attr-defined]
    assert t.tip == c[-1]


def test_confirmations_hold_back_the_head() -> None:
    c = chain(10)
    t = ChainTracker(start=0, confirmations=3)
    ds = drive(t, c)
    assert len(ds) == 7 and t.tip == c[6]
    assert t.want(9) is None and t.want(10) == 7


def test_start_block_and_restart_from_applied() -> None:
    c = chain(10, start=5)
    t = ChainTracker(start=5)
    drive(t, c[:4])
    t2 = ChainTracker(start=5, applied=c[:4])
    ds = drive(t2, c)
    assert [d.header.number for d in ds] == list(range(9, 15))  # type: ignore[attr-defined]


def test_reorg_reverts_to_common_ancestor_and_reapplies() -> None:
    c = chain(10)
    t = ChainTracker(start=0)
    drive(t, c)
    fork = c[:6] + chain(6, "b", base=c[5])  # diverges after block 5, longer
    ds = drive(t, fork)
    assert isinstance(ds[0], Revert) and ds[0].to == c[5] and ds[0].depth == 4
    assert all(isinstance(d, Apply) for d in ds[1:])
    assert [d.header for d in ds[1:]] == fork[6:]  # type: ignore[attr-defined]
    assert t.tip == fork[-1]


def test_same_length_reorg_seen_by_check() -> None:
    c = chain(10)
    t = ChainTracker(start=0)
    drive(t, c)
    fork = c[:8] + chain(2, "b", base=c[7])
    assert t.want(9) is None
    assert t.check(fork[9]) is None and t.searching
    ds = drive(t, fork)
    assert isinstance(ds[0], Revert) and ds[0].to == c[7]
    assert t.tip == fork[9]


def test_check_of_same_block_is_noop() -> None:
    c = chain(5)
    t = ChainTracker(start=0)
    drive(t, c)
    assert t.check(c[4]) is None and not t.searching
    assert t.check(chain(1, "x", base=c[4])[0]) is None  # above the tip: ignored


def test_reorg_deeper_than_kept_window_raises() -> None:
    c = chain(20)
    t = ChainTracker(start=0, keep=5)
    drive(t, c)
    assert min(t.applied) == 15
    fork = chain(25, "z")
    with pytest.raises(ReorgTooDeep):
        drive(t, fork)


def test_wrong_number_is_a_programming_error() -> None:
    c = chain(3)
    t = ChainTracker(start=0)
    with pytest.raises(ValueError):
        t.feed(c[1])


def test_applied_must_be_a_chain() -> None:
    c = chain(3)
    with pytest.raises(ValueError):
        ChainTracker(start=0, applied=[c[0], c[2]])


def test_gap_never_skipped_when_head_jumps() -> None:
    c = chain(50)
    t = ChainTracker(start=0)
    drive(t, c[:5])
    ds = drive(t, c)
    assert [d.header.number for d in ds] == list(range(5, 50))  # type: ignore[attr-defined]

"""Batching policy (pure): gas estimate, propose/wait/split decisions, target choice."""

from __future__ import annotations

import os

from gexe.contracts import (
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    Message,
    ReplyDetails,
    StateTransition,
)
from gexe.sequencer import policy
from gexe.sequencer.policy import Action, Limits, decide, estimate_commit_gas, pick_target
from gexe.sequencer.source import BlockRef

ACTOR = "0x" + "11" * 20
USER = "0x" + "22" * 20


def transition(n_messages: int = 1, payload: int = 32, call: bool = False, value: int = 0):
    msgs = tuple(
        Message(os.urandom(32), USER, bytes(payload), value, ReplyDetails(os.urandom(32)), call)
        for _ in range(n_messages)
    )
    return StateTransition(ACTOR, os.urandom(32), messages=msgs)


def batch(transitions=(), codes: int = 0, number: int = 10) -> BatchCommitment:
    chain = (ChainCommitment(tuple(transitions), bytes(32)),) if transitions else ()
    cc = tuple(CodeCommitment(os.urandom(32), True) for _ in range(codes))
    return BatchCommitment(os.urandom(32), number, bytes(32), chain, cc)


def test_estimate_upper_bounds_the_measured_figures():
    # contracts/README.md "Gas": 1 / 10 / 100 transitions with a 32-byte reply, 4 validators
    # cost 86,609 / 256,228 / 1,951,906 gas steady; a first commit adds ~17k per transition.
    for n, measured in ((1, 86_609), (10, 256_228), (100, 1_951_906)):
        est = estimate_commit_gas(batch([transition() for _ in range(n)]), 4)
        assert est >= measured + 17_100 * n, (n, est)
        assert est <= 3 * (measured + 17_100 * n), (n, est)  # conservative, not absurd
    # 16 validators: 153,352 for one transition
    assert estimate_commit_gas(batch([transition()]), 16) >= 153_352 + 17_100


def test_estimate_grows_with_shape():
    one = estimate_commit_gas(batch([transition()]), 4)
    assert estimate_commit_gas(batch([transition()]), 5) >= one + 5_557
    assert estimate_commit_gas(batch([transition(payload=1000)]), 4) >= one + 968 * 16
    callback = estimate_commit_gas(batch([transition(call=True)]), 4)
    assert callback - one >= 500_000 * 64 // 63 + 40_000
    assert estimate_commit_gas(batch([transition(value=1)]), 4) > one
    assert estimate_commit_gas(batch(codes=3), 4) > estimate_commit_gas(batch(codes=2), 4)


def test_estimate_respects_calldata_floor():
    big = batch([transition(payload=100_000)])
    calldata = len(policy.commit_calldata(big, [b"\x01" * 65] * 4))
    assert estimate_commit_gas(big, 4) >= 21_000 + 40 * calldata


def limits(latency: float = 2.0, transitions: int = 10, cap: int = policy.GAS_CAP) -> Limits:
    return Limits(max_batch_latency=latency, max_batch_transitions=transitions, gas_cap=cap)


def test_decide_nothing_wait_propose():
    empty = batch()
    assert decide(empty, first_seen=0, now=5, limits=limits(), n_signatures=4).action is (
        Action.NOTHING
    )
    assert decide(None, first_seen=None, now=5, limits=limits(), n_signatures=4).action is (
        Action.NOTHING
    )
    b = batch([transition()])
    d = decide(b, first_seen=10.0, now=10.5, limits=limits(2.0), n_signatures=4)
    assert d.action is Action.WAIT and abs(d.wait - 1.5) < 1e-9 and d.transitions == 1
    d = decide(b, first_seen=10.0, now=12.0, limits=limits(2.0), n_signatures=4)
    assert d.action is Action.PROPOSE and d.reason == "latency reached"
    # latency 0: propose as soon as there is content (codes count as content)
    d = decide(batch(codes=1), first_seen=None, now=0, limits=limits(0.0), n_signatures=4)
    assert d.action is Action.PROPOSE


def test_decide_full_and_too_big():
    ten = batch([transition() for _ in range(10)])
    d = decide(ten, first_seen=0, now=0, limits=limits(60, transitions=10), n_signatures=4)
    assert d.action is Action.PROPOSE and d.reason == "transition bound reached"
    d = decide(ten, first_seen=0, now=0, limits=limits(60, transitions=9), n_signatures=4)
    assert d.action is Action.SPLIT and "transitions" in d.reason
    gas = estimate_commit_gas(ten, 4)
    d = decide(ten, first_seen=0, now=0, limits=limits(60, 100, gas - 1), n_signatures=4)
    assert d.action is Action.SPLIT and "gas" in d.reason
    d = decide(ten, first_seen=0, now=0, limits=limits(60, 100, gas + 1), n_signatures=4)
    assert d.action is Action.PROPOSE and d.reason == "gas bound reached"


def test_pick_target_newest_that_fits():
    blocks = [BlockRef(n, bytes([n]) * 32) for n in range(1, 21)]
    built: list[int] = []

    def build(b: BlockRef) -> BatchCommitment:  # block n carries n transitions in all
        built.append(b.number)
        return batch([transition() for _ in range(b.number)], number=b.number)

    t = pick_target(blocks, build, limits=limits(transitions=7), n_signatures=4)
    assert t is not None and t.block.number == 7 and t.transitions == 7
    assert len(built) <= 6  # binary search, not a scan
    # by gas: the cap between the estimates of 4 and 5 transitions
    cap = estimate_commit_gas(build(blocks[3]), 4)
    t = pick_target(blocks, build, limits=limits(transitions=100, cap=cap), n_signatures=4)
    assert t is not None and t.block.number == 4
    # not even the first block fits
    assert pick_target(blocks, build, limits=limits(transitions=0), n_signatures=4) is None
    assert pick_target([], build, limits=limits(), n_signatures=4) is None


def test_pick_target_skips_unbuildable():
    blocks = [BlockRef(n, bytes([n]) * 32) for n in range(1, 6)]

    def build(b: BlockRef) -> BatchCommitment | None:
        return None if b.number >= 3 else batch(codes=b.number, number=b.number)

    t = pick_target(blocks, build, limits=limits(), n_signatures=4)
    assert t is not None and t.block.number == 2

"""Byzantine validators (issue #9, item 4): fewer than a third of the stake signing wrong
results, and an outsider flooding the validators' gossip topic with junk — nothing wrong
is committed, every request is still answered exactly once, the flooding peer is scored
out. (Signing twice — equivocation slashed on chain — is
`tests/validator/test_batch_network.py::test_equivocating_validator_is_slashed_on_chain`.)

Its own `FaultNet` (not the package's: the Byzantine validator stays Byzantine for the
whole module): 4 validators with equal stakes, validator 3 restarted as the test build
`GEXE_TEST_WRONG_BATCH=1` — for every batch request it signs and gossips an approval of a
*different* batch (a reply's payload, a state hash or `burned` changed) instead of the
one asked. 1/4 of the stake is Byzantine, so every commit needs all three honest ones.

- `test_wrong_results_are_never_committed`: a request stream; an outsider gossip peer
  witnesses every request and approval on the wire. Every request answered once with the
  honest result (counters exact, no reply the Byzantine build made up, every validator
  agreeing block by block); every batch the Router accepted is one each honest validator
  rebuilt and approved itself and that the sequencer requested; the sequencer counted only
  the three honest signatures; every approval validator 3 put on the wire was a wrong
  digest, none of them ever requested or committed; nobody was accused or slashed (one
  wrong digest per pair is not an equivocation).
- `test_junk_flood_is_scored_out`: during a request stream an outsider peer connected to
  every validator floods the topic with junk of every kind (`faults.byzantine.JUNK_KINDS`)
  at a bounded rate, re-dialling whoever drops it. Every request answered exactly once;
  every validator logged a ban of that peer, disconnected it, and kept it out.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import SEED, check

from faults.byzantine import (
    GossipPeer,
    approved_digests,
    bans,
    committed_batches,
    log_size,
    make_byzantine,
    stream_trial,
    threshold_signers,
    wrong_approvals,
)
from faults.harness import FaultNet

BYZANTINE = 3  # validator 3 of 0..3 (0 is the sequencer)
STREAM_SECONDS = 10.0
RATE = 6.0  # requests/s
FLOOD_RATE = 400.0  # junk messages/s (bounded also in count and time below)
FLOOD_SECONDS = 8.0
FLOOD_MAX = 3200
FIGURES: dict[str, dict] = {}


@pytest.fixture(scope="module")
def byznet(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[FaultNet]:
    fn = FaultNet(
        tmp_path_factory.mktemp("byzantine") / "net",
        seed=SEED,
        progress=lambda m: print(m, flush=True),
    )
    fn.start()
    try:
        make_byzantine(fn, BYZANTINE, {"GEXE_TEST_WRONG_BATCH": "1"})
        yield fn
    finally:
        probs = fn.stop_and_verify() if not fn.stopped else []
        tr = request.config.pluginmanager.get_plugin("terminalreporter")
        cm = request.config.pluginmanager.get_plugin("capturemanager")
        if tr is not None and cm is not None and FIGURES:  # the figures, past the capture
            with cm.global_and_fixture_disabled():
                tr.ensure_newline()
                for name, fig in FIGURES.items():
                    tr.write_line(f"byzantine {name}: {json.dumps(fig, sort_keys=True)}")
        assert not probs, f"stores do not verify: {probs[:3]}"


def _addr(fn: FaultNet, i: int) -> str:
    return fn.procs[i].address.lower()


def test_wrong_results_are_never_committed(byznet: FaultNet, tmp_path: Path) -> None:
    from gexe.contracts import Staking, batch_digest

    fn = byznet
    assert fn.net is not None
    honest = [i for i in range(fn.n) if i != BYZANTINE]
    staking = Staking(fn.w3, fn.net.deployment.staking)
    stakes0 = {i: staking.operator(fn.procs[i].address).stake for i in range(fn.n)}
    seq_since = log_size(fn.procs[0].log)
    witness = GossipPeer(fn, tmp_path / "witness")
    witness.start()
    try:
        o, sc = stream_trial(
            fn,
            "wrong_results",
            f"v{BYZANTINE} approves a wrong batch for every request",
            seconds=STREAM_SECONDS,
            rate=RATE,
        )
    finally:
        heard = witness.stop()
    check(o)
    # the replies on chain are the honest ones: none the Byzantine build made up
    payloads = [a[2] for ans in sc.answers.values() for a in ans]
    assert payloads and not any(p.startswith(b"WRONG") for p in payloads)

    commits = committed_batches(fn, o.first_block, o.last_block)
    assert len(commits) >= 2, commits
    chain_id, router = fn.net.chain_id, fn.net.deployment.router
    digests = {"0x" + batch_digest(h, chain_id, router).hex() for _, h in commits}
    hashes = {"0x" + h.hex() for _, h in commits}

    # the Byzantine validator signed wrong batches, and only those reached the wire
    wrong = wrong_approvals(fn.procs[BYZANTINE].log)
    assert wrong, f"validator {BYZANTINE} signed no wrong batch:\n{fn.procs[BYZANTINE].tail()}"
    assert all(w["ours"] != d for d, w in wrong.items())
    byz_heard = set(heard["approvals"].get(_addr(fn, BYZANTINE), []))
    assert byz_heard, "the witness heard no approval from the Byzantine validator"
    assert byz_heard <= set(wrong), byz_heard - set(wrong)
    assert not byz_heard & set(heard["requests"]), "the Byzantine validator approved a request"
    # ... and never reached the Router
    assert not set(wrong) & digests
    assert not {w["batch"] for w in wrong.values()} & hashes

    # every committed batch: requested by the sequencer, rebuilt and approved by each
    # honest validator (their logs and the wire agree)
    for i in honest:
        mine = approved_digests(fn.procs[i].log)
        missing = [d for d in digests if d[:18] not in mine]
        assert not missing, f"validator {i} never approved committed digests {missing[:3]}"
        on_wire = set(heard["approvals"].get(_addr(fn, i), []))
        assert digests <= on_wire, f"validator {i}: {sorted(digests - on_wire)[:3]} not heard"
    assert digests <= set(heard["requests"]), "a committed batch was never requested"

    # the sequencer counted the honest signatures only
    rounds = threshold_signers(fn.procs[0].log, seq_since)
    assert rounds, "no threshold reached in the sequencer's log"
    honest_addrs = {_addr(fn, i) for i in honest}
    assert all(set(s) == honest_addrs for _, s in rounds), rounds[:3]

    # nobody accused or slashed: one wrong digest per pair is not an equivocation
    for i in range(fn.n):
        assert fn.procs[i].status()["equivocations"] == [], i
        op = staking.operator(fn.procs[i].address)
        assert op.stake == stakes0[i] and not op.excluded, (i, op)

    FIGURES["wrong_results"] = {
        "requests": o.requests,
        "lost": o.lost,
        "duplicated": o.duplicated,
        "divergences": o.divergences + o.counter_errors,
        "batches_committed": len(commits),
        "wrong_batches_signed": len(wrong),
        "wrong_kinds": sorted({w["changed"] for w in wrong.values()}),
        "wrong_committed": len(set(wrong) & digests),
        "byzantine_approvals_heard": len(byz_heard),
        "signers_per_commit": sorted({len(s) for _, s in rounds}),
        "seconds": round(o.seconds, 1),
    }


def test_junk_flood_is_scored_out(byznet: FaultNet, tmp_path: Path) -> None:
    fn = byznet
    since = {i: log_size(fn.procs[i].log) for i in range(fn.n)}
    flooder = GossipPeer(
        fn,
        tmp_path / "flooder",
        flood_rate=FLOOD_RATE,
        flood_seconds=FLOOD_SECONDS,
        max_messages=FLOOD_MAX,
    )
    st0 = flooder.start()
    validators = set(flooder.validator_peers)
    assert set(st0["ever_connected"]) == validators, st0
    go = threading.Timer(1.5, flooder.go)  # the flood starts 1.5 s into the stream
    go.start()
    try:
        o, _ = stream_trial(
            fn,
            "junk_flood",
            f"outsider floods junk at {FLOOD_RATE:g}/s for {FLOOD_SECONDS:g}s",
            seconds=STREAM_SECONDS,
            rate=RATE,
        )
        st = flooder.wait_done(FLOOD_SECONDS + 60)
    finally:
        go.cancel()
        flooder.stop()
    check(o)
    assert st.get("flood_done"), f"the flood did not finish: {st}\n{flooder.tail()}"
    assert st["sent_total"] >= 100, st["sent"]  # it did flood
    assert set(st["sent"]) >= {"garbage", "not_a_validator", "forged", "wrong_era"}, st["sent"]
    # every validator dropped the flooder during the flood, and kept it out
    assert set(st["disconnected_after_s"]) == validators, st["disconnected_after_s"]
    assert st["connected"] == [], f"still connected to {st['connected']} after re-dialling"
    assert st["redials"] > 0
    # ... because it scored it out (its own log says so), for junk of several kinds
    reasons: set[str] = set()
    ban_after = []
    for i in range(fn.n):
        got = [(t, c) for t, peer, c in bans(fn.procs[i].log, since[i]) if peer == st["peer_id"]]
        assert len(got) == 1, f"validator {i} bans of the flooder: {got}"
        reasons |= set(got[0][1])
        if got[0][0] is not None:
            ban_after.append(round(got[0][0] - st["flood_started"], 2))
    assert len(reasons) >= 3, reasons

    FIGURES["junk_flood"] = {
        "requests": o.requests,
        "lost": o.lost,
        "duplicated": o.duplicated,
        "divergences": o.divergences + o.counter_errors,
        "junk_sent": st["sent_total"],
        "junk_rate": round(st["sent_total"] / max(st["flood_seconds"] or 1, 1e-9), 1),
        "junk_by_kind": st["sent"],
        "banned_after_s": sorted(ban_after),
        "disconnected_after_s": sorted(st["disconnected_after_s"].values()),
        "junk_sent_before_disconnect": sorted(st["sent_before_disconnect"].values()),
        "redials": st["redials"],
        "redials_connected": st["redials_connected"],
        "ban_reasons": sorted(reasons),
        "seconds": round(o.seconds, 1),
    }

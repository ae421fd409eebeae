"""Crash faults (issue #9): SIGKILL of a random validator, of the sequencer, of two
validators at once (half the stake: commits stop until they are back), and every
validator's connection to anvil reset and refused — each at a random moment during a
stream of requests from Ethereum. After the recovery (the killed processes restarted with
their data, the proxy healed): every request answered exactly once, counters exact, every
validator agreeing block by block with the chain; each killed validator's store verified
while it was down (`faults.harness` holds the trial mechanics and the checks).

With the native path on (the default; FAULT_NATIVE=0 turns it off), each trial also sends
injected transactions (`faults.injected`) to the validators not killed: every accepted
one ends final on the node that accepted it, none runs twice in any validator's chain of
sequencer blocks, those chains agree, and an expiry is accepted only when the sequencer
itself was killed (RELIABILITY.md, "Crash faults"). A last test submits one transaction
to every validator, twice: it runs once."""

from __future__ import annotations

import pytest
from faultkit import check, check_injected, rng_for

from faults.harness import FaultNet

RNG = rng_for("crash")

TRIALS = (
    [("kill_validator", i) for i in range(4)]
    + [("kill_sequencer", i) for i in range(3)]
    + [("kill_two", i) for i in range(2)]
    + [("cut_rpc", i) for i in range(3)]
)


@pytest.mark.parametrize(("kind", "n"), TRIALS, ids=[f"{k}-{n}" for k, n in TRIALS])
def test_crash_fault(faultnet: FaultNet, kind: str, n: int) -> None:
    o = faultnet.trial(kind, RNG)
    check(o)
    check_injected(faultnet.native, faultnet.injected_per_trial, o)


def test_one_transaction_sent_to_every_validator_runs_once(faultnet: FaultNet) -> None:
    """The same signed transaction submitted to all 4 validators at once, then again to
    each: every node accepts it or refuses it as already included (the sequencer ran it
    first); each node that accepted it reports it pre-confirmed (or executed, its
    promises lost — counted apart); it is executed exactly once in every validator's
    chain; a resubmission is answered with the hash or refused as already included."""
    if faultnet.inj is None:
        pytest.skip("the native path is off (FAULT_NATIVE=0)")
    faultnet.ensure_healthy()
    lane = faultnet.inj
    seq_from = max(1, min(lane.seq_height(i) or 1 for i in range(faultnet.n)) - 30)
    txs = lane.send_everywhere(list(range(faultnet.n)), faultnet.pings[0], "everywhere")
    assert len(txs) == faultnet.n and len({t.tx_hash for t in txs}) == 1, txs
    accepted = [t for t in txs if t.accepted]
    others = [t for t in txs if not t.accepted]
    assert accepted, txs
    assert all(
        t.status == "refused_at_submit" and "already included" in (t.reason or "") for t in others
    ), others
    lane.settle(accepted, timeout=60)
    runs, bad, _ = lane.chains(seq_from, lane.wait_heights(60))
    counts, errors = lane.check(accepted, runs, stalled_sequencer=False, reorg=False)
    assert not bad, bad[:3]
    assert runs.get(txs[0].tx_hash) == [1] * faultnet.n, (runs.get(txs[0].tx_hash), counts)
    assert not errors, (counts, errors)
    assert counts["preconfirmed"] + counts["executed_not_preconfirmed"] == len(accepted), counts
    print(f"accepted by {len(accepted)} of {faultnet.n} validators; ran once everywhere")

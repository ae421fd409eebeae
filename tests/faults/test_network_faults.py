"""Network faults (issue #9): one validator cut off (frozen with SIGSTOP — a black hole for
its peers) while 3 of 4 equal stakes (> 2/3) keep committing: every request sent during the
partition is answered before it heals, and the validator catches up and signs again; two
validators cut off (half the stake): nothing is committed during the partition, everything
is once it heals; the sequencer frozen for seconds mid-job; one validator stuttering
(frozen and thawed again and again: its messages delayed and bunched). All the while a
gossip peer re-publishes every message at once (duplicates) and again after the 120-second
duplicate filter forgot it (old requests and approvals replayed)."""

from __future__ import annotations

import pytest
from faultkit import check, check_injected, rng_for

from faults.harness import FaultNet

RNG = rng_for("network")

TRIALS = (
    [("partition_one", i) for i in range(2)]
    + [("partition_two", 0)]
    + [("pause_sequencer", i) for i in range(2)]
    + [("stutter", i) for i in range(2)]
)


@pytest.mark.parametrize(("kind", "n"), TRIALS, ids=[f"{k}-{n}" for k, n in TRIALS])
def test_network_fault(faultnet: FaultNet, kind: str, n: int) -> None:
    o = faultnet.trial(kind, RNG)
    check(o)
    check_injected(faultnet.native, faultnet.injected_per_trial, o)

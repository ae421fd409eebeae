"""Crash faults (issue #9): SIGKILL of a random validator, of the sequencer, of two
validators at once (half the stake: commits stop until they are back), and every
validator's connection to anvil reset and refused — each at a random moment during a
stream of requests from Ethereum. After the recovery (the killed processes restarted with
their data, the proxy healed): every request answered exactly once, counters exact, every
validator agreeing block by block with the chain; each killed validator's store verified
while it was down (`faults.harness` holds the trial mechanics and the checks)."""

from __future__ import annotations

import pytest
from faultkit import check, rng_for

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
    check(faultnet.trial(kind, RNG))

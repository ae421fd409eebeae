"""Chain faults (issue #9): reorgs of depth 1 to 5 injected on anvil (`anvil_reorg`) in the
middle of a request stream — some of the dropped request transactions re-included in the
new blocks, the rest re-broadcast, the sequencer's dropped commits left for it to notice —
and JSON-RPC faults from the proxy between each validator and anvil: HTTP errors, JSON-RPC
errors and dropped connections; hangs longer than the validators' RPC timeout and slow
answers; answers cut short (the request still reached anvil: a transaction may have been
sent). After each: every request answered exactly once, counters exact (no event skipped
or applied twice), every validator agreeing block by block with the chain's block hashes.
`test_whole_run.py` also compares every block with a validator synced from scratch."""

from __future__ import annotations

import pytest
from faultkit import SEED, check, check_injected, rng_for

from faults.harness import FaultNet

RNG = rng_for("chain")

TRIALS = (
    [("reorg", d) for d in range(1, 6)]
    + [("rpc_errors", i) for i in range(2)]
    + [("rpc_timeouts", i) for i in range(2)]
    + [("rpc_truncate", i) for i in range(2)]
)


@pytest.mark.parametrize(("kind", "n"), TRIALS, ids=[f"{k}-{n}" for k, n in TRIALS])
def test_chain_fault(faultnet: FaultNet, kind: str, n: int) -> None:
    opts = {"depth": n} if kind == "reorg" else {}
    o = faultnet.trial(kind, RNG, **opts)
    check(o)
    check_injected(faultnet.native, faultnet.injected_per_trial, o)
    # pre-confirmed (or executed) before the reorg, then in no validator's chain after
    # it: the reorg undid their executions and nothing ran them again (fixed: the
    # receipts go back to pending and the transactions to the sequencer)
    assert not o.injected.get("reverted"), (
        f"seed {SEED}: {o.injected['reverted']} injected transaction(s) lost to the reorg: "
        f"{o.injected.get('reverted_txs')}"
    )

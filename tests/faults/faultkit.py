"""Shared by the fault suite's modules: the seed, a per-module random stream, the check."""

from __future__ import annotations

import os
import random

from faults.harness import Outcome

SEED = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1, 10**6))
STATE: dict[str, object] = {}  # the package's FaultNet, for the summary


def rng_for(name: str) -> random.Random:
    """A module's own stream of randomness from the suite's seed."""
    return random.Random(f"{SEED}/{name}")


def check(o: Outcome) -> None:
    assert o.ok, f"seed {SEED}: {o.line()}\nnotes: {o.notes}"


def check_injected(native: bool, per_trial: int, o: Outcome) -> None:
    """With the native path on, the trial sent its injected transactions, some were
    accepted, and none was lost or executed twice (`check` covers those too; this also
    fails a trial that silently sent none)."""
    if not native or per_trial <= 0:
        return
    c = o.injected
    assert c.get("sent") == per_trial, f"seed {SEED}: injected {c}"
    assert c.get("accepted", 0) > 0, f"seed {SEED}: no injected transaction accepted: {c}"
    assert c.get("lost") == 0 and c.get("duplicated") == 0, f"seed {SEED}: {o.line()}"
    final = (
        c["preconfirmed"]
        + c["executed_not_preconfirmed"]
        + c["refused"]
        + c["expired"]
        + c.get("reverted", 0)  # asserted 0 where it can happen: test_chain_faults.py
    )
    assert final + c["unsent"] == c["sent"], f"seed {SEED}: injected not all final: {c}"

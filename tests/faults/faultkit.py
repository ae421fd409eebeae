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

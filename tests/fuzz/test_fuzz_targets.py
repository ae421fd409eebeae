"""The fuzz targets of fuzz/, CI-sized: a few hundred Hypothesis cases each.

Same generators and properties as the soak driver (`make fuzz`: fuzz/run.py, 10,000
cases per target, coverage-guided with atheris), but derandomized, so CI sees the same
cases every run; the soak mode explores. Everything here together stays well under a
minute. A failure prints the shrunk case; pin it as a regression test next to these.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.run import TARGETS, make_target
from fuzz.source import BytesSource, HypothesisSource

ROOT = Path(__file__).resolve().parents[2]
# CI examples per target: a few seconds each on a shared 2-core machine
CI_EXAMPLES = {"wasm": 500, "syscalls": 100, "gossip": 1000, "rpc": 500, "http": 300}


@pytest.fixture(scope="module", params=sorted(TARGETS))
def target(request):
    t = make_target(request.param)
    with t:
        yield t


def test_target_property_holds(target):
    @settings(
        max_examples=CI_EXAMPLES[target.name],
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def prop(data):
        target.check(target.generate(HypothesisSource(data)))

    prop()


def test_seeds_are_valid_cases(target):
    seeds = target.seeds()
    assert seeds, "atheris needs a starting corpus"
    for s in seeds:
        target.check(target.generate(BytesSource(s)))
    # and arbitrary bytes are always a case (libFuzzer feeds anything)
    for s in (b"", b"\xff" * 300, bytes(range(256))):
        target.check(target.generate(BytesSource(s)))


def test_soak_driver_prints_its_figures():
    p = subprocess.run(
        [sys.executable, "fuzz/run.py", "--target", "gossip", "--cases", "50"]
        + ["--engine", "hypothesis", "--seed", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(p.stdout)
    (r,) = report["targets"]
    assert r["target"] == "gossip" and r["cases"] >= 50 and r["crashes"] == 0
    assert report["total_cases"] == r["cases"] and r["seconds"] >= 0


def test_soak_driver_with_atheris():
    pytest.importorskip("atheris")
    p = subprocess.run(
        [sys.executable, "fuzz/run.py", "--target", "gossip", "--cases", "300"]
        + ["--engine", "atheris", "--seed", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    (r,) = json.loads(p.stdout)["targets"]
    assert r["engine"] == "atheris" and r["cases"] == 300 and r["crashes"] == 0
    assert r["coverage_edges"] > 0

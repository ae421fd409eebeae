"""The Solidity twins in bench/evm/ return exactly what the Gear programs return.

Real solc-js and anvil from node_modules, the real processor (`Sandbox`) for the Gear side;
the default jobs plus other vectors from programs/mandelbrot/README.md and
programs/fnv/README.md, and two tiles outside Mandelbrot.sol's int256 fast path (so its
wrapping-i64 fallback is checked against the program too). Nothing here asserts on time
or gas.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_bench():
    path = ROOT / "bench" / "compute_multiplier.py"
    spec = importlib.util.spec_from_file_location("bench_compute_multiplier", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cm = _load_bench()

Q28 = 1 << 28

# (x0, y0, step, w, h, max_iter) -> sum; README vectors first.
MANDEL_VECTORS = [
    (cm.MANDEL_DEFAULT, 50314),
    ((-Q28, -Q28 // 2, Q28 // 16, 5, 4, 50), 161),
    # Outside the |c| <= 7 fast path: the literal int64 fallback. Values from
    # programs/check.py's ref_mandelbrot and bench_kernels.wasm.
    ((-12 * Q28, -Q28, Q28 // 2, 24, 3, 40), 288),
    ((-(2**62), 2**61, 2**61, 4, 3, 50), 600),  # coordinates and products wrap
]
FNV_VECTORS = [
    (0, 14695981039346656037),
    (1, 12552611932479937211),
    (1025, 2465500002638031891),
    (cm.FNV_ROUNDS, cm.FNV_HASH),
]


@pytest.fixture(scope="module")
def evm(tmp_path_factory):
    arts = cm.compile_contracts(tmp_path_factory.mktemp("evm"), "legacy")
    with cm.start_anvil() as anvil:
        e = cm.Evm(anvil.url)
        e.mandelbrot = e.deploy(arts["Mandelbrot"])
        e.fnv = e.deploy(arts["Fnv"])
        yield e


@pytest.fixture(scope="module")
def gear():
    """run(name, payload) -> the program's 8-byte reply as u64, one Sandbox for all."""
    from gexe.runtime import Sandbox

    from gexe import programs

    sb = Sandbox()
    pids = {
        name: sb.create_program(sb.upload_code(programs.path(name).read_bytes()))
        for name in ("mandelbrot", "fnv")
    }
    sb.run_block()

    def run(name: str, payload: bytes = b"") -> int:
        mid = sb.send(pids[name], payload)
        reply = sb.run_until_reply(mid, max_blocks=5)
        assert reply is not None, sb.dispatches.get(mid)
        assert len(reply.payload) == 8, reply
        return int.from_bytes(reply.payload, "little")

    yield run
    sb.close()


def test_default_jobs_match(evm, gear):
    assert gear("mandelbrot") == cm.MANDEL_SUM
    assert gear("fnv") == cm.FNV_HASH
    assert evm.call(evm.mandelbrot.functions.viewDefault()) == cm.MANDEL_SUM
    assert evm.call(evm.fnv.functions.viewDefault()) == cm.FNV_HASH


def test_default_jobs_as_transactions(evm):
    for contract, fn, expected in (
        (evm.mandelbrot, "runDefault", cm.MANDEL_SUM),
        (evm.fnv, "runDefault", cm.FNV_HASH),
        (evm.fnv, "runDefaultUnrolled", cm.FNV_HASH),
    ):
        receipt = evm.transact(getattr(contract.functions, fn)())
        assert receipt["status"] == 1
        assert evm.call(contract.functions.lastResult()) == expected
        (event,) = contract.events.Result().process_receipt(receipt)
        assert list(event["args"].values()) == [expected]


@pytest.mark.parametrize(("job", "expected"), MANDEL_VECTORS[1:])
def test_mandelbrot_vectors(evm, gear, job, expected):
    assert gear("mandelbrot", cm.mandel_payload(*job)) == expected
    assert evm.call(evm.mandelbrot.functions.tile(*job)) == expected


def test_mandelbrot_run_with_args(evm):
    job, expected = MANDEL_VECTORS[1]
    evm.transact(evm.mandelbrot.functions.run(*job))
    assert evm.call(evm.mandelbrot.functions.lastResult()) == expected


@pytest.mark.parametrize(("rounds", "expected"), FNV_VECTORS[:3])
def test_fnv_vectors(evm, gear, rounds, expected):
    assert gear("fnv", cm.fnv_payload(rounds)) == expected
    assert evm.call(evm.fnv.functions.mix(rounds)) == expected
    assert evm.call(evm.fnv.functions.mixUnrolled(rounds)) == expected


def test_fnv_run_with_args(evm):
    rounds, expected = FNV_VECTORS[2]
    evm.transact(evm.fnv.functions.run(rounds))
    assert evm.call(evm.fnv.functions.lastResult()) == expected

"""Compute: mandelbrot tiles/s through the full processor ÷ the same kernel called bare.

Processor side: one mandelbrot program, a block of N messages each asking for one
tile (payload = tile parameters), all replies checked. Bare side: the same kernel
exported by bench_kernels.wasm, called N times through wasmtime's raw C API on the
runtime's engine settings (fuel metering on) — `compute_ratio`. The same bare call on
an engine without fuel metering is reported too (`compute_ratio_vs_no_fuel`), to show
what deterministic metering costs.
"""

from __future__ import annotations

import struct
import time

from _common import emit, parser, progress
from _runtime import Q28, RawCaller, bare_kernels, mandel_payload, sandbox_with, side_by_side

TILE = 64  # a 64×64 tile, max_iter 256: about a millisecond of WASM


def processor_rate(n: int, expect: int) -> float:
    sb, (pid,) = sandbox_with("mandelbrot", 1)
    try:
        payload = mandel_payload(TILE)
        ids = [sb.send(pid, payload) for _ in range(n)]
        t0 = time.perf_counter()
        sb.run_block()
        dt = time.perf_counter() - t0
        for i in ids:
            assert struct.unpack("<Q", sb.replies[i].payload)[0] == expect
        return n / dt
    finally:
        sb.close()


def bare_caller(fuel: bool) -> RawCaller:
    store, inst = bare_kernels(fuel)
    call = RawCaller(store, inst.exports(store)["mandelbrot"], 6, 1)
    call.set_i64(0, -2 * Q28)
    call.set_i64(1, -(3 * Q28) // 2)
    call.set_i64(2, (3 * Q28) // TILE)
    call.set_i32(3, TILE)
    call.set_i32(4, TILE)
    call.set_i32(5, 256)
    return call


def bare_rate(call: RawCaller, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return n / (time.perf_counter() - t0)


def main() -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args()
    n, rounds = (100, 3) if args.quick else (400, 5)
    fuel, nofuel = bare_caller(True), bare_caller(False)
    fuel()
    expect = fuel.results[0].of.i64
    progress(f"compute: {rounds} alternating rounds of {n} {TILE}x{TILE} tiles")
    proc, bare = side_by_side(lambda: processor_rate(n, expect), lambda: bare_rate(fuel, n), rounds)
    bare_nf = max(bare_rate(nofuel, n) for _ in range(rounds))
    return emit(
        "compute",
        {
            "tile": f"{TILE}x{TILE}, max_iter 256",
            "iterations_per_tile": expect,
            "messages": n,
            "processor_tiles_per_s": round(proc, 1),
            "bare_tiles_per_s": round(bare, 1),
            "bare_no_fuel_tiles_per_s": round(bare_nf, 1),
            "compute_ratio": round(proc / bare, 3),
            "compute_ratio_vs_no_fuel": round(proc / bare_nf, 3),
            "target_compute_ratio": 0.9,
        },
    )


if __name__ == "__main__":
    main()

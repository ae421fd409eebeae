"""Shared setup for the runtime benchmarks: sandboxes with example programs, the bare
kernel module, raw wasmtime calls, and a side-by-side timer.

Ratios are measured by alternating the two sides several times in one run and taking
each side's best, so a noisy neighbour hurts both sides alike.
"""

from __future__ import annotations

import ctypes
import struct
import time
from collections.abc import Callable

import gexe.programs as programs
import wasmtime
from gexe.runtime import Sandbox, make_engine
from wasmtime import _ffi as ffi

Q28 = 1 << 28


def mandel_payload(size: int, max_iter: int = 256) -> bytes:
    """A size×size tile over [-2, 1] × [-1.5, 1.5] in Q28."""
    step = (3 * Q28) // size
    return struct.pack("<qqqIII", -2 * Q28, -(3 * Q28) // 2, step, size, size, max_iter)


def sandbox_with(
    name: str, count: int, *, workers: int = 1, salt: str = ""
) -> tuple[Sandbox, list[bytes]]:
    """A sandbox with `count` initialised instances of example program `name`."""
    sb = Sandbox(workers=workers)
    code_id = sb.upload_code(programs.path(name).read_bytes())
    pids = [sb.create_program(code_id, salt=f"{salt}{name}{i}".encode()) for i in range(count)]
    sb.run_until_idle()
    return sb, pids


def best_of(fn: Callable[[], float], rounds: int) -> float:
    return max(fn() for _ in range(rounds))


def side_by_side(
    a: Callable[[], float], b: Callable[[], float], rounds: int
) -> tuple[float, float]:
    """Run a and b alternately `rounds` times; return the best rate of each."""
    ra, rb = [], []
    for _ in range(rounds):
        ra.append(a())
        rb.append(b())
    return max(ra), max(rb)


class RawCaller:
    """Calls an export through wasmtime's raw C API with preallocated arguments."""

    def __init__(
        self, store: wasmtime.Store, func: wasmtime.Func, nparams: int, nresults: int
    ) -> None:
        self.store, self.func = store, func  # keep them alive: the pointers below borrow
        self.ctx = store._context()
        self.fref = ctypes.byref(func._func)
        self.params = (ffi.wasmtime_val_t * max(1, nparams))()
        self.results = (ffi.wasmtime_val_t * max(1, nresults))()
        self.np, self.nr = nparams, nresults
        self.trap = ctypes.POINTER(ffi.wasm_trap_t)()
        self.tref = ctypes.byref(self.trap)

    def set_i64(self, i: int, v: int) -> None:
        self.params[i].kind = ffi.WASMTIME_I64.value
        self.params[i].of.i64 = v

    def set_i32(self, i: int, v: int) -> None:
        self.params[i].kind = ffi.WASMTIME_I32.value
        self.params[i].of.i32 = v

    def __call__(self) -> None:
        err = ffi.wasmtime_func_call(
            self.ctx, self.fref, self.params, self.np, self.results, self.nr, self.tref
        )
        if err or self.trap:
            raise RuntimeError("bare call trapped")


def bare_kernels(fuel: bool = True) -> tuple[wasmtime.Store, wasmtime.Instance]:
    """bench_kernels.wasm instantiated on the runtime's engine settings."""
    if fuel:
        engine = make_engine()
    else:
        cfg = wasmtime.Config()
        cfg.cranelift_nan_canonicalization = True
        engine = wasmtime.Engine(cfg)
    module = wasmtime.Module(engine, programs.path("bench_kernels").read_bytes())
    store = wasmtime.Store(engine)
    if fuel:
        store.set_fuel(1 << 62)
    return store, wasmtime.Instance(store, module, [])


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0

"""Overhead: ping messages/s through the full processor ÷ through a minimal harness.

Full processor: a block of N "PING" messages to one ping program — queue, dispatch,
syscalls, reply routing, state commit and storage, as a node runs them.
Harness: the same ping.wasm instantiated once, its `handle` called N times through
wasmtime's raw C API, with its syscalls as trivial stubs (size, read, reply: just
enough to make ping reply PONG). Two harness variants are measured:
- `overhead_ratio`: stubs bound the standard wasmtime-py way (`Linker.define_func`);
- `overhead_ratio_raw_stubs`: stubs bound as raw unchecked callbacks (the mechanism
  the runtime itself uses), the strictest baseline.
"""

from __future__ import annotations

import ctypes
import time

import gexe.programs as programs
import wasmtime
from _common import emit, parser, progress
from _runtime import RawCaller, sandbox_with, side_by_side
from gexe.runtime import make_engine
from wasmtime import _ffi as ffi

PAYLOAD = b"PING"


def full_rate(n: int) -> float:
    sb, (pid,) = sandbox_with("ping", 1)
    try:
        ids = [sb.send(pid, PAYLOAD) for _ in range(n)]
        t0 = time.perf_counter()
        sb.run_block()
        dt = time.perf_counter() - t0
        assert all(sb.replies[i].payload == b"PONG" for i in ids), "ping did not answer PONG"
        return n / dt
    finally:
        sb.close()


class Harness:
    """ping.wasm with trivial syscall stubs; `handle` called through the raw C API."""

    def __init__(self, raw_stubs: bool) -> None:
        engine = make_engine()
        module = wasmtime.Module(engine, programs.path("ping").read_bytes())
        self.store = store = wasmtime.Store(engine)
        store.set_fuel(1 << 62)
        memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(2, 512)))
        self.memory = memory
        self.base = ctypes.addressof(memory.data_ptr(store).contents)
        self.replies = 0
        linker = wasmtime.Linker(engine)
        linker.define(store, "env", "memory", memory)
        base = self.base

        def gr_size(p):  # type: ignore[no-untyped-def]
            ctypes.memmove(base + p, len(PAYLOAD).to_bytes(4, "little"), 4)

        def gr_read(at, n, buf, err):  # type: ignore[no-untyped-def]
            ctypes.memmove(base + buf, PAYLOAD[at : at + n], n)
            ctypes.memset(base + err, 0, 4)

        def gr_reply(p, n, v, err):  # type: ignore[no-untyped-def]
            self.replies += 1
            ctypes.memset(base + err, 0, 36)

        def gr_reply_input(o, n, v, err):  # type: ignore[no-untyped-def]
            self.replies += 1
            ctypes.memset(base + err, 0, 36)

        def gr_panic(p, n):  # type: ignore[no-untyped-def]
            raise RuntimeError("panic")

        def unused(*args):  # type: ignore[no-untyped-def]
            raise RuntimeError("not on the PING path")

        stubs = {
            "gr_size": gr_size,
            "gr_read": gr_read,
            "gr_reply": gr_reply,
            "gr_reply_input": gr_reply_input,
            "gr_panic": gr_panic,
        }
        self._keep = []
        for imp in module.imports:
            if imp.name == "memory":
                continue
            fn = stubs.get(imp.name, unused)  # ping's other paths (echo, callback form)
            ftype = imp.type
            assert isinstance(ftype, wasmtime.FuncType)
            if raw_stubs:
                n = len(ftype.params)

                def cb(env, caller, raw, count, fn=fn, n=n):  # type: ignore[no-untyped-def]
                    fn(*[raw[i].i32 for i in range(n)])
                    return 0

                c = ffi.wasmtime_func_unchecked_callback_t(cb)
                self._keep.append(c)
                mod, name = b"env", imp.name.encode()
                err = ffi.wasmtime_linker_define_func_unchecked(
                    linker.ptr(),
                    ctypes.create_string_buffer(mod),
                    len(mod),
                    ctypes.create_string_buffer(name),
                    len(name),
                    ftype.ptr(),
                    c,
                    None,
                    ctypes.CFUNCTYPE(None, ctypes.c_void_p)(),
                )
                assert not err
            else:
                linker.define_func("env", imp.name, ftype, fn)
        inst = linker.instantiate(store, module)
        self.call = RawCaller(store, inst.exports(store)["handle"], 0, 0)

    def rate(self, n: int) -> float:
        before = self.replies
        t0 = time.perf_counter()
        call = self.call
        for _ in range(n):
            call()
        dt = time.perf_counter() - t0
        assert self.replies - before == n
        return n / dt


def main() -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args()
    n, rounds = (2000, 3) if args.quick else (10000, 5)
    std, raw = Harness(raw_stubs=False), Harness(raw_stubs=True)
    progress(f"overhead: {rounds} alternating rounds of {n} pings")
    full, harness = side_by_side(lambda: full_rate(n), lambda: std.rate(n), rounds)
    full2, harness_raw = side_by_side(lambda: full_rate(n), lambda: raw.rate(n), rounds)
    full = max(full, full2)
    return emit(
        "overhead",
        {
            "messages": n,
            "rounds": rounds,
            "processor_msgs_per_s": round(full),
            "harness_msgs_per_s": round(harness),
            "harness_raw_stubs_msgs_per_s": round(harness_raw),
            "overhead_ratio": round(full / harness, 3),
            "overhead_ratio_raw_stubs": round(full / harness_raw, 3),
            "target_overhead_ratio": 0.5,
        },
    )


if __name__ == "__main__":
    main()

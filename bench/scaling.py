"""Scaling: block throughput with 2 worker threads ÷ with 1, on two kinds of block.

- compute-heavy: 16 mandelbrot programs, 8 tiles each (64×64, max_iter 256);
- message-heavy: 64 ping programs, 40 pings each.
Both blocks are built identically for both thread counts; the state hashes after the
block must be equal (a determinism check riding along), and runs alternate.

The machine is usually shared, so each round also runs a bare control: the same 128
tiles through wasmtime's raw C API (`_runtime.RawCaller`, fuel on, no processor) in 1
thread and split over 2 threads. `bare_scaling_2t` is how much of a second core the
machine gave; `scaling_compute_2t_vs_bare` is the processor's scaling relative to it;
`scaling_compute_2t_free_core_rounds` is the median processor scaling over the rounds
whose bare control scaled ≥ 1.85 (a second core was free), `free_core_rounds` how many.
Best-of and median-of-rounds figures are both reported.

CPU accounting (per-thread CPU clocks around each block, which do not count time spent
waiting for the GIL or for a CPU): `*_cpu_ms_1t` is the block's CPU on one thread;
`*_cpu_ms_2t` the CPU of all threads with 2 workers (more than 1t: parallel overhead);
`compute_cpu_ms_2t_critical` the busiest worker's CPU plus the coordinating thread's.
`scaling_compute_2t_cpu_bound` = 1t CPU ÷ that critical path: the scaling two free cores
would give if no thread ever waited for the GIL — an upper bound, but one the neighbours'
noise barely moves. (No such bound for the message-heavy block: nearly all of its work
holds the GIL, so its threads take turns.) `*_waits_per_msg_2t`: how many times per
message the threads blocked (voluntary context switches, from /proc: waiting for the
GIL, a lock or the pool's queue), median over rounds — a count, so noise-free: each
wait is a GIL hand-off the other thread may have to pay for.
"""

from __future__ import annotations

import statistics
import threading
import time

from _common import emit, parser, progress
from _runtime import Q28, RawCaller, bare_kernels, mandel_payload, sandbox_with

TILE = 64
# A round in which the bare control scaled at least this much had a second core free.
FREE_CORE_BARE_SCALING = 1.85
COMPUTE = ("mandelbrot", 16, 8, TILE)  # program, instances, messages each, tile
MESSAGES = ("ping", 64, 40)


def _thread_clock(ident: int) -> int:
    return time.pthread_getcpuclockid(ident)


def _waits(native_id: int) -> int:
    """Voluntary context switches of a thread so far: each time it blocked — on the GIL,
    a lock, the pool's queue. Unlike times, counts are not moved by the neighbours."""
    with open(f"/proc/self/task/{native_id}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    return 0


def block_rate(
    program: str, programs: int, per: int, payload: bytes, workers: int
) -> tuple[float, tuple, dict]:
    """Messages/s of one block, the state after it, and the block's CPU per thread."""
    sb, pids = sandbox_with(program, programs, workers=workers)
    try:
        for _ in range(per):
            for pid in pids:
                sb.send(pid, payload)
        pool = sb.processor._pool
        threads = [threading.current_thread()] + (list(pool._threads) if pool else [])
        clocks = [_thread_clock(t.ident) for t in threads]
        w0 = sum(_waits(t.native_id) for t in threads)
        c0 = [time.clock_gettime(c) for c in clocks]
        t0 = time.perf_counter()
        res = sb.run_block()
        dt = time.perf_counter() - t0
        cpu = [time.clock_gettime(c) - a for c, a in zip(clocks, c0, strict=True)]
        waits = sum(_waits(t.native_id) for t in threads) - w0
        assert res.queued_left == 0
        n = programs * per
        assert sum(1 for d in res.dispatches if d.status == "success") == n
        main, workers_cpu = cpu[0], cpu[1:]
        acct = {
            "total": sum(cpu),
            "critical": main + max(workers_cpu, default=0.0),
            "waits": waits / n,
        }
        return n / dt, tuple(sorted(sb.state.programs.items())), acct
    finally:
        sb.close()


class Bare:
    """The compute block's tiles called bare, in 1 thread or split over 2."""

    def __init__(self, threads: int = 2) -> None:
        self.callers = []
        for _ in range(threads):
            store, inst = bare_kernels(fuel=True)
            call = RawCaller(store, inst.exports(store)["mandelbrot"], 6, 1)
            for i, v in enumerate((-2 * Q28, -(3 * Q28) // 2, (3 * Q28) // TILE)):
                call.set_i64(i, v)
            for i, v in enumerate((TILE, TILE, 256), start=3):
                call.set_i32(i, v)
            call()
            self.callers.append(call)

    def rate(self, n: int, threads: int) -> float:
        def work(call: RawCaller, k: int) -> None:
            for _ in range(k):
                call()

        ts = [
            threading.Thread(target=work, args=(self.callers[i], n // threads))
            for i in range(threads)
        ]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return n / (time.perf_counter() - t0)


def measure(program: str, programs: int, per: int, payload: bytes, rounds: int, bare=None):  # type: ignore[no-untyped-def]
    r1, r2, b1, b2, cpu1, cpu2, crit2, waits = [], [], [], [], [], [], [], []
    for _ in range(rounds):
        a, s1, acct1 = block_rate(program, programs, per, payload, 1)
        b, s2, acct2 = block_rate(program, programs, per, payload, 2)
        assert s1 == s2, "state differs between 1 and 2 threads"
        r1.append(a)
        r2.append(b)
        cpu1.append(acct1["total"])
        cpu2.append(acct2["total"])
        crit2.append(acct2["critical"])
        waits.append(acct2["waits"])
        if bare is not None:
            n = programs * per
            b1.append(bare.rate(n, 1))
            b2.append(bare.rate(n, 2))
    out = {
        "1t": max(r1),
        "2t": max(r2),
        "scaling": max(r2) / max(r1),
        "scaling_median": statistics.median(b / a for a, b in zip(r1, r2, strict=True)),
        "cpu_ms_1t": 1e3 * min(cpu1),
        "cpu_ms_2t": 1e3 * min(cpu2),
        "cpu_ms_2t_critical": 1e3 * min(crit2),
        "rounds": [round(b / a, 3) for a, b in zip(r1, r2, strict=True)],
        "waits_per_msg_2t": statistics.median(waits),
    }
    if bare is not None:
        out["bare_scaling"] = max(b2) / max(b1)
        out["bare_scaling_median"] = statistics.median(y / x for x, y in zip(b1, b2, strict=True))
        out["bare_rounds"] = [round(y / x, 3) for x, y in zip(b1, b2, strict=True)]
        free = [
            b / a
            for a, b, x, y in zip(r1, r2, b1, b2, strict=True)
            if y / x >= FREE_CORE_BARE_SCALING
        ]
        out["free_rounds"] = len(free)
        out["scaling_free"] = statistics.median(free) if free else None
    return out


def main() -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args()
    rounds = 3 if args.quick else 8
    program, count, per, tile = COMPUTE
    per = 4 if args.quick else per
    progress(f"scaling: compute-heavy block, {rounds} rounds (+ bare control)")
    c = measure(program, count, per, mandel_payload(tile), rounds, Bare())
    program, count, per = MESSAGES
    per = 20 if args.quick else per
    progress(f"scaling: message-heavy block, {rounds} rounds")
    m = measure(program, count, per, b"PING", rounds)
    return emit(
        "scaling",
        {
            "rounds": rounds,
            "compute_msgs_per_s_1t": round(c["1t"], 1),
            "compute_msgs_per_s_2t": round(c["2t"], 1),
            "messages_msgs_per_s_1t": round(m["1t"]),
            "messages_msgs_per_s_2t": round(m["2t"]),
            "scaling_compute_2t": round(c["scaling"], 3),
            "scaling_messages_2t": round(m["scaling"], 3),
            "scaling_compute_2t_median": round(c["scaling_median"], 3),
            "scaling_messages_2t_median": round(m["scaling_median"], 3),
            "scaling_compute_2t_rounds": c["rounds"],
            "scaling_messages_2t_rounds": m["rounds"],
            "bare_scaling_2t": round(c["bare_scaling"], 3),
            "bare_scaling_2t_median": round(c["bare_scaling_median"], 3),
            "bare_scaling_2t_rounds": c["bare_rounds"],
            "scaling_compute_2t_vs_bare": round(c["scaling"] / c["bare_scaling"], 3),
            "free_core_rounds": c["free_rounds"],
            "scaling_compute_2t_free_core_rounds": (
                round(c["scaling_free"], 3) if c["scaling_free"] is not None else None
            ),
            "compute_cpu_ms_1t": round(c["cpu_ms_1t"], 1),
            "compute_cpu_ms_2t": round(c["cpu_ms_2t"], 1),
            "compute_cpu_ms_2t_critical": round(c["cpu_ms_2t_critical"], 1),
            "scaling_compute_2t_cpu_bound": round(c["cpu_ms_1t"] / c["cpu_ms_2t_critical"], 3),
            "messages_cpu_ms_1t": round(m["cpu_ms_1t"], 1),
            "messages_cpu_ms_2t": round(m["cpu_ms_2t"], 1),
            "compute_waits_per_msg_2t": round(c["waits_per_msg_2t"], 2),
            "messages_waits_per_msg_2t": round(m["waits_per_msg_2t"], 3),
            "target_scaling_compute_2t": 1.7,
        },
    )


if __name__ == "__main__":
    main()

"""Scaling: block throughput with 2 worker threads ÷ with 1, on two kinds of block.

- compute-heavy: 16 mandelbrot programs, 8 tiles each (64×64, max_iter 256);
- message-heavy: 64 ping programs, 40 pings each.
Both blocks are built identically for both thread counts; the state hashes after the
block must be equal (a determinism check riding along), and runs alternate.
"""

from __future__ import annotations

import time

from _common import emit, parser, progress
from _runtime import mandel_payload, sandbox_with


def block_rate(
    program: str, programs: int, per: int, payload: bytes, workers: int
) -> tuple[float, tuple]:
    sb, pids = sandbox_with(program, programs, workers=workers)
    try:
        for _ in range(per):
            for pid in pids:
                sb.send(pid, payload)
        t0 = time.perf_counter()
        res = sb.run_block()
        dt = time.perf_counter() - t0
        assert res.queued_left == 0
        n = programs * per
        assert sum(1 for d in res.dispatches if d.status == "success") == n
        return n / dt, tuple(sorted(sb.state.programs.items()))
    finally:
        sb.close()


def measure(
    program: str, programs: int, per: int, payload: bytes, rounds: int
) -> tuple[float, float, float]:
    r1, r2 = [], []
    for _ in range(rounds):
        a, s1 = block_rate(program, programs, per, payload, 1)
        b, s2 = block_rate(program, programs, per, payload, 2)
        assert s1 == s2, "state differs between 1 and 2 threads"
        r1.append(a)
        r2.append(b)
    return max(r1), max(r2), max(r2) / max(r1)


def main() -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args()
    rounds = 2 if args.quick else 4
    progress("scaling: compute-heavy block")
    c1, c2, cs = measure("mandelbrot", 16, 4 if args.quick else 8, mandel_payload(64), rounds)
    progress("scaling: message-heavy block")
    m1, m2, ms = measure("ping", 64, 20 if args.quick else 40, b"PING", rounds)
    return emit(
        "scaling",
        {
            "compute_msgs_per_s_1t": round(c1, 1),
            "compute_msgs_per_s_2t": round(c2, 1),
            "messages_msgs_per_s_1t": round(m1),
            "messages_msgs_per_s_2t": round(m2),
            "scaling_compute_2t": round(cs, 3),
            "scaling_messages_2t": round(ms, 3),
            "target_scaling_compute_2t": 1.7,
        },
    )


if __name__ == "__main__":
    main()

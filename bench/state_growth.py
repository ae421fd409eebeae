"""State growth: time for a block touching 10 programs when 10 exist ÷ when 10,000 exist.

Both sandboxes hold counter programs (state: a counter in memory); the measured block
sends one "inc" to each of 10 programs. A block's cost should follow what it touches,
not the total state (`state_growth_ratio`, target ≤ 1.5).
"""

from __future__ import annotations

import time

from _common import emit, parser, progress
from _runtime import sandbox_with


def touch_time(sb, pids: list[bytes], blocks: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(blocks):
        for pid in pids:
            sb.send(pid, b"inc")
        t0 = time.perf_counter()
        res = sb.run_block()
        best = min(best, time.perf_counter() - t0)
        assert sum(1 for d in res.dispatches if d.status == "success") == len(pids)
    return best


def main() -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args()
    big_n = 2000 if args.quick else 10_000
    blocks = 10 if args.quick else 30
    progress("state growth: 10 programs")
    small, small_pids = sandbox_with("counter", 10)
    progress(f"state growth: {big_n} programs (setup)")
    big, big_pids = sandbox_with("counter", big_n)
    touched = big_pids[:: max(1, big_n // 10)][:10]
    progress("state growth: measuring")
    t_small = t_big = float("inf")
    for _ in range(3):
        t_small = min(t_small, touch_time(small, small_pids, blocks))
        t_big = min(t_big, touch_time(big, touched, blocks))
    small.close()
    big.close()
    return emit(
        "state_growth",
        {
            "programs_small": 10,
            "programs_big": big_n,
            "touched": 10,
            "block_ms_small": round(t_small * 1e3, 3),
            "block_ms_big": round(t_big * 1e3, 3),
            "state_growth_ratio": round(t_big / t_small, 3),
            "target_state_growth_ratio": 1.5,
        },
    )


if __name__ == "__main__":
    main()

"""Soak: the dev network under sustained load, and many fault trials (issue #9).

    python faults/soak.py                  # = make soak: 10-minute load, 60 fault trials
    python faults/soak.py --minutes 1 --trials 12 --seed 7
    python faults/soak.py --rate 20        # skip the ramp, hold 20 requests/s
    python faults/soak.py --injected-rate 0 --no-native   # Ethereum requests only

On one `faults.harness.FaultNet` (anvil with 1-second blocks, 4 validator processes behind
fault-injecting RPC proxies, validator 0 also the sequencer and — with the native path on,
the default — the orderer of injected transactions, a gossip peer re-publishing every
message at once and again after 125 s):

1. ramp — requests from Ethereum (`Mirror.sendMessage` to 3 counter and 3 ping programs
   from 6 users) at 10/s, then ×1.5 every `--step` seconds while the network holds the
   rate (every request answered, p95 latency and the backlog after the step within
   `--max-latency` blocks), up to the chain's own limit: 90 % of anvil's gas target (half
   the block gas limit) over the gas of a request plus its reply — above it the EIP-1559
   base fee climbs without bound and any rate eventually stalls; skipped with `--rate`.
   Alongside every step, injected transactions (ping, EIP-712-signed, round robin over
   the 4 validators' JSON-RPC) at a steady `--injected-rate` (default 10/s): a step is
   held only if every one of them is pre-confirmed too;
2. soak — the highest rate held, for `--minutes`: rate sent and answered, latency
   percentiles in blocks (overall, first and last minute), RSS growth of every process
   (validators, anvil, the replayer; /proc: all of it, and the anonymous part — the
   LMDB store is memory-mapped, so VmRSS also grows with the store), each store's growth
   on disk; injected transactions at `--injected-rate` alongside: sent, pre-confirmed,
   rate sent and pre-confirmed, latency to pre-confirmed (ms, to the 0.25-s receipt
   poll that saw it) p50/p99/max, lost, executed twice;
3. fault trials — `--trials` of them, cycling through every kind in a shuffled order
   (crash, chain, network; see RELIABILITY.md), each checked like the CI suite's (with
   `--injected-per-trial` injected transactions, default 6);
4. the whole run recounted from the chain (lost / duplicated requests; every injected
   transaction against every validator's chain of sequencer blocks), a validator synced
   from scratch compared with every validator block by block, every store verified.

Prints one JSON object (keys `fault_trials`, `lost_requests`, `duplicated_requests`,
`divergences`, `soak_rate_held`, `soak_latency_blocks_p50/p95/p99`, `soak_rss_growth_kib`,
`soak_store_growth_bytes`, `soak_injected_sent`, `soak_injected_preconfirmed`,
`soak_injected_rate_preconfirmed`, `soak_injected_latency_ms_p50/p99`,
`soak_injected_lost`, `soak_injected_duplicated`, `injected_*` totals, …), writes it to `bench/results/faults.json`, and exits 1 if a
request or accepted injected transaction was lost or duplicated, validators diverged or a
store did not verify. Progress
goes to stderr. The network lives in a temporary directory (or `--dir`, kept).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from faults.harness import KINDS, FaultNet  # noqa: E402

RESULTS = ROOT / "bench" / "results"
COMMIT_GAS_PER_REPLY = 6_000  # what a reply adds to its commitBatch (sequencer/policy.py)


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    ap.add_argument("--trials", type=int, default=60, help="fault trials (default 60)")
    ap.add_argument("--rate", type=float, default=None, help="requests/s; default: ramp")
    ap.add_argument("--step", type=float, default=30.0, help="ramp step seconds (30)")
    ap.add_argument("--max-latency", type=int, default=5, help="blocks (default 5)")
    ap.add_argument("--seed", type=int, default=None, help="default: random, printed")
    ap.add_argument("--dir", type=Path, default=None, help="network directory (kept)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="fault kinds to cycle through")
    ap.add_argument(
        "--native",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the native path (validator 0 sequences injected transactions; default on)",
    )
    ap.add_argument(
        "--injected-rate",
        type=float,
        default=10.0,
        help="injected transactions/s alongside the load (default 10; 0 = none)",
    )
    ap.add_argument("--injected-per-trial", type=int, default=6, help="injected txs per trial (6)")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    kinds = [k for k in args.kinds.split(",") if k]
    for k in kinds:
        if k not in KINDS:
            ap.error(f"unknown fault kind {k!r}; one of {', '.join(KINDS)}")
    progress(f"seed {seed} (--seed {seed} replays the fault schedule)")
    rng = random.Random(seed)
    out: dict = {
        "bench": "faults",
        "python": platform.python_version(),
        "seed": seed,
        "validators": 4,
        "block_time_s": 1,
        "soak_minutes": args.minutes,
        "native": args.native,
        "injected_rate_target": args.injected_rate if args.native else 0,
    }
    inj_rate = args.injected_rate if args.native else 0.0
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gexe-soak-") as tmp:
        d = args.dir or Path(tmp) / "net"
        fn = FaultNet(
            d,
            seed=seed,
            progress=progress,
            replayer=True,
            replay_after=125.0,
            native=args.native,
            injected_per_trial=args.injected_per_trial,
        )
        fn.start()
        problems: list[str] = []
        try:
            # anvil's EIP-1559 base fee climbs without bound while blocks use more than
            # half their gas limit: the chain's own sustainable rate caps the ramp
            blk = fn.w3.eth.get_block("latest")
            per_request = fn.request_gas + COMMIT_GAS_PER_REPLY
            chain_cap = round(0.9 * int(blk["gasLimit"]) / 2 / per_request, 1)
            out.update(
                block_gas_limit=int(blk["gasLimit"]),
                request_gas=fn.request_gas,
                chain_rate_cap=chain_cap,
            )
            if args.rate is None:
                progress(
                    f"ramp: from 10 requests/s, x1.5 every {args.step:g} s while held, up to "
                    f"{chain_cap:g}/s (90% of the chain's gas target / {per_request:,} gas "
                    "per request)"
                )
                best, steps = fn.find_rate(
                    start=10.0,
                    step_seconds=args.step,
                    max_latency=args.max_latency,
                    limit=chain_cap,
                    injected_rate=inj_rate,
                )
                out["ramp"] = steps
                rate = best or 5.0
            else:
                rate = args.rate
            if args.minutes > 0:
                progress(f"soak: {rate:g} requests/s for {args.minutes:g} minutes")
                o, fig = fn.load(
                    rate,
                    args.minutes * 60,
                    sample_every=30.0,
                    max_latency=args.max_latency,
                    injected_rate=inj_rate,
                )
                out.update(
                    soak_rate_target=rate,
                    soak_rate_held=fig["rate_answered"] if fig["held"] else None,
                    soak_rate_sent=fig["rate_sent"],
                    soak_rate_answered=fig["rate_answered"],
                    soak_held=fig["held"],
                    soak_requests=fig["requests"],
                    soak_latency_blocks_p50=fig["latency_blocks_p50"],
                    soak_latency_blocks_p95=fig["latency_blocks_p95"],
                    soak_latency_blocks_p99=fig["latency_blocks_p99"],
                    soak_latency_blocks_max=fig["latency_blocks_max"],
                    soak_latency_blocks_p95_first_minute=fig["latency_blocks_p95_first_minute"],
                    soak_latency_blocks_p95_last_minute=fig["latency_blocks_p95_last_minute"],
                    soak_rss_kib_start=fig["rss_kib_start"],
                    soak_rss_kib_end=fig["rss_kib_end"],
                    soak_rss_kib_peak=fig["rss_kib_peak"],
                    soak_rss_growth_kib=fig["rss_growth_kib"],
                    soak_rss_anon_kib_start=fig["rss_anon_kib_start"],
                    soak_rss_anon_kib_end=fig["rss_anon_kib_end"],
                    soak_rss_anon_growth_kib=fig["rss_anon_growth_kib"],
                    soak_store_bytes_start=fig["store_bytes_start"],
                    soak_store_bytes_end=fig["store_bytes_end"],
                    soak_store_growth_bytes={
                        k: fig["store_bytes_end"][k] - fig["store_bytes_start"][k]
                        for k in fig["store_bytes_end"]
                    },
                    soak_store_growth_bytes_per_request=fig["store_growth_bytes_per_request"],
                    soak_samples=fig["samples"],
                    **{f"soak_{k}": v for k, v in fig.items() if k.startswith("injected_")},
                )
                if not o.ok:
                    problems.append(f"soak: {'; '.join(o.errors)[:300]}")
            order: list[str] = []
            while len(order) < args.trials:
                batch = list(kinds)
                rng.shuffle(batch)
                order += batch
            for i, kind in enumerate(order[: args.trials]):
                progress(f"trial {i + 1}/{args.trials}: {kind}")
                o = fn.trial(kind, rng)
                if not o.ok:
                    problems.append(f"trial {i + 1} {o.kind}: {'; '.join(o.errors)[:300]}")
            fc = fn.final_check()
            progress(f"whole run: {json.dumps(fc)}")
            mism, bad = fn.fresh_sync()
            progress(
                f"fresh validator synced {fn.totals.final['fresh_sync_blocks']} blocks: "
                f"{mism} mismatches"
            )
            problems += bad
        except Exception as e:  # reported with the figures gathered so far
            problems.append(f"soak stopped: {type(e).__name__}: {e}"[:300])
            progress(problems[-1])
        finally:
            probs = fn.stop_and_verify() if not fn.stopped else []
            problems += probs
        out.update(fn.totals.to_json())
    out["problems"] = problems[:20]
    out["wall_seconds"] = round(time.monotonic() - t_start, 1)
    text = json.dumps(out, indent=2, sort_keys=True)
    print(text, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faults.json").write_text(text + "\n")
    bad_figures = (
        out["lost_requests"]
        or out["duplicated_requests"]
        or out["divergences"]
        or out.get("injected_lost")
        or out.get("injected_duplicated")
        or out.get("soak_injected_lost")
        or out.get("soak_injected_duplicated")
        or out.get("injected_reverted")
    )
    return 1 if (bad_figures or problems) else 0


if __name__ == "__main__":
    sys.exit(main())

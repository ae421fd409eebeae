"""L1 latency and commit cost on the dev network: blocks from an Ethereum request to its
on-chain reply, and the gas of each commitBatch with the messages it carries.

A `gexe.devnet.DevNet` (anvil with 1-second blocks, 4 validator processes over libp2p,
validator 0 also the sequencer with `max_batch_latency = 0`) gets 3 ping and 3 counter
programs. N requests (60; `--quick` 20) are sent with `Mirror.sendMessage(payload, false)`
from 5 users, round-robin over the 6 programs, a few per block over several blocks (each
group's transactions are sent together, then the next group waits for the next block).
Each request's latency is `reply block − request block`, where the reply block is the block
of the Mirror's `Reply` event (the commitBatch transaction that carried it). Then 3 more
blocks are watched for duplicate replies.

Keys: `l1_latency_blocks_median`, `l1_latency_blocks_p95` (nearest rank), `requests`,
`answered_once` (must equal `requests`), `duplicates`, `unanswered`, `commits` (each
commitBatch from the first request on: block, gas, transitions, messages, batch block),
`commit_gas_per_message_median` (over commits carrying messages: gas ÷ messages),
`messages_per_commit_median`. Exits 1 if a request was not answered exactly once.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from _common import emit, parser, progress

from gexe.devnet import DevNet

PROGRAMS_EACH = 3
USERS = 5


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    rank = max(1, -(-len(s) * q // 100))  # ceil(n * q / 100), at least 1
    return s[int(rank) - 1]


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=None, help="default 60 (quick: 20)")
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--per-block", type=int, default=None, help="requests per block: 6 (quick: 4)")
    args = ap.parse_args()
    n = args.requests or (20 if args.quick else 60)
    per_block = args.per_block or (4 if args.quick else 6)
    out: dict = {
        "quick": args.quick,
        "validators": args.validators,
        "block_time_s": 1,
        "programs": 2 * PROGRAMS_EACH,
        "users": USERS,
        "requests": n,
        "requests_per_block": per_block,
    }
    with tempfile.TemporaryDirectory(prefix="gexe-l1-latency-") as tmp:
        net = DevNet(Path(tmp) / "net", validators=args.validators, block_time=1, progress=progress)
        with net:
            ex = net.setup_examples(("ping", "counter"), timeout=90)
            progs = net.create_programs(
                [(ex.codes["ping"].code_id, b"")] * PROGRAMS_EACH
                + [(ex.codes["counter"].code_id, b"")] * PROGRAMS_EACH
            )
            net.wait_answers([p.init_id for p in progs], 90)
            targets = [(p.address, i < PROGRAMS_EACH) for i, p in enumerate(progs)]
            users = net.users[:USERS]
            progress(f"sending {n} requests, {per_block} per block, from {USERS} users")
            sent = []
            while len(sent) < n:
                start = net.w3.eth.block_number
                group = []
                for _ in range(min(per_block, n - len(sent))):
                    k = len(sent) + len(group)
                    prog, is_ping = targets[k % len(targets)]
                    group.append(
                        (prog, f"req-{k}".encode() if is_ping else b"inc", users[k % USERS])
                    )
                sent += net.send_many(group)
                net._wait(lambda s=start: net.w3.eth.block_number > s, 30, "the next block")
            first_block = min(s.block for s in sent)
            progress(
                f"sent {len(sent)} requests in blocks {first_block}–{max(s.block for s in sent)}; "
                "waiting for the replies"
            )
            got = net.wait_answers([s.message_id for s in sent], 120, settle_blocks=3)
            latencies = []
            once = dups = missing = 0
            for s in sent:
                answers = got.get(s.message_id, [])
                if not answers:
                    missing += 1
                    continue
                once += len(answers) == 1
                dups += len(answers) > 1
                latencies.append(answers[0].block - s.block)
            commits = net.commits(first_block)
    out.update(
        {
            "answered_once": once,
            "duplicates": dups,
            "unanswered": missing,
            "l1_latency_blocks_median": statistics.median(latencies) if latencies else None,
            "l1_latency_blocks_p95": percentile(latencies, 95) if latencies else None,
            "l1_latency_blocks_max": max(latencies) if latencies else None,
            "l1_latency_blocks_histogram": {
                str(b): latencies.count(b) for b in sorted(set(latencies))
            },
            "commits": [
                {
                    "block": c.block,
                    "gas_used": c.gas_used,
                    "transitions": c.transitions,
                    "messages": c.messages,
                    "codes": c.codes,
                    "batch_block": c.batch_block,
                }
                for c in commits
            ],
        }
    )
    with_msgs = [c for c in commits if c.messages]
    out["commit_count"] = len(commits)
    out["commit_gas_per_message_median"] = (
        round(statistics.median(c.gas_used / c.messages for c in with_msgs)) if with_msgs else None
    )
    out["messages_per_commit_median"] = (
        statistics.median(c.messages for c in with_msgs) if with_msgs else None
    )
    out["commit_gas_median"] = (
        round(statistics.median(c.gas_used for c in with_msgs)) if with_msgs else None
    )
    emit("l1_latency", out)
    return 0 if once == n else 1


if __name__ == "__main__":
    sys.exit(main())

"""A gossip peer that duplicates: it joins the validators' topic (dialling validator 0) and
re-publishes every message it hears — at once (a duplicate the validators' duplicate filter
must drop) and again `replay_after` seconds later (past the filter's 120-second memory, so
the validators receive, validate and act on an old `RequestBatchValidation` or
`ApproveBatch` a second time).

    python -m faults.replayer CONFIG.json

CONFIG: {"chain_id", "router", "bootnode", "validators": [addresses], "era",
"replay_after", "status": path}. The status file (JSON) is rewritten every second with
what was heard and re-published. Runs until SIGTERM/SIGINT. The envelopes stay signed by
the validators who made them; this peer signs nothing of its own.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import trio


async def run(cfg: dict[str, Any]) -> None:
    from eth_account import Account
    from gexe.node.gossip import GossipConfig, open_gossip
    from gexe.node.gossip_messages import EthSigner

    validators = {bytes.fromhex(a[2:].lower()) for a in cfg["validators"]}
    era = int(cfg.get("era") or 0)
    replay_after = float(cfg.get("replay_after") or 125.0)
    status = Path(cfg["status"])
    gcfg = GossipConfig(
        chain_id=int(cfg["chain_id"]),
        router_address=cfg["router"],
        bootnodes=(cfg["bootnode"],),
    )
    stats = {"heard": 0, "duplicated": 0, "replayed": 0, "errors": 0, "queued": 0}
    later: list[tuple[float, bytes]] = []
    signer = EthSigner.from_account(Account.create())  # never used to sign: we only relay

    async with open_gossip(
        gcfg, signer, current_era=lambda: era, validators=lambda e: validators
    ) as svc:

        async def republish(data: bytes, key: str) -> None:
            try:
                await svc.publish_raw(data)
                stats[key] += 1
            except Exception:  # noqa: BLE001 - a peer going away; keep relaying
                stats["errors"] += 1

        async def listen() -> None:
            async for rec in svc:
                data = rec.envelope.encode()
                stats["heard"] += 1
                await republish(data, "duplicated")
                later.append((time.monotonic() + replay_after, data))

        async def replay() -> None:
            while True:
                now = time.monotonic()
                due = [d for t, d in later if t <= now]
                later[:] = [(t, d) for t, d in later if t > now]
                for d in due:
                    await republish(d, "replayed")
                stats["queued"] = len(later)
                stats["peers"] = len(svc.connected_peers())
                tmp = status.with_suffix(".tmp")
                tmp.write_text(json.dumps({"pid": os.getpid(), **stats}))
                tmp.replace(status)
                await trio.sleep(1.0)

        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as sigs:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listen)
                nursery.start_soon(replay)
                async for _ in sigs:
                    nursery.cancel_scope.cancel()
                    break


def main() -> int:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    trio.run(run, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())

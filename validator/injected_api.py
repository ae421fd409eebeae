"""RPC methods of the native path (see `native.py`), next to `api.py`'s.

- `injected_sendTransaction(tx)` → the transaction hash (`0x…`), once this node accepted
  it; a refusal is JSON-RPC error -32001 with the reason;
- `injected_sendTransactionAndWatch(tx)` (WebSocket) → a subscription id; each change of
  the receipt arrives as a `subscription` notification, the last one has a final status
  (`preconfirmed`, `refused`, `expired`);
- `injected_getTransactionReceipt(hash)` → the receipt or null (only the node that
  accepted a transaction keeps its receipt);
- `injected_sequencerBlock(height)` → the result of a sequencer block this node ran
  (`kind`, `height`, `hash`, `anchor`, `number`, `txs` with each verdict, `transitions`,
  `dispatches`, `state_root`), or null;
- `injected_info()` → what a client needs to sign and check: chain id, Router, sequencer,
  head (a reference block), era, validators with stakes, limits.

A transaction is a JSON object: `destination` (program address), `payload` (hex),
`value` (0), `referenceBlock`, `salt` (32-byte hex), `signature` (65-byte hex, EIP-712,
see `gexe.contracts.injected`).

When modifying this part: result shapes are a public API (the client library reads them).
"""

from __future__ import annotations

from typing import Any

import trio
from gexe.contracts.injected import InjectedTransaction, SignedTransaction

from .api import _bytes, _uint
from .compute import hx
from .injected import EXPIRY
from .native import NativeLane, Refused
from .rpc import RpcFailure, Session, invalid_params

REFUSED = -32001
FIELDS = ("destination", "payload", "value", "referenceBlock", "salt", "signature")


def parse_tx(v: Any) -> SignedTransaction:
    if not isinstance(v, dict):
        raise invalid_params("tx must be an object with " + ", ".join(FIELDS))
    extra = set(v) - set(FIELDS)
    if extra:
        raise invalid_params(f"tx has unknown field(s): {', '.join(sorted(extra))}")
    for k in FIELDS:
        if k not in v and k != "value":
            raise invalid_params(f"tx.{k} is missing")
    return SignedTransaction(
        InjectedTransaction(
            _bytes(v["destination"], "tx.destination", (20,)),
            _bytes(v["payload"], "tx.payload"),
            _bytes(v["referenceBlock"], "tx.referenceBlock", (32,)),
            _bytes(v["salt"], "tx.salt", (32,)),
            _uint(v.get("value", 0), "tx.value"),
        ),
        _bytes(v["signature"], "tx.signature", (65,)),
    )


class InjectedApi:
    def __init__(self, lane: NativeLane, service: Any, nursery: trio.Nursery) -> None:
        self.lane = lane
        self.svc = service
        self.nursery = nursery

    def methods(self) -> dict[str, Any]:
        return {
            "injected_sendTransaction": self.send,
            "injected_sendTransactionAndWatch": self.send_and_watch,
            "injected_getTransactionReceipt": self.receipt,
            "injected_info": self.info,
            "injected_sequencerBlock": self.sequencer_block,
        }

    async def _accept(self, tx: Any) -> bytes:
        stx = parse_tx(tx)
        try:
            h = self.lane.accept(stx)
        except Refused as e:
            raise RpcFailure(REFUSED, str(e)) from None
        self.lane.forward_soon(h)
        return h

    async def send(self, _s: Session, tx: Any) -> str:
        return hx(await self._accept(tx))

    async def send_and_watch(self, s: Session, tx: Any) -> str:
        if s.send is None:
            raise RpcFailure(-32000, "subscriptions need a WebSocket connection")
        if len(s.subscriptions) >= 64:
            raise RpcFailure(-32000, "too many subscriptions on this connection")
        h = await self._accept(tx)
        send_ch, recv_ch = trio.open_memory_channel[Any](64)
        sid = "0x" + h.hex()[:16] + hex(len(s.subscriptions))[2:]
        s.subscriptions[sid] = recv_ch
        sender = s.send

        async def pump() -> None:
            async with recv_ch:
                async for receipt in recv_ch:
                    try:
                        await sender(
                            {
                                "jsonrpc": "2.0",
                                "method": "subscription",
                                "params": {"subscription": sid, "result": receipt},
                            }
                        )
                    except Exception:
                        return
            s.subscriptions.pop(sid, None)

        self.nursery.start_soon(pump)
        self.lane.watch(h, send_ch)
        return sid

    async def receipt(self, _s: Session, tx_hash: Any) -> dict[str, Any] | None:
        return self.lane.receipt(_bytes(tx_hash, "hash", (32,)))

    async def sequencer_block(self, _s: Session, height: Any) -> dict[str, Any] | None:
        """A sequencer block this node ran (on its current chain of them): where it sits,
        its transactions' verdicts and its result."""
        n = _uint(height, "height")
        compute = self.lane.compute

        def run() -> dict[str, Any] | None:
            tip = compute.seq
            if tip is None or n > tip.height or n < 1:
                return None
            rec = compute.store.seq_at_height(n)
            data = compute.store.read(rec.result) if rec else None
            if rec is None or data is None:
                return None
            import json

            return json.loads(data)  # type: ignore[no-any-return]

        return await trio.to_thread.run_sync(run)

    async def info(self, _s: Session) -> dict[str, Any]:
        head = self.lane.compute.head
        return {
            "chain_id": self.svc.chain_id,
            "router": self.svc.router,
            "sequencer": hx(self.lane.sequencer),
            "head": {"number": head.number, "hash": hx(head.hash)} if head else None,
            "era": self.svc.era,
            "validators": [
                {"address": hx(a), "stake": w} for a, w in sorted(self.svc.validator_stakes.items())
            ],
            "expiry_blocks": EXPIRY,
            "max_payload_bytes": self.lane.cfg.max_payload_bytes,
        }


__all__ = ["InjectedApi", "parse_tx"]

"""The validator's RPC methods and subscription hub (used by rpc.py's dispatcher).

Every method reads committed data only (`Compute.head`/`state` and the store) and runs
blocking work in a worker thread. `program_calculateReplyForHandle` executes a message
against the current head state in a throwaway `BlockWriter` that is always aborted, with
its own `Executor` (its own compiled-code cache), so it never changes node state and
never races the compute thread's executor.

When modifying this part: result shapes are a public API (hex strings `0x…` for bytes,
ints for numbers).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

import trio
from gexe.node.snapshot import load_runtime_state
from gexe.runtime import (
    BlockInfo,
    Executor,
    Processor,
    QueueMessage,
    blake2b256,
)
from gexe.runtime.state import load_queue, load_state

from .compute import Compute, hx
from .rpc import RpcFailure, Session, invalid_params


def _bytes(v: Any, name: str, sizes: tuple[int, ...] | None = None) -> bytes:
    if not isinstance(v, str) or not v.startswith("0x"):
        raise invalid_params(f"{name} must be a 0x-prefixed hex string")
    try:
        b = bytes.fromhex(v[2:])
    except ValueError:
        raise invalid_params(f"{name} is not valid hex") from None
    if sizes is not None and len(b) not in sizes:
        raise invalid_params(f"{name} must be {' or '.join(map(str, sizes))} bytes")
    return b


def _actor(v: Any, name: str) -> bytes:
    b = _bytes(v, name, (20, 32))
    return bytes(12) + b if len(b) == 20 else b


def _uint(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise invalid_params(f"{name} must be a non-negative integer")
    if isinstance(v, str):
        try:
            v = int(v, 0)
        except ValueError:
            raise invalid_params(f"{name} must be a non-negative integer") from None
    if not 0 <= v < 1 << 128:
        raise invalid_params(f"{name} out of range")
    return v


def _block_number(v: Any) -> int:
    n = _uint(v, "block")
    if n >= 1 << 64:  # block numbers are u64 in the store's keys
        raise invalid_params("block out of range")
    return n


class Hub:
    """Subscriptions: each has a kind, a filter and a sender; slow ones are dropped."""

    KINDS = ("blockResults", "programReplies")

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.subs: dict[str, tuple[str, dict[str, Any], trio.MemorySendChannel[Any]]] = {}

    def add(self, kind: str, flt: dict[str, Any], chan: trio.MemorySendChannel[Any]) -> str:
        sid = hex(next(self._ids))
        self.subs[sid] = (kind, flt, chan)
        return sid

    def remove(self, sid: str) -> bool:
        entry = self.subs.pop(sid, None)
        if entry is not None:
            entry[2].close()
        return entry is not None

    def publish_block(self, result: dict[str, Any]) -> None:
        summary = {k: v for k, v in result.items() if k != "dispatches"}
        replies = [
            {"program_id": t["program_id"], "block": result["number"], **m}
            for t in result["transitions"]
            for m in t["messages"]
            if m["reply_to"] is not None
        ]
        for sid, (kind, flt, chan) in list(self.subs.items()):
            items: list[Any]
            if kind == "blockResults":
                items = [summary]
            else:
                items = [
                    r
                    for r in replies
                    if (flt.get("program_id") in (None, r["program_id"]))
                    and (flt.get("destination") in (None, r["destination"]))
                ]
            for it in items:
                try:
                    chan.send_nowait((sid, it))
                except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                    self.remove(sid)
                    break


class ValidatorApi:
    def __init__(
        self,
        compute: Compute,
        hub: Hub,
        status: Callable[[], dict[str, Any]],
        nursery: trio.Nursery,
    ) -> None:
        self.compute = compute
        self.hub = hub
        self.status = status
        self.nursery = nursery
        self._query_executor: Executor | None = None
        self._query_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(4)

    def methods(self) -> dict[str, Any]:
        return {
            "program_calculateReplyForHandle": self.calculate_reply,
            "program_state": self.program_state,
            "program_ids": self.program_ids,
            "program_queue": self.program_queue,
            "block_result": self.block_result,
            "code_get": self.code_get,
            "node_status": self.node_status,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
        }

    async def _thread(
        self, fn: Callable[[], Any], limiter: trio.CapacityLimiter | None = None
    ) -> Any:
        return await trio.to_thread.run_sync(fn, limiter=limiter or self._read_limiter)

    # -- programs

    async def calculate_reply(
        self, _s: Session, source: Any, program_id: Any, payload: Any = "0x", value: Any = 0
    ) -> dict[str, Any]:
        src = _actor(source, "source")
        pid = _actor(program_id, "program_id")
        data = _bytes(payload, "payload")
        val = _uint(value, "value")
        head, state = self.compute.head, self.compute.state
        if head is None or pid not in state.programs:
            raise RpcFailure(-32000, f"unknown program {hx(pid)}")
        store = self.compute.store

        def run() -> dict[str, Any]:
            # Ethereum cannot send this much value (balances are u128, ETH supply far less)
            if load_state(store, state.programs[pid]).balance + val >= 1 << 128:
                raise RpcFailure(-32000, "value would overflow the program's u128 balance")
            if self._query_executor is None:
                self._query_executor = Executor()
            mid = blake2b256(b"rpc-query", os.urandom(16))
            with store.begin_block() as w:
                proc = Processor(storage=w, executor=self._query_executor, workers=1)
                try:
                    _, result = proc.process_block(
                        state,
                        BlockInfo(head.number + 1, head.timestamp),
                        [QueueMessage(pid, mid, src, data, val)],
                    )
                finally:
                    proc.close()
                    w.abort()
            gas = sum(d.gas_burned for d in result.dispatches if d.message_id == mid)
            for t in result.transitions:
                for m in t.messages:
                    if m.is_reply and m.reply_to == mid:
                        return {
                            "payload": hx(m.payload),
                            "code": hx(m.reply_code),
                            "value": m.value,
                            "gas_burned": gas,
                            "block": head.number,
                        }
            raise RpcFailure(-32001, "the message produced no reply in this block")

        return await self._thread(run, self._query_limiter)  # type: ignore[no-any-return]

    async def program_ids(self, _s: Session) -> list[str]:
        return sorted(hx(p) for p in self.compute.state.programs)

    def _state_at(self, block: Any) -> tuple[Any, Any]:
        if block is None or block == "latest":
            return self.compute.head, self.compute.state
        store = self.compute.store
        rec = (
            store.block_by_number(_block_number(block))
            if not (isinstance(block, str) and len(block) == 66)
            else store.block(_bytes(block, "block", (32,)))
        )
        if rec is None:
            raise RpcFailure(-32000, "block not found (not processed yet, or pruned)")
        return rec, load_runtime_state(store, rec.state_root)

    async def program_state(
        self, _s: Session, program_id: Any, block: Any = None
    ) -> dict[str, Any]:
        pid = _actor(program_id, "program_id")

        def run() -> dict[str, Any]:
            rec, state = self._state_at(block)
            h = state.programs.get(pid)
            if h is None:
                raise RpcFailure(-32000, f"unknown program {hx(pid)}")
            st = load_state(self.compute.store, h)
            return {
                "program_id": hx(pid),
                "block": rec.number if rec else None,
                "state_hash": hx(h),
                "code_id": hx(st.code_id),
                "status": st.status.name.lower(),
                "inheritor": hx(st.inheritor),
                "balance": st.balance,
                "executable_balance": st.executable_balance,
                "queue": hx(st.queue),
                "waitlist": hx(st.waitlist),
                "pages": hx(st.pages),
            }

        return await self._thread(run)  # type: ignore[no-any-return]

    async def program_queue(self, _s: Session, program_id: Any) -> list[dict[str, Any]]:
        pid = _actor(program_id, "program_id")
        h = self.compute.state.programs.get(pid)
        if h is None:
            raise RpcFailure(-32000, f"unknown program {hx(pid)}")

        def run() -> list[dict[str, Any]]:
            st = load_state(self.compute.store, h)
            return [
                {
                    "id": hx(m.id),
                    "kind": m.kind.name.lower(),
                    "source": hx(m.source),
                    "payload": hx(m.payload),
                    "value": m.value,
                }
                for m in load_queue(self.compute.store, st.queue)
            ]

        return await self._thread(run)  # type: ignore[no-any-return]

    # -- blocks and codes

    async def block_result(self, _s: Session, block: Any = "latest") -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            store = self.compute.store
            if block == "latest":
                rec = self.compute.head
            elif isinstance(block, str) and len(block) == 66:
                rec = store.block(_bytes(block, "block", (32,)))
            else:
                rec = store.block_by_number(_block_number(block))
            if rec is None:
                return None
            return self.compute.result(rec)

        return await self._thread(run)  # type: ignore[no-any-return]

    async def code_get(self, _s: Session, code_id: Any) -> dict[str, Any] | None:
        cid = _bytes(code_id, "code_id", (32,))

        def run() -> dict[str, Any] | None:
            store = self.compute.store
            v = store.code_verdict(cid)
            if v is None:
                return None
            code = store.read(cid) if v.valid else None
            return {
                "code_id": hx(cid),
                "valid": v.valid,
                "reason": v.reason,
                "code": hx(code) if code is not None else None,
            }

        return await self._thread(run)  # type: ignore[no-any-return]

    async def node_status(self, _s: Session) -> dict[str, Any]:
        return self.status()

    # -- subscriptions (WebSocket only)

    async def subscribe(self, s: Session, kind: Any, filter: Any = None) -> str:  # noqa: A002
        if s.send is None:
            raise RpcFailure(-32000, "subscriptions need a WebSocket connection")
        if kind not in Hub.KINDS:
            raise invalid_params(f"kind must be one of {', '.join(Hub.KINDS)}")
        flt: dict[str, Any] = {}
        if filter is not None:
            if not isinstance(filter, dict):
                raise invalid_params("filter must be an object")
            for k in ("program_id", "destination"):
                if k in filter:
                    flt[k] = hx(_actor(filter[k], k))
        if len(s.subscriptions) >= 16:
            raise RpcFailure(-32000, "too many subscriptions on this connection")
        send_ch, recv_ch = trio.open_memory_channel[Any](256)
        sid = self.hub.add(kind, flt, send_ch)
        s.subscriptions[sid] = recv_ch
        sender = s.send

        async def pump() -> None:
            async with recv_ch:
                async for sub, item in recv_ch:
                    try:
                        await sender(
                            {
                                "jsonrpc": "2.0",
                                "method": "subscription",
                                "params": {"subscription": sub, "result": item},
                            }
                        )
                    except Exception:
                        self.hub.remove(sub)
                        return

        self.nursery.start_soon(pump)
        return sid

    async def unsubscribe(self, s: Session, subscription: Any) -> bool:
        if not isinstance(subscription, str) or subscription not in s.subscriptions:
            return False
        s.subscriptions.pop(subscription)
        return self.hub.remove(subscription)

    def close_session(self, s: Session) -> None:
        for sid in list(s.subscriptions):
            self.hub.remove(sid)
        s.subscriptions.clear()

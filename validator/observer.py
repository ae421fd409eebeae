"""The observer: follow Ethereum over JSON-RPC and hand confirmed blocks to compute.

The I/O shell around `chain.ChainTracker`. Each poll it reads the chain head, asks the
tracker what to fetch, fetches headers (JSON-RPC batches of `eth_getBlockByNumber`) and
the Router/Mirror logs of the same range (`eth_getLogs` by block range with a topic
filter — never a server-side filter object), checks that every log belongs to the header
fetched for its number (else the chain moved between calls: fetch again), fetches the
calldata of code uploads, and feeds the headers to the tracker one by one. `Apply`
decisions go to `on_block(header, items)`, `Revert` to `on_revert(ancestor)`.

- Adaptive chunking: a range starts at `max_range` blocks; a provider error about range
  or result size (or a timeout) halves it, successes grow it back.
- Failures are retried with exponential backoff (capped), forever: a block is never
  skipped. Cancellation (shutdown) interrupts any wait.
- After downtime the tracker resumes from the store's head; long catch-ups log
  `backfill` lines with done/total and blocks per second.
- When idle, the header at the tip's height is re-checked (at most every
  `tip_check_interval`, and at once when the chain got shorter), so a reorg to a chain
  that is not (yet) longer is also seen. Not on every poll: on a dev chain polled every
  0.1 s that check was half of a node's JSON-RPC traffic.

When modifying this part: keep decisions in the tracker (sans-IO, unit-tested); this
module only fetches and forwards.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import trio
from gexe.contracts import EthClient, RpcError
from gexe.node.logging import get_logger

from .chain import Apply, ChainTracker, Header, Revert
from .events import Item, block_items, input_requests, watched_topics

log = get_logger("observer")

OnBlock = Callable[[Header, list[Item]], Awaitable[None]]
OnRevert = Callable[[Header, int], Awaitable[None]]

_RANGE_WORDS = ("range", "limit", "too many", "too large", "exceed", "size", "timeout")
MAX_BACKOFF = 10.0
HEADER_BATCH = 100


class Inconsistent(Exception):
    """Data fetched in separate calls belongs to different forks; fetch again."""


def _is_range_error(e: BaseException) -> bool:
    if isinstance(e, httpx.TimeoutException):
        return True
    if isinstance(e, RpcError):
        text = e.message.lower()
        return e.code in (-32005, -32602) or any(w in text for w in _RANGE_WORDS)
    return False


RETRYABLE = (httpx.HTTPError, RpcError, OSError, ValueError, KeyError, TypeError, Inconsistent)


class Observer:
    def __init__(
        self,
        client: EthClient,
        router: str,
        tracker: ChainTracker,
        *,
        on_block: OnBlock,
        on_revert: OnRevert,
        max_range: int = 1000,
        poll_interval: float = 2.0,
        backfill_log_interval: float = 2.0,
        tip_check_interval: float = 0.5,
    ) -> None:
        self.client = client
        self.router = router
        self.tracker = tracker
        self.on_block = on_block
        self.on_revert = on_revert
        self.max_range = max_range
        self.range = max_range
        self.poll_interval = poll_interval
        self.backfill_log_interval = backfill_log_interval
        self.tip_check_interval = tip_check_interval
        self._tip_checked = -1e9
        self.chain_head: int | None = None
        self.retries = 0
        self.reorgs = 0
        self._topics = [list(watched_topics())]

    # -- helpers

    async def _retry(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        delay = 0.05
        while True:
            try:
                return await fn()
            except RETRYABLE as e:
                self.retries += 1
                log.warning(
                    "rpc retry",
                    what=what,
                    error=f"{type(e).__name__}: {e}"[:300],
                    delay=round(delay, 2),
                )
                await trio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    async def _headers(self, first: int, last: int) -> list[Header]:
        out: list[Header] = []
        for lo in range(first, last + 1, HEADER_BATCH):
            hi = min(last, lo + HEADER_BATCH - 1)
            calls = [("eth_getBlockByNumber", [hex(n), False]) for n in range(lo, hi + 1)]
            blocks = await self.client.batch(calls)
            for b in blocks:
                if b is None:
                    raise Inconsistent("a block is not available yet")
                out.append(Header.from_rpc(b))
        for a, b in zip(out, out[1:], strict=False):
            if b.parent_hash != a.hash:
                raise Inconsistent(f"headers {a.number}..{b.number} are from different forks")
        return out

    async def _logs(self, first: int, last: int) -> list[dict[str, Any]]:
        """eth_getLogs over [first, last] in adaptive chunks."""
        out: list[dict[str, Any]] = []
        lo = first
        delay = 0.05
        while lo <= last:
            hi = min(last, lo + self.range - 1)
            try:
                out += await self.client.get_logs(from_block=lo, to_block=hi, topics=self._topics)
            except RETRYABLE as e:
                self.retries += 1
                if _is_range_error(e) and self.range > 1:
                    self.range = max(1, self.range // 2)
                    log.info("getLogs range shrunk", range=self.range, error=str(e)[:200])
                    continue
                log.warning(
                    "rpc retry", what="eth_getLogs", error=str(e)[:300], delay=round(delay, 2)
                )
                await trio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            lo = hi + 1
            if self.range < self.max_range:
                self.range = min(self.max_range, self.range * 2)
        return out

    async def _fetch(self, first: int, last: int) -> list[tuple[Header, list[Item]]]:
        headers = await self._headers(first, last)
        by_number = {h.number: h for h in headers}
        logs = await self._logs(first, last)
        grouped: dict[int, list[dict[str, Any]]] = {}
        for lg in logs:
            n = int(lg["blockNumber"], 16)
            h = by_number.get(n)
            if h is None or bytes.fromhex(lg["blockHash"][2:]) != h.hash:
                raise Inconsistent(f"logs of block {n} are from another fork")
            grouped.setdefault(n, []).append(lg)
        inputs: dict[bytes, bytes | None] = {}
        for txh in {t for lgs in grouped.values() for t in input_requests(lgs, self.router)}:
            tx = await self.client.get_transaction(txh)
            if tx is None:
                raise Inconsistent("a code upload or batch commit transaction is not available")
            inputs[txh] = bytes.fromhex(tx["input"][2:])
        return [(h, block_items(grouped.get(h.number, []), self.router, inputs)) for h in headers]

    # -- main loop

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        backfill: tuple[float, int, int] | None = None  # (t0, first, target)
        last_log = 0.0
        while True:
            head = await self._retry("eth_blockNumber", self.client.block_number)
            self.chain_head = head
            t = self.tracker
            n = t.want(head)
            if n is None:
                if backfill is not None:
                    t0, first, target = backfill
                    done = (t.tip.number if t.tip else first) - first + 1
                    log.info(
                        "backfill done",
                        blocks=done,
                        rate=round(done / max(1e-6, time.monotonic() - t0), 1),
                    )
                    backfill = None
                now = time.monotonic()
                shorter = t.tip is not None and head < t.tip.number
                if shorter or now - self._tip_checked >= self.tip_check_interval:
                    self._tip_checked = now
                    await self._check_tip(head)
                await trio.sleep(self.poll_interval)
                continue
            if t.searching:
                hdr = (await self._retry("header", lambda n=n: self._headers(n, n)))[0]
                d = t.feed(hdr)
                if isinstance(d, Revert):
                    await self._revert(d)
                continue
            target = t.confirmed_head(head)
            last = min(target, n + self.range - 1)
            if backfill is None and target - n >= 32:
                backfill = (time.monotonic(), n, target)
                log.info("backfill start", first=n, target=target, blocks=target - n + 1)
            blocks = await self._retry("blocks", lambda n=n, last=last: self._fetch(n, last))
            for hdr, items in blocks:
                d = t.feed(hdr)
                if d is None:  # the chain changed under us: search the ancestor
                    log.info("reorg detected", at=hdr.number)
                    break
                assert isinstance(d, Apply)
                await self.on_block(hdr, items)
            if backfill is not None and time.monotonic() - last_log >= self.backfill_log_interval:
                last_log = time.monotonic()
                t0, first, tgt = backfill
                done = (t.tip.number if t.tip else first) - first + 1
                total = tgt - first + 1
                rate = done / max(1e-6, time.monotonic() - t0)
                log.info(
                    "backfill",
                    done=done,
                    total=total,
                    rate=round(rate, 1),
                    eta=round((total - done) / rate, 1) if rate > 0 else None,
                )

    async def _check_tip(self, head: int) -> None:
        t = self.tracker
        if t.tip is None:
            return
        n = min(head, t.tip.number)
        if n not in t.applied:
            return
        try:  # one try: the next idle poll looks again, with a fresh head
            hdr = (await self._headers(n, n))[0]
        except RETRYABLE:
            # e.g. a reorg to a shorter branch between reading the head and asking for
            # block n: retrying n would wait until the chain grows back to it
            return
        d = t.check(hdr)
        if d is None and t.searching:
            log.info("reorg detected", at=n)
        elif isinstance(d, Revert):
            await self._revert(d)

    async def _revert(self, d: Revert) -> None:
        self.reorgs += 1
        log.info("reorg", ancestor=d.to.number, depth=d.depth)
        await self.on_revert(d.to, d.depth)


async def find_deploy_block(client: EthClient, address: str, head: int) -> int:
    """The first block where `address` has code (binary search over eth_getCode)."""
    if not await client.get_code(address, head):
        raise LookupError(f"no contract at {address} on this chain")
    lo, hi = 0, head
    while lo < hi:
        mid = (lo + hi) // 2
        if await client.get_code(address, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def items_summary(items: Sequence[Item]) -> dict[str, int]:
    out: dict[str, int] = {}
    for it in items:
        out[type(it).__name__] = out.get(type(it).__name__, 0) + 1
    return out

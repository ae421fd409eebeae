"""Ordering injected transactions into sequencer blocks: the sequencer's native role.

`Orderer` is the sans-IO part: a pool of forwarded transactions in arrival order (first
seen first served; duplicates ignored; bounded), and the decision of what the next block
holds — up to `max_block_txs` transactions and `MAX_BLOCK_BYTES` of payload, or nothing
but a seal when the Ethereum head moved (followers run block n+1 only after the sequencer
anchored a block past n, so every head gets at least an empty block).

`Ordering` is the role around it, run inside the validator whose key is the configured
`[native] sequencer`: it wakes on a new transaction or head, waits up to `block_interval`
after the previous block to gather more (a lone transaction on an idle sequencer goes at once), and hands the block to the host (`NativeLane.sequence`), which anchors it at
the head, signs, runs and gossips it. Transactions a block carried, refused or not, leave
the pool (`drop`); the host leaves out any its chain already carried, and a re-forward of
one its chain carried does not enter the pool (`host.carried`) — else every re-forward
from a node that lags would cost an empty block.

When modifying this part: the order of the pool is the order users get; the seal on
every head is what keeps followers live.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import trio
from gexe.node.logging import get_logger

log = get_logger("gexe.sequencer.ordering")

MAX_BLOCK_BYTES = 512 * 1024  # payload bytes per block: a block must fit one gossip message


class Orderer:
    def __init__(self, max_block_txs: int, pool_size: int) -> None:
        self.max_block_txs = max_block_txs
        self.pool_size = pool_size
        self.pool: OrderedDict[bytes, Any] = OrderedDict()
        self.need_seal = True
        self.dropped_full = 0

    def add(self, tx_hash: bytes, stx: Any) -> bool:
        if tx_hash in self.pool:
            return False
        if len(self.pool) >= self.pool_size:
            self.dropped_full += 1  # the forwarding node re-sends it later
            return False
        self.pool[tx_hash] = stx
        return True

    def drop(self, hashes: Iterable[bytes]) -> None:
        for h in hashes:
            self.pool.pop(h, None)

    def on_head(self) -> None:
        self.need_seal = True

    def ready(self) -> bool:
        return bool(self.pool) or self.need_seal

    def next_block(self) -> list[tuple[bytes, Any]] | None:
        """The next block's transactions ([] for a seal), or None when there is nothing."""
        if not self.ready():
            return None
        out: list[tuple[bytes, Any]] = []
        size = 0
        for h, stx in self.pool.items():
            n = len(stx.tx.payload) + 200
            if len(out) >= self.max_block_txs or (out and size + n > MAX_BLOCK_BYTES):
                break
            out.append((h, stx))
            size += n
        self.need_seal = False
        return out


class Ordering:
    """The role (see `gexe.validator.service.Role`)."""

    def __init__(self, host: Any, block_interval: float, max_block_txs: int, pool_size: int):
        self.host = host  # NativeLane
        self.interval = block_interval
        self.orderer = Orderer(max_block_txs, pool_size)
        self._wake = trio.Event()
        self.blocks = 0
        self._last = -1e9  # trio clock of the last block

    # -- Role
    def on_head(self) -> None:
        self.orderer.on_head()
        self._wake.set()

    def on_approval(self, msg: Any) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {
            "role": "ordering",
            "pool": len(self.orderer.pool),
            "blocks": self.blocks,
            "dropped_pool_full": self.orderer.dropped_full,
        }

    # -- host side
    def add(self, tx_hash: bytes, stx: Any) -> None:
        if self.host.carried(tx_hash):
            return
        if self.orderer.add(tx_hash, stx):
            self._wake.set()

    def drop(self, hashes: Iterable[bytes]) -> None:
        self.orderer.drop(hashes)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await self.host.recover()  # what the network has past our tip, before we sign
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if self.host.anchor_full() and not self.orderer.need_seal:
                continue  # this head's share is ordered: the next head wakes us
            if not self.orderer.need_seal:
                # busy (a block went out less than `interval` ago): gather a few more;
                # idle: a lone transaction goes out at once
                wait = self.interval - (trio.current_time() - self._last)
                if wait > 0:
                    await trio.sleep(wait)
            while self.orderer.ready():
                txs = self.orderer.next_block()
                if txs is None:
                    break
                out = await self.host.sequence(txs)
                if out is None:  # no head yet
                    self.orderer.need_seal = True
                    await trio.sleep(self.interval)
                    break
                self.blocks += 1  # what it carried left the pool (`drop`, from the host)
                self._last = trio.current_time()
                if self.host.anchor_full():
                    break

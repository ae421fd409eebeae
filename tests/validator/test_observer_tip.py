"""The observer's idle tip check when the chain shrank between reading the head and
asking for the tip's block (a reorg to a shorter branch): it must give up for this poll,
not retry that block until the chain grows back to it (found by CI: a validator hung in
retries while the dev chain stayed one block shorter)."""

from __future__ import annotations

from typing import Any

import trio
from gexe.validator.chain import ChainTracker, Header
from gexe.validator.observer import Observer


def _h(n: int, fork: int = 0) -> Header:
    return Header(n, bytes([fork, n]) + bytes(30), bytes([fork, n - 1]) + bytes(30), 1000 + n)


class ShrunkChain:
    """Blocks 1..37 exist (37 on another fork); block 38 is gone."""

    def __init__(self) -> None:
        self.calls = 0

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        self.calls += 1
        out = []
        for _, (num, _full) in calls:
            n = int(num, 16)
            if n > 37:
                out.append(None)
            else:
                h = _h(n, 1 if n == 37 else 0)
                out.append(
                    {
                        "number": hex(h.number),
                        "hash": "0x" + h.hash.hex(),
                        "parentHash": "0x" + h.parent_hash.hex(),
                        "timestamp": hex(h.timestamp),
                    }
                )
        return out


async def test_a_vanished_tip_block_does_not_hang_the_idle_check() -> None:
    applied = [_h(n) for n in range(30, 39)]
    tracker = ChainTracker(start=30, confirmations=0, keep=64, applied=applied)

    async def nothing(*_a: Any) -> None:
        return None

    client = ShrunkChain()
    obs = Observer(client, "0x" + "11" * 20, tracker, on_block=nothing, on_revert=nothing)  # type: ignore[arg-type]
    with trio.fail_after(5):
        await obs._check_tip(38)  # the head we read before the chain shrank
    assert client.calls == 1
    with trio.fail_after(5):  # the next poll, with the new head, sees the changed block
        await obs._check_tip(37)
    assert tracker.searching or obs.reorgs == 1

"""The chain tracker: a sans-IO state machine that follows Ethereum by parent hash.

The observer feeds it block headers it fetched by number and acts on what it answers:

- `want(chain_head)` → the next block number to fetch (or None: nothing confirmed yet);
- `feed(header)` → `Apply(header)` (process this block next), `Revert(ancestor)` (roll
  back to this already-applied block, then continue), or nothing (a reorg was seen and
  the tracker is walking back to find the common ancestor: fetch `want()` again).

It never skips a block: the next applied block is always `tip.number + 1` and its parent
hash must be the tip's hash. A header whose parent differs starts the ancestor search,
which compares the canonical header at `tip.number, tip.number - 1, ...` with the block
applied at that height, down to the first match. Blocks are applied only once they are
`confirmations` blocks below the chain head.

Invariants:
- `applied` holds the last `keep` applied headers, each the parent of the next.
- `tip` is the last applied header (None before the first block).
- A `Revert` is always to a header in `applied`; a reorg deeper than that raises
  `ReorgTooDeep` (the node cannot recompute state it no longer keeps).

When modifying this part: keep it free of I/O and clocks; unit-test every transition in
tests/validator/test_chain_tracker.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Header:
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int

    @classmethod
    def from_rpc(cls, block: dict[str, object]) -> Header:
        """From an `eth_getBlockBy*` answer (hex strings)."""

        def data(v: object) -> bytes:
            return bytes.fromhex(str(v).removeprefix("0x"))

        return cls(
            int(str(block["number"]), 16),
            data(block["hash"]),
            data(block["parentHash"]),
            int(str(block["timestamp"]), 16),
        )


@dataclass(frozen=True, slots=True)
class Apply:
    header: Header


@dataclass(frozen=True, slots=True)
class Revert:
    """Roll back to `to` (an applied block: the common ancestor of both branches)."""

    to: Header
    depth: int  # how many applied blocks are undone


Decision = Apply | Revert


class ReorgTooDeep(Exception):
    """The chain diverged below the oldest block still kept."""


class ChainTracker:
    def __init__(
        self,
        *,
        start: int,
        confirmations: int = 0,
        keep: int = 256,
        applied: list[Header] | None = None,
    ) -> None:
        """`start`: the first block to apply when nothing is applied yet. `applied`: the
        already-applied headers (oldest first, each the parent of the next), e.g. from
        the store after a restart."""
        if confirmations < 0 or keep < 1:
            raise ValueError("confirmations must be >= 0 and keep >= 1")
        self.start = start
        self.confirmations = confirmations
        self.keep = keep
        self.applied: dict[int, Header] = {}
        self.tip: Header | None = None
        self._probe: int | None = None  # ancestor search: the height being compared
        for h in applied or ():
            if self.tip is not None and (
                h.number != self.tip.number + 1 or h.parent_hash != self.tip.hash
            ):
                raise ValueError(f"applied headers are not a chain at block {h.number}")
            self.applied[h.number] = h
            self.tip = h
        self._prune()

    @property
    def searching(self) -> bool:
        return self._probe is not None

    def next_number(self) -> int:
        return self.start if self.tip is None else self.tip.number + 1

    def want(self, chain_head: int) -> int | None:
        """The block number to fetch next, given the chain's head number."""
        if self._probe is not None:
            return self._probe
        n = self.next_number()
        return n if n <= chain_head - self.confirmations else None

    def confirmed_head(self, chain_head: int) -> int:
        return chain_head - self.confirmations

    def feed(self, header: Header) -> Decision | None:
        """The canonical header at the number `want()` asked for."""
        if self._probe is not None:
            return self._search(header)
        expected = self.next_number()
        if header.number != expected:
            raise ValueError(f"fed block {header.number}, expected {expected}")
        if self.tip is not None and header.parent_hash != self.tip.hash:
            self._probe = self.tip.number
            return None
        self.applied[header.number] = header
        self.tip = header
        self._prune()
        return Apply(header)

    def check(self, header: Header) -> Decision | None:
        """A canonical header at or below the tip (e.g. the chain head after the chain
        got shorter): if it differs from the applied block there, start the ancestor
        search. Headers above the tip or below the kept window are ignored."""
        if self._probe is not None or self.tip is None:
            return None
        mine = self.applied.get(header.number)
        if mine is None or header.number > self.tip.number or mine.hash == header.hash:
            return None
        self._probe = header.number
        return self._search(header)

    def _search(self, header: Header) -> Decision | None:
        assert self._probe is not None and self.tip is not None
        if header.number != self._probe:
            raise ValueError(f"fed block {header.number}, expected {self._probe}")
        mine = self.applied.get(self._probe)
        if mine is not None and mine.hash == header.hash:
            depth = self.tip.number - mine.number
            for n in range(mine.number + 1, self.tip.number + 1):
                self.applied.pop(n, None)
            self.tip = mine
            self._probe = None
            return Revert(mine, depth)
        lowest = min(self.applied)
        if self._probe <= lowest:
            raise ReorgTooDeep(
                f"the chain diverged at or below block {lowest}, the oldest kept block; "
                "raise [node] keep_blocks or resync from an empty data directory"
            )
        self._probe -= 1
        return None

    def _prune(self) -> None:
        if self.tip is None:
            return
        cutoff = self.tip.number - self.keep
        for n in [n for n in self.applied if n <= cutoff]:
            del self.applied[n]

"""What the sequencer needs from the node it runs in: a source of batches.

The sequencer never executes programs (it imports neither the runtime nor the
validator). It asks a `BatchSource` — implemented by the validator it runs next to — for
the batch that is the deterministic function of `(previous committed batch, block)`:
everything its validator computed for the blocks after the previous batch's block up to
and including `block`. Every honest validator builds the same batch for the same pair,
which is what lets the sequencer ask them to sign it.

Invariants:
- `build(prev, block_hash)` is pure in its arguments and the chain: the same pair gives
  the same batch on every honest node, at any later time.
- `None` means "cannot say yet" (block not processed here, `prev` unknown here), never
  "empty": an empty batch is a `BatchCommitment` with no chain and no code commitments.

When modifying this part: the validator side (`gexe.validator.batch`) implements this
protocol structurally; keep both in step.
"""

from __future__ import annotations

from typing import Protocol

from gexe.contracts import BatchCommitment
from gexe.node.records import BlockRef

__all__ = ["BatchSource", "BlockRef"]


class BatchSource(Protocol):
    def head(self) -> BlockRef | None:
        """The newest block processed (and stored) by the node, or None before the first."""
        ...

    def committed_block(self, batch_hash: bytes) -> BlockRef | None:
        """The block a committed batch ends at (`ZERO_HASH` → `BlockRef(-1, ZERO_HASH)`,
        before everything), or None if the node has not seen that batch."""
        ...

    def build(self, previous_batch_hash: bytes, block_hash: bytes) -> BatchCommitment | None:
        """The batch extending `previous_batch_hash` up to and including `block_hash`,
        or None when this node cannot build it (yet)."""
        ...

    def blocks_since(self, previous_batch_hash: bytes) -> list[BlockRef]:
        """The processed blocks after the previous batch's block up to the head, oldest
        first, that have something to commit (transitions or code verdicts) — the
        candidates for an earlier target when the batch up to the head is too big."""
        ...

"""Answering a sequencer's `RequestBatchValidation`: sign only what we computed (sans-IO).

A request names a batch by `(previous committed batch, block)` and the EIP-712 digest the
sequencer wants signed. The validator rebuilds that batch from its own results
(`BatchBook.build`) and signs only when its digest is the requested one. Outcomes:

- `Approve`: the digests match; the `ApproveBatch` to gossip (the signature is the
  Router's EIP-712 signature over the digest);
- `Refuse`: the digests differ, the request asks for a second digest for a pair we
  already signed, or we are not elected in the current era — never signed, logged with
  the reason;
- `Pending`: the block or the previous batch is not known here yet (we are behind); kept
  and retried after each processed block, then dropped after `max_age` blocks.

Invariants: at most one digest is ever signed per `(previous batch, block)` pair by this
process (the batch is a function of the pair, so an honest node never needs two);
signing is deterministic (RFC 6979), so re-sending an approval is sending the same bytes.

When modifying this part: what a validator signs is what can be slashed; keep the
"rebuild and compare" rule.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gexe.contracts import BatchCommitment, batch_digest, batch_hash, sign_batch
from gexe.contracts.hashing import chain_commitments_hash, code_commitments_hash
from gexe.node.gossip_messages import ApproveBatch, BatchHeader, RequestBatchValidation

from .batch import BatchBook

_KEEP = 512


@dataclass(frozen=True, slots=True)
class Approve:
    message: ApproveBatch
    batch: BatchCommitment


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: str


@dataclass(frozen=True, slots=True)
class Pending:
    reason: str


Decision = Approve | Refuse | Pending


class Approver:
    def __init__(
        self,
        book: BatchBook,
        private_key: bytes,
        address: bytes,
        chain_id: int,
        router: str,
        current_era: Callable[[], int],
        *,
        elected: Callable[[], bool] = lambda: True,
        max_pending: int = 64,
        max_age: int = 32,
    ) -> None:
        self.book = book
        self._key = private_key
        self.address = address
        self.chain_id = chain_id
        self.router = router
        self.current_era = current_era
        self.elected = elected
        self.max_pending = max_pending
        self.max_age = max_age
        self.signed: OrderedDict[tuple[bytes, bytes], bytes] = OrderedDict()  # pair → digest
        self.approvals: OrderedDict[bytes, ApproveBatch] = OrderedDict()  # digest → ours
        self.pending: OrderedDict[bytes, tuple[RequestBatchValidation, int]] = OrderedDict()
        self.refused = 0

    def request(self, req: RequestBatchValidation) -> Decision:
        if not self.elected():
            self.refused += 1
            return Refuse("this validator is not in the current era's set")
        pair = (req.previous_batch_hash, req.block_hash)
        done = self.signed.get(pair)
        if done is not None:
            if done == req.batch_digest:
                batch = self.book.build(*pair)
                if batch is None:  # signed, then a reorg took the block away
                    self.refused += 1
                    return Refuse(
                        f"block 0x{req.block_hash.hex()[:16]} left this node's chain after "
                        "we signed its batch (a reorg); propose one for the new chain"
                    )
                return Approve(self.approvals[done], batch)
            self.refused += 1
            return Refuse(f"already signed digest 0x{done.hex()} for this (previous, block)")
        batch = self.book.build(req.previous_batch_hash, req.block_hash)
        if batch is None:
            if req.batch_digest not in self.pending:
                self.pending[req.batch_digest] = (req, 0)
                while len(self.pending) > self.max_pending:
                    self.pending.popitem(last=False)
            return Pending("block or previous batch not processed here yet")
        self.pending.pop(req.batch_digest, None)
        h = batch_hash(batch)
        digest = batch_digest(h, self.chain_id, self.router)
        if digest != req.batch_digest:
            self.refused += 1
            return Refuse(
                f"our batch for block 0x{req.block_hash.hex()[:16]} has digest "
                f"0x{digest.hex()[:16]}, the request 0x{req.batch_digest.hex()[:16]} "
                f"({_shape(batch)})"
            )
        sig = sign_batch(self._key, h, self.chain_id, self.router)
        msg = ApproveBatch(digest, self.current_era(), self.address, sig, header_of(batch))
        self.signed[pair] = digest
        self.approvals[digest] = msg
        for d in (self.signed, self.approvals):
            while len(d) > _KEEP:
                d.popitem(last=False)
        return Approve(msg, batch)

    def retry(self) -> list[tuple[RequestBatchValidation, Decision]]:
        """Re-examine pending requests (after a new block); ages them by one block."""
        out = []
        for digest, (req, age) in list(self.pending.items()):
            d = self.request(req)
            if isinstance(d, Pending):
                if age + 1 >= self.max_age:
                    self.pending.pop(digest, None)
                    out.append((req, Refuse(f"still unknown after {self.max_age} blocks")))
                else:
                    self.pending[digest] = (req, age + 1)
                continue
            out.append((req, d))
        return out


def header_of(batch: BatchCommitment) -> BatchHeader:
    """What an approval says it signed (lets any node prove an equivocation)."""
    return BatchHeader(
        batch.block_hash,
        batch.block_number,
        batch.previous_committed_batch_hash,
        chain_commitments_hash(batch.chain_commitment),
        code_commitments_hash(batch.code_commitments),
        batch.burned,
    )


def _shape(batch: BatchCommitment) -> str:
    n = len(batch.chain_commitment[0].transitions) if batch.chain_commitment else 0
    return f"ours: {n} transitions, {len(batch.code_commitments)} codes"

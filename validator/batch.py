"""Batches from stored block results: the validator's `BatchSource` (see gexe.sequencer).

A batch is the deterministic function of `(previous committed batch, target block)`:
every program transition, outgoing message and code verdict of the blocks after the
previous batch's block, up to and including the target, in canonical order:

- blocks oldest first; within a block, the order of its result;
- transitions merged per program in the order programs first changed: the last state
  hash, exit flag and inheritor, the messages of every block concatenated, and
  `value_to_receive` = the value those messages carry out of the Router's pool;
- code verdicts in block order; one `ChainCommitment` whose `head` is the target block,
  present only when some program changed;
- `burned`: the executable balance the blocks' dispatches burned (gas × `VALUE_PER_GAS`,
  exactly what the runtime charged), which the Router credits to the era's validators.

Where the previous batch ends comes from `BatchCommitted` calldata (`Store.committed_batch`)
or, for a batch this node built itself, from memory; the zero hash means "from the first
block this node processed". Blocks are found through the results' `content_prev` pointers,
so a quiet stretch between batches costs nothing.

Invariants: `build` returns None rather than a guess: the target must be a block on this
node's canonical chain, and the previous batch's block must be known and below the target
(and, while its record is retained, the target's ancestor). The same arguments give the
same batch on every honest validator, at any time.

When modifying this part: this is protocol — all validators must merge identically, and
the Router hashes exactly these structs.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from gexe.contracts import (
    ZERO_HASH,
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    Message,
    ReplyDetails,
    StateTransition,
    batch_hash,
)
from gexe.node.records import BlockRef
from gexe.runtime import limits

from .compute import Compute, has_content

_CACHE = 256


def _b(h: str | None) -> bytes:
    return bytes.fromhex(h[2:]) if h else b""


def _message(m: dict[str, Any]) -> Message:
    rd = ReplyDetails(_b(m["reply_to"]), _b(m["reply_code"])) if m["reply_to"] else ReplyDetails()
    return Message(
        _b(m["id"]), "0x" + m["destination"][-40:], _b(m["payload"]), m["value"], rd, m["call"]
    )


def merge(
    results: list[dict[str, Any]], target: BlockRef
) -> BatchCommitment:  # results oldest first
    """The batch body of consecutive blocks' results (without the previous-batch link)."""
    order: list[str] = []
    last: dict[str, dict[str, Any]] = {}
    messages: dict[str, list[Message]] = {}
    codes: list[CodeCommitment] = []
    for res in results:
        for t in res["transitions"]:
            pid = t["program_id"]
            if pid not in last:
                order.append(pid)
                messages[pid] = []
            last[pid] = t
            messages[pid].extend(_message(m) for m in t["messages"])
        codes.extend(CodeCommitment(_b(c["code_id"]), c["valid"]) for c in res["codes"])
    transitions = tuple(
        StateTransition(
            "0x" + pid[-40:],
            _b(last[pid]["new_state_hash"]),
            last[pid]["exited"],
            "0x" + last[pid]["inheritor"][-40:],
            sum(m.value for m in messages[pid]),
            (),
            tuple(messages[pid]),
        )
        for pid in order
    )
    chain = (ChainCommitment(transitions, target.hash),) if transitions else ()
    # every block that burns gas changes a program's state, so it is a content block
    burned = sum(res["gas_burned"] for res in results) * limits.VALUE_PER_GAS
    return BatchCommitment(target.hash, target.number, ZERO_HASH, chain, tuple(codes), burned)


class BatchBook:
    """`BatchSource` over a validator's `Compute` (thread-safe reads; LRU caches)."""

    def __init__(self, compute: Compute) -> None:
        self.compute = compute
        self._lock = threading.Lock()
        self._results: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        self._built: OrderedDict[tuple[bytes, bytes], BatchCommitment] = OrderedDict()
        self._ends: OrderedDict[bytes, BlockRef] = OrderedDict()  # batches built here

    # -- BatchSource

    def head(self) -> BlockRef | None:
        rec = self.compute.head
        return None if rec is None else BlockRef(rec.number, rec.hash)

    def committed_block(self, batch_hash_: bytes) -> BlockRef | None:
        if batch_hash_ == ZERO_HASH:
            return BlockRef(-1, ZERO_HASH)
        got = self.compute.store.committed_batch(batch_hash_)
        if got is not None:
            return BlockRef(got[1], got[0])
        with self._lock:
            return self._ends.get(batch_hash_)

    def build(self, previous_batch_hash: bytes, block_hash: bytes) -> BatchCommitment | None:
        target = self._canonical(block_hash)  # checked first: a reorg can drop a target
        if target is None:
            return None
        key = (previous_batch_hash, block_hash)
        with self._lock:
            hit = self._built.get(key)
        if hit is not None:
            return hit
        prev = self.committed_block(previous_batch_hash)
        if prev is None or prev.number >= target.number:
            return None
        if prev.hash != ZERO_HASH:
            anc = self.compute.store.block_by_number(prev.number)
            if anc is not None and anc.hash != prev.hash:
                return None  # the previous batch's block is not on our chain
        results = [r for _, r in self._content(target, prev.number)]
        results.reverse()
        body = merge(results, target)
        batch = BatchCommitment(
            body.block_hash,
            body.block_number,
            previous_batch_hash,
            body.chain_commitment,
            body.code_commitments,
            body.burned,
        )
        with self._lock:
            self._built[key] = batch
            self._ends[batch_hash(batch)] = target
            for d in (self._built, self._ends):
                while len(d) > _CACHE:
                    d.popitem(last=False)
        return batch

    def blocks_since(self, previous_batch_hash: bytes) -> list[BlockRef]:
        prev = self.committed_block(previous_batch_hash)
        head = self.head()
        if prev is None or head is None:
            return []
        out: list[BlockRef] = []
        for ref, _ in self._content(head, prev.number):
            if ref.sequenced:  # first committable with the Ethereum block after its anchor
                nxt = self.compute.store.block_by_number(ref.number + 1)
                if nxt is None or nxt.number > head.number:
                    continue
                ref = BlockRef(nxt.number, nxt.hash)
            if not out or out[-1] != ref:
                out.append(ref)
        out.reverse()
        return out

    # -- helpers

    def _canonical(self, block_hash: bytes) -> BlockRef | None:
        rec = self.compute.store.block(block_hash)
        if rec is None:
            return None
        canon = self.compute.store.block_by_number(rec.number)
        if canon is None or canon.hash != rec.hash:
            return None
        return BlockRef(rec.number, rec.hash)

    def _result(self, key: bytes) -> dict[str, Any]:
        with self._lock:
            hit = self._results.get(key)
        if hit is not None:
            return hit
        data = self.compute.store.read(key)
        if data is None:
            raise LookupError(f"block result 0x{key.hex()} is missing from the store")
        res = json.loads(data)
        with self._lock:
            self._results[key] = res
            while len(self._results) > _CACHE:
                self._results.popitem(last=False)
        return res

    def _content(self, start: BlockRef, above: int) -> Iterator[tuple[BlockRef, dict[str, Any]]]:
        """Blocks with content from `start` back to (excluding) number `above`, newest first."""
        rec = self.compute.store.block(start.hash)
        if rec is None:
            return
        res = self._result(rec.result)
        if has_content(res):
            yield start, res
        ptr = res.get("content_prev")
        # a sequencer block anchored at block n runs after n's events: it belongs to the
        # batches that end after n
        while ptr is not None and (
            ptr["number"] > above or (ptr["number"] == above and "seq" in ptr)
        ):
            res = self._result(_b(ptr["result"]))
            yield BlockRef(ptr["number"], _b(ptr["hash"]), "seq" in ptr), res
            ptr = res.get("content_prev")

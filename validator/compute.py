"""The compute step: fold one confirmed Ethereum block into the runtime and persist it.

`Compute.apply(header, items)` runs in a worker thread (it blocks: WASM, LMDB fsync):

1. one `BlockWriter` (one LMDB write transaction) is opened for the block;
2. code uploads get their verdict (`events.code_verdict`); valid code is stored under
   its id (the CAS key of the bytes is the code id) and every verdict recorded;
3. runtime events are filtered deterministically — a `CreateProgram` whose code is not
   valid here, or an event for a Mirror that is not one of our programs, is dropped;
4. `Processor.process_block` folds them in; the new runtime state is snapshotted, the
   block's result encoded (canonical JSON), and a `BlockRecord` put and made the head;
5. everything commits at once. A crash leaves the previous block or this one.

The result also carries `commitment`: the hash of the one-block `BatchCommitment`
(`previous_committed_batch_hash` = zero) of this block's transitions and code verdicts (a
fingerprint of the block's outcome that tests compare across validators), and
`content_prev`: a pointer to the newest earlier block whose result has something to
commit (transitions or code verdicts). Batches (`batch.py`) follow these pointers, so
building one costs in proportion to the blocks with content, however long the quiet
stretch since the previous batch. `BatchCommitted` events record where each committed
batch ends (`Store.committed_batch`).

Invariants: the stored result and state root are a pure function of the chain's blocks
(same inputs → byte-identical results on every validator); `head`/`state` are replaced
atomically after a commit, so readers (RPC) always see a committed block.

When modifying this part: the result encoding is read by the RPC and compared across
validators in tests; the filtering rules are protocol.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gexe.contracts import (
    ZERO_HASH,
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    ReplyDetails,
    StateTransition,
    batch_hash,
)
from gexe.contracts import Message as EthMessage
from gexe.node.records import ZERO_HASH as ZERO32
from gexe.node.records import BlockRecord, CodeVerdict, SeqRecord
from gexe.node.snapshot import load_runtime_state, store_runtime_state
from gexe.node.store import Store
from gexe.runtime import (
    BlockInfo,
    BlockResult,
    CreateProgram,
    Event,
    ProcessingError,
    Processor,
    RuntimeState,
    Transition,
)
from gexe.runtime.message import Message

from .chain import Header
from .events import CodeUpload, CommittedBatch, Item, code_verdict
from .injected import Verdict, judge, queue_message


def hx(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _addr(actor_id: bytes) -> str:
    return hx(actor_id[-20:])


def eth_message(m: Message) -> EthMessage:
    rd = ReplyDetails(m.reply_to, m.reply_code) if m.is_reply else ReplyDetails()
    return EthMessage(m.id, _addr(m.destination), m.payload, m.value, rd, m.call)


def state_transition(t: Transition) -> StateTransition:
    return StateTransition(
        _addr(t.program_id),
        t.new_state_hash,
        t.exited,
        _addr(t.inheritor),
        messages=tuple(eth_message(m) for m in t.messages),
    )


def block_commitment(
    header: Header, transitions: Sequence[Transition], codes: Sequence[tuple[bytes, bool]]
) -> BatchCommitment:
    chains = (
        (ChainCommitment(tuple(state_transition(t) for t in transitions), header.hash),)
        if transitions
        else ()
    )
    return BatchCommitment(
        header.hash,
        header.number,
        ZERO_HASH,
        chains,
        tuple(CodeCommitment(cid, ok) for cid, ok in codes),
    )


def _message_json(m: Message) -> dict[str, Any]:
    return {
        "id": hx(m.id),
        "source": hx(m.source),
        "destination": hx(m.destination),
        "payload": hx(m.payload),
        "value": m.value,
        "reply_to": hx(m.reply_to) if m.is_reply else None,
        "reply_code": hx(m.reply_code) if m.is_reply else None,
        "call": m.call,
    }


def _transitions_json(transitions: Sequence[Transition]) -> list[dict[str, Any]]:
    return [
        {
            "program_id": hx(t.program_id),
            "new_state_hash": hx(t.new_state_hash),
            "exited": t.exited,
            "inheritor": hx(t.inheritor),
            "messages": [_message_json(m) for m in t.messages],
        }
        for t in transitions
    ]


def _dispatches_json(dispatches: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "program_id": hx(d.program_id),
            "message_id": hx(d.message_id),
            "kind": d.kind.name.lower(),
            "status": d.status,
            "gas_burned": d.gas_burned,
            "explanation": d.explanation,
        }
        for d in dispatches
    ]


def result_json(
    header: Header,
    root: bytes,
    result: BlockResult,
    codes: Sequence[tuple[bytes, bool, str]],
    commitment: bytes,
    dropped: int,
    content_prev: dict[str, Any] | None = None,
    committed: Sequence[CommittedBatch] = (),
) -> dict[str, Any]:
    return {
        "number": header.number,
        "hash": hx(header.hash),
        "parent_hash": hx(header.parent_hash),
        "timestamp": header.timestamp,
        "state_root": hx(root),
        "commitment": hx(commitment),
        "transitions": _transitions_json(result.transitions),
        "codes": [{"code_id": hx(c), "valid": ok, "reason": why} for c, ok, why in codes],
        "gas_burned": result.gas_burned,
        "rounds": result.rounds,
        "queued_left": result.queued_left,
        "dispatches": _dispatches_json(result.dispatches),
        "dropped_events": dropped,
        "content_prev": content_prev,
        "committed_batches": [
            {
                "hash": hx(c.batch_hash),
                "block_hash": hx(c.block_hash),
                "block_number": c.block_number,
            }
            for c in committed
        ],
    }


def has_content(result: dict[str, Any]) -> bool:
    """Whether a block result has anything to commit on chain."""
    return bool(result["transitions"] or result["codes"])


def encode_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    record: BlockRecord
    result: dict[str, Any]
    commitment: bytes
    dispatches: int
    gas_burned: int


@dataclass(frozen=True, slots=True)
class SeqOutcome:
    record: SeqRecord
    result: dict[str, Any]
    verdicts: tuple[Verdict, ...]
    dispatches: int
    gas_burned: int
    finish: Callable[[], None]  # commits and installs it (see `Compute.execute_seq`)


class SeqError(ValueError):
    """A sequencer block that does not extend this node's chain of them here and now."""


class Compute:
    """The validator's runtime state over its store. Not thread-safe for writers: one
    task calls `apply`/`revert_to` at a time (from a worker thread); readers may read
    `head` and `state` from any thread."""

    def __init__(self, store: Store, *, workers: int = 1, keep_blocks: int = 256) -> None:
        self.store = store
        self.keep_blocks = keep_blocks
        self.processor = Processor(storage=store, workers=workers)
        self.head: BlockRecord | None = store.head()
        # the last sequencer block run (native path), at the head or at an earlier block
        self.seq: SeqRecord | None = store.seq_tip(self.head.hash) if self.head else None
        self.state: RuntimeState = (
            load_runtime_state(store, self._root()) if self.head else RuntimeState()
        )
        self._since_prune = 0
        self.content_tip = self._content_tip(self.head)

    def _root(self) -> bytes:
        """The state root after the head and the sequencer blocks anchored at it."""
        assert self.head is not None
        if self.seq is not None and self.seq.anchor == self.head.hash:
            return self.seq.state_root
        return self.head.state_root

    def _content_tip(self, rec: BlockRecord | None) -> dict[str, Any] | None:
        """Pointer to the newest block (or sequencer block) at or before `rec`, and the
        sequencer blocks anchored at it, whose result has content."""
        if rec is None:
            return None
        if self.seq is not None and self.seq.anchor == rec.hash:
            data = self.store.read(self.seq.result)
            res = None if data is None else json.loads(data)
            if res is not None:
                if has_content(res):
                    return _seq_pointer(self.seq)
                return res.get("content_prev")
        res = self.result(rec)
        if res is None:
            return None
        if has_content(res):
            return {"number": rec.number, "hash": hx(rec.hash), "result": hx(rec.result)}
        return res.get("content_prev")

    def close(self) -> None:
        self.processor.close()

    def applied_headers(self, limit: int) -> list[Header]:
        """The last `limit` applied blocks from the store, oldest first."""
        out: list[Header] = []
        rec = self.head
        while rec is not None and len(out) < limit:
            out.append(Header(rec.number, rec.hash, rec.parent_hash, rec.timestamp))
            rec = self.store.block(rec.parent_hash) if rec.number > 0 else None
        out.reverse()
        return out

    def result(self, rec: BlockRecord) -> dict[str, Any] | None:
        data = self.store.read(rec.result)
        return None if data is None else json.loads(data)

    def apply(self, header: Header, items: Sequence[Item]) -> BlockOutcome:
        store = self.store
        prev = self.head
        with store.begin_block() as w:
            self.processor.storage = w
            try:
                known = set(self.state.programs)
                codes: list[tuple[bytes, bool, str]] = []
                events: list[Event] = []
                committed: list[CommittedBatch] = []
                dropped = 0
                for it in items:
                    if isinstance(it, CommittedBatch):
                        committed.append(it)
                        if it.block_number >= 0:
                            w.put_committed_batch(it.batch_hash, it.block_hash, it.block_number)
                    elif isinstance(it, CodeUpload):
                        if w.code_verdict(it.code_id) is not None:
                            dropped += 1  # already judged (a repeat request cannot happen)
                            continue
                        ok, why = code_verdict(it)
                        if ok:
                            assert it.code is not None
                            w.write(it.code)
                        w.put_code_verdict(it.code_id, CodeVerdict(ok, why))
                        codes.append((it.code_id, ok, why))
                    elif isinstance(it, CreateProgram):
                        v = w.code_verdict(it.code_id)
                        if it.program_id in known or v is None or not v.valid:
                            dropped += 1
                            continue
                        known.add(it.program_id)
                        events.append(it)
                    elif it.program_id in known:
                        events.append(it)
                    else:
                        dropped += 1
                info = BlockInfo(header.number, header.timestamp)
                try:
                    state, result = self.processor.process_block(self.state, info, events)
                except ProcessingError:  # deterministic: every validator does the same
                    dropped += len(events)
                    state, result = self.processor.process_block(self.state, info, [])
                root = store_runtime_state(
                    w,
                    state,
                    previous=self._root() if prev else None,
                    changed=[t.program_id for t in result.transitions],
                )
                commitment = batch_hash(
                    block_commitment(header, result.transitions, [(c, ok) for c, ok, _ in codes])
                )
                body = result_json(
                    header, root, result, codes, commitment, dropped, self.content_tip, committed
                )
                res = w.write(encode_json(body))
                rec = BlockRecord(
                    header.hash, header.number, header.parent_hash, header.timestamp, root, res
                )
                w.put_block(rec)
                if self.seq is not None:  # sequencer blocks run so far, as of this block
                    w.put_seq_tip(rec.hash, self.seq.hash)
                w.set_head(rec.hash)
                w.commit()
            finally:
                self.processor.storage = store
        self.head = rec
        self.state = state
        if has_content(body):
            self.content_tip = {"number": rec.number, "hash": hx(rec.hash), "result": hx(res)}
        self._since_prune += 1
        if self._since_prune >= 64:
            self._since_prune = 0
            store.prune_blocks(self.keep_blocks)
        return BlockOutcome(rec, body, commitment, len(result.dispatches), result.gas_burned)

    def revert_to(self, header: Header) -> None:
        """Roll back to an applied block (the common ancestor of a reorg)."""
        self.store.rollback_to(header.hash)
        head = self.store.head()
        assert head is not None and head.hash == header.hash
        self.head = head
        self.seq = self.store.seq_tip(head.hash)
        self.state = load_runtime_state(self.store, self._root())
        self.content_tip = self._content_tip(head)

    # -- the native path

    def seq_canonical(self, seq_hash: bytes) -> SeqRecord | None:
        """The sequencer block `seq_hash` if it is on this node's chain of them."""
        rec = self.store.seq_block(seq_hash)
        if rec is None or self.seq is None or rec.height > self.seq.height:
            return None
        at = self.store.seq_at_height(rec.height)
        return rec if at is not None and at.hash == rec.hash else None

    def _ref_number(self, block_hash: bytes) -> int | None:
        rec = self.store.block(block_hash)
        if rec is None:
            return None
        canon = self.store.block_by_number(rec.number)
        return rec.number if canon is not None and canon.hash == rec.hash else None

    def apply_seq(
        self, msg: Any, seq_hash: bytes, tx_hashes: Sequence[bytes], domain: Any, max_payload: int
    ) -> SeqOutcome:
        """Run a sequencer block (`SequencerBlockMsg`, its hash and its transactions'
        hashes, all checked by the caller) on top of the head and the sequencer blocks
        before it. One LMDB transaction, like a block."""
        out = self.execute_seq(msg, seq_hash, tx_hashes, domain, max_payload)
        out.finish()
        return out

    def execute_seq(
        self, msg: Any, seq_hash: bytes, tx_hashes: Sequence[bytes], domain: Any, max_payload: int
    ) -> SeqOutcome:
        """`apply_seq` without its commit: the outcome (verdicts, replies) is final, but
        nothing is stored and `seq`/`state` stay put until `out.finish()` — which the
        caller must run (from a worker thread: it fsyncs) before anything else touches
        this Compute. Lets a node sign and gossip its promises while the disk writes."""
        h = msg.header
        head = self.head
        tip = self.seq
        if head is None or h.anchor != head.hash:
            raise SeqError(f"sequencer block {h.height} is not anchored at our head")
        if h.height != (tip.height + 1 if tip else 1) or h.parent != (tip.hash if tip else ZERO32):
            raise SeqError(f"sequencer block {h.height} does not extend our tip")
        store = self.store
        seen: set[bytes] = set()
        verdicts: list[Verdict] = []
        events: list[Event] = []
        programs = self.state.programs

        def included(t: bytes) -> bool:
            if t in seen:
                return True
            s = store.included_in(t)
            return s is not None and self.seq_canonical(s) is not None

        for stx, th in zip(msg.txs, tx_hashes, strict=True):
            v = judge(
                stx,
                domain,
                anchor_number=head.number,
                ref_number=self._ref_number,
                program_active=lambda pid: pid in programs,
                included=included,
                max_payload=max_payload,
            )
            assert v.tx_hash == th
            verdicts.append(v)
            if v.ok:
                seen.add(v.tx_hash)
                events.append(queue_message(v, stx))
        before = self._root()
        w = store.begin_block()
        try:
            self.processor.storage = w
            try:
                if events:
                    info = BlockInfo(head.number, head.timestamp)
                    state, result = self.processor.process_block(self.state, info, events)
                    root = store_runtime_state(
                        w,
                        state,
                        previous=before,
                        changed=[t.program_id for t in result.transitions],
                    )
                else:  # an empty block (a seal) changes nothing
                    state, result, root = self.state, None, before
                body = {
                    "kind": "sequencer",
                    "number": head.number,
                    "hash": hx(seq_hash),
                    "anchor": hx(head.hash),
                    "height": h.height,
                    "parent": hx(h.parent),
                    "state_root": hx(root),
                    "txs": [
                        {
                            "hash": hx(v.tx_hash),
                            "sender": hx(v.sender) if v.sender else None,
                            "status": "executed" if v.ok else "refused",
                            "reason": v.reason or None,
                        }
                        for v in verdicts
                    ],
                    "transitions": _transitions_json(result.transitions) if result else [],
                    "codes": [],
                    "gas_burned": result.gas_burned if result else 0,
                    "dispatches": _dispatches_json(result.dispatches) if result else [],
                    "queued_left": result.queued_left if result else 0,
                    "content_prev": self.content_tip,
                }
                res = w.write(encode_json(body))
                blob = w.write(replace(msg, era=0, resend=0).body())  # same bytes everywhere
                rec = SeqRecord(
                    seq_hash, h.height, head.hash, head.number, h.parent, root, res, blob
                )
                w.put_seq(rec, [v.tx_hash for v in verdicts if v.ok])
            finally:
                self.processor.storage = store
        except BaseException:
            w.abort()
            raise

        def finish() -> None:
            try:
                w.commit()
            finally:
                w.abort()  # frees the overlay; a no-op after a commit
            self.seq = rec
            self.state = state
            if has_content(body):
                self.content_tip = _seq_pointer(rec)

        return SeqOutcome(
            rec,
            body,
            tuple(verdicts),
            len(result.dispatches) if result else 0,
            result.gas_burned if result else 0,
            finish,
        )


def _seq_pointer(rec: SeqRecord) -> dict[str, Any]:
    return {
        "number": rec.anchor_number,
        "seq": rec.height,
        "hash": hx(rec.hash),
        "result": hx(rec.result),
    }

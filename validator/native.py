"""The native path inside a validator: injected transactions in, sequencer blocks run in
order between Ethereum blocks, promises out.

Roles of one `NativeLane` (every validator has one when `[native] sequencer` is set):

- **Pool** (RPC side): `accept` checks a user's signed transaction (signature, size,
  value, reference block, program, executable balance), keeps it and forwards it to the
  sequencer over gossip (`InjectedTx`, with whatever else was accepted meanwhile: one
  message per burst), again after `reforward_interval`, doubling the
  wait each time (up to 32×), until a sequencer block carries it or it expires. So a
  sequencer crash loses nothing a node accepted: the transaction is re-sent to the
  restarted sequencer, and ends executed (then pre-confirmed), refused, or expired —
  each visible in its receipt.
- **Follower**: sequencer blocks (gossip `SequencerBlockMsg`, signed by the configured
  sequencer) wait in `pending` by height and run in height order, each on top of the
  Ethereum block it is anchored to (`Compute.apply_seq`). Ethereum block `n+1` runs only
  once the sequencer has *sealed* block `n`: the next sequencer block after those
  anchored at `n` is anchored at `n+1` or later (`before_block`). A gap is asked for with
  `SequencerBlockRequest`; every node answers from its store.
- **Producer** (the node whose key is the sequencer): `sequence(txs)` anchors a block at
  the head, signs it, gossips it and runs it (the header holds no result, so followers
  run it while the sequencer does) — under the same lock as Ethereum blocks, so the
  anchor is the block the transactions really follow. At start it first *recovers*: it
  follows, asking peers for the blocks past its tip, until they stop coming — it may
  have signed blocks its store lost in a crash, and a second block at one of those
  heights would be equivocation. The ordering itself (which transactions, when) is the
  `gexe.sequencer.ordering` role.
- **Promises**: after every execution step, each reply to an injected transaction is
  signed (`Promise`: tx hash, keccak of the reply payload, reply code) and gossiped; the
  node holding the transaction collects them and marks it pre-confirmed when validators
  with more than 2/3 of the era's stake promised the reply it computed itself. Promises
  are signed and gossiped while the block's commit is still being written (the fsync is
  most of a block's time; a crash before it re-runs the block, with the same replies).
  A quorum still missing `PROMISE_WAIT` s after execution (a validator died between
  executing and gossiping, or gossip lost the message) is asked for again
  (`PromiseRequest`, backing off); validators answer from their stored results.
- **Equivocation**: two sequencer blocks for one `(anchor, height)` signed by the
  sequencer are kept as a proof (`node_status` → native.equivocations) and reported to
  the Slasher when `[validator] report_equivocation` allows.

Invariants: everything that changes state goes through `Compute` under `lock`, in the
order: Ethereum block n, the sequencer blocks anchored at n (height order), block n+1. A
transaction is executed at most once per chain of sequencer blocks (`judge`).

When modifying this part: a follower's liveness depends on the sequencer sealing every
block (an empty sequencer block suffices); the gating rule is protocol.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import trio
from eth_utils import keccak
from gexe.contracts.injected import (
    BadSignature,
    Domain,
    Promise,
    SequencerBlockHeader,
    SignedTransaction,
    transactions_hash,
)
from gexe.node.gossip_injected import (
    MAX_FORWARD_BYTES,
    MAX_PROMISES,
    MAX_TXS_PER_FORWARD,
    InjectedTx,
    PromiseRequest,
    Promises,
    SequencerBlockMsg,
    SequencerBlockRequest,
)
from gexe.node.logging import get_logger
from gexe.runtime import limits
from gexe.runtime.state import ProgramState

from .compute import SeqError, SeqOutcome, hx
from .injected import EXPIRY, actor

log = get_logger("gexe.validator.native")

RECEIPTS = 100_000  # receipts kept (oldest final ones go first)
AWAITING = 200_000  # executed transactions whose reply has not come yet
GAP_WAIT = 0.5  # seconds before asking for missing sequencer blocks
REQUEST_SPAN = 64  # blocks asked for (and answered) at once
RESEND_WAIT = 2.0  # seconds before this node re-sends the same block again (it is in flight)
RECOVER_QUIET = 1.5  # seconds without an answer that end the sequencer's start-up catch-up
RECOVER_MAX = 15.0  # seconds the catch-up may take at most
FINAL = ("preconfirmed", "refused", "expired")
# the least executable balance that buys a dispatch (the program pays for its messages)
MIN_BALANCE = limits.DISPATCH_BASE_GAS * limits.VALUE_PER_GAS
PROMISE_WAIT = 2.0  # seconds an executed transaction waits for its quorum before we ask


class Refused(ValueError):
    """A transaction this node will not accept; the message is for the user."""


@dataclass
class Entry:
    """What a node knows of one transaction it accepted (its receipt)."""

    stx: SignedTransaction
    sender: bytes
    ref_number: int
    status: str = "pending"  # pending | executed | preconfirmed | refused | expired
    reason: str | None = None
    seq: dict[str, Any] | None = None
    reply: tuple[bytes, bytes] | None = None  # (payload, code) as this node computed it
    promises: dict[bytes, dict[bytes, bytes]] = field(default_factory=dict)  # digest→{v: sig}
    accepted_at: float = field(default_factory=time.monotonic)
    forwarded_at: float = 0.0
    forwards: int = 0
    executed_at: float = 0.0
    reorged: int = 0  # times an Ethereum reorg undid its execution (then it ran again)
    promise_asks: int = 0  # PromiseRequests sent for it (the quorum is late)
    promise_asked_at: float = 0.0
    watchers: list[trio.MemorySendChannel[Any]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.status in FINAL


class NativeLane:
    def __init__(self, service: Any) -> None:
        self.svc = service
        self.cfg = service.cfg.native
        self.compute = service.compute
        self.sequencer = bytes.fromhex(self.cfg.sequencer[2:])
        signer = service.signer
        self.me = bytes.fromhex(signer.address[2:]) if signer is not None else None
        self.key = bytes(signer.key) if signer is not None else None
        self.is_sequencer = self.me == self.sequencer
        # the sequencer follows until `recover` ends: it must not sign a height twice
        self.recovering = self.is_sequencer
        self.domain: Domain | None = None  # once the chain id is known
        self.lock = trio.Lock()  # every Compute mutation (blocks, sequencer blocks, reverts)
        self.pending: dict[int, tuple[SequencerBlockMsg, bytes, list[bytes]]] = {}
        self._waiters: set[trio.Event] = set()  # woken when a sequencer block arrives
        self._gap_asked = 0.0
        self._answered: dict[int, float] = {}
        self._promised_again: dict[bytes, float] = {}
        self._committing: set[bytes] = set()  # the transactions of the block `_run` commits
        self._to_forward: list[bytes] = []  # accepted, not forwarded yet (`forward_loop`)
        self._forward_wake = trio.Event()
        self.seen: OrderedDict[tuple[bytes, int], tuple[bytes, SequencerBlockMsg]] = OrderedDict()
        self.equivocations: list[dict[str, Any]] = []
        self.pool: OrderedDict[bytes, Entry] = OrderedDict()
        self.open = 0  # entries of `pool` not final yet (bounded by `pool_size`)
        self.awaiting: OrderedDict[bytes, None] = OrderedDict()
        self.orderers: list[Any] = []  # the ordering role, on the sequencer's node
        self._anchored: tuple[bytes, int] = (b"", 0)  # (head, injected ordered after it)
        self.stats = {"accepted": 0, "seq_blocks": 0, "promises_signed": 0, "preconfirmed": 0}

    def start(self, chain_id: int, router: str) -> None:
        self.domain = Domain(chain_id, router)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        tip = self.compute.seq
        return {
            "sequencer": "0x" + self.sequencer.hex(),
            "producing": self.is_sequencer,
            "seq_height": tip.height if tip else 0,
            "seq_hash": hx(tip.hash) if tip else None,
            "pending_blocks": len(self.pending),
            "pool": sum(1 for e in self.pool.values() if e.status == "pending"),
            "equivocations": self.equivocations[-8:],
            **self.stats,
        }

    # ------------------------------------------------------------------ pool (RPC)

    def accept(self, stx: SignedTransaction) -> bytes:
        """Check and keep a user's transaction; return its hash (idempotent)."""
        assert self.domain is not None
        tx = stx.tx
        h = self.domain.tx_hash(tx)
        if h in self.pool:
            return h
        try:
            sender = self.domain.tx_sender(stx)
        except BadSignature as e:
            raise Refused(f"bad signature: {e}") from None
        if tx.value != 0:
            raise Refused("value must be 0: injected transactions cannot carry value")
        if len(tx.payload) > self.cfg.max_payload_bytes:
            raise Refused(f"payload is {len(tx.payload)} bytes, limit {self.cfg.max_payload_bytes}")
        head = self.compute.head
        if head is None:
            raise Refused("this node has not processed any block yet; retry shortly")
        ref = self.compute._ref_number(tx.reference_block)
        if ref is None:
            raise Refused(
                "reference block 0x"
                + tx.reference_block.hex()
                + " is not on this node's chain; use a recent block hash (injected_info)"
            )
        if head.number - ref >= EXPIRY:
            raise Refused(
                f"expired: reference block {ref} is {head.number - ref} blocks old "
                f"(limit {EXPIRY - 1}); sign again with a recent block"
            )
        pid = actor(tx.destination)
        state_hash = self.compute.state.programs.get(pid)
        if state_hash is None:
            raise Refused(f"0x{tx.destination.hex()} is not a program of this network")
        data = self.compute.store.read(state_hash)
        balance = ProgramState.decode(data).executable_balance if data is not None else 0
        if balance < MIN_BALANCE:
            raise Refused(
                f"program 0x{tx.destination.hex()} has {balance} executable balance, less "
                f"than one message's base cost ({MIN_BALANCE}); top it up"
            )
        if self.carried(h):
            raise Refused("already included: this transaction was executed before")
        if self.open >= self.cfg.pool_size:
            raise Refused("the node's transaction pool is full; retry later")
        self.pool[h] = Entry(stx, sender, ref)
        self.open += 1
        while len(self.pool) > RECEIPTS:
            old, e = next(iter(self.pool.items()))
            if not e.final:
                break
            self.pool.pop(old)
        self.stats["accepted"] += 1
        return h

    def forward_soon(self, h: bytes) -> None:
        """Queue an accepted transaction for `forward_loop` (the RPC's path)."""
        self._to_forward.append(h)
        self._forward_wake.set()

    async def forward_loop(self) -> None:
        """Forward what the RPC accepted, all of it in one message per turn: a burst of
        requests costs a few gossip messages, not one each."""
        while True:
            await self._forward_wake.wait()
            self._forward_wake = trio.Event()
            await trio.lowlevel.checkpoint()  # requests already read join this message
            batch, self._to_forward = self._to_forward, []
            await self.forward(batch)

    async def forward(self, hashes: list[bytes]) -> None:
        """(Re-)forward pending transactions to the sequencer (our own orderer, if we are
        it), as few `InjectedTx` messages as the limits allow."""
        now = time.monotonic()
        out: list[list[SignedTransaction]] = [[]]
        size, again = 0, False
        for h in hashes:
            e = self.pool.get(h)
            if e is None or e.status != "pending":
                continue
            again = again or e.forwards > 0
            e.forwarded_at = now
            e.forwards += 1
            for o in self.orderers:
                o.add(h, e.stx)
            n = len(e.stx.tx.payload) + 200
            if len(out[-1]) >= MAX_TXS_PER_FORWARD or (out[-1] and size + n > MAX_FORWARD_BYTES):
                out.append([])
                size = 0
            out[-1].append(e.stx)
            size += n
        if self.is_sequencer or not out[0]:
            return
        # a re-forward must differ in bytes: gossip drops what it has seen (by content)
        resend = time.monotonic_ns() & (2**63 - 1) if again else 0
        for chunk in out:
            await self.svc._gossip_out(InjectedTx(self.svc.era or 0, tuple(chunk), resend))

    async def reforward_loop(self) -> None:
        while True:
            await trio.sleep(min(self.cfg.reforward_interval, 0.5))
            head = self.compute.head
            now = time.monotonic()
            late: list[bytes] = []
            due: list[bytes] = []
            for h, e in list(self.pool.items()):
                if e.status == "executed":
                    if now - max(e.executed_at, e.promise_asked_at) >= PROMISE_WAIT * 2 ** min(
                        e.promise_asks, 5
                    ):
                        late.append(h)
                        e.promise_asks += 1
                        e.promise_asked_at = now
                    continue
                if e.status != "pending":
                    continue
                if head is not None and head.number - e.ref_number > EXPIRY:
                    self._set(e, "expired", reason="not ordered before it expired")
                elif now - e.forwarded_at >= self.cfg.reforward_interval * 2 ** min(
                    max(e.forwards - 1, 0), 5
                ):  # back off: a busy sequencer holds it already, a crashed one gets it
                    due.append(h)
            await self.forward(due)
            for i in range(0, len(late), MAX_PROMISES):
                log.info("asking for promises again", txs=len(late[i : i + MAX_PROMISES]))
                await self.svc._gossip_out(
                    PromiseRequest(
                        self.svc.era or 0,
                        tuple(late[i : i + MAX_PROMISES]),
                        time.monotonic_ns() & (2**63 - 1),
                    )
                )

    def on_revert(self) -> None:
        """After `Compute` rolled back an Ethereum reorg (caller holds `lock`): the
        sequencer blocks anchored at the blocks that left the chain are gone, and with
        them the executions of their transactions. A pre-confirmation promises a reply
        *on the chain it was made on*; a transaction whose execution was undone goes back
        to pending (its receipt says how often: `reorged`) and to the sequencer, to run
        again on the new chain — or to expire, if its reference block left too."""
        back = []
        for h, e in self.pool.items():
            if e.status not in ("executed", "preconfirmed") or self.carried(h):
                continue
            if e.status == "preconfirmed":
                self.open += 1
            e.status, e.seq, e.reply, e.promises = "pending", None, None, {}
            e.executed_at, e.promise_asks, e.promise_asked_at = 0.0, 0, 0.0
            e.reorged += 1
            self._notify(h, e)
            back.append(h)
        for h in back:
            self.forward_soon(h)
        if back:
            log.info("reorg undid executions", txs=len(back))

    def carried(self, h: bytes) -> bool:
        """Whether our chain of sequencer blocks executed transaction `h` (a block still
        being committed included: its promises may be out already)."""
        if h in self._committing:
            return True
        s = self.compute.store.included_in(h)
        return s is not None and self.compute.seq_canonical(s) is not None

    def receipt(self, h: bytes) -> dict[str, Any] | None:
        e = self.pool.get(h)
        if e is None:
            return None
        return self._receipt(h, e)

    def _receipt(self, h: bytes, e: Entry) -> dict[str, Any]:
        promises: list[dict[str, str]] = []
        if e.reply is not None:
            want = self._promise(h, *e.reply)
            got = e.promises.get(self.domain.promise_digest(want), {}) if self.domain else {}
            promises = [{"validator": hx(v), "signature": hx(s)} for v, s in got.items()]
        return {
            "hash": hx(h),
            "status": e.status,
            "reason": e.reason,
            "sender": hx(e.sender),
            "destination": hx(e.stx.tx.destination),
            "reference_block": e.ref_number,
            "sequencer_block": e.seq,
            "reply": (
                {"payload": hx(e.reply[0]), "code": hx(e.reply[1]), "hash": hx(keccak(e.reply[0]))}
                if e.reply
                else None
            ),
            "promises": promises,
            "reorged": e.reorged,
        }

    def watch(self, h: bytes, chan: trio.MemorySendChannel[Any]) -> None:
        e = self.pool[h]
        e.watchers.append(chan)
        self._notify(h, e)

    def _set(self, e: Entry, status: str, **kw: Any) -> None:
        if not e.final and status in FINAL:
            self.open -= 1
        e.status = status
        for k, v in kw.items():
            setattr(e, k, v)
        h = self.domain.tx_hash(e.stx.tx) if self.domain else b""
        self._notify(h, e)

    def _notify(self, h: bytes, e: Entry) -> None:
        if not e.watchers:
            return
        r = self._receipt(h, e)
        for ch in list(e.watchers):
            try:
                ch.send_nowait(r)
                if e.final:
                    ch.close()
                    e.watchers.remove(ch)
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                e.watchers.remove(ch)

    # ------------------------------------------------------------------ promises

    @staticmethod
    def _promise(h: bytes, payload: bytes, code: bytes) -> Promise:
        return Promise(h, keccak(payload), code)

    async def _after(self, result: dict[str, Any], out: SeqOutcome | None = None) -> None:
        """Bookkeeping after an execution step: receipts, promises, the orderer's pool."""
        if out is not None:
            seq = {
                "height": out.record.height,
                "hash": hx(out.record.hash),
                "anchor": hx(out.record.anchor),
                "anchor_number": out.record.anchor_number,
            }
            done = []
            for v in out.verdicts:
                done.append(v.tx_hash)
                if v.ok:
                    self.awaiting[v.tx_hash] = None
                e = self.pool.get(v.tx_hash)
                if e is None or e.status != "pending":
                    continue
                if v.ok:
                    self._set(e, "executed", seq=seq, executed_at=time.monotonic())
                else:
                    self._set(e, "refused", reason=v.reason, seq=seq)
            while len(self.awaiting) > AWAITING:
                self.awaiting.popitem(last=False)
            for o in self.orderers:
                o.drop(done)
        mine: list[tuple[Promise, bytes]] = []
        for h, payload, code in _replies(result):
            if h not in self.awaiting:
                continue
            self.awaiting.pop(h, None)
            e = self.pool.get(h)
            if e is not None:
                e.reply = (payload, code)
            if self.key is not None and self.domain is not None:
                p = self._promise(h, payload, code)
                mine.append((p, self.domain.sign_promise(self.key, p)))
            if e is not None:
                self._check_quorum(h, e)
        if mine and self.me is not None:
            self.stats["promises_signed"] += len(mine)
            for i in range(0, len(mine), 1024):
                msg = Promises(self.svc.era or 0, self.me, tuple(mine[i : i + 1024]))
                await self.svc.publish(msg)

    def stored_reply(self, h: bytes) -> tuple[bytes, bytes] | None:
        """The reply to transaction `h` in the results of the sequencer block of our
        chain that executed it (None if none did, or the reply came later)."""
        s = self.compute.store.included_in(h)
        rec = self.compute.seq_canonical(s) if s is not None else None
        blob = self.compute.store.read(rec.result) if rec is not None else None
        if blob is None:
            return None
        return next(((p, c) for t, p, c in _replies(json.loads(blob)) if t == h), None)

    async def on_promise_request(self, m: PromiseRequest) -> None:
        """Promise again, from our stored results, what a peer's quorum still lacks."""
        if self.key is None or self.me is None or self.domain is None:
            return
        now = time.monotonic()
        if len(self._promised_again) > 65536:
            self._promised_again.clear()
        out: list[tuple[Promise, bytes]] = []
        for h in m.tx_hashes:
            # each at most once per RESEND_WAIT, however many nodes ask
            if now - self._promised_again.get(h, -1e9) < RESEND_WAIT:
                continue
            reply = self.stored_reply(h)
            if reply is None:
                continue
            self._promised_again[h] = now
            p = self._promise(h, *reply)
            out.append((p, self.domain.sign_promise(self.key, p)))
        if out:
            log.info("promised again", txs=len(out))
            await self.svc._gossip_out(Promises(self.svc.era or 0, self.me, tuple(out)))

    def on_promises(self, m: Promises) -> None:
        assert self.domain is not None
        stakes = self.svc.validator_stakes
        if stakes and m.validator not in stakes:
            return
        for p, sig in m.promises:
            e = self.pool.get(p.tx_hash)
            if e is None:
                continue
            d = self.domain.promise_digest(p)
            if m.validator != self.me:  # our own are known good
                try:
                    if self.domain.promise_signer(p, sig) != m.validator:
                        continue
                except BadSignature:
                    continue
            e.promises.setdefault(d, {})[m.validator] = sig
            self._check_quorum(p.tx_hash, e)

    def _check_quorum(self, h: bytes, e: Entry) -> None:
        if e.reply is None or e.status == "preconfirmed" or self.domain is None:
            return
        got = e.promises.get(self.domain.promise_digest(self._promise(h, *e.reply)), {})
        stakes = self.svc.validator_stakes
        if stakes:
            total = sum(stakes.values())
            have = sum(stakes.get(v, 0) for v in got)
            ok = 3 * have > 2 * total
        else:  # no era read yet: count heads
            ok = len(got) * 3 > 2 * max(1, len(self.svc.validator_set))
        if ok:
            self.stats["preconfirmed"] += 1
            self._set(e, "preconfirmed")
        else:
            self._notify(h, e)

    # ------------------------------------------------------------------ producer

    async def sequence(self, txs: list[tuple[bytes, SignedTransaction]]) -> SeqOutcome | None:
        """Sequencer only: a block of `txs` anchored at the head, signed, run, gossiped.
        Transactions already carried by our chain are left out."""
        assert self.domain is not None and self.key is not None
        async with self.lock:
            head = self.compute.head
            if head is None:
                return None
            tip = self.compute.seq
            fresh, carried = [], []
            for h, stx in txs:
                s = self.compute.store.included_in(h)
                if s is None or self.compute.seq_canonical(s) is None:
                    fresh.append((h, stx))
                else:
                    carried.append(h)
            for o in self.orderers:
                o.drop(carried)
            # at most `max_injected_per_block` after one Ethereum block: their replies
            # must fit one commitBatch under the gas cap, with the block's own content;
            # the rest wait in the pool for the next head
            if self._anchored[0] != head.hash:
                self._anchored = (head.hash, 0)
            room = max(0, self.svc.cfg.sequencer.max_injected_per_block - self._anchored[1])
            fresh = fresh[:room]
            self._anchored = (head.hash, self._anchored[1] + len(fresh))
            hashes = [h for h, _ in fresh]
            header = SequencerBlockHeader(
                head.hash,
                head.number,
                tip.height + 1 if tip else 1,
                tip.hash if tip else bytes(32),
                transactions_hash(hashes),
            )
            msg = SequencerBlockMsg(
                self.svc.era or 0,
                header,
                self.domain.sign_block(self.key, header),
                tuple(stx for _, stx in fresh),
            )
            seq_hash = self.domain.block_hash(header)
            # out first: the followers run it while we do (the header holds no result);
            # a crash before our commit is covered by `recover` at the next start
            await self.svc._gossip_out(msg)
            out = await self._run(msg, seq_hash, hashes)
        return out

    def anchor_full(self) -> bool:
        """The head has had its share of injected transactions (see `sequence`)."""
        head = self.compute.head
        cap = self.svc.cfg.sequencer.max_injected_per_block
        return head is not None and self._anchored == (head.hash, cap) or cap == 0

    async def _run(self, msg: SequencerBlockMsg, seq_hash: bytes, hashes: list[bytes]) -> Any:
        """Run a sequencer block (caller holds `lock`): execute it, then sign and gossip
        the promises while the store commits (the fsync is most of a block's time), and
        only then let anything else touch `Compute` or see the new state."""
        out = await trio.to_thread.run_sync(
            self.compute.execute_seq, msg, seq_hash, hashes, self.domain, self.cfg.max_payload_bytes
        )
        self._committing = {v.tx_hash for v in out.verdicts if v.ok}
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, out.finish)
                await self._after(out.result, out)
        finally:
            self._committing = set()
        self.stats["seq_blocks"] += 1
        m = self.svc.metrics
        m.messages.inc(out.dispatches)
        m.gas.inc(out.gas_burned)
        if out.verdicts:
            log.info(
                "sequencer block",
                height=msg.header.height,
                anchor=msg.header.anchor_number,
                txs=len(out.verdicts),
                refused=sum(1 for v in out.verdicts if not v.ok),
                dispatches=out.dispatches,
            )
        self.svc.hub.publish_block(out.result)
        return out

    # ------------------------------------------------------------------ follower

    def on_block_msg(self, m: SequencerBlockMsg) -> None:
        """A sequencer block from gossip (checked here; queued for `drain`)."""
        assert self.domain is not None
        h = m.header
        try:
            if self.domain.block_signer(h, m.signature) != self.sequencer:
                log.warning("sequencer block not signed by the sequencer", height=h.height)
                return
        except BadSignature:
            return
        hashes = [self.domain.tx_hash(stx.tx) for stx in m.txs]
        if transactions_hash(hashes) != h.transactions_hash:
            log.warning("sequencer block with a wrong transactions hash", height=h.height)
            return
        seq_hash = self.domain.block_hash(h)
        self._check_equivocation(m, seq_hash)
        tip = self.compute.seq
        if tip is not None and h.height <= tip.height:
            return  # run already (or from a branch we left)
        if self.is_sequencer and not self.recovering:
            return  # our own blocks run when we make them
        old = self.pending.get(h.height)
        if old is not None and old[1] == seq_hash:
            return
        self.pending[h.height] = (m, seq_hash, hashes)
        for ev in self._waiters:
            ev.set()
        self._waiters.clear()

    async def arrival(self, timeout: float = float("inf")) -> None:
        """Wait for the next sequencer block from gossip (or `timeout` seconds)."""
        ev = trio.Event()
        self._waiters.add(ev)
        try:
            with trio.move_on_after(timeout):
                await ev.wait()
        finally:
            self._waiters.discard(ev)

    def _check_equivocation(self, m: SequencerBlockMsg, seq_hash: bytes) -> None:
        key = (m.header.anchor, m.header.height)
        first = self.seen.get(key)
        if first is None:
            self.seen[key] = (seq_hash, m)
            while len(self.seen) > 4096:
                self.seen.popitem(last=False)
            return
        if first[0] == seq_hash:
            return
        a = first[1]
        proof = {
            "anchor": hx(m.header.anchor),
            "height": m.header.height,
            "first": hx(first[0]),
            "second": hx(seq_hash),
        }
        if proof in self.equivocations:
            return
        self.equivocations.append(proof)
        log.warning("sequencer equivocation", **proof)
        self.svc.report_sequencer_equivocation(a.header, a.signature, m.header, m.signature)

    async def drain(self) -> None:
        """Run every pending sequencer block that extends our tip at our head."""
        while True:
            async with self.lock:
                tip = self.compute.seq
                nxt = self.pending.get(tip.height + 1 if tip else 1)
                head = self.compute.head
                if nxt is None or head is None:
                    return
                m, seq_hash, hashes = nxt
                if m.header.anchor != head.hash:
                    if m.header.anchor_number <= head.number:
                        self.pending.pop(m.header.height)  # a branch we are not on
                    return
                if m.header.parent != (tip.hash if tip else bytes(32)):
                    self.pending.pop(m.header.height)
                    return
                self.pending.pop(m.header.height)
                try:
                    await self._run(m, seq_hash, hashes)
                except SeqError as e:
                    log.warning("sequencer block skipped", error=str(e))

    async def before_block(self, number: int) -> None:
        """Wait until Ethereum block `number` may run: the sequencer sealed our head."""
        waited = time.monotonic()
        last = self.compute.seq
        while True:
            if self.is_sequencer and not self.recovering:
                return
            await self.drain()
            tip = self.compute.seq
            nxt = self.pending.get(tip.height + 1 if tip else 1)
            if nxt is not None and nxt[0].header.anchor_number >= number:
                return
            if tip is not last:  # blocks are coming in (a backlog, not a gap): no request
                last, waited = tip, time.monotonic()
            if time.monotonic() - waited > GAP_WAIT:
                await self._ask_gap()
                waited = time.monotonic()
            await self.arrival(GAP_WAIT)

    async def recover(self) -> None:
        """Sequencer only, before its first block: run the blocks the network holds past
        our tip, as a follower would. A crash can lose the last blocks we signed (they
        are gossiped before our commit, and an OS crash can undo the last commit);
        signing a second block at one of those heights would be slashable. Ends after
        `RECOVER_QUIET` s without an answer once a peer is connected (`RECOVER_MAX` at
        most; a network without gossip has nobody to ask)."""
        if not self.recovering:
            return
        start = time.monotonic()
        try:
            gossip = self.svc.gossip
            if gossip is None:
                return
            with trio.move_on_after(RECOVER_MAX):
                while self.compute.head is None or not gossip.connected_peers():
                    await trio.sleep(0.1)
                quiet = time.monotonic()
                while time.monotonic() - quiet < RECOVER_QUIET:
                    before = self.compute.seq
                    await self._ask_gap()
                    await self.arrival(GAP_WAIT)
                    await self.drain()
                    if self.compute.seq is not before or self.pending:
                        quiet = time.monotonic()
        finally:
            self.recovering = False
            tip = self.compute.seq
            log.info(
                "sequencer caught up",
                height=tip.height if tip else 0,
                seconds=round(time.monotonic() - start, 2),
            )

    async def after_block(self) -> None:
        await self.drain()

    async def _ask_gap(self) -> None:
        now = time.monotonic()
        if now - self._gap_asked < GAP_WAIT:
            return
        self._gap_asked = now
        tip = self.compute.seq
        start = tip.height + 1 if tip else 1
        log.info("asking for sequencer blocks", from_height=start)
        await self.svc._gossip_out(  # a fresh `resend`: the same bytes again would be dropped
            SequencerBlockRequest(
                self.svc.era or 0,
                start,
                start + REQUEST_SPAN - 1,
                time.monotonic_ns() & (2**63 - 1),
            )
        )

    async def on_request(self, m: SequencerBlockRequest) -> None:
        """Re-gossip the sequencer blocks we ran (a peer missed them)."""
        tip = self.compute.seq
        if tip is None or m.from_height > tip.height:
            return
        now = time.monotonic()
        last = min(m.to_height, m.from_height + REQUEST_SPAN - 1, tip.height)
        if len(self._answered) > 4096:
            self._answered.clear()
        for height in range(m.from_height, last + 1):
            # each block at most once per RESEND_WAIT, however the asked ranges overlap
            if now - self._answered.get(height, -1e9) < RESEND_WAIT:
                continue
            self._answered[height] = now
            rec = self.compute.store.seq_at_height(height)
            blob = self.compute.store.read(rec.block) if rec else None
            if blob is None:
                return
            m0 = SequencerBlockMsg.from_body(blob)  # re-sealed for the current era
            await self.svc._gossip_out(
                replace(m0, era=self.svc.era or 0, resend=time.monotonic_ns() & (2**63 - 1))
            )


def _replies(result: dict[str, Any]) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(message replied to, payload, reply code) of every reply in a step's result."""
    for t in result["transitions"]:
        for m in t["messages"]:
            if m["reply_to"] is not None:
                yield (
                    bytes.fromhex(m["reply_to"][2:]),
                    bytes.fromhex(m["payload"][2:]),
                    bytes.fromhex(m["reply_code"][2:]),
                )

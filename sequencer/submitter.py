"""The L1 transaction lifecycle of one `commitBatch` at a time.

Two layers:

- `SubmitMachine` — sans-IO. It is always waiting for exactly one answer: every input
  method returns the next `Action` (check the Router's latest batch, fetch the nonce,
  estimate gas, fetch fees, send a transaction, wait for a block and report receipts)
  until a `Finished` carrying the `Outcome`. Unit tests drive it with made-up answers.
- `Submitter` — the trio driver: performs actions with `EthClient`, signs EIP-1559
  (type-2) transactions with the sequencer's `LocalAccount`, retries transient RPC
  failures, logs every transaction sent.

Lifecycle of a job (a signed batch):
1. Check `Router.latestCommittedBatchHash()`: already the batch → done without sending
   (another sequencer won, or an earlier transaction of ours); anything but the batch's
   previous hash → abandon (the batch no longer extends the head). The same check runs
   again (at "pending") right before the first send, after a stagger in
   [0, `stagger`) that is a deterministic function of (batch, sender): sequencers racing
   for one batch do not check-and-send in lockstep, so the later ones see it committed.
2. `eth_estimateGas` at "pending" (a batch may name the newest block): a revert with
   `BatchDoesNotExtendHead` → abandon quietly; `BlockNotRecentAncestor` for a target not
   yet in the past → wait a block and retry; other reverts → abandon, naming the error.
   Gas limit = estimate × 1.25, capped at the gas cap (an estimate above the cap abandons).
3. Nonce: `eth_getTransactionCount(sender, "pending")` when unknown (start, after any
   failure, after a reorg of ours), otherwise tracked locally.
4. Fees: tip = `eth_maxPriorityFeePerGas` (1 gwei when the node lacks it), max fee =
   2 × base fee + tip, both capped by the configured ceiling.
5. Watch every hash sent for this nonce on each new block (any of them may be mined).
   Not included after `replace_after_blocks` blocks → check the Router's latest again and
   re-sign with the same nonce and fees bumped by `fee_bump_percent` (≥ 10 %, what nodes
   require), or at least to 2 × current base fee + tip.
6. A canonical receipt with status 1 → committed once it has `confirmations` blocks
   (itself included). Status 0 → check the Router's latest, abandon (or "already
   committed" when another transaction committed it). A seen receipt that disappears or
   whose block is no longer canonical → reorg: back to pending, keep watching/replacing.
7. When the job must end while a transaction of ours is still pending (the batch got
   committed by someone else, the head moved, the target became too old), the nonce is
   *drained*: a 0-value self-transfer replaces the doomed commit (same nonce, bumped
   fees), so no duplicate or reverting commit lands, and the job finishes once the nonce
   is used (by whichever of our transactions).

Invariants:
- One job at a time; a job ends only when no transaction of ours for its nonce can still
  be mined (nothing sent, or the nonce is used on chain) — or when it cannot be mined
  before a later job of ours: a reorg dropped an earlier transaction of ours, so our
  nonce waits behind a gap (`nonce_gap`, after `replace_after_blocks` blocks; the nonce
  is then read again and the next job fills the gap).
- All transactions of a job share one nonce; a replacement always raises both fees by at
  least `fee_bump_percent`, and never exceeds the fee ceiling (at the ceiling it waits).
- No send without a Router check in the same round: the initial send right after the
  check and the estimate, each replacement right after a check.

When modifying this part: keep decisions in `SubmitMachine` (tests/sequencer/
test_submit_machine.py drives every branch without a chain); the driver only performs
actions and maps RPC errors to inputs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import httpx
import trio
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from gexe.contracts import BatchCommitment, EthClient, RpcError
from gexe.node.logging import StructLogger, get_logger

T = TypeVar("T")

GWEI = 10**9
DEFAULT_TIP = 1 * GWEI
CANCEL_GAS = 21_000
GAS_MARGIN = 1.25
MAX_TARGET_AGE = 250  # blocks: past this a batch's blockhash() check cannot pass in time
LATEST_SELECTOR = keccak(text="latestCommittedBatchHash()")[:4]

COMMITTED = "committed"
ALREADY = "already_committed"
ABANDONED = "abandoned"


# ------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class Job:
    """A batch with enough signatures, and its `commitBatch` calldata."""

    batch: BatchCommitment
    batch_hash: bytes
    calldata: bytes
    signatures: int = 0


@dataclass(frozen=True, slots=True)
class TxRequest:
    """An EIP-1559 transaction to sign and send."""

    nonce: int
    gas: int
    max_fee: int
    tip: int
    to: str
    data: bytes
    kind: str  # "commit" | "cancel"
    replaces: bytes | None = None  # hash of the transaction this one replaces


@dataclass(frozen=True, slots=True)
class SentTx:
    hash: bytes
    nonce: int
    gas: int
    max_fee: int
    tip: int
    kind: str
    block: int  # head when sent


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: bytes
    status: int
    block_number: int
    block_hash: bytes
    gas_used: int
    canonical: bool = True  # its block is still the chain's block at that height


@dataclass(frozen=True, slots=True)
class Observation:
    """The chain after a new block: head, its base fee, receipts of the hashes asked for
    (None: not mined), and the sender's mined nonce (`eth_getTransactionCount` latest)."""

    block_number: int
    base_fee: int
    receipts: Mapping[bytes, Receipt | None]
    mined_nonce: int


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # COMMITTED | ALREADY | ABANDONED
    code: str  # short machine-readable reason (a metrics label)
    reason: str
    tx_hash: bytes | None = None
    block_number: int | None = None
    gas_used: int | None = None
    sent: tuple[SentTx, ...] = ()
    replacements: int = 0
    quiet: bool = False  # an expected race (another sequencer), not worth a warning


# actions


@dataclass(frozen=True, slots=True)
class CheckLatest:
    block: str = "latest"  # block tag of the eth_call
    delay: float = 0.0  # seconds to wait before asking (the stagger before a first send)


@dataclass(frozen=True, slots=True)
class FetchNonce:
    pass


@dataclass(frozen=True, slots=True)
class Estimate:
    to: str
    data: bytes


@dataclass(frozen=True, slots=True)
class FetchFees:
    pass


@dataclass(frozen=True, slots=True)
class Send:
    tx: TxRequest


@dataclass(frozen=True, slots=True)
class Watch:
    hashes: tuple[bytes, ...]
    after_block: int  # report the first block with a higher number


@dataclass(frozen=True, slots=True)
class Finished:
    outcome: Outcome


Action = CheckLatest | FetchNonce | Estimate | FetchFees | Send | Watch | Finished


@dataclass(frozen=True, slots=True)
class SubmitParams:
    router: str
    sender: str
    gas_cap: int = 16_777_216
    replace_after_blocks: int = 3
    fee_bump_percent: float = 12.5
    max_fee: int = 500 * GWEI
    confirmations: int = 1  # blocks on top of (and including) the commit's block
    max_send_failures: int = 3
    max_target_age: int = MAX_TARGET_AGE
    stagger: float = 0.0  # max seconds a first send waits (per batch and sender) before its check


def _bump(value: int, percent: float) -> int:
    return math.ceil(value * (100 + percent) / 100)


# ------------------------------------------------------------------ the machine


@dataclass
class _JobState:
    job: Job
    head: int
    purpose: str = "initial"  # what the pending CheckLatest is for
    gas: int | None = None
    sent: list[SentTx] = field(default_factory=list)
    last_send_block: int = 0
    mined: Receipt | None = None
    draining: Outcome | None = None  # the outcome decided while our tx is still pending
    send_failures: int = 0
    replacements: int = 0
    pending_tx: TxRequest | None = None
    ceiling_noted: bool = False


class SubmitMachine:
    """Sans-IO lifecycle of one commit transaction at a time (see the module docstring).

    `notes` collects (event, fields) pairs worth logging (reorgs, fee ceiling, send
    errors); the driver drains it after each step.
    """

    def __init__(self, params: SubmitParams) -> None:
        self.p = params
        self.nonce: int | None = None  # next nonce to use; None = ask the node
        self.s: _JobState | None = None
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self._expect: type | None = None

    # -- helpers --

    def _note(self, event: str, **fields: Any) -> None:
        self.notes.append((event, fields))

    def _st(self) -> _JobState:
        if self.s is None:
            raise RuntimeError("no job in progress")
        return self.s

    def _go(self, action: Action) -> Action:
        self._expect = type(action)
        return action

    def _check(self, expected: type) -> _JobState:
        if self._expect is not expected:
            raise RuntimeError(f"answer to {expected.__name__} while waiting for {self._expect}")
        return self._st()

    def _finish(
        self,
        kind: str,
        code: str,
        reason: str,
        *,
        receipt: Receipt | None = None,
        quiet: bool = False,
    ) -> Action:
        s = self._st()
        outcome = Outcome(
            kind,
            code,
            reason,
            receipt.tx_hash if receipt else None,
            receipt.block_number if receipt else None,
            receipt.gas_used if receipt else None,
            tuple(s.sent),
            s.replacements,
            quiet,
        )
        self.s = None
        return self._go(Finished(outcome))

    def _watch(self) -> Action:
        s = self._st()
        return self._go(Watch(tuple(t.hash for t in s.sent), s.head))

    def _drain(self, kind: str, code: str, reason: str, *, quiet: bool = False) -> Action:
        """End the job; first make sure no commit of ours can still be mined."""
        s = self._st()
        if not s.sent:
            return self._finish(kind, code, reason, quiet=quiet)
        if s.draining is None:
            s.draining = Outcome(kind, code, reason, quiet=quiet)
            self._note("draining", reason=reason, nonce=s.sent[-1].nonce)
            return self._go(FetchFees())
        return self._watch()

    def _ask_latest(self, purpose: str, block: str = "latest", delay: float = 0.0) -> Action:
        self._st().purpose = purpose
        return self._go(CheckLatest(block, delay))

    def stagger_delay(self, batch_hash: bytes) -> float:
        """How long this sender waits before the check that precedes its first send: a
        deterministic function of (batch, sender) in [0, stagger), so sequencers racing
        for the same batch check and send at different moments and the later ones see the
        batch committed instead of sending a transaction that would revert."""
        draw = keccak(bytes(batch_hash) + self.p.sender.lower().encode())[:8]
        return self.p.stagger * int.from_bytes(draw, "big") / 2**64

    @property
    def busy(self) -> bool:
        return self.s is not None

    # -- inputs --

    def start(self, job: Job, head: int) -> Action:
        """A new job; `head` is the chain's current block number."""
        if self.s is not None:
            raise RuntimeError("a job is already in progress")
        self.s = _JobState(job, head)
        return self._ask_latest("initial")

    def abort(self) -> None:
        """Forget the job (the driver failed); the nonce is asked again next time."""
        self.s = None
        self.nonce = None
        self._expect = None

    def on_latest(self, latest: bytes) -> Action:
        s = self._check(CheckLatest)
        job = s.job
        prev = job.batch.previous_committed_batch_hash
        if s.purpose == "initial":
            if latest == job.batch_hash:
                return self._finish(ALREADY, "already", "batch already committed", quiet=True)
            if latest != prev:
                return self._finish(ABANDONED, "head_moved", "the Router's head moved", quiet=True)
            if s.head - job.batch.block_number >= self.p.max_target_age:
                return self._finish(ABANDONED, "target_too_old", "target block too old")
            if s.gas is None:
                return self._go(Estimate(self.p.router, job.calldata))
            return self._go(FetchNonce() if self.nonce is None else FetchFees())
        if s.purpose == "presend":
            if latest == job.batch_hash:
                return self._finish(ALREADY, "already", "batch already committed", quiet=True)
            if latest != prev:
                return self._finish(ABANDONED, "head_moved", "the Router's head moved", quiet=True)
            assert s.pending_tx is not None
            return self._go(Send(s.pending_tx))
        if s.purpose == "replace":
            if latest == job.batch_hash:
                return self._drain(ALREADY, "already", "batch already committed", quiet=True)
            if latest != prev:
                return self._drain(ABANDONED, "head_moved", "the Router's head moved", quiet=True)
            return self._go(FetchFees())
        # "after" / "nonce_used": our nonce is used and our commit did not succeed
        if latest == job.batch_hash:
            return self._finish(
                ALREADY, "already", "batch committed by another transaction", quiet=True
            )
        if s.draining is not None:
            d = s.draining
            return self._finish(d.kind, d.code, d.reason, quiet=d.quiet)
        if s.purpose == "nonce_used":
            return self._finish(
                ABANDONED, "nonce_used", "our nonce was used by a transaction we did not send"
            )
        return self._finish(ABANDONED, "reverted", "commit transaction reverted")

    def on_nonce(self, nonce: int) -> Action:
        self._check(FetchNonce)
        self.nonce = nonce
        return self._go(FetchFees())

    def on_estimate(self, gas: int) -> Action:
        s = self._check(Estimate)
        if gas > self.p.gas_cap:
            return self._finish(
                ABANDONED, "gas_cap", f"needs {gas} gas, over the cap {self.p.gas_cap}"
            )
        s.gas = min(math.ceil(gas * GAS_MARGIN), self.p.gas_cap)
        return self._go(FetchNonce() if self.nonce is None else FetchFees())

    def on_estimate_failed(self, error: str | None, detail: str) -> Action:
        """`error`: the decoded custom error's name (None if not one of ours)."""
        s = self._check(Estimate)
        if error == "BatchDoesNotExtendHead":
            return self._finish(
                ABANDONED, "head_moved", "batch does not extend the head", quiet=True
            )
        if error == "BlockNotRecentAncestor" and s.job.batch.block_number >= s.head:
            return self._watch()  # the target is the newest block: wait for the next one
        return self._finish(ABANDONED, "estimate_failed", f"gas estimate failed: {detail}")

    def on_fees(self, base_fee: int, tip: int) -> Action:
        s = self._check(FetchFees)
        cap = self.p.max_fee
        last = s.sent[-1] if s.sent else None
        if last is None:
            tip = min(tip, cap)
            max_fee = min(2 * base_fee + tip, cap)
        else:
            min_tip, min_fee = (
                _bump(last.tip, self.p.fee_bump_percent),
                _bump(last.max_fee, self.p.fee_bump_percent),
            )
            tip = max(min_tip, min(tip, cap))
            max_fee = min(max(min_fee, 2 * base_fee + tip), cap)
            if max_fee < min_fee or tip > max_fee:
                if not s.ceiling_noted:
                    self._note("fee_ceiling", max_fee=cap, needed=min_fee)
                    s.ceiling_noted = True
                s.last_send_block = s.head  # try again after another round
                return self._watch()
        if max_fee < base_fee:
            if not s.ceiling_noted:
                self._note("fee_ceiling", max_fee=cap, base_fee=base_fee)
                s.ceiling_noted = True
            return self._watch()
        assert self.nonce is not None
        if s.draining is not None:
            req = TxRequest(self.nonce, CANCEL_GAS, max_fee, tip, self.p.sender, b"", "cancel")
        else:
            assert s.gas is not None
            req = TxRequest(
                self.nonce, s.gas, max_fee, tip, self.p.router, s.job.calldata, "commit"
            )
        s.pending_tx = req
        if last is None:  # a first send: one more look at the Router right before it
            delay = self.stagger_delay(s.job.batch_hash)
            return self._ask_latest("presend", "pending", delay)
        s.pending_tx = req = replace(req, replaces=last.hash)
        return self._go(Send(req))

    def on_sent(self, tx_hash: bytes) -> Action:
        s = self._check(Send)
        req = s.pending_tx
        assert req is not None
        if s.sent:
            s.replacements += 1
        s.sent.append(SentTx(tx_hash, req.nonce, req.gas, req.max_fee, req.tip, req.kind, s.head))
        s.last_send_block = s.head
        s.send_failures = 0
        s.pending_tx = None
        return self._watch()

    def on_send_failed(self, message: str) -> Action:
        s = self._check(Send)
        s.pending_tx = None
        text = message.lower()
        s.send_failures += 1
        self._note("send_failed", error=message)
        if "insufficient funds" in text:
            return self._drain(ABANDONED, "insufficient_funds", "insufficient funds for gas")
        if "nonce too low" in text or "nonce is too low" in text:
            if s.sent:  # one of ours may be mined: the next observation tells
                return self._watch()
            self.nonce = None
        elif "underpriced" in text:
            s.last_send_block = s.head  # retry with the next replacement round
            return self._watch()
        elif not s.sent:
            self.nonce = None
        if s.send_failures >= self.p.max_send_failures:
            return self._drain(ABANDONED, "send_failed", f"sending failed: {message}")
        if s.sent:
            return self._watch()
        return self._ask_latest("initial")  # fresh nonce, and the Router checked again

    def on_observed(self, obs: Observation) -> Action:
        s = self._check(Watch)
        s.head = max(s.head, obs.block_number)
        mined = [r for r in obs.receipts.values() if r is not None and r.canonical]
        if s.mined is not None and not any(r.tx_hash == s.mined.tx_hash for r in mined):
            self._note("reorg", tx=s.mined.tx_hash, block=s.mined.block_number)
            s.mined = None
            s.last_send_block = s.head
        if mined:
            r = mined[0]
            sent = next(t for t in s.sent if t.hash == r.tx_hash)
            self.nonce = max(self.nonce or 0, sent.nonce + 1)
            if sent.kind == "cancel":
                d = s.draining or Outcome(ABANDONED, "cancelled", "cancelled")
                return self._finish(d.kind, d.code, d.reason, quiet=d.quiet)
            if r.status == 1:
                s.mined = r
                if s.head - r.block_number + 1 >= self.p.confirmations:
                    return self._finish(COMMITTED, "committed", "committed", receipt=r)
                return self._watch()
            return self._ask_latest("after")
        if s.sent and obs.mined_nonce > s.sent[-1].nonce:
            # our nonce is used but none of our transactions shows: something else used it
            self.nonce = None
            return self._ask_latest("nonce_used")
        if not s.sent:
            return self._ask_latest("initial")
        if (
            obs.mined_nonce < s.sent[-1].nonce
            and s.head >= s.last_send_block + self.p.replace_after_blocks
        ):
            # A nonce below ours is free again: a reorg dropped an earlier transaction of
            # ours and the node did not return it to its pool (anvil never does). Ours
            # wait behind that gap, which only we would fill, so no replacement or cancel
            # at this nonce can be mined: end the job and read the nonce again ("pending"
            # skips queued transactions). What waits behind the gap becomes minable once
            # the next job fills it: a cancel lands harmlessly, a stale commit reverts
            # cheaply (or commits a batch the validators signed).
            self._note("nonce_gap", mined_nonce=obs.mined_nonce, nonce=s.sent[-1].nonce)
            self.nonce = None
            d = s.draining or Outcome(
                ABANDONED, "nonce_gap", "an earlier transaction of ours was dropped (nonce gap)"
            )
            return self._finish(d.kind, d.code, d.reason, quiet=d.quiet)
        if s.draining is None and s.head - s.job.batch.block_number >= self.p.max_target_age:
            return self._drain(ABANDONED, "target_too_old", "target block too old")
        if s.head >= s.last_send_block + self.p.replace_after_blocks:
            if s.draining is not None:
                return self._go(FetchFees())
            return self._ask_latest("replace")
        return self._watch()


# ------------------------------------------------------------------ the trio driver


class TransientError(Exception):
    """An RPC failure worth retrying."""


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


class Submitter:
    """Performs `SubmitMachine` actions against a node; one `submit` at a time."""

    def __init__(
        self,
        *,
        client: EthClient,
        account: LocalAccount,
        chain_id: int,
        params: SubmitParams,
        poll_interval: float = 0.25,
        log: StructLogger | None = None,
        max_retries: int = 8,
    ) -> None:
        self.client = client
        self.account = account
        self.chain_id = chain_id
        self.machine = SubmitMachine(params)
        self.poll_interval = poll_interval
        self.log = log or get_logger("sequencer")
        self.max_retries = max_retries
        self.last_tx: dict[str, Any] | None = None
        self._signed: dict[TxRequest, tuple[bytes, bytes]] = {}

    @property
    def params(self) -> SubmitParams:
        return self.machine.p

    async def submit(self, job: Job) -> Outcome:
        """Run the job to its end. Cancellation (or an unrecoverable RPC failure) aborts
        it; the nonce is then re-read from the node next time."""
        self._signed.clear()
        try:
            head = await self._retry(self.client.block_number)
            action = self.machine.start(job, head)
            while not isinstance(action, Finished):
                action = await self._perform(action)
                self._flush_notes()
            return action.outcome
        except BaseException:
            self.machine.abort()
            raise

    def _flush_notes(self) -> None:
        for event, fields in self.machine.notes:
            if event == "reorg":
                self.log.warning("commit reorged out", tx=fields["tx"], block=fields["block"])
            elif event == "fee_ceiling":
                self.log.warning("fee ceiling reached", **fields)
            elif event == "send_failed":
                self.log.warning("tx send failed", **fields)
            else:
                self.log.info(event.replace("_", " "), **fields)
        self.machine.notes.clear()

    async def _retry(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        delay = 0.1
        for attempt in range(self.max_retries):
            try:
                return await fn(*args)
            except (
                httpx.TransportError,
                httpx.HTTPStatusError,
                json.JSONDecodeError,  # an answer cut short
                TransientError,
            ) as exc:
                if attempt == self.max_retries - 1:
                    raise
                self.log.warning("rpc retry", error=str(exc) or type(exc).__name__)
                await trio.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    async def _perform(self, action: Action) -> Action:
        m = self.machine
        match action:
            case CheckLatest():
                if action.delay > 0:
                    await trio.sleep(action.delay)
                return m.on_latest(await self._retry(self._latest, action.block))
            case FetchNonce():
                return m.on_nonce(await self._retry(self.client.nonce, self.account.address))
            case Estimate():
                try:
                    gas = await self._retry(self._estimate, action)
                except RpcError as exc:
                    err = exc.revert
                    return m.on_estimate_failed(err.name if err else None, str(err or exc))
                return m.on_estimate(gas)
            case FetchFees():
                base, tip = await self._retry(self._fees)
                return m.on_fees(base, tip)
            case Send():
                return await self._send(action.tx)
            case Watch():
                return m.on_observed(await self._observe(action))
        raise AssertionError(f"unknown action {action!r}")

    async def _latest(self, block: str = "latest") -> bytes:
        data = await self.client.call(self.params.router, LATEST_SELECTOR, block=block)
        return bytes(data[-32:]) if len(data) >= 32 else bytes(32)

    async def _estimate(self, action: Estimate) -> int:
        tx = {"from": self.account.address, "to": action.to, "data": _hex(action.data)}
        return int(await self.client.request("eth_estimateGas", [tx, "pending"]), 16)

    async def _fees(self) -> tuple[int, int]:
        block = await self.client.get_block("latest")
        base = int(block["baseFeePerGas"], 16) if block and "baseFeePerGas" in block else 0
        try:
            tip = int(await self.client.request("eth_maxPriorityFeePerGas"), 16)
        except RpcError:
            tip = DEFAULT_TIP
        return base, tip

    def _sign(self, req: TxRequest) -> tuple[bytes, bytes]:
        """(raw, hash); the same request always gives the same bytes (RFC 6979)."""
        if req not in self._signed:
            tx = {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": req.nonce,
                "to": to_checksum_address(req.to),
                "value": 0,
                "data": _hex(req.data),
                "gas": req.gas,
                "maxFeePerGas": req.max_fee,
                "maxPriorityFeePerGas": req.tip,
            }
            signed = self.account.sign_transaction(tx)
            self._signed[req] = (bytes(signed.raw_transaction), bytes(signed.hash))
        return self._signed[req]

    async def _send(self, req: TxRequest) -> Action:
        raw, tx_hash = self._sign(req)
        try:
            await self._retry(self.client.send_raw_transaction, raw)
        except RpcError as exc:
            text = exc.message.lower()
            if "already known" in text or "known transaction" in text:
                return self._sent(req, tx_hash)
            return self.machine.on_send_failed(exc.message)
        return self._sent(req, tx_hash)

    def _sent(self, req: TxRequest, tx_hash: bytes) -> Action:
        fields = {
            "tx": tx_hash,
            "nonce": req.nonce,
            "kind": req.kind,
            "gas": req.gas,
            "max_fee_gwei": req.max_fee / GWEI,
            "tip_gwei": req.tip / GWEI,
        }
        if req.replaces is not None:
            self.log.info("tx replaced", replaces=req.replaces, **fields)
        else:
            self.log.info("tx sent", **fields)
        self.last_tx = {
            **fields,
            "tx": _hex(tx_hash),
            "replaces": req.replaces and _hex(req.replaces),
        }
        return self.machine.on_sent(tx_hash)

    async def _observe(self, action: Watch) -> Observation:
        while True:
            number = await self._retry(self.client.block_number)
            if number > action.after_block:
                break
            await trio.sleep(self.poll_interval)
        return await self._retry(self._snapshot, number, action.hashes)

    async def _snapshot(self, number: int, hashes: Sequence[bytes]) -> Observation:
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getBlockByNumber", [hex(number), False]),
            ("eth_getTransactionCount", [self.account.address, "latest"]),
        ]
        calls += [("eth_getTransactionReceipt", [_hex(h)]) for h in hashes]
        out = await self.client.batch(calls)
        block, mined_nonce, raw_receipts = out[0], int(out[1], 16), out[2:]
        if block is None:
            raise TransientError(f"block {number} not found")
        receipts: dict[bytes, Receipt | None] = {}
        for h, r in zip(hashes, raw_receipts, strict=True):
            receipts[h] = None
            if r is None or r.get("blockHash") is None:
                continue
            at = int(r["blockNumber"], 16)
            canon = await self.client.get_block(at)
            receipts[h] = Receipt(
                h,
                int(r.get("status", "0x0"), 16),
                at,
                bytes.fromhex(r["blockHash"][2:]),
                int(r["gasUsed"], 16),
                canon is not None and canon["hash"] == r["blockHash"],
            )
        base = int(block.get("baseFeePerGas") or "0x0", 16)
        return Observation(int(block["number"], 16), base, receipts, mined_nonce)

"""The sequencer role: propose batches, collect signatures, commit them on Ethereum.

`Sequencer` runs inside a validator process (`[sequencer] enabled = true`). The host
gives it a `BatchSource` (its own validator's results), a way to publish gossip, the
current era, and calls `on_head()` after every processed block and `on_approval()` for
every `ApproveBatch` it sees (its own included). One trio task, `run()`, does the rest:

    each head (or tick): read the Router (latest committed batch, era, set) ─┐
      proposal in flight?  ready → submit · head moved → drop · timed out → drop
                           · else re-publish the request every `request_interval`
      else: prev block = source.committed_block(latest)  (None: node not there yet)
            batch up to the head = source.build(latest, head) → policy.decide
            propose: RequestBatchValidation(digest, era, block, prev) on gossip

Nothing kept in memory matters for correctness: every round starts from the Router's
`latestCommittedBatchHash` and the source, so a restarted sequencer resumes where the
chain is, and several sequencers may run at once (they propose the same batch for the
same pair; the submitter makes the losers move on, see submitter.py).

Invariants:
- At most one proposal and one commit transaction in flight; the loop awaits the
  submission, so the next batch is built on the committed one.
- A proposal names a processed block at most `MAX_PROPOSE_AGE` (200) blocks behind the
  chain's head (the Router needs `blockhash()` of it, 256 blocks, when the commit lands).
- `on_head` / `on_approval` never block and never raise into the host.

When modifying this part: decisions belong in policy.py / aggregate.py / the submit
machine (pure, unit-tested); this module only wires them to I/O, logs and metrics. The
lead wires the constructor and the four methods into the validator — keep them stable.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from gexe.contracts import BatchCommitment, EthClient, RpcError, batch_digest, batch_hash
from gexe.node.config import SequencerConfig
from gexe.node.gossip_messages import ApproveBatch, GossipMessage, RequestBatchValidation
from gexe.node.logging import get_logger
from gexe.node.metrics import Counter, Gauge, Histogram, Registry

from .aggregate import Aggregator, ValidatorSet
from .policy import Action, Limits, Target, commit_calldata, decide, has_content, pick_target
from .source import BatchSource, BlockRef
from .submitter import (
    ABANDONED,
    ALREADY,
    COMMITTED,
    GWEI,
    Job,
    Outcome,
    SubmitParams,
    Submitter,
    TransientError,
)

MAX_PROPOSE_AGE = 200  # blocks behind the chain head a proposed target may be
_LATEST = keccak(text="latestCommittedBatchHash()")[:4]
_ERA_INDEX = keccak(text="eraIndex()")[:4]
_ERA_VALIDATORS = keccak(text="eraValidators(uint256)")[:4]
_ERA_OF_BLOCK = keccak(text="eraOfBlock(uint64)")[:4]


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + bytes(b).hex()


@dataclass(frozen=True, slots=True)
class ChainView:
    head: int  # the chain's block number
    latest: bytes  # Router.latestCommittedBatchHash
    era: int  # Router.eraIndex


@dataclass
class Proposal:
    target: Target
    batch_hash: bytes
    digest: bytes
    era: int
    validators: ValidatorSet
    proposed_at: float  # trio clock
    proposed_head: int  # chain head when proposed
    last_request: float = 0.0
    requests: int = 0
    ready_at: float | None = None

    @property
    def batch(self) -> BatchCommitment:
        return self.target.batch

    @property
    def previous(self) -> bytes:
        return self.target.batch.previous_committed_batch_hash


@dataclass
class _Metrics:
    proposals: Counter
    committed: Counter
    transitions: Counter
    codes: Counter
    gas: Histogram
    latency: Histogram
    replacements: Counter
    abandoned: Counter
    last_block: Gauge

    @classmethod
    def create(cls, reg: Registry) -> _Metrics:
        def get(kind: str, name: str, help: str, *args: Any) -> Any:
            found = reg.get(name)
            return found if found is not None else getattr(reg, kind)(name, help, *args)

        return cls(
            proposals=get("counter", "gexe_sequencer_proposals_total", "Batches proposed"),
            committed=get(
                "counter", "gexe_sequencer_batches_committed_total", "Batches committed by us"
            ),
            transitions=get(
                "counter",
                "gexe_sequencer_transitions_committed_total",
                "State transitions in batches committed by us",
            ),
            codes=get(
                "counter",
                "gexe_sequencer_code_verdicts_committed_total",
                "Code verdicts in batches committed by us",
            ),
            gas=get(
                "histogram",
                "gexe_sequencer_commit_gas",
                "Gas used by our commitBatch transactions",
                (),
                (5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 4e6, 8e6, 16e6),
            ),
            latency=get(
                "histogram",
                "gexe_sequencer_proposal_to_commit_seconds",
                "Seconds from a batch proposal to its commit being mined",
                (),
                (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160),
            ),
            replacements=get(
                "counter", "gexe_sequencer_replacements_total", "Fee-bumped replacement txs"
            ),
            abandoned=get(
                "counter",
                "gexe_sequencer_abandoned_total",
                "Proposals or submissions given up, by reason",
                ("reason",),
            ),
            last_block=get(
                "gauge",
                "gexe_sequencer_last_committed_block",
                "Ethereum block of the last batch committed by us",
            ),
        )


@dataclass
class _Stats:
    committed: int = 0
    last_outcome: dict[str, Any] | None = None
    waiting: str | None = None  # why nothing is proposed right now
    errors: int = 0
    notes: set[tuple[str, Any]] = field(default_factory=set)


class Sequencer:
    """The sequencer role (see the module docstring)."""

    def __init__(
        self,
        *,
        client: EthClient,
        account: LocalAccount,
        router: str,
        chain_id: int,
        source: BatchSource,
        publish: Callable[[GossipMessage], Awaitable[None]],
        current_era: Callable[[], int],
        config: SequencerConfig,
        metrics: Registry | None = None,
    ) -> None:
        self.client = client
        self.account = account
        self.router = to_checksum_address(router)
        self.chain_id = chain_id
        self.source = source
        self.publish = publish
        self.current_era = current_era
        self.config = config
        self.log = get_logger("sequencer")
        self.metrics = _Metrics.create(metrics if metrics is not None else Registry())
        self.limits = Limits(config.max_batch_latency, config.max_batch_transitions, config.gas_cap)
        self.tick = min(0.5, config.request_interval / 2)
        self.submitter = Submitter(
            client=client,
            account=account,
            chain_id=chain_id,
            params=SubmitParams(
                router=self.router,
                sender=account.address,
                gas_cap=config.gas_cap,
                replace_after_blocks=config.replace_after_blocks,
                fee_bump_percent=config.fee_bump_percent,
                max_fee=int(config.max_fee_gwei * GWEI),
                stagger=self.tick,
            ),
            poll_interval=min(0.25, self.tick),
            log=self.log,
        )
        self.aggregator = Aggregator()
        self.proposal: Proposal | None = None
        self.view: ChainView | None = None
        self._validator_sets: dict[int, ValidatorSet] = {}
        self._pending_since: tuple[bytes, float] | None = None  # (prev, first seen)
        self._submitting: Proposal | None = None
        self._quiet_until: int | None = None  # after a failed submission: wait for a block
        self._quiet_next = False  # set _quiet_until from the next chain read
        self._wake = trio.Event()
        self._sleep_hint: float | None = None  # seconds to a batching deadline
        self._stats = _Stats()

    # ------------------------------------------------------------ host callbacks

    def on_head(self) -> None:
        """The host processed a block: look again soon."""
        self._wake.set()

    def on_approval(self, msg: ApproveBatch) -> None:
        """An `ApproveBatch` from gossip (or our own validator)."""
        try:
            result = self.aggregator.add(msg)
        except Exception:  # noqa: BLE001 - never raise into the host
            self.log.exception("approval rejected", validator=msg.validator)
            return
        if result == Aggregator.COUNTED and self.aggregator.ready:
            self._wake.set()
        elif result in (Aggregator.BAD_SIGNATURE, Aggregator.NOT_IN_SET):
            self.log.debug("approval ignored", validator=msg.validator, why=result)

    # ------------------------------------------------------------ main loop

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.log.info(
            "sequencer started",
            address=self.account.address,
            router=self.router,
            max_batch_latency=self.config.max_batch_latency,
            gas_cap=self.config.gas_cap,
        )
        task_status.started()
        backoff = 0.0
        while True:
            self._wake = trio.Event()
            self._sleep_hint = None
            again = False
            try:
                again = await self._round()
                backoff = 0.0
            except (
                httpx.HTTPError,
                OSError,
                RpcError,
                json.JSONDecodeError,
                TransientError,
            ) as exc:
                self._stats.errors += 1
                backoff = min(max(backoff * 2, self.tick), 10.0)
                self.log.warning("round failed", error=str(exc) or type(exc).__name__)
            except Exception:  # a bug: log it, keep the validator alive
                self._stats.errors += 1
                backoff = min(max(backoff * 2, 1.0), 30.0)
                self.log.exception("round crashed")
            if again and not backoff:
                continue
            pause = backoff or min(self.tick, self._sleep_hint or self.tick)
            with trio.move_on_after(max(pause, 0.01)):
                if backoff:
                    await trio.sleep_forever()
                await self._wake.wait()

    async def _round(self) -> bool:
        """One look at the chain; True to look again at once."""
        now = trio.current_time()
        view = await self._read_chain()
        self.view = view
        vset = await self._validator_set(view.era)
        if self.proposal is not None:
            return await self._advance(self.proposal, view, vset, now)
        target = await self._choose(view, vset, now)
        if target is not None:
            await self._propose(target, view, vset, now)
            return self.aggregator.ready
        return False

    # ------------------------------------------------------------ chain reads

    async def _read_chain(self) -> ChainView:
        def call(selector: bytes) -> tuple[str, list[Any]]:
            return ("eth_call", [{"to": self.router, "data": _hex(selector)}, "latest"])

        head, latest, era = await self.client.batch(
            [("eth_blockNumber", []), call(_LATEST), call(_ERA_INDEX)]
        )
        latest_b = bytes.fromhex(latest[2:])[-32:].rjust(32, b"\0")
        return ChainView(int(head, 16), latest_b, int(era, 16) if era != "0x" else 0)

    async def _validator_set(self, era: int) -> ValidatorSet:
        vset = self._validator_sets.get(era)
        if vset is None:
            data = await self.client.call(self.router, _ERA_VALIDATORS + era.to_bytes(32, "big"))
            signers, stakes = abi_decode(["address[]", "uint256[]"], data)
            vset = ValidatorSet(era, tuple(signers), tuple(stakes))
            self._validator_sets = {e: v for e, v in self._validator_sets.items() if e >= era - 1}
            self._validator_sets[era] = vset
            self.log.info("validator set", era=era, validators=len(vset), total_stake=vset.total)
        return vset

    # ------------------------------------------------------------ choosing a batch

    def _wait(self, what: str, level: str = "debug", **fields: Any) -> None:
        """Record why nothing is proposed; log once per distinct situation."""
        self._stats.waiting = what
        key = (what, tuple(sorted(fields.items())))
        if key not in self._stats.notes:
            if len(self._stats.notes) > 1000:
                self._stats.notes.clear()
            self._stats.notes.add(key)
            getattr(self.log, level)(what, **fields)

    async def _choose(self, view: ChainView, vset: ValidatorSet, now: float) -> Target | None:
        prev = view.latest
        if self._quiet_next:
            self._quiet_until, self._quiet_next = view.head, False
        if self._quiet_until is not None:
            if view.head <= self._quiet_until:
                self._wait("waiting for a new block after a failed submission")
                return None
            self._quiet_until = None
        if vset.total == 0:
            self._wait("no validator set on the Router", "warning", era=view.era)
            return None
        prev_block = self.source.committed_block(prev)
        if prev_block is None:
            self._wait("waiting for the node to process the last commit", latest=prev)
            return None
        head = self.source.head()
        if head is None or head.number <= prev_block.number:
            self._pending_since = None
            self._wait("nothing new since the last commit")
            return None
        batch = self.source.build(prev, head.hash)
        if batch is None:
            self._wait("the node cannot build the batch yet", block=head.number)
            return None
        if not has_content(batch):
            self._pending_since = None
            self._wait("nothing to commit")
            return None
        if self._pending_since is None or self._pending_since[0] != prev:
            self._pending_since = (prev, now)
        n_sigs = len(vset)
        decision = decide(
            batch,
            first_seen=self._pending_since[1],
            now=now,
            limits=self.limits,
            n_signatures=n_sigs,
        )
        if decision.action is Action.WAIT:
            self._stats.waiting = f"batching: {decision.wait:.2f} s left"
            self._sleep_hint = decision.wait
            return None
        oldest = view.head - MAX_PROPOSE_AGE
        if decision.action is Action.PROPOSE and head.number >= oldest:
            return Target(head, batch, decision.gas, decision.transitions)
        if decision.action is Action.PROPOSE:
            self._wait(
                "the node is too far behind the chain to propose",
                "warning",
                node_head=head.number,
                chain_head=view.head,
            )
            return None
        return await self._split(view, vset, head, decision.reason)

    async def _split(
        self, view: ChainView, vset: ValidatorSet, head: BlockRef, why: str
    ) -> Target | None:
        """The batch up to the head is too big: the newest earlier block that fits."""
        prev = view.latest
        candidates = [b for b in self.source.blocks_since(prev) if b.number <= head.number]

        def build(block: BlockRef) -> BatchCommitment | None:
            return self.source.build(prev, block.hash)

        target = pick_target(candidates, build, limits=self.limits, n_signatures=len(vset))
        if target is None:
            first = candidates[0] if candidates else None
            self._wait(
                "batch too big even for its first block; cannot commit it",
                "error",
                block=first.number if first else None,
                head=head.number,
                why=why,
                gas_cap=self.limits.gas_cap,
                max_batch_transitions=self.limits.max_batch_transitions,
            )
            return None
        oldest = view.head - MAX_PROPOSE_AGE
        if target.block.number < oldest:
            # Stretch the target to the newest block with the same content (just before
            # the next candidate): it holds the same batch content but is recent.
            later = [b for b in candidates if b.number > target.block.number]
            stretch = (later[0].number - 1) if later else head.number
            target = (
                await self._stretched(prev, target, stretch, vset) if stretch >= oldest else None
            )
            if target is None:
                self._wait(
                    "the only batch that fits names a block too old to commit",
                    "error",
                    chain_head=view.head,
                )
                return None
        self.log.info(
            "batch split",
            why=why,
            target=target.block.number,
            head=head.number,
            transitions=target.transitions,
            gas_estimate=target.gas,
        )
        return target

    async def _stretched(
        self, prev: bytes, target: Target, number: int, vset: ValidatorSet
    ) -> Target | None:
        block = await self.client.get_block(number)
        if block is None:
            return None
        ref = BlockRef(number, bytes.fromhex(block["hash"][2:]))
        batch = self.source.build(prev, ref.hash)
        if batch is None:
            return None
        ok = decide(batch, first_seen=0.0, now=0.0, limits=self.limits, n_signatures=len(vset))
        if ok.action is not Action.PROPOSE:
            return None
        return Target(ref, batch, ok.gas, ok.transitions)

    # ------------------------------------------------------------ proposals

    async def _propose(
        self, target: Target, view: ChainView, vset: ValidatorSet, now: float
    ) -> None:
        bh = batch_hash(target.batch)
        digest = batch_digest(bh, self.chain_id, self.router)
        era = self.current_era()
        # The Router checks a batch against the set of the era its block belongs to (the
        # previous era's set stays valid for a grace window after an era change).
        try:
            data = await self.client.call(
                self.router, _ERA_OF_BLOCK + target.block.number.to_bytes(32, "big")
            )
            block_era = int.from_bytes(data[-32:], "big") if data else view.era
        except RpcError:  # a block before the first era: the commit would revert anyway
            block_era = view.era
        if block_era != vset.era:
            vset = await self._validator_set(block_era)
        p = Proposal(target, bh, digest, era, vset, now, view.head)
        self.aggregator.begin(digest, vset)
        self.proposal = p
        self._stats.waiting = None
        self.metrics.proposals.inc()
        self.log.info(
            "proposal",
            block=target.block.number,
            block_hash=target.block.hash,
            previous=p.previous,
            transitions=target.transitions,
            codes=len(target.batch.code_commitments),
            gas_estimate=target.gas,
            digest=digest,
            era=era,
        )
        await self._request(p, now)

    async def _request(self, p: Proposal, now: float) -> None:
        p.last_request = now
        p.requests += 1
        msg = RequestBatchValidation(p.digest, p.era, p.target.block.hash, p.previous)
        await self.publish(msg)

    def _drop(self, code: str, why: str, level: str = "info", **fields: Any) -> None:
        p = self.proposal
        self.proposal = None
        self.aggregator.reset()
        if p is None:
            return
        self.metrics.abandoned.labels(reason=code).inc()
        self._stats.last_outcome = {
            "kind": ABANDONED,
            "code": code,
            "reason": why,
            "batch_hash": _hex(p.batch_hash),
            "block": p.target.block.number,
        }
        getattr(self.log, level)(
            "abandoned", reason=why, batch=p.batch_hash, block=p.target.block.number, **fields
        )

    async def _advance(self, p: Proposal, view: ChainView, vset: ValidatorSet, now: float) -> bool:
        """Move the in-flight proposal on. True when it ended (look again at once)."""
        if view.latest != p.previous:
            if view.latest == p.batch_hash:
                self._drop("already", "batch committed by someone else")
            else:
                self._drop("head_moved", "the Router's head moved")
            return True
        # p.validators is the set of the target block's era, fixed for the proposal: past
        # the grace window the commit's gas estimate fails (EraExpired) and a newer
        # target is proposed.
        if self.aggregator.ready:
            await self._submit(p, now)
            return True
        if view.head - p.proposed_head > self.config.proposal_timeout_blocks:
            self._drop(
                "timeout",
                "no threshold in time",
                "warning",
                signers=self.aggregator.signers(),
                missing=self.aggregator.missing(),
                signed_stake=self.aggregator.signed_stake,
                total_stake=self.aggregator.total_stake,
                blocks=view.head - p.proposed_head,
            )
            return True
        if now - p.last_request >= self.config.request_interval:
            await self._request(p, now)
        return False

    # ------------------------------------------------------------ submission

    async def _submit(self, p: Proposal, now: float) -> None:
        p.ready_at = now
        sigs = self.aggregator.signatures()
        self.log.info(
            "threshold reached",
            batch=p.batch_hash,
            signers=self.aggregator.signers(),
            signed_stake=self.aggregator.signed_stake,
            total_stake=self.aggregator.total_stake,
            ms=round((now - p.proposed_at) * 1000, 1),
        )
        job = Job(p.batch, p.batch_hash, commit_calldata(p.batch, sigs), len(sigs))
        self._submitting = p
        try:
            outcome = await self.submitter.submit(job)
        finally:
            self._submitting = None
            self.proposal = None
            self.aggregator.reset()
        self._record(p, outcome)

    def _record(self, p: Proposal, o: Outcome) -> None:
        m = self.metrics
        if o.replacements:
            m.replacements.inc(o.replacements)
        info: dict[str, Any] = {
            "kind": o.kind,
            "code": o.code,
            "reason": o.reason,
            "batch_hash": _hex(p.batch_hash),
            "block": p.target.block.number,
            "tx": _hex(o.tx_hash),
            "mined_in": o.block_number,
            "gas_used": o.gas_used,
            "replacements": o.replacements,
            "sent": len(o.sent),
        }
        self._stats.last_outcome = info
        if o.kind == COMMITTED:
            elapsed = trio.current_time() - p.proposed_at
            messages = sum(len(t.messages) for c in p.batch.chain_commitment for t in c.transitions)
            self._stats.committed += 1
            m.committed.inc()
            m.transitions.inc(p.target.transitions)
            m.codes.inc(len(p.batch.code_commitments))
            m.gas.observe(o.gas_used or 0)
            m.latency.observe(elapsed)
            m.last_block.set(o.block_number or 0)
            self.log.info(
                "committed",
                batch=p.batch_hash,
                block=o.block_number,
                target=p.target.block.number,
                tx=o.tx_hash,
                gas_used=o.gas_used,
                transitions=p.target.transitions,
                codes=len(p.batch.code_commitments),
                messages=messages,
                replacements=o.replacements,
                seconds=round(elapsed, 3),
            )
            return
        m.abandoned.labels(reason=o.code).inc()
        if o.kind == ABANDONED and not o.quiet:
            self._quiet_next = True  # do not re-propose before the next block
        level = "info" if o.quiet or o.kind == ALREADY else "warning"
        getattr(self.log, level)(
            "batch already committed" if o.kind == ALREADY else "abandoned",
            reason=o.reason,
            batch=p.batch_hash,
            block=p.target.block.number,
            sent=len(o.sent),
        )

    # ------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """JSON-able snapshot for RPC and logs."""
        view = self.view
        latest_block = None
        if view is not None:
            ref = self.source.committed_block(view.latest)
            latest_block = ref.number if ref is not None else None
        p = self.proposal or self._submitting
        proposal = None
        if p is not None:
            proposal = {
                "batch_hash": _hex(p.batch_hash),
                "digest": _hex(p.digest),
                "block": p.target.block.number,
                "block_hash": _hex(p.target.block.hash),
                "previous": _hex(p.previous),
                "transitions": p.target.transitions,
                "codes": len(p.batch.code_commitments),
                "gas_estimate": p.target.gas,
                "requests": p.requests,
                "submitting": p is self._submitting,
            }
        approvals = None
        if self.aggregator.digest is not None:
            approvals = {
                "digest": _hex(self.aggregator.digest),
                "signers": self.aggregator.signers(),
                "signed_stake": self.aggregator.signed_stake,
                "total_stake": self.aggregator.total_stake,
                "ready": self.aggregator.ready,
            }
        return {
            "address": self.account.address,
            "chain_head": view.head if view else None,
            "era": view.era if view else None,
            "last_committed_hash": _hex(view.latest) if view else None,
            "last_committed_block": latest_block,
            "in_flight": proposal,
            "approvals": approvals,
            "last_tx": self.submitter.last_tx,
            "last_outcome": self._stats.last_outcome,
            "committed": self._stats.committed,
            "waiting": self._stats.waiting,
            "errors": self._stats.errors,
        }

"""The validator service: observer → compute → store, RPC, metrics, signer, under ONE nursery.

`run_validator(config)` opens the store (one writer per data directory), resumes from
its head (or from the Router's deployment block on an empty store), and runs as sibling
tasks of one trio nursery:

- the observer (chain following, reorgs, backfill) calling compute for every confirmed
  block in a worker thread (a block's work is never abandoned half-way: cancellation
  waits for the running block's commit or abort);
- the JSON-RPC server (HTTP + WebSocket) and, if enabled, the Prometheus `/metrics`
  server;
- a small era watcher (Router `eraIndex()`), and the signal watcher: SIGINT/SIGTERM
  cancel the nursery, and everything unwinds cleanly (store closed last).

With a key configured, the validator joins gossip and answers the sequencer's
`RequestBatchValidation`: it rebuilds the named batch from its own results (`batch.py`)
and signs only an identical one (`approve.py`), gossiping the `ApproveBatch`. Roles (the
sequencer, added by the face when `[sequencer] enabled`) run in the same nursery: they are
told about every processed block (`on_head`) and every approval (`on_approval`), and
publish through `publish`, which also delivers to this node itself (gossip does not
echo a node's own messages).

On start the service writes `<data_dir>/validator.json` (pid, rpc and metrics ports) so
tools and tests can find the ports when they are configured as 0.

When modifying this part: every task belongs to the nursery here; blocking work goes
through `trio.to_thread.run_sync`; user-caused problems raise `ServiceError` (one line).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import trio
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from gexe.contracts import EthClient
from gexe.node.config import Config
from gexe.node.keystore import KeystoreError, list_keys, load_key_with
from gexe.node.logging import get_logger, setup_logging
from gexe.node.metrics import Registry, serve_metrics
from gexe.node.store import Store

from .api import Hub, ValidatorApi
from .approve import Approve, Approver, Pending, Refuse
from .batch import BatchBook
from .chain import ChainTracker, Header, ReorgTooDeep
from .compute import Compute, hx
from .equivocation import EquivocationDetector
from .events import Item
from .observer import RETRYABLE, Observer, find_deploy_block
from .report import report_equivocation, report_sequencer_equivocation
from .rpc import RpcDispatcher, RpcServer

log = get_logger("validator")

ERA_INDEX = keccak(text="eraIndex()")[:4]
VALIDATORS = keccak(text="validators()")[:4]


class ServiceError(Exception):
    """A problem the operator can fix (one line)."""


class Role(Protocol):
    """Something that runs inside a validator process (the sequencer)."""

    def on_head(self) -> None: ...

    def on_approval(self, msg: Any) -> None: ...

    def status(self) -> dict[str, Any]: ...

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None: ...


RoleFactory = Callable[["ValidatorService"], "Role | None"]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = Registry()
        self.head = r.gauge("gexe_validator_head_block", "last processed Ethereum block")
        self.chain_head = r.gauge("gexe_validator_chain_head_block", "Ethereum head block seen")
        self.lag = r.gauge("gexe_validator_head_lag_blocks", "chain head minus processed head")
        self.blocks = r.counter("gexe_validator_blocks_processed_total", "blocks processed")
        self.messages = r.counter(
            "gexe_validator_messages_executed_total", "dispatches executed (incl. refused)"
        )
        self.gas = r.counter("gexe_validator_gas_burned_total", "gas burned by programs")
        self.reorgs = r.counter("gexe_validator_reorgs_total", "chain reorganisations handled")
        self.peers = r.gauge("gexe_validator_peers", "connected gossip peers")
        self.gossip_in = r.counter("gexe_validator_gossip_in_total", "gossip messages received")
        self.gossip_out = r.counter("gexe_validator_gossip_out_total", "gossip messages sent")
        self.batches_signed = r.counter(
            "gexe_validator_batches_signed_total", "batch requests answered with a signature"
        )
        self.batches_refused = r.counter(
            "gexe_validator_batches_refused_total", "batch requests refused (not our batch)"
        )
        self.rpc_latency = r.histogram(
            "gexe_validator_rpc_seconds",
            "JSON-RPC request handling time",
            buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 2.0, 10.0),
        )
        self.block_seconds = r.histogram(
            "gexe_validator_block_seconds",
            "time to process and persist one block",
            buckets=(0.005, 0.02, 0.1, 0.5, 2.0, 10.0),
        )


def load_signer(cfg: Config) -> LocalAccount | None:
    """The validator's key, if a password source is configured; None otherwise."""
    v = cfg.validator
    if v.password_file is None and v.password_env is None:
        return None
    assert v.keystore is not None
    try:
        address = v.address
        if address is None:
            keys = list_keys(v.keystore)
            if len(keys) != 1:
                raise ServiceError(
                    f"{v.keystore}: {len(keys)} keys; set [validator] address to choose one"
                    if keys
                    else f"{v.keystore}: no keys; create one with `gexe key new`"
                )
            address = keys[0].address
        return load_key_with(
            address,
            keystore=v.keystore,
            password_file=v.password_file,
            password_env=v.password_env,
        )
    except KeystoreError as e:
        raise ServiceError(str(e)) from None


class ValidatorService:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        signer: LocalAccount | None,
        roles: Sequence[RoleFactory] = (),
    ) -> None:
        if cfg.ethereum.router_address is None:
            raise ServiceError(
                f"{cfg.source or 'config'}: [ethereum] router_address is required to run a "
                "validator; set it to the Router contract's address"
            )
        self.cfg = cfg
        self.router = cfg.ethereum.router_address
        self.store = store
        self.signer = signer
        self.metrics = Metrics()
        self.hub = Hub()
        self.compute = Compute(store, workers=1, keep_blocks=cfg.node.keep_blocks)
        self.book = BatchBook(self.compute)
        self.approver: Approver | None = None
        self.role_factories = tuple(roles)
        self.roles: list[Role] = []
        self.client = EthClient(cfg.ethereum.rpc_url, timeout=cfg.ethereum.request_timeout)
        self.chain_id: int | None = None
        self.era: int | None = None
        self.observer: Observer | None = None
        self.validator_set: set[bytes] = set()
        self.validator_stakes: dict[bytes, int] = {}
        self.gossip: Any = None  # gexe.node.gossip.GossipService when running
        # batch digest → validators whose approval we saw (gossip or our own)
        self.approvals: OrderedDict[bytes, set[bytes]] = OrderedDict()
        self.last_approved: dict[str, Any] | None = None
        self.detector: EquivocationDetector | None = None
        self.equivocations: list[dict[str, Any]] = []
        self._nursery: trio.Nursery | None = None
        # test builds only: also sign a second, different batch for every pair (#7 tests)
        self._equivocate = os.environ.get("GEXE_TEST_EQUIVOCATE") == "1"
        # test builds only: gossip an approval of a wrong batch instead of ours (#9 tests)
        self._wrong_batch = os.environ.get("GEXE_TEST_WRONG_BATCH") == "1"
        self._republished: dict[bytes, float] = {}
        self.started = time.monotonic()
        self.rpc_port: int | None = None
        self.metrics_port: int | None = None
        self.native: Any = None  # validator.native.NativeLane when [native] sequencer is set
        if cfg.native.sequencer is not None:
            from .native import NativeLane

            self.native = NativeLane(self)

    # -- status

    def status(self) -> dict[str, Any]:
        head = self.compute.head
        chain_head = self.observer.chain_head if self.observer else None
        lag = None
        if head is not None and chain_head is not None:
            lag = max(0, chain_head - head.number)
        return {
            "head": head.number if head else None,
            "head_hash": hx(head.hash) if head else None,
            "state_root": hx(head.state_root) if head else None,
            "chain_head": chain_head,
            "lag": lag,
            "confirmations": self.cfg.ethereum.confirmation_depth,
            "peers": int(self.metrics.peers.get()),
            "era": self.era,
            "chain_id": self.chain_id,
            "router": self.router,
            "validator": self.signer.address if self.signer else None,
            "programs": len(self.compute.state.programs),
            "reorgs": self.observer.reorgs if self.observer else 0,
            "p2p": self.gossip.listen_addrs if self.gossip else [],
            "batches_signed": int(self.metrics.batches_signed.get()),  # the approver forgets
            "batches_refused": self.approver.refused if self.approver else 0,
            "last_approved": self.last_approved,
            "equivocations": self.equivocations[-16:],
            "roles": [r.status() for r in self.roles],
            "native": self.native.status() if self.native else None,
            "uptime": round(time.monotonic() - self.started, 1),
        }

    # -- chain callbacks

    async def on_block(self, header: Header, items: list[Item]) -> None:
        native = self.native
        if native is not None:  # the sequencer must have sealed our head first
            await native.before_block(header.number)
            async with native.lock:
                t0 = time.monotonic()
                out = await trio.to_thread.run_sync(self.compute.apply, header, items)
        else:
            t0 = time.monotonic()
            out = await trio.to_thread.run_sync(self.compute.apply, header, items)
        self.metrics.block_seconds.observe(time.monotonic() - t0)
        self.metrics.blocks.inc()
        self.metrics.messages.inc(out.dispatches)
        self.metrics.gas.inc(out.gas_burned)
        self.metrics.head.set(header.number)
        self._update_lag()
        if items or out.dispatches:
            log.info(
                "block",
                number=header.number,
                events=len(items),
                dispatches=out.dispatches,
                gas=out.gas_burned,
                root=hx(out.record.state_root)[:18],
            )
        self.hub.publish_block(out.result)
        if native is not None:
            await native._after(out.result)
            await native.drain()
        for role in self.roles:
            role.on_head()
        if self.approver is not None and self.approver.pending:
            for req, d in self.approver.retry():
                await self._decided(req, d)

    async def on_revert(self, to: Header, depth: int) -> None:
        if self.native is not None:
            async with self.native.lock:
                await trio.to_thread.run_sync(self.compute.revert_to, to)
                self.native.on_revert()
        else:
            await trio.to_thread.run_sync(self.compute.revert_to, to)
        self.metrics.reorgs.inc()
        self.metrics.head.set(to.number)
        log.info("rolled back", to=to.number, depth=depth)

    # -- batch signing (gossip)

    async def publish(self, msg: Any) -> None:
        """Gossip `msg` and deliver it to this node too (roles use this)."""
        await self._gossip_out(msg)
        await self._on_message(msg)

    async def _gossip_out(self, msg: Any) -> None:
        if self.gossip is None:
            return
        try:
            await self.gossip.publish(msg)
            self.metrics.gossip_out.inc()
        except Exception as e:  # gossip trouble never stops block processing
            log.warning("gossip publish failed", error=f"{type(e).__name__}: {e}"[:200])

    async def _on_message(self, m: Any) -> None:
        from gexe.node.gossip_injected import (
            InjectedTx,
            PromiseRequest,
            Promises,
            SequencerBlockMsg,
            SequencerBlockRequest,
        )
        from gexe.node.gossip_messages import ApproveBatch, RequestBatchValidation

        native = self.native
        if native is not None and native.domain is not None:
            if isinstance(m, SequencerBlockMsg):
                native.on_block_msg(m)
                return
            if isinstance(m, Promises):
                native.on_promises(m)
                return
            if isinstance(m, InjectedTx):
                if native.orderers and native.domain is not None:
                    for stx in m.txs:
                        h = native.domain.tx_hash(stx.tx)
                        for o in native.orderers:
                            o.add(h, stx)
                return
            if isinstance(m, SequencerBlockRequest):
                await native.on_request(m)
                return
            if isinstance(m, PromiseRequest):
                await native.on_promise_request(m)
                return
        if isinstance(m, ApproveBatch):  # gossip verified it against the validator set
            if self.detector is not None:
                proof = self.detector.observe(m)
                if proof is not None:
                    self._on_equivocation(m, proof)
            self.approvals.setdefault(m.batch_digest, set()).add(m.validator)
            while len(self.approvals) > 4 * self.cfg.node.keep_blocks:
                self.approvals.popitem(last=False)
            for role in self.roles:
                role.on_approval(m)
        elif isinstance(m, RequestBatchValidation) and self.approver is not None:
            # synchronous on purpose: the approver's books are touched only from here and
            # from on_block (both in the trio thread); a build reads a few cached results
            await self._decided(m, self.approver.request(m))

    async def _decided(self, req: Any, d: Any) -> None:
        if isinstance(d, Approve):
            now = time.monotonic()
            digest = d.message.batch_digest
            if now - self._republished.get(digest, -1e9) < 0.5:
                return  # answered a moment ago: a repeated request within the burst
            first = digest not in self._republished
            self._republished[digest] = now
            if len(self._republished) > 1024:
                self._republished = dict(list(self._republished.items())[-512:])
            if first:
                self.metrics.batches_signed.inc()
                b = d.batch
                self.last_approved = {
                    "digest": hx(digest),
                    "block": b.block_number,
                    "previous": hx(b.previous_committed_batch_hash),
                    "transitions": len(b.chain_commitment[0].transitions)
                    if b.chain_commitment
                    else 0,
                    "codes": len(b.code_commitments),
                }
                log.info(
                    "batch approved",
                    block=b.block_number,
                    digest=hx(digest)[:18],
                    transitions=self.last_approved["transitions"],
                    codes=self.last_approved["codes"],
                )
            if self._wrong_batch:
                await self.publish(self._second_signature(d, wrong_result=True))
                return
            await self.publish(d.message)
            if first and self._equivocate:
                await self.publish(self._second_signature(d))
        elif isinstance(d, Refuse):
            self.metrics.batches_refused.inc()
            log.warning(
                "batch request refused",
                block=hx(req.block_hash)[:18],
                digest=hx(req.batch_digest)[:18],
                reason=d.reason,
            )
        elif isinstance(d, Pending):
            log.debug("batch request pending", block=hx(req.block_hash)[:18], reason=d.reason)

    def _second_signature(self, d: Approve, *, wrong_result: bool = False) -> Any:
        """GEXE_TEST_EQUIVOCATE=1: a different batch for the same pair, signed too.
        GEXE_TEST_WRONG_BATCH=1 (`wrong_result`): a wrong batch for the pair, gossiped
        instead of ours (`_wrong_result`: a reply's payload, a state hash or `burned`
        changed); one digest per pair, so not an equivocation."""
        from dataclasses import replace

        from gexe.contracts import batch_digest, batch_hash, sign_batch
        from gexe.node.gossip_messages import ApproveBatch

        from .approve import header_of

        assert self.signer is not None and self.chain_id is not None
        if wrong_result:
            other, what = _wrong_result(d.batch)
        else:
            other = replace(d.batch, burned=d.batch.burned + 1)
        h = batch_hash(other)
        digest = batch_digest(h, self.chain_id, self.router)
        if wrong_result:
            log.warning(
                "TEST BUILD: approving a wrong batch instead of ours",
                block=other.block_number,
                changed=what,
                digest=hx(digest),
                batch=hx(h),
                ours=hx(d.message.batch_digest),
            )
        else:
            log.warning(
                "TEST BUILD: signing a second batch (equivocation)", block=other.block_number
            )
        return ApproveBatch(
            digest,
            d.message.era,
            d.message.validator,
            sign_batch(self.signer.key, h, self.chain_id, self.router),
            header_of(other),
        )

    def _on_equivocation(self, m: Any, proof: Any) -> None:
        who = hx(m.validator)
        entry = {"validator": who, "block": proof.block_number, "reported": None}
        self.equivocations.append(entry)
        log.warning("equivocation detected", validator=who, block=proof.block_number)
        # The sequencer's account sends commit transactions with its own nonce tracking;
        # a node running it leaves reporting to the others.
        if self.signer is None or self.roles or self._nursery is None:
            return
        if not self.cfg.validator.report_equivocation:
            return

        async def report() -> None:
            assert self.signer is not None
            entry["reported"] = await report_equivocation(
                self.client, self.signer, self.router, self.chain_id or 0, proof
            )

        self._nursery.start_soon(report)

    async def _drain_loop(self) -> None:
        """Run sequencer blocks as they arrive between Ethereum blocks."""
        native = self.native
        while True:
            await native.arrival()
            await native.drain()

    def report_sequencer_equivocation(self, a: Any, a_sig: bytes, b: Any, b_sig: bytes) -> None:
        if self.signer is None or self.roles or self._nursery is None:
            return
        if not self.cfg.validator.report_equivocation:
            return
        native = self.native

        async def report() -> None:
            assert self.signer is not None
            status = await report_sequencer_equivocation(
                self.client,
                self.signer,
                self.router,
                self.chain_id or 0,
                a,
                a_sig,
                b,
                b_sig,
                native.sequencer,
            )
            native.equivocations[-1]["reported"] = status

        self._nursery.start_soon(report)

    async def _gossip_in(self) -> None:
        assert self.gossip is not None
        async for rec in self.gossip.incoming:
            self.metrics.gossip_in.inc()
            await self._on_message(rec.message)

    async def _run_gossip(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        from gexe.node.gossip import GossipConfig, GossipService
        from gexe.node.gossip_messages import EthSigner

        assert self.signer is not None and self.chain_id is not None
        cfg = self.cfg
        gcfg = GossipConfig(
            chain_id=self.chain_id,
            router_address=self.router,
            listen_addrs=(cfg.p2p.listen,),
            bootnodes=tuple(cfg.p2p.bootnodes),
            node_key=_p2p_key(cfg.p2p.key_file),
        )
        svc = GossipService(
            gcfg,
            EthSigner.from_account(self.signer),
            current_era=lambda: self.era or 0,
            validators=lambda era: self.validator_set,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(svc.run)
            self.gossip = svc
            log.info("gossip listening", addrs=",".join(svc.listen_addrs), peer=svc.peer_id)
            nursery.start_soon(self._gossip_in)
            task_status.started()
            while True:
                self.metrics.peers.set(len(svc.connected_peers()))
                await trio.sleep(1.0)

    def _elected(self) -> bool:
        """In the current era's set (before the first era read: assume so, the Router
        rejects signatures from outside the set anyway)."""
        if self.signer is None:
            return False
        return not self.validator_set or (
            bytes.fromhex(self.signer.address[2:]) in self.validator_set
        )

    def _update_lag(self) -> None:
        if self.observer and self.observer.chain_head is not None:
            self.metrics.chain_head.set(self.observer.chain_head)
            head = self.compute.head
            if head is not None:
                self.metrics.lag.set(max(0, self.observer.chain_head - head.number))

    # -- tasks

    async def _retry(self, what: str, fn: Any) -> Any:
        delay = 0.1
        while True:
            try:
                return await fn()
            except RETRYABLE as e:
                log.warning("ethereum not reachable", what=what, error=str(e)[:200])
                await trio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _era_watch(self) -> None:
        while True:
            try:
                era_data = await self.client.call(self.router, ERA_INDEX)
                data = await self.client.call(self.router, VALIDATORS)
                signers, stakes = abi_decode(["address[]", "uint256[]"], data)
                # all three at once: gossip judges a message by (era, set), and an era
                # without its set made a restarted node ban honest validators
                self.era = int.from_bytes(era_data[-32:], "big") if era_data else None
                self.validator_set = {bytes.fromhex(a[2:]) for a in signers}
                self.validator_stakes = {
                    bytes.fromhex(a[2:]): int(w) for a, w in zip(signers, stakes, strict=False)
                }
            except RETRYABLE:
                pass
            self._update_lag()
            await trio.sleep(max(1.0, self.cfg.ethereum.poll_interval * 5))

    async def _signals(self, cancel: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for sig in signals:
                log.info("shutting down", signal=signal.Signals(sig).name)
                cancel.cancel()
                return

    async def _rpc_timed(self, dispatcher: RpcDispatcher) -> None:
        inner = dispatcher.methods
        hist = self.metrics.rpc_latency

        def wrap(fn: Any) -> Any:
            async def timed(*a: Any, **kw: Any) -> Any:
                t0 = time.monotonic()
                try:
                    return await fn(*a, **kw)
                finally:
                    hist.observe(time.monotonic() - t0)

            return timed

        dispatcher.methods = {k: wrap(v) for k, v in inner.items()}

    async def run(self) -> None:
        cfg = self.cfg
        self.chain_id = await self._retry("eth_chainId", self.client.chain_id)
        head = self.compute.head
        keep = cfg.node.keep_blocks
        if head is None:
            chain_head = await self._retry("eth_blockNumber", self.client.block_number)
            try:
                start = await self._retry(
                    "router code",
                    lambda: find_deploy_block(self.client, self.router, chain_head),
                )
            except LookupError:
                raise ServiceError(
                    f"[ethereum] router_address {self.router}: no contract at that address on "
                    f"{cfg.ethereum.rpc_url}; check the address and the chain"
                ) from None
            log.info("fresh store", start_block=start, router=self.router)
        else:
            start = head.number + 1
            log.info("resuming", head=head.number, head_hash=hx(head.hash)[:18])
        tracker = ChainTracker(
            start=start,
            confirmations=cfg.ethereum.confirmation_depth,
            keep=keep,
            applied=self.compute.applied_headers(keep),
        )
        self.observer = Observer(
            self.client,
            self.router,
            tracker,
            on_block=self.on_block,
            on_revert=self.on_revert,
            max_range=cfg.ethereum.get_logs_max_range,
            poll_interval=cfg.ethereum.poll_interval,
        )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.detector = EquivocationDetector(self.chain_id, self.router)
            nursery.start_soon(self._signals, nursery.cancel_scope)
            api = ValidatorApi(self.compute, self.hub, self.status, nursery)
            methods = api.methods()
            if self.native is not None:
                from .injected_api import InjectedApi

                self.native.start(self.chain_id, self.router)
                methods.update(InjectedApi(self.native, self, nursery).methods())
                nursery.start_soon(self.native.reforward_loop)
                nursery.start_soon(self.native.forward_loop)
                nursery.start_soon(self._drain_loop)
            dispatcher = RpcDispatcher(methods)
            await self._rpc_timed(dispatcher)
            if cfg.rpc.enabled:
                server = RpcServer(
                    dispatcher,
                    max_request_bytes=cfg.rpc.max_request_bytes,
                    rate_limit=cfg.rpc.rate_limit,
                    max_connections=cfg.rpc.max_connections,
                    on_close=api.close_session,
                )
                self.rpc_port = await nursery.start(server.serve, cfg.rpc.host, cfg.rpc.port)
                log.info("rpc listening", host=cfg.rpc.host, port=self.rpc_port)
            if cfg.metrics.enabled:
                self.metrics_port = await nursery.start(
                    serve_metrics, self.metrics.registry, cfg.metrics.host, cfg.metrics.port
                )
                log.info("metrics listening", host=cfg.metrics.host, port=self.metrics_port)
            nursery.start_soon(self._era_watch)
            if self.signer is not None:
                self.approver = Approver(
                    self.book,
                    bytes(self.signer.key),
                    bytes.fromhex(self.signer.address[2:]),
                    self.chain_id,
                    self.router,
                    lambda: self.era or 0,
                    elected=self._elected,
                )
                await nursery.start(self._run_gossip)
            for factory in self.role_factories:
                role = factory(self)
                if role is None:  # not this node's role (e.g. ordering on a follower)
                    continue
                self.roles.append(role)
                await nursery.start(role.run)
            self._write_info()
            await nursery.start(self._observe)

    async def _observe(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        assert self.observer is not None
        try:
            await self.observer.run(task_status=task_status)
        except ReorgTooDeep as e:
            raise ServiceError(str(e)) from None

    def _write_info(self) -> None:
        path = self.cfg.node.data_dir / "validator.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "rpc_port": self.rpc_port,
                    "metrics_port": self.metrics_port,
                    "validator": self.signer.address if self.signer else None,
                    "p2p": [_with_peer(a, self.gossip.peer_id) for a in self.gossip.listen_addrs]
                    if self.gossip
                    else [],
                }
            )
        )
        tmp.replace(path)


def _wrong_result(batch: Any) -> tuple[Any, str]:
    """GEXE_TEST_WRONG_BATCH: `batch` with a wrong result — the first transition's first
    message payload changed (a wrong reply), else its state hash, else `burned`."""
    from dataclasses import replace

    cc = batch.chain_commitment
    if not cc or not cc[0].transitions:
        return replace(batch, burned=batch.burned + 1), "burned"
    t = cc[0].transitions[0]
    if t.messages:
        m = replace(t.messages[0], payload=b"WRONG" + t.messages[0].payload)
        t, what = replace(t, messages=(m, *t.messages[1:])), "payload"
    else:
        t = replace(t, new_state_hash=bytes(b ^ 0xFF for b in t.new_state_hash))
        what = "state_hash"
    c = replace(cc[0], transitions=(t, *cc[0].transitions[1:]))
    return replace(batch, chain_commitment=(c, *cc[1:])), what


def _with_peer(addr: str, peer: str) -> str:
    return addr if "/p2p/" in addr else f"{addr}/p2p/{peer}"


def _p2p_key(path: Any) -> bytes:
    """The node's libp2p identity seed (32 bytes), created on first use (mode 0600)."""
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_file():
        data = p.read_bytes()
        if len(data) != 32:
            raise ServiceError(f"{p}: not a 32-byte p2p key; delete it to create a new one")
        return data
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    return p.read_bytes()


async def _main(cfg: Config, roles: Sequence[RoleFactory]) -> None:
    signer = load_signer(cfg)
    store = await trio.to_thread.run_sync(
        lambda: Store(cfg.node.data_dir / "store", map_size=cfg.node.store_map_size)
    )
    service: ValidatorService | None = None
    try:
        service = ValidatorService(cfg, store, signer, roles)
        try:
            await service.run()
        finally:
            with trio.CancelScope(shield=True):
                await service.client.aclose()
    finally:
        if service is not None:
            service.compute.close()
        store.close()
    log.info("stopped")


def run_validator(cfg: Config, roles: Sequence[RoleFactory] = ()) -> None:
    """Run until SIGINT/SIGTERM. Raises ServiceError / StoreError for operator errors.
    `roles` build extra parts (the sequencer) from the running service."""
    setup_logging(cfg.node.log_level, cfg.node.log_format, quiet=("httpx", "httpcore"))
    cfg.node.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        trio.run(_main, cfg, roles)
    except BaseExceptionGroup as eg:  # a task's error inside the nursery
        raise _leaf(eg) from None


def _leaf(e: BaseException) -> BaseException:
    """The first operator-facing error inside (nested) exception groups, else the group."""
    if isinstance(e, BaseExceptionGroup):
        for sub in e.exceptions:
            leaf = _leaf(sub)
            if not isinstance(leaf, BaseExceptionGroup):
                return leaf
    return e

"""Validators' gossip: py-libp2p 0.8.1 gossipsub with validation and a local junk score.

`GossipService` owns one libp2p host (TCP, Noise only, Mplex preferred), one
`Pubsub` + `GossipSub` router, and one topic, ``gexe/<router address lowercase>/v1``
that carries every message kind (the validator set is small and every validator
needs every kind; more topics would only add meshes and heartbeats).

Incoming messages are checked inside pubsub's validation step, before they are
marked seen, forwarded or delivered: size bound → strict decode → era ==
``current_era()`` → sender in ``validators(era)`` and the signature recovers to it →
payload agrees with the envelope. Failures are dropped (never forwarded, never
delivered) and scored against the peer that sent them (`gossip_score`); a peer over
the threshold is blacklisted in pubsub and disconnected for `ban_seconds`. Messages
one era away are dropped without penalty (normal at an era boundary).

Validated messages come out of `service.incoming` (a trio memory channel) or
``async for received in service``; our own publications are not redelivered.

See node/GOSSIP.md for the parameters and the py-libp2p traps this works around.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio

from .gossip_messages import (
    DEFAULT_MAX_MESSAGE_SIZE,
    GossipDomain,
    GossipError,
    GossipMessage,
    Oversized,
    SignedEnvelope,
    Signer,
    WrongEra,
    decode,
    seal,
    to_address,
    verify,
)
from .gossip_score import JunkPolicy, JunkTracker, RateBudget

__all__ = [
    "GossipConfig",
    "GossipService",
    "GossipStartError",
    "GossipStats",
    "Received",
    "configure_libp2p_logging",
    "open_gossip",
    "topic_for",
]

log = logging.getLogger(__name__)

# Protobuf framing around our envelope inside one pubsub RPC (from, seqno, topic,
# libp2p signature and key, senderRecord): a few hundred bytes; keep a wide margin.
_RPC_OVERHEAD = 64 * 1024


def topic_for(router_address: str | bytes) -> str:
    return f"gexe/0x{to_address(router_address).hex()}/v1"


@dataclass(frozen=True)
class GossipConfig:
    """Gossip settings. (Local to this module until node.config grows a gossip section.)"""

    chain_id: int
    router_address: str | bytes
    listen_addrs: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    # Full multiaddrs including /p2p/<peer id>, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo...
    bootnodes: tuple[str, ...] = ()
    # 32-byte ed25519 seed for a stable libp2p identity (peer id); None = random.
    node_key: bytes | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE  # whole encoded envelope
    outbound_queue_size: int = 4096  # per-peer outbound RPC queue (libp2p default 32)
    delivery_queue_size: int = 65536  # validated messages waiting for the application
    heartbeat_interval: int = 1  # seconds (libp2p default 120)
    mesh_degree: int = 6
    mesh_degree_low: int = 4
    mesh_degree_high: int = 12
    # gossipsub's per-peer-per-topic rate limit (msgs/s). None disables it: at its
    # default (10/s) it silently stops *forwarding* bursts, including our own.
    rate_limit_per_peer: float | None = None
    seen_ttl: int = 120  # seconds a message id stays in the duplicate filter
    era_grace: int = 1  # |era - current| <= this (and != 0): drop without penalty
    junk: JunkPolicy = field(default_factory=JunkPolicy)
    # validly signed messages of one validator that one peer may bring: `signer_rate` a
    # second, bursts of `signer_burst`. Beyond, they are dropped (not delivered, not
    # forwarded), and one that came first-hand from its publisher counts as junk
    # ("flood") against that peer.
    # A busy validator publishes well under 100 a second (a promise message and a
    # forward per sequencer block, an approval per Ethereum block, answers to requests).
    signer_rate: float = 500.0
    signer_burst: float = 5000.0
    dial_backoff_initial: float = 0.25
    dial_backoff_max: float = 10.0
    dial_timeout: float = 10.0
    muxer: str = "MPLEX"

    def __post_init__(self) -> None:
        to_address(self.router_address)
        if not self.listen_addrs:
            raise ValueError("gossip: at least one listen address is required")
        for a in (*self.listen_addrs, *self.bootnodes):
            try:
                multiaddr.Multiaddr(a)
            except Exception as exc:
                raise ValueError(f"gossip: bad multiaddr {a!r}: {exc}") from None
        for b in self.bootnodes:
            if "/p2p/" not in b:
                raise ValueError(f"gossip: bootnode {b!r} lacks /p2p/<peer id>")
        if self.node_key is not None and len(self.node_key) != 32:
            raise ValueError("gossip: node_key must be 32 bytes")
        if self.max_message_size < 256:
            raise ValueError("gossip: max_message_size too small")
        if self.muxer.upper() not in ("MPLEX", "YAMUX"):
            raise ValueError("gossip: muxer must be MPLEX or YAMUX")


class GossipStartError(OSError):
    """The service could not start (e.g. its listen address is taken)."""


@dataclass(frozen=True)
class Received:
    """A validated gossip message."""

    message: GossipMessage
    envelope: SignedEnvelope
    signer: bytes  # recovered validator address (20 bytes)
    from_peer: str  # libp2p peer id that forwarded it to us
    origin_peer: str  # libp2p peer id that published it

    @property
    def era(self) -> int:
        return self.envelope.era


@dataclass
class GossipStats:
    published: int = 0
    delivered: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by reason, all peers
    ignored_era: int = 0  # adjacent-era messages dropped without penalty
    ignored_no_set: int = 0  # dropped without penalty: the era's validator set is unknown
    dropped_overflow: int = 0  # validated but the delivery channel was full
    bans: int = 0
    dial_failures: int = 0  # bootnode dials that failed (retried with backoff)
    bootnode_connects: int = 0  # successful bootnode dials


# --------------------------------------------------------------------------- libp2p tuning

_QUEUE_TUNING = {"max_size": 32, "max_message_size": 1 << 20}


def _tune_libp2p(outbound_queue_size: int, max_rpc_size: int) -> None:
    """Raise pubsub's per-peer outbound RpcQueue limits (process-wide, only ever up).

    Pubsub builds each peer's queue as ``RpcQueue()`` with defaults (32 RPCs, 1 MiB)
    and *drops* what does not fit (a debug log line at most). There is no
    constructor parameter, so the module-level name is replaced, as in the lab probes.
    """
    import libp2p.pubsub.pubsub as _ps
    from libp2p.pubsub.rpc_queue import RpcQueue

    _QUEUE_TUNING["max_size"] = max(_QUEUE_TUNING["max_size"], outbound_queue_size)
    _QUEUE_TUNING["max_message_size"] = max(_QUEUE_TUNING["max_message_size"], max_rpc_size)
    if getattr(_ps.RpcQueue, "_gexe_tuned", False):
        return

    class _TunedRpcQueue(RpcQueue):
        _gexe_tuned = True

        def __init__(self, max_size: int | None = None, max_message_size: int | None = None):
            super().__init__(
                max_size if max_size is not None else _QUEUE_TUNING["max_size"],
                max_message_size
                if max_message_size is not None
                else _QUEUE_TUNING["max_message_size"],
            )

    _ps.RpcQueue = _TunedRpcQueue


_RECORD_REFRESH = 10.0  # seconds a host's own signed peer record is reused unchecked
_RECORD_MEMO = 60.0  # seconds a peer's identical signed record is taken as verified


def _cache_signed_records() -> None:
    """Make py-libp2p's per-RPC signed peer records cheap (process-wide, idempotent).

    0.8.1 attaches the host's signed peer record to every RPC it sends — rebuilding
    the listen-address set each time (``host.get_addrs()``) to see whether the cached
    record is stale — and every receiver verifies that Ed25519 signature and updates
    its peerstore. Measured on a 4-validator dev network under injected load: about
    10% of each node's CPU, on the pre-confirmation's critical path. The sender now
    re-checks its addresses at most every `_RECORD_REFRESH` s, and a receiver that
    verified exactly these bytes from this peer within `_RECORD_MEMO` s accepts them
    again without a second verification (same bytes, same verdict; the peerstore's
    2-hour TTL is refreshed at least once per `_RECORD_MEMO`).
    """
    import libp2p.pubsub.gossipsub as _gs
    import libp2p.pubsub.pubsub as _ps

    if getattr(_ps.env_to_send_in_RPC, "_gexe_cached", False):
        return
    send_orig = _ps.env_to_send_in_RPC
    consume_orig = _ps.maybe_consume_signed_record
    # keyed by peer ids, not id(host): a host created after another died may reuse its id
    sent: dict[bytes, tuple[float, tuple[bytes, bool]]] = {}
    consumed: dict[tuple[bytes, bytes, bytes], float] = {}

    def env_to_send_in_RPC(host: Any) -> tuple[bytes, bool]:  # noqa: N802 (libp2p's name)
        now = time.monotonic()
        me = host.get_id().to_bytes()
        hit = sent.get(me)
        if hit is not None and now - hit[0] < _RECORD_REFRESH:
            return hit[1]
        out = send_orig(host)
        sent[me] = (now, (out[0], False))
        return out

    def maybe_consume_signed_record(msg: Any, host: Any, peer_id: Any) -> bool:
        if not msg.HasField("senderRecord"):
            return True
        key = (host.get_id().to_bytes(), peer_id.to_bytes(), msg.senderRecord)
        now = time.monotonic()
        if now - consumed.get(key, -1e9) < _RECORD_MEMO:
            return True
        ok = bool(consume_orig(msg, host, peer_id))
        if ok:
            if len(consumed) > 4096:
                consumed.clear()
            consumed[key] = now
        return ok

    env_to_send_in_RPC._gexe_cached = True  # type: ignore[attr-defined]
    for mod in (_ps, _gs):
        mod.env_to_send_in_RPC = env_to_send_in_RPC  # type: ignore[attr-defined]
        mod.maybe_consume_signed_record = maybe_consume_signed_record  # type: ignore[attr-defined]


def configure_libp2p_logging() -> None:
    """Route libp2p's log records sensibly.

    ``import libp2p`` runs its own ``setup_logging()``: without ``LIBP2P_DEBUG`` it
    detaches the "libp2p" logger (propagate=False, no handlers), so its warnings
    (e.g. dropped RPCs) bypass the node's logging. We re-attach it at WARNING. With
    ``LIBP2P_DEBUG`` set (e.g. ``DEBUG`` or ``pubsub.gossipsub:DEBUG``) libp2p's own
    setup applies (stderr + a log file, ``LIBP2P_DEBUG_FILE``); if the variable was
    set after libp2p was imported, run that setup now.
    """
    import libp2p.utils.logging as l2log

    lg = logging.getLogger("libp2p")
    if os.environ.get("LIBP2P_DEBUG"):
        if l2log._current_listener is None:
            l2log.setup_logging()
        logging.getLogger(__name__).setLevel(logging.DEBUG)
    else:
        lg.setLevel(logging.WARNING)
        lg.propagate = True
        # this one module pins itself to INFO and chats about its dial loop
        logging.getLogger("libp2p.network.auto_connector").setLevel(logging.WARNING)
        # a refused dial (bootnode not up yet) is logged at ERROR once per internal
        # retry; the bootnode loop reports dial failures itself
        tcp = logging.getLogger("libp2p.transport.tcp.tcp")
        if not any(isinstance(f, _DialNoiseFilter) for f in tcp.filters):
            tcp.addFilter(_DialNoiseFilter())


class _DialNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to open TCP stream")


@functools.cache
def _libp2p_pubsub_classes() -> tuple[type, type]:
    from libp2p.exceptions import ValidationError
    from libp2p.pubsub.pubsub import Pubsub

    class _GexePubsub(Pubsub):
        """Pubsub whose validation and local delivery are the gossip service's.

        Overriding ``validate_msg`` (instead of ``set_topic_validator``) runs our check
        on every message: 0.8.1 caches validation results per message id for 5 min,
        which would skip counting repeated junk and re-checking the era.
        ``notify_subscriptions`` is where pubsub hands a validated, de-duplicated
        message to local subscribers; we take it there instead of through the
        subscription channel (32 slots, drops on overflow).
        """

        _gexe: GossipService

        async def validate_msg(self, msg_forwarder: Any, msg: Any) -> None:
            if not self._gexe._check_incoming(msg_forwarder, msg):
                raise ValidationError("gexe gossip: message rejected")

        def notify_subscriptions(self, publish_message: Any) -> None:
            self._gexe._deliver(publish_message)

    return _GexePubsub, ValidationError


def _make_notifee(service: GossipService) -> Any:
    from libp2p.abc import INotifee

    class _Notifee(INotifee):
        async def opened_stream(self, network: Any, stream: Any) -> None:
            await trio.lowlevel.checkpoint()

        async def closed_stream(self, network: Any, stream: Any) -> None:
            await trio.lowlevel.checkpoint()

        async def connected(self, network: Any, conn: Any) -> None:
            service._on_connected(conn.muxed_conn.peer_id)
            await trio.lowlevel.checkpoint()

        async def disconnected(self, network: Any, conn: Any) -> None:
            service._on_topology_change()
            await trio.lowlevel.checkpoint()

        async def listen(self, network: Any, maddr: Any) -> None:
            await trio.lowlevel.checkpoint()

        async def listen_close(self, network: Any, maddr: Any) -> None:
            await trio.lowlevel.checkpoint()

    return _Notifee()


# --------------------------------------------------------------------------- service


class GossipService:
    """One validator's gossip endpoint. Run it with ``await nursery.start(svc.run)``
    (or ``async with open_gossip(...)``); cancelling that nursery stops the host."""

    def __init__(
        self,
        config: GossipConfig,
        signer: Signer,
        *,
        current_era: Callable[[], int],
        validators: Callable[[int], Collection[str | bytes]],
    ) -> None:
        self.config = config
        self.signer = signer
        self.current_era = current_era
        self.validators = validators
        self.domain = GossipDomain(config.chain_id, to_address(config.router_address))
        self.topic = topic_for(config.router_address)
        self.stats = GossipStats()
        self.junk = JunkTracker(config.junk)
        self._budget = RateBudget(config.signer_rate, config.signer_burst)
        self._send, self.incoming = trio.open_memory_channel[Received](config.delivery_queue_size)
        self._ban_send, self._ban_recv = trio.open_memory_channel[Any](math.inf)
        self._host: Any = None
        self._pubsub: Any = None
        self._router: Any = None
        self._my_id: Any = None
        self._my_id_bytes = b""
        self._pending: tuple[Any, Received | None] | None = None
        self._topology = trio.Event()
        self._running = False
        self.peer_id = ""
        self.listen_addrs: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from libp2p import new_host
        from libp2p.crypto.ed25519 import create_new_key_pair
        from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
        from libp2p.pubsub.gossipsub import (
            PROTOCOL_ID,
            PROTOCOL_ID_V11,
            GossipSub,
        )
        from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
        from libp2p.security.noise.transport import Transport as NoiseTransport
        from libp2p.tools.anyio_service import background_trio_service

        cfg = self.config
        configure_libp2p_logging()
        _tune_libp2p(cfg.outbound_queue_size, cfg.max_message_size + _RPC_OVERHEAD)
        _cache_signed_records()
        pubsub_cls, _ = _libp2p_pubsub_classes()

        key_pair = create_new_key_pair(cfg.node_key)
        host = new_host(
            key_pair=key_pair,
            # Noise only: the default also offers TLS, SECIO and *plaintext*.
            sec_opt={
                NOISE_PROTOCOL_ID: NoiseTransport(
                    key_pair, noise_privkey=create_x25519_key_pair().private_key
                )
            },
            muxer_preference=cfg.muxer.upper(),  # type: ignore[arg-type]
        )
        router = GossipSub(
            protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=cfg.mesh_degree,
            degree_low=cfg.mesh_degree_low,
            degree_high=cfg.mesh_degree_high,
            heartbeat_interval=cfg.heartbeat_interval,
            heartbeat_initial_delay=0.1,
            spam_protection_enabled=cfg.rate_limit_per_peer is not None,
            max_messages_per_topic_per_second=cfg.rate_limit_per_peer or 10.0,
            # adaptive gossip can stretch a 1 s heartbeat to 30-60 s when the mesh is
            # below `degree` (always, for a small validator set).
            adaptive_gossip_enabled=False,
            # every peer on one host/IP would look like an eclipse attempt.
            eclipse_protection_enabled=False,
        )
        pubsub = pubsub_cls(
            host,
            router,
            # no libp2p signature on messages: every envelope is signed by a validator's
            # Ethereum key and checked in `_check_incoming` before anything acts on it;
            # the Ed25519 sign + verify per message was pure overhead (GOSSIP.md)
            strict_signing=False,
            # content-addressed ids: a replayed envelope is a duplicate whoever
            # republishes it.
            msg_id_constructor=_content_msg_id,
            seen_ttl=cfg.seen_ttl,
            max_inbound_rpc_size=max(1 << 20, 2 * cfg.max_message_size + _RPC_OVERHEAD),
            allowed_topics={self.topic},
        )
        pubsub._gexe = self
        # libp2p starts message seqnos at the Unix time in seconds and adds one per message:
        # a node that published more than one message a second and restarts (same peer id)
        # would reuse seqnos its peers remember, and gossipsub drops those as equivocation
        # and penalises the node. Nanoseconds, as go-libp2p does, keep a restart ahead.
        pubsub.counter = time.time_ns()
        self._host, self._pubsub, self._router = host, pubsub, router
        self._my_id = host.get_id()
        self._my_id_bytes = self._my_id.to_bytes()
        self.peer_id = self._my_id.to_base58()

        listen = [multiaddr.Multiaddr(a) for a in cfg.listen_addrs]
        start_error: GossipStartError | None = None
        try:
            async with host.run(listen_addrs=listen):
                self.listen_addrs = [str(a) for a in host.get_addrs()]
                if len(self.listen_addrs) < len(cfg.listen_addrs):
                    # 0.8.1 logs a failed bind and carries on without that address;
                    # raised after leaving libp2p's nurseries, so it is not wrapped
                    # in exception groups
                    start_error = GossipStartError(
                        f"gossip: could not listen on {', '.join(cfg.listen_addrs)} "
                        f"(bound: {', '.join(self.listen_addrs) or 'nothing'}); "
                        "is the port already in use?"
                    )
                else:
                    await self._serve(task_status, background_trio_service)
        finally:
            self._running = False
            self._send.close()
            log.info("gossip stopped: peer %s", self.peer_id)
        if start_error is not None:
            raise start_error

    async def _serve(self, task_status: Any, background_trio_service: Any) -> None:
        pubsub, router = self._pubsub, self._router
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            await pubsub.subscribe(self.topic)
            self._host.get_network().register_notifee(_make_notifee(self))
            log.info(
                "gossip up: peer %s on %s, topic %s",
                self.peer_id,
                ", ".join(self.listen_addrs),
                self.topic,
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._enforcer)
                for addr in self.config.bootnodes:
                    nursery.start_soon(self._maintain_bootnode, addr)
                self._running = True
                task_status.started(self)
                await trio.sleep_forever()

    # ------------------------------------------------------------------ public API

    async def publish(self, message: GossipMessage, *, era: int | None = None) -> SignedEnvelope:
        """Sign `message` for `era` (default: current era) and gossip it."""
        env = seal(
            message,
            era=self.current_era() if era is None else era,
            domain=self.domain,
            signer=self.signer,
        )
        data = env.encode()
        if len(data) > self.config.max_message_size:
            raise Oversized(
                f"gossip message is {len(data)} bytes, limit {self.config.max_message_size}"
            )
        await self.publish_raw(data)
        return env

    async def publish_raw(self, data: bytes) -> None:
        """Gossip bytes as they are, unchecked (our own messages skip validation).
        For fault-injection tests; the node itself uses `publish`."""
        if not self._running:
            raise RuntimeError("gossip service is not running")
        await self._pubsub.publish(self.topic, bytes(data))
        self.stats.published += 1

    async def connect(self, addr: str) -> None:
        """Dial one peer once (a full multiaddr with /p2p/)."""
        from libp2p.peer.peerinfo import info_from_p2p_addr

        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        self._host.get_network().unblock_peer(info.peer_id)
        await self._host.connect(info)

    def __aiter__(self) -> AsyncIterator[Received]:
        return self.incoming.__aiter__()

    def connected_peers(self) -> set[str]:
        return {p.to_base58() for p in self._host.get_connected_peers()} if self._host else set()

    def topic_peers(self) -> set[str]:
        """Peers that told us they subscribe to our topic."""
        if self._pubsub is None:
            return set()
        return {p.to_base58() for p in self._pubsub.peer_topics.get(self.topic, ())}

    def mesh_peers(self) -> set[str]:
        if self._router is None:
            return set()
        return {p.to_base58() for p in self._router.mesh.get(self.topic, ())}

    async def wait_for_mesh(self, peers: Iterable[str], *, timeout: float = 30.0) -> None:
        """Wait (bounded) until every peer in `peers` is in our mesh for the topic."""
        want = set(peers)
        with trio.fail_after(timeout):
            while not want <= self.mesh_peers():
                await trio.sleep(0.05)

    def junk_counts(self, peer: str) -> dict[str, int]:
        return self.junk.counts(peer)

    def junk_total(self, peer: str) -> int:
        return self.junk.total(peer)

    def banned_peers(self) -> set[str]:
        return self.junk.banned(trio.current_time())

    # ------------------------------------------------------------------ validation

    def _open(self, data: bytes) -> tuple[SignedEnvelope, bytes] | None:
        """Decode and verify; None = ignore without penalty; raises GossipError = junk."""
        max_size = self.config.max_message_size
        if len(data) > max_size:
            raise Oversized(f"{len(data)} bytes, limit {max_size}")
        env = decode(data, max_size=max_size)
        current = self.current_era()
        if env.era != current:
            if abs(env.era - current) <= self.config.era_grace:
                return None
            raise WrongEra(f"era {env.era}, current {current}")
        validators = self.validators(env.era)
        if not validators:
            # the set is not known yet (a node starting: its era read and its set read are
            # two calls): nobody can be judged, so nobody is blamed
            self.stats.ignored_no_set += 1
            return None
        signer = verify(env, validators, self.domain)
        return env, signer

    def _check_incoming(self, forwarder: Any, msg: Any) -> bool:
        """Pubsub validation hook (sync, so it runs atomically inside push_msg)."""
        self._pending = None
        if forwarder == self._my_id:
            self._pending = (msg, None)
            return True
        peer = forwarder.to_base58()
        try:
            opened = self._open(msg.data)
        except GossipError as exc:
            self.stats.rejected[exc.reason] += 1
            log.debug("gossip: rejected message from %s: %s (%s)", peer, exc.reason, exc)
            if self.junk.record(peer, exc.reason, trio.current_time()):
                self._ban(forwarder)
            return False
        except Exception:
            log.exception("gossip: validation failed unexpectedly (message dropped)")
            return False
        if opened is None:
            self.stats.ignored_era += 1
            return False
        env, signer = opened
        now = trio.current_time()
        # per (validator, peer it came from): a peer replaying a validator's old messages
        # spends its own share, not the budget the validator's real messages arrive on
        if not self._budget.take(f"{signer}/{peer}", now):
            self.stats.rejected["flood"] += 1
            # first-hand (the peer published it itself): the flooder, or a peer passing
            # a flood off as its own; relayed copies are dropped without blame
            if msg.from_id == forwarder.to_bytes() and self.junk.record(peer, "flood", now):
                self._ban(forwarder)
            return False
        self._pending = (
            msg,
            Received(env.message(), env, signer, peer, _peer_b58(msg.from_id)),
        )
        return True

    def _deliver(self, msg: Any) -> None:
        pending, self._pending = self._pending, None
        if msg.from_id == self._my_id_bytes:
            return  # our own publication: not redelivered
        if pending is None or pending[0] is not msg or pending[1] is None:
            # Not the message we just validated (not expected with 0.8.1's push_msg):
            # check again rather than deliver unchecked.
            try:
                opened = self._open(msg.data)
            except Exception:
                return
            if opened is None:
                return
            env, signer = opened
            origin = _peer_b58(msg.from_id)
            rec = Received(env.message(), env, signer, origin, origin)
        else:
            rec = pending[1]
        try:
            self._send.send_nowait(rec)
        except trio.WouldBlock:
            self.stats.dropped_overflow += 1
            log.warning(
                "gossip: delivery queue full (%d), dropped a message from %s",
                self.config.delivery_queue_size,
                rec.from_peer,
            )
        except trio.ClosedResourceError:
            return
        else:
            self.stats.delivered += 1

    # ------------------------------------------------------------------ bans & peers

    def _ban(self, peer_id: Any) -> None:
        self.stats.bans += 1
        log.warning(
            "gossip: peer %s sent too much junk (%s); banned for %.0f s",
            peer_id.to_base58(),
            self.junk.counts(peer_id.to_base58()),
            self.config.junk.ban_seconds,
        )
        # Blacklist directly (pubsub.add_to_blacklist would also tear down the pubsub
        # stream itself, racing the disconnect below and leaving the router's peer
        # state behind); the disconnect makes pubsub drop the peer properly.
        self._pubsub.blacklisted_peers.add(peer_id)
        self._ban_send.send_nowait(("ban", peer_id))

    def _on_connected(self, peer_id: Any) -> None:
        if self.junk.is_banned(peer_id.to_base58(), trio.current_time()):
            self._ban_send.send_nowait(("kick", peer_id))
        self._on_topology_change()

    def _on_topology_change(self) -> None:
        self._topology.set()
        self._topology = trio.Event()

    async def _enforcer(self) -> None:
        async with trio.open_nursery() as nursery:
            async for action, peer_id in self._ban_recv:
                nursery.start_soon(self._disconnect, peer_id)
                if action == "ban":
                    nursery.start_soon(self._unban_later, peer_id)

    async def disconnect(self, peer: str) -> None:
        """Close every connection to `peer` (base58 peer id)."""
        from libp2p.peer.id import ID

        await self._disconnect(ID.from_base58(peer))

    async def _disconnect(self, peer_id: Any) -> None:
        # Not host.disconnect(): 0.8.1's Swarm.close_peer awaits each close and then
        # pops the peer's whole connection list, so a connection the peer re-opened
        # meanwhile is forgotten without being closed (a zombie that half the stack
        # still uses). SwarmConn.close() removes exactly its own entry.
        network = self._host.get_network()
        with trio.move_on_after(self.config.dial_timeout):
            for _ in range(8):
                conns = list(network.get_connections(peer_id))
                if not conns:
                    return
                for conn in conns:
                    try:
                        await conn.close()
                    except Exception as exc:
                        log.debug("gossip: closing a connection to %s failed: %r", peer_id, exc)

    async def _unban_later(self, peer_id: Any) -> None:
        peer = peer_id.to_base58()
        until = self.junk.banned_until(peer)
        if until is not None:
            await trio.sleep_until(until)
        self.junk.unban(peer, trio.current_time())
        self._pubsub.remove_from_blacklist(peer_id)
        log.info("gossip: ban on %s lifted", peer)
        self._on_topology_change()

    async def _maintain_bootnode(self, addr: str) -> None:
        """Keep a connection to one bootnode: dial with capped exponential backoff
        (jittered); after a disconnect, dial again."""
        from libp2p.peer.peerinfo import info_from_p2p_addr

        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        if info.peer_id == self._my_id:
            return
        peer = info.peer_id.to_base58()
        network = self._host.get_network()
        delay = self.config.dial_backoff_initial
        while True:
            changed = self._topology
            connected = bool(network.get_connections(info.peer_id))
            if connected or self.junk.is_banned(peer, trio.current_time()):
                delay = self.config.dial_backoff_initial
                await changed.wait()
                if connected:
                    # just lost it: let both sides finish tearing the old connection
                    # down before dialling again
                    await trio.sleep(delay * random.uniform(1.0, 2.0))
                continue
            try:
                # A failed dial puts the peer in the swarm's 60 s negative cache,
                # which would make every retry fail instantly: clear it first.
                network.unblock_peer(info.peer_id)
                with trio.fail_after(self.config.dial_timeout):
                    await self._host.connect(info)
                self.stats.bootnode_connects += 1
                log.info("gossip: connected to bootnode %s", addr)
                continue
            except Exception as exc:  # SwarmException, TooSlowError, OSError...
                self.stats.dial_failures += 1
                level = logging.INFO if delay == self.config.dial_backoff_initial else logging.DEBUG
                log.log(level, "gossip: dial %s failed (%s); retrying with backoff", addr, exc)
            await trio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.config.dial_backoff_max)


def _content_msg_id(msg: Any) -> bytes:
    import hashlib

    return hashlib.sha256(msg.data).digest()


def _peer_b58(raw: bytes) -> str:
    from libp2p.peer.id import ID

    try:
        return ID(raw).to_base58()
    except Exception:
        return raw.hex()


@asynccontextmanager
async def open_gossip(
    config: GossipConfig,
    signer: Signer,
    *,
    current_era: Callable[[], int],
    validators: Callable[[int], Collection[str | bytes]],
) -> AsyncIterator[GossipService]:
    """``async with open_gossip(...) as svc:`` — started on entry, stopped on exit."""
    svc = GossipService(config, signer, current_era=current_era, validators=validators)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(svc.run)
            try:
                yield svc
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # a start failure alone: raise it plainly (one clear line for the CLI)
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], GossipStartError):
            raise group.exceptions[0] from None
        raise

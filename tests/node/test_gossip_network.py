"""GossipService over real py-libp2p sockets on 127.0.0.1 (in one trio process).

Waits are bounded polls of peer/mesh/counter state (trio.fail_after), never sleeps
used as synchronisation; the bounds are liveness limits, not speed assertions.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable

import pytest
import trio
from gexe.node.gossip import (
    GossipConfig,
    GossipService,
    GossipStartError,
    open_gossip,
    topic_for,
)
from gexe.node.gossip_messages import (
    ApproveBatch,
    EthSigner,
    RequestBatchValidation,
    SignedEnvelope,
    seal,
)
from gexe.node.gossip_score import JunkPolicy

ROUTER = "0x" + "5A" * 20
CHAIN_ID = 31337
ERA = 3
SIGNERS = [EthSigner(bytes([0x10 + i]) * 32) for i in range(4)]
VALIDATORS = frozenset(s.address for s in SIGNERS[:3])  # SIGNERS[3] is an outsider
LIVENESS = 60  # seconds; generous for 2 slow cores


def config(**kw) -> GossipConfig:
    return GossipConfig(chain_id=CHAIN_ID, router_address=ROUTER, **kw)


async def start(
    nursery: trio.Nursery, signer: EthSigner, era: Callable[[], int] = lambda: ERA, **kw
) -> GossipService:
    svc = GossipService(config(**kw), signer, current_era=era, validators=lambda e: VALIDATORS)
    await nursery.start(svc.run)
    return svc


async def poll(cond: Callable[[], bool], what: str, timeout: float = LIVENESS) -> None:
    try:
        with trio.fail_after(timeout):
            while not cond():
                await trio.sleep(0.05)
    except trio.TooSlowError:
        raise AssertionError(f"timed out waiting for {what}") from None


def approval(signer: EthSigner, n: int, era: int = ERA) -> ApproveBatch:
    digest = n.to_bytes(32, "big")
    return ApproveBatch(digest, era, signer.address, signer.sign_digest(digest))


async def test_three_validators_deliver_every_message():
    n_msgs = 200
    async with trio.open_nursery() as nursery:
        a = await start(nursery, SIGNERS[0])
        boot = (a.listen_addrs[0],)
        b = await start(nursery, SIGNERS[1], bootnodes=boot)
        c = await start(nursery, SIGNERS[2], bootnodes=boot)
        nodes = [a, b, c]
        assert a.topic == topic_for(ROUTER) == f"gexe/0x{'5a' * 20}/v1"
        assert a.listen_addrs[0].startswith("/ip4/127.0.0.1/tcp/")
        assert a.listen_addrs[0].endswith(f"/p2p/{a.peer_id}")

        with trio.fail_after(LIVENESS):
            await a.wait_for_mesh([b.peer_id, c.peer_id])
            await b.wait_for_mesh([a.peer_id])
            await c.wait_for_mesh([a.peer_id])

        # Noise only, Mplex preferred
        for conn in a._host.get_network().get_connections():
            assert conn.muxed_conn.negotiated_security_protocol == "/noise"
            assert type(conn.muxed_conn).__name__ == "Mplex"

        got: list[list] = [[], [], []]
        expected = 2 * n_msgs

        async def read(i: int) -> None:
            async for rec in nodes[i]:
                got[i].append(rec)
                if len(got[i]) == expected:
                    return

        async def publish(i: int) -> None:
            for k in range(n_msgs):
                await nodes[i].publish(approval(SIGNERS[i], i * 1_000_000 + k))

        with trio.fail_after(LIVENESS):
            async with trio.open_nursery() as inner:
                for i in range(3):
                    inner.start_soon(read, i)
                for i in range(3):
                    inner.start_soon(publish, i)

        for i, node in enumerate(nodes):
            senders = Counter(rec.signer for rec in got[i])
            others = {SIGNERS[j].address for j in range(3) if j != i}
            assert senders == {addr: n_msgs for addr in others}  # none of our own
            assert len({rec.message.batch_digest for rec in got[i]}) == expected  # no dups
            assert all(rec.era == ERA and isinstance(rec.message, ApproveBatch) for rec in got[i])
            assert node.stats.published == n_msgs
            assert node.stats.delivered == expected
            assert not node.stats.rejected and node.stats.dropped_overflow == 0
            with pytest.raises(trio.WouldBlock):
                node.incoming.receive_nowait()  # nothing beyond the exact count
        # b's messages reach c only through a: relayed, with the origin preserved
        via_a = [r for r in got[2] if r.signer == SIGNERS[1].address]
        assert {r.from_peer for r in via_a} == {a.peer_id}
        assert {r.origin_peer for r in via_a} == {b.peer_id}
        nursery.cancel_scope.cancel()


async def test_invalid_messages_are_dropped_and_scored():
    limit = 64 * 1024
    async with trio.open_nursery() as nursery:
        a = await start(nursery, SIGNERS[0], max_message_size=limit)
        c = await start(nursery, SIGNERS[1], max_message_size=limit, bootnodes=(a.listen_addrs[0],))
        # a validator gone bad; connected to `a` only
        bad = await start(nursery, SIGNERS[2], max_message_size=limit)
        await bad.connect(a.listen_addrs[0])
        with trio.fail_after(LIVENESS):
            await a.wait_for_mesh([c.peer_id, bad.peer_id])
            await c.wait_for_mesh([a.peer_id])
            await bad.wait_for_mesh([a.peer_id])

        def request(era: int, batch: bytes = b"b") -> RequestBatchValidation:
            return RequestBatchValidation(b"\x01" * 32, era, b"\x02" * 32, b"\x05" * 32, batch)

        # forged: signed by an outsider's key, claiming to be validator 0
        env = seal(request(ERA), era=ERA, domain=bad.domain, signer=SIGNERS[3])
        forged = SignedEnvelope(
            env.era, SIGNERS[0].address, env.payload_type, env.payload, env.signature
        )
        # properly signed by `bad`, but for a far-away era
        wrong_era = seal(request(ERA + 5), era=ERA + 5, domain=bad.domain, signer=SIGNERS[2])
        # properly signed, but larger than the configured bound
        big = seal(request(ERA, b"x" * (limit + 1)), era=ERA, domain=bad.domain, signer=SIGNERS[2])
        # next era: dropped without penalty (normal around an era switch)
        next_era = seal(request(ERA + 1), era=ERA + 1, domain=bad.domain, signer=SIGNERS[2])
        for data in (
            forged.encode(),
            wrong_era.encode(),
            big.encode(),
            b"\x07garbage",
            next_era.encode(),
        ):
            await bad.publish_raw(data)
        good = await bad.publish(approval(SIGNERS[2], 42))

        with trio.fail_after(LIVENESS):
            rec_a = await a.incoming.receive()
            rec_c = await c.incoming.receive()
        for rec in (rec_a, rec_c):
            assert rec.envelope == good and rec.signer == SIGNERS[2].address
        await poll(
            lambda: a.junk_total(bad.peer_id) == 4 and a.stats.ignored_era == 1, "junk count"
        )
        assert a.junk_counts(bad.peer_id) == {
            "signer_mismatch": 1,
            "wrong_era": 1,
            "oversized": 1,
            "unknown_type": 1,
        }
        assert a.stats.rejected == Counter(a.junk_counts(bad.peer_id))
        assert bad.peer_id not in a.banned_peers()  # 4 < threshold
        # junk is never forwarded: c saw only the good message, via a
        assert rec_c.from_peer == a.peer_id and rec_c.origin_peer == bad.peer_id
        assert c.junk_total(a.peer_id) == 0 and not c.stats.rejected and c.stats.ignored_era == 0
        for node in (a, c):
            with pytest.raises(trio.WouldBlock):
                node.incoming.receive_nowait()
        nursery.cancel_scope.cancel()


def test_messages_are_ignored_not_blamed_while_the_validator_set_is_unknown():
    """A node that knows its era but not yet the era's validators (a restart) must not
    score honest validators' messages as junk: it cannot judge them."""
    known: set[str] = set()
    svc = GossipService(config(), SIGNERS[0], current_era=lambda: ERA, validators=lambda e: known)
    data = seal(approval(SIGNERS[1], 1), era=ERA, domain=svc.domain, signer=SIGNERS[1]).encode()
    assert svc._open(data) is None and svc.stats.ignored_no_set == 1
    known.update(VALIDATORS)
    env, signer = svc._open(data)
    assert signer == SIGNERS[1].address


async def test_junk_flood_gets_the_peer_disconnected():
    policy = JunkPolicy(threshold=10, half_life=60, ban_seconds=600)
    async with trio.open_nursery() as nursery:
        a = await start(nursery, SIGNERS[0], junk=policy)
        bad = await start(nursery, SIGNERS[3])  # an outsider flooding junk
        await bad.connect(a.listen_addrs[0])
        with trio.fail_after(LIVENESS):
            await a.wait_for_mesh([bad.peer_id])
            await bad.wait_for_mesh([a.peer_id])
        assert bad.peer_id in a.connected_peers()

        for k in range(30):
            await bad.publish_raw(b"\x01junk" + k.to_bytes(4, "big"))  # distinct, truncated
        await poll(lambda: bad.peer_id in a.banned_peers(), "ban")
        await poll(lambda: bad.peer_id not in a.connected_peers(), "disconnect")
        assert a.junk_total(bad.peer_id) >= 10
        assert a.stats.bans == 1 and a.stats.delivered == 0

        # a banned peer that dials again is dropped again, and stays ignored
        try:
            await bad.connect(a.listen_addrs[0])
        except Exception:
            pass  # refused/reset during the handshake is fine too
        await poll(lambda: bad.peer_id not in a.connected_peers(), "disconnect after redial")
        assert bad.peer_id in a.banned_peers() and a.stats.delivered == 0
        nursery.cancel_scope.cancel()


async def test_a_validator_flooding_valid_messages_is_cut_off_and_banned():
    """Validly signed messages beyond a validator's budget are dropped — not delivered, not
    forwarded — and, coming first-hand from their publisher, scored as junk until it is
    banned; an honest validator's messages still flow."""
    policy = JunkPolicy(threshold=10, half_life=60, ban_seconds=600)
    budget = {"signer_rate": 20.0, "signer_burst": 50.0}
    async with trio.open_nursery() as nursery:
        a = await start(nursery, SIGNERS[0], junk=policy, **budget)
        boot = (a.listen_addrs[0],)
        c = await start(nursery, SIGNERS[2], bootnodes=boot, **budget)
        flooder = await start(nursery, SIGNERS[1], bootnodes=boot)  # a validator
        with trio.fail_after(LIVENESS):
            await a.wait_for_mesh([c.peer_id, flooder.peer_id])
            await c.wait_for_mesh([a.peer_id])
            await flooder.wait_for_mesh([a.peer_id])
        assert flooder.peer_id not in c.connected_peers()  # c hears it only through a

        got: dict[str, Counter[str]] = {"a": Counter(), "c": Counter()}

        async def read(name: str, node: GossipService) -> None:
            async for rec in node:
                got[name][rec.signer] += 1

        nursery.start_soon(read, "a", a)
        nursery.start_soon(read, "c", c)
        t0 = trio.current_time()
        for k in range(400):  # distinct, validly signed approvals, as fast as it can
            await flooder.publish(approval(SIGNERS[1], 7_000_000 + k))
        await poll(lambda: flooder.peer_id in a.banned_peers(), "the flooder's ban")
        elapsed = trio.current_time() - t0
        allowed = budget["signer_burst"] + budget["signer_rate"] * elapsed
        assert a.stats.rejected["flood"] >= policy.threshold
        assert a.junk_counts(flooder.peer_id)["flood"] >= policy.threshold
        assert 0 < got["a"][SIGNERS[1].address] <= allowed
        # what a dropped, it did not forward: c got no more than a let through
        assert got["c"][SIGNERS[1].address] <= got["a"][SIGNERS[1].address]
        # relayed copies are never blamed on the relay
        assert c.junk_total(a.peer_id) == 0 and a.peer_id not in c.banned_peers()
        # the honest validator still gets through
        await c.publish(approval(SIGNERS[2], 1))
        await poll(lambda: got["a"][SIGNERS[2].address] == 1, "c's message at a")
        nursery.cancel_scope.cancel()


async def test_bootnode_is_dialled_with_retry_until_it_comes_up():
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    seed = os.urandom(32)
    boot_id = ID.from_pubkey(create_new_key_pair(seed).public_key).to_base58()
    with socket.socket() as s:  # a free port for the bootnode-to-be
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    boot_addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{boot_id}"

    async with trio.open_nursery() as nursery:
        b = await start(nursery, SIGNERS[1], bootnodes=(boot_addr,), dial_backoff_initial=0.05)
        await poll(lambda: b.stats.dial_failures >= 1, "a failed first dial")
        a = await start(
            nursery, SIGNERS[0], node_key=seed, listen_addrs=(f"/ip4/127.0.0.1/tcp/{port}",)
        )
        assert a.peer_id == boot_id
        with trio.fail_after(LIVENESS):
            await b.wait_for_mesh([a.peer_id])
            await a.wait_for_mesh([b.peer_id])

        # the bootnode drops us: we dial it again
        dials = b.stats.bootnode_connects
        await a.disconnect(b.peer_id)
        await poll(lambda: b.stats.bootnode_connects > dials, "a redial")
        # Messages flow again after the redial (through the mesh or gossipsub's fanout):
        # the mesh itself did not always re-form within 60 s in two full-suite CI runs
        # (open item in RELIABILITY.md), so this asserts delivery, not the mesh.
        # py-libp2p can drop a message silently right after a (re)connection (DESIGN.md):
        # publish distinct messages until one arrives, bounded in count and time
        rec = None
        with trio.fail_after(LIVENESS):
            for i in range(60):
                await b.publish(approval(SIGNERS[1], 7 + i))
                with trio.move_on_after(1.0):
                    rec = await a.incoming.receive()
                if rec is not None:
                    break
        assert rec is not None and rec.signer == SIGNERS[1].address
        nursery.cancel_scope.cancel()


async def test_stop_closes_the_stream_and_refuses_publish():
    with trio.fail_after(LIVENESS):
        async with open_gossip(
            config(), SIGNERS[0], current_era=lambda: ERA, validators=lambda e: VALIDATORS
        ) as svc:
            assert svc.peer_id and svc.listen_addrs
        got = [rec async for rec in svc]  # channel closed on stop: iteration ends
        assert got == []
        with pytest.raises(RuntimeError):
            await svc.publish(approval(SIGNERS[0], 1))


async def test_a_message_of_exactly_the_size_limit_gets_through():
    # pubsub's outbound queue splits/drops RPCs over 1 MiB and its reader refuses frames
    # over 1 MiB: both are raised above the envelope limit (default 1 MiB).
    async with trio.open_nursery() as nursery:
        a = await start(nursery, SIGNERS[0])
        b = await start(nursery, SIGNERS[1], bootnodes=(a.listen_addrs[0],))
        with trio.fail_after(LIVENESS):
            await b.wait_for_mesh([a.peer_id])
        limit = b.config.max_message_size
        filler = limit - SignedEnvelope.OVERHEAD - (32 + 8 + 32 + 32 + 4)
        msg = RequestBatchValidation(
            b"\x03" * 32, ERA, b"\x04" * 32, b"\x05" * 32, os.urandom(filler)
        )
        env = await b.publish(msg)
        assert len(env.encode()) == limit
        with pytest.raises(Exception, match="limit"):
            await b.publish(
                RequestBatchValidation(b"\x03" * 32, ERA, b"\x04" * 32, b"\x05" * 32, b"x" * limit)
            )
        with trio.fail_after(LIVENESS):
            rec = await a.incoming.receive()
        assert rec.message == msg
        nursery.cancel_scope.cancel()


async def test_a_taken_port_fails_start_with_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = config(listen_addrs=(f"/ip4/127.0.0.1/tcp/{port}",))
        with trio.fail_after(LIVENESS), pytest.raises(GossipStartError, match="already in use"):
            async with open_gossip(
                cfg, SIGNERS[0], current_era=lambda: ERA, validators=lambda e: VALIDATORS
            ):
                pass

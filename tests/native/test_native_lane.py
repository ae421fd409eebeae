"""`NativeLane`'s gossip traffic (validator/native.py), with a stand-in service and a real
store: a re-forwarded transaction and a re-sent sequencer block must be new bytes (gossip
drops content it has seen, for two minutes), and overlapping requests for missing blocks
re-send each block once rather than once per request."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from eth_utils import keccak
from gexe.node.config import NativeConfig
from gexe.node.gossip_injected import (
    MAX_FORWARD_BYTES,
    InjectedTx,
    PromiseRequest,
    Promises,
    SequencerBlockMsg,
    SequencerBlockRequest,
)
from gexe.node.gossip_messages import encode_message
from gexe.validator import native
from gexe.validator.native import Entry, NativeLane
from nativekit import DOMAIN, SEQUENCER, USERS, Chain, headers, tx


class _Service:
    def __init__(self, compute: Any, signer: Any = None, **native: Any) -> None:
        self.cfg = SimpleNamespace(native=NativeConfig(sequencer=SEQUENCER.address, **native))
        self.compute = compute
        self.signer = signer
        self.era = 1
        self.out: list[Any] = []
        self.at: list[float] = []

    async def _gossip_out(self, msg: Any) -> None:
        self.out.append(msg)
        self.at.append(time.monotonic())


@pytest.fixture
def chain(tmp_path: Path):
    c = Chain(tmp_path / "a", headers(10))
    c.setup_ping(1)
    yield c
    c.close()


def lane_for(chain: Chain, signer: Any = None, **native: Any) -> tuple[NativeLane, _Service]:
    svc = _Service(chain.compute, signer, **native)
    lane = NativeLane(svc)
    lane.start(DOMAIN.chain_id, "0x" + DOMAIN.router.hex())
    return lane, svc


async def test_a_reforward_is_new_bytes(chain: Chain) -> None:
    lane, svc = lane_for(chain)
    stx = tx(0, 0, b"PING", chain.head)
    h = DOMAIN.tx_hash(stx.tx)
    lane.pool[h] = Entry(stx, bytes.fromhex(USERS[0].address[2:]), chain.head.number)
    for _ in range(3):
        await lane.forward([h])
    assert [type(m) for m in svc.out] == [InjectedTx] * 3
    assert svc.out[0].resend == 0  # the first forward is the plain message
    assert all(m.txs == (stx,) for m in svc.out)
    assert len({encode_message(m) for m in svc.out}) == 3
    # nothing is forwarded once the transaction left the pending state
    lane.pool[h].status = "executed"
    await lane.forward([h])
    assert len(svc.out) == 3


async def test_a_burst_is_forwarded_in_few_messages(chain: Chain) -> None:
    """What the RPC accepted since the last forward goes out together, split only at the
    message limits (count and payload bytes)."""
    lane, svc = lane_for(chain)
    big = [tx(i % 4, 0, os.urandom(60_000), chain.head) for i in range(12)]
    small = [tx(i % 4, 0, b"PING", chain.head) for i in range(30)]
    for stx in small + big:
        h = DOMAIN.tx_hash(stx.tx)
        lane.pool[h] = Entry(stx, bytes(20), chain.head.number)
        lane.forward_soon(h)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lane.forward_loop)
        with trio.fail_after(10):
            while sum(len(m.txs) for m in svc.out) < 42:
                await trio.sleep(0.001)
        nursery.cancel_scope.cancel()
    assert all(isinstance(m, InjectedTx) and m.resend == 0 for m in svc.out)
    assert [t for m in svc.out for t in m.txs] == small + big  # in acceptance order
    assert len(svc.out) == 2  # 512 KiB of payload each at most: 30 small + 8 big, 4 big
    for m in svc.out:
        assert sum(len(t.tx.payload) + 200 for t in m.txs) <= MAX_FORWARD_BYTES
        assert len(encode_message(m)) < 1 << 20


async def test_repeated_gap_asks_are_new_bytes(chain: Chain) -> None:
    """A node stuck on a gap asks again and again; an identical ask would never leave it."""
    lane, svc = lane_for(chain)
    chain.seq([])
    for _ in range(3):
        lane._gap_asked = -1e9  # past the ask interval
        await lane._ask_gap()
    assert [type(m) for m in svc.out] == [SequencerBlockRequest] * 3
    assert {(m.from_height, m.to_height) for m in svc.out} == {(2, 65)}
    assert len({encode_message(m) for m in svc.out}) == 3


async def test_overlapping_block_requests_resend_each_block_once(chain: Chain) -> None:
    lane, svc = lane_for(chain)
    sent = [chain.seq([tx(0, 0, b"PING", chain.head)]) for _ in range(5)]
    assert chain.compute.seq.height == 5
    await lane.on_request(SequencerBlockRequest(1, 1, 3))
    assert [m.header.height for m in svc.out] == [1, 2, 3]
    # a peer that ran block 1 meanwhile asks from 2: only block 4 is new
    await lane.on_request(SequencerBlockRequest(1, 2, 64))
    assert [m.header.height for m in svc.out] == [1, 2, 3, 4, 5]
    await lane.on_request(SequencerBlockRequest(1, 1, 64))
    assert len(svc.out) == 5
    # beyond our tip: nothing
    await lane.on_request(SequencerBlockRequest(1, 6, 9))
    assert len(svc.out) == 5
    for m, out in zip(svc.out, sent, strict=True):
        assert isinstance(m, SequencerBlockMsg)
        assert DOMAIN.block_hash(m.header) == out.record.hash
        assert m.resend != 0 and m.era == 1
        assert DOMAIN.block_signer(m.header, m.signature) == bytes.fromhex(SEQUENCER.address[2:])


async def test_reforwards_back_off(chain: Chain) -> None:
    """Re-forwards wait twice as long each time: a busy sequencer holds the transaction
    already, a restarted one still gets it."""
    interval = 0.02
    lane, svc = lane_for(chain, reforward_interval=interval)
    stx = tx(0, 0, b"PING", chain.head)
    h = DOMAIN.tx_hash(stx.tx)
    lane.pool[h] = Entry(stx, bytes.fromhex(USERS[0].address[2:]), chain.head.number)
    await lane.forward([h])  # as the RPC does on accepting it
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lane.reforward_loop)
        with trio.fail_after(30):
            while len(svc.out) < 5:
                await trio.sleep(0.005)
        nursery.cancel_scope.cancel()
    gaps = [b - a for a, b in zip(svc.at, svc.at[1:], strict=False)]
    for k, gap in enumerate(gaps[:4]):  # the loop never sends earlier than this
        assert gap >= interval * 2**k * 0.99, (k, gaps)
    assert len({m.resend for m in svc.out}) == len(svc.out)


async def test_an_unordered_transaction_expires(chain: Chain) -> None:
    lane, svc = lane_for(chain, reforward_interval=0.01)
    stx = tx(0, 0, b"PING", chain.head)
    h = DOMAIN.tx_hash(stx.tx)
    lane.pool[h] = Entry(stx, bytes.fromhex(USERS[0].address[2:]), chain.head.number - 33)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lane.reforward_loop)
        with trio.fail_after(30):
            while lane.pool[h].status == "pending":
                await trio.sleep(0.005)
        nursery.cancel_scope.cancel()
    r = lane.receipt(h)
    assert r is not None
    assert (r["status"], r["reason"]) == ("expired", "not ordered before it expired")
    assert svc.out == []


async def test_a_validator_promises_again_from_its_stored_results(chain: Chain) -> None:
    """A peer whose quorum is late asks; we sign the reply our chain computed, once per
    resend interval however often we are asked, and nothing for what we did not run."""
    lane, svc = lane_for(chain, signer=SEQUENCER)
    stx = tx(0, 0, b"PING", chain.head)
    h = DOMAIN.tx_hash(stx.tx)
    chain.seq([stx])
    unknown = bytes(32)
    await lane.on_promise_request(PromiseRequest(1, (unknown, h), resend=1))
    assert [type(m) for m in svc.out] == [Promises]
    ((p, sig),) = svc.out[0].promises
    assert p.tx_hash == h and p.reply_hash == keccak(b"PONG") and p.reply_code[0] == 0
    assert svc.out[0].validator == bytes.fromhex(SEQUENCER.address[2:])
    assert DOMAIN.promise_signer(p, sig) == svc.out[0].validator
    await lane.on_promise_request(PromiseRequest(1, (h,), resend=2))
    assert len(svc.out) == 1  # asked again within RESEND_WAIT: not again


async def test_a_late_quorum_is_asked_for_again_with_back_off(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait = 0.02
    monkeypatch.setattr(native, "PROMISE_WAIT", wait)
    lane, svc = lane_for(chain, reforward_interval=0.005)
    done = tx(0, 0, b"PING", chain.head)
    late = tx(1, 0, b"PING", chain.head)
    for stx, status in ((done, "preconfirmed"), (late, "executed")):
        e = Entry(stx, bytes(20), chain.head.number, status=status)
        e.reply, e.executed_at = (b"PONG", bytes(4)), time.monotonic()
        lane.pool[DOMAIN.tx_hash(stx.tx)] = e
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lane.reforward_loop)
        with trio.fail_after(30):
            while len(svc.out) < 4:
                await trio.sleep(0.002)
        nursery.cancel_scope.cancel()
    assert all(isinstance(m, PromiseRequest) for m in svc.out)
    assert {m.tx_hashes for m in svc.out} == {(DOMAIN.tx_hash(late.tx),)}
    assert len({m.resend for m in svc.out}) == len(svc.out)
    gaps = [b - a for a, b in zip(svc.at, svc.at[1:], strict=False)]
    for k, gap in enumerate(gaps[:3]):
        assert gap >= wait * 2 ** (k + 1) * 0.99, (k, gaps)


async def test_a_reorg_sends_undone_executions_back_to_the_sequencer(chain: Chain) -> None:
    """A pre-confirmation holds on the chain it was made on: when an Ethereum reorg takes
    the anchor of the sequencer block that ran a transaction, its receipt goes back to
    pending (counted in `reorged`) and the transaction is forwarded again; one whose
    block stayed is left alone."""
    lane, svc = lane_for(chain)
    kept_tx = tx(0, 0, b"PING", chain.head)
    chain.seq([kept_tx])
    ancestor = chain.head
    chain.block()  # the block the reorg will take away
    undone_tx = tx(1, 0, b"PING", chain.head)
    chain.seq([undone_tx])
    for stx, status in ((kept_tx, "preconfirmed"), (undone_tx, "preconfirmed")):
        e = Entry(stx, bytes(20), ancestor.number, status=status)
        e.reply, e.promises = (b"PONG", bytes(4)), {b"d": {b"v": b"s"}}
        e.forwards = 1  # forwarded when it was accepted
        lane.pool[DOMAIN.tx_hash(stx.tx)] = e
    kept, undone = (DOMAIN.tx_hash(t.tx) for t in (kept_tx, undone_tx))
    assert lane.carried(kept) and lane.carried(undone)
    chain.compute.revert_to(ancestor)
    lane.on_revert()
    assert lane.pool[kept].status == "preconfirmed" and lane.pool[kept].reorged == 0
    e = lane.pool[undone]
    assert (e.status, e.reply, e.promises, e.reorged) == ("pending", None, {}, 1)
    assert lane.receipt(undone)["reorged"] == 1
    assert lane.open == 1
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lane.forward_loop)
        with trio.fail_after(10):
            while not svc.out:
                await trio.sleep(0.001)
        nursery.cancel_scope.cancel()
    assert [m.txs for m in svc.out] == [(undone_tx,)]
    assert svc.out[0].resend != 0  # new bytes: gossip saw the first forward

"""`Compute.apply_seq` (validator/compute.py): sequencer blocks run between Ethereum blocks
over a real LMDB store and the real runtime, without a network.

Two fresh stores fed the same Ethereum blocks and the same sequencer blocks must produce
byte-identical results and state roots; a transaction is executed at most once along a
chain of sequencer blocks; a sequencer block that does not extend the tip at the head is
refused with `SeqError` and changes nothing; a restarted node resumes where it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gexe.contracts.injected import Domain
from gexe.node.store import Store
from gexe.runtime import QueueMessage
from gexe.validator.compute import Compute, SeqError
from nativekit import (
    CREATOR,
    DOMAIN,
    MAX_PAYLOAD,
    USERS,
    Chain,
    headers,
    pid,
    seq_block,
    tx,
)

HDRS = headers(60)


@pytest.fixture
def chain(tmp_path: Path):
    c = Chain(tmp_path / "a", HDRS)
    c.setup_ping(2)
    yield c
    c.close()


def result_bytes(c: Chain, rec) -> bytes:  # noqa: ANN001
    data = c.store.read(rec.result)
    assert data is not None
    return data


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def test_same_inputs_give_byte_identical_results(tmp_path: Path) -> None:
    a, b = Chain(tmp_path / "a", HDRS), Chain(tmp_path / "b", HDRS)
    try:
        for c in (a, b):
            c.setup_ping(2)
        assert a.compute.head == b.compute.head
        ref = a.head
        blocks = [
            [
                tx(0, 0, b"PING", ref),
                tx(1, 1, b"PING", ref),
                tx(0, 1, b"echo me", ref),
                tx(1, 0, b"PING", ref, value=1),  # refused: value
                tx(2, 0, b"PING", ref, domain=Domain(1, "0x" + "ab" * 20)),  # another sender
            ],
            [],  # a seal
            [tx(3, 1, b"PING", ref), tx(2, 0, b"x" * 100, ref)],
        ]
        outs = {"a": [], "b": []}
        for txs in blocks:
            msg, seq_hash, hashes = seq_block(a.compute, txs)
            for name, c in (("a", a), ("b", b)):
                outs[name].append(c.compute.apply_seq(msg, seq_hash, hashes, DOMAIN, MAX_PAYLOAD))
        for oa, ob in zip(outs["a"], outs["b"], strict=True):
            assert oa.record == ob.record  # hash, height, anchor, state root, result, blob
            assert result_bytes(a, oa.record) == result_bytes(b, ob.record)
            assert oa.verdicts == ob.verdicts
        first = outs["a"][0]
        assert [v.reason for v in first.verdicts] == ["", "", "", "value must be 0", ""]
        assert first.verdicts[4].sender != bytes.fromhex(USERS[2].address[2:])
        res = json.loads(result_bytes(a, first.record))
        assert [t["status"] for t in res["txs"]] == ["executed"] * 3 + ["refused", "executed"]
        replies = {
            m["reply_to"]: bytes.fromhex(m["payload"][2:])
            for t in res["transitions"]
            for m in t["messages"]
            if m["reply_to"]
        }
        ok = [v.tx_hash for v in first.verdicts if v.ok]
        assert set(replies) == {hx(h) for h in ok}  # one reply per executed transaction
        assert replies[hx(ok[0])] == b"PONG" and replies[hx(ok[2])] == b"echo me"
        assert first.dispatches == 4
        # a seal changes nothing but the tip
        seal = outs["a"][1]
        assert seal.record.state_root == first.record.state_root and seal.verdicts == ()
        assert outs["a"][2].record.state_root != seal.record.state_root
        assert [o.record.height for o in outs["a"]] == [1, 2, 3]
        # the next Ethereum block builds on the sequencer blocks' state, the same way
        for c in (a, b):
            c.block(QueueMessage(pid(0), (1).to_bytes(32, "big"), CREATOR, b"PING"))
        assert a.compute.head == b.compute.head
        assert a.store.read(a.compute.head.result) == b.store.read(b.compute.head.result)
        assert a.compute.state.programs == b.compute.state.programs
    finally:
        a.close()
        b.close()


def test_a_replayed_transaction_is_refused_already_included(chain: Chain) -> None:
    ref = chain.head
    t = tx(0, 0, b"PING", ref)
    first = chain.seq([t])
    assert first.verdicts[0].ok and first.dispatches == 1
    root = first.record.state_root
    # the same signed bytes in a later block, and twice in one block
    again = chain.seq([t])
    assert [v.reason for v in again.verdicts] == ["already included"]
    assert again.dispatches == 0 and again.record.state_root == root
    res = json.loads(result_bytes(chain, again.record))
    assert res["txs"][0]["status"] == "refused" and res["txs"][0]["reason"] == "already included"
    assert res["transitions"] == [] and res["dispatches"] == []
    u = tx(1, 1, b"PING", ref)
    twice = chain.seq([u, u])
    assert [v.reason for v in twice.verdicts] == ["", "already included"]
    assert twice.dispatches == 1
    # still refused after another Ethereum block
    chain.block()
    later = chain.seq([t, u])
    assert [v.reason for v in later.verdicts] == ["already included"] * 2
    assert later.record.state_root == twice.record.state_root
    assert chain.store.included_in(first.verdicts[0].tx_hash) == first.record.hash


def test_a_restarted_node_resumes_its_sequencer_chain(tmp_path: Path) -> None:
    c = Chain(tmp_path / "a", HDRS)
    c.setup_ping(1)
    t = tx(0, 0, b"PING", c.head)
    out = c.seq([t])
    c.compute.close()
    c.compute = Compute(c.store)  # a restart over the same store
    assert c.compute.seq == out.record
    assert c.compute.state.programs  # the state after the sequencer block
    assert c.compute._root() == out.record.state_root
    again = c.seq([t])
    assert [v.reason for v in again.verdicts] == ["already included"]
    c.close()
    # and from disk alone, a third time
    store = Store(tmp_path / "a" / "store")
    compute = Compute(store)
    try:
        assert compute.seq is not None and compute.seq.height == 2
    finally:
        compute.close()
        store.close()


def test_an_expired_or_unknown_reference_block_is_refused(chain: Chain) -> None:
    old = chain.head
    while chain.head.number - old.number <= 32:
        chain.block()
    assert chain.head.number - old.number == 33
    out = chain.seq([tx(0, 0, b"PING", old), tx(0, 0, b"PING", HDRS[-1])])
    assert [v.reason for v in out.verdicts] == ["expired", "unknown reference block"]
    edge = HDRS[chain.next - 33]  # exactly 32 blocks old: still valid
    out = chain.seq([tx(0, 0, b"PING", edge)])
    assert out.verdicts[0].ok


def test_a_block_that_does_not_extend_the_tip_is_refused(chain: Chain) -> None:
    t = tx(0, 0, b"PING", chain.head)
    first = chain.seq([])
    tip, state = chain.compute.seq, chain.compute.state
    cases = {
        "height": seq_block(chain.compute, [t], height=first.record.height + 2),
        "same height": seq_block(chain.compute, [t], height=first.record.height),
        "parent": seq_block(chain.compute, [t], parent=b"\x09" * 32),
    }
    prev = chain.head
    chain.block()
    cases["old anchor"] = seq_block(chain.compute, [t], anchor=prev)
    for name, (msg, seq_hash, hashes) in cases.items():
        with pytest.raises(SeqError):
            chain.compute.apply_seq(msg, seq_hash, hashes, DOMAIN, MAX_PAYLOAD)
        assert chain.compute.seq == tip, name
        assert chain.store.included_in(hashes[0]) is None, name
    assert chain.compute.state.programs == state.programs
    # the right block still runs afterwards
    out = chain.seq([t])
    assert out.verdicts[0].ok and out.record.height == tip.height + 1


def test_the_first_block_must_have_no_parent(tmp_path: Path) -> None:
    c = Chain(tmp_path / "a", HDRS)
    try:
        c.setup_ping(1)
        msg, seq_hash, hashes = seq_block(c.compute, [], parent=b"\x01" * 32)
        with pytest.raises(SeqError):
            c.compute.apply_seq(msg, seq_hash, hashes, DOMAIN, MAX_PAYLOAD)
        msg, seq_hash, hashes = seq_block(c.compute, [], height=0)
        with pytest.raises(SeqError):
            c.compute.apply_seq(msg, seq_hash, hashes, DOMAIN, MAX_PAYLOAD)
        assert c.compute.seq is None
        assert c.seq([]).record.height == 1
    finally:
        c.close()

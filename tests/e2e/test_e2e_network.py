"""End to end on a dev network (issue #6): real anvil with 1-second blocks, the deployed
contracts, 4 validator processes gossiping over libp2p on 127.0.0.1, validator 0 also the
sequencer committing batches. Everything a test checks is read back from the chain (events,
contract state) or from the validators' RPC; nothing is signed or committed by the test.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from eth_utils import to_checksum_address
from gexe.contracts import ContractRevert, code_id
from gexe.runtime import codes

from gexe import programs
from gexe.devnet import CODE_UNKNOWN, CODE_VALIDATED, REPLY_ON_PING, DevNet, Examples

TIMEOUT = 60.0


def tails(net: DevNet) -> str:
    return "\n".join(f"--- {p.log}\n{p.tail(12)}" for p in net.procs)


def test_network_is_up(net: DevNet) -> None:
    """4 live validator processes, each with a gossip peer, following the chain."""
    head = net.w3.eth.block_number
    for p in net.procs:
        assert p.alive(), p.tail()
        st = p.status()
        assert st["peers"] >= 1 and st["validator"] == p.address
    net._wait(lambda: all((p.status()["head"] or 0) >= head for p in net.procs), 30, "heads")
    signers = {a for a, _ in net.router.validators()}
    assert signers == {p.address for p in net.procs}
    info = (net.dir / "network.json").read_text()
    assert net.deployment.router in info and all(p.rpc_url in info for p in net.procs)


def test_example_programs_are_validated_on_chain(net: DevNet, examples: Examples) -> None:
    for name, verdict in examples.codes.items():
        assert verdict.valid
        assert net.code_state(verdict.code_id) == CODE_VALIDATED, name
        assert verdict.code_id == code_id(programs.path(name).read_bytes())
        commit = net.commit_of(verdict.tx_hash)
        assert commit.codes >= 1 and commit.gas_used > 0
        assert len(commit.batch_hash) == 32 and commit.batch_hash != bytes(32)
        # the committing transaction came from the sequencer's validator key
        assert commit.sender == net.procs[0].address


def test_solidity_dapp_gets_pong_through_its_callback(net: DevNet, examples: Examples) -> None:
    client = examples.ping_client
    # ping answers a payload that starts with replyOn_ping's selector with its calldata
    receipt = client.send(net.user(0), "ping", REPLY_ON_PING + b"PING")
    sent = net.sent_from_receipt(receipt, examples["ping"])
    assert client.call("pending", sent.message_id) is True
    answers = net.wait_answers([sent.message_id], TIMEOUT, settle_blocks=2)[sent.message_id]
    assert [(a.kind, a.payload) for a in answers] == [("callback", b"PONG")], tails(net)
    (pong,) = answers
    assert pong.program == client.address and pong.block > sent.block
    assert bytes(client.call("answers", sent.message_id)) == b"PONG"
    assert client.call("pending", sent.message_id) is False
    # the callback came with the commit of a batch (a successful callback emits no Reply)
    commit = net.commit_of(pong.tx_hash)
    assert commit.messages >= 1 and commit.batch_block >= sent.block


def test_solidity_dapp_gets_an_error_reply_through_on_error_reply(
    net: DevNet, examples: Examples
) -> None:
    client = net.deploy_contract("PingClient", examples["panicker"])
    receipt = client.send(net.user(5), "ping", REPLY_ON_PING + b"PING")
    sent = net.sent_from_receipt(receipt, examples["panicker"])
    (failed,) = net.wait_answers([sent.message_id], TIMEOUT, settle_blocks=2)[sent.message_id]
    assert failed.kind == "callback" and failed.program == client.address
    assert failed.code == codes.ERR_USERSPACE_PANIC and b"boom" in failed.payload
    assert bytes(client.call("errorCodes", sent.message_id)) == codes.ERR_USERSPACE_PANIC
    assert client.call("pending", sent.message_id) is False


def test_program_to_program_request_answered_on_chain(net: DevNet, examples: Examples) -> None:
    proxy, ping = examples["proxy"], examples["ping"]
    a = net.send(proxy, b"PING", net.user(1))
    b = net.send(proxy, b"relay me", net.user(2))
    got = net.wait_answers([a.message_id, b.message_id], TIMEOUT, settle_blocks=2)
    assert [(x.kind, x.ok, x.payload) for x in got[a.message_id]] == [("reply", True, b"PONG")]
    assert [(x.payload, x.program) for x in got[b.message_id]] == [(b"relay me", proxy)]
    # the validators ran ping for proxy's inner request (a message no Ethereum account sent)
    ran = [
        d
        for n in range(a.block, got[a.message_id][0].block + 1)
        for d in net.procs[1].call("block_result", n)["dispatches"]
        if to_checksum_address(d["program_id"][-40:]) == ping
    ]
    assert ran and all(d["status"] == "success" for d in ran)


def test_panic_yields_an_error_reply_on_chain(net: DevNet, examples: Examples) -> None:
    sent = net.send(examples["panicker"], b"boom", net.user(3))
    (reply,) = net.wait_answers([sent.message_id], TIMEOUT, settle_blocks=2)[sent.message_id]
    assert reply.kind == "reply" and not reply.ok
    assert reply.code == codes.ERR_USERSPACE_PANIC
    assert b"boom" in reply.payload
    # the program is still there and answers again
    again = net.send(examples["panicker"], b"boom", net.user(3))
    assert net.wait_answer(again.message_id, TIMEOUT).code == codes.ERR_USERSPACE_PANIC


def test_invalid_code_is_marked_invalid_and_cannot_be_used(net: DevNet) -> None:
    junk = b"\0asm\x01\0\0\0" + os.urandom(64)  # a WASM header, then garbage
    cid, block = net.upload_code(junk, net.user(4))
    assert cid == code_id(junk)
    verdict = net.wait_code(cid, TIMEOUT)
    assert verdict.valid is False and verdict.block >= block
    assert net.code_state(cid) == CODE_UNKNOWN
    # every validator recorded the same verdict, with a reason
    seen = [
        c
        for p in net.procs
        for c in (p.call("block_result", block) or {}).get("codes", [])
        if c["code_id"] == "0x" + cid.hex()
    ]
    assert len(seen) == len(net.procs) and all(c["valid"] is False and c["reason"] for c in seen)
    with pytest.raises(ContractRevert) as e:
        net.router.create_program(net.user(4), cid, os.urandom(32))
    assert e.value.name == "CodeNotValidated"
    with pytest.raises(ContractRevert):
        net.router.create_program_with_init(net.user(4), cid, os.urandom(32), b"")


def test_100_requests_to_20_programs_answered_exactly_once(net: DevNet, examples: Examples) -> None:
    pings = net.create_programs([(examples.codes["ping"].code_id, b"")] * 10)
    counters = net.create_programs([(examples.codes["counter"].code_id, b"")] * 10)
    net.wait_answers([p.init_id for p in pings + counters], TIMEOUT)
    targets = [p.address for p in pings + counters]
    users = net.users[:5]
    sent = []
    for rnd in range(4):  # four rounds, each mined in its own block(s)
        batch = []
        for i in range(25):
            k = rnd * 25 + i
            prog = targets[k % 20]
            is_ping = k % 20 < 10
            payload = f"req-{k}".encode() if is_ping else b"inc"
            batch.append((prog, payload, users[k % len(users)]))
        sent += net.send_many(batch)
    assert len({s.message_id for s in sent}) == 100
    assert len({s.block for s in sent}) >= 2
    got = net.wait_answers([s.message_id for s in sent], 90, settle_blocks=3)
    counts = Counter(len(v) for v in got.values())
    assert counts == Counter({1: 100}), f"answers per request: {dict(counts)}\n{tails(net)}"
    per_counter: dict[str, list[int]] = {}
    for k, s in enumerate(sent):
        (a,) = got[s.message_id]
        assert a.kind == "reply" and a.ok and a.program == s.program
        if k % 20 < 10:
            assert a.payload == f"req-{k}".encode()
        else:
            per_counter.setdefault(s.program, []).append(a.payload_u64 or 0)
    # each counter got 5 `inc`s: its replies are the counts 1..5, each once
    assert len(per_counter) == 10
    assert all(sorted(v) == [1, 2, 3, 4, 5] for v in per_counter.values())


def test_validators_agree(net: DevNet, examples: Examples) -> None:
    """Every validator computed the same state for the same blocks."""
    head = min(p.status()["head"] for p in net.procs)
    for n in range(net.first_block, head + 1, 7):
        roots = {p.call("block_result", n)["state_root"] for p in net.procs}
        assert len(roots) == 1, f"block {n}: {roots}"

"""The commit loop over real gossip: validators sign what a sequencer asks only when it is
their own batch, and the sequencer (a role of validator 0) commits it to the Router.

anvil with 1-second blocks, 3 validator processes on 127.0.0.1, nothing committed by hand:
the code verdict, the program's creation and the reply all go through batches the
validators built and signed themselves. Loops are bounded in count and time.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gexe.contracts import Anvil, Mirror, code_id, start_anvil, topics_of
from netkit import EXEC_BALANCE, Net, ValidatorProc, make_validator

from gexe import programs

SEQUENCER = """
[sequencer]
enabled = true
max_batch_latency = 0
"""
VALIDATED = 2


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    node = start_anvil(accounts=6, block_time=1)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def started() -> Iterator[list[ValidatorProc]]:
    procs: list[ValidatorProc] = []
    try:
        yield procs
    finally:
        for v in procs:
            v.stop(signal.SIGTERM, timeout=10)


def until(what: str, fn, timeout: float = 60.0, vals: list[ValidatorProc] = ()):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        for v in vals:
            if v.proc is not None and v.proc.poll() is not None:
                raise AssertionError(f"validator {v.index} died:\n{v.tail()}")
        time.sleep(0.2)
    tails = "\n".join(f"--- v{v.index}\n{v.tail(40)}" for v in vals)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def test_requests_are_answered_through_signed_batches(
    tmp_path: Path, anvil: Anvil, started: list[ValidatorProc]
) -> None:
    net = Net.deploy(anvil.url, anvil.private_keys, 3)
    for i in range(3):
        boot = started[0].p2p if started else []
        v = make_validator(
            tmp_path, i, net, net.validators[i], bootnodes=boot, extra=SEQUENCER if i == 0 else ""
        )
        v.start()
        started.append(v)
    until("peers", lambda: all(v.call("node_status")["peers"] >= 1 for v in started), vals=started)

    # code: the verdict reaches the chain only through a batch of 3 validators' signatures
    code = programs.path("ping").read_bytes()
    cid = code_id(code)
    net.router.request_code_validation(net.owner, cid, code)
    until("code verdict", lambda: net.router.code_state(cid) == VALIDATED, vals=started)

    actor, _ = net.router.create_program_with_init(
        net.owner, cid, os.urandom(32), b"", initial_executable_balance=EXEC_BALANCE
    )
    mirror = Mirror(net.w3, actor)
    _, mid = mirror.send_message(net.users[0], b"PING")

    reply_topic = topics_of("Mirror")["Reply"]

    def reply() -> list:
        logs = net.w3.eth.get_logs(
            {
                "address": actor,
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": ["0x" + reply_topic.hex()],
            }
        )
        return [lg for lg in logs if mid.hex() in lg["data"].hex()]

    (log,) = until("reply", reply, vals=started)
    assert b"PONG" in bytes(log["data"])
    # every validator signed, nobody refused, and the state hash on chain is theirs
    statuses = [v.call("node_status") for v in started]
    assert all(s["batches_signed"] >= 2 for s in statuses)
    assert all(s["batches_refused"] == 0 for s in statuses)
    on_chain = "0x" + mirror.state_hash().hex()
    assert all(v.call("program_state", actor)["state_hash"] == on_chain for v in started)
    pid = "0x" + "00" * 12 + actor[2:].lower()
    assert all(pid in v.call("program_ids") for v in started)
    assert statuses[0]["roles"] and not statuses[1]["roles"]  # only v0 runs the sequencer


def test_equivocating_validator_is_slashed_on_chain(
    tmp_path: Path, anvil: Anvil, started: list[ValidatorProc]
) -> None:
    """Validator 3 is a test build that signs a second, different batch for every pair it
    approves; honest validators see both approvals in gossip and prove it to the Slasher."""
    from gexe.contracts import Staking

    net = Net.deploy(anvil.url, anvil.private_keys, 4)
    for i in range(4):
        boot = started[0].p2p if started else []
        v = make_validator(
            tmp_path, i, net, net.validators[i], bootnodes=boot, extra=SEQUENCER if i == 0 else ""
        )
        if i == 3:
            v.env["GEXE_TEST_EQUIVOCATE"] = "1"
        v.start()
        started.append(v)
    until("peers", lambda: all(v.call("node_status")["peers"] >= 1 for v in started), vals=started)
    staking = Staking(net.w3, net.deployment.staking)
    cheat = net.validators[3].address
    before = staking.operator(cheat).stake
    assert before > 0 and not staking.operator(cheat).excluded

    code = programs.path("ping").read_bytes()
    net.router.request_code_validation(net.owner, code_id(code), code)
    until("slash", lambda: staking.operator(cheat).excluded, vals=started)
    after = staking.operator(cheat)
    assert 0 < after.stake + after.unbonding < before  # a fraction was taken, not all
    # the network still commits (3 honest validators hold > 2/3 of the stake)
    until("code verdict", lambda: net.router.code_state(code_id(code)) == VALIDATED, vals=started)
    seen = [v.call("node_status")["equivocations"] for v in started[:3]]
    assert any(e and e[0]["validator"] == cheat.lower() for e in seen)
    # honest validators' stakes are untouched
    assert all(
        staking.operator(a.address).stake == before and not staking.operator(a.address).excluded
        for a in net.validators[:3]
    )
    # and the cheater is out of the next election
    net.rpc("evm_increaseTime", 3700)
    net.rpc("evm_mine")
    net.router.start_next_era(net.owner)
    era2 = {a for a, _ in net.router.era_validators(2)}
    assert cheat not in era2 and {a.address for a in net.validators[:3]} <= era2


def test_era_change_with_a_validator_joining_and_one_leaving(
    tmp_path: Path, anvil: Anvil, started: list[ValidatorProc]
) -> None:
    """Era 1: validators 0–3. Validator 4 stakes and registers, validator 3 unbonds all its
    stake; era 2 starts while requests keep flowing. Every request is answered; in era 2
    the newcomer signs and the leaver refuses."""
    from eth_account import Account
    from gexe.contracts import Staking, WrappedVara
    from gexe.contracts.deploy import fund_eth

    net = Net.deploy(anvil.url, anvil.private_keys, 4)
    newcomer = Account.create()
    fund_eth(net.w3, net.owner, newcomer.address, 10**18)
    keys = [*net.validators, newcomer]
    for i in range(5):
        boot = started[0].p2p if started else []
        v = make_validator(
            tmp_path, i, net, keys[i], bootnodes=boot, extra=SEQUENCER if i == 0 else ""
        )
        v.start()
        started.append(v)
    until("peers", lambda: all(v.call("node_status")["peers"] >= 1 for v in started), vals=started)

    code = programs.path("ping").read_bytes()
    cid = code_id(code)
    net.router.request_code_validation(net.owner, cid, code)
    until("code verdict", lambda: net.router.code_state(cid) == VALIDATED, vals=started)
    actor, _ = net.router.create_program_with_init(
        net.owner, cid, os.urandom(32), b"", initial_executable_balance=EXEC_BALANCE
    )
    mirror = Mirror(net.w3, actor)
    reply_topic = "0x" + topics_of("Mirror")["Reply"].hex()
    sent: list[bytes] = []

    def send(n: int) -> None:
        for k in range(n):
            _, mid = mirror.send_message(net.users[k % len(net.users)], b"PING")
            sent.append(mid)

    def answered() -> dict[bytes, int]:
        logs = net.w3.eth.get_logs(
            {"address": actor, "fromBlock": 0, "toBlock": "latest", "topics": [reply_topic]}
        )
        out: dict[bytes, int] = {}
        for lg in logs:
            for mid in sent:
                if mid.hex() in bytes(lg["data"]).hex():
                    out[mid] = out.get(mid, 0) + 1
        return out

    send(3)
    staking = Staking(net.w3, net.deployment.staking)
    wv = WrappedVara(net.w3, net.deployment.wrapped_vara)
    wv.mint(net.owner, newcomer.address, 100)
    wv.approve(newcomer, net.deployment.staking, 100)
    staking.deposit(newcomer, 100)
    staking.register_validator(newcomer, newcomer.address)
    leaver = net.validators[3]
    staking.unbond(leaver, staking.operator(leaver.address).stake)
    send(3)
    net.rpc("evm_increaseTime", 3700)
    net.rpc("evm_mine")
    net.router.start_next_era(net.owner)
    assert net.router.era_index() == 2
    era2 = {a for a, _ in net.router.era_validators(2)}
    assert newcomer.address in era2 and leaver.address not in era2 and len(era2) == 4
    send(4)
    until("all answered", lambda: len(answered()) == len(sent), timeout=90, vals=started)
    assert all(n == 1 for n in answered().values())  # exactly once
    # era 2 batches were signed by the newcomer; the leaver refused to sign them
    until(
        "newcomer signs",
        lambda: started[4].call("node_status")["batches_signed"] > 0,
        vals=started,
    )
    assert started[3].call("node_status")["batches_refused"] > 0
    roots = {v.call("program_state", actor)["state_hash"] for v in started}
    assert roots == {"0x" + mirror.state_hash().hex()}

"""Mirror: the dApp-facing calls, and what committed transitions do (events, value, exits,
callbacks that succeed, revert, burn gas or return huge data)."""

from __future__ import annotations

import os

import pytest
from chainkit import Net, message, reply, reverts
from eth_abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from gexe.contracts import ValueClaim, eth_message_id, to_abi
from gexe.contracts.bindings import Binding

CALLBACK_GAS = 500_000
RECORD, REVERT, BURN, BOMB, FORWARD = range(5)
ERROR_CODE = b"\x01\x02\x00\x00"


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


@pytest.fixture
def probe(net: Net) -> Binding:
    return net.deploy("CallbackProbe")


def configure(
    probe: Binding,
    net: Net,
    mode: int,
    *,
    reject_ether: bool = False,
    target: str | None = None,
    data: bytes = b"",
) -> None:
    probe.send(net.owner, "configure", mode, reject_ether, target or "0x" + "00" * 20, data)


# -- dApp-facing calls --


def test_send_message_ids_nonce_and_value(net: Net) -> None:
    mirror = net.program()
    user = net.users[0]
    pool = net.w3.eth.get_balance(net.deployment.router)
    receipt, mid = mirror.send_message(user, b"ping", True, value=123)
    assert mid == eth_message_id(mirror.address, 1)
    assert mirror.events(receipt, "MessageQueueingRequested") == [
        {"id": mid, "source": user.address, "payload": b"ping", "value": 123, "callReply": True}
    ]
    assert mirror.nonce() == 2
    # Wei goes straight to the Router's pool.
    assert net.w3.eth.get_balance(mirror.address) == 0
    assert net.w3.eth.get_balance(net.deployment.router) == pool + 123
    _, second = mirror.send_message(user, b"")
    assert second == eth_message_id(mirror.address, 2)


def test_first_message_only_from_the_initializer(net: Net) -> None:
    mirror = net.program(init=False, creator=net.users[1])
    with reverts("InitMessageNotCreatedAndCallerNotInitializer"):
        mirror.send_message(net.users[0], b"hi")
    with reverts("InitMessageNotCreated"):
        mirror.send(net.users[1], "sendReply", os.urandom(32), b"")
    with reverts("InitMessageNotCreated"):
        mirror.send(net.users[1], "claimValue", os.urandom(32))
    _, mid = mirror.send_message(net.users[1], b"init")
    assert mid == eth_message_id(mirror.address, 0)
    mirror.send_message(net.users[0], b"now anyone")


def test_send_reply_and_claim_value(net: Net) -> None:
    mirror = net.program()
    user, replied = net.users[0], os.urandom(32)
    receipt = mirror.send(user, "sendReply", replied, b"yes", value=9)
    assert mirror.events(receipt, "ReplyQueueingRequested") == [
        {"repliedTo": replied, "source": user.address, "payload": b"yes", "value": 9}
    ]
    receipt = mirror.send(user, "claimValue", replied)
    assert mirror.events(receipt, "ValueClaimingRequested") == [
        {"claimedId": replied, "source": user.address}
    ]


def test_executable_balance_top_up(net: Net) -> None:
    mirror = net.program()
    user = net.users[2]
    net.wvara.mint(net.owner, user.address, 1000)
    with reverts("ERC20InsufficientAllowance"):
        mirror.send(user, "executableBalanceTopUp", 10)
    net.wvara.approve(user, mirror.address, 1000)
    before = net.wvara.balance_of(net.deployment.router)
    receipt = mirror.send(user, "executableBalanceTopUp", 400)
    assert mirror.events(receipt, "ExecutableBalanceTopUpRequested") == [{"value": 400}]
    assert net.wvara.balance_of(net.deployment.router) == before + 400
    assert net.wvara.balance_of(user.address) == 600


def test_executable_balance_top_up_with_permit(net: Net) -> None:
    mirror = net.program()
    user = net.users[3]
    net.wvara.mint(net.owner, user.address, 1000)
    deadline = 2**40
    permit = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": "Wrapped Vara",
            "version": "1",
            "chainId": net.chain_id,
            "verifyingContract": net.deployment.wrapped_vara,
        },
        "message": {
            "owner": user.address,
            "spender": mirror.address,
            "value": 250,
            "nonce": 0,
            "deadline": deadline,
        },
    }
    signed = user.sign_message(encode_typed_data(full_message=permit))
    r, s = signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
    receipt = mirror.send(user, "executableBalanceTopUpWithPermit", 250, deadline, signed.v, r, s)
    assert mirror.events(receipt, "ExecutableBalanceTopUpRequested") == [{"value": 250}]
    assert net.wvara.balance_of(user.address) == 750


def test_plain_wei_tops_up_owned_balance_and_unknown_calls_fail(net: Net) -> None:
    mirror = net.program()
    pool = net.w3.eth.get_balance(net.deployment.router)
    net.fund_pool(mirror, 77)
    assert net.w3.eth.get_balance(net.deployment.router) == pool + 77
    with reverts("InvalidFallbackCall"):
        net.raw_call(mirror.address, b"\xde\xad\xbe\xef")
    with reverts("InvalidFallbackCall"):
        net.raw_call(mirror.address, b"")


def test_only_the_router_applies_transitions(net: Net) -> None:
    mirror = net.program()
    t = net.transition(mirror)
    with reverts("CallerNotRouter"):
        mirror.send(net.owner, "performStateTransition", to_abi(t))


# -- transitions --


def test_state_hash_changes_and_events(net: Net) -> None:
    mirror = net.program()
    t = net.transition(mirror)
    receipt = net.commit_transitions(t)
    assert mirror.events(receipt, "StateChanged") == [{"stateHash": t.new_state_hash}]
    assert mirror.state_hash() == t.new_state_hash
    # The same state again: no event.
    receipt = net.commit_transitions(net.transition(mirror, state=t.new_state_hash))
    assert mirror.events(receipt, "StateChanged") == []


def test_reply_and_message_events(net: Net) -> None:
    mirror = net.program()
    user = net.users[0].address
    r = reply(user, os.urandom(32), b"pong", code=ERROR_CODE)
    m = message(user, b"mail", value=5)
    receipt = net.commit_transitions(net.transition(mirror, r, m))
    assert mirror.events(receipt, "Reply") == [
        {"payload": b"pong", "value": 0, "replyTo": r.reply_details.to, "replyCode": ERROR_CODE}
    ]
    # A mailbox message carries its value off-chain (claimed later), none moves here.
    assert mirror.events(receipt, "Message") == [
        {"id": m.id, "destination": user, "payload": b"mail", "value": 5}
    ]


def test_reply_value_and_value_claims_are_paid(net: Net, probe: Binding) -> None:
    mirror = net.program()
    net.fund_pool(mirror, 1000)
    user = net.new_account(eth=0)
    claim = ValueClaim(os.urandom(32), user.address, 300)
    r = reply(user.address, os.urandom(32), b"paid", value=200)
    configure(probe, net, RECORD, reject_ether=True)
    refused = ValueClaim(os.urandom(32), probe.address, 100)
    t = net.transition(mirror, r, value_to_receive=600, value_claims=(claim, refused))
    receipt = net.commit_transitions(t)
    assert net.w3.eth.get_balance(user.address) == 500
    assert mirror.events(receipt, "ValueClaimed") == [{"claimedId": claim.message_id, "value": 300}]
    assert mirror.events(receipt, "ValueClaimFailed") == [
        {"claimedId": refused.message_id, "value": 100}
    ]
    assert net.w3.eth.get_balance(mirror.address) == 100  # the refused claim stays here


def test_reply_value_to_a_refusing_contract(net: Net, probe: Binding) -> None:
    mirror = net.program()
    net.fund_pool(mirror, 50)
    configure(probe, net, RECORD, reject_ether=True)
    r = reply(probe.address, os.urandom(32), b"x", value=50)
    receipt = net.commit_transitions(net.transition(mirror, r, value_to_receive=50))
    assert mirror.events(receipt, "ReplyTransferFailed") == [
        {"destination": probe.address, "value": 50}
    ]
    assert len(mirror.events(receipt, "Reply")) == 1


def test_exit_sends_the_rest_to_the_inheritor(net: Net) -> None:
    mirror = net.program()
    net.fund_pool(mirror, 1000)
    heir = net.new_account(eth=0)
    user = net.users[0].address
    t = net.transition(
        mirror,
        reply(user, os.urandom(32), value=100),
        exited=True,
        inheritor=heir.address,
        value_to_receive=400,
    )
    net.commit_transitions(t)
    assert mirror.call("exited") is True
    assert mirror.call("inheritor") == heir.address
    assert net.w3.eth.get_balance(heir.address) == 300
    with reverts("ProgramExited"):
        mirror.send_message(net.users[0], b"too late")
    with reverts("ProgramExited"):
        mirror.send(net.users[0], "claimValue", os.urandom(32))
    with reverts("ProgramExited"):
        net.raw_call(mirror.address, value=1)
    with reverts("ProgramExited"):
        net.commit_transitions(net.transition(mirror, exited=True, inheritor=heir.address))


def test_inheritor_only_on_exit(net: Net) -> None:
    mirror = net.program()
    with reverts("InheritorMustBeZero"):
        net.commit_transitions(net.transition(mirror, inheritor=net.users[0].address))


def test_transfer_locked_value_to_inheritor(net: Net, probe: Binding) -> None:
    mirror = net.program()
    with reverts("ProgramNotExited"):
        mirror.send(net.owner, "transferLockedValueToInheritor")
    net.fund_pool(mirror, 100)
    # The inheritor refuses wei during the exit; it stays locked in the Mirror until claimed.
    configure(probe, net, RECORD, reject_ether=True)
    receipt = net.commit_transitions(
        net.transition(mirror, exited=True, inheritor=probe.address, value_to_receive=100)
    )
    assert mirror.events(receipt, "TransferLockedValueToInheritorFailed") == [
        {"inheritor": probe.address, "value": 100}
    ]
    assert net.w3.eth.get_balance(mirror.address) == 100
    configure(probe, net, RECORD, reject_ether=False)
    mirror.send(net.users[0], "transferLockedValueToInheritor")
    assert net.w3.eth.get_balance(mirror.address) == 0
    assert net.w3.eth.get_balance(probe.address) == 100


# -- callbacks --


def test_success_reply_calls_the_sender_with_the_payload(net: Net, probe: Binding) -> None:
    mirror = net.program()
    net.fund_pool(mirror, 10)
    _, mid = (
        mirror.send_message(net.owner, b"x")
        if False
        else (None, probe.call("send", mirror.address, b"q", True))
    )
    payload = selector("replyOn_q(bytes32)") + mid
    r = reply(probe.address, mid, payload, value=10, call=True)
    receipt = net.commit_transitions(net.transition(mirror, r, value_to_receive=10))
    assert probe.call("calls") == 1
    assert bytes(probe.call("lastData")) == payload
    assert probe.call("lastValue") == 10
    # The callee got the whole stipend (+2,300 for carrying value, minus the few gas it
    # spends before reading gasleft).
    assert CALLBACK_GAS - 500 <= probe.call("lastGas") <= CALLBACK_GAS + 2_300
    assert mirror.events(receipt, "ReplyCallFailed") == []
    assert mirror.events(receipt, "Reply") == []  # delivered by the call, as in Vara.eth


def test_error_reply_calls_on_error_reply(net: Net, probe: Binding) -> None:
    mirror = net.program()
    replied = os.urandom(32)
    r = reply(probe.address, replied, b"panicked", code=ERROR_CODE, call=True)
    net.commit_transitions(net.transition(mirror, r))
    expected = selector("onErrorReply(bytes32,bytes,bytes4)") + abi_encode(
        ["bytes32", "bytes", "bytes4"], [replied, b"panicked", ERROR_CODE]
    )
    assert bytes(probe.call("lastData")) == expected


@pytest.mark.parametrize("mode", [REVERT, BURN])
def test_failing_callback_never_reverts_the_batch(net: Net, probe: Binding, mode: int) -> None:
    mirror = net.program()
    net.fund_pool(mirror, 10)
    configure(probe, net, mode)
    other = net.program()
    replied = os.urandom(32)
    r = reply(probe.address, replied, b"\x12\x34\x56\x78", value=10, call=True)
    follow = net.transition(other, reply(net.users[0].address, os.urandom(32), b"next"))
    receipt = net.commit_transitions(net.transition(mirror, r, value_to_receive=10), follow)
    assert receipt["status"] == 1
    assert mirror.events(receipt, "ReplyCallFailed") == [
        {"value": 10, "replyTo": replied, "replyCode": bytes(4)}
    ]
    assert net.w3.eth.get_balance(probe.address) == 10  # value still delivered by plain transfer
    assert other.state_hash() == follow.new_state_hash  # later transitions still applied
    assert receipt["gasUsed"] < 1_500_000


def test_return_bomb_costs_the_batch_nothing(net: Net, probe: Binding) -> None:
    mirror = net.program()
    configure(probe, net, BOMB)
    r = reply(probe.address, os.urandom(32), b"\x01\x02\x03\x04", call=True)
    receipt = net.commit_transitions(net.transition(mirror, r))
    assert mirror.events(receipt, "ReplyCallFailed") == []
    # The callee paid for its 300 kB of memory; nothing was copied back into the Mirror.
    assert receipt["gasUsed"] < 21_000 + 200_000 + CALLBACK_GAS


def test_callback_cannot_reenter_commit_batch(net: Net, probe: Binding) -> None:
    mirror = net.program()
    inner = net.batch()
    call = net.router.contract.functions.commitBatch(to_abi(inner), net.signatures(inner))
    data = call._encode_transaction_data()
    configure(probe, net, FORWARD, target=net.deployment.router, data=bytes.fromhex(data[2:]))
    replied = os.urandom(32)
    r = reply(probe.address, replied, b"\xaa\xbb\xcc\xdd", call=True)
    receipt = net.commit_transitions(net.transition(mirror, r))
    assert mirror.events(receipt, "ReplyCallFailed") == [
        {"value": 0, "replyTo": replied, "replyCode": bytes(4)}
    ]


def test_callback_may_send_a_new_message(net: Net, probe: Binding) -> None:
    mirror = net.program()
    send = mirror.contract.functions.sendMessage(b"again", False)._encode_transaction_data()
    configure(probe, net, FORWARD, target=mirror.address, data=bytes.fromhex(send[2:]))
    r = reply(probe.address, os.urandom(32), b"\x01\x01\x01\x01", call=True)
    receipt = net.commit_transitions(net.transition(mirror, r))
    queued = mirror.events(receipt, "MessageQueueingRequested")
    assert [q["payload"] for q in queued] == [b"again"] and queued[0]["source"] == probe.address


def test_mailbox_message_with_call(net: Net, probe: Binding) -> None:
    mirror = net.program()
    ok = message(probe.address, b"\x0a\x0b\x0c\x0d", call=True)
    receipt = net.commit_transitions(net.transition(mirror, ok))
    assert bytes(probe.call("lastData")) == b"\x0a\x0b\x0c\x0d"
    assert len(mirror.events(receipt, "Message")) == 1
    configure(probe, net, REVERT)
    bad = message(probe.address, b"\x0a", value=3, call=True)
    receipt = net.commit_transitions(net.transition(mirror, bad))
    assert mirror.events(receipt, "MessageCallFailed") == [
        {"id": bad.id, "destination": probe.address, "value": 3}
    ]
    assert mirror.events(receipt, "Message") == []


def test_too_little_gas_for_a_callback_reverts_instead_of_failing_it(
    net: Net, probe: Binding
) -> None:
    mirror = net.program()
    configure(probe, net, BURN)
    r = reply(probe.address, os.urandom(32), b"\x01\x02\x03\x04", call=True)
    batch = net.batch([net.transition(mirror, r)])
    before = net.router.latest_committed_batch_hash()
    with reverts("InsufficientGasForCallback"):
        net.commit(batch, gas=400_000)
    assert net.router.latest_committed_batch_hash() == before
    # With gas estimated, the same batch goes through and reports the failed callback.
    assert net.commit(batch)["status"] == 1

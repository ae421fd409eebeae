"""The example dApp (contracts/examples/PingClient.sol): request, callback, error callback."""

from __future__ import annotations

import os

from chainkit import Net, reply
from eth_abi import encode as abi_encode
from eth_utils import keccak
from gexe.contracts import eth_message_id

ERROR_CODE = b"\x01\x00\x00\x00"


def pong_payload(message_id: bytes, answer: bytes) -> bytes:
    """What the program replies: the calldata of PingClient.replyOn_ping(messageId, answer)."""
    return keccak(text="replyOn_ping(bytes32,bytes)")[:4] + abi_encode(
        ["bytes32", "bytes"], [message_id, answer]
    )


def test_ping_and_pong_through_a_callback(net: Net) -> None:
    mirror = net.program()
    client = net.deploy("PingClient", mirror.address)
    user = net.users[0]
    receipt = client.send(user, "ping", b"PING", value=5)
    (queued,) = mirror.events(receipt, "MessageQueueingRequested")
    mid = queued["id"]
    assert mid == eth_message_id(mirror.address, mirror.nonce() - 1)
    assert queued["source"] == client.address and queued["callReply"] is True
    assert client.call("pending", mid) is True

    r = reply(client.address, mid, pong_payload(mid, b"PONG"), value=5, call=True)
    receipt = net.commit_transitions(net.transition(mirror, r, value_to_receive=5))
    assert client.events(receipt, "PongReceived") == [
        {"messageId": mid, "answer": b"PONG", "value": 5}
    ]
    assert bytes(client.call("answers", mid)) == b"PONG"
    assert client.call("pending", mid) is False
    assert net.w3.eth.get_balance(client.address) == 5


def test_error_reply_reaches_on_error_reply(net: Net) -> None:
    mirror = net.program()
    client = net.deploy("PingClient", mirror.address)
    receipt = client.send(net.users[0], "ping", b"PING")
    mid = mirror.events(receipt, "MessageQueueingRequested")[0]["id"]
    r = reply(client.address, mid, b"out of gas", code=ERROR_CODE, call=True)
    receipt = net.commit_transitions(net.transition(mirror, r))
    assert client.events(receipt, "PingFailed") == [
        {"messageId": mid, "replyCode": ERROR_CODE, "payload": b"out of gas"}
    ]
    assert bytes(client.call("errorCodes", mid)) == ERROR_CODE


def test_unknown_or_foreign_callbacks_are_refused(net: Net) -> None:
    mirror = net.program()
    client = net.deploy("PingClient", mirror.address)
    stray = os.urandom(32)
    r = reply(client.address, stray, pong_payload(stray, b"?"), call=True)
    receipt = net.commit_transitions(net.transition(mirror, r))
    assert mirror.events(receipt, "ReplyCallFailed") == [
        {"value": 0, "replyTo": stray, "replyCode": bytes(4)}
    ]
    # Another program's Mirror may not call it either.
    other = net.program()
    receipt = client.send(net.users[0], "ping", b"PING")
    mid = mirror.events(receipt, "MessageQueueingRequested")[0]["id"]
    r = reply(client.address, mid, pong_payload(mid, b"fake"), call=True)
    receipt = net.commit_transitions(net.transition(other, r))
    assert len(other.events(receipt, "ReplyCallFailed")) == 1
    assert client.call("pending", mid) is True

"""ping's Solidity callback form (programs/README.md): a payload starting with the selector
of `replyOn_ping(bytes32,bytes)` is answered with that function's calldata, which the
Mirror then calls on the sender (contracts/examples/PingClient.sol)."""

from __future__ import annotations

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from gexe.runtime import codes
from sandbox_helpers import call, deploy

from gexe import programs

SELECTOR = keccak(text="replyOn_ping(bytes32,bytes)")[:4]


def expected(message_id: bytes, answer: bytes) -> bytes:
    return SELECTOR + abi_encode(["bytes32", "bytes"], [message_id, answer])


@pytest.fixture
def ping(sb) -> bytes:
    return deploy(sb, programs.path("ping").read_bytes())


@pytest.mark.parametrize(
    ("arg", "answer"),
    [
        (b"PING", b"PONG"),
        (b"", b""),
        (b"hello", b"hello"),
        (b"PINGPING", b"PINGPING"),
        (b"x" * 32, b"x" * 32),  # exactly one word: no padding
        (bytes(range(256)) * 3, bytes(range(256)) * 3),
        (b"y" * 10_000, b"y" * 10_000),  # longer than ping's 8 KiB buffer
    ],
)
def test_callback_calldata(sb, ping: bytes, arg: bytes, answer: bytes) -> None:
    mid = sb.send(ping, SELECTOR + arg)
    reply = sb.run_until_reply(mid, max_blocks=5)
    assert reply is not None and reply.reply_code == codes.SUCCESS_MANUAL
    assert reply.payload == expected(mid, answer)
    assert reply.payload[:4] == SELECTOR
    got_id, got_answer = abi_decode(["bytes32", "bytes"], reply.payload[4:])
    assert (got_id, got_answer) == (mid, answer)
    assert len(reply.payload) % 32 == 4


def test_message_id_is_the_requests_own(sb, ping: bytes) -> None:
    a = sb.send(ping, SELECTOR + b"PING")
    b = sb.send(ping, SELECTOR + b"PING")
    sb.run_block()
    ra, rb = sb.reply_to(a), sb.reply_to(b)
    assert ra is not None and rb is not None
    assert ra.payload == expected(a, b"PONG") and rb.payload == expected(b, b"PONG")
    assert ra.payload != rb.payload


@pytest.mark.parametrize(
    ("payload", "want"),
    [
        (b"PING", b"PONG"),
        (b"hello", b"hello"),
        (SELECTOR[:3], SELECTOR[:3]),  # too short to carry the selector: echoed
        (b"\x00" + SELECTOR + b"PING", b"\x00" + SELECTOR + b"PING"),
        (keccak(text="replyOn_pong(bytes32,bytes)")[:4] + b"PING", None),
    ],
)
def test_other_payloads_keep_the_old_behaviour(sb, ping: bytes, payload: bytes, want) -> None:
    reply, rec = call(sb, ping, payload)
    assert reply is not None and rec.status == "success"
    assert reply.payload == (payload if want is None else want)

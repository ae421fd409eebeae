"""Request and payload size limits: every way to make a node hold or parse too much is
refused — HTTP bodies and heads, WebSocket messages, batches, JSON nesting, gossip
envelopes, uploaded code and message payloads."""

from __future__ import annotations

import base64
import json
import os

import pytest
import trio
import trio_websocket
from gexe.node.gossip_messages import DEFAULT_MAX_MESSAGE_SIZE, Oversized, decode
from gexe.runtime import CodeError, Sandbox, limits, validate
from gexe.validator.rpc import (
    INVALID_REQUEST,
    MAX_BATCH,
    MAX_HEAD,
    MAX_JSON_DEPTH,
    PARSE_ERROR,
    RpcDispatcher,
    RpcServer,
    Session,
)

LIMIT = 4096


async def _ids(_s):
    return ["ok"]


async def _raw(port: int, data: bytes) -> bytes:
    s = await trio.open_tcp_stream("127.0.0.1", port)
    async with s:
        try:
            await s.send_all(data)
            await s.send_eof()
        except trio.BrokenResourceError:
            pass
        out = b""
        with trio.fail_after(10):
            try:
                while chunk := await s.receive_some():
                    out += chunk
            except trio.BrokenResourceError:
                pass
    return out


def _post(body: bytes, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % n + body


GOOD = b'{"jsonrpc":"2.0","id":1,"method":"program_ids"}'


@pytest.fixture
async def port(nursery):
    server = RpcServer(RpcDispatcher({"program_ids": _ids}), max_request_bytes=LIMIT, rate_limit=0)
    return await nursery.start(server.serve, "127.0.0.1", 0)


async def test_over_size_http_body_is_413_before_it_is_read(port):
    out = await _raw(port, _post(b"x" * (LIMIT + 1)))
    assert out.startswith(b"HTTP/1.1 413 ")
    # the declared length alone is enough: nothing of a huge body is buffered
    out = await _raw(port, _post(b"", length=10**12))
    assert out.startswith(b"HTTP/1.1 413 ")
    assert (await _raw(port, _post(GOOD))).startswith(b"HTTP/1.1 200 ")


async def test_body_is_read_to_its_declared_length_only(port):
    out = await _raw(port, _post(GOOD + b"garbage" * 100, length=len(GOOD)))
    assert out.startswith(b"HTTP/1.1 200 ") and b'"ok"' in out


async def test_over_size_head_is_431(port):
    # Sent in one piece the whole head used to arrive in one read, and the size check
    # only ran while waiting for the end of the head: heads up to 80 KiB got through.
    head = b"POST / HTTP/1.1\r\nX-Pad: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n"
    assert (await _raw(port, head)).startswith(b"HTTP/1.1 431 ")
    # trickled in small pieces
    s = await trio.open_tcp_stream("127.0.0.1", port)
    async with s:
        out = b""
        try:
            for i in range(0, len(head), 1000):
                await s.send_all(head[i : i + 1000])
                await trio.sleep(0)
        except trio.BrokenResourceError:
            pass
        with trio.fail_after(10):
            while chunk := await s.receive_some():
                out += chunk
    assert out.startswith(b"HTTP/1.1 431 ")


async def test_body_without_length_is_411(port):
    chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    assert (await _raw(port, chunked)).startswith(b"HTTP/1.1 411 ")


async def test_over_size_websocket_message_closes_the_connection(port):
    async with trio_websocket.open_websocket("127.0.0.1", port, "/", use_ssl=False) as ws:
        await ws.send_message(GOOD.decode())
        assert json.loads(await ws.get_message())["result"] == ["ok"]
        await ws.send_message("x" * (LIMIT + 1))
        with pytest.raises(trio_websocket.ConnectionClosed) as e:
            with trio.fail_after(10):
                await ws.get_message()
        assert e.value.reason.code == 1009  # MESSAGE_TOO_BIG
    # a raw over-size frame sent with the handshake: refused the same way, server fine
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    frame = bytes([0x81, 0xFF]) + (2**40).to_bytes(8, "big") + os.urandom(4) + b"x" * LIMIT
    out = await _raw(port, head + frame)
    assert out.startswith(b"HTTP/1.1 101 ") or out == b""
    assert (await _raw(port, _post(GOOD))).startswith(b"HTTP/1.1 200 ")


async def test_over_size_batch_and_nesting_are_refused():
    d = RpcDispatcher({"program_ids": _ids})
    ok = json.dumps([json.loads(GOOD)] * MAX_BATCH).encode()
    assert len(json.loads(await d.handle(ok, Session("t")))) == MAX_BATCH
    big = json.dumps([json.loads(GOOD)] * (MAX_BATCH + 1)).encode()
    assert json.loads(await d.handle(big, Session("t")))["error"]["code"] == INVALID_REQUEST
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    assert json.loads(await d.handle(deep, Session("t")))["error"]["code"] == PARSE_ERROR


def test_over_size_gossip_envelope_is_refused_before_parsing():
    with pytest.raises(Oversized):
        decode(b"\x01" + bytes(DEFAULT_MAX_MESSAGE_SIZE))
    # a declared payload length beyond the bound is refused without reading it
    head = (
        b"\x01" + bytes(8) + bytes(20) + b"\x10" + (DEFAULT_MAX_MESSAGE_SIZE + 1).to_bytes(4, "big")
    )
    with pytest.raises(Oversized):
        decode(head + bytes(100))


def test_over_size_code_and_payload_are_refused():
    with pytest.raises(CodeError) as e:
        validate(b"\0asm\1\0\0\0" + bytes(limits.MAX_CODE_SIZE))
    assert e.value.reason == "CodeTooLarge"
    sb = Sandbox()
    try:
        with pytest.raises(ValueError, match="exceeds"):
            sb.send(b"\1" * 32, bytes(limits.MAX_PAYLOAD_SIZE + 1))
    finally:
        sb.close()


async def test_partial_websocket_frame_is_not_held_forever(nursery):
    server = RpcServer(RpcDispatcher({}), max_request_bytes=LIMIT, read_timeout=0.5)
    p = await nursery.start(server.serve, "127.0.0.1", 0)
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    s = await trio.open_tcp_stream("127.0.0.1", p)
    async with s:
        await s.send_all(head + bytes([0x81, 0xFE, 0x01, 0x00]) + os.urandom(4) + b"abc")
        closed = False
        with trio.move_on_after(3):  # six read timeouts
            try:
                while await s.receive_some():
                    pass
                closed = True
            except trio.BrokenResourceError:
                closed = True
    assert closed


async def test_connections_beyond_the_cap_get_503(nursery):
    server = RpcServer(
        RpcDispatcher({}), max_request_bytes=LIMIT, read_timeout=5, max_connections=3
    )
    p = await nursery.start(server.serve, "127.0.0.1", 0)
    held = [await trio.open_tcp_stream("127.0.0.1", p) for _ in range(3)]
    try:
        await trio.sleep(0.2)  # the server has taken the three
        assert server.connections == 3
        s = await trio.open_tcp_stream("127.0.0.1", p)
        async with s:
            got = b""
            with trio.move_on_after(3):
                while chunk := await s.receive_some():
                    got += chunk
        assert got.startswith(b"HTTP/1.1 503")
    finally:
        for h in held:
            await h.aclose()
    with trio.fail_after(5):  # the slots come back
        while server.connections:
            await trio.sleep(0.05)

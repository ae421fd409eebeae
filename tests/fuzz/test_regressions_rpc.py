"""Regression tests for two ways one unauthenticated RPC request stopped a validator.

1. Found while building the `rpc` fuzz target: `json.loads` raises RecursionError (not
   ValueError) on deeply nested input, so one POST of `[[[[…` (well under the 1 MiB body
   limit) escaped `RpcDispatcher.handle`, the connection handler and
   `trio.serve_listeners` — and, the server running in the validator's service nursery,
   stopped the whole validator. Now it is a -32700 parse error, and an exception left in
   one connection is logged without ending the server.
2. Found by the `rpc` fuzz target (a segfault of the fuzzing process): in a validator
   the interpreter's recursion limit is 100,000, because py_ecc (imported by the
   Ethereum libraries) raises it, so the C JSON parser recursed 100,000 levels deep
   for a 100 KB body and overflowed the C stack: SIGSEGV, the validator gone. Nesting
   beyond `MAX_JSON_DEPTH` is now refused before parsing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import trio
from gexe.validator.rpc import PARSE_ERROR, RpcDispatcher, RpcServer, Session


async def _echo(_s, *args, **kwargs):
    return [list(args), kwargs]


async def _post(port: int, body: bytes) -> bytes:
    s = await trio.open_tcp_stream("127.0.0.1", port)
    async with s:
        await s.send_all(b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        out = b""
        with trio.fail_after(10):
            while chunk := await s.receive_some():
                out += chunk
    return out


GOOD = b'{"jsonrpc":"2.0","id":7,"method":"echo","params":[1]}'


async def test_deeply_nested_json_is_a_parse_error():
    d = RpcDispatcher({"echo": _echo})
    for deep in (b"[" * 100_000, b'{"a":' * 50_000, b"[" * 10_000 + b"]" * 10_000):
        out = json.loads(await d.handle(deep, Session("t")))
        assert out["error"]["code"] == PARSE_ERROR


async def test_server_survives_deep_nesting_and_serves_the_next_request():
    server = RpcServer(RpcDispatcher({"echo": _echo}), rate_limit=0)
    async with trio.open_nursery() as n:
        port = await n.start(server.serve, "127.0.0.1", 0)
        bad = await _post(port, b"[" * 200_000)
        assert bad.startswith(b"HTTP/1.1 200") and b"-32700" in bad
        good = await _post(port, GOOD)
        assert json.loads(good.split(b"\r\n\r\n", 1)[1]) == {
            "jsonrpc": "2.0",
            "id": 7,
            "result": [[1], {}],
        }
        n.cancel_scope.cancel()


class _Broken(RpcDispatcher):
    async def handle(self, data, session):
        if b"boom" in data:
            raise RuntimeError("a bug below the dispatcher")
        return await super().handle(data, session)


async def test_a_failing_connection_does_not_end_the_server():
    server = RpcServer(_Broken({"echo": _echo}), rate_limit=0)
    async with trio.open_nursery() as n:
        port = await n.start(server.serve, "127.0.0.1", 0)
        assert await _post(port, b"boom") == b""  # closed without an answer
        assert b'"result"' in await _post(port, GOOD)
        n.cancel_scope.cancel()


def test_deep_nesting_cannot_overflow_the_c_stack_of_a_validator_process():
    # Run where a validator runs: after importing the service (and so py_ecc), with the
    # recursion limit it leaves. Before the fix this process died of SIGSEGV.
    script = textwrap.dedent(
        """
        import json, sys, trio
        import gexe.validator.service
        from gexe.validator.rpc import RpcDispatcher, Session
        assert sys.getrecursionlimit() >= 100_000, sys.getrecursionlimit()
        d = RpcDispatcher({})
        for body in (b"[" * 500_000, b"[" * 100_000 + b"]" * 100_000, ("[" * 200_000).encode("utf-16")):
            out = json.loads(trio.run(d.handle, body, Session("t")))
            print(out["error"]["code"])
        """
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["-32700"] * 3


async def test_nesting_up_to_the_limit_still_parses():
    from gexe.validator.rpc import MAX_JSON_DEPTH

    d = RpcDispatcher({"echo": _echo})
    deep = "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)
    body = '{"jsonrpc":"2.0","id":1,"method":"echo","params":[' + deep + ', "[[[[{{{{"]}'
    out = json.loads(await d.handle(body.encode(), Session("t")))
    assert out["result"][0][1] == "[[[[{{{{"
    too_deep = body.replace(deep, "[" + deep + "]" * 2)
    assert json.loads(await d.handle(too_deep.encode(), Session("t")))["error"]["code"] == (
        PARSE_ERROR
    )


def test_block_number_beyond_u64_is_invalid_params():
    # Found by the rpc fuzz target: `block_result` / `program_state` with a block number
    # of 2**64 or more raised ValueError from the store's key encoding, answered as
    # -32603 internal error with a logged traceback.
    from fuzz.rpc_target import ApiFixture

    fx = ApiFixture()
    try:

        async def call(method, *params):
            async with trio.open_nursery() as n:
                d = RpcDispatcher(fx.api(n).methods())
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
                out = await d.handle(json.dumps(body).encode(), Session("t"))
                n.cancel_scope.cancel()
            return json.loads(out)

        pid = "0x" + fx.pids[0].hex()
        for method, params in (
            ("block_result", (2**64,)),
            ("block_result", (hex(2**70),)),
            ("program_state", (pid, 2**64)),
        ):
            assert trio.run(call, method, *params)["error"]["code"] == -32602
        assert trio.run(call, "block_result", 2**64 - 1)["result"] is None
        assert trio.run(call, "program_state", pid, 103)["result"]["block"] == 103
    finally:
        fx.close()


def test_query_value_overflowing_the_balance_is_refused():
    # Found by the rpc fuzz target: program_calculateReplyForHandle with value 2**128 - 1
    # to a program holding value overflowed the u128 balance while encoding the state
    # (OverflowError → -32603 internal error with a logged traceback).
    from fuzz.rpc_target import USER, ApiFixture

    fx = ApiFixture()
    try:

        async def query(value):
            async with trio.open_nursery() as n:
                d = RpcDispatcher(fx.api(n).methods())
                params = ["0x" + USER.hex(), "0x" + fx.pids[0].hex(), "0x50494e47", value]
                body = {"jsonrpc": "2.0", "id": 1, "method": "program_calculateReplyForHandle"}
                out = await d.handle(json.dumps({**body, "params": params}).encode(), Session("t"))
                n.cancel_scope.cancel()
            return json.loads(out)

        err = trio.run(query, 2**128 - 1)["error"]
        assert err["code"] == -32000 and "overflow" in err["message"]
        assert trio.run(query, 7)["result"]["payload"] == "0x" + b"PONG".hex()
    finally:
        fx.close()


async def test_websocket_closed_during_its_handshake_does_not_end_the_server(caplog):
    # Found by the http fuzz target: a WebSocket handshake sent together with an
    # over-size frame makes trio-websocket close the connection while `accept()` is
    # still answering the handshake; its ConnectionClosed left `_conn` inside the
    # handshake nursery's ExceptionGroup (only bare Broken/ClosedResourceError were
    # caught), went up through `serve_listeners` and stopped the validator. Now it is
    # a quiet disconnect; other failures are logged, and the server keeps serving.
    import base64
    import logging
    import os

    from fuzz.http_target import _ws_frame

    server = RpcServer(RpcDispatcher({"echo": _echo}), rate_limit=0, max_request_bytes=65536)
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    caplog.set_level(logging.ERROR)
    async with trio.open_nursery() as n:
        port = await n.start(server.serve, "127.0.0.1", 0)
        for _ in range(20):  # the close races the handshake answer: try it often
            s = await trio.open_tcp_stream("127.0.0.1", port)
            async with s:
                await s.send_all(head + _ws_frame(b"x" * 65546))
                await s.send_eof()
                with trio.move_on_after(5):
                    try:
                        while await s.receive_some():
                            pass
                    except trio.BrokenResourceError:
                        pass
        assert b'"result"' in await _post(port, GOOD)
        n.cancel_scope.cancel()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

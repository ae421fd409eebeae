"""The validator's JSON-RPC 2.0 server over HTTP (POST /) and WebSocket (same port).

Two layers:
- `RpcDispatcher` (sans-IO apart from awaiting handlers): bytes in → bytes out. Parses
  a request or a batch, answers malformed input with the JSON-RPC errors -32700 (parse
  error), -32600 (invalid request), -32601 (method not found), -32602 (invalid params)
  and any handler failure with -32603 — never by crashing the server.
- `serve_rpc`: a trio TCP server. An HTTP/1.1 request head is parsed with
  `gexe.node.http1`; `POST` with a JSON body is answered; a request with
  `Upgrade: websocket` is handed to trio-websocket (the head is replayed to it), and
  the connection then carries JSON-RPC messages plus subscription notifications.

Limits: request body (and WS message) size `max_request_bytes` (413 / -32600 beyond),
batches of at most `MAX_BATCH` calls, JSON nested at most `MAX_JSON_DEPTH` levels
(-32700 beyond), and a token bucket per client address of
`rate_limit` requests per second (429 / -32005 when empty; 0 = unlimited), at most
`max_connections` open at once (503 beyond), and a WebSocket without subscriptions that
sends no complete message for 3 × `read_timeout` (idle, or a partial frame) is closed.

Methods (see `ValidatorApi`): `program_calculateReplyForHandle`, `program_state`,
`program_ids`, `program_queue`, `block_result`, `code_get`, `node_status`, and over WS
`subscribe(kind, filter)` / `unsubscribe(id)` with kinds `blockResults` and
`programReplies`; notifications are `{"method": "subscription", "params":
{"subscription": id, "result": ...}}`.

Invariants: queries never change the node's state (`calculateReplyForHandle` runs the
message in a block writer that is aborted); handlers run blocking work in worker
threads; binds 127.0.0.1 unless configured otherwise (config checks `allow_external`).

When modifying this part: method names and result shapes are a public API.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio
import trio_websocket
from gexe.node import http1
from gexe.node.logging import get_logger

log = get_logger("rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RATE_LIMITED = -32005
MAX_BATCH = 100
MAX_HEAD = 16 * 1024
# Deepest JSON nesting parsed. The C JSON parser recurses once per level and only the
# interpreter's recursion limit stops it — which py_ecc (imported by the eth libraries)
# raises to 100,000, so `[[[[…` in a 1 MiB body overflowed the C stack and killed the
# process (tests/fuzz/test_regressions_rpc.py). Requests need about 5 levels.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class RpcFailure(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def invalid_params(msg: str) -> RpcFailure:
    return RpcFailure(INVALID_PARAMS, f"invalid params: {msg}")


Handler = Callable[..., Awaitable[Any]]


@dataclass
class Session:
    """Per-connection context (the WS connection's subscriptions live here)."""

    client: str
    send: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    subscriptions: dict[str, Any] = field(default_factory=dict)


def _error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


class RpcDispatcher:
    def __init__(self, methods: dict[str, Handler]) -> None:
        self.methods = methods
        self.calls = 0
        self.errors = 0

    async def handle(self, data: bytes, session: Session) -> bytes | None:
        """One HTTP body / WS message → the response bytes (None: notifications only)."""
        try:
            msg = _parse_json(data)
        except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: deep nesting
            self.errors += 1
            return json.dumps(_error(None, PARSE_ERROR, "parse error")).encode()
        if isinstance(msg, list):
            if not msg:
                return json.dumps(_error(None, INVALID_REQUEST, "empty batch")).encode()
            if len(msg) > MAX_BATCH:
                return json.dumps(
                    _error(None, INVALID_REQUEST, f"batch larger than {MAX_BATCH}")
                ).encode()
            out = [r for r in [await self._one(m, session) for m in msg] if r is not None]
            return json.dumps(out).encode() if out else None
        r = await self._one(msg, session)
        return None if r is None else json.dumps(r).encode()

    async def _one(self, m: Any, session: Session) -> dict[str, Any] | None:
        self.calls += 1
        if (
            not isinstance(m, dict)
            or m.get("jsonrpc") != "2.0"
            or not isinstance(m.get("method"), str)
        ):
            self.errors += 1
            id_ = m.get("id") if isinstance(m, dict) else None
            return _error(id_ if _valid_id(id_) else None, INVALID_REQUEST, "invalid request")
        notification = "id" not in m
        id_ = m.get("id")
        if not notification and not _valid_id(id_):
            self.errors += 1
            return _error(None, INVALID_REQUEST, "invalid request: bad id")
        params = m.get("params", [])
        if not isinstance(params, list | dict):
            self.errors += 1
            return _error(id_, INVALID_PARAMS, "invalid params: must be an array or object")
        fn = self.methods.get(m["method"])
        if fn is None:
            self.errors += 1
            return None if notification else _error(id_, METHOD_NOT_FOUND, "method not found")
        try:
            if isinstance(params, list):
                result = await fn(session, *params)
            else:
                result = await fn(session, **params)
        except RpcFailure as e:
            self.errors += 1
            return None if notification else _error(id_, e.code, e.message, e.data)
        except TypeError as e:
            self.errors += 1
            return None if notification else _error(id_, INVALID_PARAMS, f"invalid params: {e}")
        except Exception as e:  # a bug in a handler: answer, log, keep serving
            self.errors += 1
            log.exception("rpc handler failed", method=m["method"])
            return (
                None
                if notification
                else _error(id_, INTERNAL_ERROR, f"internal error: {type(e).__name__}")
            )
        return None if notification else {"jsonrpc": "2.0", "id": id_, "result": result}


def _parse_json(data: bytes) -> Any:
    """`json.loads`, refusing (ValueError) nesting deeper than MAX_JSON_DEPTH first."""
    text = data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads does
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:  # else it cannot be too deep
        depth = 0
        for c in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
            depth = depth + 1 if c in "[{" else depth - 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text)


def _valid_id(v: Any) -> bool:
    return (
        v is None
        or (isinstance(v, str | int) and not isinstance(v, bool))
        or (isinstance(v, float) and math.isfinite(v))
    )


# ------------------------------------------------------------------ rate limiting


class RateLimiter:
    """A token bucket per client: `rate` per second, burst of max(1, 2 * rate)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return False
        self._buckets[client] = (tokens - 1, now)
        if len(self._buckets) > 10_000:  # forget idle clients
            cutoff = now - 60
            self._buckets = {k: v for k, v in self._buckets.items() if v[1] > cutoff}
        return True


# ------------------------------------------------------------------ server


async def _linger(stream: trio.SocketStream, limit: int) -> None:
    """Half-close and discard what the client still sends (bounded), so that closing does
    not reset the connection before the client has read our error response."""
    await stream.send_eof()
    drained = 0
    with trio.move_on_after(2.0):
        while drained < 64 * limit and (chunk := await stream.receive_some(65536)):
            drained += len(chunk)


_DISCONNECTS = (trio.BrokenResourceError, trio.ClosedResourceError, trio_websocket.ConnectionClosed)


def _disconnected(e: Exception) -> bool:
    """The peer went away or broke the protocol (also inside a nursery's exception group,
    e.g. a WebSocket closed during its handshake): nothing to log."""
    if isinstance(e, ExceptionGroup):
        return e.split(_DISCONNECTS)[1] is None
    return isinstance(e, _DISCONNECTS)


class _Replay(trio.abc.Stream):
    """A stream that first yields bytes already read (the HTTP head), then the socket."""

    def __init__(self, stream: trio.SocketStream, first: bytes) -> None:
        self._s = stream
        self._first = first

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._first:
            data, self._first = self._first, b""
            return data
        return await self._s.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._s.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._s.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._s.send_eof()

    async def aclose(self) -> None:
        await self._s.aclose()


@dataclass
class RpcServer:
    dispatcher: RpcDispatcher
    max_request_bytes: int = 1 << 20
    rate_limit: float = 100.0
    read_timeout: float = 30.0
    on_close: Callable[[Session], None] | None = None
    max_connections: int = 512  # open connections (HTTP and WebSocket) at once; 503 beyond

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.rate_limit)
        self.connections = 0

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(bound)
                await trio.serve_listeners(self._conn, listeners, handler_nursery=nursery)
        finally:
            for lst in listeners:
                with trio.CancelScope(shield=True):
                    await lst.aclose()

    async def _conn(self, stream: trio.SocketStream) -> None:
        try:
            client = str(stream.socket.getpeername()[0])
        except OSError:
            return
        if self.connections >= self.max_connections:
            with trio.move_on_after(1.0):
                try:
                    async with stream:
                        await stream.send_all(http1.response(503, b"too many connections\n"))
                except Exception:  # noqa: BLE001 - the client may be gone already
                    pass
            return
        self.connections += 1
        try:
            async with stream:
                await self._http(stream, client)
        except Exception as e:  # one connection's failure must never end the server
            if not _disconnected(e):
                log.exception("rpc connection failed", client=client)
        finally:
            self.connections -= 1

    async def _http(self, stream: trio.SocketStream, client: str) -> None:
        buf = bytearray()
        with trio.move_on_after(self.read_timeout) as scope:
            while (end := http1.head_end(buf)) < 0:
                if len(buf) > MAX_HEAD:
                    await stream.send_all(http1.response(431, b"request head too large\n"))
                    return
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buf += chunk
        if scope.cancelled_caught:
            return
        if end > MAX_HEAD:  # the whole head came in one read
            await stream.send_all(http1.response(431, b"request head too large\n"))
            return
        try:
            req = http1.parse_head(bytes(buf[:end]))
        except http1.HttpError as e:
            await stream.send_all(http1.response(e.status, (e.detail + "\n").encode()))
            return
        if (req.header("upgrade") or "").lower() == "websocket":
            await self._websocket(stream, bytes(buf), client)
            return
        if req.method != "POST":
            body = b"JSON-RPC 2.0: POST a JSON body, or open a WebSocket\n"
            await stream.send_all(http1.response(405, body, headers=(("Allow", "POST"),)))
            return
        try:
            length = int(req.header("content-length") or "")
        except ValueError:
            await stream.send_all(http1.response(411, b"Content-Length required\n"))
            return
        if length > self.max_request_bytes or length < 0:
            await stream.send_all(http1.response(413, b"request body too large\n"))
            await _linger(stream, self.max_request_bytes)
            return
        body = bytes(buf[end:])
        with trio.move_on_after(self.read_timeout):
            while len(body) < length:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                body += chunk
        if len(body) < length:
            return
        if not self.limiter.allow(client):
            out = json.dumps(_error(None, RATE_LIMITED, "rate limit exceeded")).encode()
            await stream.send_all(http1.response(429, out, "application/json"))
            return
        answer = await self.dispatcher.handle(body[:length], Session(client))
        await stream.send_all(http1.response(200, answer or b"", "application/json"))

    async def _websocket(self, stream: trio.SocketStream, head: bytes, client: str) -> None:
        async with trio.open_nursery() as nursery:
            req = await trio_websocket.wrap_server_stream(
                nursery,
                _Replay(stream, head),
                message_queue_size=16,
                max_message_size=self.max_request_bytes,
            )
            ws = await req.accept()
            send_lock = trio.Lock()

            async def send(obj: dict[str, Any]) -> None:
                async with send_lock:
                    await ws.send_message(json.dumps(obj))

            session = Session(client, send)
            # A connection that sends no complete message for a while (idle, or stuck in a
            # partial frame) is closed unless it holds subscriptions, whose notifications
            # are its purpose; a dead subscriber is found when a send fails.
            idle = 3 * self.read_timeout
            try:
                while True:
                    msg = None
                    with trio.move_on_after(math.inf if session.subscriptions else idle):
                        try:
                            msg = await ws.get_message()
                        except trio_websocket.ConnectionClosed:
                            break
                    if msg is None:
                        with trio.move_on_after(0.5):
                            await ws.aclose(code=1001, reason="idle")
                        break
                    data = msg.encode() if isinstance(msg, str) else msg
                    if not self.limiter.allow(client):
                        out: bytes | None = json.dumps(
                            _error(None, RATE_LIMITED, "rate limit exceeded")
                        ).encode()
                    else:
                        out = await self.dispatcher.handle(data, session)
                    if out is not None:
                        try:
                            async with send_lock:
                                await ws.send_message(out.decode())
                        except trio_websocket.ConnectionClosed:
                            break
            finally:
                if self.on_close is not None:
                    self.on_close(session)
                nursery.cancel_scope.cancel()

"""Target `http`: the RPC server's HTTP and WebSocket layer under malformed traffic.

A real `RpcServer` (the validator's methods over the `rpc` target's store) listens on
127.0.0.1, port 0, in a thread of its own, with small limits (64 KiB bodies, 0.5 s read
timeout) so that limits are reached quickly. Each case opens a TCP connection and
sends one of: request lines with odd methods, targets, versions and separators; many,
huge or malformed headers; Content-Length edge values (negative, signed, underscored,
huge, repeated, conflicting, missing); chunked bodies of garbage; bodies shorter or
longer than declared; pipelined requests; WebSocket upgrades with missing or wrong
headers, or a real handshake followed by random or over-size frames; raw bytes; and
slowloris-style partial requests that are left open.

Property: each connection gets no answer (closed) or an HTTP/1.1 answer whose status is
101, 200 (with a JSON body, or empty for notifications) or one of the documented
4xx/505 refusals — never a 5xx or a hang past the read timeout; after every case the
server still answers a good request correctly; and every partial request left open is
closed by the server within two read timeouts (checked for all of them as the run goes).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from typing import Any

import trio
from gexe.validator.rpc import RpcDispatcher, RpcServer

from .base import Finding, Target, must
from .rpc_target import ApiFixture
from .source import Recorder, Source

READ_TIMEOUT = 0.5
MAX_BODY = 64 * 1024
ALLOWED = {101, 200, 400, 405, 411, 413, 426, 429, 431, 505}
GOOD = b'{"jsonrpc":"2.0","id":42,"method":"program_ids","params":[]}'
MODES = (
    "valid",
    "request_line",
    "headers",
    "content_length",
    "chunked",
    "body",
    "pipelined",
    "websocket",
    "raw",
    "slow",
)
METHODS = ("POST", "GET", "PUT", "HEAD", "OPTIONS", "post", "P0ST", "", "POST POST", "\x00")
TARGETS = ("/", "*", "", "/x?y=1", "/" + "a" * 9000, "http://h/", "/\x7f", "%%")
VERSIONS = ("HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/0.9", "", "HTTP/1.1 x", "http/1.1")
LENGTHS = (
    "0",
    "1",
    "-1",
    "+5",
    "1_0",
    " 5",
    "5 ",
    "0x10",
    "65536",
    "65537",
    "99999999999999999999",
    "9" * 5000,
    "",
    "abc",
    "5, 5",
)


def _ws_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def _ws_frame(payload: bytes, opcode: int = 1, masked: bool = True, declared: int | None = None):
    n = len(payload) if declared is None else declared
    head = bytes([0x80 | opcode])
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + n.to_bytes(8, "big")
    if masked:
        key = os.urandom(4)
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


class _Errors(logging.Handler):
    """Error records the server logs (an exception it did not expect)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class HttpTarget(Target):
    name = "http"
    about = "RpcServer on 127.0.0.1:0: malformed HTTP/WS → 4xx or close; keeps serving"

    # ---------------------------------------------------------------- server

    def open(self) -> None:
        self.fx = ApiFixture()
        self._port: int | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._error: BaseException | None = None
        self._slow: list[tuple[socket.socket, float]] = []
        self.slow_checked = 0
        self._errors = _Errors()
        logging.getLogger("gexe").addHandler(self._errors)
        started = threading.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as nursery:
                    api = self.fx.api(nursery)
                    server = RpcServer(
                        RpcDispatcher(api.methods()),
                        max_request_bytes=MAX_BODY,
                        rate_limit=0,
                        read_timeout=READ_TIMEOUT,
                        on_close=api.close_session,
                    )
                    self._port = await nursery.start(server.serve, "127.0.0.1", 0)
                    started.set()

        def thread() -> None:
            try:
                trio.run(main)
            except BaseException as e:  # the server died: every later case reports it
                self._error = e
            finally:
                started.set()

        self._thread = threading.Thread(target=thread, name="fuzz-rpc-server", daemon=True)
        self._thread.start()
        started.wait(30)
        if self._port is None:
            raise RuntimeError(f"the RPC server did not start: {self._error!r}")

    def close(self) -> None:
        try:
            self._sweep(final=True)
        finally:
            if self._token is not None and self._scope is not None and self._thread.is_alive():
                trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
            self._thread.join(10)
            self.fx.close()
            logging.getLogger("gexe").removeHandler(self._errors)

    # ---------------------------------------------------------------- cases

    def generate(self, src: Source) -> tuple[str, bytes, bool]:
        """(mode, bytes to send, whether to half-close after sending)."""
        mode = src.pick(MODES)
        body = src.pick((GOOD, b"", b"{", b"[" * 100, src.bytes(64), b"x" * (MAX_BODY + 1)))
        if mode == "valid":
            return mode, self._request("POST", "/", "HTTP/1.1", [], GOOD), src.bool()
        if mode == "request_line":
            line = " ".join((src.pick(METHODS), src.pick(TARGETS), src.pick(VERSIONS)))
            if src.bool():
                line = line.replace(" ", src.pick(("  ", "\t", "")), 1)
            eol = src.pick(("\r\n", "\n", "\r"))
            return (
                mode,
                (line + eol + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1", "replace")
                + body,
                True,
            )
        if mode == "headers":
            headers = []
            for _ in range(src.pick((1, 2, 10, 200))):
                name = src.pick(("X-A", "x-a", " X", "X ", "", ":", "Host", "Upgrade", "A" * 9000))
                value = src.pick(("1", "", " ", "websocket", "v" * 20000, "\x00", "é"))
                headers.append(name + src.pick((":", ": ", "", "::")) + value)
            return mode, self._request("POST", "/", "HTTP/1.1", headers, body), True
        if mode == "content_length":
            n = src.int(1, 2)
            headers = [f"Content-Length: {src.pick(LENGTHS)}" for _ in range(n)]
            if src.bool():
                headers.append("Transfer-Encoding: chunked")
            return mode, self._request("POST", "/", "HTTP/1.1", headers, body, auto=False), True
        if mode == "chunked":
            chunks = src.pick(
                (b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"FFFFFFFFFFFFFFFF\r\n", src.bytes(80))
            )
            head = ["Transfer-Encoding: chunked"]
            if src.bool():
                head.append(f"Content-Length: {len(chunks)}")
            return mode, self._request("POST", "/", "HTTP/1.1", head, chunks, auto=False), True
        if mode == "body":
            declared = src.pick((0, 1, len(GOOD) - 1, len(GOOD), len(GOOD) + 10, MAX_BODY))
            data = GOOD + src.bytes(16) if src.bool() else GOOD[: src.int(0, len(GOOD))]
            head = [f"Content-Length: {declared}"]
            return mode, self._request("POST", "/", "HTTP/1.1", head, data, auto=False), True
        if mode == "pipelined":
            one = self._request("POST", "/", "HTTP/1.1", [], GOOD)
            return mode, one * src.int(2, 5) + src.bytes(20), src.bool()
        if mode == "websocket":
            return mode, self._websocket(src), True
        if mode == "slow":
            full = self._request("POST", "/", "HTTP/1.1", [], GOOD)
            cut = src.int(0, len(full) - 1)  # never the whole request
            return mode, full[:cut], False
        return mode, src.rest(), True  # left open it would be a "slow" case

    @staticmethod
    def _request(
        method: str,
        target: str,
        version: str,
        headers: list[str],
        body: bytes,
        auto: bool = True,
    ) -> bytes:
        lines = [f"{method} {target} {version}", *headers]
        if auto:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body

    def _websocket(self, src: Source) -> bytes:
        headers = {
            "Host": "127.0.0.1",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": _ws_key(),
            "Sec-WebSocket-Version": "13",
        }
        if src.bool():  # break the handshake
            k = src.pick(sorted(headers))
            if src.bool():
                del headers[k]
            else:
                headers[k] = src.pick(("", "x", "12", "websocket, h2", "=" * 30))
        head = self._request("GET", "/", "HTTP/1.1", [f"{k}: {v}" for k, v in headers.items()], b"")
        head = head.replace(b"Content-Length: 0\r\n", b"")
        frames = src.pick(
            (
                _ws_frame(GOOD),
                _ws_frame(GOOD, masked=False),  # clients must mask
                _ws_frame(b"x" * (MAX_BODY + 10)),  # over the message limit
                _ws_frame(b"", declared=2**63 - 1)[:14],  # absurd declared length
                _ws_frame(b"\xff\xfe", opcode=1),  # text that is not UTF-8
                _ws_frame(b"ab", opcode=0x3),  # reserved opcode
                _ws_frame(b"[" * 50_000),
                src.bytes(64),
            )
        )
        return head + frames

    def seeds(self) -> list[bytes]:
        return [Recorder().pick(MODES, m).done() for m in MODES]

    def show(self, case: Any) -> str:
        mode, data, shut = case
        return f"mode={mode} half_close={shut} data={data[:2000]!r} ({len(data)} bytes)"

    # ---------------------------------------------------------------- property

    def check(self, case: tuple[str, bytes, bool]) -> None:
        mode, data, half_close = case
        self._alive()
        if mode == "slow":
            s = self._connect()
            self._send(s, data)
            self._slow.append((s, time.monotonic()))
            self._sweep()
        else:
            answer = self._exchange(data, half_close)
            self._judge(answer)
        good = self._exchange(self._request("POST", "/", "HTTP/1.1", [], GOOD), True)
        must(good.startswith(b"HTTP/1.1 200 "), f"the next good request failed: {good[:200]!r}")
        reply = json.loads(good.split(b"\r\n\r\n", 1)[1])
        must(reply.get("id") == 42 and isinstance(reply.get("result"), list), f"bad: {reply}")
        if self._errors.records:
            r = self._errors.records.pop()
            self._errors.records.clear()
            raise Finding(f"the server logged an error: {r.getMessage()} {r.exc_info!r}")

    def _alive(self) -> None:
        if self._error is not None or not self._thread.is_alive():
            raise Finding(f"the RPC server died: {self._error!r}")

    def _connect(self) -> socket.socket:
        assert self._port is not None
        return socket.create_connection(("127.0.0.1", self._port), timeout=10)

    @staticmethod
    def _send(s: socket.socket, data: bytes) -> None:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused early: judged by what it answered

    def _exchange(self, data: bytes, half_close: bool) -> bytes:
        s = self._connect()
        try:
            self._send(s, data)
            if half_close:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            out = b""
            deadline = time.monotonic() + 4 * READ_TIMEOUT + 5
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                except TimeoutError:
                    raise Finding("the server neither answered nor closed") from None
                if not chunk:
                    break
                out += chunk
                if out.startswith(b"HTTP/1.1 101 "):
                    break  # a WebSocket: the rest are frames
            else:
                raise Finding("the connection stayed open past every timeout")
            return out
        finally:
            s.close()

    def _judge(self, answer: bytes) -> None:
        if not answer:
            return
        must(answer.startswith(b"HTTP/1.1 "), f"not an HTTP answer: {answer[:100]!r}")
        status = int(answer[9:12])
        must(status in ALLOWED, f"status {status}: {answer[:300]!r}")
        if status == 200:
            body = answer.split(b"\r\n\r\n", 1)[1]
            if body:
                json.loads(body)

    def _sweep(self, final: bool = False) -> None:
        """Every partial request left open must have been closed by the server."""
        limit = 2 * READ_TIMEOUT + 2.0
        if final and self._slow:
            youngest = max(opened for _, opened in self._slow)
            time.sleep(max(0.0, youngest + limit - time.monotonic()))
        keep = []
        for s, opened in self._slow:
            age = time.monotonic() - opened
            if age < limit:
                keep.append((s, opened))
                continue
            s.settimeout(0.5)
            closed = False
            try:
                while chunk := s.recv(65536):  # an answer before the close is fine
                    del chunk
                closed = True
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                pass
            s.close()
            self.slow_checked += 1
            must(closed, f"a partial request was still open after {age:.1f} s")
        self._slow = keep

"""Fault injectors: proxies that sit between a validator and what it talks to.

`RpcProxy` — an HTTP/1.1 JSON-RPC proxy in front of anvil (a validator's `[ethereum]
rpc_url` points at it). Normally it forwards every request on a kept-alive upstream
connection. A fault (`set_fault`) applies to each request with a probability until a
deadline:

| mode | what the validator sees |
|---|---|
| `cut` | every open connection is reset and new ones are closed on accept (the provider is gone) |
| `drop` | the connection closes without an answer |
| `http_error` | HTTP 503 / 429 / 502 with a text body |
| `rpc_error` | HTTP 200 with a JSON-RPC error per call (-32603 / -32000 / -32005) |
| `hang` | no answer for `hang_seconds`, then the connection closes (a timeout when it is longer than the client's) |
| `slow` | the answer, `hang_seconds` late |
| `truncate` | the request IS forwarded (a transaction is sent), the answer is cut: half the body then a close (Content-Length says more), or a short body with a matching Content-Length (invalid JSON) |

It runs in daemon threads of the calling process, binds 127.0.0.1 port 0, and every wait
inside it is bounded; `close()` stops it. Counters (`stats`) say what was injected.

Why no proxy on the libp2p links: a TCP proxy can sit on a validator's bootnode address,
but libp2p's identify protocol replaces the peerstore's addresses with the ones the peer
reports itself (py-libp2p 0.8.1 `identity/update.py`), so every redial after a cut goes
straight to the peer and the proxy drops out of the path. Gossip partitions are therefore
made by freezing processes (SIGSTOP/SIGCONT: a black hole, no FIN or RST, what was sent
meanwhile is delivered late), and duplicates by a gossip peer that re-publishes what it
hears (`faults.replayer`).
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

RPC_MODES = ("cut", "drop", "http_error", "rpc_error", "hang", "slow", "truncate")


@dataclass
class Fault:
    mode: str
    prob: float
    until: float  # time.monotonic() deadline
    hang_seconds: float = 3.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, proxy: RpcProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.proxy._cutting():
            self.proxy.stats["cut_refused"] += 1
            _reset(request)
            return
        with self.proxy._lock:
            self.proxy._conns.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.proxy.stats["handler_error"] += 1  # a connection we reset on purpose, mostly

    def shutdown_request(self, request: Any) -> None:
        with self.proxy._lock:
            self.proxy._conns.discard(request)
        super().shutdown_request(request)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset'. The read side is
    shut down first so a thread blocked reading the socket wakes up."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._send(405, b"POST only", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        proxy = self.server.proxy
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        fault = proxy._pick()
        mode = fault.mode if fault else "pass"
        proxy.stats[mode] += 1
        if mode == "cut":  # raced with a cut that started after accept
            self.close_connection = True
            _reset(self.connection)
            return
        if mode == "drop":
            self.close_connection = True
            _reset(self.connection)
            return
        if mode == "http_error":
            status = proxy.rng_choice((503, 429, 502))
            self._send(status, b"chaos: upstream unavailable", "text/plain")
            return
        if mode == "rpc_error":
            self._send(200, _rpc_errors(body, proxy.rng_choice(_RPC_ERRORS)), "application/json")
            return
        if mode == "hang":
            proxy._sleep(fault.hang_seconds if fault else 1.0)
            self.close_connection = True
            _reset(self.connection)
            return
        if mode == "slow":
            proxy._sleep(fault.hang_seconds if fault else 1.0)
        try:
            status, data = self._forward(body)
        except (OSError, http.client.HTTPException):
            proxy.stats["upstream_error"] += 1
            self.close_connection = True
            _reset(self.connection)
            return
        if mode == "truncate" and len(data) > 1:
            cut = max(1, len(data) // 2)
            if proxy.rng_choice((True, False)):  # promise more than is sent, then close
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:cut])
                self.wfile.flush()
                self.close_connection = True
                _reset(self.connection)
            else:  # a well-formed HTTP answer whose JSON is cut short
                self._send(status, data[:cut], "application/json")
            return
        self._send(status, data, "application/json")

    def _send(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        proxy = self.server.proxy
        conn: http.client.HTTPConnection | None = getattr(self, "_upstream", None)
        for attempt in range(2):
            if conn is None:
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
                self._upstream = conn
            try:
                conn.request("POST", "/", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                self._upstream = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass  # the socket was reset on purpose
        finally:
            conn = getattr(self, "_upstream", None)
            if conn is not None:
                conn.close()


_RPC_ERRORS = (
    (-32603, "chaos: internal error"),
    (-32000, "chaos: header not found"),
    (-32005, "chaos: limit exceeded"),
)


def _rpc_errors(body: bytes, err: tuple[int, str]) -> bytes:
    code, message = err
    try:
        req = json.loads(body)
    except ValueError:
        req = None
    one = {"code": code, "message": message}
    if isinstance(req, list):
        out: Any = [
            {"jsonrpc": "2.0", "id": r.get("id") if isinstance(r, dict) else None, "error": one}
            for r in req
        ]
    else:
        out = {"jsonrpc": "2.0", "id": req.get("id") if isinstance(req, dict) else None}
        out["error"] = one
    return json.dumps(out).encode()


class RpcProxy:
    """A fault-injecting JSON-RPC proxy in front of `upstream` (an http://host:port URL)."""

    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        u = urlparse(upstream)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.rng = random.Random(seed)
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._fault: Fault | None = None
        self._stop = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def rng_choice(self, seq: Any) -> Any:
        with self._lock:
            return self.rng.choice(seq)

    def set_fault(
        self, mode: str, *, seconds: float, prob: float = 1.0, hang_seconds: float = 3.0
    ) -> None:
        """Inject `mode` into each request with probability `prob` for `seconds`."""
        if mode not in RPC_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {', '.join(RPC_MODES)}")
        with self._lock:
            self._fault = Fault(mode, prob, time.monotonic() + seconds, hang_seconds)
            conns = list(self._conns) if mode == "cut" else []
        self.stats[f"set_{mode}"] += 1
        for c in conns:  # every open connection is reset at once
            self.stats["cut_reset"] += 1
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def clear(self) -> None:
        with self._lock:
            self._fault = None

    def _active(self) -> Fault | None:
        f = self._fault
        if f is not None and time.monotonic() >= f.until:
            with self._lock:
                if self._fault is f:
                    self._fault = None
            return None
        return f

    def _cutting(self) -> bool:
        f = self._active()
        return f is not None and f.mode == "cut"

    def _pick(self) -> Fault | None:
        f = self._active()
        if f is None:
            return None
        with self._lock:
            hit = self.rng.random() < f.prob
        return f if hit else None

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(min(seconds, 30.0))

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            _reset(c)
        self._thread.join(timeout=5)

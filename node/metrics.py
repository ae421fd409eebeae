"""Prometheus metrics: a small registry (counters, gauges, histograms with labels), the
text exposition format 0.0.4, and a trio HTTP server for `GET /metrics`.

    reg = Registry()
    blocks = reg.counter("gexe_blocks_processed_total", "Blocks processed", ("status",))
    blocks.labels(status="ok").inc()
    commit = reg.histogram("gexe_store_commit_seconds", "Store commit time")
    with commit.time(): ...
    port = await nursery.start(serve_metrics, reg, "127.0.0.1", 0)

Invariants:
- Updates are thread-safe (the block processor's threads may record metrics).
- Exposition is deterministic: metrics in registration order, series sorted by labels.
- The server answers one request per connection and closes it; request heads are
  bounded (`http1.MAX_HEAD_BYTES`) and must arrive within `read_timeout`; anything but
  `GET`/`HEAD /metrics` gets 404/405/400. Cancelling its task stops it.

When modifying this part: metric names are an operator-facing API (dashboards and
alerts use them) — rename only with a note in the changelog.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import trio

from . import http1

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def format_value(v: float) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _escape_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        for lab in labels:
            if not _LABEL.fullmatch(lab) or lab.startswith("__") or lab in self._reserved():
                raise ValueError(f"invalid label name {lab!r} for metric {name}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate label names for metric {name}")
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], object] = {}
        if not self.label_names:
            self._children[()] = self._new_child()

    @staticmethod
    def _reserved() -> tuple[str, ...]:
        return ()

    def _new_child(self) -> object:  # pragma: no cover - abstract
        raise NotImplementedError

    def labels(self, *values: str, **kw: str):  # type: ignore[no-untyped-def]
        """The series for these label values (positional or by name), created on first use."""
        if kw:
            if values or set(kw) != set(self.label_names):
                raise ValueError(f"{self.name} takes labels {self.label_names}")
            values = tuple(kw[n] for n in self.label_names)
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, self._new_child())
        return child

    def _only(self):  # type: ignore[no-untyped-def]
        if self.label_names:
            raise ValueError(f"{self.name} has labels {self.label_names}; use .labels(...)")
        return self._children[()]

    def _series(self) -> list[tuple[tuple[str, ...], object]]:
        with self._lock:
            return sorted(self._children.items())

    def expose(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for values, child in self._series():
            yield from self._lines(values, child)

    def _lines(self, values: tuple[str, ...], child: object) -> Iterator[str]:
        assert isinstance(child, _Value)
        yield f"{self.name}{_labels(self.label_names, values)} {format_value(child.get())}"


class _Value:
    __slots__ = ("_v", "_lock", "_fn")

    def __init__(self) -> None:
        self._v: float = 0
        self._lock = threading.Lock()
        self._fn: Callable[[], float] | None = None

    def get(self) -> float:
        fn = self._fn
        return fn() if fn is not None else self._v


class CounterChild(_Value):
    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self._v += amount


class GaugeChild(_Value):
    __slots__ = ()

    def set(self, value: float) -> None:
        with self._lock:
            self._v = value

    def inc(self, amount: float = 1) -> None:
        with self._lock:
            self._v += amount

    def dec(self, amount: float = 1) -> None:
        with self._lock:
            self._v -= amount

    def set_function(self, fn: Callable[[], float]) -> None:
        """Read the value from `fn` at exposition time (must be cheap and thread-safe)."""
        self._fn = fn


class HistogramChild:
    __slots__ = ("_bounds", "_counts", "_sum", "_count", "_lock")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._counts = [0] * len(bounds)
        self._sum: float = 0
        self._count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            for i, b in enumerate(self._bounds):
                if value <= b:
                    self._counts[i] += 1
                    break
            self._sum += value
            self._count += 1

    @contextmanager
    def time(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - t0)

    def snapshot(self) -> tuple[list[int], float, int]:
        """Cumulative bucket counts, sum, count."""
        with self._lock:
            counts, total, n = list(self._counts), self._sum, self._count
        acc = 0
        cumulative = []
        for c in counts:
            acc += c
            cumulative.append(acc)
        return cumulative, total, n


class Counter(_Metric):
    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1) -> None:
        self._only().inc(amount)

    def get(self) -> float:
        return self._only().get()


class Gauge(_Metric):
    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self._only().set(value)

    def inc(self, amount: float = 1) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1) -> None:
        self._only().dec(amount)

    def set_function(self, fn: Callable[[], float]) -> None:
        self._only().set_function(fn)

    def get(self) -> float:
        return self._only().get()


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"histogram {name} needs strictly increasing finite buckets")
        self.buckets = bounds
        super().__init__(name, help, labels)

    @staticmethod
    def _reserved() -> tuple[str, ...]:
        return ("le",)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.buckets)

    def observe(self, value: float) -> None:
        self._only().observe(value)

    def time(self):  # type: ignore[no-untyped-def]
        return self._only().time()

    def _lines(self, values: tuple[str, ...], child: object) -> Iterator[str]:
        assert isinstance(child, HistogramChild)
        cumulative, total, n = child.snapshot()
        names = self.label_names
        for bound, c in zip(self.buckets, cumulative, strict=True):
            le = f'le="{format_value(bound)}"'
            yield f"{self.name}_bucket{_labels(names, values, le)} {c}"
        inf = 'le="+Inf"'
        yield f"{self.name}_bucket{_labels(names, values, inf)} {n}"
        yield f"{self.name}_sum{_labels(names, values)} {format_value(total)}"
        yield f"{self.name}_count{_labels(names, values)} {n}"


class Registry:
    """Named metrics in registration order; `expose()` renders them all."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def register(self, metric: _Metric) -> _Metric:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        m = Counter(name, help, labels)
        self.register(m)
        return m

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        m = Gauge(name, help, labels)
        self.register(m)
        return m

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        m = Histogram(name, help, labels, buckets)
        self.register(m)
        return m

    def get(self, name: str) -> _Metric | None:
        return self._metrics.get(name)

    def expose(self) -> str:
        with self._lock:
            metrics = list(self._metrics.values())
        lines = [line for m in metrics for line in m.expose()]
        return "\n".join(lines) + "\n" if lines else ""


# ------------------------------------------------------------------ HTTP server


async def _read_head(stream: trio.abc.ReceiveStream, limit: int) -> bytes | None:
    buf = bytearray()
    while True:
        end = http1.head_end(buf)
        if end >= 0:
            return bytes(buf[:end])
        if len(buf) > limit:
            raise http1.HttpError(431, "request head too large")
        chunk = await stream.receive_some(4096)
        if not chunk:
            return None
        buf += chunk


def handle_request(registry: Registry, req: http1.Request) -> bytes:
    """The response bytes for one parsed request (sans-IO; used by the server)."""
    if req.path != "/metrics":
        return http1.response(
            404, b"not found; metrics are at /metrics\n", head_only=req.method == "HEAD"
        )
    if req.method not in ("GET", "HEAD"):
        return http1.response(405, b"only GET\n", headers=(("Allow", "GET, HEAD"),))
    return http1.response(
        200, registry.expose().encode("utf-8"), CONTENT_TYPE, head_only=req.method == "HEAD"
    )


async def _serve_one(
    registry: Registry, stream: trio.SocketStream, limit: int, read_timeout: float
) -> None:
    async with stream:
        try:
            with trio.move_on_after(read_timeout):
                try:
                    head = await _read_head(stream, limit)
                    if head is None:
                        return
                    out = handle_request(registry, http1.parse_head(head))
                    await stream.send_all(out)
                except http1.HttpError as e:
                    await stream.send_all(http1.response(e.status, (e.detail + "\n").encode()))
                    await _linger(stream, limit)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def _linger(stream: trio.SocketStream, limit: int) -> None:
    """Half-close and discard what the client is still sending (bounded), so that closing
    does not reset the connection before the client has read our error response."""
    await stream.send_eof()
    drained = 0
    with trio.move_on_after(1.0):
        while drained < 64 * limit and (chunk := await stream.receive_some(65536)):
            drained += len(chunk)


async def serve_metrics(
    registry: Registry,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_request_bytes: int = http1.MAX_HEAD_BYTES,
    read_timeout: float = 10.0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `GET /metrics` until cancelled. Use `port = await nursery.start(serve_metrics,
    registry, host, port)` to learn the bound port (useful with port 0)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]

    async def handler(stream: trio.SocketStream) -> None:
        await _serve_one(registry, stream, max_request_bytes, read_timeout)

    try:
        async with trio.open_nursery() as nursery:
            task_status.started(bound)
            await trio.serve_listeners(handler, listeners, handler_nursery=nursery)
    finally:
        for listener in listeners:
            with trio.CancelScope(shield=True):
                await listener.aclose()

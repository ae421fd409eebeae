"""Prometheus registry, text exposition 0.0.4, and the trio `/metrics` server."""

from __future__ import annotations

import threading

import httpx
import pytest
import trio
from gexe.node import http1
from gexe.node.metrics import CONTENT_TYPE, Registry, serve_metrics


def sample_registry() -> Registry:
    reg = Registry()
    c = reg.counter("gexe_blocks_processed_total", "Blocks processed.", ("status",))
    c.labels(status="ok").inc()
    c.labels("ok").inc(2)
    c.labels(status='we"ird\\\n').inc()
    g = reg.gauge("gexe_head_number", "Head block number.\nSecond line.")
    g.set(42)
    h = reg.histogram("gexe_commit_seconds", "Commit time.", buckets=(0.1, 1.0))
    for v in (0.05, 0.5, 0.5, 3.0):
        h.observe(v)
    reg.gauge("gexe_store_bytes", "Store size.").set_function(lambda: 1.5e9)
    reg.counter("gexe_unused_total", "Never touched.", ("peer",))
    return reg


EXPECTED = """\
# HELP gexe_blocks_processed_total Blocks processed.
# TYPE gexe_blocks_processed_total counter
gexe_blocks_processed_total{status="ok"} 3
gexe_blocks_processed_total{status="we\\"ird\\\\\\n"} 1
# HELP gexe_head_number Head block number.\\nSecond line.
# TYPE gexe_head_number gauge
gexe_head_number 42
# HELP gexe_commit_seconds Commit time.
# TYPE gexe_commit_seconds histogram
gexe_commit_seconds_bucket{le="0.1"} 1
gexe_commit_seconds_bucket{le="1.0"} 3
gexe_commit_seconds_bucket{le="+Inf"} 4
gexe_commit_seconds_sum 4.05
gexe_commit_seconds_count 4
# HELP gexe_store_bytes Store size.
# TYPE gexe_store_bytes gauge
gexe_store_bytes 1500000000.0
# HELP gexe_unused_total Never touched.
# TYPE gexe_unused_total counter
"""


def test_exposition_format():
    assert sample_registry().expose() == EXPECTED


def test_misuse_is_rejected():
    reg = Registry()
    c = reg.counter("a_total", "a", ("x",))
    with pytest.raises(ValueError):
        c.inc()  # labelled metric needs .labels()
    with pytest.raises(ValueError):
        c.labels(y="1")
    with pytest.raises(ValueError):
        c.labels(x="1").inc(-1)
    with pytest.raises(ValueError):
        reg.counter("a_total", "again")
    with pytest.raises(ValueError):
        reg.gauge("bad-name", "x")
    with pytest.raises(ValueError):
        reg.histogram("h", "x", ("le",))
    with pytest.raises(ValueError):
        reg.histogram("h2", "x", buckets=(1.0, 0.5))


def test_thread_safe_updates():
    reg = Registry()
    c = reg.counter("n_total", "n", ("t",))
    h = reg.histogram("lat", "l")

    def work() -> None:
        for _ in range(5000):
            c.labels(t="a").inc()
            h.observe(0.01)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.labels(t="a").get() == 20000
    assert "lat_count 20000" in reg.expose()


def test_http_head_parser():
    req = http1.parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n")
    assert (req.method, req.path, req.header("host")) == ("GET", "/metrics", "a")
    for bad in (
        b"GARBAGE\r\n\r\n",
        b"GET /x HTTP/2\r\n\r\n",
        b"GET /x HTTP/1.1\r\nno colon\r\n\r\n",
    ):
        with pytest.raises(http1.HttpError):
            http1.parse_head(bad)


async def raw_request(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        chunks = []
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                chunks.append(chunk)
    return b"".join(chunks)


async def test_server_serves_metrics_and_404(nursery):
    reg = sample_registry()
    port = await nursery.start(serve_metrics, reg, "127.0.0.1", 0)
    assert port > 0
    resp = await raw_request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert f"Content-Type: {CONTENT_TYPE}".encode() in head
    assert b"Connection: close" in head
    assert body.decode() == EXPECTED
    assert (await raw_request(port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
    assert (await raw_request(port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405")
    assert (await raw_request(port, b"nonsense\r\n\r\n")).startswith(b"HTTP/1.1 400")
    huge = b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n"
    assert (await raw_request(port, huge)).startswith(b"HTTP/1.1 431")


async def test_server_with_httpx_client_and_cancellation():
    reg = Registry()
    reg.counter("hits_total", "hits").inc(7)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_metrics, reg, "127.0.0.1", 0)
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200 and "hits_total 7" in r.text
        assert r.headers["content-type"] == CONTENT_TYPE
        nursery.cancel_scope.cancel()
    with pytest.raises(OSError):  # the listener is gone
        await trio.open_tcp_stream("127.0.0.1", port)


async def test_slow_client_is_dropped(nursery):
    port = await nursery.start(
        lambda task_status: serve_metrics(
            Registry(), "127.0.0.1", 0, read_timeout=0.2, task_status=task_status
        )
    )
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /metr")  # never finishes the head
        with trio.fail_after(5):
            assert await stream.receive_some(100) == b""  # server closed it

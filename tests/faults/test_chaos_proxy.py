"""The RPC proxy the fault suite puts between validators and anvil (`faults.chaos`): each
fault mode shows up in the validators' own client (`gexe.contracts.EthClient`) as the
failure it stands for, the proxy forwards faithfully otherwise, and a fault ends on time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import trio
from gexe.contracts import Anvil, EthClient, RpcError, start_anvil

from faults.chaos import RpcProxy


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    node = start_anvil(accounts=2)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def proxy(anvil: Anvil) -> Iterator[RpcProxy]:
    p = RpcProxy(anvil.url, seed=1)
    try:
        yield p
    finally:
        p.close()


def ask(url: str, timeout: float = 2.0) -> object:
    async def go() -> object:
        async with EthClient(url, timeout=timeout) as c:
            try:
                return await c.block_number()
            except Exception as e:  # the failure is the result
                return e

    return trio.run(go)


def test_passes_through_and_batches(proxy: RpcProxy, anvil: Anvil) -> None:
    assert ask(proxy.url) == ask(anvil.url)

    async def batch() -> list:
        async with EthClient(proxy.url) as c:
            return await c.batch([("eth_chainId", []), ("eth_blockNumber", [])])

    assert len(trio.run(batch)) == 2


@pytest.mark.parametrize(
    ("mode", "kinds"),
    [
        ("cut", (httpx.TransportError,)),
        ("drop", (httpx.TransportError,)),
        ("http_error", (httpx.HTTPStatusError,)),
        ("rpc_error", (RpcError,)),
        ("hang", (httpx.TimeoutException,)),
        ("truncate", (httpx.TransportError, json.JSONDecodeError)),
    ],
)
def test_each_fault_reaches_the_client(proxy: RpcProxy, mode: str, kinds: tuple) -> None:
    proxy.set_fault(mode, seconds=30, hang_seconds=3.0)
    got = ask(proxy.url, timeout=1.0)
    assert isinstance(got, kinds), (mode, got)
    assert proxy.stats[mode] + proxy.stats["cut_refused"] >= 1
    proxy.clear()
    assert isinstance(ask(proxy.url), int)


def test_slow_answers_arrive_and_faults_end_on_time(proxy: RpcProxy) -> None:
    proxy.set_fault("slow", seconds=30, hang_seconds=0.5)
    t0 = time.monotonic()
    assert isinstance(ask(proxy.url), int) and time.monotonic() - t0 >= 0.5
    proxy.set_fault("rpc_error", seconds=0.3)
    assert isinstance(ask(proxy.url), RpcError)
    time.sleep(0.4)
    assert isinstance(ask(proxy.url), int)
    proxy.set_fault("drop", seconds=30, prob=0.0)  # probability 0: never injected
    assert all(isinstance(ask(proxy.url), int) for _ in range(5))

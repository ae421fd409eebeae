"""gexe.client against a dev network with the native path: both ways of calling a program
(injected, pre-confirmed; through Ethereum, answered on chain), promises checked against
the Router's validator set, state queries, and the typed errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_utils import keccak

from gexe.client import (
    Client,
    ClientError,
    EthereumClient,
    PromiseError,
    Receipt,
    Refused,
    verify_promises,
)
from gexe.devnet import DevNet, Examples


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNet]:
    d = DevNet(tmp_path_factory.mktemp("client") / "net", validators=4, native=True)
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def ex(net: DevNet) -> Examples:
    return net.setup_examples(names=("ping",), timeout=60)


def test_injected_then_on_chain_reply_matches_the_promise(net: DevNet, ex: Examples) -> None:
    eth = EthereumClient(net.url, net.deployment.router, net.user(4))
    with Client(net.procs[2].rpc_url, Account.create()) as c:
        r = c.send_injected(ex["ping"], b"PING", timeout=30)
        assert r.status == "preconfirmed" and r.reply_payload == b"PONG"
        chain_set = eth.validators()
        assert len(chain_set) == 4
        signers = c.verify(r, chain_set)
        assert 3 * sum(signers.values()) > 2 * sum(chain_set.values())
        # a promise set that does not reach 2/3 of the stake is refused
        few = Receipt.from_json({**r.raw, "promises": r.raw["promises"][:1]})
        with pytest.raises(PromiseError, match="2/3"):
            verify_promises(c.domain(), few, chain_set)
        # a promise over another reply does not verify as this one
        forged = Receipt.from_json({**r.raw, "reply": {**r.raw["reply"], "payload": "0x00"}})
        with pytest.raises(PromiseError):
            verify_promises(c.domain(), forged, chain_set)
        # the same program state on every validator once all ran the sequencer block
        state = c.state(ex["ping"])
        assert state["program_id"].lower().endswith(ex["ping"][2:].lower())
    # the reply committed on chain is the one promised
    answer = net.wait_answer(r.tx_hash, 60)
    assert keccak(answer.payload) == r.promise().reply_hash
    assert answer.code == r.promise().reply_code


def test_through_ethereum(net: DevNet, ex: Examples) -> None:
    eth = EthereumClient(net.url, net.deployment.router, net.user(5))
    reply = eth.send_message(ex["ping"], b"PING", timeout=60)
    assert reply.payload == b"PONG" and reply.block > reply.request_block
    with pytest.raises(ClientError, match="not a program"):
        eth.send_message(net.user(6).address, b"PING", timeout=5)


def test_typed_errors(net: DevNet) -> None:
    with Client(net.procs[1].rpc_url, Account.create()) as c:
        with pytest.raises(Refused, match="not a program"):
            c.send_injected(net.user(0).address, b"PING", timeout=5)
    with Client("http://127.0.0.1:9", Account.create(), timeout=2) as c:
        with pytest.raises(ClientError, match="cannot reach"):
            c.info()

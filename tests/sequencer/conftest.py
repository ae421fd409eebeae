"""Fixtures for the sequencer tests: one anvil per session with a gexe network (4
validators, equal stakes), an evm_snapshot / evm_revert around every test, and a harness
running fake validators, a chain-following host and Sequencer instances under trio."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

sys.path.insert(0, str(Path(__file__).parent))

from gexe.contracts import (  # noqa: E402
    Anvil,
    Deployment,
    NetworkConfig,
    deploy_network,
    start_anvil,
)

TEST_NET = NetworkConfig(era_length=3600, unbonding_period=7200, min_stake=1, max_validators=8)


@dataclass
class Chain:
    anvil: Anvil
    w3: Web3
    owner: LocalAccount
    validators: list[LocalAccount]  # in the Router's set order
    deployment: Deployment
    chain_id: int

    def rpc(self, method: str, *params: object) -> object:
        reply = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        assert "error" not in reply, reply
        return reply["result"]


@pytest.fixture(scope="session")
def chain_session() -> Iterator[Chain]:
    node = start_anvil()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
        owner = Account.from_key(node.private_keys[0])
        validators = [Account.create() for _ in range(4)]
        dep = deploy_network(w3, owner, validators, [100] * 4, TEST_NET)
        by_address = {v.address: v for v in validators}
        from gexe.contracts import Router

        ordered = [by_address[a] for a, _ in Router(w3, dep.router).validators()]
        yield Chain(node, w3, owner, ordered, dep, w3.eth.chain_id)
    finally:
        node.stop()


@pytest.fixture
def chain(chain_session: Chain) -> Iterator[Chain]:
    snapshot = chain_session.rpc("evm_snapshot")
    try:
        yield chain_session
    finally:
        chain_session.rpc("evm_setAutomine", True)
        chain_session.rpc("evm_revert", snapshot)
        # anvil does not revert its next-block base fee: put it back where the head says
        base = chain_session.w3.eth.get_block("latest")["baseFeePerGas"]
        chain_session.rpc("anvil_setNextBlockBaseFeePerGas", hex(base))

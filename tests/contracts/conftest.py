"""Fixtures for the contract tests: one anvil (from node_modules, port 0) per session, one
gexe network deployed on it, and an evm_snapshot / evm_revert around every test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

sys.path.insert(0, str(Path(__file__).parent))

from chainkit import STAKES, Net  # noqa: E402
from gexe.contracts import Anvil, NetworkConfig, deploy_network, start_anvil  # noqa: E402

# Eras that tests end with `evm_increaseTime` (Net.next_era), a short grace window, the
# shortest unbonding (2 eras), and slashing fractions that make the split visible.
TEST_CONFIG = NetworkConfig(
    era_length=3600,
    min_stake=1,
    max_validators=8,
    era_grace_blocks=8,
    unbonding_eras=2,
    slash_fraction=5000,
    reporter_fraction=2000,
)


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def w3(anvil: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 60}))


@pytest.fixture(scope="session")
def net_session(anvil: Anvil, w3: Web3) -> Net:
    owner = Account.from_key(anvil.private_keys[0])
    users = [Account.from_key(k) for k in anvil.private_keys[1:]]
    validators = [Account.create() for _ in STAKES]
    deployment = deploy_network(w3, owner, validators, list(STAKES), TEST_CONFIG)
    # Validators in election order (stake descending), i.e. the Router's set order.
    net = Net(w3, owner, users, validators, deployment, w3.eth.chain_id)
    net.code = net.validated_code()
    return net


@pytest.fixture
def net(net_session: Net, w3: Web3) -> Iterator[Net]:
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        yield net_session
    finally:
        w3.provider.make_request("evm_revert", [snapshot])

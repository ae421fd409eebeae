"""The anvil launcher: found in node_modules, port 0, stopped by PID."""

from __future__ import annotations

from pathlib import Path

import pytest
from gexe.contracts import AnvilNotFound, find_anvil, start_anvil
from web3 import Web3


def test_find_anvil_in_node_modules() -> None:
    path = find_anvil()
    assert path.is_file() and "node_modules" in path.parts and path.name.startswith("anvil")


def test_find_anvil_from_elsewhere_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEXE_ANVIL", raising=False)
    with pytest.raises(
        AnvilNotFound, match=r"^anvil not found: run `npm install` in the repo root$"
    ):
        find_anvil(tmp_path, include_package=False)
    # From an unrelated working directory the package's own checkout is still searched.
    assert find_anvil(tmp_path).is_file()


def test_start_with_chain_id_and_stop_by_pid() -> None:
    node = start_anvil(chain_id=4242, accounts=2, block_time=1)
    try:
        assert node.port > 0 and len(node.private_keys) == 2
        assert "--block-time" in node.process.args
        w3 = Web3(Web3.HTTPProvider(node.url))
        assert w3.eth.chain_id == 4242
    finally:
        code = node.stop()
    assert node.process.poll() is not None and code is not None
    node.stop()  # idempotent

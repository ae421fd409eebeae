"""Fixtures for the end-to-end tests: one dev network (`gexe.devnet.DevNet`: anvil with
1-second blocks, the contracts, 4 validator processes — validator 0 also the sequencer)
per test module, in a temporary directory, stopped by PID at the end of the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gexe.devnet import DevNet, Examples


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNet]:
    d = DevNet(tmp_path_factory.mktemp("devnet") / "net", validators=4, block_time=1)
    d.start()
    try:
        yield d
    finally:
        d.stop()
        for p in d.procs:  # stopped, and by us
            assert p.proc is not None and p.proc.poll() is not None


@pytest.fixture(scope="module")
def examples(net: DevNet) -> Examples:
    return net.setup_examples(timeout=60)

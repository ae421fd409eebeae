"""Fixtures for the runtime tests (helpers live in sandbox_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gexe.runtime import Sandbox  # noqa: E402
from sandbox_helpers import SMALL_GAS  # noqa: E402


@pytest.fixture
def sb():
    s = Sandbox()
    yield s
    s.close()


@pytest.fixture
def small_sb():
    s = Sandbox(max_gas_per_message=SMALL_GAS)
    yield s
    s.close()

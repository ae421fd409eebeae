"""tests/native: the native path of issue #8 (injected transactions, sequencer ordering,
pre-confirmations). Unit tests run without a network; `test_native_network.py` runs one
dev network (anvil, 4 validator processes, validator 0 the sequencer) for its module."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

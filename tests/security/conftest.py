"""tests/security: the security review of issue #9 as tests (RELIABILITY.md lists each
check with the test that shows it). Makes tests/validator (netkit) and the repository
root (the fuzz fixtures) importable."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
for p in (_ROOT, _ROOT / "tests" / "validator", _ROOT / "tests" / "runtime"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

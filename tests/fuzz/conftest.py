"""tests/fuzz: the CI-sized runs of the fuzz targets in `fuzz/` and the regression tests
that pin every crash the fuzzers found. Makes the repository root (for `fuzz`) and
tests/runtime (for its WAT helpers) importable."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
for p in (_ROOT, _ROOT / "tests" / "runtime"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

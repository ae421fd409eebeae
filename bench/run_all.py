"""Run every benchmark script in bench/ (files not starting with `_` or `run_`).

`--quick` is passed through; each script prints its JSON and writes bench/results/.
Exits non-zero if any benchmark failed, after running all of them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    extra = sys.argv[1:]
    scripts = sorted(p for p in HERE.glob("*.py") if not p.name.startswith(("_", "run_")))
    failed = []
    for script in scripts:
        t0 = time.perf_counter()
        print(f"== {script.name} {' '.join(extra)}", file=sys.stderr, flush=True)
        rc = subprocess.call([sys.executable, str(script), *extra], cwd=HERE.parent)
        print(f"== {script.name}: exit {rc} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        if rc:
            failed.append(script.name)
    if failed:
        print(f"failed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

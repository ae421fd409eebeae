"""Shared plumbing for benchmarks: argument parsing, progress lines, JSON output.

Every benchmark is a script `bench/NAME.py` whose `main()` returns a dict; `emit()` prints
it as one JSON object on stdout and writes `bench/results/NAME.json`. Progress goes to
stderr so stdout stays machine-readable. Benchmarks report ratios measured side by side
in one run; absolute times on shared machines are noise.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="short run (for make bench-quick)")
    return ap


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(name: str, result: dict) -> dict:
    result = {"bench": name, "python": platform.python_version(), **result}
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text, flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(text + "\n")
    return result

"""Soak-mode fuzz driver: run targets for N cases each and print JSON.

    python fuzz/run.py --target wasm --cases 10000
    python fuzz/run.py --target all --cases 10000          # what `make fuzz` runs

Engines: `atheris` (coverage-guided libFuzzer; each target in a child process, seeded
with the target's starting cases) when it is installed, else `hypothesis`. `--engine`
chooses. The JSON has, per target: cases run, crashes (each with its error, the case
and the file holding the input), seconds, and for atheris the coverage reached. Exit
status 1 when anything crashed. Crash inputs go to `--crashes` (default
fuzz/crashes/): replay one with `python fuzz/run.py --target NAME --replay FILE`
(atheris inputs; Hypothesis crashes are written as text with the case itself).

Every crash becomes a regression test in tests/fuzz/ (see RELIABILITY.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == ROOT / "fuzz":
    del sys.path[0]  # run as a script: its folder's modules must not shadow others
for _p in (ROOT / "tests" / "runtime", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

TARGETS = {
    "wasm": ("fuzz.wasm_target", "WasmTarget"),
    "syscalls": ("fuzz.syscall_target", "SyscallTarget"),
    "gossip": ("fuzz.gossip_target", "GossipTarget"),
    "rpc": ("fuzz.rpc_target", "RpcTarget"),
    "http": ("fuzz.http_target", "HttpTarget"),
}
DEFAULT_CRASHES = ROOT / "fuzz" / "crashes"


def make_target(name: str) -> Any:
    import importlib

    module, cls = TARGETS[name]
    return getattr(importlib.import_module(module), cls)()


def have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ hypothesis


def run_hypothesis(name: str, cases: int, seed: int | None, crashes: Path) -> dict[str, Any]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from fuzz.source import HypothesisSource

    target = make_target(name)
    count = 0
    last: Any = None

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
    )
    @given(st.data())
    def prop(data: Any) -> None:
        nonlocal count, last
        count += 1
        last = target.generate(HypothesisSource(data))
        target.check(last)

    if seed is not None:
        prop = hseed(seed)(prop)
    found: list[dict[str, Any]] = []
    t0 = time.monotonic()
    with target:
        try:
            prop()
        except Exception as e:  # hypothesis re-raises the (shrunk) failure last
            crashes.mkdir(parents=True, exist_ok=True)
            path = crashes / f"{name}-hypothesis-{int(time.time())}.txt"
            text = target.show(last)
            path.write_text(f"{text}\n\n{''.join(traceback.format_exception(e))}")
            found.append(
                {"error": f"{type(e).__name__}: {e}"[:2000], "case": text, "file": str(path)}
            )
    return {
        "target": name,
        "engine": "hypothesis",
        "cases": count,
        "crashes": len(found),
        "findings": found,
        "seconds": round(time.monotonic() - t0, 1),
    }


# ------------------------------------------------------------------ atheris

_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_UNITS = re.compile(r"stat::number_of_executed_units: (\d+)")
_COV = re.compile(r"\bcov: (\d+) ft: (\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_RSS = re.compile(r"\brss: (\d+)Mb")


def run_atheris(name: str, cases: int, seed: int | None, crashes: Path) -> dict[str, Any]:
    crashes.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"gexe-fuzz-{name}-"))
    try:
        env = dict(os.environ, TMPDIR=str(work))  # the child's temp files die with `work`
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--target",
            name,
            "--cases",
            str(cases),
            "--crashes",
            str(crashes),
            "--corpus",
            str(work / "corpus"),
        ]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        seconds = time.monotonic() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    err = p.stderr
    m = _UNITS.search(err) or _DONE.search(err)
    runs = int(m.group(1)) if m else 0
    cov = _COV.findall(err)
    found = []
    for art in _ARTIFACT.findall(err):
        # atheris prints the Python exception on stdout: its first line, then the traceback
        exc = (p.stdout or "").split("=== Uncaught Python exception: ===", 1)
        tb = exc[1].strip() if len(exc) > 1 else err[-3000:]
        first = tb.splitlines()[0] if tb else "crash"
        found.append({"error": first[:2000], "traceback": tb[-4000:], "file": art})
    if p.returncode != 0 and not found:  # died without an artifact (a signal, an OOM…)
        found.append({"error": f"worker exited with {p.returncode}", "log": err[-3000:]})
    out: dict[str, Any] = {
        "target": name,
        "engine": "atheris",
        "cases": runs,
        "crashes": len(found),
        "findings": found,
        "seconds": round(seconds, 1),
    }
    if cov:
        out["coverage_edges"], out["coverage_features"] = int(cov[-1][0]), int(cov[-1][1])
    rss = [int(x) for x in _RSS.findall(err)]
    if rss:  # libFuzzer's status lines: resident memory after the seeds, and at the end
        out["rss_mb_start"], out["rss_mb_end"] = rss[0], rss[-1]
    return out


def worker(args: argparse.Namespace) -> None:
    """The child process of `run_atheris`: libFuzzer drives one target."""
    import atheris

    with atheris.instrument_imports(include=["gexe", "fuzz"]):
        target = make_target(args.target)
    target.open()
    corpus = Path(args.corpus)
    corpus.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(target.seeds()):
        (corpus / f"seed-{i}").write_bytes(s)

    def one(data: bytes) -> None:
        target.run_bytes(data)

    flags = [
        f"-runs={args.cases}",
        f"-artifact_prefix={args.crashes}/{args.target}-",
        "-print_final_stats=1",
        "-max_len=16384",
        "-timeout=120",
        "-rss_limit_mb=6144",
        "-detect_leaks=0",
    ]
    if target.uses_wasm:  # wasmtime turns these signals into WASM traps itself
        flags += ["-handle_segv=0", "-handle_bus=0", "-handle_ill=0", "-handle_fpe=0"]
    if args.seed is not None:
        flags.append(f"-seed={args.seed}")
    atheris.Setup([sys.argv[0], *flags, str(corpus)], one)
    atheris.Fuzz()


def replay(name: str, path: Path) -> int:
    target = make_target(name)
    with target:
        data = path.read_bytes()
        from fuzz.source import BytesSource

        case = target.generate(BytesSource(data))
        print(target.show(case))
        target.check(case)
    print("no finding")
    return 0


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="all", choices=["all", *TARGETS])
    ap.add_argument("--cases", type=int, default=10_000, help="cases per target")
    ap.add_argument("--engine", default="auto", choices=["auto", "atheris", "hypothesis"])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--crashes", type=Path, default=DEFAULT_CRASHES)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--replay", type=Path, default=None, help="run one saved atheris input")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.replay is not None:
        return replay(args.target, args.replay)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if have_atheris() else "hypothesis"
    run = run_atheris if engine == "atheris" else run_hypothesis
    names = list(TARGETS) if args.target == "all" else [args.target]
    t0 = time.monotonic()
    results = []
    for name in names:
        r = run(name, args.cases, args.seed, args.crashes)
        results.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)  # progress
    report = {
        "engine": engine,
        "cases_per_target": args.cases,
        "targets": results,
        "total_cases": sum(r["cases"] for r in results),
        "total_crashes": sum(r["crashes"] for r in results),
        "seconds": round(time.monotonic() - t0, 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    short = [r for r in results if r["cases"] < args.cases and not r["crashes"]]
    return 1 if report["total_crashes"] or short else 0


if __name__ == "__main__":
    sys.exit(main())

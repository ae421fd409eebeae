"""tests/faults — the CI-sized fault suite (issue #9): crash, chain and network faults on a
dev network, and a short sustained load. `make faults` runs it (also part of `make test`).

One `faults.harness.FaultNet` (anvil with 1-second blocks, 4 validator processes behind
fault-injecting RPC proxies, validator 0 also the sequencer, a gossip replayer; the native
path on unless FAULT_NATIVE=0) serves the whole package: starting one costs ~20 s. Each
test runs one trial — a stream of requests from Ethereum, and FAULT_INJECTED (default 6)
injected transactions, with one fault injected at a random moment, recovery, then the
checks (every request answered exactly once, every accepted injected transaction final
and run at most once, validators agreeing block by block, counters exact, stores
verifying). `test_whole_run.py` runs last: the whole run recounted from the
chain, a validator synced from scratch compared block by block, every store verified.

Randomness comes from one seed, printed in the report header and in every trial line:
`FAULT_SEED=<n> make faults` replays a run. Totals are printed at the end.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _p in (_HERE.parents[1], _HERE):  # the repository root (for `faults`), and faultkit
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from faultkit import SEED, STATE  # noqa: E402

from faults.harness import FaultNet  # noqa: E402

_STATE = STATE
# the native path on (validator 0 also sequences injected transactions) unless
# FAULT_NATIVE=0; each trial then sends FAULT_INJECTED (default 6) injected transactions
NATIVE = os.environ.get("FAULT_NATIVE", "1") != "0"
INJECTED_PER_TRIAL = int(os.environ.get("FAULT_INJECTED") or 6)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # minutes of wall time: not part of `make test-quick`
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.slow)


def pytest_report_header(config: pytest.Config) -> str:
    return f"fault suite seed: {SEED} (FAULT_SEED={SEED} replays it)"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    fn = _STATE.get("net")
    if not isinstance(fn, FaultNet):
        return
    fig = fn.totals.figures()
    tr = terminalreporter
    tr.section("fault suite")
    tr.write_line(
        f"seed {SEED}; network up {_STATE.get('seconds', 0):.0f} s; native path "
        + ("on" if fn.native else "off")
    )
    for o in fn.totals.outcomes:
        tr.write_line(f"{o.word:<5}" + o.line())
    for f in fn.loads:
        tr.write_line(
            f"load {f['rate_target']:g}/s for {f['seconds']:g}s: sent {f['rate_sent']}/s, "
            f"answered {f['rate_answered']}/s, latency p50/p95/p99 "
            f"{f['latency_blocks_p50']}/{f['latency_blocks_p95']}/{f['latency_blocks_p99']} "
            f"blocks, RSS growth KiB {f['rss_growth_kib']}, store growth "
            f"{f['store_growth_bytes_per_request']} B/request"
            + (
                f"; injected {f['injected_sent']} at {f['injected_rate_sent']}/s, "
                f"{f['injected_preconfirmed']} preconfirmed, latency p50/p99 "
                f"{f['injected_latency_ms_p50']}/{f['injected_latency_ms_p99']} ms, lost "
                f"{f['injected_lost']}, dup {f['injected_duplicated']}"
                if "injected_sent" in f
                else ""
            )
        )
    keys = (
        "fault_trials",
        "faults_survived",
        "lost_requests",
        "duplicated_requests",
        "divergences",
        "requests",
        "requests_total",
        "stores_verified",
        "fresh_sync_blocks",
        "fresh_sync_mismatches",
        "gossip_heard",
        "gossip_duplicated",
        "gossip_replayed",
        "injected_sent",
        "injected_accepted",
        "injected_preconfirmed",
        "injected_executed_not_preconfirmed",
        "injected_refused",
        "injected_expired",
        "injected_lost",
        "injected_duplicated",
        "injected_reverted",
        "injected_unsent",
        "injected_refusals",
        "injected_total",
        "injected_ran_though_not_accepted",
        "seq_blocks_compared",
        "seq_mismatches",
    )
    tr.write_line(json.dumps({k: fig[k] for k in keys if k in fig}))


@pytest.fixture(scope="package")
def faultnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultNet]:
    t0 = time.monotonic()
    fn = FaultNet(
        tmp_path_factory.mktemp("faults") / "net",
        seed=SEED,
        progress=lambda m: print(m, flush=True),
        replayer=True,
        replay_after=125.0,  # past gossip's 120-second duplicate filter
        native=NATIVE,
        injected_per_trial=INJECTED_PER_TRIAL,
    )
    fn.start()
    _STATE["net"] = fn
    try:
        yield fn
    finally:
        _STATE["seconds"] = time.monotonic() - t0
        if not fn.stopped:  # test_whole_run.py did not run (a module run alone)
            probs = fn.stop_and_verify()
            assert not probs, f"stores do not verify: {probs[:3]}"

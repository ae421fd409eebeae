"""Load (issue #9), CI-sized: requests from Ethereum at a steady rate for a short while
(`FAULT_LOAD_SECONDS`, default 20; `FAULT_LOAD_RATE` requests/s, default 25) with no fault —
every request answered exactly once, validators agreeing — and the figures of the soak
(rates, latency percentiles in blocks, RSS and store growth) printed. With the native
path on, injected transactions go alongside at `FAULT_LOAD_INJECTED_RATE` (default 5/s,
round robin over the validators): every one pre-confirmed, none lost or run twice, and
their figures (rate, latency to pre-confirmed in ms) printed. The 10-minute soak
at the highest rate the network holds is `make soak` (faults/soak.py)."""

from __future__ import annotations

import json
import os

from faultkit import check

from faults.harness import FaultNet

SECONDS = float(os.environ.get("FAULT_LOAD_SECONDS") or 20)
RATE = float(os.environ.get("FAULT_LOAD_RATE") or 25)
INJECTED_RATE = float(os.environ.get("FAULT_LOAD_INJECTED_RATE") or 5)


def test_sustained_load(faultnet: FaultNet) -> None:
    o, fig = faultnet.load(RATE, SECONDS, sample_every=10.0, injected_rate=INJECTED_RATE)
    print(json.dumps({k: v for k, v in fig.items() if k != "samples"}, sort_keys=True))
    check(o)
    assert fig["requests"] >= RATE * SECONDS * 0.5, fig["rate_sent"]
    assert all(v is not None for v in fig["rss_kib_end"].values())
    if faultnet.inj is not None and INJECTED_RATE > 0:
        assert fig["injected_sent"] >= INJECTED_RATE * SECONDS * 0.9, fig["injected_sent"]
        assert fig["injected_lost"] == 0 and fig["injected_duplicated"] == 0, fig
        assert fig["injected_preconfirmed"] == fig["injected_sent"], fig
        assert fig["injected_latency_ms_p50"] is not None, fig

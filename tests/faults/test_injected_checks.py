"""The injected-transaction verdict of the fault suite (`faults.injected.InjectedLane.check`)
on made-up receipts and chains, no network: it must call a transaction run twice
`duplicated`, one accepted but never final `lost`, an `executed` receipt whose effect is in
every chain `executed_not_preconfirmed` (not lost), and refuse expiries and refusals where
the trial gives them no excuse — so the live trials' zeros mean something."""

from __future__ import annotations

from types import SimpleNamespace

from faults.injected import Injected, InjectedLane

N = 4


def lane() -> InjectedLane:
    x = object.__new__(InjectedLane)
    x.fn = SimpleNamespace(n=N)
    return x


def tx(h: str, status: str, reason: str | None = None) -> Injected:
    return Injected("0x" + h * 64, 1, "0x" + "11" * 20, "t", 0.0, status=status, reason=reason)


def run(txs: list[Injected], runs: dict[str, list[int]], **kw: bool):  # type: ignore[no-untyped-def]
    kw = {"stalled_sequencer": False, "reorg": False, **kw}
    return lane().check(txs, runs, **kw)


def test_preconfirmed_once_everywhere_is_clean() -> None:
    t = tx("a", "preconfirmed")
    c, errs = run([t], {t.tx_hash: [1] * N})
    assert (c["sent"], c["accepted"], c["preconfirmed"], c["lost"], c["duplicated"]) == (
        1,
        1,
        1,
        0,
        0,
    )
    assert not errs


def test_executed_twice_on_one_validator_is_duplicated() -> None:
    t = tx("b", "preconfirmed")
    c, errs = run([t], {t.tx_hash: [1, 1, 2, 1]})
    assert c["duplicated"] == 1 and errs


def test_pending_or_missing_receipt_is_lost() -> None:
    a, b = tx("c", "pending"), tx("d", "no_receipt")
    c, errs = run([a, b], {})
    assert c["lost"] == 2 and c["accepted"] == 2 and errs


def test_preconfirmed_but_nowhere_in_the_chains_is_lost() -> None:
    t = tx("e", "preconfirmed")
    c, errs = run([t], {})
    assert c["lost"] == 1 and errs


def test_executed_without_promises_counts_apart_when_it_ran_everywhere() -> None:
    t = tx("f", "executed")
    c, errs = run([t], {t.tx_hash: [1] * N})
    assert c["executed_not_preconfirmed"] == 1 and c["lost"] == 0 and not errs
    c, errs = run([tx("f", "executed")], {t.tx_hash: [1, 1, 0, 1]})  # not on validator 2
    assert c["lost"] == 1 and errs


def test_expiry_is_legitimate_only_when_the_sequencer_stalled() -> None:
    for t in (tx("g", "expired", "not ordered before it expired"), tx("g", "refused", "expired")):
        c, errs = run([t], {})
        assert c["lost"] == 0 and errs, "an expiry without a stalled sequencer must fail"
        c, errs = run([t], {}, stalled_sequencer=True)
        assert c["lost"] == 0 and not errs
    c, errs = run(
        [tx("g", "expired", "x")], {tx("g", "x").tx_hash: [1] * N}, stalled_sequencer=True
    )
    assert errs, "an expired transaction that ran is a contradiction"


def test_refusals_need_their_excuse() -> None:
    t = tx("h", "refused", "unknown reference block")
    assert run([t], {})[1] and not run([t], {}, reorg=True)[1]
    u = tx("i", "refused_at_submit", "reference block 0x12 is not on this node's chain; ...")
    c, errs = run([u], {})
    assert c["refused"] == 1 and c["accepted"] == 0 and errs
    assert not run([u], {}, reorg=True)[1]
    v = tx("j", "refused", "already included")
    assert run([v], {}, stalled_sequencer=True, reorg=True)[1]
    w = tx("k", "unsent", "ConnectError")
    c, errs = run([w], {})
    assert c["unsent"] == 1 and errs


def test_preconfirmed_then_gone_after_a_reorg_is_reverted_not_lost() -> None:
    t = tx("l", "preconfirmed")
    c, errs = run([t], {}, reorg=True)
    assert c["reverted"] == 1 and c["lost"] == 0 and c["preconfirmed"] == 0
    assert c["reverted_txs"] == [t.tx_hash]
    assert errs, "undone by a reorg and never run again is an error (fixed in b36158c)"
    c, errs = run([tx("l", "preconfirmed")], {})  # without a reorg it is lost
    assert c["lost"] == 1 and c["reverted"] == 0 and errs

"""The whole run, last (issue #9): every request of the suite recounted from the canonical
chain (none lost, none answered twice); a validator started after the fact with an empty
store, synced from the Router's deployment block, agrees with every validator on every
block (hash, state root, batch commitment) — so no event was skipped or applied twice by
the validators that lived through the faults; the gossip replayer did duplicate and
replay; and after the network stops, every store opens and verifies (each CAS blob hashes
to its key, block records and pointers resolve). With the native path on, every
injected transaction of the run is recounted against every validator's whole chain of
sequencer blocks (from height 1): none executed twice, each counted pre-confirmed or
executed executed exactly once everywhere, none refused or expired executed anywhere, and
every validator's sequencer blocks equal validator 0's; the fresh validator follows the
sequencer too (its state roots fold in the sequencer blocks' effects)."""

from __future__ import annotations

from faultkit import SEED

from faults.harness import FaultNet


def test_every_request_answered_exactly_once(faultnet: FaultNet) -> None:
    fc = faultnet.final_check()
    assert fc["lost_requests"] == 0 and fc["duplicated_requests"] == 0, (SEED, fc)


def test_every_injected_transaction_ran_at_most_once(faultnet: FaultNet) -> None:
    if faultnet.inj is None:
        return  # FAULT_NATIVE=0
    fc = faultnet.totals.final
    assert "injected_total" in fc, "final_check did not run (an earlier test failed?)"
    assert fc["injected_total"] > 0, (SEED, fc)
    assert fc["injected_duplicated"] == 0, (SEED, fc)
    assert fc["injected_lost"] == 0, (SEED, fc)
    assert fc["injected_ran_though_not_accepted"] == 0, (SEED, fc)
    assert fc["seq_blocks_compared"] > 0 and fc["seq_mismatches"] == 0, (SEED, fc)


def test_fresh_validator_agrees_block_by_block(faultnet: FaultNet) -> None:
    mismatches, bad = faultnet.fresh_sync()
    assert mismatches == 0, (SEED, bad)


def test_gossip_duplicates_were_injected(faultnet: FaultNet) -> None:
    st = faultnet.replayer_stats()
    assert st.get("heard", 0) > 0 and st.get("duplicated", 0) > 0, st


def test_stores_verify_after_stop(faultnet: FaultNet) -> None:
    probs = faultnet.stop_and_verify()
    assert not probs, probs[:5]
    fig = faultnet.totals.figures()
    assert fig["lost_requests"] == 0, (SEED, fig)
    assert fig["duplicated_requests"] == 0, (SEED, fig)
    assert fig["divergences"] == 0, (SEED, fig)
    assert fig["injected_lost"] == 0, (SEED, fig)
    assert fig["injected_duplicated"] == 0, (SEED, fig)

"""Era records in the Router: `eraInfo`, `eraOfBlock`, and which era's set signs a batch —
the era of the batch's block, the previous one only within the grace window."""

from __future__ import annotations

import pytest
from chainkit import STAKES, TOTAL_STAKE, Net, reverts
from gexe.contracts import ContractRevert, EraInfo

GRACE = 8  # conftest.TEST_CONFIG.era_grace_blocks
ZERO = "0x" + "00" * 20


def latest(net: Net) -> tuple[bytes, int]:
    return net.block(net.w3.eth.block_number)


def test_era_records_and_era_of_block(net: Net) -> None:
    router = net.router
    assert router.era_grace_blocks() == GRACE
    first = router.era_info(1)
    assert first.validators_pointer == router.call("validatorsPointer")
    assert first.total_stake == TOTAL_STAKE and first.reward_pool == 0
    assert router.era_of_block(0) == 0
    assert router.era_of_block(first.start_block - 1) == 0
    assert router.era_of_block(first.start_block) == 1
    net.new_operator(1000)
    starts = [first.start_block]
    for era in (2, 3):
        receipt = net.next_era()
        block = net.w3.eth.get_block(receipt["blockNumber"])
        info = router.era_info(era)
        assert (info.start_block, info.start_timestamp) == (block["number"], block["timestamp"])
        assert info.total_stake == TOTAL_STAKE + 1000
        assert router.call("eraStartedAt") == block["timestamp"]
        starts.append(info.start_block)
        net.mine(3)
    assert router.era_index() == 3
    for era, start in enumerate(starts, 1):
        assert router.era_of_block(start - 1) == era - 1
        assert router.era_of_block(start) == era
        assert router.era_of_block(start + 1) == era
    assert router.era_of_block(2**64 - 1) == 3
    assert router.era_info(4) == EraInfo(ZERO, 0, 0, 0, 0)
    genesis = [(v.address, s) for v, s in zip(net.validators, STAKES, strict=True)]
    assert router.era_validators(1) == genesis
    assert router.era_validators(3) == router.validators() != genesis
    assert router.era_validators(4) == []


def test_previous_era_batch_is_accepted_inside_the_grace_window(net: Net) -> None:
    newcomer = net.new_operator(1000)  # era 2's set differs: newcomer first
    old = latest(net)
    start = net.next_era()["blockNumber"]
    batch = net.batch(block=old)
    assert net.router.era_of_block(old[1]) == 1 and net.router.era_index() == 2
    # Only era 1's set signs for era 1's block.
    with reverts("UnexpectedSigner"):
        net.commit(batch, signatures=net.signatures(batch, [newcomer], ordered=False))
    net.mine(GRACE - 1 - (net.w3.eth.block_number - start))
    receipt = net.commit(batch)  # the genesis validators, in era 1's order
    assert receipt["blockNumber"] == start + GRACE  # the last block of the window


def test_previous_era_batch_is_rejected_after_the_grace_window(net: Net) -> None:
    net.new_operator(1000)
    old = latest(net)
    start = net.next_era()["blockNumber"]
    net.mine(GRACE - (net.w3.eth.block_number - start))
    batch = net.batch(block=old)
    # Sent now, the commit lands in block start + GRACE + 1, one past the window, and fails
    # there (gas estimation ran at the latest block, still inside it: no error name).
    with pytest.raises(ContractRevert):
        net.commit(batch)
    failed = net.w3.eth.get_block("latest", full_transactions=True)
    assert failed["number"] == start + GRACE + 1
    assert net.w3.eth.get_transaction_receipt(failed["transactions"][0]["hash"])["status"] == 0
    with reverts("EraExpired") as caught:
        net.commit(batch)
    assert caught[0].error.args == (1,)


def test_current_era_batch_signed_only_by_the_previous_set_is_rejected(net: Net) -> None:
    newcomer = net.new_operator(1000)  # era 2: newcomer 1000, A 300, B 300, C 299, D 1
    net.next_era()
    net.mine()
    batch = net.batch()
    assert net.router.era_of_block(batch.block_number) == 2
    with reverts("NotEnoughStake") as caught:
        net.commit(batch)  # all of era 1's set: 900 of 1900
    assert caught[0].error.args == (TOTAL_STAKE, TOTAL_STAKE + 1000)
    a, b, c, d = net.validators
    assert net.commit(batch, [newcomer, a, b])["status"] == 1  # 1600 of 1900


def test_batches_older_than_the_previous_era_or_the_first_are_rejected(net: Net) -> None:
    first = net.router.era_info(1).start_block
    with reverts("BlockBeforeFirstEra") as caught:
        net.commit(net.batch(block=net.block(first - 1)))
    assert caught[0].error.args == (first - 1,)
    old = latest(net)
    net.next_era()
    net.next_era()
    with reverts("EraExpired") as caught:  # era 1 while era 3 runs, grace or not
        net.commit(net.batch(block=old))
    assert caught[0].error.args == (1,)
    with reverts("BlockBeforeFirstEra"):
        net.commit(net.batch(block=net.block(first - 1)))

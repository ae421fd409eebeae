"""Rewards: the executable balance a batch reports as `burned` is credited to the reward pool
of its block's era; once the era is closed its operators claim pool × snapshotted stake ÷
total, each era once."""

from __future__ import annotations

from chainkit import Net, reverts

GRACE = 8  # conftest.TEST_CONFIG.era_grace_blocks


def top_up(net: Net, amount: int) -> None:
    """A user tops up a program's executable balance: `amount` WVARA moves to the Router."""
    mirror = net.program()
    user = net.users[7]
    net.wvara.mint(net.owner, user.address, amount)
    net.wvara.approve(user, mirror.address, amount)
    mirror.send(user, "executableBalanceTopUp", amount)


def close_era(net: Net) -> None:
    """Start the next era and wait out its grace window (the previous era closes)."""
    start = net.next_era()["blockNumber"]
    net.mine(GRACE + 1 - (net.w3.eth.block_number - start))


def test_burned_is_credited_to_the_era_of_the_batch_block(net: Net) -> None:
    top_up(net, 10_000)
    receipt = net.commit(net.batch(burned=900))
    assert net.router.events(receipt, "RewardsCredited") == [{"eraIndex": 1, "amount": 900}]
    assert net.router.era_info(1).reward_pool == 900
    old = net.block(net.w3.eth.block_number)
    net.next_era()
    net.commit(net.batch(block=old, burned=100))  # era 1's block, inside the grace window
    net.mine()
    receipt = net.commit(net.batch(burned=50))  # era 2's block
    assert net.router.events(receipt, "RewardsCredited") == [{"eraIndex": 2, "amount": 50}]
    assert (net.router.era_info(1).reward_pool, net.router.era_info(2).reward_pool) == (1000, 50)
    assert net.router.rewards_outstanding() == 1050
    receipt = net.commit(net.batch())  # nothing burned: no credit
    assert net.router.events(receipt, "RewardsCredited") == []


def test_burned_beyond_the_router_balance_is_rejected(net: Net) -> None:
    top_up(net, 100)
    with reverts("BurnedExceedsBalance") as caught:
        net.commit(net.batch(burned=101))
    assert caught[0].error.args == (101, 100)
    net.commit(net.batch(burned=100))
    with reverts("BurnedExceedsBalance") as caught:  # already owed to the operators
        net.commit(net.batch(burned=1))
    assert caught[0].error.args == (1, 0)


def test_claims_are_proportional_to_stake_and_made_once(net: Net) -> None:
    a, b, c, d = net.validators  # 300, 300, 299, 1
    top_up(net, 900_000)
    net.commit(net.batch(burned=900_000))
    assert [net.router.pending_rewards(v.address, 1) for v in net.validators] == [
        300_000,
        300_000,
        299_000,
        1_000,
    ]
    with reverts("EraNotClosed"):  # the current era
        net.router.claim_rewards(a, [1])
    start = net.next_era()["blockNumber"]
    assert not net.router.era_closed(1)
    with reverts("EraNotClosed"):  # the previous era inside the grace window
        net.router.claim_rewards(a, [1])
    net.mine(GRACE + 1 - (net.w3.eth.block_number - start))
    assert net.router.era_closed(1) and not net.router.era_closed(2)
    receipt = net.router.claim_rewards(a, [1])
    assert net.router.events(receipt, "RewardsClaimed") == [
        {"operator": a.address, "eraIndex": 1, "amount": 300_000}
    ]
    assert net.wvara.balance_of(a.address) == 300_000
    assert net.router.pending_rewards(a.address, 1) == 0
    assert net.router.rewards_claimed(a.address, 1)
    with reverts("RewardsAlreadyClaimed") as caught:
        net.router.claim_rewards(a, [1])
    assert caught[0].error.args == (1, a.address)
    with reverts("NotAValidatorOfEra"):
        net.router.claim_rewards(net.users[0], [1])
    with reverts("EraNotClosed"):
        net.router.claim_rewards(b, [2])
    for v, share in ((b, 300_000), (c, 299_000), (d, 1_000)):
        net.router.claim_rewards(v, [1])
        assert net.wvara.balance_of(v.address) == share
    assert net.router.rewards_outstanding() == 0


def test_each_era_pays_by_its_own_snapshot(net: Net) -> None:
    a, b, _, _ = net.validators
    top_up(net, 10_000)
    net.commit(net.batch(burned=900))  # era 1: A has 300 of 900
    net.staking.unbond(a, 200)  # era 2: A has 100 of 700
    net.next_era()
    net.mine()
    net.commit(net.batch(burned=700))
    close_era(net)
    assert net.router.era_closed(1) and net.router.era_closed(2)
    receipt = net.router.claim_rewards(a, [1, 2])
    assert [e["amount"] for e in net.router.events(receipt, "RewardsClaimed")] == [300, 100]
    assert net.wvara.balance_of(a.address) == 400
    with reverts("RewardsAlreadyClaimed"):  # the same era twice in one call
        net.router.claim_rewards(b, [2, 2])
    with reverts("EraNotClosed"):
        net.router.claim_rewards(b, [0])

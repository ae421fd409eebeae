"""Staking (deposits, signers and their rotation, unbonding in eras, slashing hook, election,
snapshots for the Router) and WrappedVara."""

from __future__ import annotations

from chainkit import STAKES, Net, reverts
from eth_account import Account
from eth_account.signers.local import LocalAccount
from gexe.contracts import OperatorInfo
from gexe.contracts.bindings import deploy_contract

ZERO = "0x" + "00" * 20


def operator(net: Net, stake: int, signer: str | bool | None = None) -> LocalAccount:
    return net.new_operator(stake, signer)


def test_deposit_and_register(net: Net) -> None:
    op = net.new_account()
    net.wvara.mint(net.owner, op.address, 50)
    net.wvara.approve(op, net.deployment.staking, 50)
    with reverts("ZeroAmount"):
        net.staking.deposit(op, 0)
    with reverts("NotAnOperator"):
        net.staking.register_validator(op, op.address)
    receipt = net.staking.deposit(op, 50)
    assert net.staking.events(receipt, "Deposited") == [{"operator": op.address, "amount": 50}]
    signer = Account.create().address
    with reverts("ZeroAddress"):
        net.staking.register_validator(op, ZERO)
    receipt = net.staking.register_validator(op, signer)
    assert net.staking.events(receipt, "ValidatorRegistered") == [
        {"operator": op.address, "signer": signer}
    ]
    assert net.staking.operator(op.address) == OperatorInfo(signer, 50, 0, 0, False)
    assert net.staking.call("operatorOfSigner", signer) == op.address
    assert op.address in net.staking.call("operators")


def test_signer_is_unique_and_can_be_changed(net: Net) -> None:
    taken = net.validators[0].address
    op = operator(net, 10, signer=False)
    with reverts("SignerTaken"):
        net.staking.register_validator(op, taken)
    first, second = Account.create().address, Account.create().address
    net.staking.register_validator(op, first)
    net.staking.register_validator(op, second)
    assert net.staking.call("operatorOfSigner", first) == ZERO
    assert net.staking.call("operatorOfSigner", second) == op.address
    net.staking.register_validator(op, second)  # re-registering one's own signer is fine


def test_unbonding_cannot_be_skipped(net: Net) -> None:
    """Withdrawal waits for `unbondingEras` era starts: time alone does not release stake."""
    op = operator(net, 100)
    assert net.staking.unbonding_eras() == 2 and net.staking.current_era() == 1
    with reverts("InsufficientStake"):
        net.staking.unbond(op, 101)
    with reverts("ZeroAmount"):
        net.staking.unbond(op, 0)
    with reverts("NothingToWithdraw"):
        net.staking.withdraw(op)
    receipt = net.staking.unbond(op, 40)
    assert net.staking.events(receipt, "Unbonded") == [
        {"operator": op.address, "amount": 40, "releaseEra": 3}
    ]
    assert net.staking.operator(op.address) == OperatorInfo(op.address, 60, 40, 3, False)
    with reverts("StillBonding") as caught:
        net.staking.withdraw(op)
    assert caught[0].error.args == (3,)
    # A year passes but no era starts: still bonded.
    net.w3.provider.make_request("evm_increaseTime", [365 * 86400])
    net.mine()
    with reverts("StillBonding"):
        net.staking.withdraw(op)
    net.router.start_next_era(net.owner)  # era 2
    with reverts("StillBonding"):
        net.staking.withdraw(op)
    # Stake added while unbonding is fine and stays active.
    net.wvara.mint(net.owner, op.address, 5)
    net.wvara.approve(op, net.deployment.staking, 5)
    net.staking.deposit(op, 5)
    net.next_era()  # era 3 = unbond era + 2
    receipt = net.staking.withdraw(op)
    assert net.staking.events(receipt, "Withdrawn") == [{"operator": op.address, "amount": 40}]
    assert net.wvara.balance_of(op.address) == 40
    assert net.staking.operator(op.address) == OperatorInfo(op.address, 65, 0, 0, False)
    with reverts("NothingToWithdraw"):
        net.staking.withdraw(op)


def test_a_new_unbond_restarts_the_delay_for_the_whole_sum(net: Net) -> None:
    op = operator(net, 100)
    net.staking.unbond(op, 10)  # era 1: release at 3
    net.next_era()
    net.staking.unbond(op, 10)  # era 2: all 20 released at 4
    assert net.staking.operator(op.address).release_era == 4
    net.next_era()
    with reverts("StillBonding"):
        net.staking.withdraw(op)
    net.next_era()
    net.staking.withdraw(op)
    assert net.wvara.balance_of(op.address) == 20


def test_unbonding_eras_must_be_at_least_two(net: Net) -> None:
    with reverts("UnbondingErasTooShort"):
        deploy_contract(
            net.w3, "Staking", net.owner, net.owner.address, net.deployment.wrapped_vara, 1, 1, 8
        )


def test_only_the_router_takes_snapshots(net: Net) -> None:
    with reverts("CallerNotRouter"):
        net.staking.send(net.users[0], "snapshot", 2)
    assert net.staking.call("router") == net.deployment.router
    with reverts("RouterAlreadySet"):
        net.staking.send(net.owner, "setRouter", net.users[0].address)
    with reverts("OwnableUnauthorizedAccount"):
        net.staking.send(net.users[0], "setRouter", net.users[0].address)


def test_slash_is_a_hook_for_the_slasher_only(net: Net) -> None:
    op = operator(net, 100)
    net.staking.send(op, "unbond", 30)
    slasher, treasury = net.users[4], net.new_account(eth=0)
    with reverts("CallerNotSlasher"):
        net.staking.send(slasher, "slash", op.address, 10, treasury.address)
    with reverts("OwnableUnauthorizedAccount"):
        net.staking.send(slasher, "setSlasher", slasher.address)
    net.staking.send(net.owner, "setSlasher", slasher.address)
    receipt = net.staking.send(slasher, "slash", op.address, 90, treasury.address)
    assert net.staking.events(receipt, "Slashed") == [
        {"operator": op.address, "amount": 90, "beneficiary": treasury.address}
    ]
    info = net.staking.operator(op.address)
    assert (info.stake, info.unbonding) == (0, 10)  # active stake first, then unbonding
    receipt = net.staking.send(slasher, "slash", op.address, 1000, treasury.address)
    assert net.staking.events(receipt, "Slashed")[0]["amount"] == 10
    assert net.wvara.balance_of(treasury.address) == 100


def test_election_top_k_by_stake_with_floor(net: Net) -> None:
    base = [(v.address, s) for v, s in zip(net.validators, STAKES, strict=True)]
    assert net.staking.elected() == base
    big = operator(net, 1000)
    tie = operator(net, 300)  # ties keep registration order: after the genesis 300s
    operator(net, 5, signer=False)  # no signer: not elected
    elected = net.staking.elected()
    assert elected[0] == (big.address, 1000)
    assert [a for a, _ in elected[1:4]] == [
        net.validators[0].address,
        net.validators[1].address,
        tie.address,
    ]
    net.staking.send(net.owner, "setMaxValidators", 3)
    assert [a for a, _ in net.staking.elected()] == [
        big.address,
        net.validators[0].address,
        net.validators[1].address,
    ]
    net.staking.send(net.owner, "setMaxValidators", 8)
    net.staking.send(net.owner, "setMinStake", 300)
    assert {a for a, _ in net.staking.elected()} == {
        big.address,
        tie.address,
        net.validators[0].address,
        net.validators[1].address,
    }
    with reverts("OwnableUnauthorizedAccount"):
        net.staking.send(net.users[0], "setMinStake", 0)


def test_snapshot_blob_is_what_the_router_reads(net: Net) -> None:
    op = operator(net, 7, signer=Account.create().address)  # operator and signer differ
    receipt = net.next_era()
    (snap,) = net.staking.events(receipt, "ValidatorSetSnapshotted")
    (started,) = net.router.events(receipt, "EraStarted")
    assert (
        snap["pointer"] == started["validatorsPointer"] == net.router.era_info(2).validators_pointer
    )
    blob = bytes(net.w3.eth.get_code(snap["pointer"]))
    assert blob[0] == 0  # STOP: the data contract cannot be run
    words = [blob[1 + 32 * i : 33 + 32 * i] for i in range(snap["count"])]
    decoded = [("0x" + w[:20].hex(), int.from_bytes(w[20:], "big")) for w in words]
    assert [(a.lower(), s) for a, s in net.staking.elected()] == decoded
    assert [(a.lower(), s) for a, s in net.router.era_validators(2)] == decoded
    assert snap["totalStake"] == sum(STAKES) + 7
    # The operators' blob: same order, the operator instead of its signer.
    genesis = [(v.address, s) for v, s in zip(net.validators, STAKES, strict=True)]
    assert net.staking.era_operators(2) == [*genesis[:3], (op.address, 7), genesis[3]]
    assert net.staking.era_stake_of(2, op.address) == 7
    assert net.staking.era_stake_of(2, net.users[0].address) == 0
    assert net.staking.era_stake_of(3, op.address) == 0  # not started


def test_signer_rotation_takes_effect_at_the_next_election(net: Net) -> None:
    a, b, _, d = net.validators
    new_key = Account.create()
    net.staking.register_validator(a, new_key.address)
    assert net.staking.operator_of_signer(new_key.address) == a.address
    assert net.staking.operator_of_signer(a.address) == ZERO
    # Era 1 still counts A's old key, not the new one.
    batch = net.batch()
    with reverts("UnexpectedSigner") as caught:
        net.commit(batch, signatures=net.signatures(batch, [new_key, b, d], ordered=False))
    assert caught[0].error.args == (0, new_key.address)
    net.commit(batch, [a, b, d])
    net.next_era()
    net.mine()
    assert net.router.validators()[0] == (new_key.address, 300)
    assert net.staking.era_operators(2)[0] == (a.address, 300)
    batch = net.batch()
    with reverts("UnexpectedSigner") as caught:
        net.commit(batch, signatures=net.signatures(batch, [a, b, d], ordered=False))
    assert caught[0].error.args == (0, a.address)
    assert net.commit(batch, [new_key, b, d])["status"] == 1


def test_wrapped_vara_token(net: Net) -> None:
    wv = net.wvara
    assert wv.call("decimals") == 12
    assert (wv.call("name"), wv.call("symbol")) == ("Wrapped Vara", "WVARA")
    with reverts("OwnableUnauthorizedAccount"):
        wv.mint(net.users[0], net.users[0].address, 1)
    user = net.users[6]
    wv.mint(net.owner, user.address, 1000)
    wv.send(user, "burn", 400)
    assert wv.balance_of(user.address) == 600
    assert len(bytes(wv.call("DOMAIN_SEPARATOR"))) == 32


def test_network_config_unbonding_in_eras() -> None:
    from gexe.contracts import NetworkConfig

    assert NetworkConfig().unbonding_eras_effective == 3  # 3 h of 1 h eras
    assert NetworkConfig(era_length=3600, unbonding_period=7200).unbonding_eras_effective == 2
    assert NetworkConfig(era_length=3600, unbonding_period=7201).unbonding_eras_effective == 3
    assert NetworkConfig(era_length=3600, unbonding_period=60).unbonding_eras_effective == 2
    assert NetworkConfig(unbonding_eras=5).unbonding_eras_effective == 5

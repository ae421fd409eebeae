"""Staking (deposits, signers, unbonding, slashing hook, election) and WrappedVara."""

from __future__ import annotations

from chainkit import STAKES, Net, reverts
from eth_account import Account
from eth_account.signers.local import LocalAccount

ZERO = "0x" + "00" * 20


def operator(net: Net, stake: int, signer: str | bool | None = None) -> LocalAccount:
    op = net.new_account()
    net.wvara.mint(net.owner, op.address, stake)
    net.wvara.approve(op, net.deployment.staking, stake)
    net.staking.deposit(op, stake)
    if signer is not False:
        net.staking.register_validator(op, signer if isinstance(signer, str) else op.address)
    return op


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
    assert net.staking.call("operator", op.address) == [signer, 50, 0, 0]
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


def test_unbond_and_withdraw_after_the_delay(net: Net) -> None:
    op = operator(net, 100)
    with reverts("InsufficientStake"):
        net.staking.send(op, "unbond", 101)
    with reverts("ZeroAmount"):
        net.staking.send(op, "unbond", 0)
    with reverts("NothingToWithdraw"):
        net.staking.send(op, "withdraw")
    receipt = net.staking.send(op, "unbond", 40)
    (event,) = net.staking.events(receipt, "Unbonded")
    assert event["amount"] == 40
    with reverts("StillUnbonding"):
        net.staking.send(op, "withdraw")
    net.w3.provider.make_request("evm_increaseTime", [7200])
    net.mine()
    net.staking.send(op, "withdraw")
    assert net.wvara.balance_of(op.address) == 40
    signer, stake, unbonding, _ = net.staking.call("operator", op.address)
    assert (stake, unbonding) == (60, 0)


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
    _, stake, unbonding, _ = net.staking.call("operator", op.address)
    assert (stake, unbonding) == (0, 10)  # active stake first, then unbonding
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
    receipt = net.staking.send(net.users[0], "snapshot")
    (snap,) = net.staking.events(receipt, "ValidatorSetSnapshotted")
    blob = bytes(net.w3.eth.get_code(snap["pointer"]))
    assert blob[0] == 0  # STOP: the data contract cannot be run
    words = [blob[1 + 32 * i : 33 + 32 * i] for i in range(snap["count"])]
    decoded = [("0x" + w[:20].hex(), int.from_bytes(w[20:], "big")) for w in words]
    assert [(a.lower(), s) for a, s in net.staking.elected()] == decoded
    assert snap["totalStake"] == sum(STAKES)


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

"""Router: code uploads and verdicts, program creation, eras, batch acceptance rules."""

from __future__ import annotations

import os

from chainkit import STAKES, TOTAL_STAKE, Net, reply, reverts
from eth_account import Account
from gexe.contracts import (
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    StateTransition,
    batch_hash,
    code_id,
    eth_message_id,
    program_id,
    to_abi,
)
from gexe.contracts.bindings import Router, Staking, deploy_contract, reverting
from gexe.contracts.events import LogDecoder

UNKNOWN, REQUESTED, VALIDATED = 0, 1, 2


# -- code uploads --


def test_request_code_validation_records_and_emits(net: Net) -> None:
    code = b"\x00asm\x01\x00\x00\x00"
    cid = code_id(code)
    receipt = net.router.request_code_validation(net.users[0], cid, code)
    assert net.router.events(receipt, "CodeValidationRequested") == [{"codeId": cid}]
    assert net.router.code_state(cid) == REQUESTED


def test_request_code_validation_rejects_bad_requests(net: Net) -> None:
    with reverts("ZeroCodeId"):
        net.router.request_code_validation(net.owner, bytes(32), b"x")
    with reverts("EmptyCode"):
        net.router.request_code_validation(net.owner, os.urandom(32), b"")
    cid = code_id(b"code")
    net.router.request_code_validation(net.owner, cid, b"code")
    with reverts("CodeAlreadyRequestedOrValidated"):
        net.router.request_code_validation(net.users[0], cid, b"code")
    net.commit(net.batch(codes=[CodeCommitment(cid, True)]))
    with reverts("CodeAlreadyRequestedOrValidated"):
        net.router.request_code_validation(net.users[0], cid, b"code")


def test_code_verdicts_from_batches(net: Net) -> None:
    good, bad = code_id(b"good"), code_id(b"bad")
    net.router.request_code_validation(net.owner, good, b"good")
    net.router.request_code_validation(net.owner, bad, b"bad")
    before = net.router.call("validatedCodesCount")
    receipt = net.commit(net.batch(codes=[CodeCommitment(good, True), CodeCommitment(bad, False)]))
    assert net.router.events(receipt, "CodeGotValidated") == [
        {"codeId": good, "valid": True},
        {"codeId": bad, "valid": False},
    ]
    assert net.router.code_state(good) == VALIDATED
    # An invalid verdict frees the id, so the right code can be uploaded again.
    assert net.router.code_state(bad) == UNKNOWN
    assert net.router.call("validatedCodesCount") == before + 1
    net.router.request_code_validation(net.owner, bad, b"bad")
    assert net.router.code_state(bad) == REQUESTED


def test_verdict_for_code_never_requested_reverts(net: Net) -> None:
    with reverts("CodeNotRequested"):
        net.commit(net.batch(codes=[CodeCommitment(os.urandom(32), True)]))


# -- programs --


def test_create_program_is_a_create2_mirror_clone(net: Net) -> None:
    cid = net.validated_code()
    salt = os.urandom(32)
    count = net.router.call("programsCount")
    receipt = net.router.send(net.users[0], "createProgram", cid, salt, "0x" + "00" * 20)
    (created,) = net.router.events(receipt, "ProgramCreated")
    actor = created["actorId"]
    assert created["codeId"] == cid
    assert actor == program_id(net.deployment.router, net.deployment.mirror_impl, cid, salt)
    assert bytes(net.router.call("programCodeId", actor)) == cid
    assert net.router.call("programsCount") == count + 1
    mirror = net.mirror(actor)
    assert mirror.call("router") == net.deployment.router
    assert mirror.call("initializer") == net.users[0].address
    assert mirror.nonce() == 0 and mirror.state_hash() == bytes(32)


def test_create_program_rejects_unvalidated_code_and_reused_salt(net: Net) -> None:
    with reverts("CodeNotValidated"):
        net.router.create_program(net.owner, os.urandom(32), os.urandom(32))
    cid = code_id(b"pending")
    net.router.request_code_validation(net.owner, cid, b"pending")
    with reverts("CodeNotValidated"):
        net.router.create_program(net.owner, cid, os.urandom(32))
    cid = net.validated_code()
    salt = os.urandom(32)
    net.router.create_program(net.owner, cid, salt)
    with reverts("FailedDeployment"):
        net.router.create_program(net.owner, cid, salt)


def test_create_program_with_override_initializer(net: Net) -> None:
    cid = net.validated_code()
    other = net.users[3]
    actor = net.router.create_program(net.owner, cid, os.urandom(32), other.address)
    mirror = net.mirror(actor)
    assert mirror.call("initializer") == other.address
    with reverts("InitMessageNotCreatedAndCallerNotInitializer"):
        mirror.send_message(net.owner, b"hi")
    _, mid = mirror.send_message(other, b"init")
    assert mid == eth_message_id(actor, 0)


def test_create_program_with_init_message_balance_and_value(net: Net) -> None:
    cid = net.validated_code()
    creator = net.users[1]
    net.wvara.mint(net.owner, creator.address, 500)
    net.wvara.approve(creator, net.deployment.router, 500)
    router_eth = net.w3.eth.get_balance(net.deployment.router)
    receipt = net.router.send(
        creator, "createProgramWithInit", cid, os.urandom(32), b"hello", True, 500, value=7
    )
    logs = LogDecoder().decode_all(receipt["logs"])
    names = [(log.contract, log.name) for log in logs]
    # Validators must learn about the program before anything its Mirror emits.
    assert names.index(("Router", "ProgramCreated")) < names.index(
        ("Mirror", "ExecutableBalanceTopUpRequested")
    )
    actor = next(log.args["actorId"] for log in logs if log.name == "ProgramCreated")
    init = next(log for log in logs if log.name == "MessageQueueingRequested")
    assert init.address == actor
    assert init.args == {
        "id": eth_message_id(actor, 0),
        "source": creator.address,
        "payload": b"hello",
        "value": 7,
        "callReply": True,
    }
    topup = next(log for log in logs if log.name == "ExecutableBalanceTopUpRequested")
    assert topup.args == {"value": 500}
    assert net.wvara.balance_of(net.deployment.router) >= 500
    assert net.w3.eth.get_balance(net.deployment.router) == router_eth + 7
    assert net.mirror(actor).nonce() == 1


def test_mirror_initialize_and_init_message_are_router_only(net: Net) -> None:
    mirror = net.program(init=False)
    with reverts("CallerNotRouter"):
        mirror.send(net.owner, "initialize", net.owner.address, 0)
    with reverts("CallerNotRouter"):
        mirror.send(net.owner, "sendInitMessage", net.owner.address, b"", False, 0)


def test_set_mirror_once_by_owner_for_this_router(net: Net) -> None:
    w3 = net.w3
    fresh = Router(
        w3,
        deploy_contract(
            w3,
            "Router",
            net.owner,
            net.owner.address,
            net.deployment.wrapped_vara,
            net.deployment.staking,
            60,
            8,
        ),
    )
    foreign = deploy_contract(w3, "Mirror", net.owner, net.deployment.router)
    own = deploy_contract(w3, "Mirror", net.owner, fresh.address)
    with reverts("OwnableUnauthorizedAccount"):
        fresh.send(net.users[0], "setMirror", own)
    with reverts("ZeroAddress"):
        fresh.send(net.owner, "setMirror", "0x" + "00" * 20)
    with reverts("MirrorRouterMismatch"):
        fresh.send(net.owner, "setMirror", foreign)
    with reverts("CodeNotValidated"):
        fresh.create_program(net.owner, os.urandom(32), os.urandom(32))
    fresh.send(net.owner, "setMirror", own)
    assert fresh.mirror_impl() == own
    with reverts("MirrorAlreadySet"):
        fresh.send(net.owner, "setMirror", own)


def test_constructors_reject_zero_addresses(net: Net) -> None:
    zero = "0x" + "00" * 20
    for args in ((net.deployment.wrapped_vara, zero), (zero, net.deployment.staking)):
        with reverts("ZeroAddress"):
            deploy_contract(net.w3, "Router", net.owner, net.owner.address, *args, 60, 8)
    with reverts("ZeroAddress"):
        deploy_contract(net.w3, "Staking", net.owner, net.owner.address, zero, 2, 1, 8)


def test_router_accepts_wei_only_from_programs(net: Net) -> None:
    with reverts("UnknownProgram"):
        net.raw_call(net.deployment.router, value=1)


# -- eras --


def test_genesis_validator_set(net: Net) -> None:
    assert net.router.validators() == [
        (v.address, s) for v, s in zip(net.validators, STAKES, strict=True)
    ]
    assert net.router.call("totalStake") == TOTAL_STAKE
    assert net.router.call("eraIndex") == 1


def test_start_next_era_rules(net: Net) -> None:
    with reverts("EraNotFinished"):
        net.router.start_next_era(net.users[0])
    # A newcomer with the biggest stake enters at the next era, first in set order.
    newcomer = net.new_account()
    net.wvara.mint(net.owner, newcomer.address, 1000)
    net.wvara.approve(newcomer, net.deployment.staking, 1000)
    net.staking.deposit(newcomer, 1000)
    net.staking.register_validator(newcomer, newcomer.address)
    net.w3.provider.make_request("evm_increaseTime", [3600])
    net.mine()
    receipt = net.router.start_next_era(net.users[0])  # anyone may, once the era is over
    (started,) = net.router.events(receipt, "EraStarted")
    assert started["eraIndex"] == 2 and started["validatorsCount"] == 5
    assert started["totalStake"] == TOTAL_STAKE + 1000
    assert net.router.validators()[0] == (newcomer.address, 1000)


def test_first_era_is_started_by_the_owner_and_needs_validators(net: Net) -> None:
    d = net.deployment
    fresh = Router(
        net.w3,
        deploy_contract(
            net.w3, "Router", net.owner, net.owner.address, d.wrapped_vara, d.staking, 60, 8
        ),
    )
    with reverts("OwnableUnauthorizedAccount"):
        fresh.start_next_era(net.users[0])
    with reverts("NoValidatorSet"):
        fresh.commit_batch(net.owner, net.batch(previous=bytes(32)), [])
    empty_staking = deploy_contract(
        net.w3, "Staking", net.owner, net.owner.address, d.wrapped_vara, 2, 1, 8
    )
    lonely = Router(
        net.w3,
        deploy_contract(
            net.w3, "Router", net.owner, net.owner.address, d.wrapped_vara, empty_staking, 60, 8
        ),
    )
    with reverts("CallerNotRouter"):  # Staking only takes snapshots for its Router
        lonely.start_next_era(net.owner)
    Staking(net.w3, empty_staking).send(net.owner, "setRouter", lonely.address)
    with reverts("NoValidators"):
        lonely.start_next_era(net.owner)


# -- batch acceptance --


def test_commit_empty_batch_moves_the_head(net: Net) -> None:
    batch = net.batch()
    receipt = net.commit(batch)
    assert net.router.events(receipt, "BatchCommitted") == [{"hash": batch_hash(batch)}]
    assert net.router.latest_committed_batch_hash() == batch_hash(batch)


def test_commit_emits_head_and_applies_transitions(net: Net) -> None:
    mirror = net.program()
    t = net.transition(mirror, reply(net.users[0].address, os.urandom(32), b"pong"))
    batch = net.batch([t], head=b"\x07" * 32)
    receipt = net.commit(batch)
    assert net.router.events(receipt, "HeadCommitted") == [{"head": b"\x07" * 32}]
    assert mirror.state_hash() == t.new_state_hash
    assert net.router.latest_committed_batch_hash() == batch_hash(batch)


def test_same_batch_twice_is_rejected_cheaply(net: Net) -> None:
    mirror = net.program()
    batch = net.batch([net.transition(mirror, reply(net.users[0].address, os.urandom(32), b"x"))])
    sigs = net.signatures(batch)
    net.commit(batch, signatures=sigs)
    with reverts("BatchDoesNotExtendHead"):
        net.commit(batch, signatures=sigs)
    # The head check comes first: 10k gas above the calldata floor is enough to be told so.
    call = net.router.contract.functions.commitBatch(to_abi(batch), sigs)
    data = bytes.fromhex(call._encode_transaction_data()[2:])
    floor = 21_000 + 10 * (data.count(0) + 4 * (len(data) - data.count(0)))
    with reverts("BatchDoesNotExtendHead"):
        reverting(lambda: call.call({"from": net.owner.address, "gas": floor + 10_000}))


def test_batch_must_extend_the_head(net: Net) -> None:
    with reverts("BatchDoesNotExtendHead"):
        net.commit(net.batch(previous=os.urandom(32)))


def test_block_must_be_a_recent_ancestor(net: Net) -> None:
    block_hash, number = net.recent_block()
    with reverts("BlockNotRecentAncestor"):
        net.commit(net.batch(block=(os.urandom(32), number)))
    with reverts("BlockNotRecentAncestor"):
        net.commit(net.batch(block=(block_hash, number + 100)))
    with reverts("BlockNotRecentAncestor"):
        net.commit(net.batch(block=(bytes(32), net.w3.eth.block_number + 5)))
    net.mine(300)  # now more than 256 blocks back
    with reverts("BlockNotRecentAncestor"):
        net.commit(net.batch(block=(block_hash, number)))


def test_at_most_one_chain_commitment(net: Net) -> None:
    b = net.batch()
    two = BatchCommitment(
        b.block_hash,
        b.block_number,
        b.previous_committed_batch_hash,
        (ChainCommitment((), os.urandom(32)), ChainCommitment((), os.urandom(32))),
    )
    with reverts("TooManyChainCommitments"):
        net.commit(two)


def test_transition_for_unknown_program_reverts(net: Net) -> None:
    for actor in (net.users[0].address, net.deployment.mirror_impl, Account.create().address):
        with reverts("UnknownProgram"):
            net.commit_transitions(StateTransition(actor, os.urandom(32)))


def test_transition_value_must_be_in_the_pool(net: Net) -> None:
    mirror = net.program()
    pool = net.w3.eth.get_balance(net.deployment.router)
    t = net.transition(mirror, value_to_receive=pool + 1)
    with reverts("InsufficientValue"):
        net.commit_transitions(t)


def test_commit_batch_is_not_reentrant_and_anyone_may_submit(net: Net) -> None:
    batch = net.batch()
    receipt = net.commit(batch, sender=net.users[5])
    assert receipt["status"] == 1


def test_malformed_transition_encoding_is_rejected(net: Net) -> None:
    """A dirty address (high bits set) in a message: the Mirror refuses to hash or act on it."""
    mirror = net.program()
    dest = net.users[0].address
    t = net.transition(mirror, reply(dest, os.urandom(32), b"pong"))
    batch = net.batch([t])
    call = net.router.contract.functions.commitBatch(to_abi(batch), net.signatures(batch))
    data = bytearray(bytes.fromhex(call._encode_transaction_data()[2:]))
    word = bytes(12) + bytes.fromhex(dest[2:])
    at = bytes(data).index(word)
    data[at] = 0x01  # dirty the high bytes of the destination word
    with reverts("InvalidEncoding"):
        net.raw_call(net.deployment.router, bytes(data))
    data[at] = 0x00  # the clean encoding goes through
    net.raw_call(net.deployment.router, bytes(data))

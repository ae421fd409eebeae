"""Equivocation proofs (Slasher): two signatures by one validator over different batches for
the same (previous committed batch, block hash) slash its operator, pay the reporter and
exclude the operator from elections; replayed, same-batch, mixed-signer, foreign and stale
proofs are rejected."""

from __future__ import annotations

import dataclasses

import pytest
from chainkit import Net, reverts
from eth_account import Account
from eth_account.signers.local import LocalAccount
from gexe.contracts import (
    BatchCommitment,
    CodeCommitment,
    EquivocationProof,
    NotAnEquivocation,
    OperatorInfo,
    batch_hash,
    equivocation_proof,
    equivocation_signer,
    proof_key,
    sign_batch,
)

SLASH_BPS, REPORTER_BPS = 5000, 2000  # conftest.TEST_CONFIG


def sign(net: Net, key: LocalAccount, batch: BatchCommitment) -> bytes:
    return sign_batch(key.key, batch_hash(batch), net.chain_id, net.deployment.router)


def twins(net: Net, block: tuple[bytes, int] | None = None) -> tuple[BatchCommitment, ...]:
    """Two different batches for the same (previous committed batch, block)."""
    honest = net.batch(block=block)
    other = dataclasses.replace(honest, code_commitments=(CodeCommitment(b"\x01" * 32, True),))
    return honest, other


def proof_by(
    net: Net, key: LocalAccount, block: tuple[bytes, int] | None = None, *, burned: int = 7
) -> EquivocationProof:
    honest, _ = twins(net, block)
    forged = dataclasses.replace(honest, burned=burned)
    return equivocation_proof(honest, sign(net, key, honest), forged, sign(net, key, forged))


def test_equivocation_slashes_pays_the_reporter_and_excludes(net: Net) -> None:
    _, _, c, _ = net.validators  # 299
    net.staking.unbond(c, 99)  # unbonding stake is slashable too
    reporter = net.new_account()
    treasury = net.slasher.treasury()
    assert treasury == net.owner.address
    before = net.wvara.balance_of(treasury)
    honest, other = twins(net)
    proof = equivocation_proof(honest, sign(net, c, honest), other, sign(net, c, other))
    assert equivocation_signer(proof, net.chain_id, net.deployment.router) == c.address
    receipt = net.slasher.report_equivocation(reporter, proof)
    slashed = 299 * SLASH_BPS // 10_000  # 149 of 200 active + 99 unbonding
    reward = slashed * REPORTER_BPS // 10_000  # 29
    assert net.slasher.events(receipt, "EquivocationSlashed") == [
        {
            "operator": c.address,
            "signer": c.address,
            "amount": slashed,
            "reporter": reporter.address,
        }
    ]
    assert net.wvara.balance_of(reporter.address) == reward
    assert net.wvara.balance_of(treasury) - before == slashed - reward
    assert net.staking.operator(c.address) == OperatorInfo(c.address, 51, 99, 3, True)
    key = proof_key(c.address, honest.previous_committed_batch_hash, honest.block_hash)
    assert net.slasher.proof_used(key)
    on_chain = net.slasher.call(
        "proofKey", c.address, proof.previous_committed_batch_hash, proof.block_hash
    )
    assert bytes(on_chain) == key
    # Out of the next election (the running era keeps its frozen set) ...
    assert c.address not in [s for s, _ in net.staking.elected()]
    assert c.address in [s for s, _ in net.router.validators()]
    net.next_era()
    assert c.address not in [s for s, _ in net.router.validators()]
    # ... until the owner re-admits it.
    with reverts("OwnableUnauthorizedAccount"):
        net.staking.readmit(c, c.address)
    net.staking.readmit(net.owner, c.address)
    assert (c.address, 51) in net.staking.elected()


def test_replayed_proof_is_rejected(net: Net) -> None:
    _, _, c, _ = net.validators
    proof = proof_by(net, c)
    net.slasher.report_equivocation(net.users[0], proof)
    with reverts("ProofAlreadyUsed") as caught:
        net.slasher.report_equivocation(net.users[1], proof)
    key = proof_key(c.address, proof.previous_committed_batch_hash, proof.block_hash)
    assert caught[0].error.args == (key,)
    # A third conflicting batch for the same pair convicts no more.
    with reverts("ProofAlreadyUsed"):
        block = (proof.block_hash, proof.block_number)
        net.slasher.report_equivocation(net.users[1], proof_by(net, c, block, burned=8))


def test_two_signatures_over_the_same_batch_are_rejected(net: Net) -> None:
    _, _, c, _ = net.validators
    honest, _ = twins(net)
    sig = sign(net, c, honest)
    with pytest.raises(NotAnEquivocation):
        equivocation_proof(honest, sig, honest, sig)
    half = proof_by(net, c).first
    same = EquivocationProof(
        honest.block_hash, honest.block_number, honest.previous_committed_batch_hash, half, half
    )
    with reverts("SameBatch") as caught:
        net.slasher.report_equivocation(net.users[0], same)
    assert caught[0].error.args == (batch_hash(honest),)


def test_signatures_by_different_validators_are_rejected(net: Net) -> None:
    _, _, c, d = net.validators
    honest, other = twins(net)
    proof = equivocation_proof(honest, sign(net, c, honest), other, sign(net, d, other))
    with pytest.raises(NotAnEquivocation):
        equivocation_signer(proof, net.chain_id, net.deployment.router)
    with reverts("DifferentSigners") as caught:
        net.slasher.report_equivocation(net.users[0], proof)
    assert caught[0].error.args == (c.address, d.address)


def test_stale_proof_is_rejected(net: Net) -> None:
    _, _, c, _ = net.validators
    proof = proof_by(net, c)  # a block of era 1; unbonding takes 2 eras
    net.next_era()
    # Still provable in era 2 (eth_call: nothing changes) ...
    call = net.slasher.contract.functions.reportEquivocation(*proof.args())
    assert call.call({"from": net.users[0].address}) == 299 * SLASH_BPS // 10_000
    net.next_era()
    # ... not in era 3: the stake behind the signature may be gone.
    with reverts("ProofTooOld") as caught:
        net.slasher.report_equivocation(net.users[0], proof)
    assert caught[0].error.args == (1, 3)


def test_signers_outside_the_era_set_are_not_slashed(net: Net) -> None:
    outsider = Account.create()
    with reverts("NotAValidatorOfEra") as caught:
        net.slasher.report_equivocation(net.users[0], proof_by(net, outsider))
    assert caught[0].error.args == (1, outsider.address)
    first = net.router.era_info(1).start_block
    _, _, c, _ = net.validators
    with reverts("BlockBeforeFirstEra"):
        net.slasher.report_equivocation(net.users[0], proof_by(net, c, net.block(first - 1)))


def test_a_rotated_away_signer_is_slashable_for_its_era(net: Net) -> None:
    a, _, _, _ = net.validators
    new_key = Account.create()
    net.staking.register_validator(a, new_key.address)  # era 1 still counts A's old key
    old_block = net.block(net.w3.eth.block_number)
    receipt = net.slasher.report_equivocation(net.users[0], proof_by(net, a, old_block))
    (event,) = net.slasher.events(receipt, "EquivocationSlashed")
    assert (event["operator"], event["signer"]) == (a.address, a.address)
    net.staking.readmit(net.owner, a.address)
    net.next_era()
    net.mine()
    # In era 2 the old key is nobody's validator key; the new one is A's.
    with reverts("NotAValidatorOfEra"):
        net.slasher.report_equivocation(net.users[0], proof_by(net, a))
    receipt = net.slasher.report_equivocation(net.users[0], proof_by(net, new_key))
    (event,) = net.slasher.events(receipt, "EquivocationSlashed")
    assert (event["operator"], event["signer"]) == (a.address, new_key.address)


def test_proof_helper_needs_a_shared_header() -> None:
    key = Account.create()
    one = BatchCommitment(b"\x01" * 32, 5, bytes(32))
    for other in (
        dataclasses.replace(one, block_hash=b"\x02" * 32, burned=1),
        dataclasses.replace(one, block_number=6, burned=1),
        dataclasses.replace(one, previous_committed_batch_hash=b"\x03" * 32, burned=1),
    ):
        with pytest.raises(NotAnEquivocation):
            equivocation_proof(one, sign_any(key, one), other, sign_any(key, other))
    two = dataclasses.replace(one, burned=1)
    proof = equivocation_proof(one, sign_any(key, one), two, sign_any(key, two))
    assert proof.batch_hashes() == (batch_hash(one), batch_hash(two))
    assert equivocation_signer(proof, 1, "0x" + "11" * 20) == key.address


def sign_any(key: LocalAccount, batch: BatchCommitment) -> bytes:
    return sign_batch(key.key, batch_hash(batch), 1, "0x" + "11" * 20)

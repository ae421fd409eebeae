"""commitBatch signatures: stake threshold, replays across chains and Routers, forged,
malleable, duplicate and unordered signatures, era changes."""

from __future__ import annotations

import os

from chainkit import TOTAL_STAKE, Net, reverts
from eth_account import Account
from gexe.contracts import batch_hash, sign_batch

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798


def test_exactly_two_thirds_of_stake_is_not_enough(net: Net) -> None:
    a, b, _, _ = net.validators  # 300 + 300 of 900
    with reverts("NotEnoughStake") as caught:
        net.commit(net.batch(), [a, b])
    assert caught[0].error.args == (600, TOTAL_STAKE)


def test_just_above_two_thirds_passes(net: Net) -> None:
    a, b, _, d = net.validators  # 300 + 300 + 1 = 601 of 900
    assert net.commit(net.batch(), [a, b, d])["status"] == 1


def test_all_validators_pass_and_none_fails(net: Net) -> None:
    with reverts("NotEnoughStake"):
        net.commit(net.batch(), [])
    assert net.commit(net.batch())["status"] == 1


def test_signature_for_another_chain_id_does_not_count(net: Net) -> None:
    batch = net.batch()
    sigs = net.signatures(batch)
    sigs[0] = sign_batch(
        net.validators[0].key, batch_hash(batch), net.chain_id + 1, net.deployment.router
    )
    with reverts("UnexpectedSigner"):
        net.commit(batch, signatures=sigs)


def test_signature_for_another_router_does_not_count(net: Net) -> None:
    batch = net.batch()
    other_router = Account.create().address
    sigs = [
        sign_batch(v.key, batch_hash(batch), net.chain_id, other_router) for v in net.validators
    ]
    with reverts("UnexpectedSigner"):
        net.commit(batch, signatures=sigs)


def test_signature_over_other_content_does_not_count(net: Net) -> None:
    batch = net.batch()
    tampered = net.batch(head=os.urandom(32), chain=True)
    with reverts("UnexpectedSigner"):
        net.commit(tampered, signatures=net.signatures(batch))


def test_forged_signatures_are_rejected(net: Net) -> None:
    batch = net.batch()
    good = net.signatures(batch)
    outsider = Account.create()
    with reverts("UnexpectedSigner"):
        net.commit(
            batch, signatures=net.signatures(batch, [outsider, *net.validators], ordered=False)
        )
    # r = the generator's x (a valid point), s low: recovers some unrelated address.
    garbage = SECP256K1_GX.to_bytes(32, "big") + b"\x01" + os.urandom(31) + b"\x1b"
    with reverts("UnexpectedSigner"):
        net.commit(batch, signatures=[garbage, *good])
    with reverts("ECDSAInvalidSignature"):  # v neither 27 nor 28
        net.commit(batch, signatures=[good[0][:64] + b"\x05", *good[1:]])
    with reverts("ECDSAInvalidSignature"):  # r = s = 0
        net.commit(batch, signatures=[bytes(64) + b"\x1b", *good[1:]])
    with reverts("ECDSAInvalidSignatureLength"):
        net.commit(batch, signatures=[good[0][:64], *good[1:]])


def test_malleable_high_s_signature_is_rejected(net: Net) -> None:
    batch = net.batch()
    sigs = net.signatures(batch)
    r, s, v = sigs[0][:32], int.from_bytes(sigs[0][32:64], "big"), sigs[0][64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # same signer, high s
    with reverts("ECDSAInvalidSignatureS"):
        net.commit(batch, signatures=[twin, *sigs[1:]])


def test_duplicate_signer_is_rejected(net: Net) -> None:
    a, b, c, _ = net.validators
    batch = net.batch()
    sigs = net.signatures(batch, [a, b, c])
    with reverts("UnexpectedSigner") as caught:
        net.commit(batch, signatures=[sigs[0], sigs[0], *sigs[1:]])
    assert caught[0].error.args == (1, a.address)
    # Repeating the 1-stake validator must not push 600 over the threshold either.
    d = net.validators[3]
    dsig = net.signatures(batch, [d])[0]
    with reverts("UnexpectedSigner"):
        net.commit(batch, signatures=[*net.signatures(batch, [a, b]), dsig, dsig])


def test_signatures_must_follow_the_set_order(net: Net) -> None:
    a, b, c, _ = net.validators
    batch = net.batch()
    with reverts("UnexpectedSigner"):
        net.commit(batch, signatures=net.signatures(batch, [b, a, c], ordered=False))
    assert (
        net.commit(batch, signatures=net.signatures(batch, [a, b, c], ordered=False))["status"] == 1
    )


def test_old_era_signers_stop_counting(net: Net) -> None:
    a, b, c, d = net.validators
    # A and B unbond everything; the next era is C and D (+ a newcomer) only.
    for v, stake in ((a, 300), (b, 300)):
        net.staking.send(v, "unbond", stake)
    newcomer = net.new_account()
    net.wvara.mint(net.owner, newcomer.address, 5000)
    net.wvara.approve(newcomer, net.deployment.staking, 5000)
    net.staking.deposit(newcomer, 5000)
    net.staking.register_validator(newcomer, newcomer.address)
    net.next_era()
    assert [s for s, _ in net.router.validators()] == [newcomer.address, c.address, d.address]
    net.mine()  # a block of the new era: only the new set signs for it
    batch = net.batch()
    assert net.router.era_of_block(batch.block_number) == 2
    with reverts("UnexpectedSigner"):
        net.commit(batch, signatures=net.signatures(batch, [a, b, c, d], ordered=False))
    assert net.commit(batch, [newcomer])["status"] == 1

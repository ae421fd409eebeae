"""Signature aggregation (pure): checks, stake threshold, set order, early approvals."""

from __future__ import annotations

import os

from eth_account import Account
from eth_utils import to_canonical_address
from gexe.node.gossip_messages import ApproveBatch, EthSigner
from gexe.sequencer.aggregate import Aggregator, ValidatorSet, threshold_reached

KEYS = [Account.create() for _ in range(4)]


def vset(stakes=(100, 100, 100, 100), era: int = 1) -> ValidatorSet:
    return ValidatorSet(era, tuple(k.address for k in KEYS[: len(stakes)]), tuple(stakes))


def approve(digest: bytes, i: int, *, signer: int | None = None) -> ApproveBatch:
    key = KEYS[i if signer is None else signer]
    sig = EthSigner.from_account(key).sign_digest(digest)
    return ApproveBatch(digest, 1, to_canonical_address(KEYS[i].address), sig)


def test_threshold_is_strictly_more_than_two_thirds():
    assert not threshold_reached(200, 300)  # exactly 2/3
    assert threshold_reached(201, 300)
    assert not threshold_reached(0, 0)
    d = os.urandom(32)
    agg = Aggregator()
    agg.begin(d, vset((1, 1, 1)))
    assert agg.add(approve(d, 0)) == Aggregator.COUNTED
    assert agg.add(approve(d, 1)) == Aggregator.COUNTED
    assert not agg.ready  # 2 of 3 equal stakes is exactly 2/3
    assert agg.add(approve(d, 2)) == Aggregator.COUNTED
    assert agg.ready


def test_two_of_four_is_not_enough_three_is():
    d = os.urandom(32)
    agg = Aggregator()
    agg.begin(d, vset())
    agg.add(approve(d, 3))
    agg.add(approve(d, 1))
    assert agg.signed_stake == 200 and agg.total_stake == 400 and not agg.ready
    agg.add(approve(d, 0))
    assert agg.ready
    # signatures in set order (0, 1, 3), whatever the arrival order
    sigs = agg.signatures()
    assert sigs == [approve(d, i).signature for i in (0, 1, 3)]
    assert agg.signers() == [KEYS[i].address for i in (0, 1, 3)]
    assert agg.missing() == [KEYS[2].address]


def test_weighted_stakes():
    d = os.urandom(32)
    agg = Aggregator()
    agg.begin(d, vset((700, 100, 100, 100)))
    agg.add(approve(d, 0))
    assert agg.ready  # 700 of 1000


def test_rejections():
    d = os.urandom(32)
    agg = Aggregator()
    agg.begin(d, vset((100, 100, 100)))  # KEYS[3] is not in this set
    assert agg.add(approve(d, 3)) == Aggregator.NOT_IN_SET
    assert agg.add(approve(d, 0, signer=1)) == Aggregator.BAD_SIGNATURE  # signed by another
    wrong = approve(os.urandom(32), 0)  # a signature over another digest
    assert agg.add(ApproveBatch(d, 1, wrong.validator, wrong.signature)) == Aggregator.BAD_SIGNATURE
    good = approve(d, 0)
    high_s = (
        good.signature[:32]
        + (
            (0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141)
            - int.from_bytes(good.signature[32:64], "big")
        ).to_bytes(32, "big")
        + bytes([55 - good.signature[64]])
    )
    assert agg.add(ApproveBatch(d, 1, good.validator, high_s)) == Aggregator.BAD_SIGNATURE
    assert agg.add(good) == Aggregator.COUNTED
    assert agg.add(good) == Aggregator.DUPLICATE
    assert agg.signed_stake == 100 and len(agg.signatures()) == 1


def test_early_approvals_are_replayed_and_kept_on_rebegin():
    d1, d2 = os.urandom(32), os.urandom(32)
    agg = Aggregator()
    assert agg.add(approve(d1, 0)) == Aggregator.EARLY  # nothing begun yet
    agg.begin(d2, vset())
    assert agg.add(approve(d1, 1)) == Aggregator.EARLY  # another digest
    agg.add(approve(d2, 2))
    agg.begin(d1, vset())
    assert agg.signers() == [KEYS[0].address, KEYS[1].address]
    agg.begin(d2, vset())  # d2's approval was stashed, not lost
    assert agg.signers() == [KEYS[2].address]
    agg.reset()
    assert agg.digest is None and not agg.ready and agg.signatures() == []
    agg.begin(d2, vset())
    assert agg.signers() == [KEYS[2].address]


def test_early_buffer_is_bounded():
    agg = Aggregator(keep_early=3)
    digests = [os.urandom(32) for _ in range(5)]
    for d in digests:
        agg.add(approve(d, 0))
    agg.begin(digests[0], vset())
    assert agg.signers() == []  # evicted
    agg.begin(digests[4], vset())
    assert agg.signers() == [KEYS[0].address]

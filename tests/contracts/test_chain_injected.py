"""Injected transactions on chain: the EIP-712 digests of `gexe.contracts.injected` equal the
Solidity ones (Slasher, HashHarness), and a validator that signs two different sequencer
blocks for one `(anchor, height)` is slashed through `Slasher.reportSequencerEquivocation`;
replayed, same-block, other-slot, mixed-signer, foreign and stale proofs are rejected."""

from __future__ import annotations

import dataclasses
import random

import pytest
from chainkit import Net, reverts
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from gexe.contracts import (
    BatchCommitment,
    NotAnEquivocation,
    OperatorInfo,
    batch_hash,
    equivocation_proof,
    proof_key,
    sign_batch,
)
from gexe.contracts.equivocation import (
    sequencer_equivocation_args,
    sequencer_header_abi,
    sequencer_proof_key,
)
from gexe.contracts.injected import (
    Domain,
    InjectedTransaction,
    Promise,
    SequencerBlockHeader,
    transactions_hash,
)

SLASH_BPS, REPORTER_BPS = 5000, 2000  # conftest.TEST_CONFIG
CASES = 40
U64 = (1 << 64) - 1
U128 = (1 << 128) - 1


class Gen:
    """Seeded random injected-transaction structs, biased towards edge values."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def b32(self) -> bytes:
        return self.r.choice([bytes(32), b"\xff" * 32, self.r.randbytes(32), self.r.randbytes(32)])

    def uint(self, bits: int) -> int:
        top = (1 << bits) - 1
        return self.r.choice([0, 1, top, self.r.getrandbits(bits), self.r.getrandbits(32)])

    def header(self) -> SequencerBlockHeader:
        return SequencerBlockHeader(
            self.b32(), self.uint(64), self.uint(64), self.b32(), self.b32()
        )

    def tx(self) -> InjectedTransaction:
        dest = self.r.choice([bytes(20), b"\xff" * 20, self.r.randbytes(20)])
        size = self.r.choice([0, 1, 31, 32, 33, 64, self.r.randrange(300)])
        return InjectedTransaction(
            dest, self.r.randbytes(size), self.b32(), self.b32(), value=self.uint(128)
        )

    def promise(self) -> Promise:
        code = self.r.choice([bytes(4), b"\x01\x00\x00\x00", b"\xff" * 4, self.r.randbytes(4)])
        return Promise(self.b32(), self.b32(), code)


def domain(net: Net) -> Domain:
    return Domain(net.chain_id, net.deployment.router)


@pytest.fixture(scope="module")
def harness(net_session: Net):
    return net_session.deploy("HashHarness")


# -- digests --


def test_sequencer_block_hash_matches_solidity(net: Net) -> None:
    gen, dom = Gen(1), domain(net)
    for _ in range(CASES):
        header = gen.header()
        assert net.slasher.sequencer_block_hash(header) == dom.block_hash(header), header
    extremes = SequencerBlockHeader(b"\xff" * 32, U64, U64, b"\xff" * 32, b"\xff" * 32)
    assert net.slasher.sequencer_block_hash(extremes) == dom.block_hash(extremes)


def test_injected_transaction_and_promise_digests_match_solidity(net: Net, harness) -> None:
    gen, dom = Gen(2), domain(net)
    separator = bytes(net.router.call("domainSeparator"))
    assert separator == dom.separator
    for _ in range(CASES):
        tx = gen.tx()
        abi = (
            to_checksum_address(tx.destination),
            tx.payload,
            tx.value,
            tx.reference_block,
            tx.salt,
        )
        assert bytes(harness.call("injectedTransactionStructHash", abi)) == tx.struct_hash()
        assert bytes(harness.call("injectedTransactionHash", separator, abi)) == dom.tx_hash(tx)
        p = gen.promise()
        pabi = (p.tx_hash, p.reply_hash, p.reply_code)
        assert bytes(harness.call("promiseStructHash", pabi)) == p.struct_hash()
        assert bytes(harness.call("promiseDigest", separator, pabi)) == dom.promise_digest(p)
    big = InjectedTransaction(b"\xff" * 20, b"\x00" * 1000, b"\xff" * 32, b"\xff" * 32, value=U128)
    big_abi = (
        to_checksum_address(big.destination),
        big.payload,
        U128,
        big.reference_block,
        big.salt,
    )
    assert bytes(harness.call("injectedTransactionHash", separator, big_abi)) == dom.tx_hash(big)


def test_solidity_recovers_what_python_signs(net: Net) -> None:
    """A header signed with `Domain.sign_block` is attributed to its key on chain: the
    proof's signer is the one `Domain.block_signer` recovers."""
    _, _, c, _ = net.validators
    first, second = twins(net)
    dom = domain(net)
    sig = dom.sign_block(c.key, first)
    assert dom.block_signer(first, sig) == bytes.fromhex(c.address[2:])
    args = sequencer_equivocation_args(first, sig, second, dom.sign_block(c.key, second))
    call = net.slasher.contract.functions.reportSequencerEquivocation(*args)
    assert call.call({"from": net.users[0].address}) == 299 * SLASH_BPS // 10_000


# -- equivocation --


def twins(
    net: Net, block: tuple[bytes, int] | None = None, height: int = 7
) -> tuple[SequencerBlockHeader, SequencerBlockHeader]:
    """Two different sequencer blocks for the same (anchor, height)."""
    anchor, number = block or net.recent_block()
    first = SequencerBlockHeader(
        anchor, number, height, keccak(b"parent"), transactions_hash([keccak(b"tx1")])
    )
    second = dataclasses.replace(first, transactions_hash=transactions_hash([keccak(b"tx2")]))
    return first, second


def signed_twins(
    net: Net, key: LocalAccount, block: tuple[bytes, int] | None = None, height: int = 7
) -> tuple[SequencerBlockHeader, bytes, SequencerBlockHeader, bytes]:
    first, second = twins(net, block, height)
    dom = domain(net)
    return first, dom.sign_block(key.key, first), second, dom.sign_block(key.key, second)


def report_raw(net: Net, sender: LocalAccount, *parts: object):
    """Send `reportSequencerEquivocation` without the Python pre-checks."""
    first, sig_a, second, sig_b = parts
    args = (sequencer_header_abi(first), sig_a, sequencer_header_abi(second), sig_b)  # type: ignore[arg-type]
    return net.slasher.send(sender, "reportSequencerEquivocation", *args)


def test_sequencer_equivocation_slashes_pays_the_reporter_and_excludes(net: Net) -> None:
    _, _, c, _ = net.validators  # 299
    net.staking.unbond(c, 99)  # unbonding stake is slashable too
    reporter = net.new_account()
    treasury = net.slasher.treasury()
    before = net.wvara.balance_of(treasury)
    first, sig_a, second, sig_b = signed_twins(net, c)
    receipt = net.slasher.report_sequencer_equivocation(reporter, first, sig_a, second, sig_b)
    slashed = 299 * SLASH_BPS // 10_000  # 149 of 200 active + 99 unbonding
    reward = slashed * REPORTER_BPS // 10_000  # 29
    assert net.slasher.events(receipt, "SequencerEquivocationSlashed") == [
        {
            "operator": c.address,
            "signer": c.address,
            "amount": slashed,
            "reporter": reporter.address,
            "anchor": first.anchor,
            "height": first.height,
        }
    ]
    assert net.slasher.events(receipt, "EquivocationSlashed") == []
    assert net.wvara.balance_of(reporter.address) == reward
    assert net.wvara.balance_of(treasury) - before == slashed - reward
    assert net.staking.operator(c.address) == OperatorInfo(c.address, 51, 99, 3, True)
    key = sequencer_proof_key(c.address, first.anchor, first.height)
    assert net.slasher.proof_used(key)
    assert bytes(net.slasher.call("sequencerProofKey", c.address, first.anchor, 7)) == key
    # Out of the next election; the running era keeps its frozen set.
    assert c.address not in [s for s, _ in net.staking.elected()]
    assert c.address in [s for s, _ in net.router.validators()]
    net.next_era()
    assert c.address not in [s for s, _ in net.router.validators()]
    print(f"reportSequencerEquivocation gas: {receipt['gasUsed']}")
    assert receipt["gasUsed"] < 250_000


def test_replayed_sequencer_proof_is_rejected(net: Net) -> None:
    _, _, c, _ = net.validators
    parts = signed_twins(net, c)
    net.slasher.report_sequencer_equivocation(net.users[0], *parts)
    key = sequencer_proof_key(c.address, parts[0].anchor, parts[0].height)
    with reverts("ProofAlreadyUsed") as caught:
        net.slasher.report_sequencer_equivocation(net.users[1], *parts)
    assert caught[0].error.args == (key,)
    # A third block for the same (anchor, height) convicts no more; the order does not matter.
    dom = domain(net)
    third = dataclasses.replace(parts[0], parent=keccak(b"other parent"))
    with reverts("ProofAlreadyUsed"):
        net.slasher.report_sequencer_equivocation(
            net.users[1], third, dom.sign_block(c.key, third), parts[0], parts[1]
        )
    # Another height is another offence.
    block = (parts[0].anchor, parts[0].anchor_number)
    receipt = net.slasher.report_sequencer_equivocation(
        net.users[1], *signed_twins(net, c, block, height=8)
    )
    (event,) = net.slasher.events(receipt, "SequencerEquivocationSlashed")
    assert (event["operator"], event["height"]) == (c.address, 8)


def test_headers_for_different_slots_are_rejected(net: Net) -> None:
    _, _, c, _ = net.validators
    dom = domain(net)
    first, _ = twins(net)
    other_block = net.block(first.anchor_number - 1)
    for other in (
        dataclasses.replace(first, height=first.height + 1),
        dataclasses.replace(first, anchor=other_block[0]),
        dataclasses.replace(first, anchor_number=first.anchor_number - 1),
        dataclasses.replace(first, anchor=other_block[0], anchor_number=other_block[1]),
    ):
        sig_a, sig_b = dom.sign_block(c.key, first), dom.sign_block(c.key, other)
        with pytest.raises(NotAnEquivocation):
            sequencer_equivocation_args(first, sig_a, other, sig_b)
        with pytest.raises(NotAnEquivocation):
            net.slasher.report_sequencer_equivocation(net.users[0], first, sig_a, other, sig_b)
        with reverts("NotSameSlot") as caught:
            report_raw(net, net.users[0], first, sig_a, other, sig_b)
        assert caught[0].error.args == (
            first.anchor,
            first.anchor_number,
            first.height,
            other.anchor,
            other.anchor_number,
            other.height,
        )


def test_two_signatures_over_the_same_block_are_rejected(net: Net) -> None:
    _, _, c, _ = net.validators
    dom = domain(net)
    first, _ = twins(net)
    sig = dom.sign_block(c.key, first)
    with pytest.raises(NotAnEquivocation):
        sequencer_equivocation_args(first, sig, first, sig)
    with reverts("SameSequencerBlock") as caught:
        report_raw(net, net.users[0], first, sig, first, sig)
    assert caught[0].error.args == (dom.block_hash(first),)


def test_signatures_by_different_keys_are_rejected(net: Net) -> None:
    _, _, c, d = net.validators
    dom = domain(net)
    first, second = twins(net)
    with reverts("DifferentSigners") as caught:
        net.slasher.report_sequencer_equivocation(
            net.users[0], first, dom.sign_block(c.key, first), second, dom.sign_block(d.key, second)
        )
    assert caught[0].error.args == (c.address, d.address)
    # A signature under another network's domain recovers to someone else.
    foreign = Domain(net.chain_id + 1, net.deployment.router)
    with reverts("DifferentSigners"):
        net.slasher.report_sequencer_equivocation(
            net.users[0],
            first,
            dom.sign_block(c.key, first),
            second,
            foreign.sign_block(c.key, second),
        )


def test_signers_outside_the_era_set_are_not_slashed(net: Net) -> None:
    outsider = Account.create()
    with reverts("NotAValidatorOfEra") as caught:
        net.slasher.report_sequencer_equivocation(net.users[0], *signed_twins(net, outsider))
    assert caught[0].error.args == (1, outsider.address)
    first_block = net.router.era_info(1).start_block
    _, _, c, _ = net.validators
    with reverts("BlockBeforeFirstEra") as caught:
        net.slasher.report_sequencer_equivocation(
            net.users[0], *signed_twins(net, c, net.block(first_block - 1))
        )
    assert caught[0].error.args == (first_block - 1,)


def test_stale_sequencer_proof_is_rejected(net: Net) -> None:
    _, _, c, _ = net.validators
    parts = signed_twins(net, c)  # anchored in era 1; unbonding takes 2 eras
    net.next_era()
    call = net.slasher.contract.functions.reportSequencerEquivocation(
        *sequencer_equivocation_args(*parts)
    )
    assert call.call({"from": net.users[0].address}) == 299 * SLASH_BPS // 10_000
    net.next_era()
    with reverts("ProofTooOld") as caught:
        net.slasher.report_sequencer_equivocation(net.users[0], *parts)
    assert caught[0].error.args == (1, 3)


# -- proof keys --


def test_batch_and_sequencer_proof_keys_never_collide(net: Net) -> None:
    rng = random.Random(5)
    for _ in range(20):
        signer = Account.create().address
        anchor, other = rng.randbytes(32), rng.randbytes(32)
        height = rng.choice([0, 1, U64, rng.getrandbits(64)])
        seq = sequencer_proof_key(signer, anchor, height)
        assert bytes(net.slasher.call("sequencerProofKey", signer, anchor, height)) == seq
        # The batch key over the same values, in both roles, and over the height's word.
        height_word = height.to_bytes(32, "big")
        for prev, block_hash in ((anchor, other), (other, anchor), (anchor, height_word)):
            batch = proof_key(signer, prev, block_hash)
            assert batch != seq
            assert bytes(net.slasher.call("proofKey", signer, prev, block_hash)) == batch
    # The derivations themselves differ: tagged 61-byte vs untagged 84-byte preimages.
    signer = Account.create().address
    assert sequencer_proof_key(signer, bytes(32), 0) == keccak(
        b"\x02" + bytes.fromhex(signer[2:]) + bytes(32) + bytes(8)
    )
    assert proof_key(signer, bytes(32), bytes(32)) == keccak(bytes.fromhex(signer[2:]) + bytes(64))


def test_batch_and_sequencer_equivocations_are_separate_offences(net: Net) -> None:
    """The same validator convicted for a batch at a block is still convictable for a
    sequencer block anchored there (different keys), and the other way round."""
    _, _, c, _ = net.validators
    block = net.recent_block()
    honest = BatchCommitment(block[0], block[1], net.router.latest_committed_batch_hash())
    forged = dataclasses.replace(honest, burned=7)

    def sign(b: BatchCommitment) -> bytes:
        return sign_batch(c.key, batch_hash(b), net.chain_id, net.deployment.router)

    net.slasher.report_equivocation(
        net.users[0], equivocation_proof(honest, sign(honest), forged, sign(forged))
    )
    receipt = net.slasher.report_sequencer_equivocation(
        net.users[0], *signed_twins(net, c, block, height=1)
    )
    (event,) = net.slasher.events(receipt, "SequencerEquivocationSlashed")
    assert event["signer"] == c.address
    assert net.slasher.proof_used(
        proof_key(c.address, honest.previous_committed_batch_hash, block[0])
    )
    assert net.slasher.proof_used(sequencer_proof_key(c.address, block[0], 1))

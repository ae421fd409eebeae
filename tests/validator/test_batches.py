"""Batches from stored results (validator/batch.py) and signing on request (approve.py).

Real runtime, real LMDB; blocks are fed to `Compute.apply` directly (no chain), so these
tests pin the batch rules: which blocks a batch covers, how transitions merge, and that a
validator signs only the batch it computed itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eth_account import Account
from gexe.contracts import (
    ZERO_HASH,
    batch_digest,
    batch_hash,
    code_id,
    recover_signer,
)
from gexe.node.gossip_messages import RequestBatchValidation, recover_digest_signer
from gexe.node.store import Store
from gexe.runtime import CreateProgram, QueueMessage, TopUpExecutableBalance
from gexe.validator.approve import Approve, Approver, Pending, Refuse
from gexe.validator.batch import BatchBook
from gexe.validator.chain import Header
from gexe.validator.compute import Compute
from gexe.validator.events import CodeUpload, CommittedBatch

from gexe import programs

ROUTER = "0x" + "ab" * 20
CHAIN_ID = 31337
USER = bytes(12) + b"\x11" * 20


def pid(n: int) -> bytes:
    return bytes(12) + bytes([n + 1]) * 20


def mid(n: int) -> bytes:
    return n.to_bytes(32, "big")


class Chain:
    """A straight chain of blocks fed to one Compute."""

    def __init__(self, tmp: Path) -> None:
        self.store = Store(tmp / "store")
        self.compute = Compute(self.store)
        self.book = BatchBook(self.compute)
        self.headers: list[Header] = []

    def block(self, *items: object) -> Header:
        n = len(self.headers) + 100
        parent = self.headers[-1].hash if self.headers else b"\x00" * 32
        h = Header(n, os.urandom(32), parent, 1_700_000_000 + n)
        self.compute.apply(h, list(items))  # type: ignore[arg-type]
        self.headers.append(h)
        return h

    def close(self) -> None:
        self.compute.close()
        self.store.close()


@pytest.fixture
def chain(tmp_path: Path):
    c = Chain(tmp_path)
    yield c
    c.close()


def setup_ping(c: Chain, n: int = 2) -> bytes:
    code = programs.path("ping").read_bytes()
    cid = code_id(code)
    c.block(CodeUpload(cid, code, b"\x01" * 32))
    c.block(
        *[CreateProgram(pid(i), cid) for i in range(n)],
        *[TopUpExecutableBalance(pid(i), 10**15) for i in range(n)],
    )
    c.block(*[QueueMessage(pid(i), mid(1000 + i), USER) for i in range(n)])  # init messages
    return cid


def test_batch_covers_every_block_since_the_previous_batch(chain: Chain) -> None:
    cid = setup_ping(chain)
    chain.block()  # empty blocks in between cost nothing and add nothing
    chain.block(QueueMessage(pid(0), mid(1), USER, b"PING", 7))
    chain.block()
    last = chain.block(QueueMessage(pid(0), mid(2), USER, b"hello"))
    batch = chain.book.build(ZERO_HASH, last.hash)
    assert batch is not None
    assert batch.block_hash == last.hash and batch.block_number == last.number
    assert batch.previous_committed_batch_hash == ZERO_HASH
    assert [(c.id, c.valid) for c in batch.code_commitments] == [(cid, True)]
    (chain_c,) = batch.chain_commitment
    assert chain_c.head == last.hash
    by_actor = {t.actor_id.lower(): t for t in chain_c.transitions}
    assert set(by_actor) == {"0x" + pid(i)[12:].hex() for i in range(2)}
    t0 = by_actor["0x" + pid(0)[12:].hex()]
    # the messages of every block, in block order: init reply, PONG, echo
    payloads = [m.payload for m in t0.messages]
    assert payloads[-2:] == [b"PONG", b"hello"]
    assert [m.reply_details.to for m in t0.messages][-2:] == [mid(1), mid(2)]
    assert t0.value_to_receive == sum(m.value for m in t0.messages)
    # the state hash is the one after the last block
    assert t0.new_state_hash == chain.compute.state.programs[pid(0)]
    # burned: everything the dispatches of the covered blocks burned, as balance units
    gas = sum(chain.compute.result(chain.store.block(h.hash))["gas_burned"] for h in chain.headers)
    assert gas > 0 and batch.burned == gas * 100


def test_previous_batch_bounds_the_next_one(chain: Chain) -> None:
    setup_ping(chain)
    first = chain.block(QueueMessage(pid(0), mid(1), USER, b"PING"))
    b1 = chain.book.build(ZERO_HASH, first.hash)
    assert b1 is not None
    h1 = batch_hash(b1)
    # the chain tells the node where the committed batch ends (BatchCommitted calldata)
    chain.block(CommittedBatch(h1, first.hash, first.number))
    assert chain.book.committed_block(h1).hash == first.hash
    later = chain.block(QueueMessage(pid(1), mid(2), USER, b"PING"))
    b2 = chain.book.build(h1, later.hash)
    assert b2 is not None and b2.previous_committed_batch_hash == h1
    assert b2.code_commitments == ()
    (c2,) = b2.chain_commitment
    assert [t.actor_id.lower() for t in c2.transitions] == ["0x" + pid(1)[12:].hex()]
    assert [m.payload for m in c2.transitions[0].messages] == [b"PONG"]
    # nothing to commit since `later`? the batch up to a newer empty block is the same
    # content, ending at the newer block
    empty = chain.block()
    b3 = chain.book.build(h1, empty.hash)
    assert b3 is not None and b3.chain_commitment[0].transitions == c2.transitions
    assert [r.hash for r in chain.book.blocks_since(h1)] == [later.hash]
    # a target at or before the previous batch's block, an unknown previous batch or an
    # unknown block cannot be built
    assert chain.book.build(h1, first.hash) is None
    assert chain.book.build(os.urandom(32), later.hash) is None
    assert chain.book.build(h1, os.urandom(32)) is None


def test_same_pair_gives_the_same_batch_on_another_node(tmp_path: Path) -> None:
    a, b = Chain(tmp_path / "a"), Chain(tmp_path / "b")
    try:
        for c in (a, b):
            c.headers = []
        setup_ping(a)
        # b sees the very same blocks (same hashes)
        for h, items in [
            (a.headers[0], [CodeUpload(*_upload())]),
            (
                a.headers[1],
                [CreateProgram(pid(i), _upload()[0]) for i in range(2)]
                + [TopUpExecutableBalance(pid(i), 10**15) for i in range(2)],
            ),
            (a.headers[2], [QueueMessage(pid(i), mid(1000 + i), USER) for i in range(2)]),
        ]:
            b.compute.apply(h, items)  # type: ignore[arg-type]
            b.headers.append(h)
        last = a.headers[-1]
        ba, bb = a.book.build(ZERO_HASH, last.hash), b.book.build(ZERO_HASH, last.hash)
        assert ba is not None and ba == bb and batch_hash(ba) == batch_hash(bb)
    finally:
        a.close()
        b.close()


def _upload() -> tuple[bytes, bytes, bytes]:
    code = programs.path("ping").read_bytes()
    return code_id(code), code, b"\x01" * 32


def approver(chain: Chain) -> tuple[Approver, object]:
    acct = Account.create()
    return (
        Approver(
            chain.book,
            bytes(acct.key),
            bytes.fromhex(acct.address[2:]),
            CHAIN_ID,
            ROUTER,
            lambda: 1,
            max_age=3,
        ),
        acct,
    )


def request_for(chain: Chain, prev: bytes, block: bytes) -> RequestBatchValidation:
    batch = chain.book.build(prev, block)
    assert batch is not None
    digest = batch_digest(batch_hash(batch), CHAIN_ID, ROUTER)
    return RequestBatchValidation(digest, 1, block, prev)


def test_validator_signs_only_its_own_batch(chain: Chain) -> None:
    setup_ping(chain)
    last = chain.block(QueueMessage(pid(0), mid(1), USER, b"PING"))
    ap, acct = approver(chain)
    req = request_for(chain, ZERO_HASH, last.hash)
    d = ap.request(req)
    assert isinstance(d, Approve)
    msg = d.message
    assert msg.batch_digest == req.batch_digest and msg.era == 1
    # the gossip signature is the Router's EIP-712 signature over the same batch
    assert recover_digest_signer(msg.batch_digest, msg.signature) == msg.validator
    assert recover_signer(msg.signature, batch_hash(d.batch), CHAIN_ID, ROUTER) == acct.address
    # asking again gives the same approval (deterministic signature)
    again = ap.request(req)
    assert isinstance(again, Approve) and again.message == msg
    # a different digest for the same (previous, block): refused, never signed
    forged = RequestBatchValidation(os.urandom(32), 1, last.hash, ZERO_HASH)
    d = ap.request(forged)
    assert isinstance(d, Refuse) and "already signed" in d.reason
    # a digest that is not our batch for a fresh pair: refused with the reason
    prev_block = chain.headers[-2]
    wrong = RequestBatchValidation(os.urandom(32), 1, prev_block.hash, ZERO_HASH)
    d = ap.request(wrong)
    assert isinstance(d, Refuse) and "digest" in d.reason
    assert ap.refused == 2


def test_request_for_a_block_not_processed_yet_waits(chain: Chain) -> None:
    setup_ping(chain)
    ap, _ = approver(chain)
    # compute the request on a twin chain that is one block ahead
    ahead = Header(chain.headers[-1].number + 1, os.urandom(32), chain.headers[-1].hash, 1)
    req = RequestBatchValidation(os.urandom(32), 1, ahead.hash, ZERO_HASH)
    assert isinstance(ap.request(req), Pending)
    assert ap.retry() == []  # still unknown, aged one block
    chain.compute.apply(ahead, [QueueMessage(pid(0), mid(5), USER, b"PING")])
    chain.headers.append(ahead)
    good = request_for(chain, ZERO_HASH, ahead.hash)
    # the pending one (wrong digest) is refused once the block is known
    ((r, d),) = ap.retry()
    assert r == req and isinstance(d, Refuse)
    assert isinstance(ap.request(good), Approve)
    # a request that never becomes buildable is dropped after max_age blocks
    ghost = RequestBatchValidation(os.urandom(32), 1, os.urandom(32), ZERO_HASH)
    assert isinstance(ap.request(ghost), Pending)
    outcomes = [ap.retry() for _ in range(3)]
    assert outcomes[:2] == [[], []]
    ((r, d),) = outcomes[2]
    assert r == ghost and isinstance(d, Refuse) and not ap.pending


def test_content_pointer_survives_restart_and_revert(tmp_path: Path) -> None:
    c = Chain(tmp_path)
    try:
        setup_ping(c)
        mark = c.block(QueueMessage(pid(0), mid(1), USER, b"PING"))
        c.block()
        c.block()
        want = c.book.build(ZERO_HASH, c.headers[-1].hash)
        tip = c.compute.content_tip
        c.compute.close()
        c.compute = Compute(c.store)  # restart: the tip comes back from the store
        c.book = BatchBook(c.compute)
        assert c.compute.content_tip == tip
        assert c.book.build(ZERO_HASH, c.headers[-1].hash) == want
        # a reorg back to `mark` and a new branch with content
        c.compute.revert_to(mark)
        c.headers = c.headers[: c.headers.index(mark) + 1]
        new = c.block(QueueMessage(pid(1), mid(9), USER, b"other"))
        b = c.book.build(ZERO_HASH, new.hash)
        assert b is not None
        payloads = [m.payload for t in b.chain_commitment[0].transitions for m in t.messages]
        assert b"other" in payloads and payloads.count(b"PONG") == 1
        # the abandoned branch's block is no longer a valid target
        assert c.book.build(ZERO_HASH, want.block_hash) is None
    finally:
        c.close()


def test_a_validator_outside_the_current_set_does_not_sign(chain: Chain) -> None:
    setup_ping(chain)
    last = chain.block(QueueMessage(pid(0), mid(1), USER, b"PING"))
    acct = Account.create()
    member = [False]
    ap = Approver(
        chain.book,
        bytes(acct.key),
        bytes.fromhex(acct.address[2:]),
        CHAIN_ID,
        ROUTER,
        lambda: 2,
        elected=lambda: member[0],
    )
    req = request_for(chain, ZERO_HASH, last.hash)
    d = ap.request(req)
    assert isinstance(d, Refuse) and "not in the current era" in d.reason
    member[0] = True
    assert isinstance(ap.request(req), Approve)


def test_two_digests_for_one_pair_make_a_proof_that_convicts(chain: Chain) -> None:
    from dataclasses import replace

    from gexe.contracts import sign_batch
    from gexe.contracts.equivocation import equivocation_signer
    from gexe.node.gossip_messages import (
        ApproveBatch,
        GossipDomain,
        InconsistentPayload,
        seal,
        verify,
    )
    from gexe.validator.approve import header_of
    from gexe.validator.equivocation import EquivocationDetector

    setup_ping(chain)
    last = chain.block(QueueMessage(pid(0), mid(1), USER, b"PING"))
    ap, acct = approver(chain)
    good = ap.request(request_for(chain, ZERO_HASH, last.hash))
    assert isinstance(good, Approve) and good.message.header == header_of(good.batch)
    other = replace(good.batch, burned=good.batch.burned + 1)
    h = batch_hash(other)
    bad = ApproveBatch(
        batch_digest(h, CHAIN_ID, ROUTER),
        1,
        good.message.validator,
        sign_batch(acct.key, h, CHAIN_ID, ROUTER),
        header_of(other),
    )
    det = EquivocationDetector(CHAIN_ID, ROUTER)
    assert det.observe(good.message) is None
    assert det.observe(good.message) is None  # the same approval again is no proof
    proof = det.observe(bad)
    assert proof is not None and equivocation_signer(proof, CHAIN_ID, ROUTER) == acct.address
    assert det.observe(bad) is None  # reported once
    # gossip refuses an approval whose header does not hash to its digest
    from gexe.node.gossip_messages import EthSigner

    domain = GossipDomain(CHAIN_ID, bytes.fromhex(ROUTER[2:]))
    lying = replace(bad, header=good.message.header)
    env = seal(lying, era=1, domain=domain, signer=EthSigner(bytes(acct.key)))
    with pytest.raises(InconsistentPayload):
        verify(env, [acct.address], domain)
    assert verify(
        seal(bad, era=1, domain=domain, signer=EthSigner(bytes(acct.key))), [acct.address], domain
    )

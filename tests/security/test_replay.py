"""Replay protection on every signed object.

| signed object | bound to | where tested |
|---|---|---|
| gossip envelope | chain id, Router, era, payload type, payload | tests/node/test_gossip_messages.py (other chain, other Router, era relabelled, payload and type in the digest); here: what the node accepts — the current era only |
| batch signature (EIP-712, also inside ApproveBatch) | chain id + Router (domain); previous committed batch + block (struct) | tests/contracts/test_chain_signatures.py, test_chain_router.py (on chain: other chain/Router, same batch twice, must extend the head, old-era signers); here: the digest binds each, and a validator signs only its own chain's and Router's digest |
| duplicate approvals | one count per validator | tests/sequencer/test_aggregate.py (DUPLICATE) |
| sequencer's Ethereum transactions | chain id, nonce (EIP-1559) | here |
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import rlp
from eth_account import Account
from gexe.contracts import (
    ZERO_HASH,
    BatchCommitment,
    batch_digest,
    batch_hash,
    code_id,
    recover_signer,
    sign_batch,
)
from gexe.node.gossip import GossipConfig, GossipService
from gexe.node.gossip_messages import (
    EthSigner,
    GossipDomain,
    GossipError,
    RequestBatchValidation,
    WrongEra,
    seal,
)
from gexe.node.store import Store
from gexe.runtime import CreateProgram, QueueMessage, TopUpExecutableBalance
from gexe.sequencer.submitter import SubmitParams, Submitter, TxRequest
from gexe.validator.approve import Approve, Approver, Refuse
from gexe.validator.batch import BatchBook
from gexe.validator.chain import Header
from gexe.validator.compute import Compute
from gexe.validator.events import CodeUpload

from gexe import programs

CHAIN_ID = 31337
ROUTER = "0x" + "ab" * 20
OTHER_ROUTER = "0x" + "cd" * 20


def test_batch_digest_binds_chain_router_previous_batch_and_block():
    base = BatchCommitment(
        block_hash=b"\1" * 32, block_number=10, previous_committed_batch_hash=b"\2" * 32
    )
    other_prev = BatchCommitment(
        block_hash=b"\1" * 32, block_number=10, previous_committed_batch_hash=b"\3" * 32
    )
    other_block = BatchCommitment(
        block_hash=b"\4" * 32, block_number=10, previous_committed_batch_hash=b"\2" * 32
    )
    h = batch_hash(base)
    assert len({h, batch_hash(other_prev), batch_hash(other_block)}) == 3
    digests = {
        batch_digest(h, CHAIN_ID, ROUTER),
        batch_digest(h, CHAIN_ID + 1, ROUTER),
        batch_digest(h, CHAIN_ID, OTHER_ROUTER),
    }
    assert len(digests) == 3
    acct = Account.create()
    sig = sign_batch(acct.key, h, CHAIN_ID, ROUTER)
    assert recover_signer(sig, h, CHAIN_ID, ROUTER) == acct.address
    # the same signature read under another chain or Router names somebody else
    assert recover_signer(sig, h, CHAIN_ID + 1, ROUTER) != acct.address
    assert recover_signer(sig, h, CHAIN_ID, OTHER_ROUTER) != acct.address
    assert recover_signer(sig, batch_hash(other_prev), CHAIN_ID, ROUTER) != acct.address


@pytest.fixture
def book(tmp_path: Path):
    store = Store(tmp_path / "store")
    compute = Compute(store)
    headers: list[Header] = []

    def block(*items: object) -> Header:
        n = len(headers) + 100
        parent = headers[-1].hash if headers else bytes(32)
        h = Header(n, os.urandom(32), parent, 1_700_000_000 + n)
        compute.apply(h, list(items))  # type: ignore[arg-type]
        headers.append(h)
        return h

    code = programs.path("ping").read_bytes()
    pid, user = bytes(12) + b"\5" * 20, bytes(12) + b"\6" * 20
    block(CodeUpload(code_id(code), code, b"\1" * 32))
    block(CreateProgram(pid, code_id(code)), TopUpExecutableBalance(pid, 10**15))
    block(QueueMessage(pid, os.urandom(32), user))
    last = block(QueueMessage(pid, os.urandom(32), user, b"PING"))
    yield BatchBook(compute), last
    compute.close()
    store.close()


def test_validator_signs_only_its_own_chain_and_router(book):
    bb, last = book
    acct = Account.create()
    ap = Approver(bb, bytes(acct.key), bytes.fromhex(acct.address[2:]), CHAIN_ID, ROUTER, lambda: 1)
    batch = bb.build(ZERO_HASH, last.hash)
    assert batch is not None
    h = batch_hash(batch)
    for chain_id, router in ((CHAIN_ID + 1, ROUTER), (CHAIN_ID, OTHER_ROUTER)):
        replayed = RequestBatchValidation(
            batch_digest(h, chain_id, router), 1, last.hash, ZERO_HASH
        )
        d = ap.request(replayed)
        assert isinstance(d, Refuse), d
    ours = RequestBatchValidation(batch_digest(h, CHAIN_ID, ROUTER), 1, last.hash, ZERO_HASH)
    d = ap.request(ours)
    assert isinstance(d, Approve)
    assert recover_signer(d.message.signature, h, CHAIN_ID, ROUTER) == acct.address
    # replaying the request is answered with the very same approval, nothing new signed
    again = ap.request(ours)
    assert isinstance(again, Approve) and again.message == d.message


def test_gossip_node_accepts_the_current_era_only():
    signers = [EthSigner(bytes([i + 1]) * 32) for i in range(3)]
    era = [7]
    svc = GossipService(
        GossipConfig(chain_id=CHAIN_ID, router_address=ROUTER),
        signers[0],
        current_era=lambda: era[0],
        validators=lambda _e: [s.address for s in signers],
    )
    domain = GossipDomain(CHAIN_ID, bytes.fromhex(ROUTER[2:]))
    msg = RequestBatchValidation(os.urandom(32), 7, os.urandom(32), os.urandom(32))
    data = seal(msg, era=7, domain=domain, signer=signers[1]).encode()
    env, signer = svc._open(data)
    assert signer == signers[1].address and env.era == 7
    era[0] = 8  # the same bytes replayed one era later: dropped (within the grace)
    assert svc._open(data) is None
    era[0] = 9  # two eras later: junk, counted against the peer
    with pytest.raises(WrongEra):
        svc._open(data)
    era[0] = 7
    for other in (GossipDomain(CHAIN_ID + 1, domain.router), GossipDomain(CHAIN_ID, b"\xcd" * 20)):
        foreign = seal(msg, era=7, domain=other, signer=signers[1]).encode()
        with pytest.raises(GossipError):
            svc._open(foreign)


def test_sequencer_transactions_bind_chain_id_and_nonce():
    acct = Account.create()
    sub = Submitter(
        client=None,  # type: ignore[arg-type]  # signing needs no node
        account=acct,
        chain_id=CHAIN_ID,
        params=SubmitParams(router=ROUTER, sender=acct.address),
    )
    req = TxRequest(7, 200_000, 10**10, 10**9, ROUTER, b"\x01\x02", "commit")
    raw, tx_hash = sub._sign(req)
    assert raw[0] == 2  # EIP-1559: the chain id is inside what is signed
    fields = rlp.decode(raw[1:])
    assert int.from_bytes(fields[0], "big") == CHAIN_ID
    assert int.from_bytes(fields[1], "big") == 7
    assert Account.recover_transaction(raw) == acct.address
    # moved to another chain, the signature no longer belongs to the sender
    fields[0] = (1).to_bytes(1, "big")
    assert Account.recover_transaction(b"\x02" + rlp.encode(fields)) != acct.address
    # the same request gives the same bytes; a fee-bumped replacement reuses the nonce,
    # so at most one of them can ever be mined
    assert sub._sign(req) == (raw, tx_hash)
    bumped = TxRequest(7, 200_000, 2 * 10**10, 2 * 10**9, ROUTER, b"\x01\x02", "commit", tx_hash)
    raw2, _ = sub._sign(bumped)
    assert int.from_bytes(rlp.decode(raw2[1:])[1], "big") == 7 and raw2 != raw

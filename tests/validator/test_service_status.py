"""`node_status` of the validator service, driven without a chain: blocks go straight to
its `Compute`, batch requests straight to its gossip handler."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eth_account import Account
from gexe.contracts import ZERO_HASH, batch_digest, batch_hash, code_id
from gexe.node.config import load_config
from gexe.node.gossip_messages import RequestBatchValidation
from gexe.node.store import Store
from gexe.runtime import CreateProgram, QueueMessage, TopUpExecutableBalance
from gexe.validator import approve
from gexe.validator.approve import Approver
from gexe.validator.chain import Header
from gexe.validator.events import CodeUpload
from gexe.validator.service import ValidatorService

from gexe import programs

ROUTER = "0x" + "ab" * 20
CHAIN_ID = 31337
USER = bytes(12) + b"\x11" * 20
PING = bytes(12) + b"\x01" * 20


async def test_batches_signed_keeps_counting_past_the_approvers_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the fault suite's soak (tests/faults, faults/soak.py): `batches_signed` was
    the size of the approver's memory of signed pairs, which keeps the last 512, so after
    512 batches it stopped growing and a validator looked as if it signed nothing."""
    monkeypatch.setattr(approve, "_KEEP", 3)
    cfg = load_config(
        None,
        environ={
            "GEXE_NODE_DATA_DIR": str(tmp_path / "data"),
            "GEXE_ETHEREUM_ROUTER_ADDRESS": ROUTER,
        },
    )
    store = Store(tmp_path / "store")
    acct = Account.create()
    svc = ValidatorService(cfg, store, acct)
    svc.chain_id = CHAIN_ID
    svc.approver = Approver(
        svc.book, bytes(acct.key), bytes.fromhex(acct.address[2:]), CHAIN_ID, ROUTER, lambda: 1
    )
    headers: list[Header] = []

    def block(*items: object) -> Header:
        n = 100 + len(headers)
        h = Header(n, os.urandom(32), headers[-1].hash if headers else bytes(32), 1_700_000_000 + n)
        svc.compute.apply(h, list(items))  # type: ignore[arg-type]
        headers.append(h)
        return h

    try:
        code = programs.path("ping").read_bytes()
        cid = code_id(code)
        block(CodeUpload(cid, code, b"\x01" * 32))
        block(CreateProgram(PING, cid), TopUpExecutableBalance(PING, 10**15))
        block(QueueMessage(PING, (1).to_bytes(32, "big"), USER))
        for i in range(6):  # six batches signed, each (zero batch, a new block)
            h = block(QueueMessage(PING, (2 + i).to_bytes(32, "big"), USER, b"PING"))
            batch = svc.book.build(ZERO_HASH, h.hash)
            assert batch is not None
            digest = batch_digest(batch_hash(batch), CHAIN_ID, ROUTER)
            await svc._on_message(RequestBatchValidation(digest, 1, h.hash, ZERO_HASH))
        assert len(svc.approver.signed) == 3  # the approver remembers the last 3 only
        assert svc.status()["batches_signed"] == 6
    finally:
        svc.compute.close()
        store.close()
        await svc.client.aclose()

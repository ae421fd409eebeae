"""Helpers for the native-path unit tests (no network): a straight chain of Ethereum blocks
fed to one `Compute` over a real LMDB store, and sequencer blocks built on top of it."""

from __future__ import annotations

import os
from pathlib import Path

from eth_account import Account
from gexe.contracts import code_id
from gexe.contracts.injected import (
    Domain,
    InjectedTransaction,
    SequencerBlockHeader,
    SignedTransaction,
    transactions_hash,
)
from gexe.node.gossip_injected import SequencerBlockMsg
from gexe.node.store import Store
from gexe.runtime import CreateProgram, QueueMessage, TopUpExecutableBalance
from gexe.validator.chain import Header
from gexe.validator.compute import Compute, SeqOutcome
from gexe.validator.events import CodeUpload

from gexe import programs

CHAIN_ID = 31337
ROUTER = "0x" + "ab" * 20
DOMAIN = Domain(CHAIN_ID, ROUTER)
SEQUENCER = Account.from_key(b"\x51" * 32)
USERS = [Account.from_key(bytes([0x60 + i]) * 32) for i in range(4)]
CREATOR = bytes(12) + b"\x11" * 20
MAX_PAYLOAD = 65_536


def pid(n: int) -> bytes:
    """Actor id of test program n (12 zero bytes ‖ a 20-byte address)."""
    return bytes(12) + bytes([n + 1]) * 20


def headers(count: int, seed: int = 0) -> list[Header]:
    """A fixed chain of headers (same hashes for every store fed with them)."""
    out: list[Header] = []
    parent = bytes(32)
    for i in range(count):
        n = 100 + i
        h = Header(n, seed.to_bytes(4, "big") + n.to_bytes(28, "big"), parent, 1_700_000_000 + n)
        out.append(h)
        parent = h.hash
    return out


class Chain:
    """One node's store and compute; Ethereum blocks come from a shared header list."""

    def __init__(self, tmp: Path, hdrs: list[Header]) -> None:
        self.store = Store(tmp / "store")
        self.compute = Compute(self.store)
        self.hdrs = hdrs
        self.next = 0

    def block(self, *items: object) -> Header:
        h = self.hdrs[self.next]
        self.next += 1
        self.compute.apply(h, list(items))  # type: ignore[arg-type]
        return h

    @property
    def head(self) -> Header:
        return self.hdrs[self.next - 1]

    def setup_ping(self, n: int = 2) -> None:
        """Ping code, `n` ping programs with executable balance, initialised."""
        code = programs.path("ping").read_bytes()
        cid = code_id(code)
        self.block(CodeUpload(cid, code, b"\x01" * 32))
        self.block(
            *[CreateProgram(pid(i), cid) for i in range(n)],
            *[TopUpExecutableBalance(pid(i), 10**15) for i in range(n)],
        )
        self.block(
            *[QueueMessage(pid(i), (7000 + i).to_bytes(32, "big"), CREATOR) for i in range(n)]
        )

    def seq(self, txs: list[SignedTransaction], *, domain: Domain = DOMAIN) -> SeqOutcome:
        msg, seq_hash, hashes = seq_block(self.compute, txs, domain=domain)
        return self.compute.apply_seq(msg, seq_hash, hashes, domain, MAX_PAYLOAD)

    def close(self) -> None:
        self.compute.close()
        self.store.close()


def seq_block(
    compute: Compute,
    txs: list[SignedTransaction],
    *,
    domain: Domain = DOMAIN,
    height: int | None = None,
    parent: bytes | None = None,
    anchor: Header | None = None,
) -> tuple[SequencerBlockMsg, bytes, list[bytes]]:
    """The next sequencer block on `compute` (or one with the given fields), signed."""
    tip = compute.seq
    head = compute.head
    assert head is not None
    hashes = [domain.tx_hash(t.tx) for t in txs]
    header = SequencerBlockHeader(
        anchor.hash if anchor else head.hash,
        anchor.number if anchor else head.number,
        height if height is not None else (tip.height + 1 if tip else 1),
        parent if parent is not None else (tip.hash if tip else bytes(32)),
        transactions_hash(hashes),
    )
    msg = SequencerBlockMsg(1, header, domain.sign_block(SEQUENCER.key, header), tuple(txs))
    return msg, domain.block_hash(header), hashes


def tx(
    user: int,
    program: int,
    payload: bytes,
    ref: Header,
    *,
    value: int = 0,
    domain: Domain = DOMAIN,
    salt: bytes | None = None,
) -> SignedTransaction:
    t = InjectedTransaction(pid(program)[12:], payload, ref.hash, salt or os.urandom(32), value)
    return domain.sign_tx(USERS[user].key, t)

"""Test plumbing for the sequencer on anvil: a fake `BatchSource` (code verdicts only),
fake validators answering signature requests in-process, and a host task that follows
the chain and calls `on_head` like the validator does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from eth_account.signers.local import LocalAccount
from eth_utils import to_canonical_address
from gexe.contracts import (
    ZERO_HASH,
    BatchCommitment,
    CodeCommitment,
    EthClient,
    batch_digest,
    batch_hash,
    sign_batch,
    topics_of,
)
from gexe.node.gossip_messages import ApproveBatch, GossipMessage, RequestBatchValidation
from gexe.sequencer.source import BlockRef

CODE_REQUESTED = topics_of("Router")["CodeValidationRequested"]
BATCH_COMMITTED = topics_of("Router")["BatchCommitted"]


class FakeSource:
    """What a validator would build, for a chain whose only content is code uploads:
    every `CodeValidationRequested` after the previous batch's block becomes a valid
    verdict. Pure Python; `process` is called by the host for each new block."""

    def __init__(self, start: BlockRef) -> None:
        self.start = start  # the block before the first processed one
        self.blocks: list[BlockRef] = []
        self.codes: dict[int, list[bytes]] = {}
        self.built: dict[bytes, BatchCommitment] = {}
        self._by_hash: dict[bytes, BlockRef] = {}

    def process(self, block: BlockRef, codes: Sequence[bytes]) -> None:
        self.blocks.append(block)
        self._by_hash[block.hash] = block
        if codes:
            self.codes[block.number] = list(codes)

    # -- BatchSource --

    def head(self) -> BlockRef | None:
        return self.blocks[-1] if self.blocks else None

    def committed_block(self, h: bytes) -> BlockRef | None:
        if h == ZERO_HASH:
            return self.start
        b = self.built.get(h)
        return None if b is None else BlockRef(b.block_number, b.block_hash)

    def build(self, prev: bytes, block_hash: bytes) -> BatchCommitment | None:
        base = self.committed_block(prev)
        target = self._by_hash.get(block_hash)
        if base is None or target is None or target.number <= base.number:
            return None
        codes = [
            c for n in range(base.number + 1, target.number + 1) for c in self.codes.get(n, [])
        ]
        batch = BatchCommitment(
            target.hash, target.number, prev, (), tuple(CodeCommitment(c, True) for c in codes)
        )
        self.built[batch_hash(batch)] = batch
        return batch

    def blocks_since(self, prev: bytes) -> list[BlockRef]:
        base = self.committed_block(prev)
        if base is None:
            return []
        return [b for b in self.blocks if b.number > base.number and self.codes.get(b.number)]


@dataclass
class FakeValidators:
    """Validators that rebuild each requested batch from the shared source and sign it
    (`signers`: which of them answer), delivering approvals to every sequencer."""

    source: FakeSource
    keys: Sequence[LocalAccount]
    chain_id: int
    router: str
    signers: Sequence[int] | None = None  # indexes into keys; None = all
    hold: bool = False  # swallow requests (no approvals)
    sequencers: list[Any] = field(default_factory=list)
    requests: list[RequestBatchValidation] = field(default_factory=list)

    async def publish(self, msg: GossipMessage) -> None:
        assert isinstance(msg, RequestBatchValidation)
        assert msg.batch == b"" and len(msg.batch_digest) == 32
        self.requests.append(msg)
        if self.hold:
            return
        batch = self.source.build(msg.previous_batch_hash, msg.block_hash)
        if batch is None:
            return
        bh = batch_hash(batch)
        digest = batch_digest(bh, self.chain_id, self.router)
        if digest != msg.batch_digest:
            return  # an honest validator signs only what it built itself
        which = range(len(self.keys)) if self.signers is None else self.signers
        for i in which:
            key = self.keys[i]
            sig = sign_batch(key.key, bh, self.chain_id, self.router)
            approval = ApproveBatch(digest, msg.era, to_canonical_address(key.address), sig)
            for seq in self.sequencers:
                seq.on_approval(approval)


async def follow_chain(
    client: EthClient, source: FakeSource, router: str, sequencers: list[Any]
) -> None:
    """The host: process each new block into the source, then wake the sequencers."""
    last = source.start.number
    while True:
        head = await client.block_number()
        for n in range(last + 1, head + 1):
            block = await client.get_block(n)
            assert block is not None
            logs = await client.get_logs(
                from_block=n, to_block=n, address=router, topics=[CODE_REQUESTED]
            )
            codes = [bytes.fromhex(log["data"][2:66]) for log in logs]
            source.process(BlockRef(n, bytes.fromhex(block["hash"][2:])), codes)
            for seq in sequencers:
                seq.on_head()
        last = head
        await trio.sleep(0.02)


async def committed_batches(client: EthClient, router: str) -> list[bytes]:
    logs = await client.get_logs(
        from_block=0, to_block="latest", address=router, topics=[BATCH_COMMITTED]
    )
    return [bytes.fromhex(log["data"][2:66]) for log in logs]


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.02) -> None:  # noqa: ANN001
    with trio.fail_after(timeout):
        while True:
            value = predicate()
            if hasattr(value, "__await__"):
                value = await value
            if value:
                return
            await trio.sleep(interval)

"""The sequencer against a real Router on anvil: fake validators sign in-process, a fake
BatchSource turns code uploads into verdicts; no libp2p (the gossip path is tested with
the validator)."""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
from conftest import Chain
from eth_account import Account
from gexe.contracts import (
    ZERO_HASH,
    BatchCommitment,
    CodeCommitment,
    EthClient,
    Router,
    batch_hash,
    code_id,
    sign_batch,
    signatures_in_set_order,
)
from gexe.node.config import SequencerConfig
from gexe.node.metrics import Registry
from gexe.sequencer.policy import estimate_commit_gas
from gexe.sequencer.service import Sequencer
from gexe.sequencer.source import BlockRef
from gexe.sequencer.submitter import GWEI, LATEST_SELECTOR
from seqkit import FakeSource, FakeValidators, committed_batches, follow_chain, wait_until

VALIDATED = 2  # Router CodeState


def config(**kw: Any) -> SequencerConfig:
    base: dict[str, Any] = {
        "enabled": True,
        "max_batch_latency": 0.0,
        "request_interval": 0.2,
        "proposal_timeout_blocks": 3,
    }
    return SequencerConfig(**{**base, **kw})


@dataclass
class Harness:
    chain: Chain
    client: EthClient
    nursery: trio.Nursery
    source: FakeSource
    validators: FakeValidators
    sequencers: list[Sequencer] = field(default_factory=list)
    scopes: dict[int, trio.CancelScope] = field(default_factory=dict)

    @property
    def router(self) -> str:
        return self.chain.deployment.router

    def account(self, i: int):  # noqa: ANN201
        return Account.from_key(self.chain.anvil.private_keys[i])

    async def start(
        self, key: int, client: EthClient | None = None, metrics: Registry | None = None, **kw: Any
    ) -> Sequencer:
        seq = Sequencer(
            client=client or self.client,
            account=self.account(key),
            router=self.router,
            chain_id=self.chain.chain_id,
            source=self.source,
            publish=self.validators.publish,
            current_era=lambda: 1,
            config=config(**kw),
            metrics=metrics,
        )
        self.sequencers.append(seq)
        self.validators.sequencers.append(seq)

        async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:  # noqa: ANN001
            with trio.CancelScope() as cs:
                self.scopes[id(seq)] = cs
                await seq.run(task_status=task_status)

        await self.nursery.start(run)
        return seq

    def stop(self, seq: Sequencer) -> None:
        self.scopes.pop(id(seq)).cancel()
        self.sequencers.remove(seq)
        self.validators.sequencers.remove(seq)

    async def request_code(self) -> tuple[bytes, int]:
        """Upload a random "code" (the Router does not look inside); (code id, block)."""
        code = os.urandom(64)
        cid = code_id(code)
        r = Router(self.chain.w3, self.router)
        receipt = await trio.to_thread.run_sync(
            r.request_code_validation, self.chain.owner, cid, code
        )
        return cid, receipt["blockNumber"]

    async def latest(self) -> bytes:
        return (await self.client.call(self.router, LATEST_SELECTOR))[-32:]

    async def latest_changed(self, before: bytes) -> bool:
        return await self.latest() != before

    async def count_batches(self, n: int) -> bool:
        return len(await committed_batches(self.client, self.router)) >= n

    async def nonce(self, key: int) -> int:
        return await self.client.nonce(self.account(key).address, "latest")

    async def code_state(self, cid: bytes) -> int:
        r = Router(self.chain.w3, self.router)
        return await trio.to_thread.run_sync(r.code_state, cid)

    async def processed(self, number: int) -> None:
        await wait_until(lambda: (h := self.source.head()) is not None and h.number >= number)

    def mine(self, n: int = 1) -> None:
        self.chain.rpc("anvil_mine", hex(n))

    def settled(self, seq: Sequencer, latest: bytes) -> bool:
        st = seq.status()
        return st["last_committed_hash"] == "0x" + latest.hex() and st["in_flight"] is None


@asynccontextmanager
async def harness(chain: Chain, signers: list[int] | None = None):  # noqa: ANN201
    async with EthClient(chain.anvil.url) as client:
        head = await client.get_block("latest")
        assert head is not None
        source = FakeSource(BlockRef(int(head["number"], 16), bytes.fromhex(head["hash"][2:])))
        vals = FakeValidators(
            source, chain.validators, chain.chain_id, chain.deployment.router, signers
        )
        async with trio.open_nursery() as nursery:
            h = Harness(chain, client, nursery, source, vals)
            nursery.start_soon(follow_chain, client, source, chain.deployment.router, h.sequencers)
            try:
                yield h
            finally:
                nursery.cancel_scope.cancel()


def sample(reg: Registry, line_prefix: str) -> float:
    for line in reg.expose().splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {line_prefix}")


# ------------------------------------------------------------------ tests


async def test_batch_reaches_threshold_and_is_committed(chain: Chain):
    async with harness(chain) as h:
        reg = Registry()
        seq = await h.start(1, metrics=reg)
        cid, block = await h.request_code()
        await wait_until(lambda: h.latest_changed(ZERO_HASH))
        latest = await h.latest()
        batch = h.source.built[latest]
        assert batch.block_number == block and batch.code_commitments == (
            CodeCommitment(cid, True),
        )
        assert batch.previous_committed_batch_hash == ZERO_HASH
        assert await h.code_state(cid) == VALIDATED
        await wait_until(lambda: h.settled(seq, latest))
        st = seq.status()
        out = st["last_outcome"]
        assert out["kind"] == "committed" and out["mined_in"] > block
        # the policy's estimate bounds the real gas
        assert 0 < out["gas_used"] <= estimate_commit_gas(batch, 4)
        assert st["last_committed_block"] == block and st["committed"] == 1
        assert st["last_tx"]["nonce"] == 0 and st["last_tx"]["kind"] == "commit"
        assert sample(reg, "gexe_sequencer_batches_committed_total") == 1
        assert sample(reg, "gexe_sequencer_code_verdicts_committed_total") == 1
        assert sample(reg, "gexe_sequencer_commit_gas_count") == 1
        assert sample(reg, "gexe_sequencer_proposal_to_commit_seconds_count") == 1
        assert await committed_batches(h.client, h.router) == [latest]
        # the request names the batch by (previous, block) and carries no bytes
        req = h.validators.requests[0]
        assert (req.previous_batch_hash, req.block_hash, req.era) == (
            ZERO_HASH,
            batch.block_hash,
            1,
        )


async def test_below_threshold_nothing_is_sent(chain: Chain):
    async with harness(chain, signers=[0, 1]) as h:  # 200 of 400: not > 2/3
        reg = Registry()
        seq = await h.start(1, metrics=reg)
        await h.request_code()
        await wait_until(lambda: (seq.status()["approvals"] or {}).get("signed_stake") == 200)
        assert not seq.status()["approvals"]["ready"]
        for _ in range(5):  # let the proposal time out (3 blocks) and be made again
            h.mine()
            await trio.sleep(0.15)
        await wait_until(
            lambda: sample(reg, 'gexe_sequencer_abandoned_total{reason="timeout"}') >= 1
        )
        await wait_until(lambda: len(h.validators.requests) >= 2)
        assert await h.nonce(1) == 0  # not a single transaction
        assert await h.latest() == ZERO_HASH
        assert await committed_batches(h.client, h.router) == []


class StuckOnce(EthClient):
    """After the first transaction is accepted, the next block's base fee jumps to
    100 gwei, so that transaction (max fee ≈ 2 × base + 1 gwei) cannot be included."""

    def __init__(self, url: str, lock: trio.Lock) -> None:
        super().__init__(url)
        self.lock = lock
        self.sent: list[bytes] = []

    async def send_raw_transaction(self, raw: bytes) -> bytes:
        async with self.lock:  # no block is mined between the send and the fee jump
            h = await super().send_raw_transaction(raw)
            self.sent.append(h)
            if len(self.sent) == 1:
                await self.request("anvil_setNextBlockBaseFeePerGas", [hex(100 * GWEI)])
        return h


async def test_stuck_transaction_is_replaced_and_lands_once(chain: Chain):
    async with harness(chain) as h:
        cid, _ = await h.request_code()
        chain.rpc("evm_setAutomine", False)  # blocks only when the test mines them
        lock = trio.Lock()

        async def miner() -> None:
            while True:
                async with lock:
                    await h.client.request("evm_mine")
                await trio.sleep(0.1)

        async with StuckOnce(chain.anvil.url, lock) as stuck:
            reg = Registry()
            h.nursery.start_soon(miner)
            seq = await h.start(2, client=stuck, metrics=reg, replace_after_blocks=3)
            await wait_until(lambda: h.latest_changed(ZERO_HASH), timeout=30)
            latest = await h.latest()
            await wait_until(lambda: h.settled(seq, latest))
        assert await h.code_state(cid) == VALIDATED
        assert len(stuck.sent) >= 2  # the original and at least one replacement
        receipts = [await h.client.get_receipt(x) for x in stuck.sent]
        mined = [r for r in receipts if r is not None]
        assert len(mined) == 1 and mined[0]["status"] == "0x1"
        assert receipts[0] is None  # the stuck original never landed
        txs = [await h.client.get_transaction(x) for x in stuck.sent]
        assert len({int(t["nonce"], 16) for t in txs if t}) == 1  # one nonce for all
        assert await committed_batches(h.client, h.router) == [latest]
        out = seq.status()["last_outcome"]
        assert out["kind"] == "committed" and out["replacements"] >= 1
        assert sample(reg, "gexe_sequencer_replacements_total") >= 1


async def test_two_sequencers_commit_once_and_both_move_on(chain: Chain):
    async with harness(chain) as h:
        a = await h.start(1)
        b = await h.start(2)
        for round_ in (1, 2):
            before = await h.latest()
            await h.request_code()
            await wait_until(lambda before=before: h.latest_changed(before))
            latest = await h.latest()
            await wait_until(lambda latest=latest: h.settled(a, latest) and h.settled(b, latest))
            assert len(await committed_batches(h.client, h.router)) == round_
        batches = await committed_batches(h.client, h.router)
        assert len(set(batches)) == 2
        assert h.source.built[batches[1]].previous_committed_batch_hash == batches[0]
        outcomes = {a.status()["last_outcome"]["kind"], b.status()["last_outcome"]["kind"]}
        assert "committed" in outcomes
        # at worst one cheap revert per batch; usually the loser sends nothing
        sent = await h.nonce(1) + await h.nonce(2)
        assert 2 <= sent <= 4


async def test_batch_committed_by_someone_else_is_not_sent_again(chain: Chain):
    async with harness(chain) as h:
        h.validators.hold = True  # approvals do not come yet
        seq = await h.start(1)
        await h.request_code()
        await wait_until(lambda: h.validators.requests)
        req = h.validators.requests[0]
        batch = h.source.build(req.previous_batch_hash, req.block_hash)
        assert batch is not None
        # someone else holding the validators' signatures commits the very same batch
        h.mine()  # web3's estimate runs at "latest": the batch must name an older block
        await commit_by_hand(chain, batch)
        h.validators.hold = False  # the approvals arrive now
        await wait_until(lambda: (seq.status()["last_outcome"] or {}).get("code") == "already")
        assert await h.nonce(1) == 0
        assert seq.status()["in_flight"] is None
        # ... and it moves on to the next batch
        await h.request_code()
        await wait_until(lambda: h.latest_changed(batch_hash(batch)))
        latest = await h.latest()
        assert h.source.built[latest].previous_committed_batch_hash == batch_hash(batch)
        assert await h.nonce(1) == 1


async def test_restarted_sequencer_resumes_from_the_router(chain: Chain):
    async with harness(chain) as h:
        first = await h.start(1)
        await h.request_code()
        await wait_until(lambda: h.latest_changed(ZERO_HASH))
        b1 = await h.latest()
        await wait_until(lambda: h.settled(first, b1))
        # a proposal in flight when the sequencer stops: it only lived in memory
        h.validators.hold = True
        n = len(h.validators.requests)
        await h.request_code()
        await wait_until(lambda: len(h.validators.requests) > n)
        h.stop(first)
        h.validators.hold = False
        second = await h.start(1)  # a new instance, nothing carried over
        await wait_until(lambda: h.latest_changed(b1))
        b2 = await h.latest()
        assert h.source.built[b2].previous_committed_batch_hash == b1
        await wait_until(lambda: h.settled(second, b2))
        assert second.status()["last_outcome"]["kind"] == "committed"
        assert await committed_batches(h.client, h.router) == [b1, b2]


async def test_batch_over_the_gas_cap_is_cut_at_an_earlier_block(chain: Chain):
    cap = estimate_commit_gas(code_batch(2), 4)  # two verdicts fit, three do not
    assert estimate_commit_gas(code_batch(3), 4) > cap
    async with harness(chain) as h:
        uploads = [await h.request_code() for _ in range(3)]  # one block each
        await h.processed(uploads[-1][1])
        seq = await h.start(1, gas_cap=cap)
        await wait_until(lambda: len(h.validators.requests) >= 1)
        await wait_until(lambda: h.count_batches(2))
        b1, b2 = await committed_batches(h.client, h.router)
        first, second = h.source.built[b1], h.source.built[b2]
        assert [c.id for c in first.code_commitments] == [uploads[0][0], uploads[1][0]]
        assert first.block_number == uploads[1][1]  # cut at the second upload's block
        assert [c.id for c in second.code_commitments] == [uploads[2][0]]
        assert second.previous_committed_batch_hash == b1
        for cid, _ in uploads:
            assert await h.code_state(cid) == VALIDATED
        await wait_until(lambda: h.settled(seq, b2))


async def commit_by_hand(chain: Chain, batch: BatchCommitment) -> None:
    h = batch_hash(batch)
    r = Router(chain.w3, chain.deployment.router)
    sigs = {
        v.address: sign_batch(v.key, h, chain.chain_id, chain.deployment.router)
        for v in chain.validators
    }
    order = [a for a, _ in r.validators()]
    await trio.to_thread.run_sync(
        r.commit_batch, chain.owner, batch, signatures_in_set_order(sigs, order)
    )


def code_batch(n: int) -> BatchCommitment:
    return BatchCommitment(bytes(32), 1, bytes(32), (), (CodeCommitment(bytes(32), True),) * n)


async def test_first_block_alone_too_big_is_reported_not_sent(chain: Chain):
    async with harness(chain) as h:
        _, block = await h.request_code()
        await h.processed(block)
        seq = await h.start(1, gas_cap=estimate_commit_gas(code_batch(1), 4) - 1)
        await wait_until(lambda: "too big" in (seq.status()["waiting"] or ""))
        h.mine(2)  # it keeps looking at every block, and keeps saying so
        await h.processed(block + 2)
        await trio.sleep(0.3)
        assert "too big" in seq.status()["waiting"]
        assert h.validators.requests == [] and await h.nonce(1) == 0
        json.dumps(seq.status())  # the status is JSON-able


async def test_old_split_target_is_moved_to_a_recent_block(chain: Chain):
    # Verdicts at blocks N and N+1, 240 empty blocks, a verdict at N+242; the gas cap
    # takes two verdicts only. The batch that fits ends at N+1, more than 200 blocks
    # back: the sequencer names N+241 instead (same content, recent enough).
    async with harness(chain) as h:
        (c1, n1), (c2, n2) = [await h.request_code() for _ in range(2)]
        h.mine(240)
        c3, n3 = await h.request_code()
        assert n2 == n1 + 1 and n3 == n2 + 241
        await h.processed(n3)
        await h.start(1, gas_cap=estimate_commit_gas(code_batch(2), 4))
        await wait_until(lambda: h.count_batches(2))
        b1, b2 = await committed_batches(h.client, h.router)
        first, second = h.source.built[b1], h.source.built[b2]
        assert [c.id for c in first.code_commitments] == [c1, c2]
        assert first.block_number == n3 - 1
        assert [c.id for c in second.code_commitments] == [c3]


async def test_batch_waits_for_more_blocks_within_the_latency(chain: Chain):
    async with harness(chain) as h:
        await h.start(1, max_batch_latency=1.5)
        (c1, n1), (c2, n2) = [await h.request_code() for _ in range(2)]
        assert n2 == n1 + 1
        await wait_until(lambda: h.latest_changed(ZERO_HASH))
        batch = h.source.built[await h.latest()]
        assert [c.id for c in batch.code_commitments] == [c1, c2]  # one batch for both
        assert len(h.validators.requests) == 1

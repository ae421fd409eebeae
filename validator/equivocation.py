"""Spotting equivocation in gossip: two approvals by one validator for the same
`(previous committed batch, block)` over different digests (sans-IO).

Every approval carries the header of what it signed (`ApproveBatch.header`, checked by
gossip to hash to its digest). The detector remembers the first approval per
`(validator, previous batch, block hash)`; a second one with another digest is turned into
the arguments of `Slasher.reportEquivocation` and checked locally the way the contract will
(`gexe.contracts.equivocation.equivocation_signer`). Each key is reported once.

Invariants: memory is bounded (`keep` keys, oldest dropped); a proof is returned only when
it would convict on chain (same signer recovered from both signatures, different batches).

When modifying this part: the proof format is the Slasher's (contracts/src/ISlasher.sol).
"""

from __future__ import annotations

from collections import OrderedDict

from gexe.contracts.equivocation import (
    EquivocationProof,
    NotAnEquivocation,
    SignedBatchHeader,
    equivocation_signer,
)
from gexe.node.gossip_messages import ApproveBatch


class EquivocationDetector:
    def __init__(self, chain_id: int, router: str, *, keep: int = 4096) -> None:
        self.chain_id = chain_id
        self.router = router
        self.keep = keep
        self.first: OrderedDict[tuple[bytes, bytes, bytes], ApproveBatch] = OrderedDict()
        self.reported: set[tuple[bytes, bytes, bytes]] = set()

    def observe(self, msg: ApproveBatch) -> EquivocationProof | None:
        h = msg.header
        if h is None:
            return None
        key = (msg.validator, h.previous_batch_hash, h.block_hash)
        seen = self.first.get(key)
        if seen is None:
            self.first[key] = msg
            while len(self.first) > self.keep:
                self.first.popitem(last=False)
            return None
        if seen.batch_digest == msg.batch_digest or key in self.reported:
            return None
        a, b = seen.header, h
        assert a is not None
        if a.block_number != b.block_number:
            return None  # one of them can never be committed; not provable
        proof = EquivocationProof(
            b.block_hash,
            b.block_number,
            b.previous_batch_hash,
            SignedBatchHeader(
                a.chain_commitments_hash, a.code_commitments_hash, a.burned, seen.signature
            ),
            SignedBatchHeader(
                b.chain_commitments_hash, b.code_commitments_hash, b.burned, msg.signature
            ),
        )
        try:
            signer = equivocation_signer(proof, self.chain_id, self.router)
        except NotAnEquivocation:
            return None
        if bytes.fromhex(signer[2:]) != msg.validator:
            return None
        self.reported.add(key)
        return proof

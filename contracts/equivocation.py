"""Equivocation proofs for `Slasher.reportEquivocation` and
`Slasher.reportSequencerEquivocation` (contracts/src/Slasher.sol).

Two batches with the same `(previous_committed_batch_hash, block_hash)` must be equal: their
content is a deterministic function of that pair. A validator that signs two different ones
has equivocated, and anyone holding both signatures can prove it on chain. The proof carries
the shared header fields and, per batch, only the hashes of its arrays, its `burned` and the
signature; the Slasher recomputes both batch hashes (`hashing.encode_batch_parts`), checks
they differ, and recovers both signatures through the Router's EIP-712 digest.

Sequencer blocks (`injected.SequencerBlockHeader`) are the other kind: two headers with the
same `(anchor, anchor_number, height)` and different hashes, signed by one key, convict the
sequencer (`sequencer_equivocation_args`). Their proof keys (`sequencer_proof_key`) hash a
61-byte preimage starting with 0x02, batch keys (`proof_key`) an 84-byte one, so the two
kinds never share a key.

Pure: no chain access. `equivocation_proof(...)` builds the call arguments,
`equivocation_signer(...)` checks a proof locally the way the contract will.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import keccak, to_canonical_address

from .eip712 import recover_signer
from .hashing import chain_commitments_hash, code_commitments_hash, encode_batch_parts
from .structs import BatchCommitment

if TYPE_CHECKING:
    from .injected import SequencerBlockHeader

_HALF_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2

# ABI type string of `ISlasher.SignedBatchHeader` (for eth_abi).
SIGNED_BATCH_HEADER_ABI = "(bytes32,bytes32,uint128,bytes)"
# ABI type string of `ISlasher.SequencerBlockHeader`.
SEQUENCER_BLOCK_HEADER_ABI = "(bytes32,uint64,uint64,bytes32,bytes32)"
# First byte of a sequencer proof key's preimage (`Slasher.sequencerProofKey`).
SEQUENCER_KEY_TAG = b"\x02"


class NotAnEquivocation(ValueError):
    """The two signed batches do not make an equivocation proof."""


@dataclass(frozen=True)
class SignedBatchHeader:
    """One side of a proof: `ISlasher.SignedBatchHeader`."""

    chain_commitments_hash: bytes
    code_commitments_hash: bytes
    burned: int
    signature: bytes

    def to_abi(self) -> tuple[bytes, bytes, int, bytes]:
        return (
            self.chain_commitments_hash,
            self.code_commitments_hash,
            self.burned,
            self.signature,
        )


@dataclass(frozen=True)
class EquivocationProof:
    """The arguments of `Slasher.reportEquivocation`, in order (`args()`)."""

    block_hash: bytes
    block_number: int
    previous_committed_batch_hash: bytes
    first: SignedBatchHeader
    second: SignedBatchHeader

    def batch_hashes(self) -> tuple[bytes, bytes]:
        """The two batch hashes the contract recomputes."""
        return (
            keccak(self._preimage(self.first)),
            keccak(self._preimage(self.second)),
        )

    def _preimage(self, side: SignedBatchHeader) -> bytes:
        return encode_batch_parts(
            self.block_hash,
            self.block_number,
            self.previous_committed_batch_hash,
            side.chain_commitments_hash,
            side.code_commitments_hash,
            side.burned,
        )

    def args(self) -> tuple[Any, ...]:
        return (
            self.block_hash,
            self.block_number,
            self.previous_committed_batch_hash,
            self.first.to_abi(),
            self.second.to_abi(),
        )


def signed_header(batch: BatchCommitment, signature: bytes) -> SignedBatchHeader:
    """A batch's side of a proof: its array hashes, `burned` and `signature`."""
    return SignedBatchHeader(
        chain_commitments_hash(batch.chain_commitment),
        code_commitments_hash(batch.code_commitments),
        batch.burned,
        bytes(signature),
    )


def equivocation_proof(
    batch_a: BatchCommitment, sig_a: bytes, batch_b: BatchCommitment, sig_b: bytes
) -> EquivocationProof:
    """The proof that whoever made `sig_a` over `batch_a` and `sig_b` over `batch_b`
    equivocated. Raises `NotAnEquivocation` when the batches do not share `(block_hash,
    block_number, previous_committed_batch_hash)` or hash the same (signatures are not checked
    here: see `equivocation_signer`)."""
    shared_a = (batch_a.block_hash, batch_a.block_number, batch_a.previous_committed_batch_hash)
    shared_b = (batch_b.block_hash, batch_b.block_number, batch_b.previous_committed_batch_hash)
    if shared_a != shared_b:
        raise NotAnEquivocation(
            "the batches differ in block hash, block number or previous committed batch"
        )
    proof = EquivocationProof(
        *shared_a, signed_header(batch_a, sig_a), signed_header(batch_b, sig_b)
    )
    first, second = proof.batch_hashes()
    if first == second:
        raise NotAnEquivocation("both signatures are over the same batch")
    return proof


def equivocation_signer(proof: EquivocationProof, chain_id: int, router: str) -> str:
    """The validator the proof convicts, checked as the Slasher does (different batches, one
    signer over the Router's EIP-712 digests). Raises `NotAnEquivocation` otherwise."""
    first, second = proof.batch_hashes()
    if first == second:
        raise NotAnEquivocation("both signatures are over the same batch")
    for sig in (proof.first.signature, proof.second.signature):
        if len(sig) == 65 and int.from_bytes(sig[32:64], "big") > _HALF_N:
            raise NotAnEquivocation("high-s signature (the contract rejects malleable ones)")
    try:
        a = recover_signer(proof.first.signature, first, chain_id, router)
        b = recover_signer(proof.second.signature, second, chain_id, router)
    except Exception as exc:  # noqa: BLE001 - eth_keys raises several types for bad signatures
        raise NotAnEquivocation(f"unrecoverable signature: {exc}") from None
    if a != b:
        raise NotAnEquivocation(f"signed by different validators: {a} and {b}")
    return a


def proof_key(signer: str, previous_committed_batch_hash: bytes, block_hash: bytes) -> bytes:
    """`Slasher.proofKey`: keccak256(signer ‖ previousCommittedBatchHash ‖ blockHash); each key
    can convict once."""
    return keccak(to_canonical_address(signer) + previous_committed_batch_hash + block_hash)


def sequencer_header_abi(header: SequencerBlockHeader) -> tuple[bytes, int, int, bytes, bytes]:
    """`ISlasher.SequencerBlockHeader` of `header`, for eth_abi / web3."""
    return (
        header.anchor,
        header.anchor_number,
        header.height,
        header.parent,
        header.transactions_hash,
    )


def sequencer_equivocation_args(
    first_header: SequencerBlockHeader,
    first_sig: bytes,
    second_header: SequencerBlockHeader,
    second_sig: bytes,
) -> tuple[Any, ...]:
    """The arguments of `Slasher.reportSequencerEquivocation(first, firstSignature, second,
    secondSignature)`. Raises `NotAnEquivocation` when the headers are not for the same
    `(anchor, anchor_number, height)` or hash the same (signatures are not checked here:
    `injected.Domain.block_signer` recovers them as the contract does)."""
    slot_a = (first_header.anchor, first_header.anchor_number, first_header.height)
    slot_b = (second_header.anchor, second_header.anchor_number, second_header.height)
    if slot_a != slot_b:
        raise NotAnEquivocation("the sequencer blocks differ in anchor, anchor number or height")
    # One domain for both, so equal struct hashes <=> equal block hashes.
    if first_header.struct_hash() == second_header.struct_hash():
        raise NotAnEquivocation("both signatures are over the same sequencer block")
    return (
        sequencer_header_abi(first_header),
        bytes(first_sig),
        sequencer_header_abi(second_header),
        bytes(second_sig),
    )


def sequencer_proof_key(signer: str, anchor: bytes, height: int) -> bytes:
    """`Slasher.sequencerProofKey`: keccak256(0x02 ‖ signer ‖ anchor ‖ uint64 height); each key
    convicts once, and never equals a batch `proof_key` (different preimage length)."""
    return keccak(
        SEQUENCER_KEY_TAG + to_canonical_address(signer) + anchor + height.to_bytes(8, "big")
    )

"""Rules for injected transactions: which ones a sequencer block may execute (pure).

A sequencer block's transactions run in its order; each one is judged on its own, the
same way on every validator, from the signed bytes and the chain state at the block's
anchor, and the verdict is part of the block's stored result:

- the signature must recover (the sender is who signed; the transaction hash, also the
  message id, binds chain id and Router);
- `value` must be 0 (no value can be attached off chain), the payload within
  `max_payload`;
- the reference block must be on the anchor's chain, no newer than the anchor and at most
  `InjectedTransaction.VALIDITY_BLOCKS` older;
- the destination must be a program of this network that has not exited;
- the hash must not have been executed before on this chain of sequencer blocks
  (`included`), nor earlier in the same block.

An accepted transaction becomes a `QueueMessage` from the sender (its address as an actor
id) with the transaction hash as message id. Anything else is skipped with a reason and
does not touch state.

When modifying this part: these verdicts decide state — a change is a protocol change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gexe.contracts.injected import BadSignature, Domain, SignedTransaction
from gexe.runtime import QueueMessage

EXPIRY = 32  # InjectedTransaction.VALIDITY_BLOCKS


@dataclass(frozen=True, slots=True)
class Verdict:
    tx_hash: bytes
    sender: bytes | None  # 20 bytes; None when the signature does not recover
    reason: str  # "" when accepted

    @property
    def ok(self) -> bool:
        return not self.reason


def actor(address20: bytes) -> bytes:
    return bytes(12) + address20


def judge(
    stx: SignedTransaction,
    domain: Domain,
    *,
    anchor_number: int,
    ref_number: Callable[[bytes], int | None],
    program_active: Callable[[bytes], bool],
    included: Callable[[bytes], bool],
    max_payload: int,
) -> Verdict:
    """The verdict on one transaction at a block anchored at `anchor_number`.
    `ref_number(hash)` is the number of a canonical block at or below the anchor (None if
    the hash is not one); `program_active(actor_id)`; `included(tx_hash)`."""
    tx = stx.tx
    h = domain.tx_hash(tx)
    try:
        sender: bytes | None = domain.tx_sender(stx)
    except BadSignature:
        return Verdict(h, None, "bad signature")
    if tx.value != 0:
        return Verdict(h, sender, "value must be 0")
    if len(tx.payload) > max_payload:
        return Verdict(h, sender, f"payload over {max_payload} bytes")
    n = ref_number(tx.reference_block)
    if n is None or n > anchor_number:
        return Verdict(h, sender, "unknown reference block")
    if anchor_number - n > EXPIRY:
        return Verdict(h, sender, "expired")
    if not program_active(actor(tx.destination)):
        return Verdict(h, sender, "unknown program")
    if included(h):
        return Verdict(h, sender, "already included")
    return Verdict(h, sender, "")


def queue_message(v: Verdict, stx: SignedTransaction) -> QueueMessage:
    assert v.ok and v.sender is not None
    return QueueMessage(actor(stx.tx.destination), v.tx_hash, actor(v.sender), stx.tx.payload)

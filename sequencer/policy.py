"""Batching policy: how big a batch may be, when to propose it, where to cut it.

Pure functions over `BatchCommitment` values and numbers; no I/O, no clock (the caller
passes `now`). The service calls `decide` on the batch up to the node's head every time
it looks, and `pick_target` when that batch is too big.

- `estimate_commit_gas(batch, n_signatures)` — a conservative *upper* estimate of the gas
  `Router.commitBatch` burns for this batch: used only to size batches under the
  per-transaction gas cap. The transaction's real gas limit comes from `eth_estimateGas`
  (submitter.py), never from here.
- `decide(...)` — nothing to commit / wait for more blocks / propose now / cut the batch
  at an earlier block. A batch waits while it stays under the size bounds, but never
  longer than `max_batch_latency` after its first change was seen.
- `pick_target(...)` — the newest earlier candidate block whose batch fits, by binary
  search (a batch up to a later block contains the batch up to an earlier one, so size
  only grows with the target).

Invariants:
- The estimate never undercounts on the shapes the contracts README measures (see the
  constants): a batch judged to fit must fit the gas cap on chain.
- `decide` never returns PROPOSE for a batch that does not fit; it returns SPLIT.
- A batch with neither transitions nor code verdicts is never proposed.

When modifying this part: if the contracts' gas figures change (contracts/README.md,
"Gas"), re-check the constants; `tests/sequencer/test_policy.py` pins the estimate
above those figures, and the anvil tests check it against the gas really used.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import keccak
from gexe.contracts import BatchCommitment, to_abi
from gexe.contracts.structs import BATCH_COMMITMENT_ABI

from .source import BlockRef

# ------------------------------------------------------------------ gas model

GAS_CAP = 16_777_216  # per-transaction gas cap (EIP-7825, 2**24)

BASE_GAS = 90_000  # intrinsic 21k, Router bookkeeping, latest-hash write (first: 0 → x)
PER_TRANSITION_GAS = 16_000  # measured 19.5k steady, ~4.75k of it calldata (counted below)
FIRST_COMMIT_GAS = 17_000  # a program's first state hash (0 → x); unknown here: always added
PER_MESSAGE_GAS = 6_000  # each message beyond the transition's first: hashing, event, loop
PER_VALUE_TRANSFER_GAS = 40_000  # 9k value call + 25k new account + 5k stipend + event
PER_VALUE_CLAIM_GAS = 45_000  # a transfer plus its event and claim bookkeeping
PER_EXIT_GAS = 45_000  # exit flag + inheritor slots
# A message with `call = True` needs gasleft() >= 500,000 * 64 / 63 + 40,000 before its
# callback; the callback itself may burn its whole 500,000 stipend.
CALLBACK_GAS = 560_000
PER_CODE_GAS = 15_000  # measured 8.5k per verdict (plus the first verdict's counter 0 → 1)
PER_SIGNATURE_GAS = 6_000  # measured 5.6k (ecrecover, calldata, checks)
CALLDATA_GAS_PER_BYTE = 16  # every calldata byte priced as non-zero
PAYLOAD_GAS_PER_BYTE = 16  # log data (8/byte) and hashing of message payloads
CALLDATA_FLOOR_PER_BYTE = 40  # EIP-7623 floor for non-zero bytes
INTRINSIC_GAS = 21_000

COMMIT_BATCH_SELECTOR = keccak(text=f"commitBatch({BATCH_COMMITMENT_ABI},bytes[])")[:4]
_DUMMY_SIGNATURE = b"\x01" * 65


def commit_calldata(batch: BatchCommitment, signatures: Sequence[bytes]) -> bytes:
    """The calldata of `Router.commitBatch(batch, signatures)`."""
    return COMMIT_BATCH_SELECTOR + abi_encode(
        [BATCH_COMMITMENT_ABI, "bytes[]"], [to_abi(batch), [bytes(s) for s in signatures]]
    )


def transitions_of(batch: BatchCommitment) -> int:
    return sum(len(c.transitions) for c in batch.chain_commitment)


def has_content(batch: BatchCommitment | None) -> bool:
    """Something to commit: a state transition or a code verdict."""
    return batch is not None and (transitions_of(batch) > 0 or len(batch.code_commitments) > 0)


def estimate_commit_gas(batch: BatchCommitment, n_signatures: int) -> int:
    """A conservative upper estimate of `commitBatch(batch, <n_signatures signatures>)` gas."""
    calldata = len(commit_calldata(batch, [_DUMMY_SIGNATURE] * n_signatures))
    gas = BASE_GAS + CALLDATA_GAS_PER_BYTE * calldata
    gas += PER_SIGNATURE_GAS * n_signatures + PER_CODE_GAS * len(batch.code_commitments)
    for chain in batch.chain_commitment:
        for t in chain.transitions:
            gas += PER_TRANSITION_GAS + FIRST_COMMIT_GAS
            if t.exited:
                gas += PER_EXIT_GAS
            gas += PER_VALUE_CLAIM_GAS * len(t.value_claims)
            gas += PER_MESSAGE_GAS * max(0, len(t.messages) - 1)
            for m in t.messages:
                gas += PAYLOAD_GAS_PER_BYTE * len(m.payload)
                if m.value:
                    gas += PER_VALUE_TRANSFER_GAS
                if m.call:
                    gas += CALLBACK_GAS
    floor = INTRINSIC_GAS + CALLDATA_FLOOR_PER_BYTE * calldata
    return max(gas, floor)


# ------------------------------------------------------------------ decisions


class Action(enum.Enum):
    NOTHING = "nothing"  # no content to commit
    WAIT = "wait"  # content, under the bounds, latency not reached: wait for more blocks
    PROPOSE = "propose"  # propose this batch now
    SPLIT = "split"  # too big: cut at an earlier block (`pick_target`)


@dataclass(frozen=True, slots=True)
class Limits:
    max_batch_latency: float  # seconds; 0 = propose as soon as there is content
    max_batch_transitions: int
    gas_cap: int = GAS_CAP
    full_fraction: float = 0.75  # a batch above this share of the gas cap is "full"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    gas: int = 0  # estimated commit gas of the candidate (0 for NOTHING)
    transitions: int = 0
    wait: float = 0.0  # WAIT: seconds until the latency deadline


def fits(batch: BatchCommitment, n_signatures: int, limits: Limits) -> tuple[bool, int]:
    """(within both bounds, estimated gas)."""
    gas = estimate_commit_gas(batch, n_signatures)
    ok = transitions_of(batch) <= limits.max_batch_transitions and gas <= limits.gas_cap
    return ok, gas


def decide(
    batch: BatchCommitment | None,
    *,
    first_seen: float | None,
    now: float,
    limits: Limits,
    n_signatures: int,
) -> Decision:
    """What to do with `batch`, the batch up to the node's head.

    `first_seen`: when (monotonic seconds) this sequencer first saw content extending the
    batch's previous committed batch; None means "now".
    """
    if not has_content(batch):
        return Decision(Action.NOTHING, "no transitions or code verdicts")
    assert batch is not None
    n = transitions_of(batch)
    ok, gas = fits(batch, n_signatures, limits)
    if not ok:
        why = (
            f"{n} transitions > {limits.max_batch_transitions}"
            if n > limits.max_batch_transitions
            else f"~{gas} gas > cap {limits.gas_cap}"
        )
        return Decision(Action.SPLIT, why, gas, n)
    if n >= limits.max_batch_transitions:
        return Decision(Action.PROPOSE, "transition bound reached", gas, n)
    if gas >= limits.gas_cap * limits.full_fraction:
        return Decision(Action.PROPOSE, "gas bound reached", gas, n)
    waited = 0.0 if first_seen is None else max(0.0, now - first_seen)
    if waited >= limits.max_batch_latency:
        return Decision(Action.PROPOSE, "latency reached", gas, n)
    return Decision(Action.WAIT, "under the bounds", gas, n, limits.max_batch_latency - waited)


@dataclass(frozen=True, slots=True)
class Target:
    block: BlockRef
    batch: BatchCommitment
    gas: int
    transitions: int


def pick_target(
    candidates: Sequence[BlockRef],
    build: Callable[[BlockRef], BatchCommitment | None],
    *,
    limits: Limits,
    n_signatures: int,
) -> Target | None:
    """The newest of `candidates` (oldest first) whose batch fits the bounds, or None if
    not even the first one's does (or it cannot be built).

    Binary search: a batch up to a later block holds everything the batch up to an earlier
    one holds, so "fits" is true on a prefix of the candidates.
    """
    lo, hi = 0, len(candidates) - 1
    best: Target | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        block = candidates[mid]
        batch = build(block)
        if batch is None:  # cannot say yet: treat as not fitting, look earlier
            hi = mid - 1
            continue
        ok, gas = fits(batch, n_signatures, limits)
        if ok:
            best = Target(block, batch, gas, transitions_of(batch))
            lo = mid + 1
        else:
            hi = mid - 1
    return best

"""Router and Mirror logs → runtime block events, in canonical order (pure).

One Ethereum block's logs become a list of items in block log order (by
`transactionIndex`, then `logIndex`):

- Router `CodeValidationRequested(codeId)` → `CodeUpload(code_id, code)`; the code is the
  calldata of the `requestCodeValidation(bytes32, bytes)` transaction that emitted it
  (the observer fetches that transaction's input and passes it in `tx_inputs`);
- Router `ProgramCreated(actorId, codeId)` → `CreateProgram(12 zero bytes + actorId)`;
- Router `BatchCommitted(hash)` → `CommittedBatch(hash, block hash, block number)`: which
  block the committed batch ends at, read from the `commitBatch` calldata (the observer
  fetches it like a code upload's); the batch index of `batch.py` is built from these;
- Mirror `MessageQueueingRequested` → `QueueMessage` (message id from the event),
  `ReplyQueueingRequested` → `QueueReply`, `ExecutableBalanceTopUpRequested` →
  `TopUpExecutableBalance`. The program id is 12 zero bytes + the Mirror's address.

Logs from other addresses or with other topics are ignored here; events for Mirrors that
are not programs of this network are dropped by the compute step, which knows the state.
`ValueClaimingRequested` and `OwnedBalanceTopUpRequested` have no runtime counterpart yet
and are ignored.

Invariants: the output depends only on the logs and transaction inputs (every honest
validator derives the same list); `code_verdict` is a pure function of the uploaded bytes.

When modifying this part: the order and mapping of events decide state hashes — a change
is a protocol change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from gexe.contracts import (
    ZERO_HASH,
    LogDecoder,
    batch_hash,
    decode_code_upload,
    decode_commit_batch,
    topics_of,
)
from gexe.runtime import (
    CodeError,
    CreateProgram,
    Event,
    QueueMessage,
    QueueReply,
    TopUpExecutableBalance,
    blake2b256,
    validate,
)


@dataclass(frozen=True, slots=True)
class CodeUpload:
    """A code validation request. `code` is None when it could not be read from the
    transaction (then the verdict is invalid)."""

    code_id: bytes
    code: bytes | None
    tx_hash: bytes


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """A batch committed on chain, and the block it ends at (zero hash / -1 when its
    calldata could not be read: then only batches this node built itself are known)."""

    batch_hash: bytes
    block_hash: bytes
    block_number: int


Item = Event | CodeUpload | CommittedBatch

ROUTER_EVENTS = ("CodeValidationRequested", "ProgramCreated", "BatchCommitted")
INPUT_EVENTS = ("CodeValidationRequested", "BatchCommitted")  # items that need tx calldata
MIRROR_EVENTS = (
    "MessageQueueingRequested",
    "ReplyQueueingRequested",
    "ExecutableBalanceTopUpRequested",
)


@cache
def _decoder() -> LogDecoder:
    return LogDecoder(("Router", "Mirror"))


@cache
def watched_topics() -> tuple[bytes, ...]:
    """topic0 of every event the validator reads (for the eth_getLogs topic filter)."""
    r, m = topics_of("Router"), topics_of("Mirror")
    return tuple(r[n] for n in ROUTER_EVENTS) + tuple(m[n] for n in MIRROR_EVENTS)


@cache
def input_topics() -> frozenset[bytes]:
    r = topics_of("Router")
    return frozenset(r[n] for n in INPUT_EVENTS)


def _int(v: Any) -> int:
    return int(v, 16) if isinstance(v, str) else int(v)


def _data(v: Any) -> bytes:
    return bytes.fromhex(v.removeprefix("0x")) if isinstance(v, str) else bytes(v)


def log_order(log: Mapping[str, Any]) -> tuple[int, int]:
    return _int(log["transactionIndex"]), _int(log["logIndex"])


def actor(address: str | bytes) -> bytes:
    raw = _data(address) if isinstance(address, str) else bytes(address)
    if len(raw) != 20:
        raise ValueError(f"an address is 20 bytes, got {len(raw)}")
    return bytes(12) + raw


def input_requests(logs: Iterable[Mapping[str, Any]], router: str) -> list[bytes]:
    """Transaction hashes whose calldata the items of `logs` need (code uploads and
    batch commits)."""
    topics = input_topics()
    out = []
    for log in logs:
        if (
            str(log["address"]).lower() == router.lower()
            and log["topics"]
            and _data(log["topics"][0]) in topics
        ):
            out.append(_data(log["transactionHash"]))
    return out


def upload_from_input(code_id: bytes, tx_hash: bytes, tx_input: bytes | None) -> CodeUpload:
    """The uploaded code of a request, if the transaction's calldata holds it."""
    if tx_input is None:
        return CodeUpload(code_id, None, tx_hash)
    try:
        cid, code = decode_code_upload(tx_input)
    except Exception:  # not a direct requestCodeValidation call
        return CodeUpload(code_id, None, tx_hash)
    return CodeUpload(code_id, code if cid == code_id else None, tx_hash)


def committed_from_input(hash_: bytes, tx_input: bytes | None) -> CommittedBatch:
    """Where a committed batch ends, if the transaction's calldata holds the batch."""
    if tx_input is not None:
        try:
            batch, _ = decode_commit_batch(tx_input)
        except ValueError:
            pass
        else:
            if batch_hash(batch) == hash_:
                return CommittedBatch(hash_, batch.block_hash, batch.block_number)
    return CommittedBatch(hash_, ZERO_HASH, -1)


def block_items(
    logs: Sequence[Mapping[str, Any]],
    router: str,
    tx_inputs: Mapping[bytes, bytes | None],
) -> list[Item]:
    """The items of ONE block's logs, in block log order."""
    dec = _decoder()
    router_l = router.lower()
    out: list[Item] = []
    for log in sorted(logs, key=log_order):
        if log.get("removed"):
            continue
        d = dec.decode(log)
        if d is None:
            continue
        a = d.args
        if d.contract == "Router":
            if str(log["address"]).lower() != router_l:
                continue
            if d.name == "CodeValidationRequested":
                txh = _data(log["transactionHash"])
                out.append(upload_from_input(bytes(a["codeId"]), txh, tx_inputs.get(txh)))
            elif d.name == "ProgramCreated":
                out.append(CreateProgram(actor(a["actorId"]), bytes(a["codeId"])))
            elif d.name == "BatchCommitted":
                txh = _data(log["transactionHash"])
                out.append(committed_from_input(bytes(a["hash"]), tx_inputs.get(txh)))
            continue
        pid = actor(d.address)
        if d.name == "MessageQueueingRequested":
            out.append(
                QueueMessage(
                    pid,
                    bytes(a["id"]),
                    actor(a["source"]),
                    bytes(a["payload"]),
                    int(a["value"]),
                    bool(a["callReply"]),
                )
            )
        elif d.name == "ReplyQueueingRequested":
            out.append(
                QueueReply(
                    pid,
                    bytes(a["repliedTo"]),
                    actor(a["source"]),
                    bytes(a["payload"]),
                    int(a["value"]),
                )
            )
        elif d.name == "ExecutableBalanceTopUpRequested":
            out.append(TopUpExecutableBalance(pid, int(a["value"])))
    return out


def code_verdict(upload: CodeUpload) -> tuple[bool, str]:
    """(valid, reason): the code must hash to its id and pass runtime validation."""
    if upload.code is None:
        return False, "code not found in the requestCodeValidation calldata"
    if blake2b256(upload.code) != upload.code_id:
        return False, "code id is not the blake2b-256 of the code"
    try:
        validate(upload.code)
    except CodeError as e:
        return False, str(e)
    return True, ""

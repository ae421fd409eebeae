"""Router and Mirror logs → runtime block events, in canonical order (pure).

One Ethereum block's logs become a list of items in block log order (by
`transactionIndex`, then `logIndex`):

- Router `CodeValidationRequested(codeId)` → `CodeUpload(code_id, code)`; the code is the
  calldata of the `requestCodeValidation(bytes32, bytes)` transaction that emitted it
  (the observer fetches that transaction's input and passes it in `tx_inputs`);
- Router `ProgramCreated(actorId, codeId)` → `CreateProgram(12 zero bytes + actorId)`;
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

from gexe.contracts import LogDecoder, decode_code_upload, topics_of
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


Item = Event | CodeUpload

ROUTER_EVENTS = ("CodeValidationRequested", "ProgramCreated")
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
def code_request_topic() -> bytes:
    return topics_of("Router")["CodeValidationRequested"]


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


def code_requests(logs: Iterable[Mapping[str, Any]], router: str) -> list[bytes]:
    """Transaction hashes of the code validation requests among `logs`."""
    topic = code_request_topic()
    out = []
    for log in logs:
        if (
            str(log["address"]).lower() == router.lower()
            and log["topics"]
            and _data(log["topics"][0]) == topic
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

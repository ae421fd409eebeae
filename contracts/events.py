"""Decode the logs and calldata of gexe contracts (no web3 objects needed).

`LogDecoder` knows every event of our artifacts by topic0 and turns a raw JSON-RPC log (hex
strings, as `eth_getLogs` returns it) or a web3 log into a `DecodedLog`. `decode_code_upload`
extracts (code id, code) from the input of a `Router.requestCodeValidation` transaction —
how validators fetch uploaded code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from .artifacts import load_artifact
from .structs import BATCH_COMMITMENT_ABI, BatchCommitment, batch_from_abi

EVENT_SOURCES = ("Router", "Mirror", "Staking", "Slasher", "WrappedVara")


def _abi_type(param: Mapping[str, Any]) -> str:
    t: str = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + t[5:]
    return t


def event_signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"


def event_topic(signature: str) -> bytes:
    """topic0 of an event, e.g. event_topic("StateChanged(bytes32)")."""
    return keccak(text=signature)


@dataclass(frozen=True)
class EventSpec:
    contract: str
    name: str
    signature: str
    topic: bytes
    inputs: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class DecodedLog:
    """One decoded event. `args` maps parameter names to Python values (bytes, int, str)."""

    contract: str
    name: str
    address: str
    args: dict[str, Any]
    block_number: int | None
    block_hash: bytes | None
    transaction_hash: bytes | None
    log_index: int | None


@cache
def event_specs(contracts: tuple[str, ...] = EVENT_SOURCES) -> dict[bytes, EventSpec]:
    """topic0 → spec for every event of `contracts` (first declaration wins)."""
    specs: dict[bytes, EventSpec] = {}
    for name in contracts:
        for entry in load_artifact(name).abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            sig = event_signature(entry)
            topic = event_topic(sig)
            specs.setdefault(
                topic, EventSpec(name, entry["name"], sig, topic, tuple(entry["inputs"]))
            )
    return specs


def topics_of(contract: str) -> dict[str, bytes]:
    """Event name → topic0 for one contract, e.g. topics_of("Mirror")["Reply"]."""
    return {s.name: s.topic for s in event_specs((contract,)).values()}


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        return int(value, 16)
    return int(value)


class LogDecoder:
    """Decode logs of the gexe contracts by topic0."""

    def __init__(self, contracts: Iterable[str] = EVENT_SOURCES) -> None:
        self._specs = event_specs(tuple(contracts))

    def spec(self, topic0: bytes) -> EventSpec | None:
        return self._specs.get(topic0)

    def decode(self, log: Mapping[str, Any]) -> DecodedLog | None:
        """Decode one log; None if its topic0 is not one of ours."""
        topics = [_bytes(t) for t in log["topics"]]
        if not topics:
            return None
        spec = self._specs.get(topics[0])
        if spec is None:
            return None
        indexed = [i for i in spec.inputs if i.get("indexed")]
        plain = [i for i in spec.inputs if not i.get("indexed")]
        values = abi_decode([_abi_type(i) for i in plain], _bytes(log["data"]))
        args: dict[str, Any] = dict(zip((i["name"] for i in plain), values, strict=True))
        for param, topic in zip(indexed, topics[1:], strict=True):
            t = _abi_type(param)
            if t in ("string", "bytes") or t.endswith("]") or t.startswith("("):
                args[param["name"]] = topic  # dynamic indexed values are stored hashed
            else:
                args[param["name"]] = abi_decode([t], topic)[0]
        for param in spec.inputs:
            if param["type"] == "address":
                args[param["name"]] = to_checksum_address(args[param["name"]])
        return DecodedLog(
            contract=spec.contract,
            name=spec.name,
            address=to_checksum_address(log["address"]),
            args=args,
            block_number=_int(log.get("blockNumber")),
            block_hash=_bytes(log["blockHash"]) if log.get("blockHash") else None,
            transaction_hash=_bytes(log["transactionHash"]) if log.get("transactionHash") else None,
            log_index=_int(log.get("logIndex")),
        )

    def decode_all(self, logs: Iterable[Mapping[str, Any]]) -> list[DecodedLog]:
        return [d for d in map(self.decode, logs) if d is not None]


REQUEST_CODE_VALIDATION_SELECTOR = keccak(text="requestCodeValidation(bytes32,bytes)")[:4]


def decode_code_upload(tx_input: bytes | str) -> tuple[bytes, bytes]:
    """(code id, code) from the input of a `Router.requestCodeValidation` transaction.

    Validators read the transaction that emitted `CodeValidationRequested`, decode it here and
    must check blake2b-256(code) == code id (see `hashing.code_id`) before validating.
    Raises ValueError for any other calldata.
    """
    data = _bytes(tx_input)
    if data[:4] != REQUEST_CODE_VALIDATION_SELECTOR:
        raise ValueError("not a requestCodeValidation(bytes32,bytes) call")
    code_id, code = abi_decode(["bytes32", "bytes"], data[4:])
    return bytes(code_id), bytes(code)


COMMIT_BATCH_SELECTOR = keccak(text=f"commitBatch({BATCH_COMMITMENT_ABI},bytes[])")[:4]


def decode_commit_batch(tx_input: bytes | str) -> tuple[BatchCommitment, list[bytes]]:
    """(batch, signatures) from the input of a `Router.commitBatch` transaction.

    Nodes read the transaction that emitted `BatchCommitted` to learn which block the
    committed batch ends at. Raises ValueError for any other calldata (for example a
    commit relayed through another contract).
    """
    data = _bytes(tx_input)
    if data[:4] != COMMIT_BATCH_SELECTOR:
        raise ValueError("not a commitBatch(...) call")
    try:
        batch, sigs = abi_decode([BATCH_COMMITMENT_ABI, "bytes[]"], data[4:])
        return batch_from_abi(batch), [bytes(s) for s in sigs]
    except Exception as e:  # eth_abi raises several types for malformed data
        raise ValueError(f"malformed commitBatch calldata: {e}") from None

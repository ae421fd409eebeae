"""The on-chain protocol structs (contracts/src/Gear.sol) as frozen dataclasses.

Field order and types match the Solidity structs exactly; `to_abi` turns a struct into the
nested tuple web3 / eth_abi expect for a call argument, `from_abi` turns a decoded tuple
back. Hashes live in `hashing.py`. Addresses are checksummed `0x` strings, hashes and ids
are 32-byte `bytes`, reply codes 4-byte `bytes`, values are ints (wei, uint128).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_HASH = bytes(32)
SUCCESS_REPLY_CODE = bytes(4)
UINT128_MAX = (1 << 128) - 1
UINT64_MAX = (1 << 64) - 1

# ABI type strings of the structs (for eth_abi.encode / decode).
REPLY_DETAILS_ABI = "(bytes32,bytes4)"
MESSAGE_ABI = f"(bytes32,address,bytes,uint128,{REPLY_DETAILS_ABI},bool)"
VALUE_CLAIM_ABI = "(bytes32,address,uint128)"
STATE_TRANSITION_ABI = f"(address,bytes32,bool,address,uint128,{VALUE_CLAIM_ABI}[],{MESSAGE_ABI}[])"
CHAIN_COMMITMENT_ABI = f"({STATE_TRANSITION_ABI}[],bytes32)"
CODE_COMMITMENT_ABI = "(bytes32,bool)"
BATCH_COMMITMENT_ABI = (
    f"(bytes32,uint64,bytes32,{CHAIN_COMMITMENT_ABI}[],{CODE_COMMITMENT_ABI}[],uint128)"
)


def _bytes(value: bytes, size: int, what: str) -> bytes:
    value = bytes(value)
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
    return value


def _address(value: str | bytes) -> str:
    return to_checksum_address(value)


def _uint(value: int, limit: int, what: str) -> int:
    if not 0 <= value <= limit:
        raise ValueError(f"{what} out of range: {value}")
    return int(value)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class ReplyDetails:
    """`to` = id of the message replied to (zero: not a reply); `code` = Gear reply code."""

    to: bytes = ZERO_HASH
    code: bytes = SUCCESS_REPLY_CODE

    def __post_init__(self) -> None:
        _set(self, "to", _bytes(self.to, 32, "ReplyDetails.to"))
        _set(self, "code", _bytes(self.code, 4, "ReplyDetails.code"))


@dataclass(frozen=True)
class Message:
    """An outgoing message (or reply, when `reply_details.to` is set) of a program."""

    id: bytes
    destination: str
    payload: bytes = b""
    value: int = 0
    reply_details: ReplyDetails = ReplyDetails()
    call: bool = False

    def __post_init__(self) -> None:
        _set(self, "id", _bytes(self.id, 32, "Message.id"))
        _set(self, "destination", _address(self.destination))
        _set(self, "payload", bytes(self.payload))
        _set(self, "value", _uint(self.value, UINT128_MAX, "Message.value"))
        _set(self, "call", bool(self.call))

    @property
    def is_reply(self) -> bool:
        return self.reply_details.to != ZERO_HASH


@dataclass(frozen=True)
class ValueClaim:
    """Wei released to `destination` for the claimed mailbox message `message_id`."""

    message_id: bytes
    destination: str
    value: int

    def __post_init__(self) -> None:
        _set(self, "message_id", _bytes(self.message_id, 32, "ValueClaim.message_id"))
        _set(self, "destination", _address(self.destination))
        _set(self, "value", _uint(self.value, UINT128_MAX, "ValueClaim.value"))


@dataclass(frozen=True)
class StateTransition:
    """The change of one program (its Mirror at `actor_id`) over the committed blocks."""

    actor_id: str
    new_state_hash: bytes
    exited: bool = False
    inheritor: str = ZERO_ADDRESS
    value_to_receive: int = 0
    value_claims: tuple[ValueClaim, ...] = ()
    messages: tuple[Message, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "actor_id", _address(self.actor_id))
        _set(self, "new_state_hash", _bytes(self.new_state_hash, 32, "new_state_hash"))
        _set(self, "exited", bool(self.exited))
        _set(self, "inheritor", _address(self.inheritor))
        _set(self, "value_to_receive", _uint(self.value_to_receive, UINT128_MAX, "value"))
        _set(self, "value_claims", tuple(self.value_claims))
        _set(self, "messages", tuple(self.messages))


@dataclass(frozen=True)
class ChainCommitment:
    """Transitions of the programs that changed, up to the gexe block `head`."""

    transitions: tuple[StateTransition, ...]
    head: bytes

    def __post_init__(self) -> None:
        _set(self, "transitions", tuple(self.transitions))
        _set(self, "head", _bytes(self.head, 32, "ChainCommitment.head"))


@dataclass(frozen=True)
class CodeCommitment:
    """The validators' verdict on the code `id` (blake2b-256 of the uploaded bytes)."""

    id: bytes
    valid: bool

    def __post_init__(self) -> None:
        _set(self, "id", _bytes(self.id, 32, "CodeCommitment.id"))
        _set(self, "valid", bool(self.valid))


@dataclass(frozen=True)
class BatchCommitment:
    """What validators sign: everything after `previous_committed_batch_hash` up to and
    including the Ethereum block `block_hash` (number `block_number`). `burned` is the
    executable balance (WVARA base units) the programs burned in those blocks; the Router
    credits it to the reward pool of the block's era."""

    block_hash: bytes
    block_number: int
    previous_committed_batch_hash: bytes
    chain_commitment: tuple[ChainCommitment, ...] = ()
    code_commitments: tuple[CodeCommitment, ...] = ()
    burned: int = 0

    def __post_init__(self) -> None:
        _set(self, "block_hash", _bytes(self.block_hash, 32, "block_hash"))
        _set(self, "block_number", _uint(self.block_number, UINT64_MAX, "block_number"))
        _set(
            self,
            "previous_committed_batch_hash",
            _bytes(self.previous_committed_batch_hash, 32, "previous_committed_batch_hash"),
        )
        _set(self, "chain_commitment", tuple(self.chain_commitment))
        _set(self, "code_commitments", tuple(self.code_commitments))
        _set(self, "burned", _uint(self.burned, UINT128_MAX, "burned"))


Struct = (
    ReplyDetails
    | Message
    | ValueClaim
    | StateTransition
    | ChainCommitment
    | CodeCommitment
    | BatchCommitment
)


def to_abi(obj: Struct) -> tuple[Any, ...]:
    """The struct as the nested tuple an ABI encoder takes (Solidity field order)."""
    match obj:
        case ReplyDetails():
            return (obj.to, obj.code)
        case Message():
            return (
                obj.id,
                obj.destination,
                obj.payload,
                obj.value,
                to_abi(obj.reply_details),
                obj.call,
            )
        case ValueClaim():
            return (obj.message_id, obj.destination, obj.value)
        case StateTransition():
            return (
                obj.actor_id,
                obj.new_state_hash,
                obj.exited,
                obj.inheritor,
                obj.value_to_receive,
                [to_abi(c) for c in obj.value_claims],
                [to_abi(m) for m in obj.messages],
            )
        case ChainCommitment():
            return ([to_abi(t) for t in obj.transitions], obj.head)
        case CodeCommitment():
            return (obj.id, obj.valid)
        case BatchCommitment():
            return (
                obj.block_hash,
                obj.block_number,
                obj.previous_committed_batch_hash,
                [to_abi(c) for c in obj.chain_commitment],
                [to_abi(c) for c in obj.code_commitments],
                obj.burned,
            )
    raise TypeError(f"not a protocol struct: {type(obj).__name__}")


def message_from_abi(t: Any) -> Message:
    return Message(t[0], t[1], t[2], t[3], ReplyDetails(t[4][0], t[4][1]), t[5])


def value_claim_from_abi(t: Any) -> ValueClaim:
    return ValueClaim(t[0], t[1], t[2])


def state_transition_from_abi(t: Any) -> StateTransition:
    return StateTransition(
        t[0],
        t[1],
        t[2],
        t[3],
        t[4],
        tuple(value_claim_from_abi(c) for c in t[5]),
        tuple(message_from_abi(m) for m in t[6]),
    )


def batch_from_abi(t: Any) -> BatchCommitment:
    """Inverse of `to_abi` for a decoded BatchCommitment tuple."""
    return BatchCommitment(
        t[0],
        t[1],
        t[2],
        tuple(
            ChainCommitment(tuple(state_transition_from_abi(s) for s in c[0]), c[1]) for c in t[3]
        ),
        tuple(CodeCommitment(c[0], c[1]) for c in t[4]),
        t[5] if len(t) > 5 else 0,
    )

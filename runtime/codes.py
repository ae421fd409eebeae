"""Gear's numeric codes: 4-byte reply codes and the u32 syscall error codes.

Facts from Gear's `protocol/errors` (see runtime/ABI.md): a reply code is
`[kind, reason, sub, 0]`; kind 0 = success, 1 = error. Syscall errors are u32 values
written to a program's error slot; 0 means success.

When modifying this part: these values are part of the consensus surface (they end up
in replies committed to Ethereum) and of the program ABI; never renumber.
"""

from __future__ import annotations

from enum import IntEnum

# ---------------------------------------------------------------- reply codes

SUCCESS_AUTO = bytes((0, 0, 0, 0))
SUCCESS_MANUAL = bytes((0, 1, 0, 0))
ERR_RAN_OUT_OF_GAS = bytes((1, 0, 0, 0))
ERR_MEMORY_OVERFLOW = bytes((1, 0, 1, 0))
ERR_BACKEND = bytes((1, 0, 2, 0))
ERR_USERSPACE_PANIC = bytes((1, 0, 3, 0))
ERR_UNREACHABLE = bytes((1, 0, 4, 0))
ERR_STACK_LIMIT = bytes((1, 0, 5, 0))
ERR_PROGRAM_EXITED = bytes((1, 2, 0, 0))
ERR_INIT_FAILURE = bytes((1, 2, 1, 0))
ERR_UNINITIALIZED = bytes((1, 2, 2, 0))
ERR_PROGRAM_NOT_CREATED = bytes((1, 2, 3, 0))
ERR_REMOVED_FROM_WAITLIST = bytes((1, 3, 0, 0))

_EXECUTION = [
    "RanOutOfGas",
    "MemoryOverflow",
    "BackendError",
    "UserspacePanic",
    "UnreachableInstruction",
    "StackLimitExceeded",
]
_UNAVAILABLE = [
    "ProgramExited",
    "InitializationFailure",
    "Uninitialized",
    "ProgramNotCreated",
    "ReinstrumentationFailure",
]


def is_success(code: bytes) -> bool:
    return len(code) == 4 and code[0] == 0


def reply_code_name(code: bytes) -> str:
    """Human name of a reply code, e.g. `Success(Manual)` or `Error(Execution(UserspacePanic))`."""
    if len(code) != 4:
        return "Unsupported"
    kind, reason, sub = code[0], code[1], code[2]
    if kind == 0:
        return {0: "Success(Auto)", 1: "Success(Manual)"}.get(reason, "Success(Unsupported)")
    if kind != 1:
        return "Unsupported"
    if reason == 0:
        name = _EXECUTION[sub] if sub < len(_EXECUTION) else "Unsupported"
        return f"Error(Execution({name}))"
    if reason == 2:
        name = _UNAVAILABLE[sub] if sub < len(_UNAVAILABLE) else "Unsupported"
        return f"Error(UnavailableActor({name}))"
    if reason == 3:
        return "Error(RemovedFromWaitlist)"
    return "Error(Unsupported)"


# ---------------------------------------------------------------- syscall errors


class SyscallError(IntEnum):
    """u32 codes a fallible syscall writes to its error slot."""

    NOT_ENOUGH_GAS = 100
    NOT_ENOUGH_VALUE = 101
    TOO_BIG_READ_LEN = 103
    READ_WRONG_RANGE = 104
    NO_REPLY_CONTEXT = 105
    NO_SIGNAL_CONTEXT = 106
    NO_STATUS_CODE_CONTEXT = 107
    INCORRECT_ENTRY_FOR_REPLY = 108
    RUNTIME_ALLOC_OUT_OF_BOUNDS = 200
    ACCESS_OUT_OF_BOUNDS = 201
    MAX_MESSAGE_SIZE_EXCEED = 300
    OUTGOING_MESSAGES_AMOUNT_LIMIT_EXCEEDED = 301
    DUPLICATE_REPLY = 302
    DUPLICATE_WAKING = 303
    LATE_ACCESS = 304
    OUT_OF_BOUNDS = 305
    DUPLICATE_INIT = 306
    INSUFFICIENT_VALUE = 307
    INSUFFICIENT_GAS_LIMIT = 308
    OUTGOING_MESSAGES_BYTES_LIMIT_EXCEEDED = 311
    OUT_OF_BOUNDS_INPUT_SLICE_OFFSET = 312
    OUT_OF_BOUNDS_INPUT_SLICE_LENGTH = 313

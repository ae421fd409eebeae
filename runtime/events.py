"""Block events: what the chain asks the runtime to do, in block order.

The observer turns Router and Mirror logs into these; the sandbox makes them directly.
Each names the program it concerns. Ids of Ethereum-originated messages come from the
chain (the Mirror's event), never from the node.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CreateProgram:
    program_id: bytes
    code_id: bytes


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A message to a program (the first one a program receives is its init message)."""

    program_id: bytes
    message_id: bytes
    source: bytes
    payload: bytes = b""
    value: int = 0
    call: bool = False


@dataclass(frozen=True, slots=True)
class QueueReply:
    """A user's reply to a message the program sent to it."""

    program_id: bytes
    replied_to: bytes
    source: bytes
    payload: bytes = b""
    value: int = 0


@dataclass(frozen=True, slots=True)
class TopUpExecutableBalance:
    program_id: bytes
    value: int


Event = CreateProgram | QueueMessage | QueueReply | TopUpExecutableBalance

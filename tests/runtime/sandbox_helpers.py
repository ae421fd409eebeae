"""Helpers for the runtime tests: deploy programs, send messages, read results."""

from __future__ import annotations

import dataclasses

from gexe.runtime import DEFAULT_USER, Sandbox
from gexe.runtime.message import Message
from gexe.runtime.processor import DispatchRecord
from gexe.runtime.state import ProgramState
from wat import OBSERVER

# Small enough that an infinite loop ends in tens of milliseconds, large enough for
# every fixture (the biggest, the alloc bomb, burns a few million).
SMALL_GAS = 50_000_000


def create(sb: Sandbox, code: bytes, init: bytes = b"", **kw) -> tuple[bytes, bytes]:
    """Upload and create a program (runs nothing); return (program id, init message id)."""
    pid = sb.create_program(sb.upload_code(code), init_payload=init, **kw)
    return pid, sb.pending[-1].message_id


def deploy(sb: Sandbox, code: bytes, init: bytes = b"", **kw) -> bytes:
    """Upload, create, run the init message to its reply; return the program id."""
    pid, init_id = create(sb, code, init, **kw)
    sb.run_until_reply(init_id, max_blocks=5)
    return pid


def call(
    sb: Sandbox,
    pid: bytes,
    payload: bytes = b"",
    *,
    value: int = 0,
    source: bytes = DEFAULT_USER,
    blocks: int = 5,
) -> tuple[Message | None, DispatchRecord]:
    """Send one message, run blocks until its reply; return (reply, last dispatch)."""
    mid = sb.send(pid, payload, value=value, source=source)
    reply = sb.run_until_reply(mid, max_blocks=blocks)
    return reply, sb.dispatches.get(mid)


def emitted(sb: Sandbox) -> list[bytes]:
    """Payloads the programs sent to `OBSERVER` (see `wat.emit`), in order."""
    return [m.payload for m in sb.messages_to(OBSERVER)]


def durable(state: ProgramState) -> ProgramState:
    """The program state minus its executable balance.

    A failed dispatch still burns gas, paid from the executable balance, so the whole
    state hash changes even when nothing else does. Everything else — memory pages,
    allocations, queue, waitlist, value balance, status — must stay exactly as it was.
    """
    return dataclasses.replace(state, executable_balance=0)

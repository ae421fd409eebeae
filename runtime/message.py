"""Messages: what flows between actors, and the context a message keeps across waits.

Messages are values: never mutate one after creation (use `with_context`). They are
not frozen dataclasses only because frozen construction costs several microseconds
on the hot path.

A `Message` is immutable. Its `kind` picks the entry point that handles it. A message
that waited carries a `context` (send nonce and whether it already replied) so that,
when woken, its re-execution continues Gear's per-message counters instead of
restarting them (ids of messages it sends stay unique).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

from .encoding import Reader, Writer
from .ids import ZERO_ID

NO_CODE = bytes(4)


class Kind(IntEnum):
    INIT = 0
    HANDLE = 1
    REPLY = 2


ENTRY_OF_KIND = {Kind.INIT: "init", Kind.HANDLE: "handle", Kind.REPLY: "handle_reply"}


@dataclass(frozen=True, slots=True)
class Context:
    """Per-message counters kept while the message sits in the waitlist."""

    nonce: int = 0  # next send handle / outgoing message nonce
    replied: bool = False


@dataclass(slots=True)
class Message:
    id: bytes
    kind: Kind
    source: bytes
    destination: bytes
    payload: bytes = b""
    value: int = 0
    reply_to: bytes = ZERO_ID  # for replies: the message answered
    reply_code: bytes = NO_CODE  # for replies: Gear's 4-byte reply code
    call: bool = False  # Ethereum: deliver the reply by calling the sender
    context: Context | None = None  # set once the message has executed and waited

    @property
    def is_reply(self) -> bool:
        return self.kind == Kind.REPLY

    def with_context(self, ctx: Context) -> Message:
        return replace(self, context=ctx)

    def encode(self) -> bytes:
        w = Writer().fixed(self.id, 32).u8(self.kind).fixed(self.source, 32)
        w.fixed(self.destination, 32).blob(self.payload).u128(self.value)
        w.fixed(self.reply_to, 32).fixed(self.reply_code, 4).u8(int(self.call))
        if self.context is None:
            w.u8(0)
        else:
            w.u8(1).u32(self.context.nonce).u8(int(self.context.replied))
        return w.bytes()

    @classmethod
    def read(cls, r: Reader) -> Message:
        mid, kind, src, dst = r.fixed(32), Kind(r.u8()), r.fixed(32), r.fixed(32)
        payload, value = r.blob(), r.u128()
        reply_to, code, call = r.fixed(32), r.fixed(4), bool(r.u8())
        ctx = Context(r.u32(), bool(r.u8())) if r.u8() else None
        return cls(mid, kind, src, dst, payload, value, reply_to, code, call, ctx)

    @classmethod
    def decode(cls, data: bytes) -> Message:
        r = Reader(data)
        m = cls.read(r)
        r.finish()
        return m

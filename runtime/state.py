"""Program state: a small record of hashes, and the components it points to.

`ProgramState` is what a program's state hash commits to: code id, status, balances,
and the hashes of four content-addressed components — memory pages, allocations,
message queue and waitlist. A block touching a program rewrites only the components
that changed, so cost follows what changed, not the total state. An empty component
is the zero hash and is never stored.

Invariants: encodings are canonical (sorted maps, fixed widths), so equal states have
equal hashes on every machine; `ProgramState.hash()` is BLAKE2b-256 of `encode()`.
When modifying this part: the encoding is consensus-critical; bump `STATE_VERSION`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from .encoding import Reader, Writer
from .ids import ZERO_ID, blake2b256
from .message import Message
from .storage import Storage, read_required

STATE_VERSION = 1


class Status(IntEnum):
    CREATED = 0  # no init message yet
    INITIALIZING = 1  # init queued, running or waiting
    ACTIVE = 2  # initialized
    EXITED = 3  # gr_exit: `inheritor` holds the inheritor
    TERMINATED = 4  # init failed: `inheritor` holds the init message's source


@dataclass(frozen=True, slots=True)
class ProgramState:
    code_id: bytes
    status: Status = Status.CREATED
    inheritor: bytes = ZERO_ID
    pages: bytes = ZERO_ID
    allocations: bytes = ZERO_ID
    queue: bytes = ZERO_ID
    waitlist: bytes = ZERO_ID
    balance: int = 0
    executable_balance: int = 0

    def encode(self) -> bytes:
        w = Writer().u8(STATE_VERSION).fixed(self.code_id, 32).u8(self.status)
        w.fixed(self.inheritor, 32).fixed(self.pages, 32).fixed(self.allocations, 32)
        w.fixed(self.queue, 32).fixed(self.waitlist, 32)
        return w.u128(self.balance).u128(self.executable_balance).bytes()

    @classmethod
    def decode(cls, data: bytes) -> ProgramState:
        r = Reader(data)
        if r.u8() != STATE_VERSION:
            raise ValueError("unsupported program state version")
        s = cls(
            r.fixed(32),
            Status(r.u8()),
            r.fixed(32),
            r.fixed(32),
            r.fixed(32),
            r.fixed(32),
            r.fixed(32),
            r.u128(),
            r.u128(),
        )
        r.finish()
        return s

    def hash(self) -> bytes:
        return blake2b256(self.encode())


@dataclass(slots=True)
class MutableState:
    """A working copy of `ProgramState` that the processor updates in place."""

    code_id: bytes
    status: Status
    inheritor: bytes
    pages: bytes
    allocations: bytes
    queue: bytes
    waitlist: bytes
    balance: int
    executable_balance: int

    @classmethod
    def of(cls, s: ProgramState) -> MutableState:
        return cls(
            s.code_id,
            s.status,
            s.inheritor,
            s.pages,
            s.allocations,
            s.queue,
            s.waitlist,
            s.balance,
            s.executable_balance,
        )

    def freeze(self) -> ProgramState:
        return ProgramState(
            self.code_id,
            self.status,
            self.inheritor,
            self.pages,
            self.allocations,
            self.queue,
            self.waitlist,
            self.balance,
            self.executable_balance,
        )


def load_state(storage: Storage, state_hash: bytes) -> ProgramState:
    return ProgramState.decode(read_required(storage, state_hash, "program state"))


# ---------------------------------------------------------------- components


def _store(storage: Storage, data: bytes, empty: bool) -> bytes:
    return ZERO_ID if empty else storage.write(data)


def encode_pages(pages: Mapping[int, bytes]) -> bytes:
    w = Writer().u32(len(pages))
    for page in sorted(pages):
        w.u32(page).fixed(pages[page], 32)
    return w.bytes()


def decode_pages(data: bytes) -> dict[int, bytes]:
    r = Reader(data)
    out = {}
    for _ in range(r.u32()):
        page = r.u32()
        out[page] = r.fixed(32)
    r.finish()
    return out


def store_pages(storage: Storage, pages: Mapping[int, bytes]) -> bytes:
    return _store(storage, encode_pages(pages), not pages)


def load_pages(storage: Storage, key: bytes) -> dict[int, bytes]:
    return {} if key == ZERO_ID else decode_pages(read_required(storage, key, "page map"))


def encode_allocations(pages: Iterable[int]) -> bytes:
    """Sorted wasm pages as inclusive intervals."""
    runs: list[tuple[int, int]] = []
    for p in sorted(pages):
        if runs and runs[-1][1] + 1 == p:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    w = Writer().u32(len(runs))
    for a, b in runs:
        w.u32(a).u32(b)
    return w.bytes()


def decode_allocations(data: bytes) -> frozenset[int]:
    r = Reader(data)
    out: set[int] = set()
    for _ in range(r.u32()):
        a, b = r.u32(), r.u32()
        if b < a:
            raise ValueError("bad allocation interval")
        out.update(range(a, b + 1))
    r.finish()
    return frozenset(out)


def store_allocations(storage: Storage, pages: Iterable[int]) -> bytes:
    pages = tuple(pages)
    return _store(storage, encode_allocations(pages), not pages)


def load_allocations(storage: Storage, key: bytes) -> frozenset[int]:
    if key == ZERO_ID:
        return frozenset()
    return decode_allocations(read_required(storage, key, "allocations"))


def encode_queue(queue: Iterable[Message]) -> bytes:
    items = list(queue)
    w = Writer().u32(len(items))
    for m in items:
        w.blob(m.encode())
    return w.bytes()


def decode_queue(data: bytes) -> list[Message]:
    r = Reader(data)
    out = [Message.decode(r.blob()) for _ in range(r.u32())]
    r.finish()
    return out


def store_queue(storage: Storage, queue: Iterable[Message]) -> bytes:
    items = list(queue)
    return _store(storage, encode_queue(items), not items)


def load_queue(storage: Storage, key: bytes) -> list[Message]:
    return [] if key == ZERO_ID else decode_queue(read_required(storage, key, "queue"))


@dataclass(frozen=True, slots=True)
class WaitEntry:
    """A message parked until `deadline` (block height) or an earlier wake.

    `delayed` marks a message sent with a delay: it waits here until its block and is
    then delivered like a woken one.
    """

    deadline: int
    message: Message
    delayed: bool = False


def encode_waitlist(entries: Mapping[bytes, WaitEntry]) -> bytes:
    items = sorted(entries.values(), key=lambda e: (e.deadline, e.message.id))
    w = Writer().u32(len(items))
    for e in items:
        w.u32(e.deadline).u8(int(e.delayed)).blob(e.message.encode())
    return w.bytes()


def decode_waitlist(data: bytes) -> dict[bytes, WaitEntry]:
    r = Reader(data)
    out = {}
    for _ in range(r.u32()):
        deadline, delayed = r.u32(), bool(r.u8())
        msg = Message.decode(r.blob())
        out[msg.id] = WaitEntry(deadline, msg, delayed)
    r.finish()
    return out


def store_waitlist(storage: Storage, entries: Mapping[bytes, WaitEntry]) -> bytes:
    return _store(storage, encode_waitlist(entries), not entries)


def load_waitlist(storage: Storage, key: bytes) -> dict[bytes, WaitEntry]:
    if key == ZERO_ID:
        return {}
    return decode_waitlist(read_required(storage, key, "waitlist"))

"""The syscalls: host functions a program calls, working on one dispatch's `HostContext`.

Each function checks pointers against the program's memory (an out-of-bounds pointer
ends the dispatch with Gear's BackendError), charges its fixed gas from the wasmtime
fuel counter, and either writes a result struct or raises one of the `Stop` signals
that end the dispatch (`gr_exit`, `gr_leave`, `gr_wait_*`, `gr_panic`, backend errors).
Nothing here touches program state: it only records what the dispatch asked for in the
context; `execution.py` turns that into an outcome, and a failed dispatch's records are
simply dropped.

Error codes, struct layouts and check order follow Gear (runtime/ABI.md, sections 1, 2,
6 and 8). When modifying this part: a changed check order or gas charge changes results;
keep every syscall's behaviour identical on every node.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import wasmtime

from . import codes, limits, native
from .codes import SyscallError as E
from .ids import outgoing_message_id, reply_message_id
from .message import Context, Kind, Message

U32 = 0xFFFFFFFF
SYSTEM_ID = b"gear" * 8  # Gear's system actor: sending to it is forbidden (a trap)
_ENV_VARS_V1 = (
    limits.ENV_PERFORMANCE_MULTIPLIER.to_bytes(4, "little")
    + limits.ENV_EXISTENTIAL_DEPOSIT.to_bytes(16, "little")
    + limits.ENV_MAILBOX_THRESHOLD.to_bytes(8, "little")
    + (0).to_bytes(8, "little")  # gas_per_value (0: the value_per_gas form is used)
    + limits.VALUE_PER_GAS.to_bytes(16, "little")
)


class Stop(Exception):  # noqa: N818 — control flow, not an error
    """Ends a dispatch from inside a syscall."""


class Exit(Stop):
    def __init__(self, inheritor: bytes) -> None:
        self.inheritor = inheritor


class Leave(Stop):
    pass


class Wait(Stop):
    def __init__(self, blocks: int) -> None:
        self.blocks = blocks


class Trap(Stop):
    """A failed dispatch: `code` is the reply code, `payload` the error reply's payload."""

    def __init__(self, code: bytes, explanation: str, payload: bytes = b"") -> None:
        super().__init__(explanation)
        self.code = code
        self.explanation = explanation
        self.payload = payload


def memory_view(base: int, size: int) -> memoryview:
    """A writable byte view of `size` bytes at address `base` (a WASM memory)."""
    if not size:
        return memoryview(bytearray())
    return memoryview((ctypes.c_char * size).from_address(base)).cast("B")


def backend_error(what: str) -> Trap:
    return Trap(codes.ERR_BACKEND, what)


@dataclass(slots=True)
class Outgoing:
    message: Message
    delay: int = 0


@dataclass(slots=True)
class HostContext:
    """Everything one dispatch can see and everything it asked for."""

    mem_ref: object  # byref(wasmtime_memory_t) of the program's memory
    message: Message
    program_id: bytes
    block_height: int
    block_timestamp: int
    balance: int  # program value balance before this dispatch
    first_run: bool  # the message's value is credited on its first execution only
    static_pages: int
    allocations: set[int]
    nonce: int  # next send nonce (continues across waits)
    replied: bool
    nonce_start: int = 0  # nonce when this execution began: bounds sends per execution
    gas_limit: int = 0  # gas available to WASM and syscalls together (after fixed costs)
    pending: int = 0  # syscall gas charged so far
    # results
    out: list[Outgoing] = field(default_factory=list)
    reply: Message | None = None
    reply_buf: bytearray = field(default_factory=bytearray)
    handles: dict[int, bytearray | None] = field(default_factory=dict)  # None: committed
    sent_bytes: int = 0
    value_sent: int = 0
    wakes: list[tuple[bytes, int]] = field(default_factory=list)
    debug: list[str] = field(default_factory=list)
    # memory access: `view` is a byte memoryview of the whole memory (no foreign call
    # per access); base address and size are kept next to it
    base: int = 0
    size: int = 0
    view: memoryview = memoryview(b"")
    ctx_ptr: object = None

    def refresh_memory(self) -> None:
        data = native.memory_data(self.ctx_ptr, self.mem_ref)
        self.base = ctypes.cast(data, ctypes.c_void_p).value or 0
        self.size = native.memory_data_size(self.ctx_ptr, self.mem_ref)
        self.view = memory_view(self.base, self.size)

    # -- gas
    #
    # Syscall gas is added to `pending` instead of being subtracted from the wasmtime
    # fuel counter on every call (two FFI round trips each). Total gas = fuel consumed
    # + pending; the executor checks it against the limit when the dispatch ends, and
    # `charge()` stops the dispatch early once pending alone exceeds the limit. The
    # verdict is the same as with eager charging: a dispatch fails with RanOutOfGas
    # exactly when its total exceeds the limit (fuel traps when it alone runs out).

    def charge(self, gas: int) -> None:
        self.pending += gas
        if self.pending > self.gas_limit:
            raise Trap(codes.ERR_RAN_OUT_OF_GAS, "ran out of gas in a syscall")

    def gas_left(self) -> int:
        fuel = ctypes.c_uint64()
        native.get_fuel(self.ctx_ptr, ctypes.byref(fuel))
        return max(0, fuel.value - self.pending)

    # -- memory

    def read(self, ptr: int, n: int) -> bytes:
        ptr &= U32
        if ptr + n > self.size:
            raise backend_error(f"memory access out of bounds: {n} bytes at {ptr:#x}")
        return bytes(self.view[ptr : ptr + n])

    def write(self, ptr: int, data: bytes) -> None:
        ptr &= U32
        n = len(data)
        if ptr + n > self.size:
            raise backend_error(f"memory access out of bounds: {n} bytes at {ptr:#x}")
        self.view[ptr : ptr + n] = data

    def write_err(self, ptr: int, err: int) -> None:
        self.write(ptr, err.to_bytes(4, "little"))

    def write_err_hash(self, ptr: int, err: int, h: bytes = bytes(32)) -> None:
        self.write(ptr, err.to_bytes(4, "little") + (bytes(32) if err else h))

    def read_value(self, ptr: int) -> int:
        if ptr & U32 == U32:
            return 0
        return int.from_bytes(self.read(ptr, 16), "little")

    # -- helpers

    @property
    def value_available(self) -> int:
        incoming = self.message.value if self.first_run else 0
        return self.balance + incoming - self.value_sent

    def can_reply(self) -> bool:
        return self.message.kind in (Kind.INIT, Kind.HANDLE)

    def input_slice(self, offset: int, length: int) -> bytes | int:
        payload = self.message.payload
        offset &= U32
        length &= U32
        if offset >= len(payload):
            return E.OUT_OF_BOUNDS_INPUT_SLICE_OFFSET
        if length > len(payload) - offset:
            return E.OUT_OF_BOUNDS_INPUT_SLICE_LENGTH
        return payload[offset : offset + length]

    def new_send_slot(self) -> int | None:
        if self.nonce - self.nonce_start >= limits.OUTGOING_LIMIT:
            return None
        n = self.nonce
        self.nonce += 1
        return n

    def commit_send(
        self, dest: bytes, payload: bytes, value: int, delay: int, nonce: int
    ) -> tuple[int, bytes]:
        if dest == SYSTEM_ID:
            raise backend_error("sending to the system actor is forbidden")
        # Gear's order: value (charged before the message context is touched), then
        # the outgoing bytes counter, then the payload size.
        if value > self.value_available:
            return E.NOT_ENOUGH_VALUE, b""
        if self.sent_bytes + len(payload) > limits.OUTGOING_BYTES_LIMIT:
            return E.OUTGOING_MESSAGES_BYTES_LIMIT_EXCEEDED, b""
        if len(payload) > limits.MAX_PAYLOAD_SIZE:
            return E.MAX_MESSAGE_SIZE_EXCEED, b""
        mid = outgoing_message_id(self.message.id, nonce)
        self.sent_bytes += len(payload)
        self.value_sent += value
        msg = Message(mid, Kind.HANDLE, self.program_id, dest, payload, value)
        self.out.append(Outgoing(msg, delay & U32))
        return 0, mid

    def commit_reply(self, payload: bytes, value: int) -> tuple[int, bytes]:
        # Gear charges the value before asking the message context (108, 302).
        if value > self.value_available:
            return E.NOT_ENOUGH_VALUE, b""
        if not self.can_reply():
            return E.INCORRECT_ENTRY_FOR_REPLY, b""
        if self.replied:
            return E.DUPLICATE_REPLY, b""
        full = bytes(self.reply_buf) + payload
        if len(full) > limits.MAX_PAYLOAD_SIZE:
            return E.MAX_MESSAGE_SIZE_EXCEED, b""
        self.value_sent += value
        self.replied = True
        self.reply_buf.clear()
        m = self.message
        rid = reply_message_id(m.id)
        self.reply = Message(
            rid,
            Kind.REPLY,
            self.program_id,
            m.source,
            full,
            value,
            reply_to=m.id,
            reply_code=codes.SUCCESS_MANUAL,
            call=m.call,
        )
        return 0, rid

    def push_reply(self, data: bytes) -> int:
        if not self.can_reply():
            return E.INCORRECT_ENTRY_FOR_REPLY
        if self.replied:
            return E.LATE_ACCESS
        if len(self.reply_buf) + len(data) > limits.MAX_PAYLOAD_SIZE:
            return E.MAX_MESSAGE_SIZE_EXCEED
        self.reply_buf += data
        return 0

    def push_handle(self, handle: int, data: bytes) -> int:
        handle &= U32
        if handle not in self.handles:
            return E.OUT_OF_BOUNDS
        buf = self.handles[handle]
        if buf is None:
            return E.LATE_ACCESS
        if self.sent_bytes + len(buf) + len(data) > limits.OUTGOING_BYTES_LIMIT:
            return E.OUTGOING_MESSAGES_BYTES_LIMIT_EXCEEDED
        if len(buf) + len(data) > limits.MAX_PAYLOAD_SIZE:
            return E.MAX_MESSAGE_SIZE_EXCEED
        buf += data
        return 0

    def context_for_wait(self) -> Context:
        return Context(nonce=self.nonce, replied=self.replied)


# -------------------------------------------------------------------- syscalls
#
# Each syscall is a plain function of (ctx, *wasm args). `bind()` wraps them for the
# wasmtime Linker, looking the current context up in a per-thread slot.

B = limits.SYSCALL_BASE_GAS
PB = limits.PER_BYTE_GAS


def gr_read(c: HostContext, at: int, length: int, buf: int, err: int) -> None:
    c.charge(B)
    at &= U32
    length &= U32
    payload = c.message.payload
    if at + length > U32:
        c.write_err(err, E.TOO_BIG_READ_LEN)
        return
    c.charge(PB * length)
    if at + length > len(payload):
        c.write_err(err, E.READ_WRONG_RANGE)
        return
    c.write(buf, payload[at : at + length])
    c.write_err(err, 0)


def gr_size(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, len(c.message.payload).to_bytes(4, "little"))


def gr_reply(c: HostContext, ptr: int, length: int, value_ptr: int, err_mid: int) -> None:
    c.charge(B + PB * (length & U32))
    length &= U32
    if length > limits.MAX_PAYLOAD_SIZE:
        c.write_err_hash(err_mid, E.MAX_MESSAGE_SIZE_EXCEED)
        return
    payload = c.read(ptr, length)
    value = c.read_value(value_ptr)
    err, rid = c.commit_reply(payload, value)
    c.write_err_hash(err_mid, err, rid)


def gr_reply_push(c: HostContext, ptr: int, length: int, err: int) -> None:
    c.charge(B + PB * (length & U32))
    length &= U32
    if length > limits.MAX_PAYLOAD_SIZE:
        c.write_err(err, E.MAX_MESSAGE_SIZE_EXCEED)
        return
    c.write_err(err, c.push_reply(c.read(ptr, length)))


def gr_reply_commit(c: HostContext, value_ptr: int, err_mid: int) -> None:
    c.charge(B)
    err, rid = c.commit_reply(b"", c.read_value(value_ptr))
    c.write_err_hash(err_mid, err, rid)


def gr_reply_input(c: HostContext, offset: int, length: int, value_ptr: int, err_mid: int) -> None:
    c.charge(B)
    data = c.input_slice(offset, length)
    if isinstance(data, int):
        c.write_err_hash(err_mid, data)
        return
    c.charge(PB * len(data))
    value = c.read_value(value_ptr)
    err = c.push_reply(data)
    if err:
        c.write_err_hash(err_mid, err)
        return
    err, rid = c.commit_reply(b"", value)
    c.write_err_hash(err_mid, err, rid)


def gr_reply_push_input(c: HostContext, offset: int, length: int, err: int) -> None:
    c.charge(B)
    data = c.input_slice(offset, length)
    if isinstance(data, int):
        c.write_err(err, data)
        return
    c.charge(PB * len(data))
    c.write_err(err, c.push_reply(data))


def gr_reply_to(c: HostContext, err_mid: int) -> None:
    c.charge(B)
    if c.message.kind != Kind.REPLY:
        c.write_err_hash(err_mid, E.NO_REPLY_CONTEXT)
    else:
        c.write_err_hash(err_mid, 0, c.message.reply_to)


def gr_reply_code(c: HostContext, err_code: int) -> None:
    c.charge(B)
    if c.message.kind != Kind.REPLY:
        c.write(err_code, E.NO_REPLY_CONTEXT.to_bytes(4, "little") + bytes(4))
    else:
        c.write(err_code, bytes(4) + c.message.reply_code)


def _read_pid_value(c: HostContext, ptr: int) -> tuple[bytes, int]:
    raw = c.read(ptr, 48)
    return raw[:32], int.from_bytes(raw[32:], "little")


def gr_send(
    c: HostContext, pid_value: int, ptr: int, length: int, delay: int, err_mid: int
) -> None:
    c.charge(B + PB * (length & U32))
    length &= U32
    dest, value = _read_pid_value(c, pid_value)
    if length > limits.MAX_PAYLOAD_SIZE:
        c.write_err_hash(err_mid, E.MAX_MESSAGE_SIZE_EXCEED)
        return
    payload = c.read(ptr, length)
    nonce = c.new_send_slot()
    if nonce is None:
        c.write_err_hash(err_mid, E.OUTGOING_MESSAGES_AMOUNT_LIMIT_EXCEEDED)
        return
    err, mid = c.commit_send(dest, payload, value, delay, nonce)
    c.write_err_hash(err_mid, err, mid)


def gr_send_input(
    c: HostContext, pid_value: int, offset: int, length: int, delay: int, err_mid: int
) -> None:
    c.charge(B)
    dest, value = _read_pid_value(c, pid_value)
    data = c.input_slice(offset, length)
    if isinstance(data, int):
        c.write_err_hash(err_mid, data)
        return
    c.charge(PB * len(data))
    nonce = c.new_send_slot()
    if nonce is None:
        c.write_err_hash(err_mid, E.OUTGOING_MESSAGES_AMOUNT_LIMIT_EXCEEDED)
        return
    err, mid = c.commit_send(dest, data, value, delay, nonce)
    c.write_err_hash(err_mid, err, mid)


def gr_send_init(c: HostContext, err_handle: int) -> None:
    c.charge(B)
    nonce = c.new_send_slot()
    if nonce is None:
        c.write(
            err_handle, E.OUTGOING_MESSAGES_AMOUNT_LIMIT_EXCEEDED.to_bytes(4, "little") + bytes(4)
        )
        return
    c.handles[nonce] = bytearray()
    c.write(err_handle, bytes(4) + nonce.to_bytes(4, "little"))


def gr_send_push(c: HostContext, handle: int, ptr: int, length: int, err: int) -> None:
    c.charge(B + PB * (length & U32))
    length &= U32
    if length > limits.MAX_PAYLOAD_SIZE:
        c.write_err(err, E.MAX_MESSAGE_SIZE_EXCEED)
        return
    c.write_err(err, c.push_handle(handle, c.read(ptr, length)))


def gr_send_push_input(c: HostContext, handle: int, offset: int, length: int, err: int) -> None:
    c.charge(B)
    data = c.input_slice(offset, length)
    if isinstance(data, int):
        c.write_err(err, data)
        return
    c.charge(PB * len(data))
    c.write_err(err, c.push_handle(handle, data))


def gr_send_commit(c: HostContext, handle: int, pid_value: int, delay: int, err_mid: int) -> None:
    c.charge(B)
    handle &= U32
    dest, value = _read_pid_value(c, pid_value)
    if dest == SYSTEM_ID:
        raise backend_error("sending to the system actor is forbidden")
    if value > c.value_available:  # Gear charges the value before looking at the handle
        c.write_err_hash(err_mid, E.NOT_ENOUGH_VALUE)
        return
    if handle not in c.handles:
        c.write_err_hash(err_mid, E.OUT_OF_BOUNDS)
        return
    buf = c.handles[handle]
    if buf is None:
        c.write_err_hash(err_mid, E.LATE_ACCESS)
        return
    err, mid = c.commit_send(dest, bytes(buf), value, delay, handle)
    if not err:
        c.handles[handle] = None
    c.write_err_hash(err_mid, err, mid)


def gr_source(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, c.message.source)


def gr_message_id(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, c.message.id)


def gr_program_id(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, c.program_id)


def gr_value(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, c.message.value.to_bytes(16, "little"))


def gr_value_available(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, c.value_available.to_bytes(16, "little"))


def gr_block_height(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, (c.block_height & U32).to_bytes(4, "little"))


def gr_block_timestamp(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, c.block_timestamp.to_bytes(8, "little"))


def gr_gas_available(c: HostContext, ptr: int) -> None:
    c.charge(B)
    c.write(ptr, c.gas_left().to_bytes(8, "little"))


def gr_env_vars(c: HostContext, version: int, ptr: int) -> None:
    c.charge(B)
    if version != 1:
        raise backend_error(f"gr_env_vars: unsupported version {version} (only 1 exists)")
    c.write(ptr, _ENV_VARS_V1)


def gr_debug(c: HostContext, ptr: int, length: int) -> None:
    length &= U32
    c.charge(B + PB * length)
    if length > limits.MAX_DEBUG_SIZE:
        raise backend_error(f"gr_debug: {length} bytes exceeds {limits.MAX_DEBUG_SIZE}")
    raw = c.read(ptr, length)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise backend_error("gr_debug: the string is not UTF-8") from None
    if len(c.debug) < 1000:
        c.debug.append(text)


def gr_panic(c: HostContext, ptr: int, length: int) -> None:
    length &= U32
    c.charge(B + PB * length)
    if length > limits.MAX_PAYLOAD_SIZE:
        raise backend_error("gr_panic: panic payload too big")
    payload = c.read(ptr, length)
    raise Trap(
        codes.ERR_USERSPACE_PANIC, "panicked: " + payload.decode("utf-8", "replace"), payload
    )


def gr_oom_panic(c: HostContext) -> None:
    c.charge(B)
    raise Trap(codes.ERR_MEMORY_OVERFLOW, "out of memory (gr_oom_panic)")


def gr_exit(c: HostContext, ptr: int) -> None:
    c.charge(B)
    raise Exit(c.read(ptr, 32))


def gr_leave(c: HostContext) -> None:
    c.charge(B)
    raise Leave()


def _wait(c: HostContext, duration: int, name: str) -> None:
    c.charge(B)
    duration &= U32
    if duration == 0:
        raise backend_error(f"{name}: zero duration")
    if c.replied:
        raise backend_error(f"{name}: cannot wait after replying")
    raise Wait(min(duration, limits.MAX_WAIT_BLOCKS))


def gr_wait_for(c: HostContext, duration: int) -> None:
    _wait(c, duration, "gr_wait_for")


def gr_wait_up_to(c: HostContext, duration: int) -> None:
    _wait(c, duration, "gr_wait_up_to")


def gr_wake(c: HostContext, ptr: int, delay: int, err: int) -> None:
    c.charge(B)
    mid = c.read(ptr, 32)
    if any(w[0] == mid for w in c.wakes):
        c.write_err(err, E.DUPLICATE_WAKING)
        return
    c.wakes.append((mid, delay & U32))
    c.write_err(err, 0)


# -- memory management (units: 64 KiB wasm pages)


def alloc(c: HostContext, pages: int) -> int:
    c.charge(B)
    pages &= U32
    start = _first_fit(c, max(pages, 0))
    if start is None:
        return -1
    if pages == 0:
        return start
    c.charge(limits.ALLOC_PAGE_GAS * pages)
    end = start + pages
    current = c.size // limits.WASM_PAGE
    if end > current:
        prev = ctypes.c_uint64(0)
        err = native.memory_grow(c.ctx_ptr, c.mem_ref, end - current, ctypes.byref(prev))
        if err:
            raise wasmtime.WasmtimeError._from_ptr(err)
        c.refresh_memory()
    c.allocations.update(range(start, end))
    return start


def _first_fit(c: HostContext, pages: int) -> int | None:
    lo, hi = c.static_pages, limits.MAX_PAGES
    if lo >= hi:
        return None
    if pages == 0:
        return lo
    run_start, run = lo, 0
    for p in range(lo, hi):
        if p in c.allocations:
            run_start, run = p + 1, 0
            continue
        run += 1
        if run == pages:
            return run_start
    return None


def free(c: HostContext, page: int) -> int:
    c.charge(B)
    page &= U32
    if page >= 0x10000:
        raise Trap(codes.ERR_UNREACHABLE, f"free: {page} is not a wasm page number")
    if page not in c.allocations:
        return 1
    c.allocations.discard(page)
    return 0


def free_range(c: HostContext, start: int, end: int) -> int:
    c.charge(B)
    start &= U32
    end &= U32
    if start >= 0x10000 or end >= 0x10000:
        raise Trap(codes.ERR_UNREACHABLE, "free_range: not a wasm page number")
    if start > end or start < c.static_pages or end >= limits.MAX_PAGES:
        return 1
    c.charge(end - start + 1)
    c.allocations.difference_update(range(start, end + 1))
    return 0


SYSCALLS = {
    f.__name__: f
    for f in (
        alloc,
        free,
        free_range,
        gr_read,
        gr_size,
        gr_reply,
        gr_reply_push,
        gr_reply_commit,
        gr_reply_input,
        gr_reply_push_input,
        gr_reply_to,
        gr_reply_code,
        gr_send,
        gr_send_input,
        gr_send_init,
        gr_send_push,
        gr_send_push_input,
        gr_send_commit,
        gr_source,
        gr_message_id,
        gr_program_id,
        gr_value,
        gr_value_available,
        gr_block_height,
        gr_block_timestamp,
        gr_gas_available,
        gr_env_vars,
        gr_debug,
        gr_panic,
        gr_oom_panic,
        gr_exit,
        gr_leave,
        gr_wait_for,
        gr_wait_up_to,
        gr_wake,
    )
}

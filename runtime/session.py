"""A program session: one live instance of a program that runs many messages in a row.

The processor opens a session for each program it runs in a round. The session
instantiates the module once, restores the program's stored pages once, and then runs
the round's messages one after another on the same instance, calling entry points
through wasmtime's raw C API with preallocated arguments (wasmtime-py's
`Func.__call__` costs about ten times more per call).

Memory semantics, identical to a fresh instance per message for every program that
does not read memory it never wrote:
- pages at or above `__gear_stack_end` are the program's persistent memory. Before a
  message runs, the session holds a shadow copy of them; after a successful message,
  pages whose bytes differ from the shadow are reported dirty and the shadow updated;
  after a failed one, the live memory is put back from the shadow (and memory the
  message added is zeroed), so a failed dispatch leaves no trace;
- pages below `__gear_stack_end` are the shadow stack: scratch, never persisted
  (Gear's rule), and not cleared between the messages of one session.
Both are deterministic: which messages share a session is fixed by the round
structure, never by thread scheduling.

A session runs in a slot (`SlotPool`): a wasmtime store and memory that earlier
sessions used, zeroed before instantiation, so the instance starts exactly as in a new
store. Everything on the per-message and per-session path goes through `native.py`,
which keeps the GIL across short C calls; a message's WASM call releases the GIL only
when the program's previous message ran long (`HOLD_GIL_BELOW_FUEL`).

Syscalls are bound by `linker.py`; a syscall that ends the dispatch (exit, wait,
panic, ...) leaves its signal in `linker.tls.stop`, which `run()` reads after the call.

When modifying this part: gas charged per message must not depend on how messages are
grouped into sessions (a node may restart between blocks); keep every charge per
message.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping

import wasmtime
from wasmtime import _ffi as ffi

from . import codes, host, limits, native
from .execution import (
    LoadedCode,
    Outcome,
    _first_line,
    _trap_outcome,
    auto_reply,
)
from .host import HostContext
from .linker import linker_for, tls
from .message import ENTRY_OF_KIND, Context, Kind, Message
from .storage import Storage, read_required

_OUT_OF_FUEL = wasmtime.TrapCode.OUT_OF_FUEL.value
_STACK_OVERFLOW = wasmtime.TrapCode.STACK_OVERFLOW.value
_ENTRIES = ("init", "handle", "handle_reply")
_NO_CONTEXT = Context()
_ENV, _MEMORY = b"env", b"memory"
_EXTERN_MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value
_EXTERN_FUNC = ffi.WASMTIME_EXTERN_FUNC.value

# A message whose program burned less fuel than this on its previous message runs with
# the GIL held (native.FUNC_CALL_HOLDING): ~20–30 µs of WASM here. Timing only, never a
# result: see native.py.
HOLD_GIL_BELOW_FUEL = 200_000
# Fuel the last message of each code burned: where a new session starts guessing.
_LAST_FUEL: dict[bytes, int] = {}
_MEMORY_TYPES: dict[int, wasmtime.MemoryType] = {}


def runs_long(code_id: bytes) -> bool:
    """Whether a message of this code is expected to release the GIL while its WASM
    runs (see `run()`); a code that has not run yet is expected to."""
    return _LAST_FUEL.get(code_id, HOLD_GIL_BELOW_FUEL) >= HOLD_GIL_BELOW_FUEL


def fuel_hint(code_id: bytes) -> int:
    """Fuel the last message run with this code burned (0 if none yet): a guess at the
    next one's, for scheduling only."""
    return _LAST_FUEL.get(code_id, 0)


def _memory_type(pages: int) -> wasmtime.MemoryType:
    mt = _MEMORY_TYPES.get(pages)
    if mt is None:
        mt = _MEMORY_TYPES[pages] = wasmtime.MemoryType(wasmtime.Limits(pages, limits.MAX_PAGES))
    return mt


class SessionError(RuntimeError):
    """The instance could not be set up (e.g. a stored page is missing)."""


class _Slot:
    """A wasmtime store holding one memory, and a shadow buffer: what a session runs in.

    Slots are reused (`SlotPool`): a fresh store and memory cost little to create, but
    every page of a fresh memory that a session touches is a page fault (~3 µs on a VM),
    and deleting the store unmaps them again — together most of a session's setup
    time, and kernel work that the two pool threads serialise on. A reused memory is
    zeroed before the next instantiation, so the instance sees exactly a fresh memory:
    zeros, then the module's data segments.
    """

    __slots__ = ("store", "ctx", "mem", "mem_ref", "instances", "shadow")

    def __init__(self, engine: wasmtime.Engine, pages: int) -> None:
        self.store = native.store_new(engine.ptr(), None, native.NO_FINALIZER)
        self.ctx = native.store_context(self.store)
        self.mem = ffi.wasmtime_memory_t()
        self.mem_ref = ctypes.byref(self.mem)
        self.instances = 0
        self.shadow: ctypes.Array[ctypes.c_char] | None = None
        err = native.memory_new(self.ctx, _memory_type(pages).ptr(), self.mem_ref)
        if err:
            self.delete()
            raise wasmtime.WasmtimeError._from_ptr(err)

    def memory(self) -> tuple[int, int]:
        """Base address and size in bytes of the memory."""
        data = native.memory_data(self.ctx, self.mem_ref)
        return ctypes.cast(data, ctypes.c_void_p).value or 0, native.memory_data_size(
            self.ctx, self.mem_ref
        )

    def delete(self) -> None:
        if self.store is not None:
            # Deleting a store frees every instance it hosted (~30 µs each): long enough
            # to let the other threads have the GIL meanwhile.
            native.STORE_DELETE_RELEASING(self.store)
            self.store = None


class SlotPool:
    """Idle slots by memory size (in wasm pages), shared by the threads of one engine.

    A slot is taken by one session at a time. It goes back to the pool when its session
    closes, unless its store has hosted `MAX_INSTANCES` instances (instances live as
    long as their store) or its memory is above `MAX_BYTES` (zeroing a large memory
    costs more than faulting in the few pages a session touches).
    """

    MAX_INSTANCES = 64
    MAX_BYTES = 8 << 20
    MAX_IDLE = 8  # per memory size

    def __init__(self, engine: wasmtime.Engine) -> None:
        self.engine = engine
        self._idle: dict[int, list[_Slot]] = {}
        self._lock = threading.Lock()

    def take(self, pages: int) -> _Slot:
        with self._lock:
            idle = self._idle.get(pages)
            slot = idle.pop() if idle else None
        if slot is None:
            return _Slot(self.engine, pages)
        base, size = slot.memory()
        native.memset(base, 0, size)
        return slot

    def give(self, slot: _Slot) -> None:
        size = slot.memory()[1]
        if slot.instances < self.MAX_INSTANCES and size <= self.MAX_BYTES:
            with self._lock:
                idle = self._idle.setdefault(size // limits.WASM_PAGE, [])
                if len(idle) < self.MAX_IDLE:
                    idle.append(slot)
                    return
        slot.delete()

    def clear(self) -> None:
        with self._lock:
            slots = [s for idle in self._idle.values() for s in idle]
            self._idle.clear()
        for s in slots:
            s.delete()


class ProgramSession:
    """A live instance of one program; `run()` executes one message on it."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        code: LoadedCode,
        program_id: bytes,
        storage: Storage,
        pages: Mapping[int, bytes],
        allocations: frozenset[int],
        pool: SlotPool | None = None,
    ) -> None:
        # Built on wasmtime's C API through native.py (no GIL round trips, none of
        # wasmtime-py's per-object bookkeeping); the steps are those of Store(),
        # Memory(), Linker.define() and Linker.instantiate(), in a slot from `pool`.
        info = code.info
        self.code = code
        self.program_id = program_id
        self.allocations = frozenset(allocations)
        self.n_pages = len(pages)
        mem_pages = max([info.static_pages, *(p + 1 for p in allocations)])
        self._pool = pool
        self._view = memoryview(b"")
        slot = pool.take(mem_pages) if pool else _Slot(engine, mem_pages)
        self._slot: _Slot | None = slot
        self.ctx_ptr = ctx = slot.ctx
        self.mem_ref = slot.mem_ref
        self._ok = False  # instantiated: the slot may go back to the pool
        try:
            native.set_fuel(ctx, 1 << 40)  # instantiation consumes a little; see run()
            ext = ffi.wasmtime_extern_t()
            ext.kind = _EXTERN_MEMORY
            ext.of.memory = slot.mem
            linker = linker_for(engine)
            err = native.linker_define(linker.ptr(), ctx, _ENV, 3, _MEMORY, 6, ctypes.byref(ext))
            if err:
                raise wasmtime.WasmtimeError._from_ptr(err)
            self._instance = inst = ffi.wasmtime_instance_t()
            trap = ctypes.POINTER(ffi.wasm_trap_t)()
            slot.instances += 1
            err = native.linker_instantiate(
                linker.ptr(), ctx, code.module.ptr(), ctypes.byref(inst), ctypes.byref(trap)
            )
            if err:
                raise wasmtime.WasmtimeError._from_ptr(err)
            if trap:
                raise wasmtime.Trap._from_ptr(trap)
            self._externs = []  # the func structs `entries` points into
            self.entries = {}
            for name in info.exports:
                if name not in _ENTRIES:
                    continue
                out = ffi.wasmtime_extern_t()
                raw = name.encode()
                found = native.instance_export_get(
                    ctx, ctypes.byref(inst), raw, len(raw), ctypes.byref(out)
                )
                if found and out.kind == _EXTERN_FUNC:
                    self._externs.append(out)
                    self.entries[name] = ctypes.byref(out.of.func)
            self.persist_from = (info.stack_end or 0) * limits.WASM_PAGE
            self._base, self._size = base, size = slot.memory()
            self._view = host.memory_view(base, size)
            for gp, h in pages.items():
                off = gp * limits.GEAR_PAGE
                if off < self.persist_from or off + limits.GEAR_PAGE > size:
                    continue  # not persistent memory (cannot happen for well-formed state)
                page = read_required(storage, h, "memory page")
                native.memmove(base + off, page, limits.GEAR_PAGE)
        except BaseException:
            self.close()
            raise
        self._ok = True
        self._shadow_len = n = size - self.persist_from
        if slot.shadow is None or len(slot.shadow) < n:
            slot.shadow = ctypes.create_string_buffer(n)
        self._shadow = slot.shadow  # fixed address: compared with memcmp
        self._shadow_addr = ctypes.addressof(self._shadow)
        native.memmove(self._shadow_addr, base + self.persist_from, n)
        self.stale = False  # set when the instance no longer matches a fresh one
        self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
        self._trap_ref = ctypes.byref(self._trap)
        self._no_args = (ffi.wasmtime_val_t * 1)()
        self._fuel = ctypes.c_uint64()
        self._fuel_ref = ctypes.byref(self._fuel)
        self._last_fuel = _LAST_FUEL.get(info.code_id, HOLD_GIL_BELOW_FUEL)

    def _mem(self) -> tuple[int, int]:
        assert self._slot is not None
        return self._slot.memory()

    def close(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            self._view = memoryview(b"")  # the slot's memory is the next session's
            self.entries = {}
            self._externs = []
            if self._pool is not None and self._ok:
                self._pool.give(slot)
            else:
                slot.delete()

    def __del__(self) -> None:
        if getattr(self, "_slot", None) is not None:
            self.close()

    # -- one message

    def run(
        self, msg: Message, *, gas_limit: int, balance: int, block_height: int, block_timestamp: int
    ) -> Outcome:
        pid = self.program_id
        entry = ENTRY_OF_KIND[msg.kind]
        func = self.entries.get(entry)
        fixed = limits.DISPATCH_BASE_GAS + limits.PAGE_LOAD_GAS * self.n_pages
        if gas_limit < fixed:  # Gear precharges before looking at the entry point
            return _trap_outcome(
                msg,
                pid,
                gas_limit,
                codes.ERR_RAN_OUT_OF_GAS,
                "gas limit below the dispatch's fixed cost",
            )
        if func is None:
            # Gear skips a missing entry point: the dispatch succeeds without running.
            reply = None if msg.kind == Kind.REPLY else auto_reply(msg, pid)
            return Outcome("success", fixed, reply=reply)
        budget = gas_limit - fixed
        ctx = self.ctx_ptr
        native.set_fuel(ctx, budget)
        mctx = msg.context or _NO_CONTEXT
        c = HostContext(
            mem_ref=self.mem_ref,
            message=msg,
            program_id=pid,
            block_height=block_height,
            block_timestamp=block_timestamp,
            balance=balance,
            first_run=msg.context is None,
            static_pages=self.code.info.static_pages,
            allocations=set(self.allocations),
            nonce=mctx.nonce,
            replied=mctx.replied,
            nonce_start=mctx.nonce,
            gas_limit=budget,
        )
        c.ctx_ptr = ctx
        c.base, c.size, c.view = self._base, self._size, self._view
        size_before = c.size

        tls.ctx = c
        tls.stop = None
        trap = self._trap
        # Short messages run without releasing the GIL (native.py).
        call = (
            native.FUNC_CALL_HOLDING
            if self._last_fuel < HOLD_GIL_BELOW_FUEL
            else native.FUNC_CALL_RELEASING
        )
        try:
            err = call(ctx, func, self._no_args, 0, self._no_args, 0, self._trap_ref)
        finally:
            tls.ctx = None
        stop: BaseException | None = tls.stop
        tls.stop = None
        fault: host.Trap | None = None
        native_overflow = False
        status, wait_blocks, inheritor = "success", 0, None
        if err or trap:
            # A host signal may come back as an error or as a trap: look at ours first.
            werr = wasmtime.WasmtimeError._from_ptr(err) if err else None
            wtrap = wasmtime.Trap._from_ptr(trap) if trap else None
            if trap:  # the Trap object owns it now
                self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
                self._trap_ref = ctypes.byref(self._trap)
            if stop is not None:
                if isinstance(stop, host.Exit):
                    status, inheritor = "exit", stop.inheritor
                elif isinstance(stop, host.Leave):
                    status = "success"
                elif isinstance(stop, host.Wait):
                    status, wait_blocks = "wait", stop.blocks
                elif isinstance(stop, host.Trap):
                    fault = stop
                else:  # a bug in a syscall: fail this dispatch, never the node
                    fault = host.Trap(
                        codes.ERR_BACKEND, f"internal syscall error: {type(stop).__name__}: {stop}"
                    )
            elif wtrap is not None:
                code = wtrap.trap_code
                tc = code.value if code is not None else None
                if tc == _OUT_OF_FUEL:
                    fault = host.Trap(codes.ERR_RAN_OUT_OF_GAS, "ran out of gas")
                elif tc == _STACK_OVERFLOW:  # last resort behind instrument.STACK_LIMIT
                    fault = host.Trap(codes.ERR_STACK_LIMIT, "native stack overflow")
                    native_overflow = True
                else:
                    fault = host.Trap(codes.ERR_UNREACHABLE, _first_line(wtrap.message))
            else:
                fault = host.Trap(codes.ERR_BACKEND, _first_line(str(werr)))

        native.get_fuel(ctx, self._fuel_ref)
        self._last_fuel = fuel = budget - self._fuel.value
        _LAST_FUEL[self.code.info.code_id] = fuel
        gas_burned = gas_limit - self._fuel.value + c.pending
        if gas_burned > gas_limit:
            # Syscall gas is charged lazily (host.py): whatever ended the dispatch, a
            # total above the limit means it ran out of gas on the way.
            fault = host.Trap(codes.ERR_RAN_OUT_OF_GAS, "ran out of gas")
        if fault is not None:
            self._rollback(size_before)
            # Past the native stack limit, how far WASM got depends on the machine's frame
            # sizes: burn the whole limit so the outcome does not (as for out of gas).
            full = native_overflow or fault.code == codes.ERR_RAN_OUT_OF_GAS
            burned = gas_limit if full else gas_burned
            return _trap_outcome(
                msg, pid, burned, fault.code, fault.explanation, fault.payload, c.debug
            )

        self._base, self._size, self._view = c.base, c.size, c.view  # `alloc` may grow it
        dirty = self._collect_dirty(c.base, c.size)
        store_cost = limits.PAGE_STORE_GAS * len(dirty)
        if gas_burned + store_cost > gas_limit:
            self._rollback(size_before)
            return _trap_outcome(
                msg,
                pid,
                gas_limit,
                codes.ERR_RAN_OUT_OF_GAS,
                "ran out of gas storing dirty pages",
                debug=c.debug,
            )
        self._accept(dirty)
        allocs = frozenset(c.allocations)
        changed_allocs = allocs != self.allocations
        if changed_allocs:
            self._clear_freed(self.allocations - allocs, dirty)
        self.allocations = allocs
        if changed_allocs:
            self._check_size()
        reply = c.reply
        if status != "wait" and reply is None and msg.kind != Kind.REPLY:
            reply = auto_reply(msg, pid)
        return Outcome(
            status,
            gas_burned + store_cost,
            reply=reply,
            sent=c.out,
            wakes=c.wakes,
            dirty_pages=dirty,
            allocations=allocs if changed_allocs else None,
            value_sent=c.value_sent,
            wait_blocks=wait_blocks,
            context=c.context_for_wait() if status == "wait" else None,
            inheritor=inheritor,
            debug=c.debug,
        )

    # -- memory bookkeeping

    def _grow_shadow(self, n: int) -> None:
        """The shadow grows with memory; the new part is zero, like grown memory."""
        if n <= self._shadow_len:
            return
        if n <= len(self._shadow):  # the slot's buffer has room
            native.memset(self._shadow_addr + self._shadow_len, 0, n - self._shadow_len)
        else:
            bigger = ctypes.create_string_buffer(n)
            native.memmove(bigger, self._shadow_addr, self._shadow_len)
            self._shadow, self._shadow_addr = bigger, ctypes.addressof(bigger)
            if self._slot is not None:
                self._slot.shadow = bigger
        self._shadow_len = n

    def _collect_dirty(self, base: int, size: int) -> dict[int, bytes]:
        """Persistent pages changed by the message just run (the shadow is not updated)."""
        start = self.persist_from
        n = size - start
        self._grow_shadow(n)
        live, shadow = base + start, self._shadow_addr
        memcmp = native.memcmp
        if not memcmp(live, shadow, n):
            return {}
        g = limits.GEAR_PAGE
        dirty: dict[int, bytes] = {}
        for off in range(0, n, g):
            if memcmp(live + off, shadow + off, g):
                dirty[(start + off) // g] = ctypes.string_at(live + off, g)
        return dirty

    def _accept(self, dirty: Mapping[int, bytes]) -> None:
        g, start, shadow = limits.GEAR_PAGE, self.persist_from, self._shadow_addr
        for gp, page in dirty.items():
            native.memmove(shadow + gp * g - start, page, g)

    def _clear_freed(self, freed: frozenset[int], dirty: dict[int, bytes]) -> None:
        """Freed wasm pages lose their content, as in a fresh instance: zero them in live
        memory and in the shadow, and drop them from the dirty set (the processor drops
        their stored pages)."""
        base, size = self._base, self._size
        w, g, start = limits.WASM_PAGE, limits.GEAR_PAGE, self.persist_from
        for page in freed:
            off = page * w
            if off < start or off + w > size:
                continue
            native.memset(base + off, 0, w)
            native.memset(self._shadow_addr + off - start, 0, w)
            for gp in range(off // g, (off + w) // g):
                dirty.pop(gp, None)

    def _check_size(self) -> None:
        """Memory cannot shrink: when it is larger than a fresh instance's would be (a
        failed dispatch grew it, or the top pages were freed), the session is stale and
        the processor opens a new one before the next message."""
        expected = max([self.code.info.static_pages, *(p + 1 for p in self.allocations)])
        if self._size != expected * limits.WASM_PAGE:
            self.stale = True

    def _rollback(self, size_before: int) -> None:
        """Put persistent memory back as it was before the failed message."""
        self._base, self._size = base, size = self._mem()
        self._view = host.memory_view(base, size)
        start = self.persist_from
        n = min(self._shadow_len, size - start)
        native.memmove(base + start, self._shadow_addr, n)
        if size > size_before:
            native.memset(base + size_before, 0, size - size_before)
        self._check_size()

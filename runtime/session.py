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

Syscalls are bound by `linker.py`; a syscall that ends the dispatch (exit, wait,
panic, ...) leaves its signal in `linker.tls.stop`, which `run()` reads after the call.

When modifying this part: gas charged per message must not depend on how messages are
grouped into sessions (a node may restart between blocks); keep every charge per
message.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping

import wasmtime
from wasmtime import _bindings as _raw
from wasmtime import _ffi as ffi

from . import codes, host, limits
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

# The C functions behind wasmtime-py's wrappers, called directly on the hot path.
_func_call = _raw._wasmtime_func_call
_set_fuel = _raw._wasmtime_context_set_fuel
_get_fuel = _raw._wasmtime_context_get_fuel
_memcmp = ctypes.CDLL(None).memcmp
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_memcmp.restype = ctypes.c_int
_OUT_OF_FUEL = wasmtime.TrapCode.OUT_OF_FUEL.value
_STACK_OVERFLOW = wasmtime.TrapCode.STACK_OVERFLOW.value


class SessionError(RuntimeError):
    """The instance could not be set up (e.g. a stored page is missing)."""


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
    ) -> None:
        info = code.info
        self.code = code
        self.program_id = program_id
        self.allocations = frozenset(allocations)
        self.n_pages = len(pages)
        mem_pages = max([info.static_pages, *(p + 1 for p in allocations)])
        self.store = store = wasmtime.Store(engine)
        store.set_fuel(1 << 40)  # instantiation consumes a little; per-message fuel is set in run()
        self.memory = memory = wasmtime.Memory(
            store, wasmtime.MemoryType(wasmtime.Limits(mem_pages, limits.MAX_PAGES))
        )
        linker = linker_for(engine)
        linker.define(store, "env", "memory", memory)
        instance = linker.instantiate(store, code.module)
        exports = instance.exports(store)
        self._funcs = [
            exports[name] for name in info.exports if name in ("init", "handle", "handle_reply")
        ]
        self.entries = {
            name: ctypes.byref(exports[name]._func)
            for name in info.exports
            if name in ("init", "handle", "handle_reply")
        }
        self.ctx_ptr = store._context()
        self.persist_from = (info.stack_end or 0) * limits.WASM_PAGE
        self._base, self._size = base, size = self._mem()
        for gp, h in pages.items():
            off = gp * limits.GEAR_PAGE
            if off < self.persist_from or off + limits.GEAR_PAGE > size:
                continue  # not persistent memory (cannot happen for well-formed state)
            ctypes.memmove(base + off, read_required(storage, h, "memory page"), limits.GEAR_PAGE)
        self._shadow_len = n = size - self.persist_from
        self._shadow = ctypes.create_string_buffer(n)  # fixed address: compared with memcmp
        self._shadow_addr = ctypes.addressof(self._shadow)
        ctypes.memmove(self._shadow_addr, base + self.persist_from, n)
        self.stale = False  # set when the instance no longer matches a fresh one
        self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
        self._no_args = (ffi.wasmtime_val_t * 1)()
        self._fuel = ctypes.c_uint64()
        self._fuel_ref = ctypes.byref(self._fuel)

    def _mem(self) -> tuple[int, int]:
        base = ctypes.addressof(self.memory.data_ptr(self.store).contents)
        return base, self.memory.data_len(self.store)

    def close(self) -> None:
        self.entries.clear()
        self._funcs.clear()
        self.store.close()

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
        store = self.store
        budget = gas_limit - fixed
        _set_fuel(self.ctx_ptr, budget)
        mctx = msg.context or Context()
        c = HostContext(
            store=store,
            memory=self.memory,
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
        c.ctx_ptr = self.ctx_ptr
        c.base, c.size = self._base, self._size
        size_before = c.size

        tls.ctx = c
        tls.stop = None
        trap = self._trap
        try:
            err = _func_call(
                self.ctx_ptr, func, self._no_args, 0, self._no_args, 0, ctypes.byref(trap)
            )
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
            if trap:
                self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
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

        _get_fuel(self.ctx_ptr, self._fuel_ref)
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

        self._base, self._size = c.base, c.size  # `alloc` may have grown memory
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
        if n > self._shadow_len:
            bigger = ctypes.create_string_buffer(n)  # zero-filled, like grown memory
            ctypes.memmove(bigger, self._shadow_addr, self._shadow_len)
            self._shadow, self._shadow_addr, self._shadow_len = bigger, ctypes.addressof(bigger), n

    def _collect_dirty(self, base: int, size: int) -> dict[int, bytes]:
        """Persistent pages changed by the message just run (the shadow is not updated)."""
        start = self.persist_from
        n = size - start
        self._grow_shadow(n)
        live, shadow = base + start, self._shadow_addr
        if not _memcmp(live, shadow, n):
            return {}
        g = limits.GEAR_PAGE
        dirty: dict[int, bytes] = {}
        for off in range(0, n, g):
            if _memcmp(live + off, shadow + off, g):
                dirty[(start + off) // g] = ctypes.string_at(live + off, g)
        return dirty

    def _accept(self, dirty: Mapping[int, bytes]) -> None:
        g, start, shadow = limits.GEAR_PAGE, self.persist_from, self._shadow_addr
        for gp, page in dirty.items():
            ctypes.memmove(shadow + gp * g - start, page, g)

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
            ctypes.memset(base + off, 0, w)
            ctypes.memset(self._shadow_addr + off - start, 0, w)
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
        start = self.persist_from
        n = min(self._shadow_len, size - start)
        ctypes.memmove(base + start, self._shadow_addr, n)
        if size > size_before:
            ctypes.memset(base + size_before, 0, size - size_before)
        self._check_size()

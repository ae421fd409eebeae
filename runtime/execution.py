"""Executing one message: instantiate the program, restore its memory, run one entry
point under a gas limit, and describe what happened as an `Outcome`.

The wasmtime engine is configured for determinism (fuel metering, NaN
canonicalization, no SIMD/threads/bulk memory, no WASI). Program memory is the
module's instantiation image (zeroes plus data segments) overlaid with the program's
stored 16 KiB pages; after the run, pages whose bytes changed are reported as dirty.
A failed dispatch reports no dirty pages, messages or allocations: its effects vanish.

`execute()` is pure with respect to program state: it reads pages through the storage
protocol and returns values; applying them is `processor.py`'s job. It is safe to run
on several threads at once for different programs (each thread has its own Linker;
wasmtime releases the GIL while WASM runs).

Stack: every module is compiled in its instrumented form (`instrument.py`), so a deep
recursion ends deterministically at `instrument.STACK_LIMIT` with StackLimitExceeded.
wasmtime's native limit (`MAX_WASM_STACK`) is only a last resort; hitting it charges
the whole gas limit, so even then the outcome does not depend on the machine's frame
sizes. Threads that run dispatches need `WASM_THREAD_STACK` bytes of stack (the
processor's pool threads get it through `wasm_thread_pool`).

When modifying this part: gas charged here (dispatch base, page loads, dirty pages)
is consensus-critical, as is the order in which dirty pages are detected.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

from . import codes, host, instrument, limits
from .host import HostContext, Outgoing
from .ids import reply_message_id
from .message import ENTRY_OF_KIND, Context, Kind, Message
from .storage import Storage, read_required
from .validation import CodeInfo, validate

# The instrumentation version is part of the engine version: artifacts compiled from
# differently instrumented code are never reused.
ENGINE_VERSION = f"gexe-engine-2/stack-{instrument.VERSION}"
# Native stack for WASM frames: a last resort behind the deterministic stack-height
# limit (instrument.py), which needs at most 1 MiB of it (measured: <= 16 bytes per
# cost unit, 65_536 units). wasmtime refuses (aborts the process!) a value above its
# async stack size, 2 MiB by default.
MAX_WASM_STACK = 2 * 1024 * 1024
# Stack of every thread that runs dispatches: WASM frames up to MAX_WASM_STACK plus the
# host calls (Python) made at the deepest point. The main thread has 8 MiB by default.
WASM_THREAD_STACK = 16 * 1024 * 1024
_STACK_SIZE_LOCK = threading.Lock()


def wasm_thread_pool(workers: int, name: str = "gexe-exec") -> ThreadPoolExecutor:
    """A thread pool whose threads all have `WASM_THREAD_STACK` bytes of stack.

    `threading.stack_size` only affects threads started while it is set, and
    ThreadPoolExecutor starts threads lazily, so every worker is started here (a barrier
    keeps each busy until all exist) before the process-wide setting is restored."""
    with _STACK_SIZE_LOCK:
        old = threading.stack_size(WASM_THREAD_STACK)
        try:
            pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
            barrier = threading.Barrier(workers)
            for f in [pool.submit(barrier.wait) for _ in range(workers)]:
                f.result()
        finally:
            threading.stack_size(old)
    return pool


def make_engine() -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    cfg.cranelift_nan_canonicalization = True
    cfg.wasm_simd = False
    cfg.wasm_relaxed_simd = False
    cfg.wasm_threads = False
    cfg.wasm_bulk_memory = False
    # Reference types stay on in the engine (wasmtime-py cannot turn off a component
    # feature that needs them); validation rejects their instructions itself.
    cfg.wasm_multi_value = False
    cfg.wasm_tail_call = False
    cfg.wasm_multi_memory = False
    cfg.wasm_memory64 = False
    cfg.wasm_gc = False
    cfg.wasm_function_references = False
    cfg.wasm_exceptions = False
    cfg.max_wasm_stack = MAX_WASM_STACK
    cfg.cranelift_opt_level = "speed"
    return wasmtime.Engine(cfg)


@dataclass(frozen=True, slots=True)
class LoadedCode:
    info: CodeInfo
    module: wasmtime.Module
    image: Mapping[int, bytes]  # non-zero gear pages of the instantiation image


class CodeCache:
    """Compiled modules by code id: in memory, and serialized on disk when `cache_dir`
    is given (keyed by code id and engine settings; a stale or foreign artifact is
    recompiled, never trusted blindly)."""

    def __init__(self, engine: wasmtime.Engine, cache_dir: Path | None = None) -> None:
        self.engine = engine
        self.cache_dir = cache_dir
        self._loaded: dict[bytes, LoadedCode] = {}
        self._lock = threading.Lock()

    def load(self, code: bytes, info: CodeInfo | None = None) -> LoadedCode:
        info = info or validate(code)
        hit = self._loaded.get(info.code_id)
        if hit is not None:
            return hit
        with self._lock:
            hit = self._loaded.get(info.code_id)
            if hit is None:
                module = self._compile(code, info.code_id)
                hit = LoadedCode(info, module, _instantiation_image(self.engine, module, info))
                self._loaded[info.code_id] = hit
        return hit

    def get(self, code_id: bytes) -> LoadedCode | None:
        return self._loaded.get(code_id)

    def _artifact_path(self, code_id: bytes) -> Path | None:
        if self.cache_dir is None:
            return None
        tag = hashlib.blake2b(
            f"{ENGINE_VERSION}/{wasmtime.__version__ if hasattr(wasmtime, '__version__') else ''}"
            .encode(), digest_size=8).hexdigest()
        return self.cache_dir / f"{code_id.hex()}.{tag}.cwasm"

    def _compile(self, code: bytes, code_id: bytes) -> wasmtime.Module:
        path = self._artifact_path(code_id)
        if path is not None and path.is_file():
            try:
                return wasmtime.Module.deserialize_file(self.engine, str(path))
            except wasmtime.WasmtimeError:
                path.unlink(missing_ok=True)  # built by another engine; rebuild below
        # Compile the instrumented form (deterministic stack-height limit, instrument.py).
        module = wasmtime.Module(self.engine, instrument.instrument(code))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(module.serialize())
            tmp.replace(path)
        return module


def _instantiation_image(engine: wasmtime.Engine, module: wasmtime.Module,
                         info: CodeInfo) -> dict[int, bytes]:
    """Non-zero gear pages of fresh memory right after instantiation (data segments)."""
    store = wasmtime.Store(engine)
    store.set_fuel(1 << 40)  # instantiation itself consumes a little fuel
    memory = wasmtime.Memory(store, wasmtime.MemoryType(
        wasmtime.Limits(info.static_pages, limits.MAX_PAGES)))
    linker = _linker(engine)
    linker.define(store, "env", "memory", memory)
    linker.instantiate(store, module)
    raw = memory.read(store, 0, memory.data_len(store))
    zero = bytes(limits.GEAR_PAGE)
    out = {}
    for gp in range(len(raw) // limits.GEAR_PAGE):
        chunk = raw[gp * limits.GEAR_PAGE : (gp + 1) * limits.GEAR_PAGE]
        if chunk != zero:
            out[gp] = bytes(chunk)
    return out


# ------------------------------------------------------------------- linker


_tls = threading.local()


def _linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    """This thread's Linker with every syscall bound to the thread's current context."""
    cache: dict[int, wasmtime.Linker] = getattr(_tls, "linkers", None) or {}
    _tls.linkers = cache
    linker = cache.get(id(engine))
    if linker is not None:
        return linker
    from .syscalls_abi import SYSCALL_SIGNATURES

    linker = wasmtime.Linker(engine)
    linker.allow_shadowing = True
    vt = {0x7F: wasmtime.ValType.i32(), 0x7E: wasmtime.ValType.i64()}
    for name, (params, results) in SYSCALL_SIGNATURES.items():
        fn = host.SYSCALLS[name]
        ftype = wasmtime.FuncType([vt[p] for p in params], [vt[r] for r in results])
        linker.define_func("env", name, ftype, _bound(fn))
    # the stack-height limiter's import (instrument.py)
    for (module, name), fn in INSTRUMENTATION_IMPORTS.items():
        linker.define_func(module, name, wasmtime.FuncType([], []), _bound(fn))
    cache[id(engine)] = linker
    return linker


def _stack_limit_exceeded(_ctx: HostContext | None) -> None:
    raise host.Trap(codes.ERR_STACK_LIMIT, "stack limit exceeded")


# Host functions that instrumented code imports, all of type () -> (): (module, name) ->
# fn(ctx). Validation never lets a program import these itself (only `env` is allowed).
INSTRUMENTATION_IMPORTS = {
    (instrument.IMPORT_MODULE, instrument.IMPORT_NAME): _stack_limit_exceeded,
}


def _bound(fn):  # type: ignore[no-untyped-def]
    def call(*args):  # type: ignore[no-untyped-def]
        return fn(_tls.ctx, *args)

    call.__name__ = fn.__name__
    return call


# ------------------------------------------------------------------- outcome


@dataclass(slots=True)
class Outcome:
    """What one dispatch did. `status` is success | exit | wait | trap."""

    status: str
    gas_burned: int
    reply: Message | None = None  # manual, auto or error reply to the incoming message
    sent: list[Outgoing] = field(default_factory=list)
    wakes: list[tuple[bytes, int]] = field(default_factory=list)
    dirty_pages: dict[int, bytes] = field(default_factory=dict)  # gear page -> content
    allocations: frozenset[int] | None = None  # new allocations, None when unchanged
    value_sent: int = 0
    wait_blocks: int = 0
    context: Context | None = None  # for wait: counters to keep
    inheritor: bytes | None = None
    explanation: str = ""
    debug: list[str] = field(default_factory=list)


def error_reply(msg: Message, program_id: bytes, code: bytes, payload: bytes = b"") -> Message:
    """Gear's error reply: the message's value goes back unless it was already credited."""
    value = msg.value if msg.context is None else 0
    return Message(reply_message_id(msg.id), Kind.REPLY, program_id, msg.source, payload,
                   value, reply_to=msg.id, reply_code=code, call=msg.call)


def auto_reply(msg: Message, program_id: bytes) -> Message:
    return Message(reply_message_id(msg.id), Kind.REPLY, program_id, msg.source, b"", 0,
                   reply_to=msg.id, reply_code=codes.SUCCESS_AUTO, call=msg.call)


def _trap_outcome(msg: Message, program_id: bytes, gas: int, code: bytes, why: str,
                  payload: bytes = b"", debug: list[str] | None = None) -> Outcome:
    reply = None if msg.kind == Kind.REPLY else error_reply(msg, program_id, code, payload)
    return Outcome("trap", gas, reply=reply, explanation=why, debug=debug or [])


_TRAP_CODES = {
    wasmtime.TrapCode.OUT_OF_FUEL: (codes.ERR_RAN_OUT_OF_GAS, "ran out of gas"),
    # last resort: instrumented code normally stops earlier (instrument.STACK_LIMIT)
    wasmtime.TrapCode.STACK_OVERFLOW: (codes.ERR_STACK_LIMIT, "native stack overflow"),
}


class Executor:
    """Runs dispatches against one engine and code cache."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.engine = make_engine()
        self.codes = CodeCache(self.engine, cache_dir)

    def execute(
        self,
        *,
        code: LoadedCode,
        program_id: bytes,
        message: Message,
        storage: Storage,
        pages: Mapping[int, bytes],  # gear page -> content hash
        allocations: frozenset[int],
        balance: int,
        gas_limit: int,
        block_height: int,
        block_timestamp: int,
    ) -> Outcome:
        msg = message
        entry = ENTRY_OF_KIND[msg.kind]
        if entry not in code.info.exports:
            # Gear skips execution of a missing entry point: the dispatch succeeds.
            reply = None if msg.kind == Kind.REPLY else auto_reply(msg, program_id)
            return Outcome("success", 0, reply=reply)

        fixed = limits.DISPATCH_BASE_GAS + limits.PAGE_LOAD_GAS * len(pages)
        if gas_limit < fixed:
            return _trap_outcome(msg, program_id, gas_limit, codes.ERR_RAN_OUT_OF_GAS,
                                 "gas limit below the dispatch's fixed cost")

        info = code.info
        mem_pages = max([info.static_pages, *(p + 1 for p in allocations)])
        store = wasmtime.Store(self.engine)
        store.set_fuel(gas_limit - fixed)
        memory = wasmtime.Memory(store, wasmtime.MemoryType(
            wasmtime.Limits(mem_pages, limits.MAX_PAGES)))
        linker = _linker(self.engine)
        linker.define(store, "env", "memory", memory)
        try:
            instance = linker.instantiate(store, code.module)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            return _trap_outcome(msg, program_id, gas_limit, codes.ERR_BACKEND,
                                 f"instantiation failed: {str(e).splitlines()[0]}")
        ctx_msg = msg.context or Context()
        c = HostContext(
            store=store, memory=memory, message=msg, program_id=program_id,
            block_height=block_height, block_timestamp=block_timestamp, balance=balance,
            first_run=msg.context is None, static_pages=info.static_pages,
            allocations=set(allocations), nonce=ctx_msg.nonce, replied=ctx_msg.replied,
            nonce_start=ctx_msg.nonce,
        )
        c.ctx_ptr = store._context()
        c.refresh_memory()
        for gp, h in pages.items():
            off = gp * limits.GEAR_PAGE
            if off + limits.GEAR_PAGE <= c.size:
                ctypes.memmove(c.base + off, read_required(storage, h, "memory page"),
                               limits.GEAR_PAGE)
        before = ctypes.string_at(c.base, c.size)

        func = instance.exports(store)[entry]
        _tls.ctx = c
        status, trap, explanation = "success", None, ""
        wait_blocks, inheritor = 0, None
        native_overflow = False
        try:
            func(store)
        except host.Exit as e:
            status, inheritor = "exit", e.inheritor
        except host.Leave:
            status = "success"
        except host.Wait as e:
            status, wait_blocks = "wait", e.blocks
        except host.Trap as e:
            trap, explanation = e, e.explanation
        except wasmtime.Trap as e:
            code_, why = _TRAP_CODES.get(e.trap_code, (codes.ERR_UNREACHABLE, ""))
            trap = host.Trap(code_, why or _first_line(e.message))
            native_overflow = e.trap_code == wasmtime.TrapCode.STACK_OVERFLOW
        except wasmtime.WasmtimeError as e:
            # A host-side failure surfaced by wasmtime: treat as a backend error.
            trap = host.Trap(codes.ERR_BACKEND, _first_line(str(e)))
        finally:
            _tls.ctx = None
        gas_burned = gas_limit - store.get_fuel()
        if trap is not None:
            # Out of gas, or past the native stack limit (where depends on the machine's
            # frame sizes): the whole gas limit is burned, so the outcome does not.
            full = native_overflow or trap.code == codes.ERR_RAN_OUT_OF_GAS
            return _trap_outcome(msg, program_id, gas_limit if full else gas_burned,
                                 trap.code, trap.explanation, trap.payload, c.debug)

        c.refresh_memory()
        dirty = _dirty_pages(before, ctypes.string_at(c.base, c.size))
        store_cost = limits.PAGE_STORE_GAS * len(dirty)
        if gas_burned + store_cost > gas_limit:
            return _trap_outcome(msg, program_id, gas_limit, codes.ERR_RAN_OUT_OF_GAS,
                                 "ran out of gas storing dirty pages", debug=c.debug)
        gas_burned += store_cost

        reply = c.reply
        if status != "wait" and reply is None and msg.kind != Kind.REPLY:
            reply = auto_reply(msg, program_id)
        allocs = frozenset(c.allocations)
        return Outcome(
            status, gas_burned, reply=reply, sent=c.out, wakes=c.wakes, dirty_pages=dirty,
            allocations=None if allocs == allocations else allocs, value_sent=c.value_sent,
            wait_blocks=wait_blocks,
            context=c.context_for_wait() if status == "wait" else None,
            inheritor=inheritor, explanation=explanation, debug=c.debug,
        )


def _first_line(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else "trap"


def _dirty_pages(before: bytes, after: bytes) -> dict[int, bytes]:
    if before == after:
        return {}
    g = limits.GEAR_PAGE
    out = {}
    zero = bytes(g)
    for gp in range(len(after) // g):
        a = gp * g
        new = after[a : a + g]
        old = before[a : a + g] if a < len(before) else zero
        if new != old:
            out[gp] = new
    return out

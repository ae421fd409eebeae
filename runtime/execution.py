"""The execution engine: wasmtime settings, compiled-code cache, and what one
dispatch produces (`Outcome`, error and auto replies).

The wasmtime engine is configured for determinism (fuel metering, NaN
canonicalization, no SIMD/threads/bulk memory, no WASI). Dispatches themselves run in
`session.py`; `processor.py` applies their outcomes. Compiled modules are shared by
every thread (wasmtime releases the GIL while WASM runs).

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

import hashlib
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

from . import codes, instrument, limits
from .host import Outgoing
from .ids import reply_message_id
from .linker import linker_for
from .message import Context, Kind, Message
from .validation import CodeInfo, gear_wasm_config, validate

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
    cfg = gear_wasm_config()
    cfg.consume_fuel = True
    cfg.cranelift_nan_canonicalization = True
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
            f"{ENGINE_VERSION}/{wasmtime.__version__ if hasattr(wasmtime, '__version__') else ''}".encode(),
            digest_size=8,
        ).hexdigest()
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


def _instantiation_image(
    engine: wasmtime.Engine, module: wasmtime.Module, info: CodeInfo
) -> dict[int, bytes]:
    """Non-zero gear pages of fresh memory right after instantiation (data segments)."""
    store = wasmtime.Store(engine)
    store.set_fuel(1 << 40)  # instantiation itself consumes a little fuel
    memory = wasmtime.Memory(
        store, wasmtime.MemoryType(wasmtime.Limits(info.static_pages, limits.MAX_PAGES))
    )
    linker = linker_for(engine)
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
    return Message(
        reply_message_id(msg.id),
        Kind.REPLY,
        program_id,
        msg.source,
        payload,
        value,
        reply_to=msg.id,
        reply_code=code,
        call=msg.call,
    )


def auto_reply(msg: Message, program_id: bytes) -> Message:
    return Message(
        reply_message_id(msg.id),
        Kind.REPLY,
        program_id,
        msg.source,
        b"",
        0,
        reply_to=msg.id,
        reply_code=codes.SUCCESS_AUTO,
        call=msg.call,
    )


def _trap_outcome(
    msg: Message,
    program_id: bytes,
    gas: int,
    code: bytes,
    why: str,
    payload: bytes = b"",
    debug: list[str] | None = None,
) -> Outcome:
    reply = None if msg.kind == Kind.REPLY else error_reply(msg, program_id, code, payload)
    return Outcome("trap", gas, reply=reply, explanation=why, debug=debug or [])


class Executor:
    """The engine and compiled-code cache shared by every dispatch of a node."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        from .session import SlotPool  # session.py imports this module

        self.engine = make_engine()
        self.codes = CodeCache(self.engine, cache_dir)
        self.slots = SlotPool(self.engine)  # stores and memories reused by sessions

    def close(self) -> None:
        """Free the idle session slots (the executor stays usable)."""
        self.slots.clear()


def _first_line(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else "trap"

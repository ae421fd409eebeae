"""The Linker that binds every syscall for WASM: raw wasmtime host callbacks.

Syscalls are bound with wasmtime's *unchecked* host-function API: arguments arrive as
raw i32 slots and the result goes back in slot 0, without wasmtime-py's per-call
`Caller` and `Val` objects (about 1 µs per call instead of about 7).

Thread safety: wasmtime-py parks an exception raised by a host function in a
process-global slot. These callbacks never let an exception cross into wasmtime: the
callback stores it in this thread's `tls.stop` and stops WASM with a fresh trap, so
concurrent dispatches on other threads cannot see each other's signals. The dispatch
being run is found in `tls.ctx` (a `host.HostContext`).

When modifying this part: every callback must catch everything; an exception escaping
into wasmtime-py would be reported on whichever thread looks next.
"""

from __future__ import annotations

import ctypes
import threading

import wasmtime
from wasmtime import _ffi as ffi

from . import codes, host, instrument
from .syscalls_abi import SYSCALL_SIGNATURES

tls = threading.local()

_STOP_MSG = b"gexe: dispatch stopped by a syscall"
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()
# ctypes callbacks must outlive every Linker that uses them
_CALLBACKS: dict[str, object] = {}

_ARG_READERS = {
    0: lambda r: (),
    1: lambda r: (r[0].i32,),
    2: lambda r: (r[0].i32, r[1].i32),
    3: lambda r: (r[0].i32, r[1].i32, r[2].i32),
    4: lambda r: (r[0].i32, r[1].i32, r[2].i32, r[3].i32),
    5: lambda r: (r[0].i32, r[1].i32, r[2].i32, r[3].i32, r[4].i32),
}


def _stack_limit_exceeded(_ctx: host.HostContext | None) -> None:
    raise host.Trap(codes.ERR_STACK_LIMIT, "stack limit exceeded")


# Host functions that instrumented code imports, all of type () -> (): (module, name) ->
# fn(ctx). Validation never lets a program import these itself (only `env` is allowed).
INSTRUMENTATION_IMPORTS = {
    (instrument.IMPORT_MODULE, instrument.IMPORT_NAME): _stack_limit_exceeded,
}


def _callback(fn, nparams: int, has_result: bool):  # type: ignore[no-untyped-def]
    """A raw (unchecked) wasmtime host callback calling `fn(ctx, *i32 args)`."""
    args = _ARG_READERS[nparams]

    def cb(env, caller, raw, n):  # type: ignore[no-untyped-def]
        try:
            result = fn(tls.ctx, *args(raw))
            if has_result:
                raw[0].i32 = result
            return 0
        except BaseException as e:  # noqa: BLE001 — every signal must stay on this thread
            tls.stop = e
            trap = ffi.wasmtime_trap_new(ctypes.create_string_buffer(_STOP_MSG), len(_STOP_MSG))
            return ctypes.cast(trap, ctypes.c_void_p).value

    return ffi.wasmtime_func_unchecked_callback_t(cb)


def _define(
    linker: wasmtime.Linker, module: str, name: str, ftype: wasmtime.FuncType, cb: object
) -> None:
    raw_mod, raw_name = module.encode(), name.encode()
    err = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        ctypes.create_string_buffer(raw_mod),
        len(raw_mod),
        ctypes.create_string_buffer(raw_name),
        len(raw_name),
        ftype.ptr(),
        cb,
        None,
        _NO_FINALIZER,
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)


def linker_for(engine: wasmtime.Engine) -> wasmtime.Linker:
    """This thread's Linker for `engine`, with every syscall and instrumentation import
    bound. Callers define `env.memory` per store (shadowing is allowed)."""
    cache: dict[int, wasmtime.Linker] | None = getattr(tls, "linkers", None)
    if cache is None:
        cache = tls.linkers = {}
    linker = cache.get(id(engine))
    if linker is not None:
        return linker
    linker = wasmtime.Linker(engine)
    linker.allow_shadowing = True
    vt = {0x7F: wasmtime.ValType.i32(), 0x7E: wasmtime.ValType.i64()}
    for name, (params, results) in SYSCALL_SIGNATURES.items():
        assert all(p == 0x7F for p in params), "raw callbacks read i32 slots only"
        cb = _CALLBACKS.get(name)
        if cb is None:
            cb = _CALLBACKS[name] = _callback(host.SYSCALLS[name], len(params), bool(results))
        ftype = wasmtime.FuncType([vt[p] for p in params], [vt[r] for r in results])
        _define(linker, "env", name, ftype, cb)
    for (module, name), fn in INSTRUMENTATION_IMPORTS.items():
        key = f"{module}.{name}"
        cb = _CALLBACKS.get(key)
        if cb is None:
            cb = _CALLBACKS[key] = _callback(fn, 0, False)
        _define(linker, module, name, wasmtime.FuncType([], []), cb)
    cache[id(engine)] = linker
    return linker

"""C entry points on the dispatch hot path, called *without releasing the GIL*.

ctypes releases the GIL around every foreign call made through a `CDLL` (as wasmtime-py
loads libwasmtime) or a `CFUNCTYPE` (`ctypes.memmove`, `ctypes.memset`). On one thread
that is harmless; with two pool threads it is the main cost of the parallel processor:
every release is a point where the other thread can take the GIL, and getting it back
means waiting until that thread reaches its own next release point — tens to hundreds
of microseconds on a VM, for a call whose work takes well under a microsecond.
Measured (bench/README.md, "Scaling"): a thread creating and deleting stores took 37 µs
an iteration alone and 526 µs next to a thread running Python.

So every short call the runtime makes per message or per session goes through a
`PyDLL` / `PYFUNCTYPE` prototype of the same C function, which keeps the GIL: memory
copies and compares, fuel, memory pointer and size, store/memory creation,
instantiation, export lookup. Only calls that are expected to run long release the
GIL: a WASM entry call (`FUNC_CALL_RELEASING`) and deleting a store that hosted many
instances (`STORE_DELETE_RELEASING`); `FUNC_CALL_HOLDING` runs a short
one without a GIL round trip (session.py chooses, from the fuel the program's previous
messages burned). Holding the GIL while WASM runs is safe: host callbacks re-enter
Python on the thread that already holds it, and Python's switch interval still applies
inside them.

None of this changes a result: which calls keep the GIL affects only thread timing.
"""

from __future__ import annotations

import ctypes

from wasmtime import _bindings as _b
from wasmtime import _ffi as ffi

_PY_WASMTIME = ctypes.PyDLL(ffi.dll._name)  # the same library; these calls keep the GIL
_PY_LIBC = ctypes.PyDLL(None)


def _holding(name: str):  # type: ignore[no-untyped-def]
    """`name` from libwasmtime with wasmtime-py's prototype, keeping the GIL."""
    releasing = getattr(_b, "_" + name)
    fn = getattr(_PY_WASMTIME, name)
    fn.restype, fn.argtypes = releasing.restype, releasing.argtypes
    return fn


# libc (argument conversion as ctypes.memmove / memset: ints, bytes and buffers)
memmove = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)(
    ctypes._memmove_addr  # type: ignore[attr-defined]
)
memset = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)(
    ctypes._memset_addr  # type: ignore[attr-defined]
)
memcmp = _PY_LIBC.memcmp
memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
memcmp.restype = ctypes.c_int

# wasmtime
FUNC_CALL_RELEASING = _b._wasmtime_func_call
FUNC_CALL_HOLDING = _holding("wasmtime_func_call")
set_fuel = _holding("wasmtime_context_set_fuel")
get_fuel = _holding("wasmtime_context_get_fuel")
memory_data = _holding("wasmtime_memory_data")
memory_data_size = _holding("wasmtime_memory_data_size")
memory_new = _holding("wasmtime_memory_new")
store_new = _holding("wasmtime_store_new")
store_context = _holding("wasmtime_store_context")
STORE_DELETE_RELEASING = _b._wasmtime_store_delete
linker_define = _holding("wasmtime_linker_define")
linker_instantiate = _holding("wasmtime_linker_instantiate")
instance_export_get = _holding("wasmtime_instance_export_get")
memory_grow = _holding("wasmtime_memory_grow")

NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))

"""Code validation: accept only WASM that fits the Vara.eth program rules.

`validate(code)` returns a `CodeInfo` (what execution needs to know about the code) or
raises `CodeError` whose `reason` is a short stable name (after Gear's `CodeError`
variants) and whose message says what is wrong and where.

Rules (runtime/ABI.md, section 5): WASM MVP with mutable globals and sign extension; no
floats (NaN bits and rounding modes are where WASM engines disagree), no SIMD, bulk
memory, reference types or multi-value (bulk memory also escapes fuel metering); memory
imported as `env.memory`, never grown by the program; only `env` imports, and only the
Vara.eth syscalls with their exact signatures; no start section; entry points `init` or
`handle` exported with signature `() -> ()`; an optional immutable `__gear_stack_end`
global aligned to a WASM page within static memory; active data segments within static
memory and above the stack. Instantiation must never fail: `env.memory` declares no
maximum below 512 pages, the table has at most `MAX_TABLE_SIZE` elements, and element
and data segments (even empty ones) lie within the table and static memory.

When modifying this part: validation verdicts are committed on chain; a rule change is
a protocol change. Keep each rejection's reason name stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from . import limits, wasm
from .ids import code_id as _code_id
from .instrument import InstrumentError, instrument
from .syscalls_abi import SYSCALL_SIGNATURES, VARA_ONLY

# table.get/set, typed select, ref.null/is_null/func: reference-types proposal
_REFERENCE_OPS = frozenset({0x25, 0x26, 0x1C, 0xD0, 0xD1, 0xD2})
ENTRY_POINTS = ("init", "handle", "handle_reply", "handle_signal", "state", "metahash")
STACK_END_EXPORT = "__gear_stack_end"
# Elements of the module's table; instantiation allocates all of them, so an unbounded
# size would make whether it succeeds depend on the machine's memory.
MAX_TABLE_SIZE = 1 << 16


class CodeError(ValueError):
    """Code rejected at upload; `reason` is a stable short name."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code_id: bytes
    size: int
    static_pages: int
    stack_end: int | None  # in wasm pages
    exports: frozenset[str]  # entry points present
    syscalls: frozenset[str]  # imported syscalls


def gear_wasm_config() -> wasmtime.Config:
    """wasmtime settings with exactly the WASM features Gear programs may use; the
    execution engine (execution.make_engine) adds its determinism knobs on top."""
    cfg = wasmtime.Config()
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
    return cfg


def _engine() -> wasmtime.Engine:
    return wasmtime.Engine(gear_wasm_config())


_VALIDATOR_ENGINE: wasmtime.Engine | None = None


def _structurally_valid(code: bytes) -> None:
    global _VALIDATOR_ENGINE
    if _VALIDATOR_ENGINE is None:
        _VALIDATOR_ENGINE = _engine()
    try:
        wasmtime.Module.validate(_VALIDATOR_ENGINE, code)
    except wasmtime.WasmtimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid module"
        # wasmtime's message for a disabled proposal names it; keep only the headline.
        raise CodeError("Validation", first) from None


def validate(code: bytes) -> CodeInfo:
    """Validate `code`; return its `CodeInfo` or raise `CodeError`."""
    if not isinstance(code, bytes | bytearray | memoryview):
        raise CodeError("Validation", "code must be bytes")
    code = bytes(code)
    if len(code) > limits.MAX_CODE_SIZE:
        raise CodeError(
            "CodeTooLarge", f"{len(code)} bytes exceeds the {limits.MAX_CODE_SIZE}-byte limit"
        )
    if code[:4] != wasm.MAGIC:
        raise CodeError("Validation", "not a WebAssembly module (missing \\0asm magic)")
    _structurally_valid(code)
    try:
        info = wasm.parse(code)
    except wasm.WasmFormatError as e:
        raise CodeError("Codec", str(e)) from None

    if info.start is not None:
        raise CodeError("StartSection", "a start section is not allowed; run setup in `init`")
    if info.memories:
        raise CodeError(
            "MemoryNotImported", "the module defines its own memory; it must import env.memory"
        )
    if info.tables > limits.MAX_TABLES:
        raise CodeError("TableLimit", f"{info.tables} tables; at most {limits.MAX_TABLES}")
    if any(t != wasm.FUNCREF for t in info.table_types):
        raise CodeError(
            "Validation", "a table must hold funcref (reference types are not supported)"
        )
    for i, flag in enumerate(info.element_flags):
        if flag != 0:
            raise CodeError(
                "Codec",
                f"element segment #{i}: only active segments listing "
                "function indices for table 0 are supported",
            )
    # Instantiation must not fail: without the checks below it would trap when the
    # program is created, on every node (tests/fuzz/test_regressions_wasm.py).
    table_size = info.table_limits[0][0] if info.table_limits else 0
    if table_size > MAX_TABLE_SIZE:
        raise CodeError(
            "TableSizeLimit", f"the table has {table_size} elements; at most {MAX_TABLE_SIZE}"
        )
    for i, (offset, count) in enumerate(info.elements):
        if offset is None:
            raise CodeError("Codec", f"element segment #{i}: the offset must be a single i32.const")
        if (offset & 0xFFFFFFFF) + count > table_size:
            raise CodeError(
                "ElementOutOfTable",
                f"element segment #{i} ends at {(offset & 0xFFFFFFFF) + count}, beyond "
                f"the table's {table_size} elements",
            )

    # imports
    static_pages: int | None = None
    syscalls: set[str] = set()
    for idx, imp in enumerate(info.imports):
        where = f"import #{idx} {imp.module}.{imp.name}"
        if imp.module != "env":
            raise CodeError("UnknownImport", f"{where}: only module `env` may be imported")
        if imp.kind == wasm.KIND_MEMORY:
            if imp.name != "memory" or static_pages is not None:
                raise CodeError("UnknownImport", f"{where}: the only memory import is env.memory")
            static_pages, maximum = imp.limits
            if maximum is not None and maximum < limits.MAX_PAGES:
                raise CodeError(
                    "InvalidMemoryMaximum",
                    f"{where} declares a maximum of {maximum} pages; the node provides "
                    f"memory of up to {limits.MAX_PAGES} pages (declare no maximum)",
                )
        elif imp.kind == wasm.KIND_FUNC:
            expected = SYSCALL_SIGNATURES.get(imp.name)
            if expected is None:
                hint = (
                    "exists on Vara but not on Vara.eth (build with gstd's `ethexe` feature)"
                    if imp.name in VARA_ONLY
                    else "is not a Gear syscall"
                )
                raise CodeError("UnknownImport", f"{where}: {hint}")
            if imp.name in syscalls:
                raise CodeError("DuplicateImport", f"{where}: imported twice")
            got = info.types[imp.type_index]
            if (got.params, got.results) != expected:
                want = wasm.FuncType(*expected)
                raise CodeError(
                    "InvalidImportFnSignature", f"{where}: signature {got}, expected {want}"
                )
            syscalls.add(imp.name)
        else:
            raise CodeError(
                "UnexpectedImportKind", f"{where}: tables and globals cannot be imported"
            )
    if static_pages is None:
        raise CodeError("MemoryNotImported", "the module must import its memory as env.memory")
    if static_pages > limits.MAX_PAGES:
        raise CodeError(
            "InvalidStaticPageCount",
            f"memory starts at {static_pages} pages; at most {limits.MAX_PAGES}",
        )

    # exports
    n_imported_funcs = sum(1 for i in info.imports if i.kind == wasm.KIND_FUNC)
    n_imported_globals = info.imported_globals
    entries: set[str] = set()
    stack_end: int | None = None
    for exp in info.exports:
        where = f"export {exp.name!r}"
        if exp.kind == wasm.KIND_FUNC:
            if exp.index < n_imported_funcs:
                raise CodeError(
                    "ExportReferencesToImportFunction", f"{where} re-exports an imported function"
                )
            if exp.name not in ENTRY_POINTS:
                raise CodeError(
                    "ExcessExport",
                    f"{where}: functions may only be exported as {', '.join(ENTRY_POINTS)}",
                )
            ftype = info.types[info.functions[exp.index - n_imported_funcs]]
            if ftype.params or ftype.results:
                raise CodeError(
                    "InvalidExportFnSignature",
                    f"{where} has signature {ftype}; entry points take and return nothing",
                )
            entries.add(exp.name)
        elif exp.kind == wasm.KIND_GLOBAL:
            if exp.index < n_imported_globals:
                raise CodeError("ExportReferencesToImportGlobal", f"{where}")
            g = info.globals[exp.index - n_imported_globals]
            if g.mutable:
                raise CodeError("MutableGlobalExport", f"{where} is mutable")
            if exp.name == STACK_END_EXPORT:
                if g.valtype != wasm.I32 or g.init_i32 is None:
                    raise CodeError(
                        "StackEndInitialization",
                        f"{where} must be initialised by a single i32.const",
                    )
                value = g.init_i32 & 0xFFFFFFFF
                if value % limits.WASM_PAGE:
                    raise CodeError(
                        "StackEndNotAligned", f"{where} = {value:#x} is not a multiple of 64 KiB"
                    )
                if value // limits.WASM_PAGE > static_pages:
                    raise CodeError(
                        "StackEndOutOfStatic",
                        f"{where} = {value:#x} lies beyond the {static_pages} static pages",
                    )
                stack_end = value // limits.WASM_PAGE
    if not entries & {"init", "handle"}:
        raise CodeError("RequiredExportNotFound", "neither `init` nor `handle` is exported")

    # data segments
    if len(info.data) > limits.MAX_DATA_SEGMENTS:
        raise CodeError(
            "DataSegmentsAmountLimit",
            f"{len(info.data)} data segments; at most {limits.MAX_DATA_SEGMENTS}",
        )
    static_bytes = static_pages * limits.WASM_PAGE
    for i, seg in enumerate(info.data):
        if not seg.active:
            raise CodeError("DataSection", f"data segment #{i} is passive (bulk memory)")
        if seg.offset is None:
            raise CodeError(
                "DataSectionInitialization", f"data segment #{i} offset is not a single i32.const"
            )
        off = seg.offset & 0xFFFFFFFF
        if stack_end is not None and off < stack_end * limits.WASM_PAGE:
            raise CodeError(
                "GearStackOverlaps", f"data segment #{i} at {off:#x} overlaps the stack"
            )
        if off + seg.size > static_bytes:  # even empty: instantiation checks the offset
            raise CodeError(
                "EndAddressOutOfStaticMemory",
                f"data segment #{i} ends at {off + seg.size:#x}, beyond static "
                f"memory ({static_bytes:#x})",
            )

    # instructions
    for fidx, (start, end) in enumerate(info.code):
        try:
            local_types = wasm.local_types(code, start, end)
            if any(t in (wasm.F32, wasm.F64) for t in local_types):
                raise CodeError(
                    "FloatInstruction",
                    f"function #{fidx + n_imported_funcs} declares a float local",
                )
            if any(t not in (wasm.I32, wasm.I64) for t in local_types):
                raise CodeError(
                    "Validation",
                    f"function #{fidx + n_imported_funcs} declares a reference or vector local",
                )
            for ins in wasm.instructions(code, start, end):
                if ins.opcode == 0x40:
                    raise CodeError(
                        "MemoryGrow",
                        f"function #{fidx + n_imported_funcs} uses memory.grow at "
                        f"byte {ins.offset}; allocate pages with the `alloc` "
                        "syscall",
                    )
                if wasm.is_float_op(ins.opcode):
                    raise CodeError(
                        "FloatInstruction",
                        f"function #{fidx + n_imported_funcs} uses a float "
                        f"instruction at byte {ins.offset}; use integer or fixed "
                        "point arithmetic",
                    )
                if ins.opcode == wasm.REF_BLOCK:
                    raise CodeError(
                        "Validation",
                        f"function #{fidx + n_imported_funcs}: block at byte "
                        f"{ins.offset} has a reference or vector type",
                    )
                if ins.opcode > 0xFF or ins.opcode in _REFERENCE_OPS:
                    raise CodeError(
                        "Validation",
                        f"function #{fidx + n_imported_funcs}: instruction "
                        f"{ins.opcode:#x} at byte {ins.offset} is not supported",
                    )
        except wasm.WasmFormatError as e:
            raise CodeError("Codec", str(e)) from None
    for t in info.types:
        if any(v in (wasm.F32, wasm.F64) for v in t.params + t.results):
            raise CodeError("FloatInstruction", f"function type {t} uses floats")
        if any(v not in (wasm.I32, wasm.I64) for v in t.params + t.results):
            raise CodeError("Validation", f"function type {t} uses reference or vector types")
    for g in info.globals:
        if g.valtype in (wasm.F32, wasm.F64):
            raise CodeError("FloatInstruction", "a global has a float type")
        if g.valtype not in (wasm.I32, wasm.I64):
            raise CodeError("Validation", "a global has a reference or vector type")

    # Gear instruments code at upload and rejects what it cannot instrument; so do we
    # (execution compiles the instrumented form, see instrument.py).
    try:
        instrument(code)
    except InstrumentError as e:
        raise CodeError("Instrumentation", str(e)) from None

    return CodeInfo(
        code_id=_code_id(code),
        size=len(code),
        static_pages=static_pages,
        stack_end=stack_end,
        exports=frozenset(entries),
        syscalls=frozenset(syscalls),
    )

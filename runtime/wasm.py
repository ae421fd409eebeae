"""A small reader for the WebAssembly binary format: sections, types, imports, exports,
globals, data segments, and an instruction scanner for code bodies.

It reads only what code validation needs and never executes anything. Malformed input
raises `WasmFormatError` with the byte offset; wasmtime's own validator runs first in
`validation.py`, so this reader can assume a structurally valid module for details it
does not check itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

SEC_CUSTOM, SEC_TYPE, SEC_IMPORT, SEC_FUNCTION, SEC_TABLE, SEC_MEMORY = 0, 1, 2, 3, 4, 5
SEC_GLOBAL, SEC_EXPORT, SEC_START, SEC_ELEMENT, SEC_CODE, SEC_DATA, SEC_DATACOUNT = (
    6,
    7,
    8,
    9,
    10,
    11,
    12,
)

I32, I64, F32, F64, V128, FUNCREF, EXTERNREF = 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F
VALTYPE_NAMES = {
    I32: "i32",
    I64: "i64",
    F32: "f32",
    F64: "f64",
    V128: "v128",
    FUNCREF: "funcref",
    EXTERNREF: "externref",
}

KIND_FUNC, KIND_TABLE, KIND_MEMORY, KIND_GLOBAL = 0, 1, 2, 3


class WasmFormatError(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


@dataclass(frozen=True, slots=True)
class FuncType:
    params: tuple[int, ...]
    results: tuple[int, ...]

    def __str__(self) -> str:
        p = ", ".join(VALTYPE_NAMES.get(t, hex(t)) for t in self.params)
        r = ", ".join(VALTYPE_NAMES.get(t, hex(t)) for t in self.results)
        return f"({p}) -> ({r})"


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    name: str
    kind: int
    type_index: int = -1  # functions
    limits: tuple[int, int | None] = (0, None)  # memories and tables


@dataclass(frozen=True, slots=True)
class Export:
    name: str
    kind: int
    index: int


@dataclass(frozen=True, slots=True)
class Global:
    valtype: int
    mutable: bool
    init_i32: int | None  # the value when the init expression is a plain i32.const


@dataclass(frozen=True, slots=True)
class DataSegment:
    active: bool
    offset: int | None  # constant i32 offset of an active segment into memory 0
    size: int


@dataclass(slots=True)
class ModuleInfo:
    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    functions: list[int] = field(default_factory=list)  # type index of each defined function
    memories: list[tuple[int, int | None]] = field(default_factory=list)
    tables: int = 0
    table_types: list[int] = field(default_factory=list)  # element type of each table
    table_limits: list[tuple[int, int | None]] = field(default_factory=list)
    element_flags: list[int] = field(default_factory=list)  # up to the first non-zero one
    # (constant i32 offset or None, number of functions) of each flag-0 element segment
    elements: list[tuple[int | None, int]] = field(default_factory=list)
    globals: list[Global] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    data: list[DataSegment] = field(default_factory=list)
    code: list[tuple[int, int]] = field(default_factory=list)  # (offset, end) of each body
    section_ids: list[int] = field(default_factory=list)

    @property
    def imported_globals(self) -> int:
        return sum(1 for i in self.imports if i.kind == KIND_GLOBAL)


class Reader:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def eof(self) -> bool:
        return self.pos >= self.end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise WasmFormatError("unexpected end of data", self.pos)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bytes(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise WasmFormatError("unexpected end of data", self.pos)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 35:
                raise WasmFormatError("LEB128 integer too long", self.pos)
        if result > 0xFFFFFFFF:
            raise WasmFormatError("integer out of u32 range", self.pos)
        return result

    def sleb(self, bits: int) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift > bits + 7:
                raise WasmFormatError("LEB128 integer too long", self.pos)
        if b & 0x40:
            result -= 1 << shift
        return result

    def name(self) -> str:
        raw = self.bytes(self.u32())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WasmFormatError("name is not UTF-8", self.pos) from None

    def limits(self) -> tuple[int, int | None]:
        flag = self.byte()
        if flag not in (0, 1):
            raise WasmFormatError(
                f"unsupported limits flag {flag:#x} (shared or 64-bit memory)", self.pos
            )
        lo = self.u32()
        return lo, (self.u32() if flag == 1 else None)


def _const_expr(r: Reader) -> int | None:
    """Read a constant expression; return its value if it is a lone `i32.const`."""
    value: int | None = None
    first = True
    while True:
        op = r.byte()
        if op == 0x0B:
            return value
        if op == 0x41:
            v = r.sleb(32)
            value = v if first else None
        elif op == 0x42:
            r.sleb(64)
            value = None
        elif op == 0x43:
            r.bytes(4)
            value = None
        elif op == 0x44:
            r.bytes(8)
            value = None
        elif op in (0x23, 0xD2):  # global.get, ref.func
            r.u32()
            value = None
        elif op == 0xD0:  # ref.null
            r.byte()
            value = None
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
            value = None
        else:
            raise WasmFormatError(f"unsupported opcode {op:#x} in constant expression", r.pos)
        first = False


def parse(data: bytes) -> ModuleInfo:
    """Parse the sections of a WASM binary that validation looks at."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise WasmFormatError("not a WebAssembly module (bad magic)", 0)
    if data[4:8] != VERSION:
        raise WasmFormatError("unsupported WebAssembly version", 4)
    info = ModuleInfo()
    r = Reader(data, 8)
    while not r.eof():
        sid = r.byte()
        size = r.u32()
        start, end = r.pos, r.pos + size
        if end > len(data):
            raise WasmFormatError(f"section {sid} runs past the end of the module", start)
        s = Reader(data, start, end)
        info.section_ids.append(sid)
        if sid == SEC_TYPE:
            for _ in range(s.u32()):
                if s.byte() != 0x60:
                    raise WasmFormatError("unsupported type form (only function types)", s.pos)
                params = tuple(s.byte() for _ in range(s.u32()))
                results = tuple(s.byte() for _ in range(s.u32()))
                info.types.append(FuncType(params, results))
        elif sid == SEC_IMPORT:
            for _ in range(s.u32()):
                module, name, kind = s.name(), s.name(), s.byte()
                if kind == KIND_FUNC:
                    info.imports.append(Import(module, name, kind, type_index=s.u32()))
                elif kind == KIND_TABLE:
                    s.byte()
                    info.imports.append(Import(module, name, kind, limits=s.limits()))
                elif kind == KIND_MEMORY:
                    info.imports.append(Import(module, name, kind, limits=s.limits()))
                elif kind == KIND_GLOBAL:
                    s.byte()
                    s.byte()
                    info.imports.append(Import(module, name, kind))
                else:
                    raise WasmFormatError(f"unknown import kind {kind}", s.pos)
        elif sid == SEC_FUNCTION:
            info.functions = [s.u32() for _ in range(s.u32())]
        elif sid == SEC_TABLE:
            info.tables = s.u32()
            for _ in range(info.tables):
                reftype = s.byte()
                info.table_types.append(reftype)
                if reftype == 0x40:  # a table with an initializer (function references)
                    break
                info.table_limits.append(s.limits())
        elif sid == SEC_ELEMENT:
            for _ in range(s.u32()):
                flag = s.u32()
                info.element_flags.append(flag)
                if flag != 0:
                    break  # other encodings are rejected; no need to read further
                offset = _const_expr(s)
                count = s.u32()
                for _ in range(count):
                    s.u32()
                info.elements.append((offset, count))
        elif sid == SEC_MEMORY:
            info.memories = [s.limits() for _ in range(s.u32())]
        elif sid == SEC_GLOBAL:
            for _ in range(s.u32()):
                valtype, mut = s.byte(), s.byte()
                info.globals.append(Global(valtype, mut == 1, _const_expr(s)))
        elif sid == SEC_EXPORT:
            for _ in range(s.u32()):
                info.exports.append(Export(s.name(), s.byte(), s.u32()))
        elif sid == SEC_START:
            info.start = s.u32()
        elif sid == SEC_CODE:
            for _ in range(s.u32()):
                body = s.u32()
                info.code.append((s.pos, s.pos + body))
                s.pos += body
        elif sid == SEC_DATA:
            for _ in range(s.u32()):
                flag = s.u32()
                if flag == 0:
                    off = _const_expr(s)
                    info.data.append(DataSegment(True, off, _skip_vec(s)))
                elif flag == 1:
                    info.data.append(DataSegment(False, None, _skip_vec(s)))
                elif flag == 2:
                    s.u32()
                    off = _const_expr(s)
                    info.data.append(DataSegment(True, off, _skip_vec(s)))
                else:
                    raise WasmFormatError(f"unknown data segment flag {flag}", s.pos)
        r.pos = end
    return info


def _skip_vec(s: Reader) -> int:
    n = s.u32()
    s.bytes(n)
    return n


# ------------------------------------------------------------------ instructions

# Opcodes with no immediates are absent from these tables.
_MEMARG = set(range(0x28, 0x3F))
_U32_1 = {0x0C, 0x0D, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0xD2}
_FLOAT_OPS = (
    {0x2A, 0x2B, 0x38, 0x39, 0x43, 0x44}
    | set(range(0x5B, 0x67))
    | set(range(0x8B, 0xA7))
    | {0xA8, 0xA9, 0xAA, 0xAB, 0xAE, 0xAF, 0xB0, 0xB1}
    | set(range(0xB2, 0xC0))
)


FLOAT_BLOCK = 0x10000  # pseudo-opcode: block/loop/if whose result type is f32 or f64
REF_BLOCK = 0x10001  # pseudo-opcode: block/loop/if typed with a reference or vector type


@dataclass(frozen=True, slots=True)
class Instr:
    offset: int
    opcode: int  # one byte, or (prefix << 8) | sub-opcode for 0xFC/0xFD/0xFE


def instructions(data: bytes, start: int, end: int) -> Iterator[Instr]:
    """Yield each instruction of one function body (locals skipped)."""
    r = Reader(data, start, end)
    for _ in range(r.u32()):  # local declarations
        r.u32()
        r.byte()
    while not r.eof():
        at = r.pos
        op = r.byte()
        if op in _MEMARG:
            r.u32()
            r.u32()
        elif op in _U32_1:
            r.u32()
        elif op in (0x02, 0x03, 0x04):
            b = r.data[r.pos] if r.pos < r.end else 0
            if b == 0x40 or b in VALTYPE_NAMES:
                r.pos += 1
                if b in (F32, F64):  # a block typed f32/f64 uses floats without an opcode
                    yield Instr(at, FLOAT_BLOCK)
                    continue
                if b in (V128, FUNCREF, EXTERNREF):
                    yield Instr(at, REF_BLOCK)
                    continue
            else:
                r.sleb(33)
        elif op == 0x0E:
            for _ in range(r.u32() + 1):
                r.u32()
        elif op == 0x11:
            r.u32()
            r.u32()
        elif op == 0x1C:
            for _ in range(r.u32()):
                r.byte()
        elif op in (0x3F, 0x40):
            r.u32()
        elif op == 0x41:
            r.sleb(32)
        elif op == 0x42:
            r.sleb(64)
        elif op == 0x43:
            r.bytes(4)
        elif op == 0x44:
            r.bytes(8)
        elif op == 0xD0:
            r.byte()
        elif op == 0xFC:
            sub = r.u32()
            if sub in (8, 12, 14):
                r.u32()
                r.u32()
            elif sub in (9, 13, 15, 16, 17):
                r.u32()
            elif sub == 10:
                r.u32()
                r.u32()
            elif sub == 11:
                r.u32()
            elif sub > 17:
                raise WasmFormatError(f"unknown 0xFC sub-opcode {sub}", at)
            yield Instr(at, 0xFC00 | sub)
            continue
        elif op in (0xFD, 0xFE):
            yield Instr(at, (op << 8) | r.u32())
            return  # cannot decode further; the caller rejects these prefixes
        elif op > 0xD2 and op not in (0xFC,):
            raise WasmFormatError(f"unknown opcode {op:#x}", at)
        yield Instr(at, op)


def local_types(data: bytes, start: int, end: int) -> list[int]:
    """Value types of the local declarations of one function body (one per group)."""
    r = Reader(data, start, end)
    out = []
    for _ in range(r.u32()):
        r.u32()
        out.append(r.byte())
    return out


def is_float_op(op: int) -> bool:
    return op in _FLOAT_OPS or (0xFC00 <= op <= 0xFC07) or op == FLOAT_BLOCK

"""Stack-height instrumentation: make deep recursion end at a deterministic point.

Purpose. Without this pass a runaway recursion ends when wasmtime's native stack limit
(`max_wasm_stack`) is hit. Native frame sizes depend on the compiler version and the
CPU features it targets, so two validators could disagree on *whether* a dispatch
overflows, and on how much gas it burned first. Like Gear (runtime/ABI.md section 5,
`stack_height` limiter), we rewrite every validated module so that the WASM itself
counts stack usage in abstract units and traps at a fixed limit:

- a new mutable i32 global `stack_height` is appended to the global section (existing
  global indices are unchanged);
- a new function import `gexe.stack_limit_exceeded: () -> ()` is appended to the import
  section; the host (execution.py / session.py linkers) answers it with a
  `Trap(ERR_STACK_LIMIT)`, i.e. reply code 01 00 05 00 (StackLimitExceeded);
- every defined function gets a prologue
      stack_height += COST(f); if stack_height > STACK_LIMIT: call stack_limit_exceeded
  and an epilogue `stack_height -= COST(f)` on every exit: the original body is wrapped
  in `block (result <f's result>)`, so the function end, every `br`/`br_if`/`br_table`
  to the function's outermost label and every `return` (rewritten to `br <depth of the
  wrapper block>`) all pass through the epilogue;
- each exported function is reached through a small entry thunk that first resets
  `stack_height` to 0 and every other mutable global to its initial value, then calls
  the original. A trap (or `gr_wait`/`gr_exit`, which unwind like one) skips
  epilogues; a program session (session.py) reuses one instance for several
  messages, so the thunk gives every dispatch the globals of a fresh instance, as Gear
  (which instantiates per message) does — including Rust's `__stack_pointer`.

COST(f) = FRAME_COST (4) + params + declared locals + max operand-stack height of f's
body. The height is a static bound computed from the validator's typing rules in the
same pass that re-encodes the body (code after an unconditional branch counts from the
enclosing block's base, so the bound is never below the real maximum). One unit stands
for one 8-byte value slot; FRAME_COST covers a frame's fixed part (return address,
frame pointer, saved registers, alignment: 32 bytes for `(func $f call $f)`). The
counter only ever holds the sum of the costs of the live frames, so the instruction at
which a recursion traps, and the gas burned by then, are properties of the module alone.

STACK_LIMIT and the native stack. Measured on cranelift (wasmtime 50, x86-64) with
recursions whose values all stay live across the recursive call (0..999 i32/i64
params, 0..200 locals, operand stacks 200 deep; direct, mutual and `call_indirect`),
native use is 6-10 bytes per unit for locals and operand stack, 8 for the smallest
frame, and at worst 16.0 bytes per unit for functions with hundreds of params (each
param lives in the caller's outgoing area and in the callee). 65_536 units therefore
need at most 1 MiB; execution.py sets `max_wasm_stack` to 2 MiB (wasmtime's cap unless
its async stack is enlarged too), so the deterministic limit always triggers first with
a 2x margin (tests/runtime/test_instrument.py re-checks this at 1.5x the limit), and
dispatch threads have >= 8 MiB, so host calls made at the deepest point have room.
For comparison, Gear's limit is 36_743 of its units (declared locals + max stack
height); the example programs' frames cost 4-25 of ours, which allows recursion at
least as deep as Gear for ordinary Rust frames. A program whose 64 KiB shadow stack is
the real bound never comes near either limit.

What is left to the native limit: a function crafted so that cranelift keeps far more
values live than its locals and operand stack (e.g. hundreds of loop invariants
hoisted out of a loop: measured 357 bytes per unit) can still reach `max_wasm_stack`
first. That trap keeps the StackLimitExceeded reply code and burns the whole gas limit
(execution.py, session.py), so the outcome does not depend on where it happened.

Invariants.
- Input: a module that passed `validation.validate` (MVP + sign extension + mutable
  globals; no floats, SIMD, bulk memory, multi-value or reference-type instructions).
  The decoder nevertheless understands every MVP/0xFC opcode and all element-segment
  forms, and raises `InstrumentError` on anything else.
- Output is a pure function of the input bytes (deterministic, same bytes on every
  machine) and validates under the engine's feature set.
- Function indices: imports keep theirs, the new import is number `n_func_imports`,
  defined functions shift by one, thunks come after them. `call`, exports (to the
  thunks), element segments, `ref.func`, the start function and the `name` section's
  function maps are rewritten accordingly; other custom sections are copied as is.

When modifying this part: the output bytes are consensus-critical (they decide where
a recursion traps and how much gas it burns). Any change to the rewrite, COST,
STACK_LIMIT or the thunks must bump `VERSION` (it is part of execution.py's
ENGINE_VERSION, so cached compiled artifacts are rebuilt) and is a protocol change.
Re-run tests/runtime/test_instrument.py, including the native-stack measurement, when
wasmtime is upgraded or `max_wasm_stack` changes.
"""

from __future__ import annotations

from .wasm import MAGIC, Reader, WasmFormatError
from .wasm import VERSION as WASM_VERSION

VERSION = 1
STACK_LIMIT = 65_536  # abstract units (see module docstring)
FRAME_COST = 4  # units of a frame's fixed part (return address, frame pointer, ...)
IMPORT_MODULE = "gexe"
IMPORT_NAME = "stack_limit_exceeded"

__all__ = [
    "VERSION",
    "STACK_LIMIT",
    "FRAME_COST",
    "IMPORT_MODULE",
    "IMPORT_NAME",
    "InstrumentError",
    "instrument",
    "stack_costs",
]


class InstrumentError(ValueError):
    """The module cannot be instrumented (never happens for validated code)."""


# ------------------------------------------------------------------ encoding


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _vec(items: list[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def _section(sid: int, payload: bytes) -> bytes:
    return bytes((sid,)) + _uleb(len(payload)) + payload


def _name(s: str) -> bytes:
    raw = s.encode()
    return _uleb(len(raw)) + raw


# ------------------------------------------------------------------ opcode tables

# Immediate kinds for the body scanner.
_K_NONE, _K_LEB, _K_MEMARG, _K_B4, _K_B8 = 0, 1, 2, 3, 4
_K_SPECIAL = 5  # handled one by one in _scan_body
_IMM = [-1] * 256  # -1: not an MVP opcode
_EFF = [0] * 256  # operand-stack effect (pushes - pops) of the non-special opcodes


def _set(ops: range | list[int] | tuple[int, ...], kind: int, eff: int) -> None:
    for op in ops:
        _IMM[op] = kind
        _EFF[op] = eff


_set([0x01], _K_NONE, 0)  # nop
_set([0x1A], _K_NONE, -1)  # drop
_set([0x1B], _K_NONE, -2)  # select
_set([0x20], _K_LEB, 1)  # local.get
_set([0x21], _K_LEB, -1)  # local.set
_set([0x22], _K_LEB, 0)  # local.tee
_set([0x23], _K_LEB, 1)  # global.get
_set([0x24], _K_LEB, -1)  # global.set
_set([0x25], _K_LEB, 0)  # table.get
_set([0x26], _K_LEB, -2)  # table.set
_set(range(0x28, 0x36), _K_MEMARG, 0)  # loads
_set(range(0x36, 0x3F), _K_MEMARG, -2)  # stores
_set([0x3F], _K_LEB, 1)  # memory.size
_set([0x40], _K_LEB, 0)  # memory.grow
_set([0x41, 0x42], _K_LEB, 1)  # i32.const, i64.const (sleb; skipping is the same)
_set([0x43], _K_B4, 1)  # f32.const
_set([0x44], _K_B8, 1)  # f64.const
_set([0x45, 0x50], _K_NONE, 0)  # eqz
_set(range(0x46, 0x50), _K_NONE, -1)  # i32 comparisons
_set(range(0x51, 0x67), _K_NONE, -1)  # i64/f32/f64 comparisons
_set(range(0x67, 0x6A), _K_NONE, 0)  # i32 clz ctz popcnt
_set(range(0x6A, 0x79), _K_NONE, -1)  # i32 binary
_set(range(0x79, 0x7C), _K_NONE, 0)  # i64 clz ctz popcnt
_set(range(0x7C, 0x8B), _K_NONE, -1)  # i64 binary
_set(range(0x8B, 0x92), _K_NONE, 0)  # f32 unary
_set(range(0x92, 0x99), _K_NONE, -1)  # f32 binary
_set(range(0x99, 0xA0), _K_NONE, 0)  # f64 unary
_set(range(0xA0, 0xA7), _K_NONE, -1)  # f64 binary
_set(range(0xA7, 0xC5), _K_NONE, 0)  # conversions, reinterpretations, sign extension
_set([0xD0], _K_LEB, 1)  # ref.null t (one byte, skipped like a LEB)
_set([0xD1], _K_NONE, 0)  # ref.is_null
_set([0xD2], _K_SPECIAL, 1)  # ref.func (index is remapped)
for _op in (0x00, 0x02, 0x03, 0x04, 0x05, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x1C, 0xFC):
    _IMM[_op] = _K_SPECIAL

# 0xFC sub-opcodes: (number of u32 immediates, stack effect)
_FC = {
    0: (0, 0),
    1: (0, 0),
    2: (0, 0),
    3: (0, 0),
    4: (0, 0),
    5: (0, 0),
    6: (0, 0),
    7: (0, 0),  # trunc_sat
    8: (2, -3),
    9: (1, 0),
    10: (2, -3),
    11: (1, -3),  # memory.init, data.drop, copy, fill
    12: (2, -3),
    13: (1, 0),
    14: (2, -3),  # table.init, elem.drop, table.copy
    15: (1, -1),
    16: (1, 1),
    17: (1, -3),
}  # table.grow, table.size, table.fill

_BLOCK_VALTYPES = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F})


# ------------------------------------------------------------------ module model


class _Module:
    """What the rewrite needs to know about the input module."""

    def __init__(self, code: bytes) -> None:
        if len(code) < 8 or code[:4] != MAGIC or code[4:8] != WASM_VERSION:
            raise InstrumentError("not a WebAssembly 1.0 module")
        self.code = code
        self.sections: list[tuple[int, int, int]] = []  # (id, payload start, end)
        self.types: list[tuple[int, int]] = []  # (params, results) counts
        self.results: list[bytes] = []  # result types of each type, encoded
        self.unit_type: int | None = None  # first () -> () type
        self.imports_end = 0
        self.n_imports = 0
        self.n_func_imports = 0
        self.n_global_imports = 0
        self.func_types: list[int] = []  # type index of every function (imports first)
        self.n_globals = 0  # defined
        self.mutable_globals: list[tuple[int, int]] = []  # (index, offset of init expr)
        r = Reader(code, 8)
        while not r.eof():
            sid = r.byte()
            size = r.u32()
            start, end = r.pos, r.pos + size
            if end > len(code):
                raise InstrumentError(f"section {sid} runs past the end of the module")
            self.sections.append((sid, start, end))
            r.pos = end
        for sid, start, end in self.sections:
            s = Reader(code, start, end)
            if sid == 1:
                for i in range(s.u32()):
                    if s.byte() != 0x60:
                        raise InstrumentError("unsupported type form")
                    np = s.u32()
                    s.bytes(np)
                    nr = s.u32()
                    self.results.append(s.bytes(nr))
                    self.types.append((np, nr))
                    if np == 0 and nr == 0 and self.unit_type is None:
                        self.unit_type = i
            elif sid == 2:
                for _ in range(s.u32()):
                    s.name()
                    s.name()
                    kind = s.byte()
                    if kind == 0:
                        self.func_types.append(s.u32())
                        self.n_func_imports += 1
                    elif kind == 1:
                        s.byte()
                        s.limits()
                    elif kind == 2:
                        s.limits()
                    elif kind == 3:
                        s.byte()
                        s.byte()
                        self.n_global_imports += 1
                    else:
                        raise InstrumentError(f"unknown import kind {kind}")
                    self.n_imports += 1
            elif sid == 3:
                self.func_types.extend(s.u32() for _ in range(s.u32()))
            elif sid == 6:
                for _ in range(s.u32()):
                    s.byte()
                    mut = s.byte()
                    if mut == 1:
                        idx = self.n_global_imports + self.n_globals
                        self.mutable_globals.append((idx, s.pos))
                    _skip_const_expr(s)
                    self.n_globals += 1
        for t in self.func_types:
            if t >= len(self.types):
                raise InstrumentError(f"function type index {t} out of range")

    def payload(self, sid: int) -> tuple[int, int] | None:
        for s, start, end in self.sections:
            if s == sid:
                return start, end
        return None


def _skip_const_expr(s: Reader) -> None:
    while True:
        op = s.byte()
        if op == 0x0B:
            return
        if op in (0x41, 0x42):
            s.sleb(64)
        elif op == 0x43:
            s.bytes(4)
        elif op == 0x44:
            s.bytes(8)
        elif op in (0x23, 0xD2):
            s.u32()
        elif op == 0xD0:
            s.byte()
        elif op not in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):
            raise InstrumentError(f"unsupported opcode {op:#x} in a constant expression")


# ------------------------------------------------------------------ the rewrite


class _Rewriter:
    def __init__(self, m: _Module) -> None:
        self.m = m
        self.nfi = m.n_func_imports
        self.limit_func = m.n_func_imports  # index of the new import
        self.n_defined = len(m.func_types) - m.n_func_imports
        self.new_type = m.unit_type is None
        self.unit_type = len(m.types) if m.unit_type is None else m.unit_type
        self.sh_global = m.n_global_imports + m.n_globals
        # exported functions and their thunks, in export-section order
        self.thunk_of: dict[int, int] = {}
        exp = m.payload(7)
        if exp is not None:
            s = Reader(m.code, *exp)
            for _ in range(s.u32()):
                s.name()
                kind = s.byte()
                idx = s.u32()
                if kind == 0 and idx >= self.nfi and idx not in self.thunk_of:
                    self.thunk_of[idx] = self.nfi + 1 + self.n_defined + len(self.thunk_of)
        # operand-stack effect of calling each function; (params, results) of each type
        self.call_eff = [m.types[t][1] - m.types[t][0] for t in m.func_types]

    def func(self, idx: int) -> int:
        """New index of old function `idx` (as a call target / table entry)."""
        return idx if idx < self.nfi else idx + 1

    # -- sections

    def run(self) -> bytes:
        m = self.m
        out = [MAGIC + WASM_VERSION]
        # Sections we may have to create, by their position in the canonical order.
        order = {
            1: 1,
            2: 2,
            3: 3,
            4: 4,
            5: 5,
            13: 6,
            6: 7,
            7: 8,
            8: 9,
            9: 10,
            12: 11,
            10: 12,
            11: 13,
        }
        present = {sid for sid, _, _ in m.sections}
        pending = []
        if 1 not in present:
            pending.append((1, self._types(None)))
        if 2 not in present:
            pending.append((2, self._imports(None)))
        if self.thunk_of and 3 not in present:  # cannot happen: exports need functions
            raise InstrumentError("exports name functions but there is no function section")
        if 6 not in present:
            pending.append((6, self._globals(None)))

        for sid, start, end in m.sections:
            if sid != 0:
                while pending and order[pending[0][0]] < order.get(sid, 99):
                    out.append(_section(*pending.pop(0)))
            span = (start, end)
            if sid == 0:
                out.append(self._custom(start, end))
                continue
            if sid == 1:
                payload = self._types(span)
            elif sid == 2:
                payload = self._imports(span)
            elif sid == 3:
                payload = self._functions(span)
            elif sid == 6:
                payload = self._globals(span)
            elif sid == 7:
                payload = self._exports(span)
            elif sid == 8:
                payload = _uleb(self.func(Reader(m.code, start, end).u32()))
            elif sid == 9:
                payload = self._elements(span)
            elif sid == 10:
                payload = self._code(span)
            else:
                payload = m.code[start:end]
            out.append(_section(sid, payload))
        for sid, payload in pending:
            out.append(_section(sid, payload))
        return b"".join(out)

    def _types(self, span: tuple[int, int] | None) -> bytes:
        code = self.m.code
        n = len(self.m.types)
        body = b""
        if span is not None:
            s = Reader(code, *span)
            s.u32()
            body = code[s.pos : span[1]]
        if self.new_type:
            return _uleb(n + 1) + body + b"\x60\x00\x00"
        return _uleb(n) + body

    def _imports(self, span: tuple[int, int] | None) -> bytes:
        code = self.m.code
        body = b""
        if span is not None:
            s = Reader(code, *span)
            s.u32()
            body = code[s.pos : span[1]]
        new = _name(IMPORT_MODULE) + _name(IMPORT_NAME) + b"\x00" + _uleb(self.unit_type)
        return _uleb(self.m.n_imports + 1) + body + new

    def _functions(self, span: tuple[int, int]) -> bytes:
        code = self.m.code
        s = Reader(code, *span)
        s.u32()
        thunks = b"".join(_uleb(self.m.func_types[f]) for f in self.thunk_of)
        return _uleb(self.n_defined + len(self.thunk_of)) + code[s.pos : span[1]] + thunks

    def _globals(self, span: tuple[int, int] | None) -> bytes:
        code = self.m.code
        items = []
        if span is not None:
            s = Reader(code, *span)
            for _ in range(s.u32()):
                head = code[s.pos : s.pos + 2]
                s.pos += 2
                items.append(head + self._const_expr(s))
        items.append(b"\x7f\x01\x41\x00\x0b")  # (global (mut i32) (i32.const 0))
        return _vec(items)

    def _const_expr(self, s: Reader) -> bytes:
        """Copy one constant expression (with its end), remapping `ref.func`."""
        code = s.data
        start = s.pos
        parts = []
        while True:
            at = s.pos
            op = s.byte()
            if op == 0x0B:
                break
            if op == 0xD2:
                parts.append(code[start:at])
                parts.append(b"\xd2" + _uleb(self.func(s.u32())))
                start = s.pos
            elif op in (0x41, 0x42):
                s.sleb(64)
            elif op == 0x43:
                s.bytes(4)
            elif op == 0x44:
                s.bytes(8)
            elif op == 0x23:
                s.u32()
            elif op == 0xD0:
                s.byte()
            elif op not in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):
                raise InstrumentError(f"unsupported opcode {op:#x} in a constant expression")
        parts.append(code[start : s.pos])
        return b"".join(parts)

    def _exports(self, span: tuple[int, int]) -> bytes:
        code = self.m.code
        s = Reader(code, *span)
        items = []
        for _ in range(s.u32()):
            at = s.pos
            s.name()
            head = code[at : s.pos]
            kind = s.byte()
            idx = s.u32()
            if kind == 0:
                idx = self.thunk_of[idx] if idx in self.thunk_of else self.func(idx)
            items.append(head + bytes((kind,)) + _uleb(idx))
        return _vec(items)

    def _elements(self, span: tuple[int, int]) -> bytes:
        s = Reader(self.m.code, *span)
        items = []
        for _ in range(s.u32()):
            flags = s.u32()
            if flags > 7:
                raise InstrumentError(f"unknown element segment flags {flags}")
            part = _uleb(flags)
            if flags in (2, 6):
                part += _uleb(s.u32())  # table index
            if not flags & 1:
                part += self._const_expr(s)  # offset of an active segment
            if flags & 3:
                part += bytes((s.byte(),))  # elemkind or reftype
            n = s.u32()
            if flags & 4:  # vector of expressions
                part += _uleb(n) + b"".join(self._const_expr(s) for _ in range(n))
            else:  # vector of function indices
                part += _uleb(n) + b"".join(_uleb(self.func(s.u32())) for _ in range(n))
            items.append(part)
        return _vec(items)

    def _custom(self, start: int, end: int) -> bytes:
        code = self.m.code
        s = Reader(code, start, end)
        try:
            name = s.name()
        except WasmFormatError:
            name = None
        if name == "name":
            try:
                payload = self._name_section(s.pos, end)
            except (WasmFormatError, InstrumentError):
                return b""  # unreadable debug names: drop rather than mislead
            return _section(0, _name("name") + payload)
        return _section(0, code[start:end])

    def _name_section(self, start: int, end: int) -> bytes:
        """Shift the function indices in the function/local/label name maps."""
        code = self.m.code
        s = Reader(code, start, end)
        out = []
        while not s.eof():
            sub = s.byte()
            size = s.u32()
            sub_end = s.pos + size
            if sub_end > end:
                raise InstrumentError("name subsection runs past its section")
            t = Reader(code, s.pos, sub_end)
            if sub == 1:  # function names: vec(funcidx name)
                items = []
                inserted = False
                for _ in range(t.u32()):
                    idx = t.u32()
                    name = t.name()
                    if idx >= self.nfi and not inserted:
                        items.append(
                            _uleb(self.limit_func) + _name(f"{IMPORT_MODULE}.{IMPORT_NAME}")
                        )
                        inserted = True
                    items.append(_uleb(self.func(idx)) + _name(name))
                if not inserted:
                    items.append(_uleb(self.limit_func) + _name(f"{IMPORT_MODULE}.{IMPORT_NAME}"))
                body = _vec(items)
            elif sub in (2, 3):  # local / label names: vec(funcidx namemap)
                items = []
                for _ in range(t.u32()):
                    idx = t.u32()
                    at = t.pos
                    for _ in range(t.u32()):
                        t.u32()
                        t.name()
                    items.append(_uleb(self.func(idx)) + code[at : t.pos])
                body = _vec(items)
            else:
                body = code[s.pos : sub_end]
                t.pos = sub_end
            if t.pos != sub_end:
                raise InstrumentError("malformed name subsection")
            out.append(bytes((sub,)) + _uleb(len(body)) + body)
            s.pos = sub_end
        return b"".join(out)

    # -- code

    def _code(self, span: tuple[int, int]) -> bytes:
        m = self.m
        code = m.code
        s = Reader(code, *span)
        count = s.u32()
        if count != self.n_defined:
            raise InstrumentError("function and code section counts differ")
        bodies = []
        for i in range(count):
            size = s.u32()
            start = s.pos
            s.pos += size
            if s.pos > span[1]:
                raise InstrumentError(f"body of function {self.nfi + i} runs past the section")
            body, _cost = self._body(self.nfi + i, start, s.pos)
            bodies.append(_uleb(len(body)) + body)
        # entry thunks: reset the counter and the mutable globals, call the original
        reset = [b"\x41\x00\x24" + _uleb(self.sh_global)]
        for gidx, at in m.mutable_globals:  # global.set g (its init expression)
            reset.append(self._const_expr(Reader(code, at))[:-1])
            reset.append(b"\x24" + _uleb(gidx))
        reset_code = b"".join(reset)
        for orig in self.thunk_of:  # same type as the original; forward the arguments
            nparams = m.types[m.func_types[orig]][0]
            args = b"".join(b"\x20" + _uleb(i) for i in range(nparams))
            body = b"\x00" + reset_code + args + b"\x10" + _uleb(self.func(orig)) + b"\x0b"
            bodies.append(_uleb(len(body)) + body)
        return _uleb(len(bodies)) + b"".join(bodies)

    def _body(self, fidx: int, start: int, end: int) -> tuple[bytes, int]:
        """Instrumented body of function `fidx` (bytes [start, end) of the input) and
        its COST."""
        code = self.m.code
        types = self.m.types
        nparams, nresults = types[self.m.func_types[fidx]]
        s = Reader(code, start, end)
        nlocals = 0
        for _ in range(s.u32()):
            nlocals += s.u32()
            s.byte()
        locals_end = s.pos
        height, parts = self._scan(locals_end, end, nresults)
        cost = FRAME_COST + nparams + nlocals + height
        if nresults == 0:
            bt = b"\x40"
        elif nresults == 1:
            bt = self.m.results[self.m.func_types[fidx]]
        else:
            raise InstrumentError("multi-value results are not supported")
        c = _sleb(cost)
        g = _uleb(self.sh_global)
        prologue = (
            b"\x23"
            + g
            + b"\x41"
            + c
            + b"\x6a\x24"
            + g  # stack_height += cost
            + b"\x23"
            + g
            + b"\x41"
            + _sleb(STACK_LIMIT)
            + b"\x4b"  # > LIMIT (u)
            + b"\x04\x40\x10"
            + _uleb(self.limit_func)
            + b"\x0b"  # then trap
            + b"\x02"
            + bt
        )  # block (result ...)
        epilogue = b"\x0b\x23" + g + b"\x41" + c + b"\x6b\x24" + g + b"\x0b"
        body = b"".join([code[start:locals_end], prologue, *parts, epilogue])
        return body, cost

    def _scan(self, pos: int, end: int, nresults: int) -> tuple[int, list[bytes]]:
        """Walk one body's instructions from `pos`; return the max operand-stack height
        and the rewritten instruction bytes without the final `end`, as slices."""
        code = self.m.code
        imm = _IMM
        eff = _EFF
        call_eff = self.call_eff
        types = self.m.types
        nfi = self.nfi
        parts: list[bytes] = []
        copied = pos  # input bytes before this offset are already in `parts`
        # control frames: [base height, results, params]; the function's frame first
        frames = [(0, nresults, 0)]
        base = 0  # base height of the innermost frame
        h = 0
        top = 0
        while True:
            if pos >= end:
                raise InstrumentError("function body ends inside an instruction")
            op = code[pos]
            pos += 1
            k = imm[op]
            if k == _K_NONE:
                h += eff[op]
            elif k == _K_LEB:
                while code[pos] & 0x80:
                    pos += 1
                pos += 1
                h += eff[op]
            elif k == _K_MEMARG:
                while code[pos] & 0x80:
                    pos += 1
                pos += 1
                while code[pos] & 0x80:
                    pos += 1
                pos += 1
                h += eff[op]
            elif k == _K_SPECIAL:
                if op == 0x10:  # call
                    at = pos - 1
                    idx, pos = _read_u32(code, pos)
                    if idx >= len(call_eff):
                        raise InstrumentError(f"call to unknown function {idx}")
                    h += call_eff[idx]
                    if idx >= nfi:
                        parts.append(code[copied:at])
                        parts.append(b"\x10" + _uleb(idx + 1))
                        copied = pos
                elif op == 0x0B:  # end
                    fb, fr, _ = frames.pop()
                    if not frames:
                        if pos != end:
                            raise InstrumentError("code after the end of a function body")
                        parts.append(code[copied : pos - 1])
                        return top, parts
                    h = fb + fr
                    base = frames[-1][0]
                elif op in (0x02, 0x03, 0x04):  # block, loop, if
                    if op == 0x04:
                        h -= 1
                        if h < base:
                            h = base
                    b = code[pos]
                    if b == 0x40:
                        pos += 1
                        np = nr = 0
                    elif b in _BLOCK_VALTYPES:
                        pos += 1
                        np, nr = 0, 1
                    else:
                        t, pos = _read_sleb(code, pos)
                        if not 0 <= t < len(types):
                            raise InstrumentError(f"block type {t} out of range")
                        np, nr = types[t]
                    base = h - np
                    frames.append((base, nr, np))
                elif op == 0x05:  # else
                    fb, _, fp = frames[-1]
                    h = fb + fp
                elif op == 0x0C:  # br
                    while code[pos] & 0x80:
                        pos += 1
                    pos += 1
                    h = base
                elif op == 0x0D:  # br_if
                    while code[pos] & 0x80:
                        pos += 1
                    pos += 1
                    h -= 1
                elif op == 0x0E:  # br_table
                    n, pos = _read_u32(code, pos)
                    for _ in range(n + 1):
                        while code[pos] & 0x80:
                            pos += 1
                        pos += 1
                    h = base
                elif op == 0x0F:  # return -> br to the wrapper block
                    parts.append(code[copied : pos - 1])
                    parts.append(b"\x0c" + _uleb(len(frames) - 1))
                    copied = pos
                    h = base
                elif op == 0x00:  # unreachable
                    h = base
                elif op == 0x11:  # call_indirect
                    t, pos = _read_u32(code, pos)
                    _, pos = _read_u32(code, pos)
                    if t >= len(types):
                        raise InstrumentError(f"call_indirect type {t} out of range")
                    h += types[t][1] - types[t][0] - 1
                elif op == 0x1C:  # select t*
                    n, pos = _read_u32(code, pos)
                    pos += n
                    h -= 2
                elif op == 0xD2:  # ref.func
                    at = pos - 1
                    idx, pos = _read_u32(code, pos)
                    parts.append(code[copied:at])
                    parts.append(b"\xd2" + _uleb(self.func(idx)))
                    copied = pos
                    h += 1
                else:  # 0xFC
                    sub, pos = _read_u32(code, pos)
                    spec = _FC.get(sub)
                    if spec is None:
                        raise InstrumentError(f"unsupported instruction 0xfc {sub}")
                    for _ in range(spec[0]):
                        _, pos = _read_u32(code, pos)
                    h += spec[1]
            elif k == _K_B4:
                pos += 4
                h += 1
            elif k == _K_B8:
                pos += 8
                h += 1
            else:
                raise InstrumentError(f"unsupported opcode {op:#x} at byte {pos - 1}")
            if h > top:
                top = h
            elif h < base:
                h = base  # popping in unreachable code (the stack is polymorphic there)


def _read_u32(code: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = code[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise InstrumentError("LEB128 integer too long")


def _read_sleb(code: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = code[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos
        if shift > 35:
            raise InstrumentError("LEB128 integer too long")


# ------------------------------------------------------------------ API


def instrument(code: bytes) -> bytes:
    """Return `code` (a validated Gear module) with the stack-height limiter added."""
    try:
        return _Rewriter(_Module(bytes(code))).run()
    except (WasmFormatError, IndexError) as e:
        raise InstrumentError(f"cannot instrument: {e}") from None


def stack_costs(code: bytes) -> list[int]:
    """COST of each defined function, in function-index order (for tests and tools)."""
    try:
        rw = _Rewriter(_Module(bytes(code)))
        sec = rw.m.payload(10)
        if sec is None:
            return []
        s = Reader(rw.m.code, *sec)
        costs = []
        for i in range(s.u32()):
            size = s.u32()
            start = s.pos
            s.pos += size
            costs.append(rw._body(rw.nfi + i, start, s.pos)[1])
        return costs
    except (WasmFormatError, IndexError) as e:
        raise InstrumentError(f"cannot analyse: {e}") from None

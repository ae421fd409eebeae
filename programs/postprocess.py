#!/usr/bin/env python3
"""Turn a wasm built by rustc/wasm-ld into a Gear program binary (stdlib only).

    python3 postprocess.py IN.wasm OUT.wasm          # Gear program
    python3 postprocess.py --plain IN.wasm OUT.wasm  # plain module: step 4 only

wasm-ld cannot emit a Gear-shaped module by itself, so this rewrites it:

1. Exports: keeps only the Gear entry points (init, handle, handle_reply,
   handle_signal, state, metahash) and drops the rest (`__data_end`,
   `__heap_base`, ...).
2. Adds an immutable i32 global whose value is the initial value of the
   shadow-stack pointer (global 0, `i32.const N`), i.e. the end of the stack
   when it is placed first in memory, and exports it as `__gear_stack_end`.
   Gear's code validation requires N to be a multiple of the 64 KiB wasm page.
3. Data: trims zero bytes off the ends of every active segment and splits a
   segment at long runs of zeros. With imported memory wasm-ld writes `.bss`
   out as explicit zeros; Gear memory starts zero-filled, so they are dead
   weight (this is what `wasm-opt --zero-filled-memory` does for gear builds).
4. Drops every custom section (name, producers, target_features, ...).

It refuses modules with a start section or a stack pointer it cannot read.
Every other section is copied byte for byte, so the output is deterministic.
"""

from __future__ import annotations

import sys

ENTRY_POINTS = {"init", "handle", "handle_reply", "handle_signal", "state", "metahash"}
STACK_END_EXPORT = "__gear_stack_end"
WASM_PAGE = 64 * 1024
ZERO_RUN_SPLIT = 64  # split a data segment at zero runs at least this long

# Section ids in the order the binary format requires.
CUSTOM, TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT, START, ELEMENT, CODE, DATA, DATACOUNT = range(13)  # fmt: skip
ORDER = [TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT, START, ELEMENT, DATACOUNT, CODE, DATA]  # fmt: skip
I32, I32_CONST, END = 0x7F, 0x41, 0x0B
KIND_FUNC, KIND_GLOBAL = 0, 3


class WasmError(Exception):
    pass


# --- LEB128 -----------------------------------------------------------------


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        done = (n == 0 and not b & 0x40) or (n == -1 and b & 0x40)
        out.append(b if done else b | 0x80)
        if done:
            return bytes(out)


class Reader:
    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise WasmError("unexpected end of section")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bytes(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise WasmError("unexpected end of section")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def uleb(self) -> int:
        n = shift = 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def sleb(self) -> int:
        n = shift = 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n - (1 << shift) if b & 0x40 else n

    def name(self) -> str:
        return self.bytes(self.uleb()).decode()

    def const_i32(self) -> int:
        """A constant expression that must be exactly `i32.const N end`."""
        if self.byte() != I32_CONST:
            raise WasmError("expected an i32.const init expression")
        v = self.sleb()
        if self.byte() != END:
            raise WasmError("init expression longer than one i32.const")
        return v

    def done(self) -> bool:
        return self.pos >= len(self.data)


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def name(s: str) -> bytes:
    return uleb(len(s.encode())) + s.encode()


# --- module -------------------------------------------------------------------


def read_sections(wasm: bytes) -> list[tuple[int, bytes]]:
    if wasm[:8] != b"\0asm\x01\0\0\0":
        raise WasmError("not a wasm v1 module")
    r, out = Reader(wasm, 8), []
    while not r.done():
        sid = r.byte()
        out.append((sid, r.bytes(r.uleb())))
    return out


def imported_globals(import_sec: bytes | None) -> int:
    """Number of imported globals (they come first in the global index space)."""
    if import_sec is None:
        return 0
    r, n = Reader(import_sec), 0
    for _ in range(r.uleb()):
        r.name(), r.name()
        kind = r.byte()
        if kind == 0:  # func: type index
            r.uleb()
        elif kind == 1:  # table: reftype + limits
            r.byte()
            skip_limits(r)
        elif kind == 2:  # memory: limits
            skip_limits(r)
        elif kind == 3:  # global: valtype + mut
            r.bytes(2)
            n += 1
        else:
            raise WasmError(f"unknown import kind {kind}")
    return n


def skip_limits(r: Reader) -> None:
    flags = r.byte()
    r.uleb()
    if flags & 1:
        r.uleb()


def stack_pointer_init(sec: bytes) -> int:
    """Initial value of global 0, which must be wasm-ld's mutable i32 `__stack_pointer`."""
    r = Reader(sec)
    if r.uleb() == 0:
        raise WasmError("no globals: cannot find the stack pointer")
    valtype, mut = r.byte(), r.byte()
    if valtype != I32 or mut != 1:
        raise WasmError("global 0 is not a mutable i32 stack pointer")
    return r.const_i32()


def add_const_global(sec: bytes, value: int) -> tuple[bytes, int]:
    """Appends an immutable `i32.const value` global; returns (section, its local index)."""
    r = Reader(sec)
    count = r.uleb()
    new = bytes([I32, 0, I32_CONST]) + sleb(value) + bytes([END])
    return uleb(count + 1) + sec[r.pos :] + new, count


def rewrite_exports(sec: bytes, stack_global: int | None) -> bytes:
    r, keep = Reader(sec), []
    for _ in range(r.uleb()):
        nm = r.name()
        kind, idx = r.byte(), r.uleb()
        if kind == KIND_FUNC and nm in ENTRY_POINTS:
            keep.append(name(nm) + bytes([kind]) + uleb(idx))
        elif kind == KIND_GLOBAL and nm == STACK_END_EXPORT:  # already processed
            keep.append(name(nm) + bytes([kind]) + uleb(idx))
    if stack_global is not None:
        keep.append(name(STACK_END_EXPORT) + bytes([KIND_GLOBAL]) + uleb(stack_global))
    return vec(keep)


def has_stack_end_export(sec: bytes | None) -> bool:
    if sec is None:
        return False
    r = Reader(sec)
    for _ in range(r.uleb()):
        nm = r.name()
        kind, _ = r.byte(), r.uleb()
        if kind == KIND_GLOBAL and nm == STACK_END_EXPORT:
            return True
    return False


def split_zeros(offset: int, data: bytes) -> list[tuple[int, bytes]]:
    """Pieces of `data` (at memory `offset`) without leading/trailing zeros or
    zero runs of ZERO_RUN_SPLIT bytes or more."""
    pieces, i, n = [], 0, len(data)
    while i < n:
        while i < n and data[i] == 0:  # skip zeros
            i += 1
        if i == n:
            break
        j = i  # extend until a long zero run or the end
        while j < n:
            if data[j] == 0:
                k = j
                while k < n and data[k] == 0:
                    k += 1
                if k - j >= ZERO_RUN_SPLIT or k == n:
                    break
                j = k
            else:
                j += 1
        pieces.append((offset + i, data[i:j]))
        i = j
    return pieces


def rewrite_data(sec: bytes) -> bytes:
    r, segs = Reader(sec), []
    for _ in range(r.uleb()):
        flags = r.uleb()
        if flags != 0:  # passive or explicit-memory segments: keep as they are
            raise WasmError(f"unsupported data segment flags {flags}")
        offset = r.const_i32()
        data = r.bytes(r.uleb())
        for off, piece in split_zeros(offset, data):
            segs.append(
                b"\0" + bytes([I32_CONST]) + sleb(off) + bytes([END]) + uleb(len(piece)) + piece
            )
    return vec(segs)


def process(wasm: bytes) -> tuple[bytes, int]:
    """Returns (gear wasm, stack end)."""
    sections = [(sid, body) for sid, body in read_sections(wasm) if sid != CUSTOM]
    by_id = {sid: body for sid, body in sections}
    if START in by_id:
        raise WasmError("module has a start section (not allowed by Gear)")
    if DATACOUNT in by_id:
        raise WasmError("data count section (bulk memory) not supported")
    if GLOBAL not in by_id:
        raise WasmError("no global section: cannot find the stack pointer")

    n_imported = imported_globals(by_id.get(IMPORT))
    if n_imported:
        raise WasmError("imported globals: global 0 would not be the stack pointer")
    stack_end = stack_pointer_init(by_id[GLOBAL])
    if stack_end <= 0 or stack_end % WASM_PAGE:
        raise WasmError(f"stack end {stack_end} is not a positive multiple of {WASM_PAGE}")

    out: dict[int, bytes] = dict(by_id)
    if has_stack_end_export(by_id.get(EXPORT)):  # running twice changes nothing
        out[EXPORT] = rewrite_exports(by_id[EXPORT], None)
    else:
        out[GLOBAL], index = add_const_global(by_id[GLOBAL], stack_end)
        out[EXPORT] = rewrite_exports(by_id.get(EXPORT, b"\0"), n_imported + index)
    if DATA in out:
        out[DATA] = rewrite_data(out[DATA])

    blob = bytearray(b"\0asm\x01\0\0\0")
    for sid in ORDER:
        if sid in out:
            blob += bytes([sid]) + uleb(len(out[sid])) + out[sid]
    return bytes(blob), stack_end


def strip_custom(wasm: bytes) -> bytes:
    """The module without custom sections (for non-Gear modules like bench_kernels)."""
    blob = bytearray(b"\0asm\x01\0\0\0")
    for sid, body in read_sections(wasm):
        if sid != CUSTOM:
            blob += bytes([sid]) + uleb(len(body)) + body
    return bytes(blob)


def main(argv: list[str]) -> int:
    plain = len(argv) == 4 and argv[1] == "--plain"
    if plain:
        argv = argv[:1] + argv[2:]
    if len(argv) != 3:
        print("usage: postprocess.py [--plain] IN.wasm OUT.wasm", file=sys.stderr)
        return 2
    try:
        with open(argv[1], "rb") as f:
            data = f.read()
        wasm = strip_custom(data) if plain else process(data)[0]
    except (OSError, WasmError, UnicodeDecodeError) as e:
        print(f"postprocess: {argv[1]}: {e}", file=sys.stderr)
        return 1
    with open(argv[2], "wb") as f:
        f.write(wasm)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

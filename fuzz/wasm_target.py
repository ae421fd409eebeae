"""Target `wasm`: code validation on hostile modules, and execution of what it accepts.

Cases: the example programs (programs/*/*.wasm) mutated by one to four operations —
byte flips and sets, truncation, inserted or deleted bytes, sections spliced in from
another program, dropped, duplicated, swapped or re-tagged, and LEB128 edge values
written over section sizes and vector counts (minimal, zero-padded to 5 bytes,
overlong); small modules synthesized from a grammar of what instantiation depends on
(memory limits, table size, element and data segment placement, `__gear_stack_end`,
globals); random bytes behind a valid header; and raw bytes.

Property: `validate(code)` returns a `CodeInfo` or raises `CodeError`, nothing else
(`validator/events.code_verdict` catches only `CodeError`: anything else stops the
validator). A module that validates must also load, instantiate and run `init` and
`handle` in a `Sandbox` without an exception reaching the host: traps, out of gas and
bad syscalls end as error replies. Every message sent gets a reply or waits.
"""

from __future__ import annotations

from typing import Any

import wasmtime
from gexe.runtime import CodeError, CodeInfo, Sandbox, validate
from gexe.runtime.wasm import MAGIC, VERSION

from gexe import programs

from .base import Finding, Target, must
from .source import Recorder, Source

GAS = 1_000_000  # per message: real programs need ~25,000; a loop ends fast
BLOCK_GAS = 20 * GAS
PAYLOADS = (b"", b"PING", b"inc", b"\x00" * 40, b"\xff" * 7)
MODES = ("program", "mutate", "mutate", "mutate", "synth", "header+random", "raw")
LEB_VALUES = (0, 1, 2, 0x7F, 0x80, 0x3FFF, 0x4000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)


def leb(value: int, width: int = 0) -> bytes:
    """Unsigned LEB128; `width` > 0 pads with continuation bytes (overlong when > 5)."""
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value or len(out) + 1 < width:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_leb(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, position after) of the unsigned LEB128 at `pos`, or None."""
    value = shift = 0
    for i in range(pos, min(len(data), pos + 10)):
        value |= (data[i] & 0x7F) << shift
        shift += 7
        if not data[i] & 0x80:
            return value, i + 1
    return None


def sections(code: bytes) -> list[tuple[int, bytes]] | None:
    """(id, payload) of each section, or None when the module does not split."""
    if code[:8] != MAGIC + VERSION:
        return None
    out, pos = [], 8
    while pos < len(code):
        sid = code[pos]
        r = read_leb(code, pos + 1)
        if r is None or r[1] + r[0] > len(code):
            return None
        size, start = r
        out.append((sid, code[start : start + size]))
        pos = start + size
    return out


def join(secs: list[tuple[int, bytes]]) -> bytes:
    return MAGIC + VERSION + b"".join(bytes([sid]) + leb(len(p)) + p for sid, p in secs)


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def synth(src: Source) -> bytes:
    """A small module from a grammar of what instantiation depends on: memory limits,
    table size, element and data segment placement, `__gear_stack_end`, globals."""
    pages = src.pick((0, 1, 2, 16, 511, 512, 513))
    maximum = src.pick((None, None, 0, 1, pages, pages + 1, 511, 512, 513, 65536))
    top = pages * 0x10000
    parts = [f'(import "env" "memory" (memory {pages}{"" if maximum is None else f" {maximum}"}))']
    parts.append('(func $f) (func (export "init")) (func (export "handle"))')
    if src.bool():
        size = src.pick((0, 1, 2, 16, 65536, 65537, 1 << 20))
        parts.append(f"(table {size} {'' if src.int(0, 3) else f'{size} '}funcref)")
        for _ in range(src.int(0, 2)):
            off = src.pick((0, 1, size - 1, size, size + 1, 0x7FFFFFFF, 0xFFFFFFFF))
            parts.append(f"(elem (i32.const {_i32(off)}){' $f' * src.int(0, 3)})")
    for _ in range(src.int(0, 3)):
        off = src.pick((0, 1, 0x10000, top - 16, top - 1, top, top + 1, 0x7FFFFFFF, 0xFFFFFFFF))
        data = src.pick((b"", b"\1", b"\2" * 16))
        text = "".join("\\" + format(b, "02x") for b in data)
        parts.append(f'(data (i32.const {_i32(off)}) "{text}")')
    if src.bool():
        end = src.pick((0, 0x8000, 0x10000, top, top + 0x10000, 0xFFFF0000))
        mut = "(mut i32)" if src.int(0, 3) == 0 else "i32"
        parts.append(f'(global (export "__gear_stack_end") {mut} (i32.const {_i32(end)}))')
    for _ in range(src.int(0, 2)):
        parts.append(f"(global {src.pick(('i32', '(mut i32)', 'i64'))} (i32.const 0))")
    try:
        return bytes(wasmtime.wat2wasm("(module " + " ".join(parts) + ")"))
    except wasmtime.WasmtimeError:
        return b"(not wat)"


class WasmTarget(Target):
    name = "wasm"
    about = "validate() on mutated programs and random bytes; what validates must run"
    uses_wasm = True

    def __init__(self) -> None:
        self.names = programs.names()
        self.codes = {n: programs.path(n).read_bytes() for n in self.names}
        self.validated = 0  # cases that passed validation (and then ran)

    # ---------------------------------------------------------------- cases

    def generate(self, src: Source) -> bytes:
        mode = src.pick(MODES)
        if mode == "raw":
            return src.rest()
        if mode == "header+random":
            return MAGIC + VERSION + src.bytes(256)
        if mode == "synth":
            return synth(src)
        code = self.codes[src.pick(self.names)]
        if mode == "program":
            return code
        for _ in range(src.int(1, 4)):
            code = self._mutate(src, code)
        return code

    def _mutate(self, src: Source, code: bytes) -> bytes:
        op = src.pick(OPS)
        secs = sections(code)
        if op.startswith("sec_") and not secs:
            op = "flip"
        b = bytearray(code)
        n = len(b)
        if op == "flip" and n:
            b[src.int(0, n - 1)] ^= src.int(1, 255)
        elif op == "set" and n:
            b[src.int(0, n - 1)] = src.pick((0, 1, 0x40, 0x60, 0x7F, 0x80, 0xFF, src.int(0, 255)))
        elif op == "truncate":
            del b[src.int(0, n) :]
        elif op == "insert":
            at = src.int(0, n)
            b[at:at] = src.bytes(16)
        elif op == "delete" and n:
            at = src.int(0, n - 1)
            del b[at : at + src.int(1, 16)]
        elif op == "sec_splice":
            assert secs is not None
            other = sections(self.codes[src.pick(self.names)]) or [(0, b"")]
            new = src.pick(other)
            i = src.int(0, len(secs))
            if src.bool() and i < len(secs):
                secs[i] = new
            else:
                secs.insert(i, new)
            return join(secs)
        elif op == "sec_drop" and secs:
            del secs[src.int(0, len(secs) - 1)]
            return join(secs)
        elif op == "sec_dup" and secs:
            i = src.int(0, len(secs) - 1)
            secs.insert(src.int(0, len(secs)), secs[i])
            return join(secs)
        elif op == "sec_swap" and secs:
            i, j = src.int(0, len(secs) - 1), src.int(0, len(secs) - 1)
            secs[i], secs[j] = secs[j], secs[i]
            return join(secs)
        elif op == "sec_retag" and secs:
            i = src.int(0, len(secs) - 1)
            secs[i] = (src.int(0, 13), secs[i][1])
            return join(secs)
        elif op == "sec_size" and secs:
            # rewrite one section's size field with an edge value / odd encoding
            i = src.int(0, len(secs) - 1)
            sid, payload = secs[i]
            value = src.pick((*LEB_VALUES, len(payload) - 1, len(payload) + 1, len(payload)))
            size = leb(max(value, 0), src.pick((0, 5, 6)))
            head = join(secs[:i])
            return head + bytes([sid]) + size + payload + join(secs[i + 1 :])[8:]
        elif op == "sec_count" and secs:
            # the first LEB of a section's payload is its vector count (most sections)
            i = src.int(0, len(secs) - 1)
            sid, payload = secs[i]
            r = read_leb(payload, 0)
            if r is not None:
                value = src.pick((*LEB_VALUES, r[0] + 1, max(r[0] - 1, 0)))
                secs[i] = (sid, leb(value, src.pick((0, 5))) + payload[r[1] :])
            return join(secs)
        elif op == "leb_at" and n > 9:
            # an edge LEB over whatever LEB starts at a random position
            at = src.int(8, n - 1)
            r = read_leb(bytes(b), at)
            end = r[1] if r is not None else at + 1
            b[at:end] = leb(src.pick(LEB_VALUES), src.pick((0, 5, 6)))
        return bytes(b)

    def seeds(self) -> list[bytes]:
        return [Recorder().pick(MODES, "program").pick(self.names, n).done() for n in self.names]

    def show(self, case: Any) -> str:
        return f"wasm module of {len(case)} bytes: {bytes(case).hex()}"

    # ---------------------------------------------------------------- property

    def check(self, code: bytes) -> None:
        try:
            info = validate(code)
        except CodeError:
            return
        except Exception as e:
            raise Finding(f"validate raised {type(e).__name__}: {e}") from e
        must(isinstance(info, CodeInfo), f"validate returned {type(info).__name__}")
        self.validated += 1
        sb = Sandbox(max_gas_per_message=GAS, block_gas_allowance=BLOCK_GAS)
        try:
            try:
                cid = sb.upload_code(code)
                pid = sb.create_program(cid, init_payload=b"init")
                init = sb.pending[-1].message_id
                sent = [init] + [sb.send(pid, p) for p in PAYLOADS[:3]]
                sb.run_until_idle(max_blocks=4)
                st = sb.program_state(pid)
            except Exception as e:
                raise Finding(
                    f"a module that validated failed in the sandbox: {type(e).__name__}: {e}"
                ) from e
            for mid in sent:
                rec = sb.dispatches.get(mid)
                waiting = rec is not None and rec.status == "wait"
                must(
                    mid in sb.replies or waiting or bool(sb.state.queued),
                    f"message {mid.hex()[:16]} got no reply and is not waiting "
                    f"(program status {st.status.name})",
                )
        finally:
            sb.close()


OPS = (
    "flip",
    "flip",
    "set",
    "truncate",
    "insert",
    "delete",
    "sec_splice",
    "sec_drop",
    "sec_dup",
    "sec_swap",
    "sec_retag",
    "sec_size",
    "sec_count",
    "leb_at",
)

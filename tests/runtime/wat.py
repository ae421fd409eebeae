"""Build Gear-shaped test modules from WAT snippets.

`module(handle="...")` returns WASM bytes of a module that imports `env.memory`
(`pages` static pages, 2 by default) and every syscall its bodies mention as
`$name` — with the exact signature from `runtime/syscalls_abi.py` — and exports the
given entry points. Bodies are plain WAT instruction text.

Memory conventions used by the tests (all inside page 0):
- 0x0000–0xEFFF: free for the test;
- 0xF000–0xFFFF: scratch of the helper functions below.

Helper functions, included when a body mentions them:
- `$reply_mem (ptr, len)`: `gr_reply` with bytes [ptr, ptr+len), no value;
- `$cmd () -> i32`: the first payload byte, 0 for an empty payload;
- `$emit (ptr, len)`: `gr_send` of bytes [ptr, ptr+len) to `OBSERVER`, a user address,
  so a test can look at values after the program has replied, or from `handle_reply`.
"""

from __future__ import annotations

import re

import wasmtime
from gexe.runtime.ids import actor_from_address
from gexe.runtime.syscalls_abi import SYSCALL_SIGNATURES

OBSERVER = actor_from_address(b"\xee" * 20)
NO_VALUE = -1  # the value pointer u32::MAX: "no value"

_T = {0x7F: "i32", 0x7E: "i64"}

HELPERS = {
    "reply_mem": """
  (func $reply_mem (param $p i32) (param $n i32)
    (call $gr_reply (local.get $p) (local.get $n) (i32.const -1) (i32.const 0xFF00)))""",
    "cmd": """
  (func $cmd (result i32)  ;; first payload byte, 0 when the payload is empty
    (i32.store8 (i32.const 0xF100) (i32.const 0))
    (call $gr_read (i32.const 0) (i32.const 1) (i32.const 0xF100) (i32.const 0xF104))
    (i32.load8_u (i32.const 0xF100)))""",
    "emit": """
  (func $emit (param $p i32) (param $n i32)
    ;; pid_value at 0xFE00: OBSERVER (12 zero bytes ++ 20 x 0xEE), value 0
    (i64.store (i32.const 0xFE00) (i64.const 0))
    (i64.store (i32.const 0xFE08) (i64.const 0xEEEEEEEE00000000))
    (i64.store (i32.const 0xFE10) (i64.const 0xEEEEEEEEEEEEEEEE))
    (i64.store (i32.const 0xFE18) (i64.const 0xEEEEEEEEEEEEEEEE))
    (i64.store (i32.const 0xFE20) (i64.const 0))
    (i64.store (i32.const 0xFE28) (i64.const 0))
    (call $gr_send (i32.const 0xFE00) (local.get $p) (local.get $n) (i32.const 0)
                   (i32.const 0xFF80)))""",
}


def syscall_import(name: str) -> str:
    params, results = SYSCALL_SIGNATURES[name]
    p = f" (param {' '.join(_T[t] for t in params)})" if params else ""
    r = f" (result {' '.join(_T[t] for t in results)})" if results else ""
    return f'  (import "env" "{name}" (func ${name}{p}{r}))'


def wat_bytes(data: bytes) -> str:
    return '"' + "".join(f"\\{b:02x}" for b in data) + '"'


def module(
    *,
    init: str | None = None,
    handle: str | None = None,
    handle_reply: str | None = None,
    funcs: str = "",
    data: tuple[tuple[int, bytes], ...] = (),
    pages: int = 2,
    stack_end: int | None = None,
) -> bytes:
    """WASM bytes of a Gear program; `stack_end` is in wasm pages (None: not exported)."""
    entries = {"init": init, "handle": handle, "handle_reply": handle_reply}
    text = funcs + "".join(b for b in entries.values() if b)
    helpers = [h for h in HELPERS if f"${h}" in text]
    text += "".join(HELPERS[h] for h in helpers)
    used = set(re.findall(r"\$([a-z_]+)", text))
    lines = [
        "(module",
        *(syscall_import(n) for n in SYSCALL_SIGNATURES if n in used),
        f'  (import "env" "memory" (memory {pages}))',
    ]
    lines += [HELPERS[h] for h in helpers]
    lines.append(funcs)
    for name, body in entries.items():
        if body is not None:
            lines.append(f'  (func (export "{name}")\n{body})')
    if stack_end is not None:
        lines.append(
            f'  (global (export "__gear_stack_end") i32 (i32.const {stack_end * 0x10000}))'
        )
    lines += [f"  (data (i32.const {off}) {wat_bytes(b)})" for off, b in data]
    lines.append(")")
    return wat("\n".join(lines))


def wat(text: str) -> bytes:
    """Compile any WAT text (for modules that break the rules on purpose)."""
    return bytes(wasmtime.wat2wasm(text))

"""Target `syscalls`: every syscall called with hostile pointers, lengths and values.

Cases: a program (built from WAT with tests/runtime/wat.py) whose `handle` makes one to
six syscalls chosen from the whole Vara.eth set, each argument an edge value — out of
bounds, at the very end of memory, overlapping the program's own data, huge lengths,
negative as i32, page numbers past the 512-page limit, the system actor as a
destination, values the program does not have — then a hostile payload and value.
A payload starting with 1 instead makes `handle` reply "ok" and return.

Property: the hostile message is dispatched and ends as success, exit, wait or trap —
with a reply carrying a reply code unless it waits — and never as "internal syscall
error" (a Python exception inside a syscall); the program state loads and is well
formed (pages of 16 KiB, allocations within 512 pages); the next message (payload 1)
still gets its "ok" reply, or `ProgramExited` if the program exited; and running the
same case again in a fresh sandbox gives the same dispatch, replies and state hash.
"""

from __future__ import annotations

from typing import Any

from gexe.runtime import Sandbox, codes, limits
from gexe.runtime.codes import reply_code_name
from gexe.runtime.state import Status, load_allocations, load_pages
from gexe.runtime.syscalls_abi import SYSCALL_SIGNATURES
from wat import OBSERVER, module

from .base import Finding, Target, must
from .source import EDGE_U32, Recorder, Source

GAS = 50_000_000
PAGES = 2
MEM = PAGES * limits.WASM_PAGE
SYSCALLS = tuple(sorted(SYSCALL_SIGNATURES))
SYSTEM_ID = b"gear" * 8
# data the hostile arguments can point at: pid_value structs and junk
DATA = (
    (0x2000, SYSTEM_ID + bytes(16)),  # destination: the system actor (a trap)
    (0x2100, OBSERVER + bytes(16)),  # a user, no value
    (0x2200, OBSERVER + (1 << 127).to_bytes(16, "little")),  # more value than anyone has
    (0x2300, b"\xff" * 64),
)
POINTERS = (
    *(MEM - k for k in (0, 1, 2, 4, 8, 16, 31, 32, 33, 48, 49)),
    *(a for a, _ in DATA),
    0x100,
    0xF100,
    0xFF00,
    0xFFFF,
)
PAGE_ARGS = (0, 1, 2, 3, 4, 16, 510, 511, 512, 513, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)
SMALL = (0, 1, 2, 4, 16, 32, 48, 64, 1000, limits.MAX_PAYLOAD_SIZE, limits.MAX_PAYLOAD_SIZE + 1)
FOLLOW_UP = b"\x01"
PROLOGUE = """
  (if (i32.eq (call $cmd) (i32.const 1))
    (then
      (i32.store16 (i32.const 0x100) (i32.const 0x6b6f))
      (call $reply_mem (i32.const 0x100) (i32.const 2))
      (return)))"""


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _arg(src: Source, name: str, index: int) -> int:
    if name in ("alloc", "free", "free_range") or (name == "gr_env_vars" and index == 0):
        return src.pick(PAGE_ARGS)
    kind = src.int(0, 4)
    if kind == 0:
        return src.pick(EDGE_U32)
    if kind == 1:
        return src.pick(POINTERS)
    if kind == 2:
        return src.pick(SMALL)
    if kind == 3:
        return src.int(0, MEM + 64)
    return src.int(0, 0xFFFFFFFF)


def render(calls: tuple[tuple[str, tuple[int, ...]], ...]) -> str:
    lines = [PROLOGUE]
    for name, args in calls:
        call = f"(call ${name}{''.join(f' (i32.const {_i32(a)})' for a in args)})"
        lines.append(f"  (drop {call})" if SYSCALL_SIGNATURES[name][1] else f"  {call}")
    return "\n".join(lines)


class SyscallTarget(Target):
    name = "syscalls"
    about = "every syscall with hostile pointers/lengths/values; state stays consistent"
    uses_wasm = True

    def __init__(self) -> None:
        self._codes: dict[tuple[Any, ...], bytes] = {}

    def generate(self, src: Source) -> tuple[Any, ...]:
        calls = []
        for _ in range(src.int(1, 6)):
            name = src.pick(SYSCALLS)
            params = SYSCALL_SIGNATURES[name][0]
            calls.append((name, tuple(_arg(src, name, i) for i in range(len(params)))))
        payload = b"\x02" + src.bytes(48)
        value = src.pick((0, 1, 1000, 10**18))
        return tuple(calls), payload, value

    def seeds(self) -> list[bytes]:
        out = []
        for name in SYSCALLS:  # each syscall once, with small args
            rec = Recorder().int(1, 6, 1).pick(SYSCALLS, name)
            out.append(rec.done())
        return out

    def show(self, case: Any) -> str:
        calls, payload, value = case
        return f"handle:{render(calls)}\npayload={payload.hex()} value={value}"

    def _code(self, calls: tuple[Any, ...]) -> bytes:
        code = self._codes.get(calls)
        if code is None:
            code = module(handle=render(calls), data=DATA, pages=PAGES)
            if len(self._codes) > 256:
                self._codes.clear()
            self._codes[calls] = code
        return code

    def check(self, case: tuple[Any, ...]) -> None:
        calls, payload, value = case
        code = self._code(calls)
        first = self._run(code, payload, value)
        second = self._run(code, payload, value)
        must(first == second, f"not deterministic:\n  {first}\n  {second}")

    def _run(self, code: bytes, payload: bytes, value: int) -> tuple[Any, ...]:
        sb = Sandbox(max_gas_per_message=GAS)
        try:
            try:
                pid = sb.create_program(sb.upload_code(code))
                sb.run_until_idle(2)
                mid = sb.send(pid, payload, value=value)
                sb.run_until_reply(mid, max_blocks=2)
                follow = sb.send(pid, FOLLOW_UP)
                sb.run_until_reply(follow, max_blocks=2)
                st = sb.program_state(pid)
                pages = load_pages(sb.storage, st.pages)
                allocs = load_allocations(sb.storage, st.allocations)
            except Exception as e:
                raise Finding(f"the host failed: {type(e).__name__}: {e}") from e
            rec = sb.dispatches.get(mid)
            must(rec is not None, "the hostile message was never dispatched")
            assert rec is not None
            must(
                rec.status in ("success", "exit", "wait", "trap"),
                f"hostile message ended as {rec.status!r}",
            )
            must(
                "internal syscall error" not in rec.explanation,
                f"a syscall raised: {rec.explanation}",
            )
            reply = sb.replies.get(mid)
            if rec.status != "wait":
                must(reply is not None, f"no reply after {rec.status}")
                assert reply is not None
                ok = reply.reply_code[0] == (1 if rec.status == "trap" else 0)
                must(ok, f"{rec.status} with reply code {reply_code_name(reply.reply_code)}")
            fr = sb.replies.get(follow)
            must(fr is not None, "the next message got no reply")
            assert fr is not None
            if st.status == Status.EXITED:
                must(fr.reply_code == codes.ERR_PROGRAM_EXITED, "exited, yet not ProgramExited")
            else:
                must(
                    fr.reply_code == codes.SUCCESS_MANUAL and fr.payload == b"ok",
                    f"the next message failed: {reply_code_name(fr.reply_code)} "
                    f"{fr.payload[:40]!r} ({sb.dispatches[follow].explanation})",
                )
            per_wasm = limits.WASM_PAGE // limits.GEAR_PAGE
            must(
                all(0 <= p < limits.MAX_PAGES * per_wasm for p in pages),
                f"page numbers out of range: {sorted(pages)[-3:]}",
            )
            for h in pages.values():
                page = sb.storage.read(h)
                must(page is not None and len(page) == limits.GEAR_PAGE, "a page missing or odd")
            must(
                all(PAGES <= a < limits.MAX_PAGES for a in allocs),
                f"allocations out of range: {sorted(allocs)[:3]}…",
            )
            return (
                rec.status,
                rec.gas_burned,
                rec.explanation,
                None if reply is None else (reply.reply_code, reply.payload, reply.value),
                fr.reply_code,
                sb.state_hash(pid),
                tuple(m.id for m in sb.outgoing),
            )
        finally:
            sb.close()

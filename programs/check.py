#!/usr/bin/env python3
"""Self-check of the built example programs (a developer tool, not the runtime).

    python3 programs/check.py            # structure checks (stdlib only)
    python3 programs/check.py --run      # + run every program in a toy host (needs wasmtime)

Structure: each Gear wasm imports only `env.memory` and known syscalls with
their exact signatures, exports only entry points `() -> ()` plus an immutable
`__gear_stack_end`, keeps data above the stack and inside the static pages,
and has no start section, `memory.grow`, float, SIMD or bulk-memory
instruction. bench_kernels must be a plain module exporting its two kernels.

Run: a deliberately small host (one wasmtime instance per program, queue,
waitlist, replies) drives scripted scenarios and checks the replies. It
follows runtime/ABI.md where it matters to these programs but is no
reference for the real runtime.
"""

from __future__ import annotations

import hashlib
import sys
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from postprocess import Reader, WasmError, read_sections  # noqa: E402

GEAR_PROGRAMS = ["ping", "counter", "token", "mandelbrot", "fnv", "proxy", "panicker",
                 "looper", "membomb", "waiter", "sender"]  # fmt: skip
ENTRY_POINTS = {"init", "handle", "handle_reply", "handle_signal", "state", "metahash"}
WASM_PAGE = 65536

# Exact wasm signatures: "i" = i32, "I" = i64; (params, results).
SYSCALLS = {
    "alloc": ("i", "i"), "free": ("i", "i"), "free_range": ("ii", "i"),
    "gr_read": ("iiii", ""), "gr_size": ("i", ""),
    "gr_reply": ("iiii", ""), "gr_reply_push": ("iii", ""), "gr_reply_commit": ("ii", ""),
    "gr_reply_input": ("iiii", ""), "gr_reply_push_input": ("iii", ""),
    "gr_send": ("iiiii", ""), "gr_send_init": ("i", ""), "gr_send_push": ("iiii", ""),
    "gr_send_commit": ("iiii", ""), "gr_send_input": ("iiiii", ""),
    "gr_send_push_input": ("iiii", ""),
    "gr_source": ("i", ""), "gr_value": ("i", ""), "gr_value_available": ("i", ""),
    "gr_message_id": ("i", ""), "gr_program_id": ("i", ""), "gr_block_height": ("i", ""),
    "gr_block_timestamp": ("i", ""), "gr_gas_available": ("i", ""), "gr_env_vars": ("ii", ""),
    "gr_debug": ("ii", ""), "gr_panic": ("ii", ""), "gr_oom_panic": ("", ""),
    "gr_exit": ("i", ""), "gr_leave": ("", ""), "gr_wait_for": ("i", ""),
    "gr_wait_up_to": ("i", ""), "gr_wake": ("iii", ""), "gr_reply_to": ("i", ""),
    "gr_reply_code": ("i", ""),
}  # fmt: skip
VALTYPES = {0x7F: "i", 0x7E: "I", 0x7D: "f", 0x7C: "F", 0x7B: "v", 0x70: "r", 0x6F: "r"}

# --- structure ---------------------------------------------------------------------

FLOAT_OPS = {0x2A, 0x2B, 0x38, 0x39, 0x43, 0x44, *range(0x5B, 0x67), *range(0x8B, 0xA7),
             *range(0xA8, 0xAC), *range(0xAE, 0xC0)} - {0xAC, 0xAD}  # fmt: skip
MEMARG_OPS = set(range(0x28, 0x3F))
ULEB_OPS = {0x0C, 0x0D, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0xD2}


def scan_code(body: bytes) -> set[str]:
    """Problems found in one function body (locals + instructions)."""
    r, bad = Reader(body), set()
    for _ in range(r.uleb()):
        r.uleb()
        t = VALTYPES.get(r.byte(), "?")
        if t in "fF":
            bad.add("float local")
    while not r.done():
        op = r.byte()
        if op in FLOAT_OPS:
            bad.add(f"float instruction 0x{op:02x}")
        if op in (0x02, 0x03, 0x04):  # block type
            r.sleb()
        elif op in ULEB_OPS:
            r.uleb()
        elif op == 0x0E:  # br_table
            for _ in range(r.uleb() + 1):
                r.uleb()
        elif op == 0x11:  # call_indirect
            r.uleb(), r.uleb()
        elif op == 0x1C:
            bad.add("typed select")
            for _ in range(r.uleb()):
                r.byte()
        elif op in MEMARG_OPS:
            r.uleb(), r.uleb()
        elif op in (0x3F, 0x40):
            r.byte()
            if op == 0x40:
                bad.add("memory.grow")
        elif op == 0x41 or op == 0x42:
            r.sleb()
        elif op == 0x43:
            r.bytes(4)
        elif op == 0x44:
            r.bytes(8)
        elif op == 0xD0:
            r.byte()
        elif op == 0xFC:
            bad.add(f"0xfc {r.uleb()} (saturating/bulk memory)")
            return bad  # immediates vary; stop scanning this body
        elif op == 0xFD:
            bad.add("SIMD")
            return bad
    return bad


def check_structure(name: str, wasm: bytes) -> list[str]:
    errors: list[str] = []
    secs: dict[int, bytes] = {}
    for sid, body in read_sections(wasm):
        if sid == 0:
            errors.append("custom section left in")
        secs[sid] = body
    if 8 in secs:
        errors.append("start section")
    types = []
    r = Reader(secs.get(1, b"\0"))
    for _ in range(r.uleb()):
        if r.byte() != 0x60:
            raise WasmError("bad func type")
        ps = "".join(VALTYPES.get(r.byte(), "?") for _ in range(r.uleb()))
        rs = "".join(VALTYPES.get(r.byte(), "?") for _ in range(r.uleb()))
        types.append((ps, rs))
        if any(c not in "iI" for c in ps + rs) or len(rs) > 1:
            errors.append(f"type {ps}->{rs} has floats/SIMD/multi-value")
    func_types, static_pages = [], None
    r = Reader(secs.get(2, b"\0"))
    for _ in range(r.uleb()):
        mod, field, kind = r.name(), r.name(), r.byte()
        if kind == 0:
            t = types[r.uleb()]
            func_types.append(t)
            if mod != "env" or field not in SYSCALLS:
                errors.append(f"import {mod}.{field} is not a syscall")
            elif SYSCALLS[field] != t:
                errors.append(f"import {field} has signature {t}, want {SYSCALLS[field]}")
        elif kind == 2 and (mod, field) == ("env", "memory"):
            flags = r.byte()
            static_pages = r.uleb()
            if flags & 1:
                r.uleb()
        else:
            errors.append(f"import {mod}.{field} of kind {kind}")
            break
    if static_pages is None:
        errors.append("memory is not imported as env.memory")
        static_pages = 0
    r = Reader(secs.get(3, b"\0"))
    func_types += [types[r.uleb()] for _ in range(r.uleb())]
    globals_ = []
    r = Reader(secs.get(6, b"\0"))
    for _ in range(r.uleb()):
        vt, mut = r.byte(), r.byte()
        globals_.append((vt, mut, r.const_i32() if vt == 0x7F else None))
    stack_end, exports = None, set()
    r = Reader(secs.get(7, b"\0"))
    for _ in range(r.uleb()):
        nm, kind, idx = r.name(), r.byte(), r.uleb()
        exports.add(nm)
        if kind == 0 and nm in ENTRY_POINTS:
            if func_types[idx] != ("", ""):
                errors.append(f"export {nm} is not () -> ()")
        elif kind == 3 and nm == "__gear_stack_end":
            vt, mut, stack_end = globals_[idx]
            if vt != 0x7F or mut:
                errors.append("__gear_stack_end is not an immutable i32")
        else:
            errors.append(f"extra export {nm!r}")
    if not exports & {"init", "handle"}:
        errors.append("neither init nor handle exported")
    if stack_end is None:
        errors.append("no __gear_stack_end export")
    elif stack_end % WASM_PAGE or stack_end > static_pages * WASM_PAGE:
        errors.append(f"__gear_stack_end {stack_end} unaligned or beyond static memory")
    r = Reader(secs.get(11, b"\0"))
    n_data = r.uleb()
    if n_data > 1024:
        errors.append(f"{n_data} data segments")
    for _ in range(n_data):
        if r.uleb() != 0:
            errors.append("non-active data segment")
            break
        off = r.const_i32()
        size = r.uleb()
        r.bytes(size)
        if off < (stack_end or 0) or off + size > static_pages * WASM_PAGE:
            errors.append(f"data segment [{off}, {off + size}) outside the static area")
    r, problems = Reader(secs.get(10, b"\0")), set()
    for _ in range(r.uleb()):
        problems |= scan_code(r.bytes(r.uleb()))
    errors += sorted(problems)
    return errors


def check_bench_kernels(wasm: bytes) -> list[str]:
    errors = []
    secs = dict(read_sections(wasm))
    if 2 in secs and Reader(secs[2]).uleb():
        errors.append("bench_kernels has imports")
    names = set()
    r = Reader(secs.get(7, b"\0"))
    for _ in range(r.uleb()):
        names.add(r.name())
        r.byte(), r.uleb()
    if not {"mandelbrot", "fnv_mix"} <= names:
        errors.append(f"bench_kernels exports {sorted(names)}")
    return errors


# --- reference algorithms (from the READMEs) ----------------------------------------


def ref_mandelbrot(x0: int, y0: int, step: int, w: int, h: int, max_iter: int) -> int:
    def wrap(v: int) -> int:
        return (v + (1 << 63)) % (1 << 64) - (1 << 63)

    total = 0
    for py in range(h):
        ci = wrap(y0 + py * step)
        for px in range(w):
            cr = wrap(x0 + px * step)
            zr = zi = n = 0
            while n < max_iter:
                zr2, zi2 = wrap(zr * zr) >> 28, wrap(zi * zi) >> 28
                if wrap(zr2 + zi2) > 4 << 28:
                    break
                zi = wrap((wrap(zr * zi) >> 27) + ci)
                zr = wrap(zr2 - zi2 + cr)
                n += 1
            total += n
    return total % (1 << 64)


def ref_fnv(rounds: int) -> int:
    m = (1 << 64) - 1
    buf = bytearray(i % 256 for i in range(1024))
    h = 0xCBF29CE484222325
    for r in range(rounds):
        for b in buf:
            h = ((h ^ b) * 0x100000001B3) & m
        h ^= (h << 13) & m
        h ^= h >> 7
        h ^= (h << 17) & m
        buf[r % 1024] = h & 0xFF
    return h


# --- toy host -----------------------------------------------------------------------


def blake(*parts: bytes) -> bytes:
    return hashlib.blake2b(b"".join(parts), digest_size=32).digest()


class Stop(Exception):
    """Ends an execution from a syscall: kind in panic/oom/wait/leave/exit."""

    def __init__(self, kind: str, data: bytes = b""):
        super().__init__(kind)
        self.kind, self.data = kind, data


SUCCESS_AUTO, SUCCESS_MANUAL = bytes(4), bytes([0, 1, 0, 0])
ERR_OOG, ERR_OOM, ERR_PANIC, ERR_TRAP = (bytes([1, 0, c, 0]) for c in (0, 1, 3, 4))


class Program:
    def __init__(self, net: Net, pid: bytes, wasm: bytes, max_pages: int):
        import wasmtime as wt

        self.net, self.pid, self.max_pages = net, pid, max_pages
        self.store = wt.Store(net.engine)
        self.store.set_fuel(10**6)  # instantiation (data segments) runs under fuel too
        module = wt.Module(net.engine, wasm)
        mem_type = next(i.type for i in module.imports if i.name == "memory")
        self.static = mem_type.limits.min
        self.memory = wt.Memory(self.store, wt.MemoryType(wt.Limits(self.static, None)))
        self.allocs: set[int] = set()
        linker = wt.Linker(net.engine)
        linker.define(self.store, "env", "memory", self.memory)
        kinds = {"i": wt.ValType.i32(), "I": wt.ValType.i64()}
        for imp in module.imports:
            if imp.name == "memory":
                continue
            ps, rs = SYSCALLS[imp.name]
            ft = wt.FuncType([kinds[c] for c in ps], [kinds[c] for c in rs])
            linker.define_func("env", imp.name, ft, getattr(self, imp.name))
        self.exports = linker.instantiate(self.store, module).exports(self.store)

    # memory helpers
    def rd(self, ptr: int, n: int) -> bytes:
        return bytes(self.memory.read(self.store, ptr & 0xFFFFFFFF, (ptr & 0xFFFFFFFF) + n))

    def wr(self, ptr: int, data: bytes) -> None:
        self.memory.write(self.store, data, ptr & 0xFFFFFFFF)

    def wr_err(self, ptr: int, code: int, payload: bytes = b"") -> None:
        self.wr(ptr, code.to_bytes(4, "little") + payload)

    def value_at(self, ptr: int) -> int:
        return 0 if ptr & 0xFFFFFFFF == 0xFFFFFFFF else int.from_bytes(self.rd(ptr, 16), "little")

    def run(self, d: dict) -> tuple[str, bytes]:
        """Executes dispatch `d`; returns (outcome, data) with memory rolled back on error."""
        self.d, self.out, self.reply, self.pushed, self.woken = d, [], None, b"", []
        self.handles: dict[int, bytearray | None] = {}
        snapshot, allocs = self.rd(0, self.memory.data_len(self.store)), set(self.allocs)
        self.store.set_fuel(d.get("fuel", 10**9))
        try:
            self.exports[d["kind"]](self.store)
            outcome = ("ok", b"")
        except Stop as s:
            outcome = (s.kind, s.data)
        except Exception as e:  # wasm trap or fuel exhaustion
            outcome = ("oog" if "fuel" in str(e) else "trap", str(e).encode())
        if outcome[0] in ("panic", "oom", "trap", "oog"):
            self.wr(0, snapshot + bytes(self.memory.data_len(self.store) - len(snapshot)))
            self.allocs = allocs
        return outcome

    # syscalls ------------------------------------------------------------------
    def alloc(self, n):
        run = 0
        for p in range(self.static, self.max_pages):
            run = 0 if p in self.allocs else run + 1
            if run == n and n > 0:
                first = p - n + 1
                have = self.memory.size(self.store)
                if p + 1 > have:
                    self.memory.grow(self.store, p + 1 - have)
                self.allocs.update(range(first, p + 1))
                return first
        return -1

    def free(self, page):
        if page not in self.allocs:
            return 1
        self.allocs.discard(page)
        return 0

    def free_range(self, start, end):
        if start > end or start < self.static or end >= self.max_pages:
            return 1
        self.allocs.difference_update(range(start, end + 1))
        return 0

    def gr_size(self, p):
        self.wr(p, len(self.d["payload"]).to_bytes(4, "little"))

    def gr_read(self, at, n, buf, err):
        pl = self.d["payload"]
        if at + n > len(pl):
            return self.wr_err(err, 104)
        self.wr(buf, pl[at : at + n])
        self.wr_err(err, 0)

    def gr_source(self, p):
        self.wr(p, self.d["source"])

    def gr_message_id(self, p):
        self.wr(p, self.d["id"])

    def gr_program_id(self, p):
        self.wr(p, self.pid)

    def gr_value(self, p):
        self.wr(p, self.d.get("value", 0).to_bytes(16, "little"))

    def gr_value_available(self, p):
        self.wr(p, bytes(16))

    def gr_block_height(self, p):
        self.wr(p, self.net.height.to_bytes(4, "little"))

    def gr_block_timestamp(self, p):
        self.wr(p, (self.net.height * 12).to_bytes(8, "little"))

    def gr_gas_available(self, p):
        self.wr(p, self.store.get_fuel().to_bytes(8, "little"))

    def gr_env_vars(self, version, p):
        raise Stop("trap", b"env vars not supported by the toy host")

    def gr_debug(self, p, n):
        if self.net.verbose:
            print(f"    debug: {self.rd(p, n)!r}")

    def gr_panic(self, p, n):
        raise Stop("panic", self.rd(p, n))

    def gr_oom_panic(self):
        raise Stop("oom")

    def gr_exit(self, p):
        raise Stop("exit", self.rd(p, 32))

    def gr_leave(self):
        raise Stop("leave")

    def gr_wait_for(self, n):
        raise Stop("wait", n.to_bytes(4, "little"))

    gr_wait_up_to = gr_wait_for

    def gr_wake(self, mid, delay, err):
        self.woken.append(self.rd(mid, 32))
        self.wr_err(err, 0)

    def _reply(self, payload: bytes, value: int, err: int) -> None:
        if self.d["kind"] not in ("init", "handle"):
            return self.wr_err(err, 108, bytes(32))
        if self.reply is not None:
            return self.wr_err(err, 302, bytes(32))
        rid = blake(b"reply", self.d["id"])
        self.reply = (rid, self.pushed + payload, value)
        self.wr_err(err, 0, rid)

    def gr_reply(self, p, n, v, err):
        self._reply(self.rd(p, n), self.value_at(v), err)

    def gr_reply_push(self, p, n, err):
        self.pushed += self.rd(p, n)
        self.wr_err(err, 0)

    def gr_reply_commit(self, v, err):
        self._reply(b"", self.value_at(v), err)

    def _input(self, off: int, n: int) -> bytes | int:
        pl = self.d["payload"]
        if off >= len(pl):
            return 312
        return 313 if n > len(pl) - off else pl[off : off + n]

    def gr_reply_input(self, off, n, v, err):
        data = self._input(off, n)
        if isinstance(data, int):
            return self.wr_err(err, data, bytes(32))
        self._reply(data, self.value_at(v), err)

    def gr_reply_push_input(self, off, n, err):
        data = self._input(off, n)
        if isinstance(data, bytes):
            self.pushed += data
        self.wr_err(err, data if isinstance(data, int) else 0)

    def _send(self, pid_value: int, payload: bytes, err: int) -> None:
        raw = self.rd(pid_value, 48)
        nonce = self.net.nonces.get(self.d["id"], 0)
        self.net.nonces[self.d["id"]] = nonce + 1
        mid = blake(b"outgoing", self.d["id"], nonce.to_bytes(4, "little"))
        self.out.append({"id": mid, "source": self.pid, "dest": raw[:32], "payload": payload, "kind": "handle",
                         "value": int.from_bytes(raw[32:], "little")})  # fmt: skip
        self.wr_err(err, 0, mid)

    def gr_send(self, pv, p, n, delay, err):
        self._send(pv, self.rd(p, n), err)

    def gr_send_input(self, pv, off, n, delay, err):
        data = self._input(off, n)
        if isinstance(data, int):
            return self.wr_err(err, data, bytes(32))
        self._send(pv, data, err)

    def gr_send_init(self, err):
        h = len(self.handles)
        self.handles[h] = bytearray()
        self.wr_err(err, 0, h.to_bytes(4, "little"))

    def gr_send_push(self, h, p, n, err):
        if self.handles.get(h) is None:
            return self.wr_err(err, 305)
        self.handles[h] += self.rd(p, n)
        self.wr_err(err, 0)

    def gr_send_push_input(self, h, off, n, err):
        data = self._input(off, n)
        if isinstance(data, int) or self.handles.get(h) is None:
            return self.wr_err(err, data if isinstance(data, int) else 305)
        self.handles[h] += data
        self.wr_err(err, 0)

    def gr_send_commit(self, h, pv, delay, err):
        if self.handles.get(h) is None:
            return self.wr_err(err, 305, bytes(32))
        self._send(pv, bytes(self.handles[h]), err)
        self.handles[h] = None

    def gr_reply_to(self, err):
        if self.d["kind"] != "handle_reply":
            return self.wr_err(err, 105, bytes(32))
        self.wr_err(err, 0, self.d["reply_to"])

    def gr_reply_code(self, err):
        if self.d["kind"] != "handle_reply":
            return self.wr_err(err, 105, bytes(4))
        self.wr_err(err, 0, self.d["code"])


class Net:
    """Programs, a FIFO queue, a waitlist and the users' inbox."""

    def __init__(self, verbose: bool = False, max_pages: int = 64):
        import wasmtime as wt

        cfg = wt.Config()
        cfg.consume_fuel = True
        self.engine = wt.Engine(cfg)
        self.verbose, self.max_pages = verbose, max_pages
        self.programs: dict[bytes, Program] = {}
        self.queue: deque[dict] = deque()
        self.waitlist: dict[bytes, dict] = {}
        self.inbox: list[dict] = []  # messages and replies to non-programs
        self.nonces: dict[bytes, int] = {}
        self.height, self.counter = 1, 0

    def new_id(self) -> bytes:
        self.counter += 1
        return blake(b"external", self.counter.to_bytes(8, "little"))

    def create(self, name: str, init: bytes = b"", source: bytes = b"\x01" * 32) -> bytes:
        pid = blake(b"program", name.encode(), self.counter.to_bytes(8, "little"))
        self.programs[pid] = Program(self, pid, (HERE / name / f"{name}.wasm").read_bytes(),
                                     self.max_pages)  # fmt: skip
        self.send(pid, init, source, kind="init")
        return pid

    def send(self, dest: bytes, payload: bytes, source: bytes = b"\x01" * 32, **kw) -> bytes:
        mid = self.new_id()
        self.queue.append({"id": mid, "source": source, "dest": dest, "payload": payload,
                           "kind": kw.pop("kind", "handle"), **kw})  # fmt: skip
        return mid

    def reply_for(self, mid: bytes) -> dict:
        for m in self.inbox:
            if m.get("reply_to") == mid:
                return m
        raise AssertionError(f"no reply to {mid.hex()[:8]}")

    def run(self) -> None:
        while self.queue:
            d = self.queue.popleft()
            prog = self.programs.get(d["dest"])
            if prog is None:
                self.inbox.append(d)
                continue
            if d["kind"] not in prog.exports:  # e.g. a reply to a program without handle_reply
                if d["kind"] == "handle":
                    self._reply(d, ERR_TRAP, b"")
                continue
            outcome, data = prog.run(d)
            if self.verbose:
                print(f"  {d['kind']} -> {outcome} {data[:60]!r}")
            if outcome in ("ok", "leave", "exit", "wait"):
                self.queue.extend(prog.out)
                for w in prog.woken:
                    if w in self.waitlist:
                        self.queue.append(self.waitlist.pop(w))
                if outcome == "wait":
                    self.waitlist[d["id"]] = d
                elif d["kind"] in ("init", "handle"):
                    if prog.reply is not None:
                        self._reply(d, SUCCESS_MANUAL, prog.reply[1])
                    else:
                        self._reply(d, SUCCESS_AUTO, b"")
            elif d["kind"] in ("init", "handle"):
                code = {"panic": ERR_PANIC, "oom": ERR_OOM, "oog": ERR_OOG}.get(outcome, ERR_TRAP)
                self._reply(d, code, data if outcome == "panic" else b"")

    def _reply(self, d: dict, code: bytes, payload: bytes) -> None:
        self.queue.append({"id": blake(b"reply", d["id"]), "source": d["dest"],
                           "dest": d["source"], "payload": payload, "kind": "handle_reply",
                           "reply_to": d["id"], "code": code})  # fmt: skip

    def wake_all(self) -> None:
        """Deadline reached for everything waiting."""
        self.queue.extend(self.waitlist.values())
        self.waitlist.clear()


def run_scenarios(verbose: bool) -> list[str]:
    failures: list[str] = []

    def expect(what: str, got, want) -> None:
        ok = got == want
        if verbose or not ok:
            print(f"  {'ok  ' if ok else 'FAIL'} {what}: {got!r}")
        if not ok:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    def reply(net: Net, mid: bytes) -> tuple[bytes, bytes]:
        m = net.reply_for(mid)
        return m["code"], m["payload"]

    user, bob = b"\x01" * 32, b"\x02" * 32
    # ping
    net = Net(verbose)
    p = net.create("ping")
    a, b, c = net.send(p, b"PING"), net.send(p, b"hello"), net.send(p, b"x" * 10000)
    net.run()
    expect("ping PING", reply(net, a), (SUCCESS_MANUAL, b"PONG"))
    expect("ping echo", reply(net, b), (SUCCESS_MANUAL, b"hello"))
    expect("ping echo 10k", reply(net, c), (SUCCESS_MANUAL, b"x" * 10000))
    # counter
    net = Net(verbose)
    p = net.create("counter", b"41")
    ids = [net.send(p, x) for x in (b"inc", b"add:8", b"bogus", b"get")]
    net.run()
    got = [reply(net, i) for i in ids]
    expect("counter inc", got[0], (SUCCESS_MANUAL, (42).to_bytes(8, "little")))
    expect("counter add", got[1], (SUCCESS_MANUAL, (50).to_bytes(8, "little")))
    expect("counter bad", got[2], (ERR_PANIC, b"counter: bad command"))
    expect("counter get", got[3], (SUCCESS_MANUAL, (50).to_bytes(8, "little")))
    # token
    net = Net(verbose)
    p = net.create("token", b"", user)
    q = [
        net.send(p, b"\x00" + user),
        net.send(p, b"\x01" + bob + (300).to_bytes(16, "little"), user),
        net.send(p, b"\x01" + user + (301).to_bytes(16, "little"), bob),
        net.send(p, b"\x00" + bob),
        net.send(p, b"\x00" + user),
        net.send(p, b"\x02"),
        net.send(p, b"\x07"),
    ]
    net.run()
    got = [reply(net, i)[1] for i in q]
    le = lambda n: n.to_bytes(16, "little")  # noqa: E731
    expect(
        "token", got, [le(1_000_000), b"\0", b"\1", le(300), le(999_700), le(1_000_000), b"\xff"]
    )
    # fill the holder table: 1024 slots keep 1/8 free, so 896 holders (user, bob + 894)
    xfer = [net.send(p, b"\x01" + i.to_bytes(32, "big") + le(1), user) for i in range(100, 1000)]
    net.run()
    statuses = [reply(net, i)[1] for i in xfer]
    expect("token full", (statuses.count(b"\0"), statuses[894:]), (894, [b"\2"] * 6))
    # compute kernels vs the Python references and bench_kernels
    net = Net(verbose)
    m, f = net.create("mandelbrot"), net.create("fnv")
    job = (-2 << 28, -3 << 27, 3 << 23, 32, 32, 256)
    small = (-(1 << 28), -(1 << 27), 1 << 24, 5, 4, 50)
    raw = b"".join(v.to_bytes(8, "little", signed=True) for v in small[:3]) + b"".join(
        v.to_bytes(4, "little") for v in small[3:]
    )
    q = [
        net.send(m, b""),
        net.send(m, raw),
        net.send(f, (100).to_bytes(4, "little")),
        net.send(f, b""),
    ]
    net.run()
    got = [int.from_bytes(reply(net, i)[1], "little") for i in q]
    expect("mandelbrot default", got[0], ref_mandelbrot(*job))
    expect("mandelbrot tile", got[1], ref_mandelbrot(*small))
    expect("fnv 100", got[2], ref_fnv(100))
    import wasmtime as wt

    store = wt.Store()
    bk = wt.Instance(
        store,
        wt.Module(store.engine, (HERE / "bench_kernels" / "bench_kernels.wasm").read_bytes()),
        [],
    )
    ex = bk.exports(store)
    expect("bench mandelbrot", ex["mandelbrot"](store, *job) % (1 << 64), got[0])
    expect("bench fnv default", ex["fnv_mix"](store, 10240) % (1 << 64), got[3])
    # panicker, looper, membomb
    net = Net(verbose, max_pages=40)
    pk, lp, mb = net.create("panicker"), net.create("looper"), net.create("membomb")
    q = [net.send(pk, b""), net.send(lp, b"", fuel=10**6), net.send(mb, b"count"),
         net.send(mb, b"count"), net.send(mb, b"oom"), net.send(mb, b"trap"), net.send(mb, b"count")]  # fmt: skip
    net.run()
    code, payload = reply(net, q[0])
    expect("panicker", (code, b"boom" in payload), (ERR_PANIC, True))
    expect("looper", reply(net, q[1])[0], ERR_OOG)
    static = net.programs[mb].static
    counts = [reply(net, q[i]) for i in (2, 3, 6)]
    want = (SUCCESS_MANUAL, (40 - static).to_bytes(4, "little"))
    expect("membomb count x3", counts, [want] * 3)
    expect("membomb oom", reply(net, q[4]), (ERR_OOM, b""))
    expect("membomb trap", reply(net, q[5])[0], ERR_TRAP)
    # waiter
    net = Net(verbose)
    w = net.create("waiter")
    w1, w2 = net.send(w, b"wait"), net.send(w, b"wait_up_to:5")
    net.run()
    expect("waiter waiting", len(net.waitlist), 2)
    k = net.send(w, b"wake:" + w1.hex().encode())
    net.run()
    expect("waiter wake", reply(net, k), (SUCCESS_MANUAL, b"ok"))
    expect("waiter woke", reply(net, w1), (SUCCESS_MANUAL, b"woke"))
    net.wake_all()
    net.run()
    expect("waiter timeout", reply(net, w2), (SUCCESS_MANUAL, b"woke"))
    # sender
    net = Net(verbose)
    s = net.create("sender")
    eth = bytes(12) + bytes(range(20))
    q = net.send(s, eth + b"hi there")
    net.run()
    expect("sender reply", reply(net, q), (SUCCESS_MANUAL, b"sent"))
    expect("sender message", [(m["dest"], m["payload"]) for m in net.inbox if m["kind"] == "handle"],
           [(eth, b"hi there")])  # fmt: skip
    # proxy in front of ping, and in front of panicker
    net = Net(verbose)
    target, bad = net.create("ping"), net.create("panicker")
    px, pb = net.create("proxy", target), net.create("proxy", bad)
    q = [net.send(px, b"PING"), net.send(px, b"abc"), net.send(pb, b"x")]
    net.run()
    expect("proxy PING", reply(net, q[0]), (SUCCESS_MANUAL, b"PONG"))
    expect("proxy echo", reply(net, q[1]), (SUCCESS_MANUAL, b"abc"))
    expect("proxy error", reply(net, q[2]), (ERR_PANIC, b"proxy: target failed 01000300"))
    dead = net.create("proxy", bob)  # bob is a user: the forwarded request is never answered
    q = net.send(dead, b"anyone?")
    net.run()
    expect("proxy forwarded", net.inbox[-1]["payload"], b"anyone?")
    net.wake_all()  # the 100-block deadline passes
    net.run()
    expect("proxy timeout", reply(net, q), (ERR_PANIC, b"proxy: timeout"))
    return failures


def main(argv: list[str]) -> int:
    errors = []
    for name in GEAR_PROGRAMS:
        path = HERE / name / f"{name}.wasm"
        try:
            errs = check_structure(name, path.read_bytes())
        except (OSError, WasmError) as e:
            errs = [str(e)]
        errors += [f"{name}: {e}" for e in errs]
    try:
        errors += check_bench_kernels((HERE / "bench_kernels" / "bench_kernels.wasm").read_bytes())
    except (OSError, WasmError) as e:
        errors.append(f"bench_kernels: {e}")
    for e in errors:
        print(f"structure: {e}")
    print(f"structure: {len(GEAR_PROGRAMS) + 1} modules, {len(errors)} problems")
    if "--run" in argv:
        failures = run_scenarios("-v" in argv)
        for f in failures:
            print(f"run: {f}")
        print(f"run: {len(failures)} failures")
        errors += failures
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The stack-height instrumentation (runtime/instrument.py).

- instrumented modules validate, are byte-for-byte deterministic and behave like the
  originals (the example programs, index rewriting through calls, exports, tables);
- every exit path keeps the counter balanced;
- deep recursion of every shape ends with StackLimitExceeded raised by the counter —
  never by wasmtime's native limit — at a depth fixed by the module, with the same gas
  on every run and every worker count, with a margin (1.5x the limit still fits the
  native stack);
- entry thunks give every message of a session fresh globals.
"""

from __future__ import annotations

import random
import struct
import threading

import pytest
import wasmtime
from gexe.runtime import Sandbox, codes, execution
from gexe.runtime import instrument as ins
from gexe.runtime.validation import validate

from gexe import programs

LIMIT_HIT = "stack limit exceeded"  # explanation when the instrumented counter trips
NATIVE_HIT = "native stack overflow"  # ... when wasmtime's native limit does
SMALL_GAS = 200_000_000


def gear(body: str, *, pages: int = 2) -> bytes:
    """A Gear-valid module: memory, `gr_reply`, `gr_read`, the given functions (one must
    be the exported `handle`) and `$reply_i64 (i64)` that replies 8 little-endian bytes."""
    code = bytes(
        wasmtime.wat2wasm(f"""(module
  (import "env" "memory" (memory {pages}))
  (import "env" "gr_reply" (func $gr_reply (param i32 i32 i32 i32)))
  (import "env" "gr_read" (func $gr_read (param i32 i32 i32 i32)))
  (func $reply_i64 (param i64)
    (i64.store (i32.const 0xF000) (local.get 0))
    (call $gr_reply (i32.const 0xF000) (i32.const 8) (i32.const -1) (i32.const 0xF010)))
  {body})""")
    )
    validate(code)
    return code


def deploy(sb: Sandbox, code: bytes, salt: bytes = b"") -> bytes:
    pid = sb.create_program(sb.upload_code(code), salt=salt)
    sb.run_until_idle()
    return pid


def call(sb: Sandbox, pid: bytes, payload: bytes = b""):
    mid = sb.send(pid, payload)
    reply = sb.run_until_reply(mid, max_blocks=5)
    return reply, sb.dispatches[mid]


def u64(b: bytes) -> int:
    return int.from_bytes(b, "little")


# ---------------------------------------------------------------- recursion shapes


def _load(k: int, t: str) -> str:
    return f"({t}.load (i32.const {8 * k}))"


def shape_simple() -> str:
    return """
  (func $rec (param i32) (result i32) (call $rec (i32.add (local.get 0) (i32.const 1))))
  (func (export "handle") (drop (call $rec (i32.const 0))))"""


def shape_bare() -> str:  # the smallest frame there is: no values at all
    return """
  (func $rec (call $rec))
  (func (export "handle") (call $rec))"""


def shape_locals(n: int = 120, t: str = "i64") -> str:
    # n locals loaded from memory (opaque to the compiler), all live across the call
    sets = " ".join(f"(local.set {k + 1} {_load(k, t)})" for k in range(n))
    uses = " ".join(f"(local.get {k + 1}) ({t}.add)" for k in range(n))
    return f"""
  (func $rec (param {t}) (result {t}) (local {" ".join([t] * n)})
    {sets}
    (call $rec ({t}.add (local.get 0) ({t}.const 1)))
    {uses})
  (func (export "handle") (drop (call $rec ({t}.const 0))))"""


def shape_params(n: int = 200, t: str = "i64") -> str:
    # n params, each passed on (changed) and used after the call: the worst measured
    args = " ".join(f"({t}.add (local.get {(k + 1) % n}) {_load(k, t)})" for k in range(n))
    uses = " ".join(f"(local.get {k}) ({t}.add)" for k in range(n))
    zeros = " ".join(f"({t}.const {k})" for k in range(n))
    return f"""
  (func $rec (param {" ".join([t] * n)}) (result {t})
    (call $rec {args})
    {uses})
  (func (export "handle") (drop (call $rec {zeros})))"""


def shape_opstack(n: int = 150) -> str:
    pushes = " ".join(_load(k, "i64") for k in range(n))
    adds = " ".join("(i64.add)" for _ in range(n))
    return f"""
  (func $rec (param i64) (result i64)
    {pushes}
    (call $rec (i64.add (local.get 0) (i64.const 1)))
    {adds})
  (func (export "handle") (drop (call $rec (i64.const 0))))"""


def shape_indirect(n: int = 60) -> str:
    sets = " ".join(f"(local.set {k + 1} {_load(k, 'i64')})" for k in range(n))
    uses = " ".join(f"(local.get {k + 1}) (i64.add)" for k in range(n))
    return f"""
  (type $sig (func (param i64) (result i64)))
  (table 2 funcref) (elem (i32.const 1) $rec)
  (func $rec (param i64) (result i64) (local {" ".join(["i64"] * n)})
    {sets}
    (call_indirect (type $sig) (i64.add (local.get 0) (i64.const 1)) (i32.const 1))
    {uses})
  (func (export "handle") (drop (call $rec (i64.const 0))))"""


def shape_mutual(n: int = 30) -> str:
    def fn(name: str, other: str) -> str:
        sets = " ".join(f"(local.set {k + 1} {_load(k, 'i32')})" for k in range(n))
        uses = " ".join(f"(local.get {k + 1}) (i32.add)" for k in range(n))
        return f"""
  (func ${name} (param i32) (result i32) (local {" ".join(["i32"] * n)})
    {sets}
    (call ${other} (i32.add (local.get 0) (i32.const 1)))
    {uses})"""

    return (
        fn("a", "b")
        + fn("b", "a")
        + """
  (func (export "handle") (drop (call $a (i32.const 0))))"""
    )


SHAPES = {
    "simple": shape_simple,
    "bare": shape_bare,
    "locals_i64": shape_locals,
    "locals_i32": lambda: shape_locals(120, "i32"),
    "params_i64": shape_params,
    "params_999": lambda: shape_params(999),
    "opstack": shape_opstack,
    "call_indirect": shape_indirect,
    "mutual": shape_mutual,
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_deep_recursion_hits_the_counter(name):
    code = gear(SHAPES[name]())
    runs = []
    for _ in range(2):
        sb = Sandbox(max_gas_per_message=SMALL_GAS)
        try:
            pid = deploy(sb, code)
            reply, rec = call(sb, pid)
        finally:
            sb.close()
        assert reply.reply_code == codes.ERR_STACK_LIMIT
        assert codes.reply_code_name(reply.reply_code) == "Error(Execution(StackLimitExceeded))"
        assert (rec.status, rec.explanation) == ("trap", LIMIT_HIT)
        assert 0 < rec.gas_burned < SMALL_GAS
        runs.append(rec.gas_burned)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_native_stack_has_margin(name, monkeypatch):
    """With 1.5x the limit the counter still trips before wasmtime's native limit."""
    monkeypatch.setattr(ins, "STACK_LIMIT", ins.STACK_LIMIT * 3 // 2)
    sb = Sandbox(max_gas_per_message=SMALL_GAS)
    try:
        pid = deploy(sb, gear(SHAPES[name]()))
        reply, rec = call(sb, pid)
    finally:
        sb.close()
    assert (reply.reply_code, rec.explanation) == (codes.ERR_STACK_LIMIT, LIMIT_HIT)


def test_same_gas_across_worker_counts():
    """Two programs recursing in the same round, inline (workers=1) and on the pool's
    threads (workers=2): identical outcomes."""
    code_a, code_b = gear(shape_locals()), gear(shape_params(40))
    results = []
    for workers in (1, 2, 1):
        sb = Sandbox(workers=workers, max_gas_per_message=SMALL_GAS)
        try:
            pa, pb = deploy(sb, code_a), deploy(sb, code_b, salt=b"b")
            ma, mb = sb.send(pa), sb.send(pb)
            res = sb.run_block()
            assert res.rounds == 1
            recs = (sb.dispatches[ma], sb.dispatches[mb])
            assert all(r.explanation == LIMIT_HIT for r in recs)
            results.append(
                (
                    [r.gas_burned for r in recs],
                    res.gas_burned,
                    [t.new_state_hash for t in res.transitions],
                )
            )
        finally:
            sb.close()
    assert results[0] == results[1] == results[2]


def test_limit_is_exact():
    """The deepest recursion that fits is fixed by the costs: one frame more trips."""
    code = gear("""
  (func $down (param i32)
    (if (local.get 0) (then (call $down (i32.sub (local.get 0) (i32.const 1))))))
  (func $read (result i32)  ;; the payload as a little-endian u32
    (call $gr_read (i32.const 0) (i32.const 4) (i32.const 0xE000) (i32.const 0xE010))
    (i32.load (i32.const 0xE000)))
  (func (export "handle") (call $down (call $read)) (call $reply_i64 (i64.const 1)))""")
    costs = ins.stack_costs(code)
    # defined functions: $reply_i64, $down, $read, handle (+ the thunk, not counted)
    c_reply, c_down, c_read, c_handle = costs
    # deepest point: handle -> down^(n+1) (n..0), and down's frames only
    depth_ok = (ins.STACK_LIMIT - c_handle) // c_down - 1
    sb = Sandbox(max_gas_per_message=SMALL_GAS)
    try:
        pid = deploy(sb, code)
        ok, rec = call(sb, pid, struct.pack("<I", depth_ok))
        assert ok.reply_code == codes.SUCCESS_MANUAL, rec.explanation
        bad, rec = call(sb, pid, struct.pack("<I", depth_ok + 1))
        assert (bad.reply_code, rec.explanation) == (codes.ERR_STACK_LIMIT, LIMIT_HIT)
    finally:
        sb.close()
    assert c_read > 0 and c_reply > 0


# ---------------------------------------------------------------- balanced counter

EXITS = """
  ;; every way out of a function: fallthrough, return (with a value, from nested
  ;; block/loop/if), br / br_if / br_table to the function's own label
  (func $exits (param $i i32) (result i32) (local $k i32)
    (local.set $k (i32.rem_u (local.get $i) (i32.const 7)))
    (block $out
      (loop $l
        (block $b1
          (block $b2
            (br_table $b1 $b2 $out (local.get $k)))
          ;; k == 1: return from two blocks and a loop deep
          (if (i32.eq (local.get $k) (i32.const 1))
            (then (return (i32.mul (local.get $i) (i32.const 3)))))
          (br $out))
        ;; k == 0: br to the function label from inside loop + block
        (local.get $i)
        (br 2)))
    ;; k >= 2
    (if (i32.eq (local.get $k) (i32.const 2))
      (then (return (i32.const 7))))
    (if (i32.eq (local.get $k) (i32.const 3))
      (then (i32.const 11) (br_if 1 (i32.const 1)) (drop)))
    (if (i32.eq (local.get $k) (i32.const 4))
      (then (block (loop (i32.const 13) (return)))))
    (if (i32.eq (local.get $k) (i32.const 5))
      (then (i32.const 17) (i32.const 0) (br_table 1 1 1)))
    (i32.const 19))  ;; k == 6: fallthrough
  (func $void_exits (param $i i32)  ;; the same without results
    (block (block (br_if 2 (i32.and (local.get $i) (i32.const 1)))))
    (if (i32.and (local.get $i) (i32.const 2)) (then (return)))
    (loop (br 1)))
  (func (export "handle") (local $i i32) (local $sum i64)
    (loop $l
      (local.set $sum (i64.add (local.get $sum)
                               (i64.extend_i32_u (call $exits (local.get $i)))))
      (call $void_exits (local.get $i))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                        (i32.const 100000))))
    (call $reply_i64 (local.get $sum)))"""


def ref_exits(i: int) -> int:
    return {0: i, 1: 3 * i, 2: 7, 3: 11, 4: 13, 5: 17, 6: 19}[i % 7]


def test_every_exit_keeps_the_counter_balanced():
    code = gear(EXITS)
    sb = Sandbox()
    try:
        pid = deploy(sb, code)
        reply, rec = call(sb, pid)
    finally:
        sb.close()
    assert reply.reply_code == codes.SUCCESS_MANUAL, rec.explanation
    assert u64(reply.payload) == sum(ref_exits(i) for i in range(100_000))


# ---------------------------------------------------------------- indices


def test_calls_exports_and_tables_keep_their_targets():
    """200 functions (indices cross the one-byte LEB boundary when shifted), called
    directly, through a table filled in two segments, and from two entry points."""
    n = 200
    funcs = "\n".join(f"  (func $f{i} (result i64) (i64.const {i * i + 1}))" for i in range(n))
    table = " ".join(f"$f{i}" for i in reversed(range(100)))
    table2 = " ".join(f"$f{i}" for i in range(100, n))
    direct = " ".join(f"(call $f{i}) (i64.add)" for i in range(0, n, 3))
    indirect = " ".join(
        f"(call_indirect (type $r) (i32.const {k})) (i64.add)" for k in range(0, n, 7)
    )
    code = gear(f"""
  (type $r (func (result i64)))
  (table {n} funcref)
  (elem (i32.const 0) {table})
  (elem (i32.const 100) {table2})
{funcs}
  (func (export "init") (call $reply_i64 (block (result i64) (i64.const 0) {direct})))
  (func (export "handle")
    (call $reply_i64 (block (result i64) (i64.const 0) {indirect})))""")
    want_direct = sum(i * i + 1 for i in range(0, n, 3))
    slots = list(reversed(range(100))) + list(range(100, n))
    want_indirect = sum(slots[k] ** 2 + 1 for k in range(0, n, 7))
    out = ins.instrument(code)
    wasmtime.Module.validate(execution.make_engine(), out)
    sb = Sandbox()
    try:
        pid = sb.create_program(sb.upload_code(code))
        init_id = sb.pending[-1].message_id
        sb.run_until_idle()
        assert u64(sb.replies[init_id].payload) == want_direct
        reply, _ = call(sb, pid)
        assert u64(reply.payload) == want_indirect
    finally:
        sb.close()


def test_module_layout():
    """What the rewrite adds, and where: program imports, globals and their indices are
    untouched; exports go through thunks that call the original function."""
    from gexe.runtime import wasm

    code = gear(
        EXITS
        + """
  (global $g (mut i64) (i64.const 5))
  (global (export "keep") i32 (i32.const 9))"""
    )
    out = ins.instrument(code)
    a, b = wasm.parse(code), wasm.parse(out)
    assert b.imports[:-1] == a.imports
    assert (b.imports[-1].module, b.imports[-1].name) == (ins.IMPORT_MODULE, ins.IMPORT_NAME)
    assert b.types[b.imports[-1].type_index] == wasm.FuncType((), ())
    assert b.globals[:-1] == a.globals
    assert b.globals[-1] == wasm.Global(wasm.I32, True, 0)
    n_imp = sum(1 for i in a.imports if i.kind == wasm.KIND_FUNC)
    assert b.functions[: len(a.functions)] == a.functions
    assert len(b.functions) == len(a.functions) + 1  # one thunk, for `handle`
    handle = next(e for e in b.exports if e.name == "handle")
    assert handle.index == n_imp + 1 + len(a.functions)
    assert [e for e in b.exports if e.kind != wasm.KIND_FUNC] == [
        e for e in a.exports if e.kind != wasm.KIND_FUNC
    ]


# ---------------------------------------------------------------- sessions


def test_globals_are_fresh_for_every_message_of_a_session():
    """A message that traps deep in a recursion (counter left high) or after moving a
    mutable global does not affect the next message run on the same instance."""
    code = gear(
        shape_simple().replace('(export "handle")', "")
        + """
  (global $sp (mut i32) (i32.const 4096))
  (func $cmd (result i32)
    (call $gr_read (i32.const 0) (i32.const 1) (i32.const 0xE000) (i32.const 0xE010))
    (i32.load8_u (i32.const 0xE000)))
  (func $down (param i32)
    (if (local.get 0) (then (call $down (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "handle") (local $c i32)
    (local.set $c (call $cmd))
    (global.set $sp (i32.sub (global.get $sp) (i32.const 16)))
    (if (i32.eq (local.get $c) (i32.const 1)) (then (unreachable)))
    (if (i32.eq (local.get $c) (i32.const 2)) (then (drop (call $rec (i32.const 0)))))
    (call $down (i32.const 5000))
    (call $reply_i64 (i64.extend_i32_u (global.get $sp))))"""
    )
    sb = Sandbox(max_gas_per_message=SMALL_GAS)
    try:
        pid = deploy(sb, code)
        ids = [sb.send(pid, bytes([c])) for c in (2, 0, 1, 0, 2, 2, 0)]
        res = sb.run_block()
        assert res.rounds == 1  # all seven ran on one instance
        got = [(sb.replies[m].reply_code, sb.replies[m].payload) for m in ids]
    finally:
        sb.close()
    ok = (codes.SUCCESS_MANUAL, (4096 - 16).to_bytes(8, "little"))
    stack = (codes.ERR_STACK_LIMIT, b"")
    unreachable = (codes.ERR_UNREACHABLE, b"")
    assert [(c, p) for c, p in got] == [stack, ok, unreachable, ok, stack, stack, ok]


# ---------------------------------------------------------------- example programs


def run_examples(monkeypatch, instrumented: bool):
    if not instrumented:
        monkeypatch.setattr(ins, "instrument", lambda code: bytes(code))
    sb = Sandbox()
    out = []
    try:

        def c(name: str) -> bytes:
            return programs.path(name).read_bytes()

        ping = deploy(sb, c("ping"))
        counter = sb.create_program(sb.upload_code(c("counter")), init_payload=b"5")
        sb.run_until_idle()
        proxy = sb.create_program(sb.upload_code(c("proxy")), init_payload=ping)
        sb.run_until_idle()
        mandel = deploy(sb, c("mandelbrot"))
        job = struct.pack("<qqqIII", -(1 << 28) // 3, (1 << 28) // 7, (1 << 28) // 50, 7, 9, 100)
        for pid, payload in [
            (ping, b"PING"),
            (ping, b"hello"),
            (counter, b"inc"),
            (counter, b"add:10"),
            (counter, b"dec"),
            (counter, b"get"),
            (proxy, b"PING"),
            (proxy, b"echo"),
            (mandel, b""),
            (mandel, job),
            (mandel, b"12345"),
        ]:
            mid = sb.send(pid, payload)
            reply = sb.run_until_reply(mid, max_blocks=10)
            rec = sb.dispatches[mid]
            out.append((reply.reply_code, reply.payload, rec.status))
        for pid in (ping, counter, proxy, mandel):
            st = sb.program_state(pid)
            out.append((st.pages, st.allocations, st.status, st.balance))
    finally:
        sb.close()
    return out


def test_examples_behave_as_without_instrumentation(monkeypatch):
    with_ = run_examples(monkeypatch, True)
    monkeypatch.undo()
    without = run_examples(monkeypatch, False)
    assert with_ == without
    assert with_[0][:2] == (codes.SUCCESS_MANUAL, b"PONG")
    assert with_[6][:2] == (codes.SUCCESS_MANUAL, b"PONG")  # through the proxy


def test_example_programs_instrument_and_validate():
    engine = execution.make_engine()
    for name in programs.names():
        code = programs.path(name).read_bytes()
        out = ins.instrument(code)
        assert ins.instrument(code) == out
        wasmtime.Module.validate(engine, out)
        assert all(0 < c < ins.STACK_LIMIT for c in ins.stack_costs(code))


# ---------------------------------------------------------------- size and speed


def big_module(size: int = 506 * 1024, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    funcs: list[str] = []
    total = 0
    while total < size:
        n = len(funcs)
        body = []
        for _ in range(rnd.randint(20, 200)):
            c = rnd.random()
            if c < 0.3:
                body.append(
                    f"(local.set $a (i32.add (local.get $a) "
                    f"(i32.load offset={rnd.randint(0, 4096)} (local.get $p))))"
                )
            elif c < 0.45:
                body.append(
                    f"(local.set $b (i64.mul (local.get $b) "
                    f"(i64.const {rnd.randint(-(2**40), 2**40)})))"
                )
            elif c < 0.6 and n:
                body.append(
                    f"(local.set $a (call $f{rnd.randrange(n)} (local.get $a) (local.get $b)))"
                )
            elif c < 0.7:
                body.append(
                    "(block $x (loop $y (br_if $x (i32.eqz (local.get $a))) "
                    "(local.set $a (i32.sub (local.get $a) (i32.const 1))) "
                    "(br_if $y (local.get $p))))"
                )
            elif c < 0.8:
                body.append(
                    f"(if (i32.gt_u (local.get $a) (i32.const {rnd.randint(0, 999)})) "
                    "(then (return (local.get $a))))"
                )
            elif c < 0.85:
                body.append("(block $q (block $r (br_table $q $r 0 (local.get $a))))")
            else:
                body.append(
                    f"(i64.store offset={rnd.randint(0, 4096)} (local.get $p) "
                    "(i64.extend_i32_u (local.get $a)))"
                )
        funcs.append(
            f"(func $f{n} (param $p i32) (param $q i64) (result i32) "
            f"(local $a i32) (local $b i64) {' '.join(body)} (local.get $a))"
        )
        total += len(funcs[-1]) // 6  # about the binary size
    wat = (
        '(module (import "env" "memory" (memory 1)) '
        '(func (export "handle") (drop (call $f0 (i32.const 0) (i64.const 0))))\n'
        + "\n".join(funcs)
        + ")"
    )
    return bytes(wasmtime.wat2wasm(wat))


def test_big_module_is_deterministic():
    # speed of instrumentation belongs in bench/, not here
    code = big_module()
    assert len(code) > 500 * 1024
    validate(code)
    out = ins.instrument(code)
    assert ins.instrument(code) == out
    wasmtime.Module.validate(execution.make_engine(), out)
    assert len(out) < len(code) * 1.1


# ---------------------------------------------------------------- units and fallbacks


def test_costs():
    code = gear("""
  (func $a (param i32 i64) (result i32) (local i32 i64 i64)  ;; stack: 2
    (i32.add (local.get 0) (i32.const 1)))
  (func $b  ;; nothing at all
    )
  (func $c (result i32)  ;; stack 3, then unreachable code that would push more
    (i32.const 1) (i32.const 2) (i32.const 3) (drop) (drop)
    (return)
    (i32.const 4) (i32.const 5) (drop))
  (func (export "handle") (drop (call $a (i32.const 1) (i64.const 2))) (call $b)
    (drop (call $c)))""")
    reply_cost, a, b, c, handle = ins.stack_costs(code)
    f = ins.FRAME_COST
    assert (a, b, c) == (f + 2 + 3 + 2, f, f + 3)
    assert handle == f + 2  # two args on the stack before `call $a`
    assert reply_cost == f + 1 + 4  # param; gr_reply's four args


def test_wasm_thread_pool_restores_the_stack_size():
    before = threading.stack_size()
    pool = execution.wasm_thread_pool(3)
    try:
        assert threading.stack_size() == before
        assert len({pool.submit(threading.get_ident).result() for _ in range(20)}) <= 3
        # the pool threads can hold a native stack of MAX_WASM_STACK and more
        code = gear(shape_params(999))
        sb = Sandbox(max_gas_per_message=SMALL_GAS)
        try:
            pid = deploy(sb, code)
            reply, rec = pool.submit(call, sb, pid).result()
        finally:
            sb.close()
        assert rec.explanation == LIMIT_HIT
    finally:
        pool.shutdown()


LICM = """
  ;; adversarial: 600 loop invariants that cranelift hoists out of the loop, all live
  ;; across the recursive call, in a function whose counted cost is tiny
  (func $rec (param i64 i32) (result i64)
    (loop $l
      {stores}
      (drop (call $rec (i64.add (local.get 0) (i64.const 1)) (local.get 1)))
      (br_if $l (local.tee 1 (i32.sub (local.get 1) (i32.const 1)))))
    (i64.const 0))
  (func (export "handle") (drop (call $rec (i64.const 5) (i32.const 2))))"""


def test_native_overflow_burns_the_whole_gas_limit():
    """The last resort: if wasmtime's native limit comes first, the dispatch still
    fails with StackLimitExceeded and burns its whole gas limit, so how deep it got
    (machine dependent) does not show in the outcome."""
    stores = " ".join(
        f"(i64.store offset={8 * k} (i32.const 0) (i64.mul (local.get 0) (i64.const {k + 3})))"
        for k in range(600)
    )
    code = gear(LICM.format(stores=stores))
    sb = Sandbox(max_gas_per_message=SMALL_GAS)
    try:
        pid = deploy(sb, code)
        reply, rec = call(sb, pid)
    finally:
        sb.close()
    assert reply.reply_code == codes.ERR_STACK_LIMIT
    if rec.explanation == LIMIT_HIT:  # pragma: no cover - cranelift stopped hoisting
        pytest.skip("the compiler no longer keeps the invariants live: no native overflow")
    assert rec.explanation == NATIVE_HIT
    assert rec.gas_burned == SMALL_GAS

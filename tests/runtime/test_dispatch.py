"""Dispatch semantics: replies, value, traps, init, and rollback of failed dispatches."""

from __future__ import annotations

import pytest
from gexe.runtime import DEFAULT_USER, Sandbox, codes, limits
from gexe.runtime.ids import outgoing_message_id, reply_message_id
from gexe.runtime.state import Status, load_allocations
from sandbox_helpers import call, create, deploy, durable, emitted
from wat import module

OK = module(handle="")  # does nothing: gets the automatic reply


def test_auto_reply(sb):
    pid = deploy(sb, OK)
    mid = sb.send(pid, b"hi")
    sb.run_block()
    reply = sb.reply_to(mid)
    assert reply.reply_code == codes.SUCCESS_AUTO == bytes(4)
    assert reply.payload == b"" and reply.value == 0
    assert reply.id == reply_message_id(mid) and reply.reply_to == mid
    assert reply.source == pid and reply.destination == DEFAULT_USER


def test_value_credited_on_success(sb):
    pid = deploy(sb, OK, value=11)
    assert sb.program_state(pid).balance == 11
    reply, _ = call(sb, pid, value=100)
    assert reply.value == 0
    assert sb.program_state(pid).balance == 111


def test_error_reply_returns_value(sb):
    pid = deploy(sb, module(handle="unreachable"), value=5)
    reply, rec = call(sb, pid, value=100)
    assert rec.status == "trap"
    assert reply.reply_code == codes.ERR_UNREACHABLE and reply.value == 100
    assert sb.program_state(pid).balance == 5


def test_program_without_init_initializes(sb):
    pid, init_id = create(
        sb, module(handle="(call $reply_mem (i32.const 0) (i32.const 0))"), b"anything", value=4
    )
    r = sb.run_until_reply(init_id)
    assert r.reply_code == codes.SUCCESS_AUTO
    st = sb.program_state(pid)
    assert st.status == Status.ACTIVE and st.balance == 4
    assert call(sb, pid)[0].reply_code == codes.SUCCESS_MANUAL


def test_init_failure_terminates(sb):
    pid, init_id = create(sb, module(init="unreachable", handle=""), value=3)
    r = sb.run_until_reply(init_id)
    assert r.reply_code == codes.ERR_UNREACHABLE and r.value == 3
    assert sb.program_state(pid).status == Status.TERMINATED
    reply, rec = call(sb, pid, value=8)
    assert reply.reply_code == codes.ERR_INIT_FAILURE == bytes.fromhex("01020100")
    assert reply.value == 8 and rec.status == "refused"


def test_init_out_of_executable_balance(sb):
    pid, init_id = create(sb, module(init="", handle=""), executable_balance=0)
    assert sb.run_until_reply(init_id).reply_code == codes.ERR_RAN_OUT_OF_GAS
    assert sb.program_state(pid).status == Status.TERMINATED


def test_missing_init_export_still_needs_gas(sb):
    pid, init_id = create(sb, OK, executable_balance=0)
    assert sb.run_until_reply(init_id).reply_code == codes.ERR_RAN_OUT_OF_GAS


def test_handle_while_init_waits(sb):
    code = module(
        init="""
          (if (i32.eqz (i32.load (i32.const 0x4000)))
            (then (i32.store (i32.const 0x4000) (i32.const 1))
                  (call $gr_wait_for (i32.const 3))))""",
        handle="(call $reply_mem (i32.const 0) (i32.const 1))",
    )
    pid, init_id = create(sb, code)
    sb.run_block()
    assert sb.program_state(pid).status == Status.INITIALIZING
    assert sb.dispatches[init_id].status == "wait"
    reply, rec = call(sb, pid, value=2)
    assert reply.reply_code == codes.ERR_UNINITIALIZED == bytes.fromhex("01020200")
    assert reply.value == 2 and rec.status == "refused"
    assert sb.run_until_reply(init_id).reply_code == codes.SUCCESS_AUTO
    assert sb.height == 4  # init waited in block 1 for 3 blocks
    assert sb.program_state(pid).status == Status.ACTIVE
    assert call(sb, pid)[0].reply_code == codes.SUCCESS_MANUAL


def test_no_reply_to_a_reply(sb):
    # handle sends to OBSERVER; a user reply to that runs handle_reply, which fails
    pid = deploy(
        sb, module(handle="(call $emit (i32.const 0) (i32.const 0))", handle_reply="unreachable")
    )
    _, rec = call(sb, pid)
    sent = outgoing_message_id(rec.message_id, 0)
    n_out = len(sb.outgoing)
    sb.send_reply(pid, sent, b"r", value=6)
    sb.run_block()
    assert sb.dispatches[reply_message_id(sent)].status == "trap"
    assert len(sb.outgoing) == n_out  # no error reply for a failed handle_reply
    # and a program without handle_reply just ignores replies
    pid2 = deploy(sb, module(handle="(call $emit (i32.const 0) (i32.const 0))"), salt=b"2")
    _, rec = call(sb, pid2)
    sent = outgoing_message_id(rec.message_id, 0)
    n_out = len(sb.outgoing)
    sb.send_reply(pid2, sent, b"r")
    sb.run_block()
    assert sb.dispatches[reply_message_id(sent)].status == "success"
    assert len(sb.outgoing) == n_out


# ---------------------------------------------------------------- traps

TRAPS = {
    "unreachable": ("unreachable", codes.ERR_UNREACHABLE),
    "divide by zero": ("(drop (i32.div_u (i32.const 1) (i32.const 0)))", codes.ERR_UNREACHABLE),
    "load out of bounds": ("(drop (i32.load (i32.const 0x2fffe)))", codes.ERR_UNREACHABLE),
    "store out of bounds": ("(i32.store (i32.const -4) (i32.const 1))", codes.ERR_UNREACHABLE),
    "infinite loop": ("(loop $l (br $l))", codes.ERR_RAN_OUT_OF_GAS),
    "deep recursion": ("(call $recurse (i32.const 0))", codes.ERR_STACK_LIMIT),
    "huge read charge": (
        "(call $gr_read (i32.const 0) (i32.const -2) (i32.const 0) (i32.const 0))",
        codes.ERR_RAN_OUT_OF_GAS,
    ),
    "free of a bad page": ("(drop (call $free (i32.const 0x10000)))", codes.ERR_UNREACHABLE),
}
RECURSE = """
  (func $recurse (param $n i32) (result i32)
    (local $a i64) (local $b i64) (local $c i64) (local $d i64)
    (i32.add (call $recurse (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))"""


@pytest.mark.parametrize(("body", "code"), TRAPS.values(), ids=TRAPS.keys())
def test_traps(small_sb, body, code):
    sb = small_sb
    if "recurse" in body:
        body = f"(drop {body})"
    prog = module(
        handle=f"""
      (i32.store (i32.const 0x4000) (i32.const 9))
      (drop (call $alloc (i32.const 1)))
      (call $emit (i32.const 0) (i32.const 1))
      {body}""",
        funcs=RECURSE if "recurse" in body else "",
    )
    pid = deploy(sb, prog)
    before = durable(sb.program_state(pid))
    reply, rec = call(sb, pid, value=1)
    assert (reply.reply_code, reply.payload, reply.value) == (code, b"", 1)
    assert rec.status == "trap"
    assert durable(sb.program_state(pid)) == before
    assert emitted(sb) == []


def test_out_of_gas_burns_the_whole_limit(small_sb):
    from sandbox_helpers import SMALL_GAS

    pid = deploy(small_sb, module(handle="(loop $l (br $l))"))
    exec_before = small_sb.program_state(pid).executable_balance
    _, rec = call(small_sb, pid)
    assert rec.gas_burned == SMALL_GAS
    assert small_sb.program_state(pid).executable_balance < exec_before


# ---------------------------------------------------------------- rollback in one instance

ROLLBACK = module(
    handle="""
  (local $c i32)
  (local.set $c (call $cmd))
  (if (i32.eq (local.get $c) (i32.const 0x66))  ;; "f": dirty memory, allocate, then fail
    (then
      (i32.store (i32.const 0x4000) (i32.add (i32.load (i32.const 0x4000)) (i32.const 100)))
      (i32.store (i32.const 0x4004) (call $alloc (i32.const 1)))
      (i32.store (i32.mul (i32.load (i32.const 0x4004)) (i32.const 0x10000)) (i32.const 5))
      unreachable))
  (if (i32.eq (local.get $c) (i32.const 0x69))  ;; "i": count one up
    (then (i32.store (i32.const 0x4000) (i32.add (i32.load (i32.const 0x4000)) (i32.const 1)))))
  ;; reply: counter, last stored alloc result, and a fresh alloc's page number
  (i32.store (i32.const 0x1000) (i32.load (i32.const 0x4000)))
  (i32.store (i32.const 0x1004) (i32.load (i32.const 0x4004)))
  (call $reply_mem (i32.const 0x1000) (i32.const 8))"""
)


def test_failed_dispatch_leaves_no_trace_in_the_same_block(sb):
    pid = deploy(sb, ROLLBACK)
    # all in one block: the program runs them on one live instance
    ids = [sb.send(pid, p) for p in (b"i", b"f", b"i", b"f", b"r")]
    sb.run_block()
    replies = [sb.reply_to(m) for m in ids]
    assert [r.reply_code for r in replies] == [
        codes.SUCCESS_MANUAL,
        codes.ERR_UNREACHABLE,
        codes.SUCCESS_MANUAL,
        codes.ERR_UNREACHABLE,
        codes.SUCCESS_MANUAL,
    ]
    assert [r.payload for r in replies if r.payload] == [
        (1).to_bytes(4, "little") + bytes(4),
        (2).to_bytes(4, "little") + bytes(4),
        (2).to_bytes(4, "little") + bytes(4),
    ]
    st = sb.program_state(pid)
    assert st.allocations == bytes(32)
    # a fresh sandbox where the failing messages did nothing ends with the same memory
    # (message ids are the same: they depend on the sender's nonce, not on the payload)
    other = Sandbox()
    try:
        pid2 = deploy(other, ROLLBACK)
        ids2 = [other.send(pid2, p) for p in (b"i", b"n", b"i", b"n", b"r")]
        other.run_block()
        assert (pid2, ids2) == (pid, ids)
        assert other.program_state(pid2).pages == st.pages
    finally:
        other.close()


def test_reallocated_page_reads_zero_in_the_same_block(sb):
    code = module(
        handle="""
      (local $c i32) (local $p i32)
      (local.set $c (call $cmd))
      (if (i32.eq (local.get $c) (i32.const 0x61))  ;; "a": allocate and write
        (then (local.set $p (call $alloc (i32.const 1)))
              (i32.store (i32.mul (local.get $p) (i32.const 0x10000)) (i32.const 0x77))))
      (if (i32.eq (local.get $c) (i32.const 0x66))  ;; "f": free page 2
        (then (drop (call $free (i32.const 2)))))
      (if (i32.eq (local.get $c) (i32.const 0x72))  ;; "r": allocate, read without writing
        (then (local.set $p (call $alloc (i32.const 1)))
              (i32.store (i32.const 0x1000)
                         (i32.load (i32.mul (local.get $p) (i32.const 0x10000))))
              (call $reply_mem (i32.const 0x1000) (i32.const 4))))"""
    )
    pid = deploy(sb, code)
    call(sb, pid, b"a")
    # in separate blocks the re-allocated page reads zero
    call(sb, pid, b"f")
    assert call(sb, pid, b"r")[0].payload == bytes(4)
    assert load_allocations(sb.storage, sb.program_state(pid).allocations) == {2}
    # the same three steps within one block must give the same answer
    call(sb, pid, b"f")
    sb.run_block()
    ids = [sb.send(pid, p) for p in (b"a", b"f", b"r")]
    sb.run_block()
    assert sb.reply_to(ids[2]).payload == bytes(4)


def test_rewrite_of_reallocated_page_persists(sb):
    code = module(
        handle="""
      (local $c i32) (local $p i32)
      (local.set $c (call $cmd))
      (if (i32.eq (local.get $c) (i32.const 0x61))  ;; "a": allocate and write 0x77
        (then (local.set $p (call $alloc (i32.const 1)))
              (i32.store (i32.mul (local.get $p) (i32.const 0x10000)) (i32.const 0x77))))
      (if (i32.eq (local.get $c) (i32.const 0x66))  ;; "f": free page 2
        (then (drop (call $free (i32.const 2)))))
      (if (i32.eq (local.get $c) (i32.const 0x72))  ;; "r": read page 2
        (then (i32.store (i32.const 0x1000) (i32.load (i32.const 0x20000)))
              (call $reply_mem (i32.const 0x1000) (i32.const 4))))"""
    )
    pid = deploy(sb, code)
    ids = [sb.send(pid, p) for p in (b"a", b"f", b"a")]
    sb.run_block()
    assert [sb.reply_to(m).reply_code for m in ids] == [codes.SUCCESS_AUTO] * 3
    assert load_allocations(sb.storage, sb.program_state(pid).allocations) == {2}
    assert call(sb, pid, b"r")[0].payload == (0x77).to_bytes(4, "little")


# ---------------------------------------------------------------- gas shared by WASM and syscalls


def _burner(end: str, loops: int, syscalls: int) -> bytes:
    """Burn `loops` iterations of pure WASM, then `syscalls` calls of gr_size, then `end`."""
    return module(
        handle=f"""
      (local $i i32)
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {loops}))))
      (local.set $i (i32.const 0))
      (loop $s
        (call $gr_size (i32.const 0x1000))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $s (i32.lt_u (local.get $i) (i32.const {syscalls}))))
      {end}""",
        data=((0x3000, b"\x11" * 32), (0x10, b"boom")),
    )


def _over_budget(limit: int) -> tuple[int, int]:
    """Loop and syscall counts that each use ~60% of `limit`: only together too much."""
    sb = Sandbox()
    try:
        probe = module(
            handle="""
          (local $i i32)
          (call $gr_gas_available (i32.const 0x1000))
          (loop $l
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
          (call $gr_gas_available (i32.const 0x1008))
          (call $reply_mem (i32.const 0x1000) (i32.const 16))"""
        )
        out = call(sb, deploy(sb, probe))[0].payload
    finally:
        sb.close()
    per_iter = (
        int.from_bytes(out[:8], "little")
        - int.from_bytes(out[8:], "little")
        - limits.SYSCALL_BASE_GAS
    ) / 100000
    return int(0.6 * limit / per_iter), int(0.6 * limit / limits.SYSCALL_BASE_GAS)


ENDINGS = {
    "reply": ("(call $reply_mem (i32.const 0) (i32.const 4))", True),
    "exit": ("(call $gr_exit (i32.const 0x3000))", True),
    "wait": ("(call $gr_wait_for (i32.const 5))", True),
    "leave": ("(call $gr_leave)", True),
    "panic": ("(call $gr_panic (i32.const 0x10) (i32.const 4))", False),
    "unreachable": ("unreachable", False),
}


@pytest.mark.parametrize("ending", [pytest.param(k) for k in ENDINGS])
def test_wasm_and_syscall_gas_add_up(small_sb, ending):
    from sandbox_helpers import SMALL_GAS

    loops, syscalls = _over_budget(SMALL_GAS)
    sb = small_sb
    pid = deploy(sb, _burner(ENDINGS[ending][0], loops, syscalls))
    # each part alone fits in the limit
    alone = [
        deploy(sb, _burner("", loops, 0), salt=b"w"),
        deploy(sb, _burner("", 0, syscalls), salt=b"s"),
    ]
    assert [call(sb, p)[0].reply_code for p in alone] == [codes.SUCCESS_AUTO] * 2
    before = durable(sb.program_state(pid))
    reply, rec = call(sb, pid)
    assert reply.reply_code == codes.ERR_RAN_OUT_OF_GAS
    assert rec.gas_burned == SMALL_GAS
    assert durable(sb.program_state(pid)) == before


# A program that allocates a page and then fails ("f"), or reads the first byte above
# its static memory ("r"), which only exists while a page is allocated there.
GROW_THEN_FAIL = module(
    handle="""
  (if (i32.eq (call $cmd) (i32.const 0x66))
    (then (drop (call $alloc (i32.const 1))) unreachable))
  (i32.store (i32.const 0x1000) (i32.load (i32.const 0x20000)))
  (call $reply_mem (i32.const 0x1000) (i32.const 4))"""
)


def test_failed_alloc_leaves_memory_unallocated_across_blocks(sb):
    pid = deploy(sb, GROW_THEN_FAIL)
    assert call(sb, pid, b"f")[0].reply_code == codes.ERR_UNREACHABLE
    assert call(sb, pid, b"r")[0].reply_code == codes.ERR_UNREACHABLE  # out of bounds


def test_failed_alloc_leaves_memory_unallocated_in_the_same_block(sb):
    pid = deploy(sb, GROW_THEN_FAIL)
    ids = [sb.send(pid, b"f"), sb.send(pid, b"r")]
    sb.run_block()
    assert [sb.reply_to(m).reply_code for m in ids] == [codes.ERR_UNREACHABLE] * 2

"""Storage integrity and determinism: failures write nothing, the same inputs give the
same state hashes, and the thread pool never changes a result."""

from __future__ import annotations

import random

from gexe.runtime import CodeError, Sandbox, codes, user, validate
from gexe.runtime.ids import ZERO_ID
from sandbox_helpers import SMALL_GAS, call, deploy
from wat import module

from gexe import programs


def code(name: str) -> bytes:
    return programs.path(name).read_bytes()


def test_failed_dispatch_writes_only_the_state_record(sb):
    # memory is dirtied, a page allocated and a message sent before the trap
    pid = deploy(
        sb,
        module(
            handle="""
      (if (i32.eq (call $cmd) (i32.const 0x66))
        (then (i32.store (i32.const 0x4000) (i32.const 1))
              (drop (call $alloc (i32.const 2)))
              (call $emit (i32.const 0) (i32.const 8))
              unreachable))
      (i32.store (i32.const 0x4000) (i32.const 2))"""
        ),
    )
    call(sb, pid, b"ok")  # some memory is stored
    before_state = sb.program_state(pid)
    assert before_state.pages != ZERO_ID
    blobs = dict(sb.storage._blobs)
    reply, rec = call(sb, pid, b"f")
    assert reply.reply_code == codes.ERR_UNREACHABLE
    after = sb.program_state(pid)
    # the only new blob is the program's state record (its executable balance changed)
    assert set(sb.storage._blobs) - set(blobs) == {sb.state_hash(pid)}
    assert all(sb.storage._blobs[k] == v for k, v in blobs.items())
    assert after.executable_balance < before_state.executable_balance
    assert (after.pages, after.allocations, after.queue, after.waitlist, after.balance) == (
        before_state.pages,
        before_state.allocations,
        before_state.queue,
        before_state.waitlist,
        before_state.balance,
    )


ALICE, BOB = user("0x" + "a1" * 20), user("0x" + "b2" * 20)


def run_workload(workers: int) -> tuple[list, list, list]:
    """Several programs talking to each other over a few blocks; returns the state hashes
    after every block, every message that left the program set, and every dispatch."""
    sb = Sandbox(workers=workers, max_gas_per_message=SMALL_GAS)
    try:
        cid = {
            n: sb.upload_code(code(n))
            for n in ("ping", "proxy", "counter", "sender", "panicker", "looper", "waiter", "token")
        }
        pings = [sb.create_program(cid["ping"], salt=bytes([i])) for i in range(2)]
        proxies = [
            sb.create_program(cid["proxy"], salt=bytes([i]), init_payload=pings[i % 2])
            for i in range(3)
        ]
        counters = [
            sb.create_program(cid["counter"], salt=bytes([i]), init_payload=b"7") for i in range(2)
        ]
        sender = sb.create_program(cid["sender"])
        panicker = sb.create_program(cid["panicker"])
        looper = sb.create_program(cid["looper"])
        waiter = sb.create_program(cid["waiter"])
        token = sb.create_program(cid["token"], source=ALICE)
        bad_proxy = sb.create_program(cid["proxy"], salt=b"bad", init_payload=panicker)
        hashes = []

        def block() -> None:
            sb.run_block()
            hashes.append(sorted(sb.state.programs.items()))

        block()
        for rnd in range(3):
            for i, p in enumerate(proxies):
                sb.send(p, b"PING" if (i + rnd) % 2 else f"hi {i} {rnd}".encode(), source=BOB)
            for c in counters:
                sb.send(c, b"inc", source=ALICE)
                sb.send(sender, c + f"add:{rnd + 1}".encode(), source=BOB)
            sb.send(panicker, b"x", value=rnd)
            sb.send(looper, b"")
            sb.send(bad_proxy, b"y")
            sb.send(token, b"\x01" + BOB + (10 + rnd).to_bytes(16, "little"), source=ALICE)
            sb.send(token, b"\x01" + ALICE + (1000).to_bytes(16, "little"), source=BOB)
            w = sb.send(waiter, b"wait:3")
            block()
            sb.send(waiter, b"wake:" + w.hex().encode())
            block()
        for _ in range(6):
            block()
        assert not sb.state.queued
        out = [
            (m.id, m.source, m.destination, m.payload, m.value, m.reply_to, m.reply_code)
            for m in sb.outgoing
        ]
        records = [
            (d.program_id, d.message_id, d.status, d.gas_burned)
            for r in sb.results
            for d in r.dispatches
        ]
        return hashes, out, records
    finally:
        sb.close()


def test_workload_is_deterministic_and_schedule_independent():
    one = run_workload(1)
    again = run_workload(1)
    two = run_workload(2)
    assert one == again
    assert one[0] == two[0]  # state hashes after every block
    assert one[1] == two[1]  # outgoing messages, in order
    assert one[2] == two[2]  # every dispatch with its gas
    # the workload really did cross-program work, failures and waits
    statuses = {r[2] for r in one[2]}
    assert {"success", "trap", "wait"} <= statuses
    assert any(m[3] == b"PONG" for m in one[1])
    assert any(m[6] == codes.ERR_RAN_OUT_OF_GAS for m in one[1])


def test_mutated_programs_never_crash_the_runtime():
    """Valid-but-odd modules (random mutations of real programs that still pass
    validation) run without ever raising out of the sandbox."""
    rng = random.Random(7)
    originals = [code(n) for n in programs.names() if n != "bench_kernels"]
    sb = Sandbox(max_gas_per_message=SMALL_GAS)
    ran = 0
    try:
        for _attempt in range(4000):
            if ran == 40:
                break
            mutant = bytearray(rng.choice(originals))
            for _ in range(rng.randint(1, 3)):
                mutant[rng.randrange(8, len(mutant))] = rng.randrange(256)
            try:
                validate(bytes(mutant))
            except CodeError:
                continue
            pid = sb.create_program(sb.upload_code(bytes(mutant)), salt=rng.randbytes(8))
            mids = [sb.send(pid, p) for p in (b"", b"PING", rng.randbytes(40))]
            sb.run_until_idle(max_blocks=3)
            for m in mids:
                r = sb.reply_to(m)
                assert r is None or r.reply_code[0] in (0, 1)
            ran += 1
    finally:
        sb.close()
    assert ran == 40


def test_random_syscall_programs():
    """Programs that call random syscalls with random (often absurd) arguments: every
    message ends with a Gear reply code, no syscall ever fails inside the host (that
    would surface as an "internal syscall error"), and failed dispatches change nothing
    but the executable balance."""
    from gexe.runtime.syscalls_abi import SYSCALL_SIGNATURES
    from sandbox_helpers import durable
    from wat import OBSERVER

    rng = random.Random(99)
    args32 = [0, 1, 2, 32, 0x1000, 0xFFFF, 0x1FFC0, 0x1FFFF, 0x20000, 0x7FFFFFFF, -1, -16]
    names = sorted(SYSCALL_SIGNATURES)
    sb = Sandbox(max_gas_per_message=SMALL_GAS)
    statuses: set[str] = set()
    try:
        for case in range(80):
            calls = []
            for _ in range(rng.randint(1, 6)):
                name = rng.choice(names)
                params, results = SYSCALL_SIGNATURES[name]
                args = " ".join(
                    f"(i32.const {rng.choice(args32) if rng.random() < 0.8 else rng.randrange(-(2**31), 2**31)})"
                    if t == 0x7F
                    else f"(i64.const {rng.randrange(0, 2**40)})"
                    for t in params
                )
                call_ = f"(call ${name} {args})"
                calls.append(f"(drop {call_})" if results else call_)
            body = "\n".join(calls)
            code = module(handle=body, data=((0x3000, OBSERVER + bytes(16)),))
            pid = sb.create_program(sb.upload_code(code), salt=case.to_bytes(4, "little"))
            sb.run_block()
            for _ in range(2):
                before = durable(sb.program_state(pid))
                m = sb.send(pid, rng.randbytes(rng.choice([0, 1, 40])), value=rng.choice([0, 5]))
                sb.run_block()
                rec = sb.dispatches.get(m)
                if rec is None:
                    continue  # waiting
                statuses.add(rec.status)
                assert "internal" not in rec.explanation, (body, rec.explanation)
                r = sb.reply_to(m)
                if r is not None:
                    assert r.reply_code[0] in (0, 1) and r.reply_code[3] == 0
                if rec.status in ("trap", "refused"):
                    assert durable(sb.program_state(pid)) == before, body
    finally:
        sb.close()
    assert {"success", "trap", "exit", "wait"} <= statuses


def test_shuffled_schedules_give_the_same_results(monkeypatch):
    """The order in which a round's programs are started (Processor._schedule) is a
    timing choice only: random orders, inline and on the pool, change nothing."""
    from gexe.runtime.processor import Processor

    reference = run_workload(1)
    for seed, workers in ((1, 1), (2, 2), (3, 2)):
        rng = random.Random(seed)
        monkeypatch.setattr(
            Processor,
            "_schedule",
            staticmethod(lambda progs, rng=rng: rng.sample(progs, len(progs))),
        )
        assert run_workload(workers) == reference, (seed, workers)


def test_holding_or_releasing_the_gil_gives_the_same_results(monkeypatch):
    """Whether a WASM call keeps the GIL (short messages) or releases it is a timing
    choice only (runtime/native.py)."""
    from gexe.runtime import session

    results = []
    for threshold in (0, 1 << 62):  # always release; always hold
        monkeypatch.setattr(session, "HOLD_GIL_BELOW_FUEL", threshold)
        results.append(run_workload(2))
    assert results[0] == results[1]

"""The Rust-built example programs (programs/README.md) in the sandbox.

Compute results are checked against pure-Python references written here from the
programs' READMEs, never against constants copied from a previous run.
"""

from __future__ import annotations

import struct

import pytest
from gexe.runtime import DEFAULT_USER, codes, user
from gexe.runtime.ids import outgoing_message_id
from gexe.runtime.state import Status
from sandbox_helpers import SMALL_GAS, call, create, deploy, durable
from wat import OBSERVER

from gexe import programs

MANUAL = codes.SUCCESS_MANUAL
M64 = (1 << 64) - 1


def code(name: str) -> bytes:
    return programs.path(name).read_bytes()


def u64(b: bytes) -> int:
    assert len(b) == 8
    return int.from_bytes(b, "little")


# ---------------------------------------------------------------- references


def ref_mandelbrot(x0: int, y0: int, step: int, w: int, h: int, max_iter: int) -> int:
    """programs/mandelbrot/README.md: Q28 fixed point on wrapping i64, arithmetic >>."""

    def i64(v: int) -> int:
        v &= M64
        return v - (1 << 64) if v >> 63 else v

    four = 4 << 28
    total = 0
    for py in range(h):
        ci = i64(y0 + py * step)
        for px in range(w):
            cr = i64(x0 + px * step)
            zr = zi = n = 0
            while n < max_iter:
                zr2 = i64(zr * zr) >> 28
                zi2 = i64(zi * zi) >> 28
                if i64(zr2 + zi2) > four:
                    break
                zi = i64((i64(zr * zi) >> 27) + ci)
                zr = i64(zr2 - zi2 + cr)
                n += 1
            total += n
    return total & M64


def ref_fnv(rounds: int) -> int:
    """programs/fnv/README.md: FNV-1a over a 1 KiB buffer + xorshift64, per round."""
    buf = bytearray(i % 256 for i in range(1024))
    h = 0xCBF29CE484222325
    for r in range(rounds):
        for b in buf:
            h = ((h ^ b) * 0x100000001B3) & M64
        h ^= (h << 13) & M64
        h ^= h >> 7
        h ^= (h << 17) & M64
        buf[r % 1024] = h & 0xFF
    return h


Q28 = 1 << 28


def test_reference_vectors():
    # spot checks of the references themselves against their READMEs' tables
    assert ref_mandelbrot(-Q28, -Q28 // 2, Q28 // 16, 5, 4, 50) == 161
    assert ref_fnv(0) == 0xCBF29CE484222325
    assert ref_fnv(2) == 12626662911055432244


# ---------------------------------------------------------------- programs


def test_ping(sb):
    pid = deploy(sb, code("ping"), b"whatever")
    for payload, want in [
        (b"PING", b"PONG"),
        (b"hello", b"hello"),
        (b"", b""),
        (bytes(range(256)) * 40, bytes(range(256)) * 40),
    ]:  # > 8 KiB
        reply, rec = call(sb, pid, payload)
        assert (reply.payload, reply.reply_code) == (want, MANUAL), payload[:8]
        assert rec.status == "success"


def test_counter_persists(sb):
    pid = deploy(sb, code("counter"), b"5")
    assert u64(call(sb, pid, b"inc")[0].payload) == 6
    assert u64(call(sb, pid, b"add:10")[0].payload) == 16
    sb.run_block()
    assert u64(call(sb, pid, b"get")[0].payload) == 16
    assert u64(call(sb, pid, f"add:{M64}".encode())[0].payload) == 15  # wraps at 2^64
    before = durable(sb.program_state(pid))
    reply, _ = call(sb, pid, b"dec")
    assert reply.reply_code == codes.ERR_USERSPACE_PANIC
    assert b"counter: bad command" in reply.payload
    assert durable(sb.program_state(pid)) == before
    assert u64(call(sb, pid, b"get")[0].payload) == 15


def test_counter_bad_init(sb):
    pid, init_id = create(sb, code("counter"), b"five")
    assert sb.run_until_reply(init_id).reply_code == codes.ERR_USERSPACE_PANIC
    assert sb.program_state(pid).status == Status.TERMINATED
    assert call(sb, pid, b"get")[0].reply_code == codes.ERR_INIT_FAILURE


def balance_of(actor: bytes) -> bytes:
    return b"\x00" + actor


def transfer(to: bytes, amount: int) -> bytes:
    return b"\x01" + to + amount.to_bytes(16, "little")


def test_token(sb):
    alice, bob = DEFAULT_USER, user("0x" + "b0" * 20)
    pid = deploy(sb, code("token"))

    def bal(who: bytes) -> int:
        return int.from_bytes(call(sb, pid, balance_of(who))[0].payload, "little")

    assert bal(alice) == 1_000_000 and bal(bob) == 0
    assert call(sb, pid, transfer(bob, 100))[0].payload == b"\x00"
    assert (bal(alice), bal(bob)) == (999_900, 100)
    # bob cannot send more than he has: a status byte, not a panic, and nothing moves
    reply, rec = call(sb, pid, transfer(alice, 101), source=bob)
    assert (reply.payload, reply.reply_code, rec.status) == (b"\x01", MANUAL, "success")
    assert (bal(alice), bal(bob)) == (999_900, 100)
    assert call(sb, pid, transfer(alice, 40), source=bob)[0].payload == b"\x00"
    assert (bal(alice), bal(bob)) == (999_940, 60)
    assert int.from_bytes(call(sb, pid, b"\x02")[0].payload, "little") == 1_000_000
    assert call(sb, pid, b"\x07")[0].payload == b"\xff"
    assert call(sb, pid, b"\x01" + bob)[0].payload == b"\xff"


def test_token_custom_supply(sb):
    pid = deploy(sb, code("token"), (10**30).to_bytes(16, "little"))
    reply, _ = call(sb, pid, balance_of(DEFAULT_USER))
    assert int.from_bytes(reply.payload, "little") == 10**30


def test_mandelbrot(sb):
    pid = deploy(sb, code("mandelbrot"))
    reply, _ = call(sb, pid)
    # default job: x0 -2.0, y0 -1.5, step 3/32, 32x32, max_iter 256 (README: 50314)
    assert u64(reply.payload) == ref_mandelbrot(-2 * Q28, -3 * Q28 // 2, 3 * Q28 // 32, 32, 32, 256)
    job = (-Q28 // 3, Q28 // 7, Q28 // 50, 7, 9, 100)
    reply, _ = call(sb, pid, struct.pack("<qqqIII", *job))
    assert u64(reply.payload) == ref_mandelbrot(*job)
    reply, _ = call(sb, pid, b"12345")
    assert reply.reply_code == codes.ERR_USERSPACE_PANIC
    assert b"mandelbrot: bad payload" in reply.payload


def test_fnv(sb):
    pid = deploy(sb, code("fnv"))
    assert u64(call(sb, pid)[0].payload) == ref_fnv(10240)  # the default job
    for rounds in (0, 1, 1025):
        assert u64(call(sb, pid, struct.pack("<I", rounds))[0].payload) == ref_fnv(rounds)
    assert call(sb, pid, b"abc")[0].reply_code == codes.ERR_USERSPACE_PANIC


def test_proxy_round_trip_through_ping(sb):
    ping = deploy(sb, code("ping"))
    proxy = deploy(sb, code("proxy"), ping)
    for payload, want in [(b"PING", b"PONG"), (b"echo me", b"echo me")]:
        mid = sb.send(proxy, payload)
        reply = sb.run_until_reply(mid, max_blocks=10)
        assert (reply.payload, reply.reply_code) == (want, MANUAL)
        assert reply.destination == DEFAULT_USER
        assert sb.dispatches[mid].status == "success"  # the re-run after the wake
    assert sb.program_state(proxy).waitlist == bytes(32)
    # nothing but the replies to the user left the program set
    assert all(m.destination == DEFAULT_USER for m in sb.outgoing)


def test_proxy_reports_target_failure(sb):
    panicker = deploy(sb, code("panicker"))
    proxy = deploy(sb, code("proxy"), panicker)
    mid = sb.send(proxy, b"x")
    reply = sb.run_until_reply(mid, max_blocks=10)
    assert reply.reply_code == codes.ERR_USERSPACE_PANIC
    assert b"proxy: target failed 01000300" in reply.payload


def test_panicker(sb):
    pid = deploy(sb, code("panicker"))
    before = durable(sb.program_state(pid))
    reply, rec = call(sb, pid, b"anything", value=10)
    assert reply.reply_code == codes.ERR_USERSPACE_PANIC == bytes.fromhex("01000300")
    assert reply.payload.startswith(b"panicked at 'boom'") and reply.value == 10
    assert durable(sb.program_state(pid)) == before
    assert rec.status == "trap"


def test_looper_runs_out_of_gas(small_sb):
    pid = deploy(small_sb, code("looper"))
    reply, rec = call(small_sb, pid)
    assert reply.reply_code == codes.ERR_RAN_OUT_OF_GAS == bytes.fromhex("01000000")
    assert rec.gas_burned == SMALL_GAS


def test_membomb(small_sb):
    sb = small_sb
    from gexe.runtime import limits, validate

    pid = deploy(sb, code("membomb"))
    static = validate(code("membomb")).static_pages
    before = durable(sb.program_state(pid))
    assert call(sb, pid)[0].reply_code == codes.ERR_MEMORY_OVERFLOW
    assert call(sb, pid, b"oom")[0].reply_code == codes.ERR_MEMORY_OVERFLOW
    assert durable(sb.program_state(pid)) == before
    counts = [call(sb, pid, b"count")[0].payload for _ in range(2)]
    assert counts[0] == counts[1] == (limits.MAX_PAGES - static).to_bytes(4, "little")
    assert call(sb, pid, b"trap")[0].reply_code == codes.ERR_UNREACHABLE


def test_waiter_wait_and_wake(sb):
    pid = deploy(sb, code("waiter"))
    w = sb.send(pid, b"wait")
    sb.run_block()
    assert sb.dispatches[w].status == "wait" and sb.reply_to(w) is None
    reply, _ = call(sb, pid, b"wake:" + w.hex().encode())
    assert reply.payload == b"ok"
    woke = sb.run_until_reply(w)
    assert woke.payload == b"woke" and woke.reply_code == MANUAL


def test_waiter_deadline(sb):
    pid = deploy(sb, code("waiter"))
    w = sb.send(pid, b"wait:2")
    sb.run_block()
    start = sb.height
    assert sb.reply_to(w) is None
    assert sb.run_until_reply(w).payload == b"woke"
    assert sb.height == start + 2


def test_sender(sb):
    pid = deploy(sb, code("sender"))
    reply, rec = call(sb, pid, OBSERVER + b"hello there")
    assert reply.payload == b"sent"
    (m,) = sb.messages_to(OBSERVER)
    assert (m.payload, m.source, m.value) == (b"hello there", pid, 0)
    assert m.id == outgoing_message_id(rec.message_id, 0)
    assert call(sb, pid, b"short")[0].reply_code == codes.ERR_USERSPACE_PANIC


def test_sender_to_a_program(sb):
    counter = deploy(sb, code("counter"))
    sender = deploy(sb, code("sender"))
    call(sb, sender, counter + b"inc")
    sb.run_until_idle()
    assert u64(call(sb, counter, b"get")[0].payload) == 1


@pytest.mark.parametrize("name", [n for n in programs.names() if n != "bench_kernels"])
def test_every_program_initializes(sb, name):
    init = {"proxy": bytes(32)}.get(name, b"")
    pid, init_id = create(sb, code(name), init)
    assert sb.run_until_reply(init_id).reply_code[0] == 0
    assert sb.program_state(pid).status == Status.ACTIVE

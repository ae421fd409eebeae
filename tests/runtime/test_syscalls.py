"""Every syscall of the Vara.eth set, driven by hand-written WAT programs in a Sandbox.

Each test program writes what the syscalls returned into memory and sends it back,
either as its reply (`$reply_mem`) or, when the reply itself is under test or the
code runs in `handle_reply`, as a message to the OBSERVER user (`$emit`). Expected
values come from Gear's ABI (runtime/ABI.md), never from running the runtime.
"""

from __future__ import annotations

import pytest
from gexe.runtime import DEFAULT_USER, Sandbox, codes, limits, user
from gexe.runtime.codes import SyscallError as E
from gexe.runtime.ids import outgoing_message_id, reply_message_id
from gexe.runtime.state import Status, load_allocations, load_pages
from sandbox_helpers import call, deploy, durable, emitted
from wat import OBSERVER, module

SRC = user("0x" + "ab" * 20)
MANUAL, AUTO = codes.SUCCESS_MANUAL, codes.SUCCESS_AUTO


def u32(n: int) -> bytes:
    return (n & 0xFFFFFFFF).to_bytes(4, "little")


def u32s(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]


def pid_value(dest: bytes, value: int = 0) -> bytes:
    return dest + value.to_bytes(16, "little")


def run_one(sb: Sandbox, code: bytes, payload: bytes = b"", **kw):  # type: ignore[no-untyped-def]
    pid = deploy(sb, code)
    return (pid, *call(sb, pid, payload, **kw))


# ---------------------------------------------------------------- gr_read / gr_size

READ = """
  (call $gr_read (i32.const {at}) (i32.const {n}) (i32.const 0x1004) (i32.const 0x1000))
  (call $reply_mem (i32.const 0x1000) (i32.const 7))"""


@pytest.mark.parametrize(
    ("payload", "at", "n", "err", "data"),
    [
        (b"abcdef", 1, 3, 0, b"bcd"),
        (b"abcdef", 3, 3, 0, b"def"),
        (b"abcdef", 6, 0, 0, b"???"),  # empty read at the end is fine and writes nothing
        (b"abcdef", 1, 0xFFFFFFFF, E.TOO_BIG_READ_LEN, b"???"),  # at + len overflows u32
        (b"abcdef", 0xFFFFFFFF, 1, E.TOO_BIG_READ_LEN, b"???"),
        (b"abcdef", 4, 3, E.READ_WRONG_RANGE, b"???"),  # past the end: nothing written
        (b"abcdef", 7, 0, E.READ_WRONG_RANGE, b"???"),
        (b"", 0, 1, E.READ_WRONG_RANGE, b"???"),
    ],
)
def test_gr_read(sb, payload, at, n, err, data):
    code = module(handle=READ.format(at=at, n=n), data=((0x1004, b"???"),))
    _, reply, _ = run_one(sb, code, payload)
    assert reply.reply_code == MANUAL
    assert reply.payload == u32(err) + data


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)) * 300])
def test_gr_size(sb, payload):
    code = module(
        handle="""
      (call $gr_size (i32.const 0x1000))
      (call $reply_mem (i32.const 0x1000) (i32.const 4))"""
    )
    _, reply, _ = run_one(sb, code, payload)
    assert reply.payload == u32(len(payload))


# ---------------------------------------------------------------- replies

REPLY_TWICE = module(
    handle="""
  (call $gr_reply (i32.const 0x2000) (i32.const 5) (i32.const 0x3000) (i32.const 0x1000))
  (call $gr_reply (i32.const 0x2000) (i32.const 5) (i32.const -1) (i32.const 0x1100))
  (call $emit (i32.const 0x1000) (i32.const 36))
  (call $emit (i32.const 0x1100) (i32.const 36))""",
    data=((0x2000, b"hello"), (0x3000, (40).to_bytes(16, "little"))),
)


def test_gr_reply_payload_value_and_duplicate(sb):
    pid, reply, rec = run_one(sb, REPLY_TWICE, b"", value=100)
    mid = rec.message_id
    assert reply.payload == b"hello" and reply.reply_code == MANUAL
    assert reply.value == 40 and reply.id == reply_message_id(mid)
    assert reply.source == pid and reply.destination == DEFAULT_USER
    first, second = emitted(sb)
    assert first == u32(0) + reply.id
    assert second == u32(E.DUPLICATE_REPLY) + bytes(32)
    # 100 came in, 40 went out with the reply
    assert sb.program_state(pid).balance == 60


def test_gr_reply_not_enough_value(sb):
    # 40 requested, 10 available: the reply fails with 101 and an auto reply follows
    pid, reply, _ = run_one(sb, REPLY_TWICE, b"", value=10)
    assert emitted(sb)[0] == u32(E.NOT_ENOUGH_VALUE) + bytes(32)
    # the second gr_reply (no value) now succeeds: only one reply is ever sent
    assert reply.payload == b"hello" and reply.value == 0 and reply.reply_code == MANUAL
    assert sb.program_state(pid).balance == 10


def test_gr_reply_over_max_payload(sb):
    code = module(
        handle=f"""
      (call $gr_reply (i32.const 0) (i32.const {limits.MAX_PAYLOAD_SIZE + 1}) (i32.const -1)
                      (i32.const 0x1000))
      (call $emit (i32.const 0x1000) (i32.const 4))"""
    )
    _, reply, _ = run_one(sb, code)
    assert emitted(sb) == [u32(E.MAX_MESSAGE_SIZE_EXCEED)]
    assert reply.reply_code == AUTO


def test_gr_reply_push_commit_and_late_access(sb):
    code = module(
        handle="""
      (call $gr_reply_push (i32.const 0x2000) (i32.const 2) (i32.const 0x1000))
      (call $gr_reply_push (i32.const 0x2002) (i32.const 2) (i32.const 0x1004))
      (call $gr_reply_commit (i32.const 0x3000) (i32.const 0x1008))
      (call $gr_reply_push (i32.const 0x2000) (i32.const 1) (i32.const 0x1100))
      (call $gr_reply_commit (i32.const -1) (i32.const 0x1104))
      (call $emit (i32.const 0x1000) (i32.const 44))
      (call $emit (i32.const 0x1100) (i32.const 40))""",
        data=((0x2000, b"abcd"), (0x3000, (3).to_bytes(16, "little"))),
    )
    _, reply, _ = run_one(sb, code, value=5)
    assert reply.payload == b"abcd" and reply.value == 3 and reply.reply_code == MANUAL
    ok, late = emitted(sb)
    assert ok == u32(0) + u32(0) + u32(0) + reply.id
    assert late == u32(E.LATE_ACCESS) + u32(E.DUPLICATE_REPLY) + bytes(32)


def test_reply_push_up_to_the_max_payload(sb):
    # 129 static pages hold a whole 8 MiB payload
    code = module(
        handle=f"""
      (call $gr_reply_push (i32.const 0) (i32.const {limits.MAX_PAYLOAD_SIZE - 1}) (i32.const 0x1000))
      (call $gr_reply_push (i32.const 0) (i32.const 2) (i32.const 0x1004))
      (call $gr_reply_push (i32.const 0) (i32.const 1) (i32.const 0x1008))
      (call $gr_reply_commit (i32.const -1) (i32.const 0x100c))
      (call $emit (i32.const 0x1000) (i32.const 0x30))""",
        pages=129,
    )
    _, reply, _ = run_one(sb, code)
    out = emitted(sb)[0]
    assert u32s(out[:12]) == [0, E.MAX_MESSAGE_SIZE_EXCEED, 0]
    assert out[12:48] == u32(0) + reply.id
    assert len(reply.payload) == limits.MAX_PAYLOAD_SIZE and reply.reply_code == MANUAL


def test_gr_reply_commit_without_push_is_empty(sb):
    code = module(handle="(call $gr_reply_commit (i32.const -1) (i32.const 0x1000))")
    _, reply, _ = run_one(sb, code, b"ignored")
    assert reply.payload == b"" and reply.reply_code == MANUAL


def test_gr_reply_input_and_push_input(sb):
    code = module(
        handle="""
      (call $gr_reply_push_input (i32.const 0) (i32.const 5) (i32.const 0x1000))
      (call $gr_reply_push_input (i32.const 11) (i32.const 0) (i32.const 0x1004))
      (call $gr_reply_push_input (i32.const 6) (i32.const 6) (i32.const 0x1008))
      (call $gr_reply_input (i32.const 6) (i32.const 5) (i32.const -1) (i32.const 0x100c))
      (call $gr_reply_push_input (i32.const 0) (i32.const 1) (i32.const 0x1030))
      (call $emit (i32.const 0x1000) (i32.const 0x34))"""
    )
    _, reply, _ = run_one(sb, code, b"hello world")
    assert reply.payload == b"helloworld" and reply.reply_code == MANUAL
    (out,) = emitted(sb)
    assert u32s(out[:12]) == [
        0,
        E.OUT_OF_BOUNDS_INPUT_SLICE_OFFSET,
        E.OUT_OF_BOUNDS_INPUT_SLICE_LENGTH,
    ]
    assert out[12:48] == u32(0) + reply.id
    assert u32s(out[48:]) == [E.LATE_ACCESS]


@pytest.mark.parametrize(
    ("payload", "offset", "length", "err"),
    [
        (b"", 0, 0, E.OUT_OF_BOUNDS_INPUT_SLICE_OFFSET),  # any range of an empty payload
        (b"abc", 3, 0, E.OUT_OF_BOUNDS_INPUT_SLICE_OFFSET),
        (b"abc", 0xFFFFFFFF, 1, E.OUT_OF_BOUNDS_INPUT_SLICE_OFFSET),
        (b"abc", 2, 2, E.OUT_OF_BOUNDS_INPUT_SLICE_LENGTH),
        (b"abc", 1, 0xFFFFFFFF, E.OUT_OF_BOUNDS_INPUT_SLICE_LENGTH),
        (b"abc", 1, 2, 0),
    ],
)
def test_gr_reply_input_ranges(sb, payload, offset, length, err):
    code = module(
        handle=f"""
      (call $gr_reply_input (i32.const {offset}) (i32.const {length}) (i32.const -1)
                            (i32.const 0x1000))
      (call $emit (i32.const 0x1000) (i32.const 4))"""
    )
    _, reply, _ = run_one(sb, code, payload)
    assert emitted(sb) == [u32(err)]
    if err:
        assert reply.reply_code == AUTO and reply.payload == b""
    else:
        assert reply.reply_code == MANUAL and reply.payload == payload[offset : offset + length]


def test_reply_to_and_reply_code_outside_a_reply(sb):
    code = module(
        handle="""
      (call $gr_reply_to (i32.const 0x1000))
      (call $gr_reply_code (i32.const 0x1024))
      (call $reply_mem (i32.const 0x1000) (i32.const 0x2c))""",
        data=((0x1000, b"\xaa" * 0x2C),),
    )
    _, reply, _ = run_one(sb, code)
    # the whole result struct is written: code 105 and a zeroed hash / reply code
    assert reply.payload == u32(E.NO_REPLY_CONTEXT) + bytes(32) + u32(E.NO_REPLY_CONTEXT) + bytes(4)


# A program that sends one message to OBSERVER in `handle` and, in `handle_reply`,
# reports what every reply-related syscall says.
REPLY_PROBE = module(
    handle="(call $emit (i32.const 0) (i32.const 0))",
    handle_reply="""
      (call $gr_reply_to (i32.const 0x1000))                                  ;; 36
      (call $gr_reply_code (i32.const 0x1024))                                ;; 8
      (call $gr_reply (i32.const 0) (i32.const 1) (i32.const -1) (i32.const 0x102c))  ;; 36
      (call $gr_reply_push (i32.const 0) (i32.const 1) (i32.const 0x1050))    ;; 4
      (call $gr_reply_commit (i32.const -1) (i32.const 0x1054))               ;; 36
      (call $gr_reply_push_input (i32.const 0) (i32.const 1) (i32.const 0x1078))  ;; 4
      (call $gr_reply_input (i32.const 0) (i32.const 1) (i32.const -1) (i32.const 0x107c))
      (call $gr_source (i32.const 0x10a0))                                    ;; 32
      (call $gr_value (i32.const 0x10c0))                                     ;; 16
      (call $gr_size (i32.const 0x10d0))                                      ;; 4
      (call $gr_read (i32.const 0) (i32.const 5) (i32.const 0x10d4) (i32.const 0x10e0))
      (call $emit (i32.const 0x1000) (i32.const 0xe4))""",
)


def test_handle_reply_context_from_user_reply(sb):
    pid, reply, rec = run_one(sb, REPLY_PROBE)
    assert reply.reply_code == AUTO
    sent_id = outgoing_message_id(rec.message_id, 0)
    assert [m.id for m in sb.messages_to(OBSERVER)] == [sent_id]
    sb.send_reply(pid, sent_id, b"thanks", source=SRC, value=0)
    sb.run_block()
    assert sb.dispatches[reply_message_id(sent_id)].status == "success"
    out = emitted(sb)[1]
    assert out[:36] == u32(0) + sent_id  # gr_reply_to: the message this reply answers
    assert out[36:44] == u32(0) + MANUAL  # gr_reply_code: the user's reply is manual
    no_entry = E.INCORRECT_ENTRY_FOR_REPLY
    assert out[0x2C:0x50] == u32(no_entry) + bytes(32)  # no replying in handle_reply
    assert u32s(out[0x50:0x54]) == [no_entry]
    assert out[0x54:0x78] == u32(no_entry) + bytes(32)
    assert u32s(out[0x78:0x7C]) == [no_entry]
    assert out[0x7C:0xA0] == u32(no_entry) + bytes(32)
    assert out[0xA0:0xC0] == SRC
    assert out[0xC0:0xD0] == bytes(16)
    assert u32s(out[0xD0:0xD4]) == [6]
    assert out[0xD4:0xE4] == b"thank" + bytes(7) + u32(0)
    # no reply is ever sent for a reply
    assert not [m for m in sb.outgoing if m.is_reply and m.reply_to == reply_message_id(sent_id)]


def test_handle_reply_sees_error_reply_of_another_program(sb):
    panicker = deploy(
        sb,
        module(handle="(call $gr_panic (i32.const 0x10) (i32.const 4))", data=((0x10, b"boom"),)),
    )
    forwarder = deploy(
        sb,
        module(
            handle="""
          (call $gr_read (i32.const 0) (i32.const 32) (i32.const 0x3000) (i32.const 0x1000))
          (call $gr_send (i32.const 0x3000) (i32.const 0) (i32.const 0) (i32.const 0)
                         (i32.const 0x1000))""",
            handle_reply="""
          (call $gr_reply_to (i32.const 0x1000))
          (call $gr_reply_code (i32.const 0x1024))
          (call $gr_read (i32.const 0) (i32.const 4) (i32.const 0x102c) (i32.const 0x1030))
          (call $gr_source (i32.const 0x1034))
          (call $emit (i32.const 0x1000) (i32.const 0x54))""",
        ),
    )
    mid = sb.send(forwarder, panicker)
    sb.run_until_idle()
    sent = outgoing_message_id(mid, 0)
    (out,) = emitted(sb)
    assert out[:36] == u32(0) + sent
    assert out[36:44] == u32(0) + codes.ERR_USERSPACE_PANIC
    assert out[44:48] == b"boom" and u32s(out[48:52]) == [0]
    assert out[52:84] == panicker


# ---------------------------------------------------------------- sending

SEND_ALL = module(
    handle="""
  (call $gr_send (i32.const 0x3000) (i32.const 0x2000) (i32.const 3) (i32.const 0)
                 (i32.const 0x1000))                                                ;; 36
  (call $gr_send_init (i32.const 0x1024))                                           ;; 8
  (call $gr_send_push (i32.load (i32.const 0x1028)) (i32.const 0x2003) (i32.const 2)
                      (i32.const 0x102c))                                           ;; 4
  (call $gr_send_push_input (i32.load (i32.const 0x1028)) (i32.const 0) (i32.const 2)
                            (i32.const 0x1030))                                     ;; 4
  (call $gr_send_commit (i32.load (i32.const 0x1028)) (i32.const 0x3000) (i32.const 0)
                        (i32.const 0x1034))                                         ;; 36
  (call $gr_send_push (i32.load (i32.const 0x1028)) (i32.const 0x2000) (i32.const 1)
                      (i32.const 0x1058))                                           ;; 4
  (call $gr_send_commit (i32.load (i32.const 0x1028)) (i32.const 0x3000) (i32.const 0)
                        (i32.const 0x105c))                                         ;; 36
  (call $gr_send_push (i32.const 7) (i32.const 0x2000) (i32.const 1) (i32.const 0x1080))
  (call $gr_send_commit (i32.const 7) (i32.const 0x3000) (i32.const 0) (i32.const 0x1084))
  (call $gr_send_push_input (i32.const 7) (i32.const 0) (i32.const 1) (i32.const 0x10a8))
  (call $gr_send_input (i32.const 0x3000) (i32.const 1) (i32.const 2) (i32.const 0)
                       (i32.const 0x10ac))                                          ;; 36
  (call $gr_send_input (i32.const 0x3000) (i32.const 9) (i32.const 1) (i32.const 0)
                       (i32.const 0x10d0))                                          ;; 36
  (call $reply_mem (i32.const 0x1000) (i32.const 0xf4))""",
    data=((0x2000, b"abcde"), (0x3000, pid_value(OBSERVER))),
)


def test_send_family(sb):
    pid, reply, rec = run_one(sb, SEND_ALL, b"xyz")
    mid = rec.message_id
    ids = [outgoing_message_id(mid, n) for n in range(3)]  # nonce: shared by all sends
    out = reply.payload
    assert out[:36] == u32(0) + ids[0]
    assert out[36:44] == u32(0) + u32(1)  # handle 1: gr_send used nonce 0
    assert u32s(out[44:52]) == [0, 0]
    assert out[52:88] == u32(0) + ids[1]
    assert u32s(out[88:92]) == [E.LATE_ACCESS]
    assert out[92:128] == u32(E.LATE_ACCESS) + bytes(32)
    assert u32s(out[128:132]) == [E.OUT_OF_BOUNDS]
    assert out[132:168] == u32(E.OUT_OF_BOUNDS) + bytes(32)
    assert u32s(out[168:172]) == [E.OUT_OF_BOUNDS]
    assert out[172:208] == u32(0) + ids[2]
    assert out[208:244] == u32(E.OUT_OF_BOUNDS_INPUT_SLICE_OFFSET) + bytes(32)
    sent = list(sb.messages_to(OBSERVER))
    assert [(m.id, m.payload, m.source, m.value) for m in sent] == [
        (ids[0], b"abc", pid, 0),
        (ids[1], b"dexy", pid, 0),
        (ids[2], b"yz", pid, 0),
    ]


def test_send_limit_1024_per_execution(sb):
    code = module(
        handle="""
      (local $i i32)
      (loop $l
        (call $gr_send_init (i32.const 0x1000))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 1024))))
      (call $gr_send_init (i32.const 0x1008))
      (call $gr_send (i32.const 0x3000) (i32.const 0) (i32.const 0) (i32.const 0)
                     (i32.const 0x1010))
      (call $reply_mem (i32.const 0x1000) (i32.const 0x34))""",
        data=((0x3000, pid_value(OBSERVER)),),
    )
    _, reply, _ = run_one(sb, code)
    out = reply.payload
    assert u32s(out[:8]) == [0, 1023]
    assert u32s(out[8:16]) == [E.OUTGOING_MESSAGES_AMOUNT_LIMIT_EXCEEDED, 0]
    assert out[16:52] == u32(E.OUTGOING_MESSAGES_AMOUNT_LIMIT_EXCEEDED) + bytes(32)
    assert emitted(sb) == []


def test_send_value(sb):
    # 0x3000: to OBSERVER with value 3; committed through gr_send and a handle
    code = module(
        handle="""
      (call $gr_value_available (i32.const 0x1000))
      (call $gr_send (i32.const 0x3000) (i32.const 0) (i32.const 0) (i32.const 0)
                     (i32.const 0x1010))
      (call $gr_send_init (i32.const 0x1040))
      (call $gr_send_commit (i32.load (i32.const 0x1044)) (i32.const 0x3000) (i32.const 0)
                            (i32.const 0x1050))
      (call $gr_value_available (i32.const 0x1080))
      (call $reply_mem (i32.const 0x1000) (i32.const 0x90))""",
        data=((0x3000, pid_value(OBSERVER, 3)),),
    )
    pid = deploy(sb, code)
    reply, _ = call(sb, pid, value=4)  # 4 available: the first send works, the second not
    out = reply.payload
    assert int.from_bytes(out[:16], "little") == 4
    assert u32s(out[0x10:0x14]) == [0]
    assert u32s(out[0x50:0x54]) == [E.NOT_ENOUGH_VALUE]
    assert int.from_bytes(out[0x80:0x90], "little") == 1
    assert [m.value for m in sb.messages_to(OBSERVER)] == [3]
    assert sb.program_state(pid).balance == 1
    reply, _ = call(sb, pid, value=5)  # balance 1 + 5: both sends work
    out = reply.payload
    assert int.from_bytes(out[:16], "little") == 6
    assert u32s(out[0x50:0x54]) == [0]
    assert int.from_bytes(out[0x80:0x90], "little") == 0
    assert sb.program_state(pid).balance == 0


def test_send_push_over_max_payload(sb):
    code = module(
        handle=f"""
      (call $gr_send_init (i32.const 0x1000))
      (call $gr_send_push (i32.const 0) (i32.const 0) (i32.const {limits.MAX_PAYLOAD_SIZE + 1})
                          (i32.const 0x1008))
      (call $gr_send (i32.const 0x3000) (i32.const 0) (i32.const {limits.MAX_PAYLOAD_SIZE + 1})
                     (i32.const 0) (i32.const 0x100c))
      (call $reply_mem (i32.const 0x1008) (i32.const 8))""",
        data=((0x3000, pid_value(OBSERVER)),),
    )
    _, reply, _ = run_one(sb, code)
    assert u32s(reply.payload) == [E.MAX_MESSAGE_SIZE_EXCEED] * 2


def test_value_is_checked_before_the_message_context(sb):
    """Gear charges an outgoing value before the message context looks at the reply
    state or the handle, so NotEnoughValue wins over DuplicateReply, OutOfBounds and
    IncorrectEntryForReply (core/processor/src/ext.rs: reply_commit, send_commit)."""
    code = module(
        handle="""
          (call $gr_reply (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 0x1000))
          (call $gr_reply (i32.const 0) (i32.const 0) (i32.const 0x3200) (i32.const 0x1000))
          (call $gr_reply_commit (i32.const 0x3200) (i32.const 0x1024))
          (call $gr_send_commit (i32.const 9) (i32.const 0x3100) (i32.const 0) (i32.const 0x1048))
          (call $gr_send_commit (i32.const 9) (i32.const 0x3000) (i32.const 0) (i32.const 0x106c))
          (call $emit (i32.const 0x1000) (i32.const 0x90))""",
        handle_reply="""
          (call $gr_reply (i32.const 0) (i32.const 0) (i32.const 0x3200) (i32.const 0x1000))
          (call $gr_reply (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 0x1024))
          (call $emit (i32.const 0x1000) (i32.const 0x48))""",
        data=(
            (0x3000, pid_value(OBSERVER)),
            (0x3100, pid_value(OBSERVER, 5)),
            (0x3200, (5).to_bytes(16, "little")),
        ),
    )
    pid, reply, rec = run_one(sb, code)
    out = emitted(sb)[0]
    assert [u32s(out[i : i + 4])[0] for i in range(0, 0x90, 0x24)] == [
        E.NOT_ENOUGH_VALUE,
        E.NOT_ENOUGH_VALUE,
        E.NOT_ENOUGH_VALUE,
        E.OUT_OF_BOUNDS,
    ]
    sent = outgoing_message_id(rec.message_id, 0)  # the emit
    sb.send_reply(pid, sent, b"")
    sb.run_block()
    out = emitted(sb)[-1]
    assert u32s(out[0:4] + out[0x24:0x28]) == [E.NOT_ENOUGH_VALUE, E.INCORRECT_ENTRY_FOR_REPLY]


SYSTEM = b"gear" * 8  # Gear's system actor


@pytest.mark.parametrize(
    "snippet",
    [
        "(call $gr_send (i32.const 0x3000) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0x1000))",
        "(call $gr_send_input (i32.const 0x3000) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0x1000))",
        "(call $gr_send_init (i32.const 0x1000)) "
        "(call $gr_send_commit (i32.const 0) (i32.const 0x3000) (i32.const 0) (i32.const 0x1000))",
    ],
    ids=["gr_send", "gr_send_input", "gr_send_commit"],
)
def test_sending_to_the_system_actor_is_forbidden(sb, snippet):
    code = module(handle=snippet, data=((0x3000, pid_value(SYSTEM)),))
    _, reply, rec = run_one(sb, code, b"x")
    assert reply.reply_code == codes.ERR_BACKEND and rec.status == "trap"
    assert not [m for m in sb.outgoing if m.destination == SYSTEM]


def test_delayed_send_to_a_program(sb):
    target = deploy(sb, module(handle="(call $gr_message_id (i32.const 0x4000))"))
    code = module(
        handle="""
      (call $gr_read (i32.const 0) (i32.const 32) (i32.const 0x3000) (i32.const 0x1000))
      (call $gr_send (i32.const 0x3000) (i32.const 0) (i32.const 0) (i32.const 3)
                     (i32.const 0x1000))"""
    )
    pid, _, rec = run_one(sb, code, target)
    sent_at = sb.height
    sent = outgoing_message_id(rec.message_id, 0)
    while sent not in sb.dispatches:
        sb.run_block()
    assert sb.height == sent_at + 3
    assert sb.dispatches[sent].program_id == target


# ---------------------------------------------------------------- message and block info

INFO = module(
    handle="""
  (call $gr_source (i32.const 0x1000))
  (call $gr_message_id (i32.const 0x1020))
  (call $gr_program_id (i32.const 0x1040))
  (call $gr_value (i32.const 0x1060))
  (call $gr_block_height (i32.const 0x1070))
  (call $gr_block_timestamp (i32.const 0x1074))
  (call $reply_mem (i32.const 0x1000) (i32.const 0x7c))"""
)


def test_message_and_block_info(sb):
    pid = deploy(sb, INFO)
    mid = sb.send(pid, b"", source=SRC, value=123456789)
    sb.run_block()
    reply = sb.reply_to(mid)
    out = reply.payload
    assert out[:32] == SRC and reply.destination == SRC
    assert out[32:64] == mid
    assert out[64:96] == pid
    assert int.from_bytes(out[96:112], "little") == 123456789
    assert u32s(out[112:116]) == [sb.height]
    assert int.from_bytes(out[116:124], "little") == sb.timestamp


def test_gas_available_decreases(sb):
    code = module(
        handle="""
      (local $i i32)
      (call $gr_gas_available (i32.const 0x1000))
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 10000))))
      (call $gr_gas_available (i32.const 0x1008))
      (call $reply_mem (i32.const 0x1000) (i32.const 16))"""
    )
    _, reply, rec = run_one(sb, code)
    g1 = int.from_bytes(reply.payload[:8], "little")
    g2 = int.from_bytes(reply.payload[8:], "little")
    assert limits.MAX_GAS_PER_MESSAGE > g1 > g2 + 10000  # each iteration costs fuel
    assert rec.gas_burned > 10000


def test_env_vars_v1(sb):
    code = module(
        handle="""
      (call $gr_env_vars (i32.const 1) (i32.const 0x1000))
      (call $reply_mem (i32.const 0x1000) (i32.const 56))""",
        data=((0x1000, b"\xaa" * 56),),
    )
    _, reply, _ = run_one(sb, code)
    # Vara.eth v1 layout (ABI.md section 6): performance multiplier u32, existential
    # deposit u128, mailbox threshold u64, gas_per_value u64, value_per_gas u128
    expected = (
        (100).to_bytes(4, "little")
        + bytes(16)
        + bytes(8)
        + bytes(8)
        + limits.VALUE_PER_GAS.to_bytes(16, "little")
    )
    assert len(expected) == 52
    assert reply.payload == expected + b"\xaa" * 4  # exactly 52 bytes written


@pytest.mark.parametrize("version", [0, 2, -1])
def test_env_vars_other_version_is_backend_error(sb, version):
    code = module(handle=f"(call $gr_env_vars (i32.const {version}) (i32.const 0x1000))")
    _, reply, rec = run_one(sb, code)
    assert reply.reply_code == codes.ERR_BACKEND and rec.status == "trap"


def test_debug_recorded(sb):
    code = module(
        handle="""
      (call $gr_debug (i32.const 0x10) (i32.const 6))
      (call $gr_debug (i32.const 0x20) (i32.const 0))""",
        data=((0x10, "héllo".encode()),),
    )
    _, reply, rec = run_one(sb, code)
    assert reply.reply_code == AUTO
    assert rec.debug == ("héllo", "")


@pytest.mark.parametrize(
    ("data", "length"),
    [
        (b"\xff\xfe", 2),  # not UTF-8
        ("é".encode()[:1], 1),  # a truncated UTF-8 sequence
        (b"", limits.MAX_DEBUG_SIZE + 1),  # too long
    ],
)
def test_debug_rejects(sb, data, length):
    code = module(
        handle=f"(call $gr_debug (i32.const 0x10) (i32.const {length}))",
        data=((0x10, data),) if data else (),
    )
    _, reply, rec = run_one(sb, code)
    assert reply.reply_code == codes.ERR_BACKEND and rec.status == "trap"


# ---------------------------------------------------------------- ending a dispatch


@pytest.mark.parametrize("text", [b"oh no", b"", bytes(range(256))])
def test_panic(sb, text):
    code = module(
        handle=f"(call $gr_panic (i32.const 0x10) (i32.const {len(text)}))",
        data=((0x10, text),) if text else (),
    )
    pid, reply, rec = run_one(sb, code, value=77)
    assert reply.reply_code == codes.ERR_USERSPACE_PANIC == bytes.fromhex("01000300")
    assert reply.payload == text
    assert reply.value == 77  # the value goes back with the error reply
    assert sb.program_state(pid).balance == 0
    assert rec.status == "trap"


def test_oom_panic(sb):
    code = module(handle="(call $gr_oom_panic)")
    _, reply, _ = run_one(sb, code)
    assert reply.reply_code == codes.ERR_MEMORY_OVERFLOW == bytes.fromhex("01000100")
    assert reply.payload == b""


def test_exit(sb):
    heir = user("0x" + "11" * 20)
    code = module(
        handle="""
      (if (i32.eq (call $cmd) (i32.const 0x78))  ;; "x"
        (then (call $gr_exit (i32.const 0x3000))))
      (call $reply_mem (i32.const 0) (i32.const 2))""",
        data=((0x3000, heir), (0, b"ok")),
    )
    pid = deploy(sb, code)
    assert call(sb, pid, b"a")[0].payload == b"ok"
    reply, rec = call(sb, pid, b"x", value=5)
    assert rec.status == "exit"
    assert reply.reply_code == AUTO and reply.payload == b""  # exiting is a success
    st = sb.program_state(pid)
    assert st.status == Status.EXITED and st.inheritor == heir
    reply, rec = call(sb, pid, b"a", value=9)
    assert reply.reply_code == codes.ERR_PROGRAM_EXITED == bytes.fromhex("01020000")
    assert reply.payload == heir and reply.value == 9
    assert rec.status == "refused"


def test_leave_auto_replies_and_keeps_memory(sb):
    code = module(
        handle="""
      (if (i32.eq (call $cmd) (i32.const 0x6c))  ;; "l": write, then leave
        (then (i32.store (i32.const 0x4000) (i32.const 0x2a))
              (call $gr_leave)))
      (call $reply_mem (i32.const 0x4000) (i32.const 4))"""
    )
    pid = deploy(sb, code)
    reply, rec = call(sb, pid, b"l")
    assert rec.status == "success"
    assert reply.reply_code == AUTO and reply.payload == b""
    assert call(sb, pid, b"r")[0].payload == u32(0x2A)


# ---------------------------------------------------------------- waiting and waking


def waiter(syscall: str, blocks: int) -> bytes:
    """First run: emit, set a flag, wait. Re-run: emit again, reply with its message id."""
    return module(
        handle=f"""
      (call $emit (i32.const 0) (i32.const 0))
      (if (i32.eqz (i32.load (i32.const 0x4000)))
        (then (i32.store (i32.const 0x4000) (i32.const 1))
              (call ${syscall} (i32.const {blocks}))))
      (i32.store (i32.const 0x4000) (i32.const 0))
      (call $gr_message_id (i32.const 0x1000))
      (call $reply_mem (i32.const 0x1000) (i32.const 32))"""
    )


@pytest.mark.parametrize("syscall", ["gr_wait_for", "gr_wait_up_to"])
def test_wait_until_deadline(sb, syscall):
    pid = deploy(sb, waiter(syscall, 3))
    mid = sb.send(pid, b"")
    sb.run_block()
    start = sb.height
    assert sb.dispatches[mid].status == "wait"
    assert sb.reply_to(mid) is None
    st = sb.program_state(pid)
    assert st.waitlist != bytes(32) and st.queue == bytes(32)
    for _ in range(2):
        sb.run_block()
        assert sb.reply_to(mid) is None
    sb.run_block()
    assert sb.height == start + 3
    reply = sb.reply_to(mid)
    assert reply is not None and reply.payload == mid  # same message id on the re-run
    # what was sent before waiting was kept, and the re-run continued the send nonce
    assert [m.id for m in sb.messages_to(OBSERVER)] == [
        outgoing_message_id(mid, 0),
        outgoing_message_id(mid, 1),
    ]
    assert sb.program_state(pid).waitlist == bytes(32)


@pytest.mark.parametrize("syscall", ["gr_wait_for", "gr_wait_up_to"])
def test_wait_zero_duration_is_backend_error(sb, syscall):
    pid, reply, rec = run_one(sb, waiter(syscall, 0))
    assert reply.reply_code == codes.ERR_BACKEND and rec.status == "trap"
    assert sb.program_state(pid).waitlist == bytes(32)


def test_wait_after_reply_is_backend_error(sb):
    code = module(
        handle="""
      (call $gr_reply (i32.const 0) (i32.const 2) (i32.const -1) (i32.const 0x1000))
      (call $gr_wait_for (i32.const 5))"""
    )
    pid, reply, rec = run_one(sb, code)
    assert reply.reply_code == codes.ERR_BACKEND and reply.payload == b""
    assert sb.program_state(pid).waitlist == bytes(32)


WAKER = module(
    handle="""
  (local $c i32)
  (local.set $c (call $cmd))
  (if (i32.eq (local.get $c) (i32.const 0x77))  ;; "w": remember my id and wait
    (then
      (if (i32.load (i32.const 0x4100))
        (then (i32.store (i32.const 0x4100) (i32.const 0))
              (call $reply_mem (i32.const 0x10) (i32.const 4))  ;; "woke"
              (return)))
      (i32.store (i32.const 0x4100) (i32.const 1))
      (call $gr_message_id (i32.const 0x4000))
      (call $gr_wait_for (i32.const 1000))))
  (if (i32.eq (local.get $c) (i32.const 0x6b))  ;; "k": wake it, twice
    (then
      (call $gr_wake (i32.const 0x4000) (i32.const 0) (i32.const 0x1000))
      (call $gr_wake (i32.const 0x4000) (i32.const 0) (i32.const 0x1004))
      (call $reply_mem (i32.const 0x1000) (i32.const 8))
      (return)))
  ;; anything else: wake an id nobody waits with
  (call $gr_wake (i32.const 0x20) (i32.const 0) (i32.const 0x1000))
  (call $reply_mem (i32.const 0x1000) (i32.const 4))""",
    data=((0x10, b"woke"), (0x20, b"\x5a" * 32)),
)


def test_wake(sb):
    pid = deploy(sb, WAKER)
    w = sb.send(pid, b"w")
    sb.run_block()
    assert sb.dispatches[w].status == "wait" and sb.reply_to(w) is None
    reply, _ = call(sb, pid, b"u")  # unknown id: no error, nothing happens
    assert u32s(reply.payload) == [0]
    sb.run_block()
    assert sb.reply_to(w) is None
    assert sb.program_state(pid).waitlist != bytes(32)
    reply, _ = call(sb, pid, b"k")
    assert u32s(reply.payload) == [0, E.DUPLICATE_WAKING]
    woke = sb.run_until_reply(w)
    assert woke.payload == b"woke" and woke.reply_code == MANUAL
    assert sb.program_state(pid).waitlist == bytes(32)


def test_wake_with_delay(sb):
    code = module(
        handle="""
      (if (i32.eq (call $cmd) (i32.const 0x64))  ;; "d": wake the waiting one in 2 blocks
        (then (call $gr_wake (i32.const 0x4000) (i32.const 2) (i32.const 0x1000))
              (return)))
      (if (i32.load (i32.const 0x4100))
        (then (call $reply_mem (i32.const 0x10) (i32.const 4)) (return)))
      (i32.store (i32.const 0x4100) (i32.const 1))
      (call $gr_message_id (i32.const 0x4000))
      (call $gr_wait_for (i32.const 1000))""",
        data=((0x10, b"woke"),),
    )
    pid = deploy(sb, code)
    w = sb.send(pid, b"w")
    sb.run_block()
    call(sb, pid, b"d")
    woken_at = sb.height
    sb.run_block()
    assert sb.reply_to(w) is None
    assert sb.run_until_reply(w).payload == b"woke"
    assert sb.height == woken_at + 2


# ---------------------------------------------------------------- memory management

ALLOC_SEQ = [  # (call, expected result) with 2 static pages
    ("(call $alloc (i32.const 1))", 2),
    ("(call $alloc (i32.const 2))", 3),
    ("(call $free (i32.const 2))", 0),
    ("(call $free (i32.const 2))", 1),  # not allocated any more
    ("(call $alloc (i32.const 1))", 2),  # first fit: the gap at 2
    ("(call $alloc (i32.const 2))", 5),  # 3..4 taken
    ("(call $free_range (i32.const 3) (i32.const 4))", 0),  # inclusive range
    ("(call $alloc (i32.const 2))", 3),
    ("(call $free (i32.const 0))", 1),  # a static page is not in the heap
    ("(call $free (i32.const 100))", 1),
    ("(call $free_range (i32.const 4) (i32.const 3))", 1),  # start > end
    ("(call $free_range (i32.const 0) (i32.const 1))", 1),  # outside the heap
    (f"(call $alloc (i32.const {limits.MAX_PAGES}))", -1),  # no room
    ("(call $alloc (i32.const -1))", -1),
    ("(call $alloc (i32.const 0))", 2),  # Gear's legacy answer: the heap start
]


def test_alloc_free_sequence(sb):
    body = "".join(
        f"(i32.store (i32.const {0x1000 + 4 * i}) {c})\n" for i, (c, _) in enumerate(ALLOC_SEQ)
    )
    body += f"(call $reply_mem (i32.const 0x1000) (i32.const {4 * len(ALLOC_SEQ)}))"
    pid, reply, _ = run_one(sb, module(handle=body))
    got = [v - (1 << 32) if v >= 1 << 31 else v for v in u32s(reply.payload)]
    assert got == [want for _, want in ALLOC_SEQ]
    st = sb.program_state(pid)
    assert load_allocations(sb.storage, st.allocations) == {2, 3, 4, 5, 6}


def test_allocated_memory_persists_across_messages(sb):
    code = module(
        handle="""
      (if (i32.eq (call $cmd) (i32.const 0x61))  ;; "a": allocate, write, remember
        (then
          (i32.store (i32.const 0x4000) (call $alloc (i32.const 1)))
          (i32.store (i32.add (i32.mul (i32.load (i32.const 0x4000)) (i32.const 0x10000))
                              (i32.const 100))
                     (i32.const 0xdeadbeef))))
      (i32.store (i32.const 0x1000)
        (i32.load (i32.add (i32.mul (i32.load (i32.const 0x4000)) (i32.const 0x10000))
                           (i32.const 100))))
      (call $reply_mem (i32.const 0x1000) (i32.const 4))"""
    )
    pid = deploy(sb, code)
    assert u32s(call(sb, pid, b"a")[0].payload) == [0xDEADBEEF]
    sb.run_block()
    assert u32s(call(sb, pid, b"r")[0].payload) == [0xDEADBEEF]  # a new block, new instance
    st = sb.program_state(pid)
    assert load_allocations(sb.storage, st.allocations) == {2}
    assert st.pages != bytes(32)


def test_alloc_bomb_then_oom_panic(small_sb):
    sb = small_sb
    code = module(
        handle="""
      (local $n i32)
      (block $done
        (loop $more
          (br_if $done (i32.eq (call $alloc (i32.const 1)) (i32.const -1)))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (br $more)))
      (if (i32.eq (call $cmd) (i32.const 0x63))  ;; "c": report the count, keep the pages
        (then (i32.store (i32.const 0x1000) (local.get $n))
              (call $reply_mem (i32.const 0x1000) (i32.const 4))
              (return)))
      (call $gr_oom_panic)"""
    )
    pid = deploy(sb, code)
    before = sb.program_state(pid)
    reply, _ = call(sb, pid)
    assert reply.reply_code == codes.ERR_MEMORY_OVERFLOW
    assert sb.program_state(pid).allocations == before.allocations == bytes(32)
    reply, _ = call(sb, pid, b"c")
    assert u32s(reply.payload) == [limits.MAX_PAGES - 2]
    allocs = load_allocations(sb.storage, sb.program_state(pid).allocations)
    assert allocs == set(range(2, limits.MAX_PAGES))


def test_alloc_without_heap(sb):
    # static memory already at the maximum: no heap at all, even alloc(0) fails
    code = module(
        handle="""
      (i32.store (i32.const 0x1000) (call $alloc (i32.const 1)))
      (i32.store (i32.const 0x1004) (call $alloc (i32.const 0)))
      (i32.store (i32.const 0x1008) (call $free (i32.const 5)))
      (call $reply_mem (i32.const 0x1000) (i32.const 12))""",
        pages=limits.MAX_PAGES,
    )
    _, reply, _ = run_one(sb, code)
    assert u32s(reply.payload) == [0xFFFFFFFF, 0xFFFFFFFF, 1]


def test_stack_region_is_not_persisted(sb):
    # below __gear_stack_end (page 0 here) memory is scratch: Gear never stores it
    code = module(
        handle="""
      (if (i32.eq (call $cmd) (i32.const 0x77))  ;; "w": write below and above the stack end
        (then (i32.store (i32.const 0x100) (i32.const 1))
              (i32.store (i32.const 0x10100) (i32.const 2))
              (return)))
      (i32.store (i32.const 0x10000) (i32.load (i32.const 0x100)))
      (i32.store (i32.const 0x10004) (i32.load (i32.const 0x10100)))
      (call $gr_reply (i32.const 0x10000) (i32.const 8) (i32.const -1) (i32.const 0x10010))""",
        stack_end=1,
    )
    pid = deploy(sb, code)
    call(sb, pid, b"w")
    sb.run_block()
    assert u32s(call(sb, pid, b"r")[0].payload) == [0, 2]
    assert all(gp >= 4 for gp in load_pages(sb.storage, sb.program_state(pid).pages))


# ---------------------------------------------------------------- out-of-bounds pointers

# Memory is 3 pages (0x30000 bytes) when the bad call runs: 2 static + 1 allocated.
OOB_CALLS = {
    "gr_read buf": "(call $gr_read (i32.const 0) (i32.const 2) (i32.const 0x2ffff) (i32.const 0x1000))",
    "gr_read err": "(call $gr_read (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0x2fffd))",
    "gr_size": "(call $gr_size (i32.const 0x2fffd))",
    "gr_reply payload": "(call $gr_reply (i32.const 0x2fff0) (i32.const 0x11) (i32.const -1) (i32.const 0))",
    "gr_reply payload wraps": "(call $gr_reply (i32.const -16) (i32.const 32) (i32.const -1) (i32.const 0))",
    "gr_reply value": "(call $gr_reply (i32.const 0) (i32.const 1) (i32.const 0x2fff8) (i32.const 0))",
    "gr_reply result": "(call $gr_reply (i32.const 0) (i32.const 1) (i32.const -1) (i32.const 0x2fff0))",
    "gr_reply_push": "(call $gr_reply_push (i32.const 0x30000) (i32.const 1) (i32.const 0))",
    "gr_reply_commit value": "(call $gr_reply_commit (i32.const 0x30000) (i32.const 0))",
    "gr_reply_input result": "(call $gr_reply_input (i32.const 0) (i32.const 1) (i32.const -1) (i32.const 0x2ffe0))",
    "gr_reply_to": "(call $gr_reply_to (i32.const 0x2fff0))",
    "gr_reply_code": "(call $gr_reply_code (i32.const 0x2fffc))",
    "gr_send destination": "(call $gr_send (i32.const 0x2ffe0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))",
    "gr_send payload": "(call $gr_send (i32.const 0x3000) (i32.const 0x2ffff) (i32.const 2) (i32.const 0) (i32.const 0))",
    "gr_send_input destination": "(call $gr_send_input (i32.const 0x2ffe0) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0))",
    "gr_send_init": "(call $gr_send_init (i32.const 0x2fffc))",
    "gr_send_push": "(call $gr_send_init (i32.const 0)) (call $gr_send_push (i32.const 1) (i32.const 0x2ffff) (i32.const 2) (i32.const 8))",
    "gr_send_commit": "(call $gr_send_init (i32.const 0)) (call $gr_send_commit (i32.const 1) (i32.const 0x2ffd1) (i32.const 0) (i32.const 8))",
    "gr_source": "(call $gr_source (i32.const 0x2fff0))",
    "gr_message_id": "(call $gr_message_id (i32.const -1))",
    "gr_program_id": "(call $gr_program_id (i32.const 0x2ffe1))",
    "gr_value": "(call $gr_value (i32.const 0x2fff1))",
    "gr_value_available": "(call $gr_value_available (i32.const 0x2fff1))",
    "gr_block_height": "(call $gr_block_height (i32.const 0x30000))",
    "gr_block_timestamp": "(call $gr_block_timestamp (i32.const 0x2fff9))",
    "gr_gas_available": "(call $gr_gas_available (i32.const 0x2fff9))",
    "gr_env_vars": "(call $gr_env_vars (i32.const 1) (i32.const 0x2ffd0))",
    "gr_debug": "(call $gr_debug (i32.const 0x2ffff) (i32.const 2))",
    "gr_panic": "(call $gr_panic (i32.const 0x2ffff) (i32.const 2))",
    "gr_exit": "(call $gr_exit (i32.const 0x2fff0))",
    "gr_wake": "(call $gr_wake (i32.const 0x2fff0) (i32.const 0) (i32.const 0))",
    "gr_wake err": "(call $gr_wake (i32.const 0) (i32.const 0) (i32.const 0x2fffe))",
}


@pytest.mark.parametrize("snippet", OOB_CALLS.values(), ids=OOB_CALLS.keys())
def test_out_of_bounds_pointer_is_backend_error(sb, snippet):
    # Before the bad call the program writes memory, allocates a page and sends a
    # message: the failed dispatch must leave none of it behind.
    code = module(
        handle=f"""
      (i32.store (i32.const 0x4000) (i32.const 7))
      (drop (call $alloc (i32.const 1)))
      (call $emit (i32.const 0) (i32.const 1))
      {snippet}
      (call $reply_mem (i32.const 0) (i32.const 4))""",
        data=((0x3000, pid_value(OBSERVER)),),
    )
    pid = deploy(sb, code)
    before = durable(sb.program_state(pid))
    reply, rec = call(sb, pid, b"payload", value=3)
    assert reply.reply_code == codes.ERR_BACKEND == bytes.fromhex("01000200")
    assert reply.value == 3 and rec.status == "trap"
    assert durable(sb.program_state(pid)) == before
    assert emitted(sb) == []
    assert rec.gas_burned > 0  # the executable balance paid for the failed run

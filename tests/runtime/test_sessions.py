"""Session slots (session.SlotPool): a store and memory reused by the next session must
look exactly like a fresh one to the program — zeros, then its own data segments."""

from __future__ import annotations

from gexe.runtime import Sandbox
from sandbox_helpers import call, deploy
from wat import module

FILL = """
  (local $a i32)
  {pre}
  (local.set $a (i32.const 0))
  (loop $l
    (i64.store (local.get $a) (i64.const 0xABABABABABABABAB))
    (local.set $a (i32.add (local.get $a) (i32.const 8)))
    (br_if $l (i32.lt_u (local.get $a) (i32.const {end}))))"""


def dirtier(pages: int = 2, grow: int = 0) -> bytes:
    """Fills its whole memory (stack region, data segment, persistent pages) with 0xAB;
    with `grow`, allocates that many pages first and fills them too."""
    alloc = f"(drop (call $alloc (i32.const {grow})))" if grow else ""
    end = (pages + grow) * 0x10000
    return module(
        handle=FILL.format(pre=alloc, end=end),
        pages=pages,
        stack_end=1,
        data=((0x10200, b"DATA"),),
    )


def reader(pages: int = 2) -> bytes:
    """Replies 4 bytes from the stack region, its data segment, a persistent page it
    never wrote and the top of its memory."""
    top = pages * 0x10000 - 0x100
    return module(
        handle=f"""
      (i32.store (i32.const 0x8000) (i32.load (i32.const 0x100)))
      (i32.store (i32.const 0x8004) (i32.load (i32.const 0x10200)))
      (i32.store (i32.const 0x8008) (i32.load (i32.const 0x10100)))
      (i32.store (i32.const 0x800C) (i32.load (i32.const {top})))
      (call $reply_mem (i32.const 0x8000) (i32.const 16))""",
        pages=pages,
        stack_end=1,
        data=((0x10200, b"DATA"),),
    )


FRESH = bytes(4) + b"DATA" + bytes(8)


def idle_slots(sb: Sandbox, pages: int) -> list:
    return list(sb.processor.executor.slots._idle.get(pages, []))


def test_a_reused_slot_looks_fresh(sb):
    w = deploy(sb, dirtier())
    r = deploy(sb, reader())
    call(sb, w, b"w")  # fills the memory of the slot it ran in, which goes back to the pool
    dirtied = idle_slots(sb, 2)[-1]  # the next one taken
    reply, _ = call(sb, r, b"r")
    assert reply.payload == FRESH
    assert idle_slots(sb, 2)[-1] is dirtied  # the reader ran in it and gave it back
    # a new program in the same slot again, after the reader
    reply, _ = call(sb, deploy(sb, reader(), salt=b"again"), b"r")
    assert reply.payload == FRESH


def test_a_slot_whose_memory_grew_looks_fresh(sb):
    w = deploy(sb, dirtier(pages=2, grow=1))
    r = deploy(sb, reader(pages=3))
    call(sb, w, b"w")  # memory grew from 2 to 3 pages, all of it 0xAB
    dirtied = idle_slots(sb, 3)[-1]
    reply, _ = call(sb, r, b"r")
    assert reply.payload == FRESH
    assert idle_slots(sb, 3)[-1] is dirtied


def test_slots_reused_across_blocks_on_the_pool_threads():
    """Two workers, many programs, several blocks: every reply is a fresh reader's."""
    sb = Sandbox(workers=2)
    try:
        dirty = [deploy(sb, dirtier(), salt=bytes([i])) for i in range(4)]
        readers = [sb.create_program(sb.upload_code(reader()), salt=bytes([i])) for i in range(4)]
        sb.run_until_idle()
        for _ in range(3):
            for d in dirty:
                sb.send(d, b"w")
            sb.run_block()
            ids = [sb.send(r, b"r") for r in readers]
            sb.run_block()
            assert [sb.replies[m].payload for m in ids] == [FRESH] * 4
    finally:
        sb.close()

"""The store as the runtime's storage: same state hashes as MemoryStorage, across restarts."""

from __future__ import annotations

from gexe.node.records import BlockRecord
from gexe.node.snapshot import load_runtime_state, store_runtime_state
from gexe.node.store import Store
from gexe.runtime import (
    DEFAULT_USER,
    BlockInfo,
    CreateProgram,
    MemoryStorage,
    Processor,
    QueueMessage,
    RuntimeState,
    Sandbox,
    TopUpExecutableBalance,
    blake2b256,
    validate,
)
from gexe.runtime.state import load_state

from gexe import programs

PING = programs.path("ping").read_bytes()
PID = bytes(12) + b"\x42" * 20


def run_sandbox(storage) -> tuple[bytes, list[bytes]]:
    sb = Sandbox(storage=storage)
    try:
        pid = sb.create_program(sb.upload_code(PING), init_payload=b"")
        sb.run_until_idle()
        replies = []
        for payload in (b"PING", b"hello", b"x" * 10_000):
            mid = sb.send(pid, payload)
            replies.append(sb.run_until_reply(mid).payload)
        return sb.state_hash(pid), replies
    finally:
        sb.close()


def test_sandbox_on_a_block_writer_matches_memory_storage(tmp_path):
    expected_hash, expected_replies = run_sandbox(MemoryStorage())
    with Store(tmp_path / "db") as store:
        w = store.begin_block()
        state_hash, replies = run_sandbox(w)
        w.commit()
        assert (state_hash, replies) == (expected_hash, expected_replies)
        assert replies[0] == b"PONG"
    with Store(tmp_path / "db") as store:  # everything needed to load it is on disk
        assert load_state(store, state_hash).code_id == blake2b256(PING)
        assert store.verify().ok


def block_events(n: int) -> list:
    code_id = blake2b256(PING)
    if n == 1:
        return [
            CreateProgram(PID, code_id),
            TopUpExecutableBalance(PID, 10**24),
            QueueMessage(PID, blake2b256(b"init"), DEFAULT_USER, b""),
        ]
    return [QueueMessage(PID, blake2b256(b"msg", bytes([n])), DEFAULT_USER, b"PING" * n)]


def test_processor_with_one_writer_per_block_and_a_restart(tmp_path):
    """The validator's loop: per block a BlockWriter, a snapshot, a record, one commit."""
    mem = MemoryStorage()
    mem.write(PING)
    ref = Processor(mem)
    ref_state = RuntimeState()
    ref_hashes = []
    for n in range(1, 6):
        ref_state, _ = ref.process_block(ref_state, BlockInfo(n, 1000 + n), block_events(n))
        ref_hashes.append(ref_state.programs[PID])
    ref.close()

    def run(store: Store, proc: Processor, numbers) -> list[bytes]:
        head = store.head()
        state = load_runtime_state(store, head.state_root) if head else RuntimeState()
        out = []
        for n in numbers:
            with store.begin_block() as w:
                proc.storage = w
                state, result = proc.process_block(state, BlockInfo(n, 1000 + n), block_events(n))
                root = store_runtime_state(
                    w,
                    state,
                    previous=head.state_root if head else None,
                    changed=[t.program_id for t in result.transitions] if head else None,
                )
                head = BlockRecord(
                    blake2b256(b"blk", bytes([n])),
                    n,
                    head.hash if head else bytes(32),
                    1000 + n,
                    root,
                )
                w.put_block(head)
                w.set_head(head.hash)
                w.commit()
            out.append(state.programs[PID])
        return out

    with Store(tmp_path / "db") as store:
        with store.begin_block() as w:  # code upload: its own transaction
            assert w.write(PING) == validate(PING).code_id
            w.commit()
        proc = Processor(store)
        hashes = run(store, proc, range(1, 4))
        proc.close()
    with Store(tmp_path / "db") as store:  # a restart: resume from the stored head
        proc = Processor(store)
        hashes += run(store, proc, range(4, 6))
        proc.close()
        assert store.verify().ok
        assert store.head().number == 5
        assert (
            load_runtime_state(store, store.block_by_number(2).state_root).programs[PID]
            == ref_hashes[1]
        )
    assert hashes == ref_hashes
    assert len(set(ref_hashes)) > 1  # the blocks did change the program

"""The block processor: fold one block's events into program states, deterministically.

A block is processed in three steps:
1. its events are applied in order (programs created, messages queued, top-ups);
2. waitlist entries whose deadline has come are moved to their queues;
3. rounds run until every queue is empty or the block's gas allowance is spent. In a
   round every program with a queued message processes its queue, programs in
   parallel on a thread pool — they share nothing during a round. Messages produced in
   a round are delivered after it, in a fixed order: by source program id, then in
   emission order. Leftover messages wait for the next block.

Determinism: a program's work in a round depends only on its own state and queue; the
per-round gas cap of each program is fixed before the round from the remaining
allowance; delivery order is sorted. So the thread schedule never changes the result.

Changed programs' new state hashes, messages addressed outside the program set (to
Ethereum) and the gas burned form the `BlockResult`.

When modifying this part: anything that changes which message runs when, or in which
order outputs are delivered, changes state hashes — it is a protocol change.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import codes, limits
from .events import (
    CreateProgram,
    Event,
    QueueMessage,
    QueueReply,
    TopUpExecutableBalance,
)
from .execution import Executor, LoadedCode, Outcome, error_reply, wasm_thread_pool
from .host import Outgoing
from .ids import ZERO_ID, reply_message_id
from .message import Kind, Message
from .session import ProgramSession, fuel_hint, runs_long
from .state import (
    MutableState,
    ProgramState,
    Status,
    WaitEntry,
    load_allocations,
    load_pages,
    load_queue,
    load_state,
    load_waitlist,
    store_allocations,
    store_pages,
    store_queue,
    store_waitlist,
)
from .storage import Storage

# Per-message cost outside WASM, in fuel-equivalent units (~40 µs), for `_schedule`.
_PER_MESSAGE_FUEL = 300_000


class ProcessingError(RuntimeError):
    """A block that cannot be processed (e.g. an event names a program that does not
    exist). The caller's state is untouched."""


@dataclass(frozen=True, slots=True)
class RuntimeState:
    """Everything the processor needs between blocks.

    `programs` maps program id to state hash; `queued` lists programs whose queues were
    left non-empty (gas allowance spent); `wakeups` holds each program's earliest
    waitlist deadline, so a block only visits programs with something to do.
    """

    programs: Mapping[bytes, bytes] = field(default_factory=dict)
    queued: frozenset[bytes] = frozenset()
    wakeups: Mapping[bytes, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BlockInfo:
    height: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class DispatchRecord:
    """One executed (or refused) message, for logs, RPC and the sandbox."""

    program_id: bytes
    message_id: bytes
    kind: Kind
    status: str  # success | exit | wait | trap | refused
    gas_burned: int
    explanation: str = ""
    debug: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Transition:
    """A changed program: its new state hash and what it sent to Ethereum."""

    program_id: bytes
    new_state_hash: bytes
    exited: bool
    inheritor: bytes
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class BlockResult:
    height: int
    transitions: tuple[Transition, ...]
    gas_burned: int
    dispatches: tuple[DispatchRecord, ...]
    rounds: int
    queued_left: int  # messages still queued when the allowance ran out


# ------------------------------------------------------------------ working copy


class _Program:
    """Mutable working copy of one program for the duration of a block."""

    __slots__ = (
        "id",
        "base_hash",
        "state",
        "storage",
        "_pages",
        "_allocs",
        "_queue",
        "_wait",
        "dirty",
        "outbox",
        "to_eth",
        "records",
        "exit_value",
    )

    def __init__(
        self, pid: bytes, state: ProgramState, base_hash: bytes | None, storage: Storage
    ) -> None:
        self.id = pid
        self.base_hash = base_hash
        self.state = MutableState.of(state)
        self.storage = storage
        self._pages: dict[int, bytes] | None = None
        self._allocs: frozenset[int] | None = None
        self._queue: deque[Message] | None = None
        self._wait: dict[bytes, WaitEntry] | None = None
        self.dirty: set[str] = set()
        self.outbox: list[Outgoing] = []
        self.to_eth: list[Message] = []
        self.records: list[DispatchRecord] = []
        self.exit_value = 0  # balance handed to the inheritor after this round

    @property
    def pages(self) -> dict[int, bytes]:
        if self._pages is None:
            self._pages = load_pages(self.storage, self.state.pages)
        return self._pages

    @property
    def allocations(self) -> frozenset[int]:
        if self._allocs is None:
            self._allocs = load_allocations(self.storage, self.state.allocations)
        return self._allocs

    @allocations.setter
    def allocations(self, value: frozenset[int]) -> None:
        self._allocs = value
        self.dirty.add("allocations")

    @property
    def queue(self) -> deque[Message]:
        if self._queue is None:
            self._queue = deque(load_queue(self.storage, self.state.queue))
        return self._queue

    @property
    def waitlist(self) -> dict[bytes, WaitEntry]:
        if self._wait is None:
            self._wait = load_waitlist(self.storage, self.state.waitlist)
        return self._wait

    def has_queue(self) -> bool:
        if self._queue is None:
            return self.state.queue != ZERO_ID
        return bool(self._queue)

    def enqueue(self, msg: Message) -> None:
        self.queue.append(msg)
        self.dirty.add("queue")

    def park(self, entry: WaitEntry) -> None:
        self.waitlist[entry.message.id] = entry
        self.dirty.add("waitlist")

    def set(self, **fields: object) -> None:
        """Update fields of the working state (status, balances, component hashes)."""
        st = self.state
        for k, v in fields.items():
            setattr(st, k, v)

    def commit(self) -> bytes:
        updates: dict[str, object] = {}
        if "pages" in self.dirty:
            updates["pages"] = store_pages(self.storage, self.pages)
        if "allocations" in self.dirty:
            updates["allocations"] = store_allocations(self.storage, self.allocations)
        if "queue" in self.dirty:
            updates["queue"] = store_queue(self.storage, self.queue)
        if "waitlist" in self.dirty:
            updates["waitlist"] = store_waitlist(self.storage, self.waitlist)
        if updates:
            self.set(**updates)
        self.dirty.clear()
        return self.storage.write(self.state.freeze().encode())


# ------------------------------------------------------------------ processor


@dataclass
class Processor:
    storage: Storage
    executor: Executor = field(default_factory=Executor)
    workers: int = 1
    block_gas_allowance: int = limits.DEFAULT_BLOCK_GAS_ALLOWANCE
    max_gas_per_message: int = limits.MAX_GAS_PER_MESSAGE
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.executor.close()

    def load_code(self, code_id: bytes) -> LoadedCode:
        hit = self.executor.codes.get(code_id)
        if hit is not None:
            return hit
        code = self.storage.read(code_id)
        if code is None:
            raise ProcessingError(f"code {code_id.hex()} is not in storage")
        return self.executor.codes.load(code)

    # -- block

    def process_block(
        self,
        state: RuntimeState,
        block: BlockInfo,
        events: Sequence[Event],
    ) -> tuple[RuntimeState, BlockResult]:
        """Return the runtime state after `block` and the block's result."""
        programs = state.programs
        work: dict[bytes, _Program] = {}

        def get(pid: bytes) -> _Program | None:
            p = work.get(pid)
            if p is None:
                h = programs.get(pid)
                if h is None:
                    return None
                p = _Program(pid, load_state(self.storage, h), h, self.storage)
                work[pid] = p
            return p

        for ev in events:
            self._apply_event(ev, get, work)

        for pid in sorted(pid for pid, d in state.wakeups.items() if d <= block.height):
            p = get(pid)
            assert p is not None
            due = sorted(
                (e for e in p.waitlist.values() if e.deadline <= block.height),
                key=lambda e: (e.deadline, e.message.id),
            )
            for e in due:
                del p.waitlist[e.message.id]
                p.enqueue(e.message)
            if due:
                p.dirty.add("waitlist")
        for pid in state.queued:
            get(pid)

        remaining = self.block_gas_allowance
        rounds = 0
        while remaining > 0:
            active = [work[pid] for pid in sorted(work) if work[pid].has_queue()]
            if not active:
                break
            rounds += 1
            cap = max(1, remaining // len(active))
            remaining -= self._run_round(active, block, cap)
            self._deliver(work, get, block)

        transitions = []
        new_programs = dict(programs)
        queued = set(state.queued)
        wakeups = dict(state.wakeups)
        for pid in sorted(work):
            p = work[pid]
            h = p.commit()
            new_programs[pid] = h
            if p.has_queue():
                queued.add(pid)
            else:
                queued.discard(pid)
            if p.state.waitlist != ZERO_ID:
                wakeups[pid] = min(e.deadline for e in p.waitlist.values())
            else:
                wakeups.pop(pid, None)
            if h != p.base_hash or p.to_eth:
                exited = p.state.status == Status.EXITED
                transitions.append(
                    Transition(
                        pid, h, exited, p.state.inheritor if exited else ZERO_ID, tuple(p.to_eth)
                    )
                )
        records = tuple(r for pid in sorted(work) for r in work[pid].records)
        left = sum(len(work[pid].queue) for pid in sorted(queued) if pid in work)
        result = BlockResult(
            block.height,
            tuple(transitions),
            sum(r.gas_burned for r in records),
            records,
            rounds,
            left,
        )
        return RuntimeState(new_programs, frozenset(queued), wakeups), result

    # -- events

    def _apply_event(self, ev: Event, get, work: dict[bytes, _Program]) -> None:  # type: ignore[no-untyped-def]
        if isinstance(ev, CreateProgram):
            if get(ev.program_id) is not None:
                raise ProcessingError(f"program {ev.program_id.hex()} already exists")
            self.load_code(ev.code_id)
            p = _Program(ev.program_id, ProgramState(ev.code_id), None, self.storage)
            work[ev.program_id] = p
            return
        p = get(ev.program_id)
        if p is None:
            raise ProcessingError(f"event for unknown program {ev.program_id.hex()}")
        if isinstance(ev, QueueMessage):
            kind = Kind.HANDLE
            if p.state.status == Status.CREATED:
                kind = Kind.INIT
                p.set(status=Status.INITIALIZING)
            p.enqueue(
                Message(
                    ev.message_id,
                    kind,
                    ev.source,
                    ev.program_id,
                    ev.payload,
                    ev.value,
                    call=ev.call,
                )
            )
        elif isinstance(ev, QueueReply):
            p.enqueue(
                Message(
                    reply_message_id(ev.replied_to),
                    Kind.REPLY,
                    ev.source,
                    ev.program_id,
                    ev.payload,
                    ev.value,
                    reply_to=ev.replied_to,
                    reply_code=codes.SUCCESS_MANUAL,
                )
            )
        elif isinstance(ev, TopUpExecutableBalance):
            p.set(executable_balance=p.state.executable_balance + ev.value)
        else:  # pragma: no cover - exhaustive over Event
            raise ProcessingError(f"unknown event {ev!r}")

    # -- rounds

    def _run_round(self, progs: list[_Program], block: BlockInfo, cap: int) -> int:
        if self.workers > 1 and len(progs) > 1:
            if self._pool is None:  # threads with the stack WASM needs (execution.py)
                self._pool = wasm_thread_pool(self.workers)
            run = self._run_queue
            order = self._schedule(progs)
            if not any(runs_long(p.state.code_id) for p in order):
                # Every program's WASM is expected to run with the GIL held: threads
                # could only take turns, paying a GIL hand-off and cold caches at each
                # turn. One pool thread runs the round (same result, same stack size).
                return self._pool.submit(lambda: sum(run(p, block, cap) for p in order)).result()
            return sum(self._pool.map(lambda p: run(p, block, cap), order))
        return sum(self._run_queue(p, block, cap) for p in self._schedule(progs))

    @staticmethod
    def _schedule(progs: list[_Program]) -> list[_Program]:
        """The order in which the pool's threads pick up a round's programs: the most
        work first (queue length × the fuel its code's last message burned), so a long
        queue does not start last while the other threads run out of work.

        Only timing depends on this order: a program's work in a round depends on its
        own state and queue alone, and outputs are delivered in sorted order after the
        round (tests run rounds in shuffled orders)."""

        def work(p: _Program) -> int:
            queued = len(p._queue) if p._queue is not None else 1
            return queued * (fuel_hint(p.state.code_id) + _PER_MESSAGE_FUEL)

        return sorted(progs, key=work, reverse=True)

    def _run_queue(self, p: _Program, block: BlockInfo, cap: int) -> int:
        used = 0
        session: ProgramSession | None = None
        try:
            while used < cap and p.has_queue():
                msg = p.queue.popleft()
                p.dirty.add("queue")
                refused = self._refusal(p, msg)
                if refused is not None:
                    self._refuse(p, msg, *refused)
                    continue
                if session is None:
                    session = ProgramSession(
                        self.executor.engine,
                        self.load_code(p.state.code_id),
                        p.id,
                        self.storage,
                        p.pages,
                        p.allocations,
                        self.executor.slots,
                    )
                used += self._dispatch(p, session, msg, block)
                if session.stale:
                    session.close()
                    session = None
        finally:
            if session is not None:
                session.close()
        return used

    @staticmethod
    def _refusal(p: _Program, msg: Message) -> tuple[bytes, bytes] | None:
        """Why `msg` cannot run on `p` at all (reply code and payload), or None."""
        st = p.state
        if st.status == Status.EXITED:
            return codes.ERR_PROGRAM_EXITED, st.inheritor
        if st.status == Status.TERMINATED:
            return codes.ERR_INIT_FAILURE, b""
        if st.status != Status.ACTIVE and msg.kind == Kind.HANDLE:
            return codes.ERR_UNINITIALIZED, b""
        return None

    def _refuse(self, p: _Program, msg: Message, code: bytes, payload: bytes = b"") -> None:
        if msg.kind != Kind.REPLY:
            p.outbox.append(Outgoing(error_reply(msg, p.id, code, payload)))
        p.records.append(
            DispatchRecord(p.id, msg.id, msg.kind, "refused", 0, codes.reply_code_name(code))
        )

    def _dispatch(
        self, p: _Program, session: ProgramSession, msg: Message, block: BlockInfo
    ) -> int:
        st = p.state
        gas_limit = min(self.max_gas_per_message, st.executable_balance // limits.VALUE_PER_GAS)
        out = session.run(
            msg,
            gas_limit=gas_limit,
            balance=st.balance,
            block_height=block.height,
            block_timestamp=block.timestamp,
        )
        self._apply(p, msg, out, block)
        p.records.append(
            DispatchRecord(
                p.id,
                msg.id,
                msg.kind,
                out.status,
                out.gas_burned,
                out.explanation,
                tuple(out.debug),
            )
        )
        return out.gas_burned

    def _apply(self, p: _Program, msg: Message, out: Outcome, block: BlockInfo) -> None:
        st = p.state
        charge = min(st.executable_balance, out.gas_burned * limits.VALUE_PER_GAS)
        st.executable_balance -= charge
        if out.status == "trap":
            if msg.kind == Kind.INIT:
                p.set(status=Status.TERMINATED, inheritor=msg.source)
            if out.reply is not None:
                p.outbox.append(Outgoing(out.reply))
            return

        credit = msg.value if msg.context is None else 0
        st.balance += credit - out.value_sent
        if out.dirty_pages:
            for gp, content in out.dirty_pages.items():
                p.pages[gp] = self.storage.write(content)
            p.dirty.add("pages")
        if out.allocations is not None:
            p.allocations = out.allocations
            static = self.load_code(st.code_id).info.static_pages
            per = limits.GEAR_PAGES_PER_WASM_PAGE
            stale = [
                gp for gp in p.pages if gp // per >= static and gp // per not in out.allocations
            ]
            for gp in stale:
                del p.pages[gp]
            if stale:
                p.dirty.add("pages")

        if out.status == "wait":
            ctx = out.context
            assert ctx is not None
            p.park(WaitEntry(block.height + out.wait_blocks, msg.with_context(ctx)))
        elif msg.kind == Kind.INIT and out.status in ("success", "exit"):
            p.set(status=Status.ACTIVE)
        if out.status == "exit":
            assert out.inheritor is not None
            # The balance goes to the inheritor: credited after the round when it is a
            # program; an Ethereum inheritor is paid by the Mirror from the transition.
            p.exit_value = p.state.balance
            p.set(status=Status.EXITED, inheritor=out.inheritor, balance=0)

        for mid, delay in out.wakes:
            entry = p.waitlist.get(mid)
            if entry is None:
                continue  # Gear ignores waking a message that is not waiting
            if delay == 0:
                del p.waitlist[mid]
                p.dirty.add("waitlist")
                p.enqueue(entry.message)
            elif block.height + delay < entry.deadline:
                p.park(WaitEntry(block.height + delay, entry.message, entry.delayed))

        p.outbox.extend(out.sent)
        if out.reply is not None:
            p.outbox.append(Outgoing(out.reply))

    # -- delivery

    def _deliver(self, work: dict[bytes, _Program], get, block: BlockInfo) -> None:  # type: ignore[no-untyped-def]
        for pid in sorted(work):
            src = work[pid]
            if src.exit_value:
                heir = get(src.state.inheritor)
                if heir is not None:
                    heir.set(balance=heir.state.balance + src.exit_value)
                src.exit_value = 0
            if not src.outbox:
                continue
            box, src.outbox = src.outbox, []
            for item in box:
                msg = item.message
                dest = get(msg.destination)
                if dest is None:
                    src.to_eth.append(msg)
                elif item.delay:
                    dest.park(WaitEntry(block.height + item.delay, msg, delayed=True))
                else:
                    dest.enqueue(msg)

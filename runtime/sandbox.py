"""The local sandbox: run programs without a chain, as Gear's `gtest` does.

`Sandbox` owns an in-memory store and a block processor, and plays the chain: it
uploads code, creates programs, queues messages from Ethereum-style addresses,
advances blocks and records every reply and outgoing message that leaves the program
set. Tests, the `gexe program run` command and dApp developers use it to try
programs before deploying them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import limits
from .events import CreateProgram, Event, QueueMessage, QueueReply, TopUpExecutableBalance
from .execution import Executor
from .ids import actor_from_address, blake2b256, program_id_from_user
from .message import Message
from .processor import BlockInfo, BlockResult, DispatchRecord, Processor, RuntimeState
from .state import ProgramState, load_state
from .storage import MemoryStorage, Storage
from .validation import validate

DEFAULT_USER = actor_from_address(bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"))
DEFAULT_EXECUTABLE_BALANCE = 10**15 * limits.VALUE_PER_GAS  # 10^15 gas
BLOCK_TIME = 12


def user(address: str | bytes) -> bytes:
    """Actor id of an Ethereum address given as 0x-hex or 20 raw bytes."""
    if isinstance(address, str):
        raw = bytes.fromhex(address.removeprefix("0x"))
    else:
        raw = address
    if len(raw) == 32:
        return raw
    return actor_from_address(raw)


@dataclass
class Sandbox:
    storage: Storage = field(default_factory=MemoryStorage)
    workers: int = 1
    block_gas_allowance: int = limits.DEFAULT_BLOCK_GAS_ALLOWANCE
    max_gas_per_message: int = limits.MAX_GAS_PER_MESSAGE
    height: int = 0
    timestamp: int = 1_700_000_000

    def __post_init__(self) -> None:
        self.processor = Processor(
            self.storage,
            Executor(),
            self.workers,
            self.block_gas_allowance,
            self.max_gas_per_message,
        )
        self.state = RuntimeState()
        self.pending: list[Event] = []
        self.outgoing: list[Message] = []  # messages that left the program set, in order
        self.replies: dict[bytes, Message] = {}  # replied-to message id -> reply
        self.dispatches: dict[bytes, DispatchRecord] = {}  # message id -> last execution
        self.results: list[BlockResult] = []
        self._nonce = 0

    def close(self) -> None:
        self.processor.close()

    # -- chain-like operations (take effect in the next block)

    def upload_code(self, code: bytes) -> bytes:
        """Validate and store code; return its code id. Raises `CodeError`."""
        info = validate(code)
        self.storage.write(bytes(code))
        self.processor.executor.codes.load(bytes(code), info)
        return info.code_id

    def create_program(
        self,
        code_id: bytes,
        *,
        salt: bytes = b"",
        init_payload: bytes = b"",
        source: bytes = DEFAULT_USER,
        value: int = 0,
        executable_balance: int = DEFAULT_EXECUTABLE_BALANCE,
    ) -> bytes:
        """Create a program and queue its init message; return the program id."""
        pid = program_id_from_user(code_id, salt)
        self.pending.append(CreateProgram(pid, code_id))
        if executable_balance:
            self.pending.append(TopUpExecutableBalance(pid, executable_balance))
        self.send(pid, init_payload, source=source, value=value)
        return pid

    def send(
        self,
        program_id: bytes,
        payload: bytes = b"",
        *,
        source: bytes = DEFAULT_USER,
        value: int = 0,
    ) -> bytes:
        """Queue a message from a user; return its id (Gear's external-message id)."""
        if len(payload) > limits.MAX_PAYLOAD_SIZE:
            raise ValueError(
                f"payload of {len(payload)} bytes exceeds the "
                f"{limits.MAX_PAYLOAD_SIZE}-byte message limit"
            )
        mid = blake2b256(
            b"external",
            (self.height + 1).to_bytes(4, "little"),
            source,
            self._nonce.to_bytes(16, "little"),
        )
        self._nonce += 1
        self.pending.append(QueueMessage(program_id, mid, source, bytes(payload), value))
        return mid

    def send_reply(
        self,
        program_id: bytes,
        replied_to: bytes,
        payload: bytes = b"",
        *,
        source: bytes = DEFAULT_USER,
        value: int = 0,
    ) -> None:
        self.pending.append(QueueReply(program_id, replied_to, source, bytes(payload), value))

    def top_up(self, program_id: bytes, value: int) -> None:
        self.pending.append(TopUpExecutableBalance(program_id, value))

    # -- blocks

    def run_block(self) -> BlockResult:
        self.height += 1
        self.timestamp += BLOCK_TIME
        events, self.pending = self.pending, []
        self.state, result = self.processor.process_block(
            self.state, BlockInfo(self.height, self.timestamp), events
        )
        self.results.append(result)
        for t in result.transitions:
            for m in t.messages:
                self.outgoing.append(m)
                if m.is_reply:
                    self.replies[m.reply_to] = m
        for d in result.dispatches:
            self.dispatches[d.message_id] = d
        return result

    def run_until_idle(self, max_blocks: int = 100) -> list[BlockResult]:
        """Run blocks until nothing is queued, pending or due soon (bounded)."""
        out = [self.run_block()]
        while len(out) < max_blocks and (self.pending or self.state.queued):
            out.append(self.run_block())
        return out

    def run_until_reply(self, message_id: bytes, max_blocks: int = 100) -> Message | None:
        for _ in range(max_blocks):
            if message_id in self.replies:
                break
            self.run_block()
        return self.replies.get(message_id)

    # -- reading

    def program_ids(self) -> list[bytes]:
        return sorted(self.state.programs)

    def state_hash(self, program_id: bytes) -> bytes:
        return self.state.programs[program_id]

    def program_state(self, program_id: bytes) -> ProgramState:
        return load_state(self.storage, self.state.programs[program_id])

    def reply_to(self, message_id: bytes) -> Message | None:
        return self.replies.get(message_id)

    def messages_to(self, destination: bytes) -> Iterable[Message]:
        return (m for m in self.outgoing if m.destination == destination)

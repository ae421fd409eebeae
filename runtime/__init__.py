"""gexe.runtime: pure, deterministic execution of Gear / Vara.eth programs.

Code validation, syscalls, gas, program state, queues, the waitlist, the block
processor and the local sandbox. This package imports nothing else from gexe; it
defines the small storage protocol (`Storage`) that nodes implement.
"""

from .codes import SyscallError, is_success, reply_code_name
from .events import CreateProgram, Event, QueueMessage, QueueReply, TopUpExecutableBalance
from .execution import CodeCache, Executor, LoadedCode, Outcome, make_engine
from .ids import actor_from_address, blake2b256, code_id
from .message import Context, Kind, Message
from .processor import (
    BlockInfo,
    BlockResult,
    DispatchRecord,
    ProcessingError,
    Processor,
    RuntimeState,
    Transition,
)
from .sandbox import DEFAULT_USER, Sandbox, user
from .state import ProgramState, Status
from .storage import MemoryStorage, Storage
from .validation import CodeError, CodeInfo, validate

__all__ = [
    "DEFAULT_USER",
    "BlockInfo",
    "BlockResult",
    "CodeCache",
    "CodeError",
    "CodeInfo",
    "Context",
    "CreateProgram",
    "DispatchRecord",
    "Event",
    "Executor",
    "Kind",
    "LoadedCode",
    "MemoryStorage",
    "Message",
    "Outcome",
    "ProcessingError",
    "Processor",
    "ProgramState",
    "QueueMessage",
    "QueueReply",
    "RuntimeState",
    "Sandbox",
    "Status",
    "Storage",
    "SyscallError",
    "TopUpExecutableBalance",
    "Transition",
    "actor_from_address",
    "blake2b256",
    "code_id",
    "is_success",
    "make_engine",
    "reply_code_name",
    "user",
    "validate",
]

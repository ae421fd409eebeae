"""Execution limits and the gas schedule: the numbers every validator must share.

Values follow Vara.eth (runtime/ABI.md, sections 5, 7 and 8) where it states them; where
our design differs (gas = wasmtime fuel plus fixed syscall costs instead of Gear's
instrumented weights) the choice is explained next to the constant.

When modifying this part: every constant here changes results, so a change is a
protocol upgrade — all validators must move together.
"""

from __future__ import annotations

WASM_PAGE = 0x10000  # 64 KiB: unit of `alloc`, static pages and `__gear_stack_end`
GEAR_PAGE = 0x4000  # 16 KiB: unit of persisted memory (content-addressed pages)
GEAR_PAGES_PER_WASM_PAGE = WASM_PAGE // GEAR_PAGE

# --- code -------------------------------------------------------------------------
MAX_CODE_SIZE = 512 * 1024  # bytes of original WASM
MAX_STATIC_PAGES = 32768  # Gear's hard cap on `initial` of the imported memory
MAX_DATA_SEGMENTS = 1024
MAX_TABLES = 1

# --- memory -----------------------------------------------------------------------
# Gear.exe now allows 32768 wasm pages (2 GiB); gexe keeps the earlier Vara.eth bound of
# 512 pages (32 MiB) because every dispatch snapshots its program's memory and a node
# runs many programs at once. Programs built with gstd use far less.
MAX_PAGES = 512

# --- messages ---------------------------------------------------------------------
MAX_PAYLOAD_SIZE = 8 * 1024 * 1024
OUTGOING_LIMIT = 1024  # messages (send handles) per execution
OUTGOING_BYTES_LIMIT = 64 * 1024 * 1024  # payload bytes sent per execution
MAX_DEBUG_SIZE = 64 * 1024  # gr_debug payload; longer traps (BackendError)

# --- gas --------------------------------------------------------------------------
# One unit of gas is one unit of wasmtime fuel (about one executed WASM instruction).
# Host work is charged in the same unit: a syscall costs roughly what the instructions
# of an equivalent in-WASM routine would, scaled by the bytes it moves.
VALUE_PER_GAS = 100  # executable-balance units per gas (Vara.eth's gas multiplier)
# Vara.eth's limits (1e12 per chunk, 9e12 per block) are in Gear's weight units, about a
# picosecond each. One gexe gas unit is one WASM instruction (a few hundred picoseconds
# on these machines: ~5e9 fuel/s), so the same wall-clock budgets are far smaller
# numbers: a message may run about two seconds, a block about ten core-seconds.
MAX_GAS_PER_MESSAGE = 10_000_000_000
DEFAULT_BLOCK_GAS_ALLOWANCE = 50_000_000_000

SYSCALL_BASE_GAS = 1_000  # every syscall
PER_BYTE_GAS = 1  # per payload byte read, written or sent
ALLOC_PAGE_GAS = 10_000  # per wasm page allocated (host grows and zeroes memory)
PAGE_LOAD_GAS = 2_000  # per stored 16 KiB page restored before execution
PAGE_STORE_GAS = 4_000  # per dirty 16 KiB page written back after execution
DISPATCH_BASE_GAS = 10_000  # instantiation and bookkeeping of one dispatch

# --- wait ------------------------------------------------------------------------
MAX_WAIT_BLOCKS = 1_000_000  # longest gr_wait_for / gr_wait_up_to duration honoured

# --- env vars (gr_env_vars version 1, Vara.eth values) ----------------------------
ENV_PERFORMANCE_MULTIPLIER = 100
ENV_EXISTENTIAL_DEPOSIT = 0
ENV_MAILBOX_THRESHOLD = 0

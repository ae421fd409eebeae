"""The Vara.eth syscall set: import names and exact WASM signatures.

Signatures are Gear's (`sdk/gsys`): pointers, lengths, offsets, handles and block
numbers are i32; gas is i64; u128 values and 32-byte ids travel by pointer. The memory
syscalls `alloc`/`free`/`free_range` come from Gear's backend.

Gear's Vara-only syscalls (gas reservations, `*_wgas`, signals, `gr_random`,
`gr_create_program`, `gr_reply_deposit`) are not part of Vara.eth: code importing them
is rejected at upload with a reason that names the syscall.
"""

from __future__ import annotations

from .wasm import I32, I64

_ = I32
L = I64

# name -> (params, results)
SYSCALL_SIGNATURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "alloc": ((_,), (_,)),
    "free": ((_,), (_,)),
    "free_range": ((_, _), (_,)),
    "gr_env_vars": ((_, _), ()),
    "gr_block_height": ((_,), ()),
    "gr_block_timestamp": ((_,), ()),
    "gr_debug": ((_, _), ()),
    "gr_panic": ((_, _), ()),
    "gr_oom_panic": ((), ()),
    "gr_reply_code": ((_,), ()),
    "gr_exit": ((_,), ()),
    "gr_gas_available": ((_,), ()),
    "gr_leave": ((), ()),
    "gr_message_id": ((_,), ()),
    "gr_program_id": ((_,), ()),
    "gr_read": ((_, _, _, _), ()),
    "gr_reply_commit": ((_, _), ()),
    "gr_reply_push": ((_, _, _), ()),
    "gr_reply_push_input": ((_, _, _), ()),
    "gr_reply_to": ((_,), ()),
    "gr_reply": ((_, _, _, _), ()),
    "gr_reply_input": ((_, _, _, _), ()),
    "gr_send_commit": ((_, _, _, _), ()),
    "gr_send_init": ((_,), ()),
    "gr_send_push": ((_, _, _, _), ()),
    "gr_send_push_input": ((_, _, _, _), ()),
    "gr_send": ((_, _, _, _, _), ()),
    "gr_send_input": ((_, _, _, _, _), ()),
    "gr_size": ((_,), ()),
    "gr_source": ((_,), ()),
    "gr_value_available": ((_,), ()),
    "gr_value": ((_,), ()),
    "gr_wait_for": ((_,), ()),
    "gr_wait_up_to": ((_,), ()),
    "gr_wake": ((_, _, _), ()),
}

# Gear syscalls that exist on Vara but not on Vara.eth; named in rejection messages.
VARA_ONLY = frozenset(
    {
        "gr_create_program",
        "gr_create_program_wgas",
        "gr_reply_deposit",
        "gr_reply_commit_wgas",
        "gr_reply_input_wgas",
        "gr_reply_wgas",
        "gr_reservation_reply_commit",
        "gr_reservation_reply",
        "gr_reservation_send_commit",
        "gr_reservation_send",
        "gr_reserve_gas",
        "gr_send_commit_wgas",
        "gr_send_input_wgas",
        "gr_send_wgas",
        "gr_system_reserve_gas",
        "gr_unreserve_gas",
        "gr_signal_code",
        "gr_signal_from",
        "gr_random",
        "gr_wait",
    }
)

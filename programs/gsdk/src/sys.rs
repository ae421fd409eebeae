//! Raw Gear syscall bindings (module `env`), as declared by Gear's `gsys`.
//!
//! Every pointer is an `i32` offset into the imported `env.memory`; `u32`
//! lengths, offsets, handles and block numbers are `i32` on the wasm side and
//! `u64` gas/timestamps are `i64`. A `u128` value is always passed *by
//! pointer* to 16 little-endian bytes; a value pointer equal to `u32::MAX`
//! means "zero value" (the host must not read memory then).
//!
//! Fallible syscalls write a `u32` error code (0 = success) into the first
//! field of the out-struct. The out-structs are `repr(C, packed)` exactly like
//! Gear's, so their sizes are the plain sums of their fields.

/// A 32-byte actor, program or message id.
pub type Hash = [u8; 32];

/// `{error_code: u32, hash: [u8; 32]}`, 36 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct ErrorWithHash {
    pub error_code: u32,
    pub hash: Hash,
}

/// `{hash: [u8; 32], value: u128 LE}`, 48 bytes (destination and value of a send).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct HashWithValue {
    pub hash: Hash,
    pub value: u128,
}

/// `{error_code: u32, handle: u32}`, 8 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct ErrorWithHandle {
    pub error_code: u32,
    pub handle: u32,
}

/// `{error_code: u32, reply_code: [u8; 4]}`, 8 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct ErrorWithReplyCode {
    pub error_code: u32,
    pub reply_code: [u8; 4],
}

// Compile-time layout checks: the host reads these structs by byte offset.
const _: () = assert!(core::mem::size_of::<ErrorWithHash>() == 36);
const _: () = assert!(core::mem::size_of::<HashWithValue>() == 48);
const _: () = assert!(core::mem::size_of::<ErrorWithHandle>() == 8);
const _: () = assert!(core::mem::size_of::<ErrorWithReplyCode>() == 8);

/// Value pointer meaning "zero value".
pub const NO_VALUE: *const u128 = u32::MAX as usize as *const u128;

#[allow(improper_ctypes)]
#[link(wasm_import_module = "env")]
extern "C" {
    // --- memory -----------------------------------------------------------
    /// Allocates `pages` contiguous 64 KiB wasm pages; returns the first page
    /// index, or `u32::MAX` when the program's memory limit is reached.
    #[link_name = "alloc"]
    pub fn alloc(pages: u32) -> u32;
    /// Frees one page previously returned by `alloc`; 0 on success.
    #[link_name = "free"]
    pub fn free(page: u32) -> u32;
    /// Frees pages `start..=end` (inclusive); 0 on success.
    #[link_name = "free_range"]
    pub fn free_range(start: u32, end: u32) -> u32;

    // --- incoming message -------------------------------------------------
    pub fn gr_read(at: u32, len: u32, buffer: *mut u8, err: *mut u32);
    pub fn gr_size(len: *mut u32);
    pub fn gr_source(actor: *mut Hash);
    pub fn gr_value(value: *mut u128);
    pub fn gr_message_id(id: *mut Hash);
    pub fn gr_reply_to(err_mid: *mut ErrorWithHash);
    pub fn gr_reply_code(err_code: *mut ErrorWithReplyCode);

    // --- replies ----------------------------------------------------------
    pub fn gr_reply(payload: *const u8, len: u32, value: *const u128, err_mid: *mut ErrorWithHash);
    pub fn gr_reply_push(payload: *const u8, len: u32, err: *mut u32);
    pub fn gr_reply_commit(value: *const u128, err_mid: *mut ErrorWithHash);
    pub fn gr_reply_input(offset: u32, len: u32, value: *const u128, err_mid: *mut ErrorWithHash);
    pub fn gr_reply_push_input(offset: u32, len: u32, err: *mut u32);

    // --- sending ----------------------------------------------------------
    pub fn gr_send(
        pid_value: *const HashWithValue,
        payload: *const u8,
        len: u32,
        delay: u32,
        err_mid: *mut ErrorWithHash,
    );
    pub fn gr_send_init(err_handle: *mut ErrorWithHandle);
    pub fn gr_send_push(handle: u32, payload: *const u8, len: u32, err: *mut u32);
    pub fn gr_send_commit(handle: u32, pid_value: *const HashWithValue, delay: u32, err_mid: *mut ErrorWithHash);
    pub fn gr_send_input(
        pid_value: *const HashWithValue,
        offset: u32,
        len: u32,
        delay: u32,
        err_mid: *mut ErrorWithHash,
    );
    pub fn gr_send_push_input(handle: u32, offset: u32, len: u32, err: *mut u32);

    // --- execution environment --------------------------------------------
    pub fn gr_program_id(id: *mut Hash);
    pub fn gr_value_available(value: *mut u128);
    pub fn gr_block_height(height: *mut u32);
    pub fn gr_block_timestamp(timestamp: *mut u64);
    pub fn gr_gas_available(gas: *mut u64);
    pub fn gr_env_vars(version: u32, vars: *mut u8);
    pub fn gr_debug(payload: *const u8, len: u32);

    // --- control flow (never return) --------------------------------------
    pub fn gr_panic(payload: *const u8, len: u32) -> !;
    pub fn gr_oom_panic() -> !;
    pub fn gr_exit(inheritor: *const Hash) -> !;
    pub fn gr_leave() -> !;
    pub fn gr_wait_for(duration: u32) -> !;
    pub fn gr_wait_up_to(duration: u32) -> !;
    pub fn gr_wake(message_id: *const Hash, delay: u32, err: *mut u32);
}

//! The current message: reading its payload and metadata, replying to it and
//! sending new messages. Fallible calls return `Err(code)` with the host's
//! `u32` error code (Gear's `ExtError` numbering).

use crate::sys::{self, ErrorWithHandle, ErrorWithHash, ErrorWithReplyCode, HashWithValue};

/// A 32-byte actor id (program id or user/Ethereum address padded on the left with 12 zero bytes).
pub type ActorId = [u8; 32];
/// A 32-byte message id.
pub type MessageId = [u8; 32];

/// Error returned by [`load`] when the payload does not fit the given buffer
/// (not a host error code).
pub const ERR_TOO_LARGE: u32 = u32::MAX;

#[inline(always)]
fn value_ptr(value: &u128) -> *const u128 {
    // Zero value is passed as the special pointer u32::MAX.
    if *value == 0 {
        sys::NO_VALUE
    } else {
        value as *const u128
    }
}

#[inline(always)]
fn result_mid(e: ErrorWithHash) -> Result<MessageId, u32> {
    match e.error_code {
        0 => Ok(e.hash),
        code => Err(code),
    }
}

const EMPTY: ErrorWithHash = ErrorWithHash { error_code: 0, hash: [0; 32] };

/// Payload length of the current message.
pub fn size() -> usize {
    let mut len = 0u32;
    unsafe { sys::gr_size(&mut len) };
    len as usize
}

/// Copies `buf.len()` payload bytes starting at `at` into `buf`.
pub fn read_into(at: usize, buf: &mut [u8]) -> Result<(), u32> {
    let mut err = 0u32;
    unsafe { sys::gr_read(at as u32, buf.len() as u32, buf.as_mut_ptr(), &mut err) };
    match err {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Reads the whole payload into the front of `buf` and returns that prefix;
/// `Err(ERR_TOO_LARGE)` if the payload is longer than `buf`.
pub fn load(buf: &mut [u8]) -> Result<&mut [u8], u32> {
    let n = size();
    if n > buf.len() {
        return Err(ERR_TOO_LARGE);
    }
    let out = &mut buf[..n];
    if n > 0 {
        read_into(0, out)?;
    }
    Ok(out)
}

/// Sends the reply `payload` with `value` (committing any pushed reply bytes first).
pub fn reply(payload: &[u8], value: u128) -> Result<MessageId, u32> {
    let mut e = EMPTY;
    unsafe { sys::gr_reply(payload.as_ptr(), payload.len() as u32, value_ptr(&value), &mut e) };
    result_mid(e)
}

/// Replies with `len` bytes of the incoming payload starting at `offset` (no copy through memory).
pub fn reply_input(offset: usize, len: usize, value: u128) -> Result<MessageId, u32> {
    let mut e = EMPTY;
    unsafe { sys::gr_reply_input(offset as u32, len as u32, value_ptr(&value), &mut e) };
    result_mid(e)
}

/// Appends bytes to the reply being built; finish with [`reply_commit`].
pub fn reply_push(payload: &[u8]) -> Result<(), u32> {
    let mut err = 0u32;
    unsafe { sys::gr_reply_push(payload.as_ptr(), payload.len() as u32, &mut err) };
    match err {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Appends part of the incoming payload to the reply being built.
pub fn reply_push_input(offset: usize, len: usize) -> Result<(), u32> {
    let mut err = 0u32;
    unsafe { sys::gr_reply_push_input(offset as u32, len as u32, &mut err) };
    match err {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Sends the reply built by [`reply_push`] calls.
pub fn reply_commit(value: u128) -> Result<MessageId, u32> {
    let mut e = EMPTY;
    unsafe { sys::gr_reply_commit(value_ptr(&value), &mut e) };
    result_mid(e)
}

/// Sends `payload` with `value` to `dest`, delivered after `delay` blocks (0 = now).
pub fn send(dest: &ActorId, payload: &[u8], value: u128, delay: u32) -> Result<MessageId, u32> {
    let pv = HashWithValue { hash: *dest, value };
    let mut e = EMPTY;
    unsafe { sys::gr_send(&pv, payload.as_ptr(), payload.len() as u32, delay, &mut e) };
    result_mid(e)
}

/// Sends `len` bytes of the incoming payload starting at `offset` to `dest`.
pub fn send_input(dest: &ActorId, offset: usize, len: usize, value: u128, delay: u32) -> Result<MessageId, u32> {
    let pv = HashWithValue { hash: *dest, value };
    let mut e = EMPTY;
    unsafe { sys::gr_send_input(&pv, offset as u32, len as u32, delay, &mut e) };
    result_mid(e)
}

/// Starts an outgoing message built piecewise; returns its handle.
pub fn send_init() -> Result<u32, u32> {
    let mut e = ErrorWithHandle { error_code: 0, handle: 0 };
    unsafe { sys::gr_send_init(&mut e) };
    match e.error_code {
        0 => Ok(e.handle),
        code => Err(code),
    }
}

/// Appends bytes to the outgoing message `handle`.
pub fn send_push(handle: u32, payload: &[u8]) -> Result<(), u32> {
    let mut err = 0u32;
    unsafe { sys::gr_send_push(handle, payload.as_ptr(), payload.len() as u32, &mut err) };
    match err {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Appends part of the incoming payload to the outgoing message `handle`.
pub fn send_push_input(handle: u32, offset: usize, len: usize) -> Result<(), u32> {
    let mut err = 0u32;
    unsafe { sys::gr_send_push_input(handle, offset as u32, len as u32, &mut err) };
    match err {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Sends the message `handle` to `dest`.
pub fn send_commit(handle: u32, dest: &ActorId, value: u128, delay: u32) -> Result<MessageId, u32> {
    let pv = HashWithValue { hash: *dest, value };
    let mut e = EMPTY;
    unsafe { sys::gr_send_commit(handle, &pv, delay, &mut e) };
    result_mid(e)
}

/// Sender of the current message.
pub fn source() -> ActorId {
    let mut id = [0u8; 32];
    unsafe { sys::gr_source(&mut id) };
    id
}

/// Id of the current message (the same when a waited message runs again after a wake).
pub fn id() -> MessageId {
    let mut id = [0u8; 32];
    unsafe { sys::gr_message_id(&mut id) };
    id
}

/// Value attached to the current message.
pub fn value() -> u128 {
    let mut v = 0u128;
    unsafe { sys::gr_value(&mut v) };
    v
}

/// In `handle_reply`: id of the message this reply answers.
pub fn reply_to() -> Result<MessageId, u32> {
    let mut e = EMPTY;
    unsafe { sys::gr_reply_to(&mut e) };
    result_mid(e)
}

/// In `handle_reply`: the 4-byte reply code (`[0, ..]` = success).
pub fn reply_code() -> Result<[u8; 4], u32> {
    let mut e = ErrorWithReplyCode { error_code: 0, reply_code: [0; 4] };
    unsafe { sys::gr_reply_code(&mut e) };
    match e.error_code {
        0 => Ok(e.reply_code),
        code => Err(code),
    }
}

//! The execution environment: ids, block data, gas, and control flow
//! (waiting, waking, exiting, panicking).

use crate::msg::{ActorId, MessageId};
use crate::sys;

/// Id of this program.
pub fn program_id() -> ActorId {
    let mut id = [0u8; 32];
    unsafe { sys::gr_program_id(&mut id) };
    id
}

/// Current block number.
pub fn block_height() -> u32 {
    let mut h = 0u32;
    unsafe { sys::gr_block_height(&mut h) };
    h
}

/// Current block timestamp (as the host defines it; Ethereum: seconds).
pub fn block_timestamp() -> u64 {
    let mut t = 0u64;
    unsafe { sys::gr_block_timestamp(&mut t) };
    t
}

/// Gas left for this execution.
pub fn gas_available() -> u64 {
    let mut g = 0u64;
    unsafe { sys::gr_gas_available(&mut g) };
    g
}

/// Value balance of this program.
pub fn value_available() -> u128 {
    let mut v = 0u128;
    unsafe { sys::gr_value_available(&mut v) };
    v
}

/// Parks the current message for exactly `blocks` blocks unless woken earlier;
/// it then runs the same entry point again from the start with the same message id.
/// Memory changes and messages sent before the call are kept.
pub fn wait_for(blocks: u32) -> ! {
    unsafe { sys::gr_wait_for(blocks) }
}

/// Like [`wait_for`], but the host may shorten the wait (e.g. to what gas pays for).
pub fn wait_up_to(blocks: u32) -> ! {
    unsafe { sys::gr_wait_up_to(blocks) }
}

/// Wakes the waiting message `id` after `delay` blocks (0 = at once).
pub fn wake(id: &MessageId, delay: u32) -> Result<(), u32> {
    let mut err = 0u32;
    unsafe { sys::gr_wake(id, delay, &mut err) };
    match err {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Terminates this program for good, sending its value balance to `inheritor`.
pub fn exit(inheritor: &ActorId) -> ! {
    unsafe { sys::gr_exit(inheritor) }
}

/// Ends the current execution successfully, right here (an automatic reply follows if none was sent).
pub fn leave() -> ! {
    unsafe { sys::gr_leave() }
}

/// Fails the current execution with `msg` as the error reply payload.
pub fn panic(msg: &[u8]) -> ! {
    unsafe { sys::gr_panic(msg.as_ptr(), msg.len() as u32) }
}

/// Fails the current execution with the out-of-memory error.
pub fn oom_panic() -> ! {
    unsafe { sys::gr_oom_panic() }
}

/// Sends `msg` to the host's debug log (no effect on execution). Gear traps
/// on a payload that is not UTF-8, so pass text.
pub fn debug(msg: &[u8]) {
    unsafe { sys::gr_debug(msg.as_ptr(), msg.len() as u32) }
}

//! proxy — forwards requests to a target program and relays its reply, using
//! the wait/wake pattern that gstd's async runtime uses, without async.
//!
//! * `init`: payload = 32-byte id of the target program (anything else fails).
//! * `handle` (request M from sender S):
//!   1. First run: `gr_send` M's payload to the target (value 0), record
//!      `{M's id, S, sent message id}` in a free slot, then `gr_wait_for(100)`.
//!      Everything before the wait (the slot, the sent message) is kept.
//!   2. `handle_reply` (the target's reply R): `gr_reply_to` names the sent
//!      message; the matching slot stores R's payload (`gr_size`/`gr_read`) and
//!      reply code, then `gr_wake(M's id)`.
//!   3. M runs `handle` again with the *same* message id (`gr_message_id`), so
//!      it finds its slot and replies to S with R's payload, freeing the slot.
//! * Errors (all panics, so S gets an error reply): the target replied with an
//!   error reply code ("proxy: target failed" + code hex), no reply within 100
//!   blocks ("proxy: timeout"), payload/reply over 4 KiB, all 8 slots busy.
//!   Replies that match no waiting slot (late ones) are ignored.
#![no_std]

use gsdk::text::Buf;
use gsdk::{exec, msg};

const SLOTS: usize = 8;
const MAX_PAYLOAD: usize = 4096;
/// Blocks a request waits for the target's reply.
pub const WAIT_BLOCKS: u32 = 100;

const FREE: u8 = 0;
const WAITING: u8 = 1;
const REPLIED: u8 = 2;

#[derive(Clone, Copy)]
struct Pending {
    state: u8,
    too_large: bool,
    code: [u8; 4],
    /// Id of the original request (the waiting message).
    orig: [u8; 32],
    /// Its sender (kept for inspection; the reply goes to it automatically).
    source: [u8; 32],
    /// Id of the message sent to the target.
    sent: [u8; 32],
    len: u32,
    reply: [u8; MAX_PAYLOAD],
}

const EMPTY: Pending = Pending {
    state: FREE,
    too_large: false,
    code: [0; 4],
    orig: [0; 32],
    source: [0; 32],
    sent: [0; 32],
    len: 0,
    reply: [0; MAX_PAYLOAD],
};

static mut TARGET: [u8; 32] = [0; 32];
static mut PENDING: [Pending; SLOTS] = [EMPTY; SLOTS];
static mut BUF: [u8; MAX_PAYLOAD] = [0; MAX_PAYLOAD];

fn slots() -> &'static mut [Pending; SLOTS] {
    unsafe { &mut PENDING }
}

#[no_mangle]
pub extern "C" fn init() {
    match msg::load(unsafe { &mut BUF }) {
        Ok(p) if p.len() == 32 => unsafe { TARGET.copy_from_slice(p) },
        _ => exec::panic(b"proxy: init payload must be the 32-byte target id"),
    }
}

#[no_mangle]
pub extern "C" fn handle() {
    let mid = msg::id();
    // A re-run after wake (or timeout): same message id as the first run.
    if let Some(s) = slots().iter_mut().find(|s| s.state != FREE && s.orig == mid) {
        let state = s.state;
        s.state = FREE;
        if state == WAITING {
            exec::panic(b"proxy: timeout");
        }
        if s.too_large {
            exec::panic(b"proxy: target reply too large");
        }
        if s.code[0] != 0 {
            let mut b = Buf::<40>::new();
            b.str("proxy: target failed ").hex(&s.code);
            exec::panic(b.as_bytes());
        }
        if msg::reply(s.reply.get(..s.len as usize).unwrap_or(&[]), 0).is_err() {
            exec::panic(b"proxy: reply failed");
        }
        return;
    }
    // First run: forward and wait.
    let payload = match msg::load(unsafe { &mut BUF }) {
        Ok(p) => p,
        Err(_) => exec::panic(b"proxy: payload too large"),
    };
    let s = match slots().iter_mut().find(|s| s.state == FREE) {
        Some(s) => s,
        None => exec::panic(b"proxy: too many pending requests"),
    };
    let sent = match msg::send(unsafe { &TARGET }, payload, 0, 0) {
        Ok(id) => id,
        Err(_) => exec::panic(b"proxy: send failed"),
    };
    s.state = WAITING;
    s.too_large = false;
    s.orig = mid;
    s.source = msg::source();
    s.sent = sent;
    exec::wait_for(WAIT_BLOCKS)
}

#[no_mangle]
pub extern "C" fn handle_reply() {
    let to = match msg::reply_to() {
        Ok(id) => id,
        Err(_) => return,
    };
    let s = match slots().iter_mut().find(|s| s.state == WAITING && s.sent == to) {
        Some(s) => s,
        None => return, // late or unknown reply: ignore
    };
    s.code = msg::reply_code().unwrap_or([0xff; 4]);
    let n = msg::size();
    s.len = 0;
    s.too_large = true;
    if let Some(buf) = s.reply.get_mut(..n) {
        if n == 0 || msg::read_into(0, buf).is_ok() {
            s.len = n as u32;
            s.too_large = false;
        }
    }
    s.state = REPLIED;
    let _ = exec::wake(&s.orig, 0);
}

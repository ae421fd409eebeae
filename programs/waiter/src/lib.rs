//! waiter — exercises wait and wake.
//!
//! `handle` commands (ASCII):
//! * `wait` / `wait:<n>` — first run: remember this message id and
//!   `gr_wait_for(n)` (default n = 100 blocks). When the message runs again
//!   (woken by `wake`, or at the deadline) it replies `woke`.
//! * `wait_up_to:<n>` — the same with `gr_wait_up_to(n)`.
//! * `wake:<id>` — `<id>` is a 64-hex-digit message id (optional `0x`):
//!   calls `gr_wake(id, 0)`; replies `ok`, or `err:<code>` with the decimal
//!   error code from the host (Gear: 303 when the same id is woken twice in
//!   one execution; waking an id that is not waiting is *not* an error).
//! * anything else panics ("waiter: bad command"). At most 16 messages wait at once.
#![no_std]

use gsdk::text::{self, Buf};
use gsdk::{exec, msg};

pub const DEFAULT_BLOCKS: u32 = 100;
const SLOTS: usize = 16;

static mut WAITING: [[u8; 32]; SLOTS] = [[0; 32]; SLOTS];
static mut USED: [bool; SLOTS] = [false; SLOTS];
static mut BUF: [u8; 128] = [0; 128];

fn reply(p: &[u8]) {
    if msg::reply(p, 0).is_err() {
        exec::panic(b"waiter: reply failed");
    }
}

fn arg(p: &[u8], prefix: &[u8]) -> Option<u32> {
    if p == prefix {
        return Some(DEFAULT_BLOCKS);
    }
    let n = text::parse_u64(p.strip_prefix(prefix)?.strip_prefix(b":")?)?;
    u32::try_from(n).ok()
}

fn wait(blocks: u32, up_to: bool) {
    let (waiting, used) = unsafe { (&mut WAITING, &mut USED) };
    let mid = msg::id();
    if let Some(i) = (0..SLOTS).find(|&i| used[i] && waiting[i] == mid) {
        used[i] = false; // second run: we were woken
        return reply(b"woke");
    }
    let i = match (0..SLOTS).find(|&i| !used[i]) {
        Some(i) => i,
        None => exec::panic(b"waiter: too many waiting messages"),
    };
    used[i] = true;
    waiting[i] = mid;
    if up_to {
        exec::wait_up_to(blocks)
    } else {
        exec::wait_for(blocks)
    }
}

#[no_mangle]
pub extern "C" fn handle() {
    let p: &[u8] = match msg::load(unsafe { &mut BUF }) {
        Ok(p) => p,
        Err(_) => exec::panic(b"waiter: bad command"),
    };
    if let Some(n) = arg(p, b"wait") {
        wait(n, false)
    } else if let Some(n) = arg(p, b"wait_up_to") {
        wait(n, true)
    } else if let Some(hex) = p.strip_prefix(b"wake:") {
        let mut id = [0u8; 32];
        if text::hex_decode(hex, &mut id).is_none() {
            exec::panic(b"waiter: bad command");
        }
        match exec::wake(&id, 0) {
            Ok(()) => reply(b"ok"),
            Err(code) => {
                let mut b = Buf::<16>::new();
                b.str("err:").u64(code as u64);
                reply(b.as_bytes())
            }
        }
    } else {
        exec::panic(b"waiter: bad command")
    }
}

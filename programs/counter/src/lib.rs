//! counter — state that persists across messages.
//!
//! * `init`: empty payload → start at 0; otherwise the payload is the start
//!   value as decimal ASCII (e.g. `41`). Anything else fails the init.
//! * `handle` commands (ASCII):
//!   * `inc` — add 1;
//!   * `add:<n>` — add the decimal `n` (wrapping at 2^64);
//!   * `get` — no change.
//!
//!   Every reply is the current count as 8 bytes little-endian (u64), built
//!   with `gr_reply_push` + `gr_reply_commit`. An unknown command panics
//!   ("counter: bad command") and the count is unchanged.
#![no_std]

use gsdk::{exec, msg, text};

static mut COUNT: u64 = 0;
static mut BUF: [u8; 64] = [0; 64];

fn payload() -> &'static [u8] {
    match msg::load(unsafe { &mut BUF }) {
        Ok(p) => p,
        Err(_) => exec::panic(b"counter: payload too long"),
    }
}

#[no_mangle]
pub extern "C" fn init() {
    let p = payload();
    if !p.is_empty() {
        match text::parse_u64(p) {
            Some(n) => unsafe { COUNT = n },
            None => exec::panic(b"counter: init payload must be decimal"),
        }
    }
}

#[no_mangle]
pub extern "C" fn handle() {
    let p = payload();
    let add = if p == b"inc" {
        1
    } else if p == b"get" {
        0
    } else if let Some(n) = p.strip_prefix(b"add:").and_then(text::parse_u64) {
        n
    } else {
        exec::panic(b"counter: bad command")
    };
    let count = unsafe {
        COUNT = COUNT.wrapping_add(add);
        COUNT
    };
    if msg::reply_push(&count.to_le_bytes()).is_err() || msg::reply_commit(0).is_err() {
        exec::panic(b"counter: reply failed");
    }
}

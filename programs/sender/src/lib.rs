//! sender — sends one outgoing message, for testing message routing.
//!
//! * `handle` payload: `dest[32] ‖ body`. Sends `body` (possibly empty) to the
//!   actor `dest` (a program id, or an Ethereum address left-padded with 12
//!   zero bytes) with value 0 and no delay, using `gr_send_input` (the body is
//!   taken straight from the incoming payload). Replies `sent`.
//! * Payload shorter than 32 bytes, or a send error, panics
//!   ("sender: payload must start with a 32-byte destination" / "sender: send failed: <code>").
//! * Replies to the sent messages are accepted and ignored (`handle_reply` is empty).
#![no_std]

use gsdk::text::Buf;
use gsdk::{exec, msg};

#[no_mangle]
pub extern "C" fn handle() {
    let n = msg::size();
    let mut dest = [0u8; 32];
    if n < 32 || msg::read_into(0, &mut dest).is_err() {
        exec::panic(b"sender: payload must start with a 32-byte destination");
    }
    if let Err(code) = msg::send_input(&dest, 32, n - 32, 0, 0) {
        let mut b = Buf::<40>::new();
        b.str("sender: send failed: ").u64(code as u64);
        exec::panic(b.as_bytes());
    }
    if msg::reply(b"sent", 0).is_err() {
        exec::panic(b"sender: reply failed");
    }
}

#[no_mangle]
pub extern "C" fn handle_reply() {}

//! ping — the smallest useful program.
//!
//! * `init`: accepts any payload, does nothing (the host sends the automatic success reply).
//! * `handle`: payload `PING` → reply `PONG`; any other payload → reply with the
//!   same bytes (echo). Echoes longer than 8 KiB are sent with `gr_reply_input`
//!   (straight from the incoming payload, no copy through memory).
#![no_std]

use gsdk::msg;

static mut BUF: [u8; 8192] = [0; 8192];

#[no_mangle]
pub extern "C" fn init() {}

#[no_mangle]
pub extern "C" fn handle() {
    let buf = unsafe { &mut BUF };
    let res = match msg::load(buf) {
        Ok(p) if p == b"PING" => msg::reply(b"PONG", 0),
        Ok(p) => msg::reply(p, 0),
        Err(_) => msg::reply_input(0, msg::size(), 0),
    };
    if res.is_err() {
        gsdk::exec::panic(b"ping: reply failed");
    }
}

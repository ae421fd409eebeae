//! ping — the smallest useful program.
//!
//! * `init`: accepts any payload, does nothing (the host sends the automatic success reply).
//! * `handle`: payload `PING` → reply `PONG`; any other payload → reply with the
//!   same bytes (echo). Echoes longer than 8 KiB are sent with `gr_reply_input`
//!   (straight from the incoming payload, no copy through memory).
//! * Solidity callback form: a payload that starts with the 4-byte selector of
//!   `replyOn_ping(bytes32,bytes)` (`0x70eb8721`) gets a reply that *is* the
//!   calldata of that function — selector ‖ abi.encode(bytes32 messageId, bytes
//!   answer) — where `messageId` is this message's id (`gr_message_id`) and
//!   `answer` is `PONG` if the rest of the payload is `PING`, else the rest. Sent
//!   with `callReply`, the Mirror calls the sender with it (see
//!   contracts/examples/PingClient.sol).
#![no_std]

use gsdk::msg;
use gsdk::text::Buf;

static mut BUF: [u8; 8192] = [0; 8192];

/// keccak256("replyOn_ping(bytes32,bytes)")[..4]
const REPLY_ON_PING: [u8; 4] = [0x70, 0xeb, 0x87, 0x21];
const ZEROS: [u8; 32] = [0; 32];

#[no_mangle]
pub extern "C" fn init() {}

#[no_mangle]
pub extern "C" fn handle() {
    let n = msg::size();
    let mut sel = [0u8; 4];
    let res = if n >= 4 && msg::read_into(0, &mut sel).is_ok() && sel == REPLY_ON_PING {
        reply_on_ping(n - 4)
    } else {
        let buf = unsafe { &mut BUF };
        match msg::load(buf) {
            Ok(p) if p == b"PING" => msg::reply(b"PONG", 0),
            Ok(p) => msg::reply(p, 0),
            Err(_) => msg::reply_input(0, n, 0),
        }
    };
    if res.is_err() {
        gsdk::exec::panic(b"ping: reply failed");
    }
}

/// An ABI word holding `v` (big-endian, right-aligned).
fn word(v: u32) -> [u8; 32] {
    let mut w = [0u8; 32];
    let b = v.to_be_bytes();
    w[28] = b[0];
    w[29] = b[1];
    w[30] = b[2];
    w[31] = b[3];
    w
}

/// Reply with the calldata of `replyOn_ping(bytes32 messageId, bytes answer)`; the
/// request's argument is the `rest` bytes after the selector.
fn reply_on_ping(rest: usize) -> Result<msg::MessageId, u32> {
    let mut arg = [0u8; 4];
    let ping = rest == 4 && msg::read_into(4, &mut arg).is_ok() && &arg == b"PING";
    let len = if ping { 4 } else { rest };
    let mut head = Buf::<100>::new();
    head.bytes(&REPLY_ON_PING)
        .bytes(&msg::id())
        .bytes(&word(0x40)) // offset of `answer` in the arguments
        .bytes(&word(len as u32));
    msg::reply_push(head.as_bytes())?;
    if ping {
        msg::reply_push(b"PONG")?;
    } else if rest > 0 {
        msg::reply_push_input(4, rest)?;
    }
    let pad = (32 - len % 32) % 32;
    msg::reply_push(ZEROS.get(..pad).unwrap_or(&[]))?;
    msg::reply_commit(0)
}

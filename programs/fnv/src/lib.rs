//! fnv — the second compute job: FNV-1a plus xorshift mixing over a 1 KiB
//! buffer (exact definition in `README.md` and `kernel.rs`).
//!
//! * `handle` payload: empty → 10,240 rounds; or 4 bytes = round count (u32 LE).
//!   Other lengths panic ("fnv: bad payload").
//! * Reply: the final 64-bit hash, u64 LE (8 bytes).
#![no_std]

use gsdk::{exec, msg};

#[path = "kernel.rs"]
pub mod kernel;
pub use kernel::fnv_mix;

static mut BUF: [u8; 4] = [0; 4];

#[no_mangle]
pub extern "C" fn handle() {
    let rounds = match msg::load(unsafe { &mut BUF }) {
        Ok(p) if p.is_empty() => kernel::DEFAULT_ROUNDS,
        Ok(p) if p.len() == 4 => u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
        _ => exec::panic(b"fnv: bad payload"),
    };
    if msg::reply(&fnv_mix(rounds).to_le_bytes(), 0).is_err() {
        exec::panic(b"fnv: reply failed");
    }
}

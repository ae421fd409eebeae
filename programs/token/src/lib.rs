//! token — fungible balances keyed by 32-byte actor id.
//!
//! * `init`: payload empty → supply 1_000_000; or 16 bytes = supply as u128 LE.
//!   The whole supply goes to the init message's source. Other payloads fail the init.
//! * `handle` commands (binary; u128 amounts little-endian):
//!
//!   | payload | meaning | reply |
//!   |---|---|---|
//!   | `00 ‖ actor[32]` (33 B) | balance_of(actor) | balance, 16 B u128 LE |
//!   | `01 ‖ to[32] ‖ amount[16]` (49 B) | transfer amount from the message source to `to` | 1 status byte |
//!   | `02` (1 B) | total_supply | 16 B u128 LE |
//!
//!   Status byte: `00` ok, `01` insufficient balance, `02` no free slot for a
//!   new holder, `FF` malformed command (also the whole reply to any unknown
//!   or wrongly sized command). Failures are replies, never panics, and leave
//!   balances unchanged.
//!
//! Balances live in a [`gsdk::map::Map`] in one 64 KiB page obtained from the
//! `alloc` syscall at init (1024 slots, at most 896 holders).
#![no_std]

use gsdk::map::Map;
use gsdk::mem::{Arena, PAGE};
use gsdk::text::array_at;
use gsdk::{exec, msg};

pub const OK: u8 = 0;
pub const INSUFFICIENT: u8 = 1;
pub const FULL: u8 = 2;
pub const MALFORMED: u8 = 0xFF;
pub const DEFAULT_SUPPLY: u128 = 1_000_000;

static mut ARENA: Arena = Arena::new();
static mut BALANCES: Map<u128> = Map::empty();
static mut SUPPLY: u128 = 0;
static mut BUF: [u8; 64] = [0; 64];

fn reply(p: &[u8]) {
    if msg::reply(p, 0).is_err() {
        exec::panic(b"token: reply failed");
    }
}

#[no_mangle]
pub extern "C" fn init() {
    let supply = match msg::load(unsafe { &mut BUF }) {
        Ok(p) if p.is_empty() => DEFAULT_SUPPLY,
        Ok(p) if p.len() == 16 => u128::from_le_bytes(array_at(p, 0).unwrap_or_default()),
        _ => exec::panic(b"token: init payload must be empty or a 16-byte u128"),
    };
    let balances = unsafe { &mut BALANCES };
    *balances = match Map::in_arena(unsafe { &mut ARENA }, PAGE) {
        Some(m) => m,
        None => exec::oom_panic(),
    };
    let _ = balances.insert(&msg::source(), supply);
    unsafe { SUPPLY = supply };
}

fn transfer(to: &[u8; 32], amount: u128) -> u8 {
    let balances = unsafe { &mut BALANCES };
    let from = msg::source();
    if amount == 0 {
        return OK;
    }
    if balances.get(&from).unwrap_or(0) < amount {
        return INSUFFICIENT;
    }
    if balances.get_or_insert(to, 0).is_none() {
        return FULL;
    }
    if let Some(b) = balances.get_mut(&from) {
        *b -= amount;
    }
    if let Some(b) = balances.get_mut(to) {
        *b += amount;
    }
    OK
}

#[no_mangle]
pub extern "C" fn handle() {
    let p: &[u8] = match msg::load(unsafe { &mut BUF }) {
        Ok(p) => p,
        Err(_) => &[],
    };
    match (p.first(), p.len()) {
        (Some(0), 33) => {
            let who = array_at(p, 1).unwrap_or_default();
            let bal = unsafe { BALANCES.get(&who) }.unwrap_or(0);
            reply(&bal.to_le_bytes());
        }
        (Some(1), 49) => {
            let to = array_at(p, 1).unwrap_or_default();
            let amount = u128::from_le_bytes(array_at(p, 33).unwrap_or_default());
            reply(&[transfer(&to, amount)]);
        }
        (Some(2), 1) => reply(&unsafe { SUPPLY }.to_le_bytes()),
        _ => reply(&[MALFORMED]),
    }
}

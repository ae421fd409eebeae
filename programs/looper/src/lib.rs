//! looper — never finishes: `handle` spins forever (a volatile read per
//! iteration, so the loop cannot be optimised away). Only the gas limit / fuel
//! stops it. `init` succeeds.
#![no_std]

// Linked for its panic handler (gr_panic) even though nothing else is used.
extern crate gsdk;

static mut SPIN: u32 = 0;

#[no_mangle]
pub extern "C" fn init() {}

#[no_mangle]
pub extern "C" fn handle() {
    loop {
        // SPIN is never 1, but the compiler must read it every time.
        if unsafe { core::ptr::read_volatile(&SPIN) } == 1 {
            break;
        }
    }
}

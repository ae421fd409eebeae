//! panicker — fails on purpose.
//!
//! * `init`: succeeds (no reply of its own).
//! * `handle`: `panic!("boom")`. gsdk is built with its `panic-message`
//!   feature here, so the error reply's payload is Rust's panic text:
//!   `panicked at 'boom', panicker/src/lib.rs:LINE:COL`.
#![no_std]

// Linked for its panic handler (gr_panic) even though nothing else is used.
extern crate gsdk;

#[no_mangle]
pub extern "C" fn init() {}

#[no_mangle]
pub extern "C" fn handle() {
    panic!("boom");
}

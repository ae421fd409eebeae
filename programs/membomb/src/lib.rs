//! membomb — exhausts or violates memory.
//!
//! `handle` commands (ASCII):
//! * empty or `oom` — calls `alloc(1)` until it fails (returns `u32::MAX`),
//!   then `gr_oom_panic` (error reply "out of memory"). All allocations are
//!   rolled back with the failed execution.
//! * `count` — the same loop, then frees every page it got (runs of adjacent
//!   pages with `free_range`, single pages with `free`) and replies the number
//!   of pages it obtained, u32 LE. Running it twice must give the same number.
//! * `trap` — stores to address 0xFFFF_FFF0, far beyond memory: a wasm trap.
//! * anything else panics ("membomb: bad command"). `init` succeeds.
#![no_std]

use gsdk::{exec, mem, msg};

const MAX_PAGES: usize = 32768;
/// Pages obtained by `count`, in order (at most 32768 = 2 GiB, the wasm32/ethexe limit).
static mut PAGES: [u16; MAX_PAGES] = [0; MAX_PAGES];
static mut BUF: [u8; 8] = [0; 8];

fn alloc_one() -> Option<u32> {
    mem::alloc_pages(1).map(|p| (p as usize / mem::PAGE) as u32)
}

fn count() -> u32 {
    let pages = unsafe { &mut PAGES };
    let mut n = 0usize;
    for slot in pages.iter_mut() {
        match alloc_one() {
            Some(p) => *slot = p as u16,
            None => break,
        }
        n += 1;
    }
    // Free in runs of consecutive page numbers.
    let got = pages.get(..n).unwrap_or(&[]);
    let mut i = 0;
    while let Some(&first) = got.get(i) {
        let mut last = first;
        while got.get(i + 1) == Some(&last.wrapping_add(1)) {
            last += 1;
            i += 1;
        }
        let ok = if last == first {
            mem::free_page(first as u32)
        } else {
            mem::free_pages(first as u32, last as u32)
        };
        if ok.is_err() {
            exec::panic(b"membomb: free failed");
        }
        i += 1;
    }
    n as u32
}

#[no_mangle]
pub extern "C" fn init() {}

#[no_mangle]
pub extern "C" fn handle() {
    let p: &[u8] = match msg::load(unsafe { &mut BUF }) {
        Ok(p) => p,
        Err(_) => exec::panic(b"membomb: bad command"),
    };
    match p {
        b"" | b"oom" => {
            while alloc_one().is_some() {}
            exec::oom_panic()
        }
        b"count" => {
            let n = count();
            if msg::reply(&n.to_le_bytes(), 0).is_err() {
                exec::panic(b"membomb: reply failed");
            }
        }
        b"trap" => unsafe { core::ptr::write_volatile(0xFFFF_FFF0usize as *mut u32, 1) },
        _ => exec::panic(b"membomb: bad command"),
    }
}

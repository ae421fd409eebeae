//! Memory from the `alloc` syscall: raw page calls and a bump [`Arena`].
//!
//! Gear programs have no `memory.grow`; extra memory comes from the host's
//! `alloc(pages)`, which maps `pages` fresh 64 KiB wasm pages beyond the
//! program's static area and returns the first page index (`u32::MAX` when
//! the memory limit is reached). Allocated pages, like all memory, persist
//! across messages, so an arena kept in a `static` keeps its data too.

use crate::sys;

/// Size of a wasm page, the unit of `alloc`/`free`.
pub const PAGE: usize = 65536;

/// Asks the host for `n` contiguous pages; returns a pointer to the first byte.
pub fn alloc_pages(n: u32) -> Option<*mut u8> {
    let page = unsafe { sys::alloc(n) };
    if page == u32::MAX {
        None
    } else {
        Some((page as usize * PAGE) as *mut u8)
    }
}

/// Returns the page at index `page` to the host.
pub fn free_page(page: u32) -> Result<(), u32> {
    match unsafe { sys::free(page) } {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Returns pages `first..=last` to the host.
pub fn free_pages(first: u32, last: u32) -> Result<(), u32> {
    match unsafe { sys::free_range(first, last) } {
        0 => Ok(()),
        e => Err(e),
    }
}

/// A bump allocator over pages from `alloc`. It never frees; it asks the host
/// for just enough pages when the current run is exhausted, and keeps
/// extending the run when the host hands back adjacent pages.
pub struct Arena {
    next: usize,
    end: usize,
}

impl Arena {
    pub const fn new() -> Self {
        Arena { next: 0, end: 0 }
    }

    /// `size` bytes aligned to `align` (a power of two); `None` when the host refuses pages.
    /// The bytes are not guaranteed to be zero: see [`Arena::alloc_zeroed`].
    pub fn alloc(&mut self, size: usize, align: usize) -> Option<*mut u8> {
        loop {
            let start = (self.next + align - 1) & !(align - 1);
            if self.end != 0 && start + size <= self.end {
                self.next = start + size;
                return Some(start as *mut u8);
            }
            // Ask for the missing bytes; if the pages are not adjacent to the
            // current run, start a new run there and try again.
            let need = if self.end == 0 { size } else { start + size - self.end };
            let pages = ((need + PAGE - 1) / PAGE).max(1);
            let p = alloc_pages(pages as u32)? as usize;
            if p != self.end || self.end == 0 {
                self.next = p;
            }
            self.end = p + pages * PAGE;
        }
    }

    /// Like [`Arena::alloc`], filled with zeros.
    pub fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<*mut u8> {
        let p = self.alloc(size, align)?;
        unsafe { core::ptr::write_bytes(p, 0, size) };
        Some(p)
    }

    /// Bytes left before the arena must ask the host again.
    pub fn remaining(&self) -> usize {
        self.end - self.next
    }
}

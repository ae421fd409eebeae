//! gsdk — a tiny, dependency-free SDK for Gear / Vara.eth programs.
//!
//! * [`sys`]: raw syscall imports (module `env`) with Gear's exact signatures.
//! * [`msg`]: the current message — read the payload, reply, send.
//! * [`exec`]: ids, block data, gas, wait/wake, exit/leave, panic, debug log.
//! * [`mem`]: `alloc`/`free` page syscalls and a bump [`mem::Arena`] on top.
//! * [`map`]: a fixed-capacity open-addressing map keyed by 32-byte ids.
//! * [`text`]: integer/hex formatting into a fixed buffer, decimal/hex parsing,
//!   and the [`debug!`] macro.
//!
//! No `alloc` crate (Rust 1.63 needs an unstable error handler for it in
//! `no_std`): programs keep state in `static`s and in arena pages.
//!
//! Linking this crate installs a panic handler that fails the execution via
//! `gr_panic` with "panicked at FILE:LINE"; with the `panic-message` feature
//! it sends Rust's full panic text instead ("panicked at 'MSG', FILE:L:C"),
//! which pulls in `core::fmt` (a few KiB of code).
#![no_std]

pub mod exec;
pub mod map;
pub mod mem;
pub mod msg;
pub mod sys;
pub mod text;

/// Sends its arguments, concatenated, to the host debug log via `gr_debug`.
/// Each argument is a string, byte string, integer, or [`text::Hex`].
/// Output is truncated at 256 bytes. Pass text: Gear traps on non-UTF-8
/// debug strings (raw byte strings go through as they are; use `Hex` for ids).
///
/// ```ignore
/// gsdk::debug!("count=", n, " from ", gsdk::text::Hex(&src));
/// ```
#[macro_export]
macro_rules! debug {
    ($($p:expr),* $(,)?) => {{
        let mut b = $crate::text::Buf::<256>::new();
        $( $crate::text::Piece::put(&$p, &mut b); )*
        $crate::exec::debug(b.as_bytes());
    }};
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut b = text::Buf::<256>::new();
    #[cfg(feature = "panic-message")]
    {
        let _ = core::fmt::Write::write_fmt(&mut b, format_args!("{}", info));
    }
    #[cfg(not(feature = "panic-message"))]
    {
        b.str("panicked");
        if let Some(loc) = info.location() {
            b.str(" at ").str(loc.file()).str(":").u64(loc.line() as u64);
        }
    }
    exec::panic(b.as_bytes())
}

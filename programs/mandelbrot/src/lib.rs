//! mandelbrot — a compute-heavy job: one tile per message.
//!
//! * `handle` payload (36 bytes, little-endian):
//!   `x0: i64 ‖ y0: i64 ‖ step: i64` (Q28 fixed point, i.e. value × 2^28)
//!   `‖ width: u32 ‖ height: u32 ‖ max_iter: u32`.
//!   An empty payload means the default benchmark job [`DEFAULT_JOB`]:
//!   32×32 tile at x0 = -2.0, y0 = -1.5, step = 3.0/32, max_iter = 256.
//!   Any other length panics ("mandelbrot: bad payload").
//! * Reply: the sum of escape iteration counts over the tile, u64 LE (8 bytes).
//!
//! The algorithm is in `kernel.rs` (exactly specified there); `bench_kernels`
//! compiles the same file into a plain wasm export for bare benchmarks.
#![no_std]

use gsdk::{exec, msg};

#[path = "kernel.rs"]
pub mod kernel;
pub use kernel::mandelbrot;

/// The default job as `(x0, y0, step, width, height, max_iter)`.
pub const DEFAULT_JOB: (i64, i64, i64, u32, u32, u32) =
    (-2 * kernel::ONE, -3 * kernel::ONE / 2, 3 * kernel::ONE / 32, 32, 32, 256);

static mut BUF: [u8; 36] = [0; 36];

fn i64_at(p: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[at..at + 8]);
    i64::from_le_bytes(b)
}

fn u32_at(p: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&p[at..at + 4]);
    u32::from_le_bytes(b)
}

#[no_mangle]
pub extern "C" fn handle() {
    let (x0, y0, step, w, h, it) = match msg::load(unsafe { &mut BUF }) {
        Ok(p) if p.is_empty() => DEFAULT_JOB,
        Ok(p) if p.len() == 36 => {
            (i64_at(p, 0), i64_at(p, 8), i64_at(p, 16), u32_at(p, 24), u32_at(p, 28), u32_at(p, 32))
        }
        _ => exec::panic(b"mandelbrot: bad payload"),
    };
    let sum = mandelbrot(x0, y0, step, w, h, it);
    if msg::reply(&sum.to_le_bytes(), 0).is_err() {
        exec::panic(b"mandelbrot: reply failed");
    }
}

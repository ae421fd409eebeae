//! bench_kernels — NOT a Gear program. A plain wasm module (its own memory, no
//! imports) exporting the very same kernels as the `mandelbrot` and `fnv`
//! programs (their `kernel.rs` files are compiled in), so benchmarks can time
//! the algorithms called bare and compare with runs through the processor.
//!
//! Exports:
//! * `mandelbrot(x0: i64, y0: i64, step: i64, w: i32, h: i32, max_iter: i32) -> i64`
//! * `fnv_mix(rounds: i32) -> i64`
//!
//! (u32/u64 arguments and results travel as i32/i64 bit patterns.)
#![no_std]

#[path = "../../mandelbrot/src/kernel.rs"]
mod mandel;
#[path = "../../fnv/src/kernel.rs"]
mod fnv;

#[no_mangle]
pub extern "C" fn mandelbrot(x0: i64, y0: i64, step: i64, w: i32, h: i32, max_iter: i32) -> i64 {
    mandel::mandelbrot(x0, y0, step, w as u32, h as u32, max_iter as u32) as i64
}

#[no_mangle]
pub extern "C" fn fnv_mix(rounds: i32) -> i64 {
    fnv::fnv_mix(rounds as u32) as i64
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

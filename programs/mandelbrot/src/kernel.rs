//! The pure mandelbrot kernel, shared (via `#[path]`) with `bench_kernels`.
//!
//! Fixed point Q28: a real x is the i64 `round(x * 2^28)`. All arithmetic is
//! wrapping i64; `>>` is the arithmetic shift (floor division by a power of 2).
//!
//! ```text
//! sum = 0
//! for py in 0..h:                      ci = y0 + py*step
//!   for px in 0..w:                    cr = x0 + px*step
//!     zr = zi = 0; n = 0
//!     while n < max_iter:
//!       zr2 = (zr*zr) >> 28;  zi2 = (zi*zi) >> 28
//!       if zr2 + zi2 > 4<<28: break    # |z|^2 > 4
//!       zi = ((zr*zi) >> 27) + ci      # 2*zr*zi
//!       zr = zr2 - zi2 + cr
//!       n += 1
//!     sum += n
//! return sum                           # as u64
//! ```

/// Fixed-point fraction bits.
pub const FRAC: u32 = 28;
/// 1.0 in Q28.
pub const ONE: i64 = 1 << FRAC;

/// Sum of the escape iteration counts over a `w`×`h` tile (see the module doc).
#[inline(never)]
pub fn mandelbrot(x0: i64, y0: i64, step: i64, w: u32, h: u32, max_iter: u32) -> u64 {
    let four = 4 * ONE;
    let mut sum: u64 = 0;
    let mut ci = y0;
    for _ in 0..h {
        let mut cr = x0;
        for _ in 0..w {
            let (mut zr, mut zi) = (0i64, 0i64);
            let mut n = 0u32;
            while n < max_iter {
                let zr2 = zr.wrapping_mul(zr) >> FRAC;
                let zi2 = zi.wrapping_mul(zi) >> FRAC;
                if zr2.wrapping_add(zi2) > four {
                    break;
                }
                zi = (zr.wrapping_mul(zi) >> (FRAC - 1)).wrapping_add(ci);
                zr = zr2.wrapping_sub(zi2).wrapping_add(cr);
                n += 1;
            }
            sum = sum.wrapping_add(n as u64);
            cr = cr.wrapping_add(step);
        }
        ci = ci.wrapping_add(step);
    }
    sum
}

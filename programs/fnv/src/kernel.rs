//! The pure fnv_mix kernel, shared (via `#[path]`) with `bench_kernels`.
//! Specified exactly in `programs/fnv/README.md`:
//!
//! ```text
//! buf[i] = i mod 256 for i in 0..1024          # 1 KiB of bytes
//! h = 0xcbf29ce484222325                        # FNV-1a 64 offset basis
//! for r in 0..rounds:
//!   for i in 0..1024: h = (h XOR buf[i]) * 0x100000001b3 mod 2^64
//!   h ^= h << 13;  h ^= h >> 7;  h ^= h << 17  # xorshift64, logical shifts mod 2^64
//!   buf[r mod 1024] = h mod 256
//! return h
//! ```

pub const BUF_LEN: usize = 1024;
pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
pub const PRIME: u64 = 0x0000_0100_0000_01b3;
#[allow(dead_code)]
pub const DEFAULT_ROUNDS: u32 = 10_240;

/// Runs `rounds` rounds (see the module doc) and returns the final hash.
#[inline(never)]
pub fn fnv_mix(rounds: u32) -> u64 {
    let mut buf = [0u8; BUF_LEN];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut h = OFFSET_BASIS;
    for r in 0..rounds as usize {
        for &b in buf.iter() {
            h = (h ^ b as u64).wrapping_mul(PRIME);
        }
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        buf[r % BUF_LEN] = h as u8;
    }
    h
}

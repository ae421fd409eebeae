//! Cheap byte and text helpers without `core::fmt`: a fixed-capacity buffer
//! that formats integers and hex, decimal parsing, hex decoding, and
//! [`array_at`] for fixed-size fields of binary payloads.
//!
//! They avoid indexing that can panic: a bounds-check panic path drags
//! `core::fmt` (about 4 KiB) into the program.

/// A byte buffer of fixed capacity `N`; writes beyond it are silently dropped.
pub struct Buf<const N: usize> {
    data: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    pub const fn new() -> Self {
        Buf { data: [0; N], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.data.get(..self.len).unwrap_or(&[])
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends raw bytes (truncated at capacity).
    pub fn bytes(&mut self, s: &[u8]) -> &mut Self {
        // `get_mut` rather than indexing: no bounds-check panic paths, which
        // would drag core::fmt into every program.
        for &c in s {
            match self.data.get_mut(self.len) {
                Some(slot) => *slot = c,
                None => break,
            }
            self.len += 1;
        }
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends `n` in decimal.
    pub fn u128(&mut self, n: u128) -> &mut Self {
        if n <= u64::MAX as u128 {
            return self.u64(n as u64);
        }
        // Split off the low 19 digits so the rest is 64-bit arithmetic.
        const E19: u128 = 10_000_000_000_000_000_000;
        self.u128(n / E19);
        let low = (n % E19) as u64;
        let mut digits = [b'0'; 19];
        let mut rest = low;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.bytes(&digits)
    }

    /// Appends `n` in decimal (64-bit arithmetic: cheaper than [`Buf::u128`]).
    pub fn u64(&mut self, n: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let mut rest = n;
        let mut start = tmp.len();
        for (i, d) in tmp.iter_mut().enumerate().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
            start = i;
            if rest == 0 {
                break;
            }
        }
        self.bytes(tmp.get(start..).unwrap_or(&[]))
    }

    pub fn i64(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.bytes(b"-");
        }
        self.u64(n.unsigned_abs())
    }

    /// Appends `s` as lowercase hex.
    pub fn hex(&mut self, s: &[u8]) -> &mut Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for &c in s {
            self.bytes(&[DIGITS[(c >> 4) as usize & 15], DIGITS[(c & 15) as usize]]);
        }
        self
    }
}

impl<const N: usize> core::fmt::Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// Something the [`debug!`](crate::debug) macro can append to a [`Buf`].
pub trait Piece {
    fn put<const N: usize>(&self, b: &mut Buf<N>);
}

/// Wraps bytes to be printed as hex by [`debug!`](crate::debug).
pub struct Hex<'a>(pub &'a [u8]);

impl Piece for str {
    fn put<const N: usize>(&self, b: &mut Buf<N>) {
        b.str(self);
    }
}
impl Piece for [u8] {
    fn put<const N: usize>(&self, b: &mut Buf<N>) {
        b.bytes(self);
    }
}
impl<const K: usize> Piece for [u8; K] {
    fn put<const N: usize>(&self, b: &mut Buf<N>) {
        b.bytes(self);
    }
}
impl<'a> Piece for Hex<'a> {
    fn put<const N: usize>(&self, b: &mut Buf<N>) {
        b.hex(self.0);
    }
}
impl<T: Piece + ?Sized> Piece for &T {
    fn put<const N: usize>(&self, b: &mut Buf<N>) {
        (**self).put(b);
    }
}
macro_rules! piece_unsigned {
    ($($t:ty),*) => {$(
        impl Piece for $t {
            fn put<const N: usize>(&self, b: &mut Buf<N>) { b.u64(*self as u64); }
        }
    )*};
}
piece_unsigned!(u8, u16, u32, u64, usize);
impl Piece for i32 {
    fn put<const N: usize>(&self, b: &mut Buf<N>) {
        b.i64(*self as i64);
    }
}
impl Piece for i64 {
    fn put<const N: usize>(&self, b: &mut Buf<N>) {
        b.i64(*self);
    }
}
impl Piece for u128 {
    fn put<const N: usize>(&self, b: &mut Buf<N>) {
        b.u128(*self);
    }
}

/// Parses unsigned decimal ASCII (digits only, at least one); `None` on any
/// other byte or on overflow.
pub fn parse_u128(s: &[u8]) -> Option<u128> {
    if s.is_empty() {
        return None;
    }
    let mut n: u128 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((c - b'0') as u128)?;
    }
    Some(n)
}

/// Like [`parse_u128`] for `u64`.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(n)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (an optional `0x` prefix allowed) into exactly `out.len()` bytes.
pub fn hex_decode(s: &[u8], out: &mut [u8]) -> Option<()> {
    let s = s.strip_prefix(b"0x").unwrap_or(s);
    if s.len() != out.len() * 2 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = (hex_val(s[2 * i])? << 4) | hex_val(s[2 * i + 1])?;
    }
    Some(())
}

/// The `N` bytes of `p` starting at `at`, as an array; `None` if `p` is too short.
pub fn array_at<const N: usize>(p: &[u8], at: usize) -> Option<[u8; N]> {
    p.get(at..at.checked_add(N)?)?.try_into().ok()
}

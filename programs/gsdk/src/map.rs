//! A fixed-capacity hash map from 32-byte ids to plain-old-data values, used
//! for token balances. Open addressing with linear probing over a slot array
//! that lives in caller-provided memory (usually an [`Arena`](crate::mem::Arena)
//! block). No removal: a zero balance simply stays in its slot.

use core::mem::{align_of, size_of};

/// One slot: a key, a used flag and the value.
#[repr(C)]
pub struct Slot<V> {
    pub key: [u8; 32],
    pub used: u32,
    pub val: V,
}

/// The map. `V` must be valid when all-zero (integers, arrays of integers).
pub struct Map<V: Copy> {
    slots: *mut Slot<V>,
    mask: usize,
    len: usize,
}

/// The map keeps at least 1/8 of its slots empty so probes stay short.
fn max_len(cap: usize) -> usize {
    cap - cap / 8
}

fn hash(k: &[u8; 32]) -> usize {
    // Mix all four 64-bit words: Ethereum-derived ids have 12 leading zero bytes.
    let mut x = 0u64;
    for i in 0..4 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&k[i * 8..i * 8 + 8]);
        x ^= u64::from_le_bytes(w);
    }
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
}

impl<V: Copy> Map<V> {
    /// A map with no capacity (every insert fails); a placeholder for statics.
    pub const fn empty() -> Self {
        Map { slots: core::ptr::null_mut(), mask: 0, len: 0 }
    }

    /// Builds an empty map in `bytes` bytes at `ptr` (zeroes them). The
    /// capacity is the largest power of two of slots that fits.
    ///
    /// # Safety
    /// `ptr` must be valid for `bytes` bytes, aligned for `Slot<V>`, and owned by the map forever.
    pub unsafe fn from_raw(ptr: *mut u8, bytes: usize) -> Self {
        debug_assert!(ptr as usize % align_of::<Slot<V>>() == 0);
        let fit = bytes / size_of::<Slot<V>>();
        let mut cap = 1usize;
        while cap * 2 <= fit {
            cap *= 2;
        }
        if fit == 0 {
            return Self::empty();
        }
        core::ptr::write_bytes(ptr, 0, cap * size_of::<Slot<V>>());
        Map { slots: ptr as *mut Slot<V>, mask: cap - 1, len: 0 }
    }

    /// A map of `bytes` bytes taken from `arena`; `None` if the host refuses pages.
    pub fn in_arena(arena: &mut crate::mem::Arena, bytes: usize) -> Option<Self> {
        let p = arena.alloc(bytes, align_of::<Slot<V>>())?;
        Some(unsafe { Self::from_raw(p, bytes) })
    }

    pub fn capacity(&self) -> usize {
        if self.slots.is_null() {
            0
        } else {
            max_len(self.mask + 1)
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of `key`'s slot, or of the empty slot where it would go.
    fn find(&self, key: &[u8; 32]) -> Option<usize> {
        if self.slots.is_null() {
            return None;
        }
        let mut i = hash(key) & self.mask;
        loop {
            let s = unsafe { &*self.slots.add(i) };
            if s.used == 0 || s.key == *key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<V> {
        let s = unsafe { &*self.slots.add(self.find(key)?) };
        if s.used != 0 {
            Some(s.val)
        } else {
            None
        }
    }

    pub fn get_mut(&mut self, key: &[u8; 32]) -> Option<&mut V> {
        let s = unsafe { &mut *self.slots.add(self.find(key)?) };
        if s.used != 0 {
            Some(&mut s.val)
        } else {
            None
        }
    }

    /// The value of `key`, inserting `default` first if absent; `None` if the map is full.
    pub fn get_or_insert(&mut self, key: &[u8; 32], default: V) -> Option<&mut V> {
        let i = self.find(key)?;
        let s = unsafe { &mut *self.slots.add(i) };
        if s.used == 0 {
            if self.len >= self.capacity() {
                return None;
            }
            s.used = 1;
            s.key = *key;
            s.val = default;
            self.len += 1;
        }
        Some(&mut s.val)
    }

    /// Sets `key` to `val`; `Err(val)` if the key is new and the map is full.
    pub fn insert(&mut self, key: &[u8; 32], val: V) -> Result<(), V> {
        match self.get_or_insert(key, val) {
            Some(v) => {
                *v = val;
                Ok(())
            }
            None => Err(val),
        }
    }
}

//! `Scratch`: a growable byte buffer whose start is page aligned.
//!
//! Why: scratch is where member reads land and member writes come from.
//! The kernel copies page-cache pages (page aligned) into and out of it,
//! and its copy loop (`rep movsb` on x86) is fastest when source and
//! destination agree in their low address bits; a plain `Vec<u8>` starts
//! wherever the allocator puts it (16 bytes into a page for a large one).
//! Page alignment is also what `O_DIRECT` asks of a buffer.
//!
//! Safe code only: the store over-allocates by [`SCRATCH_ALIGN_BYTES`] and
//! the buffer starts at the first aligned byte inside it. The store is
//! never reallocated except by [`Scratch::ensure`], which recomputes the
//! start, so the alignment holds for as long as the buffer is borrowed.

use std::ops::{Deref, DerefMut};

/// Alignment of a scratch buffer's first byte: a page.
pub(crate) const SCRATCH_ALIGN_BYTES: usize = 4096;

/// A zero-initialised byte buffer starting on a [`SCRATCH_ALIGN_BYTES`]
/// boundary; dereferences to its `len` bytes.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Backing store, `len + SCRATCH_ALIGN_BYTES` bytes once non-empty.
    store: Vec<u8>,
    /// Offset of the aligned start in `store`.
    start: usize,
    /// Usable bytes from `start`.
    len: usize,
}

impl Scratch {
    /// Grow to at least `len_bytes` usable bytes (only while warming up:
    /// a grown buffer is kept). The contents after growing are zero.
    pub(crate) fn ensure(&mut self, len_bytes: usize) {
        if self.len >= len_bytes {
            return;
        }
        self.store = vec![0; len_bytes + SCRATCH_ALIGN_BYTES];
        let start = self.store.as_ptr().align_offset(SCRATCH_ALIGN_BYTES);
        assert!(
            start < SCRATCH_ALIGN_BYTES,
            "u8 pointers can always be aligned"
        );
        self.start = start;
        self.len = len_bytes;
        assert!(self.start + self.len <= self.store.len());
    }
}

impl Deref for Scratch {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.store[self.start..self.start + self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.store[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_aligned_and_zeroed() {
        let mut s = Scratch::default();
        assert!(s.is_empty());
        for len in [1, 4096, 100, 1 << 20, 3 << 20] {
            s.ensure(len);
            assert!(s.len() >= len);
            assert_eq!(s.as_ptr() as usize % SCRATCH_ALIGN_BYTES, 0);
        }
        assert!(s.iter().all(|&b| b == 0));
        s[5] = 7;
        s.ensure(10);
        assert_eq!(s[5], 7, "a big enough buffer is kept");
    }
}

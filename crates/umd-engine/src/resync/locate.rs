//! raid6 check and repair that find the wrong block: per 4 KiB sync block,
//! the P and Q syndromes name the one member whose block is wrong (data, P
//! or Q), and repair rewrites only that block.
//!
//! md's raid6 `repair` recomputes P and Q from the data, which turns a
//! silently corrupted data block into the array's content. Here a block is
//! classified with [`umd_layout::parity::syndrome::locate`] first; only a
//! stripe that no single wrong block explains falls back to md's behaviour
//! (rewrite whichever of P and Q differ). `mismatch_cnt` is counted exactly as
//! md counts it (8 sectors per differing 4 KiB block) in every case, so the
//! number a user compares with the kernel's stays the same.
//!
//! The slot the syndromes name must be a data slot of this stripe (DDF
//! layouts leave Q slots unused, [`super::Kind::Parity`]'s `zero_slots`);
//! a slot outside the stripe means more than one block is wrong.
//! Resync never locates: after an unclean stop a data block newer than its
//! parity is the expected state, and md keeps the data.

use super::{push_fix, LocatedBlock, LocatedMismatch, SyncWindow, SYNC_BLOCK_SECTORS};
use crate::write::{PlannedIo, SECTOR_BYTES};
use umd_layout::parity::syndrome::{locate, Syndrome};

/// The scratch region of a raid6 parity window: data slots, computed P and
/// Q, then P and Q as read, each `wbytes` long.
pub(super) struct Raid6Region<'a> {
    pub(super) region: &'a mut [u8],
    pub(super) slots: usize,
    pub(super) wbytes: usize,
}

impl Raid6Region<'_> {
    fn computed_at(&self, k: usize) -> usize {
        (self.slots + k) * self.wbytes
    }

    fn read_at(&self, k: usize) -> usize {
        (self.slots + 2 + k) * self.wbytes
    }

    /// Whether parity block `k` (0 = P, 1 = Q) differs over `range`.
    fn differs(&self, k: usize, range: &std::ops::Range<usize>) -> bool {
        let (c, r) = (self.computed_at(k), self.read_at(k));
        self.region[c + range.start..c + range.end] != self.region[r + range.start..r + range.end]
    }

    /// XOR the read P and Q into the computed ones over `range`: an
    /// involution, so calling it twice restores the computed bytes.
    fn toggle_deltas(&mut self, range: &std::ops::Range<usize>) {
        for k in 0..2 {
            let (c, r) = (self.computed_at(k), self.read_at(k));
            let (head, tail) = self.region.split_at_mut(r);
            let read = &tail[range.start..range.end];
            let computed = &mut head[c + range.start..c + range.end];
            for (a, b) in computed.iter_mut().zip(read) {
                *a ^= b;
            }
        }
    }

    /// Classify `range` (byte range inside each block).
    fn classify(&mut self, range: &std::ops::Range<usize>) -> Syndrome {
        self.toggle_deltas(range);
        let (p, q) = (self.computed_at(0), self.computed_at(1));
        let verdict = locate(
            &self.region[p + range.start..p + range.end],
            &self.region[q + range.start..q + range.end],
        );
        self.toggle_deltas(range);
        verdict
    }

    /// Correct data slot `z` over `range` in place: read bytes XOR P delta.
    fn correct_data(&mut self, z: usize, range: &std::ops::Range<usize>) {
        let (p_read, p_computed) = (self.read_at(0), self.computed_at(0));
        let (head, tail) = self.region.split_at_mut(p_computed);
        let computed = &tail[range.start..range.end];
        let read = &tail[p_read - p_computed + range.start..p_read - p_computed + range.end];
        let block = &mut head[z * self.wbytes + range.start..z * self.wbytes + range.end];
        for ((d, c), r) in block.iter_mut().zip(computed).zip(read) {
            *d ^= c ^ r;
        }
    }
}

/// Compare a raid6 window block by block; locate each wrong block, append
/// the repairs when `fix`, and record located blocks. Returns the mismatched
/// sectors as md counts them.
pub(super) fn finish_raid6(
    window: &SyncWindow,
    mut r6: Raid6Region<'_>,
    fix: bool,
    writes: &mut Vec<PlannedIo>,
    located: &mut Vec<LocatedMismatch>,
) -> u64 {
    let (start, end) = (window.position, window.position + window.len);
    let (writes_before, located_before) = (writes.len(), located.len());
    let mut mismatched = 0;
    let mut lo = start;
    while lo < end {
        let hi = ((lo / SYNC_BLOCK_SECTORS + 1) * SYNC_BLOCK_SECTORS).min(end);
        let offset = lo - start;
        let range = offset as usize * SECTOR_BYTES..(hi - start) as usize * SECTOR_BYTES;
        let (p_bad, q_bad) = (r6.differs(0, &range), r6.differs(1, &range));
        if p_bad || q_bad {
            mismatched += SYNC_BLOCK_SECTORS;
            let found = match r6.classify(&range) {
                Syndrome::P => Some((LocatedBlock::P, window.p_io)),
                Syndrome::Q => Some((LocatedBlock::Q, window.q_io)),
                Syndrome::Data(z) => data_read(window, z).map(|io| (LocatedBlock::Data, Some(io))),
                Syndrome::Consistent | Syndrome::Unexplained => None,
            };
            let len = hi - lo;
            match found {
                Some((block, Some(io))) => {
                    located.push(LocatedMismatch {
                        role: io.role,
                        position: lo,
                        len_sectors: len,
                        block,
                    });
                    if fix {
                        if block == LocatedBlock::Data {
                            r6.correct_data(slot_of(&io, r6.wbytes), &range);
                        }
                        let good_at = match block {
                            LocatedBlock::Data => slot_of(&io, r6.wbytes) * r6.wbytes,
                            LocatedBlock::P => r6.computed_at(0),
                            LocatedBlock::Q => r6.computed_at(1),
                        };
                        push_fix(std::iter::once((&io, good_at)), offset, len, writes);
                    }
                }
                _ if fix => {
                    // md's fallback: recompute whichever parity differs.
                    let parity = [(p_bad, window.p_io, 0), (q_bad, window.q_io, 1)];
                    for (_, io, k) in parity.iter().filter(|(bad, _, _)| *bad) {
                        let io = io.as_ref().expect("a raid6 window reads P and Q");
                        push_fix(
                            std::iter::once((io, r6.computed_at(*k))),
                            offset,
                            len,
                            writes,
                        );
                    }
                }
                _ => {}
            }
        }
        lo = hi;
    }
    assert!(fix || writes.len() == writes_before, "check writes nothing");
    assert!(
        (located.len() - located_before) as u64 * SYNC_BLOCK_SECTORS <= mismatched,
        "a located block is a mismatched block"
    );
    mismatched
}

/// The read of the data block in Q slot `z`, if `z` is a data slot of the
/// window's stripe (the window's first reads are its data roles in order).
fn data_read(window: &SyncWindow, z: usize) -> Option<PlannedIo> {
    let j = window
        .layout
        .q_slots
        .iter()
        .position(|&s| s as usize == z)?;
    let io = window.reads[j];
    assert_eq!(
        io.role, window.layout.data_roles[j],
        "reads start with the data roles"
    );
    Some(io)
}

/// The Q slot a data read lands in (its scratch block index).
fn slot_of(io: &PlannedIo, wbytes: usize) -> usize {
    match io.buf {
        crate::write::BufRef::Scratch { offset_bytes } => offset_bytes / wbytes,
        crate::write::BufRef::Data { .. } => unreachable!("sync reads go to scratch"),
    }
}

#[cfg(test)]
mod tests;

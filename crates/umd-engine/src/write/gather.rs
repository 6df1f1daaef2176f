//! Stripe gathering, the arithmetic half: which part of a raid4/5 stripe a
//! write piece covers, how pieces from several requests add up to the
//! stripe's parity, and what finishing a partly covered stripe reads and writes.
//!
//! Why: md's stripe cache lets neighbouring requests meet in one stripe head,
//! so a stream of requests smaller than a stripe still ends in full-stripe
//! writes instead of a reconstruct-write per request. umd runs each request on
//! its own thread; the host (`umd-io`, `host/gather.rs`) parks a partial-stripe
//! piece in a stripe entry until its neighbours arrive. Everything about that
//! which is arithmetic lives here, sans-I/O (style R8):
//!
//! * [`WritePlanner::gather_piece`]: a piece inside one healthy raid4/5 stripe,
//!   as its stripe-relative logical range and its data writes;
//! * [`Coverage`]: the disjoint ranges of a stripe contributed so far (at most
//!   [`CONTRIBUTIONS_MAX`]), whether they fill it, and the parity window;
//! * [`Accumulator`]: per row of the stripe, the XOR of every contributed
//!   byte. Each contributor folds its own payload in, so parity needs no copy
//!   of anybody's data and no thread ever reads another thread's buffer;
//! * [`WritePlanner::plan_gather_flush`]: the parts of the window that nobody
//!   contributed, read from the members and folded in, and the parity write.
//!
//! Invariants: contributions never overlap ([`Coverage::add`] refuses), so at
//! every row of the window each data chunk is either contributed exactly once
//! or read once at the flush, and the accumulator then equals the stripe's new
//! P. The flush never reads old parity: it is a reconstruct-write, right above
//! the resync checkpoint too. Reads happen before any write of the stripe (the
//! host writes data only once the flush read everything), so a failed read
//! leaves the stripe as it was. Only stripes whose every role is usable are
//! gathered; degraded stripes go through [`WritePlanner::plan`].

use super::compute::xor_into;
use super::{BufRef, PlannedIo, WritePlanner, SECTOR_BYTES};
use umd_layout::geometry::{Copy, Level, StripeLayout, Target};
use umd_layout::parity::{self, MAX_STRIPE_BLOCKS};

/// Most contributions one stripe entry takes. Each is a whole piece of a
/// different request, so a stripe is full after a handful; the bound keeps
/// [`Coverage`] a fixed-size value (style R7). A writer past it is refused and
/// takes the ordinary path.
pub const CONTRIBUTIONS_MAX: usize = 16;

/// A write piece inside one raid4/5 stripe, as gathering needs it.
#[derive(Debug, Clone, Default)]
pub struct GatherPiece {
    /// The stripe.
    pub stripe: u64,
    /// First logical sector of the piece, relative to the stripe's first.
    pub lo: u64,
    /// End of the piece, relative to the stripe's first logical sector.
    pub hi: u64,
    /// Data sectors of the stripe (data chunks x chunk sectors).
    pub stripe_sectors: u64,
    /// Sectors per chunk: the stripe's height in rows.
    pub chunk_sectors: u64,
    /// The piece's data writes, one per chunk touched, from the payload.
    pub writes: Vec<PlannedIo>,
    /// Per write: the first row (sector within the chunk) it covers.
    pub rows: Vec<u64>,
    layout: StripeLayout,
    copies: Vec<Copy>,
}

/// What finishing a gathered stripe does: read the uncovered parts of the
/// parity window into scratch, fold them into the accumulator, write parity.
#[derive(Debug, Clone, Default)]
pub struct GatherFlush {
    /// Reads of data nobody contributed, all into scratch.
    pub reads: Vec<PlannedIo>,
    /// Per read: the accumulator byte offset its bytes fold into.
    pub fold_at: Vec<usize>,
    /// Scratch the reads need.
    pub scratch_bytes: usize,
    /// The parity write: `buf` is `Scratch`, an offset into the accumulator.
    pub parity: Option<PlannedIo>,
}

/// The disjoint stripe-relative ranges contributed to one stripe so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    stripe: u64,
    stripe_sectors: u64,
    chunk_sectors: u64,
    /// Sorted, disjoint, non-empty `[lo, hi)` ranges; `count` are valid.
    ranges: [(u64, u64); CONTRIBUTIONS_MAX],
    count: usize,
}

impl Coverage {
    /// Nothing covered yet, for the stripe `piece` lies in.
    #[must_use]
    pub fn new(piece: &GatherPiece) -> Self {
        assert!(piece.chunk_sectors > 0, "a gathered piece has a chunk size");
        assert_eq!(
            piece.stripe_sectors % piece.chunk_sectors,
            0,
            "a stripe is whole chunks"
        );
        Self {
            stripe: piece.stripe,
            stripe_sectors: piece.stripe_sectors,
            chunk_sectors: piece.chunk_sectors,
            ranges: [(0, 0); CONTRIBUTIONS_MAX],
            count: 0,
        }
    }

    /// The stripe this covers.
    #[must_use]
    pub fn stripe(&self) -> u64 {
        self.stripe
    }

    /// The stripe's first logical sector (where relative offsets start).
    #[must_use]
    pub fn first_sector(&self) -> u64 {
        self.stripe * self.stripe_sectors
    }

    /// Contributions so far.
    #[must_use]
    pub fn contributions(&self) -> usize {
        self.count
    }

    /// Record `[lo, hi)`; false (nothing changes) if it overlaps a range
    /// already covered or the entry holds [`CONTRIBUTIONS_MAX`] already.
    pub fn add(&mut self, lo: u64, hi: u64) -> bool {
        assert!(
            lo < hi && hi <= self.stripe_sectors,
            "piece inside the stripe"
        );
        if self.count == CONTRIBUTIONS_MAX || self.covered_in(lo, hi) > 0 {
            return false;
        }
        let at = self.ranges[..self.count]
            .iter()
            .position(|&(a, _)| a > lo)
            .unwrap_or(self.count);
        self.ranges.copy_within(at..self.count, at + 1);
        self.ranges[at] = (lo, hi);
        self.count += 1;
        assert!(
            self.ranges[..self.count]
                .windows(2)
                .all(|w| w[0].1 <= w[1].0),
            "ranges stay sorted and disjoint"
        );
        true
    }

    /// Sectors of `[lo, hi)` already covered.
    fn covered_in(&self, lo: u64, hi: u64) -> u64 {
        self.ranges[..self.count]
            .iter()
            .map(|&(a, b)| b.min(hi).saturating_sub(a.max(lo)))
            .sum()
    }

    /// Whether every data sector of the stripe is covered: a full-stripe write.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.covered_in(0, self.stripe_sectors) == self.stripe_sectors
    }

    /// Whether a write of stripe-relative `[lo, hi)` (clipped to the stripe)
    /// would add something not covered yet: a neighbour worth waiting for.
    #[must_use]
    pub fn overlaps_uncovered(&self, lo: u64, hi: u64) -> bool {
        let (lo, hi) = (lo.min(self.stripe_sectors), hi.min(self.stripe_sectors));
        lo < hi && self.covered_in(lo, hi) < hi - lo
    }

    /// Rows `[lo, hi)` (sectors within a chunk) whose parity changes: the
    /// envelope of the rows every contribution touches.
    #[must_use]
    pub fn window(&self) -> (u64, u64) {
        assert!(self.count > 0, "a window needs a contribution");
        let h = self.chunk_sectors;
        self.ranges[..self.count]
            .iter()
            .map(|&(a, b)| rows_of(a, b, h))
            .fold((h, 0), |(lo, hi), (a, b)| (lo.min(a), hi.max(b)))
    }
}

/// Rows touched by stripe-relative `[lo, hi)`, as an envelope.
fn rows_of(lo: u64, hi: u64, h: u64) -> (u64, u64) {
    assert!(lo < hi, "an empty range touches no row");
    if lo / h == (hi - 1) / h {
        (lo % h, (hi - 1) % h + 1)
    } else {
        // It crosses a chunk boundary: it reaches row h-1 of one chunk and row 0 of the next.
        (0, h)
    }
}

/// Per row of a stripe, the XOR of every byte contributed so far.
///
/// Only rows `rows` hold meaning; a contribution outside them extends them,
/// zero-filling the rows added first. The buffer grows once to the stripe
/// height and is reused for every stripe after (style R7).
#[derive(Debug, Default)]
pub struct Accumulator {
    buf: Vec<u8>,
    rows: (u64, u64),
}

impl Accumulator {
    /// Forget every contribution (a new stripe entry starts).
    pub fn clear(&mut self) {
        self.rows = (0, 0);
    }

    /// The rows that hold contributions.
    #[must_use]
    pub fn rows(&self) -> (u64, u64) {
        self.rows
    }

    /// The accumulated bytes (parity once [`Accumulator::fold_gaps`] ran).
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Fold `piece`'s payload `data` in.
    pub fn contribute(&mut self, piece: &GatherPiece, data: &[u8]) {
        assert_eq!(piece.writes.len(), piece.rows.len(), "one row per write");
        assert_eq!(
            data.len() as u64,
            (piece.hi - piece.lo) * SECTOR_BYTES as u64,
            "payload of the piece"
        );
        let h_bytes = piece.chunk_sectors as usize * SECTOR_BYTES;
        if self.buf.len() < h_bytes {
            self.buf.resize(h_bytes, 0);
        }
        let span = |i: usize| {
            let w = &piece.writes[i];
            (piece.rows[i], piece.rows[i] + w.len_sectors)
        };
        let (plo, phi) = (0..piece.writes.len())
            .map(span)
            .fold((u64::MAX, 0), |(lo, hi), (a, b)| (lo.min(a), hi.max(b)));
        assert!(
            plo < phi && phi <= piece.chunk_sectors,
            "rows inside the chunk"
        );
        let same_rows = (0..piece.writes.len()).all(|i| span(i) == (plo, phi));
        if self.rows.0 == self.rows.1 && same_rows {
            // A first contribution whose chunks share their rows (whole chunks,
            // typically): one pass, no zero fill.
            let dest = &mut self.buf[plo as usize * SECTOR_BYTES..phi as usize * SECTOR_BYTES];
            let len = dest.len();
            let mut sources: [&[u8]; MAX_STRIPE_BLOCKS] = [&[]; MAX_STRIPE_BLOCKS];
            if piece.writes.len() <= MAX_STRIPE_BLOCKS {
                for (source, w) in sources.iter_mut().zip(&piece.writes) {
                    *source = &data[data_at(w)..][..len];
                }
                parity::xor_gen(&sources[..piece.writes.len()], dest);
                self.rows = (plo, phi);
                return;
            }
        }
        self.extend_rows(plo, phi);
        for (w, &row) in piece.writes.iter().zip(&piece.rows) {
            let len = w.len_sectors as usize * SECTOR_BYTES;
            let at = row as usize * SECTOR_BYTES;
            xor_into(&mut self.buf[at..at + len], &data[data_at(w)..][..len]);
        }
    }

    /// Make rows `[lo, hi)` meaningful, zero-filling those added.
    fn extend_rows(&mut self, lo: u64, hi: u64) {
        let (old_lo, old_hi) = self.rows;
        let zero = |buf: &mut Vec<u8>, a: u64, b: u64| {
            if a < b {
                buf[a as usize * SECTOR_BYTES..b as usize * SECTOR_BYTES].fill(0);
            }
        };
        if old_lo == old_hi {
            zero(&mut self.buf, lo, hi);
            self.rows = (lo, hi);
            return;
        }
        zero(&mut self.buf, lo, old_lo);
        zero(&mut self.buf, old_hi, hi);
        self.rows = (lo.min(old_lo), hi.max(old_hi));
    }

    /// Fold the flush's reads (in `scratch`) in: afterwards the window's rows
    /// hold the stripe's new parity.
    pub fn fold_gaps(&mut self, flush: &GatherFlush, scratch: &[u8]) {
        let parity = flush.parity.expect("a planned flush writes parity");
        let (wlo, whi) = (
            parity_at(&parity) / SECTOR_BYTES,
            parity_at(&parity) / SECTOR_BYTES + parity.len_sectors as usize,
        );
        self.extend_rows(wlo as u64, whi as u64);
        for (r, &at) in flush.reads.iter().zip(&flush.fold_at) {
            let BufRef::Scratch { offset_bytes } = r.buf else {
                unreachable!("flush reads land in scratch")
            };
            let len = r.len_sectors as usize * SECTOR_BYTES;
            assert!(at >= wlo * SECTOR_BYTES, "a gap read lies in the window");
            xor_into(&mut self.buf[at..at + len], &scratch[offset_bytes..][..len]);
        }
        assert_eq!(
            self.rows,
            (wlo as u64, whi as u64),
            "the window is the rows"
        );
    }
}

/// Payload offset of a data write.
fn data_at(w: &PlannedIo) -> usize {
    match w.buf {
        BufRef::Data { offset_bytes } => offset_bytes,
        BufRef::Scratch { .. } => unreachable!("a piece writes from its payload"),
    }
}

/// Accumulator offset of the parity write.
#[must_use]
pub fn parity_at(parity: &PlannedIo) -> usize {
    match parity.buf {
        BufRef::Scratch { offset_bytes } => offset_bytes,
        BufRef::Data { .. } => unreachable!("parity comes from the accumulator"),
    }
}

impl WritePlanner {
    /// Describe logical `[sector, sector + len_sectors)` as a piece of one
    /// raid4/5 stripe whose every role is usable. False (the piece is not
    /// gathered) for other levels, a piece crossing a stripe, a stripe with
    /// a missing or recovering role, or while a role is being replaced (a
    /// gathered write names one member per role).
    pub fn gather_piece(&self, sector: u64, len_sectors: u64, piece: &mut GatherPiece) -> bool {
        let level = self.geometry.level();
        let replacing = self.roles.replacing();
        if !matches!(level, Level::Raid4 | Level::Raid5) || len_sectors == 0 || replacing {
            return false;
        }
        assert!(
            sector + len_sectors <= self.array_sectors,
            "piece past the array end"
        );
        let h = u64::from(self.geometry.chunk_sectors());
        let Target::Striped { data, stripe } =
            self.geometry.locate(sector, &mut piece.copies).target
        else {
            unreachable!("raid4/5 sectors are striped")
        };
        self.geometry.stripe_layout(stripe, &mut piece.layout);
        let d = piece.layout.data_roles.len() as u64;
        let (first, lo) = (stripe * d * h, sector - stripe * d * h);
        assert!(sector >= first && lo < d * h, "sector inside its stripe");
        let hi = lo + len_sectors;
        let base = data.dev_sector - sector % h;
        let roles = &piece.layout;
        let healthy = std::iter::once(roles.p_role)
            .chain(roles.data_roles.iter().copied())
            .all(|r| self.roles.usable(r, base, h));
        if hi > d * h || !healthy {
            return false;
        }
        (piece.stripe, piece.lo, piece.hi) = (stripe, lo, hi);
        (piece.stripe_sectors, piece.chunk_sectors) = (d * h, h);
        piece.writes.clear();
        piece.rows.clear();
        for j in lo / h..=(hi - 1) / h {
            let (a, b) = (lo.max(j * h), hi.min((j + 1) * h));
            let role = piece.layout.data_roles[j as usize];
            piece.writes.push(PlannedIo {
                role,
                device_sector: self.roles.data_offset(role) + base + (a - j * h),
                len_sectors: b - a,
                buf: BufRef::Data {
                    offset_bytes: (a - lo) as usize * SECTOR_BYTES,
                },
            });
            piece.rows.push(a - j * h);
        }
        true
    }

    /// Plan finishing the stripe `coverage` describes: read what nobody
    /// contributed inside the parity window, write parity. False if a role
    /// the flush needs is no longer usable (the caller falls back).
    pub fn plan_gather_flush(
        &self,
        coverage: &Coverage,
        piece: &mut GatherPiece,
        flush: &mut GatherFlush,
    ) -> bool {
        flush.reads.clear();
        flush.fold_at.clear();
        flush.scratch_bytes = 0;
        flush.parity = None;
        let h = coverage.chunk_sectors;
        let d = coverage.stripe_sectors / h;
        let first = coverage.stripe * d * h;
        let Target::Striped { data, stripe } =
            self.geometry.locate(first, &mut piece.copies).target
        else {
            unreachable!("raid4/5 sectors are striped")
        };
        assert_eq!(stripe, coverage.stripe, "the stripe's first sector");
        self.geometry.stripe_layout(stripe, &mut piece.layout);
        let base = data.dev_sector;
        let (wlo, whi) = coverage.window();
        let layout = &piece.layout;
        let usable = std::iter::once(layout.p_role)
            .chain(layout.data_roles.iter().copied())
            .all(|r| self.roles.usable(r, base + wlo, whi - wlo));
        if !usable {
            return false;
        }
        for (j, &role) in layout.data_roles.iter().enumerate() {
            let chunk_lo = j as u64 * h;
            let mut at = chunk_lo + wlo;
            let end = chunk_lo + whi;
            for &(a, b) in &coverage.ranges[..coverage.count] {
                if b <= at || a >= end {
                    continue;
                }
                push_gap(self, flush, role, base, chunk_lo, at, a.min(end));
                at = at.max(b);
            }
            push_gap(self, flush, role, base, chunk_lo, at, end);
        }
        flush.parity = Some(PlannedIo {
            role: layout.p_role,
            device_sector: self.roles.data_offset(layout.p_role) + base + wlo,
            len_sectors: whi - wlo,
            buf: BufRef::Scratch {
                offset_bytes: wlo as usize * SECTOR_BYTES,
            },
        });
        assert!(
            !coverage.is_full() || flush.reads.is_empty(),
            "a full stripe reads nothing"
        );
        true
    }
}

/// Add the read of stripe-relative `[a, b)` of the chunk starting at
/// `chunk_lo` (held by `role`), if not empty.
fn push_gap(
    planner: &WritePlanner,
    flush: &mut GatherFlush,
    role: u32,
    base: u64,
    chunk_lo: u64,
    a: u64,
    b: u64,
) {
    if a >= b {
        return;
    }
    let row = a - chunk_lo;
    flush.reads.push(PlannedIo {
        role,
        device_sector: planner.roles.data_offset(role) + base + row,
        len_sectors: b - a,
        buf: BufRef::Scratch {
            offset_bytes: flush.scratch_bytes,
        },
    });
    flush.fold_at.push(row as usize * SECTOR_BYTES);
    flush.scratch_bytes += (b - a) as usize * SECTOR_BYTES;
}

#[cfg(test)]
mod tests;

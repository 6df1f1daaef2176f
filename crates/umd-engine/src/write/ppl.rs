//! The partial parity of a planned raid5 write, as md's PPL logs it
//! (formats.md §2.11), computed from the plan's reads before its writes.
//!
//! Why: a raid5 stripe whose data and parity writes are cut short by a crash
//! has parity that matches neither the old nor the new data; if a member is
//! then missing, its data is rebuilt wrong (the write hole). md's PPL writes,
//! before any data or parity write of a stripe, the XOR of the old data of
//! the chunks the write leaves alone (the *partial parity*) to the parity
//! member's log. After a crash, parity = partial parity XOR the data now on
//! the modified chunks, whichever of old or new landed there.
//!
//! How a stripe's window is cut into entries: for each row (sector) of the
//! window, the set of modified data chunks is a contiguous run of the
//! stripe's data chunks (one write is contiguous in the array), and it can
//! change only where a chunk's new data starts or ends. Each run of rows
//! with the same set is one entry: `data_sector` = the array sector of the
//! first modified chunk at the first row, `pp_size` = rows x 512,
//! `data_size` = rows x 512 x chunks modified. A set that covers every data
//! chunk is a full-stripe row: md logs it with no partial parity
//! (`pp_size` 0), so a crash still recomputes its parity from the data.
//! These are the entries md's replay reads back (raid5-ppl.c's cases 0-2).
//!
//! Where the old data comes from, per row: reconstruct-write and rebuild
//! plans read every chunk the row does not modify, so the partial parity is
//! their XOR; read-modify-write plans read old parity and the old data of the
//! modified chunks, whose XOR is the same thing; a degraded stripe missing an
//! unmodified chunk takes the second form (its plan read old parity). A
//! stripe whose parity member is missing is not logged (as md: nothing to
//! replay onto).

use super::{ChunkOp, Compute, StripeOp, WritePlan, WritePlanner, SECTOR_BYTES};
use umd_formats::ppl::{Crc32c, PplEntry, PplHeader, PPL_HEADER_BYTES, PPL_MAX_ENTRIES};
use umd_layout::geometry::Level;
use umd_layout::parity;

/// One log unit: the header and the partial parity after it, for the
/// parity member `role`. Reused from request to request: once its buffers
/// reached their largest size, building a unit allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct PplUnit {
    /// The parity member whose log gets the unit; `None`: nothing to log.
    pub role: Option<u32>,
    /// The header (generation and signature filled by [`PplUnit::seal`]).
    pub header: PplHeader,
    /// 4 KiB header, then the partial parity of each entry in order.
    pub bytes: Vec<u8>,
}

/// A plan that cannot be logged as md's PPL describes writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PplRefused(pub &'static str);

impl std::fmt::Display for PplRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "partial parity log: {}", self.0)
    }
}

impl std::error::Error for PplRefused {}

impl PplUnit {
    /// Bytes the unit occupies in the log area.
    #[must_use]
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Write the header with its signature and generation into the first
    /// 4 KiB of `bytes`.
    pub fn seal(&mut self, signature: u32, generation: u64) -> Result<(), PplRefused> {
        self.header.signature = signature;
        self.header.generation = generation;
        self.header
            .write_to(&mut self.bytes)
            .map_err(|_| PplRefused("more entries than a header holds"))
    }
}

impl WritePlanner {
    /// The parity member whose log gets `plan`'s unit (the first stripe's
    /// P role), or `None` when no stripe of it writes parity.
    #[must_use]
    pub fn log_role(&self, plan: &WritePlan) -> Option<u32> {
        plan.ops
            .iter()
            .find(|op| op.compute != Compute::None)
            .map(|op| op.p_role)
    }

    /// After the plan's reads landed in `scratch` and before
    /// [`WritePlanner::compute`]: fill `unit` with the plan's log entries
    /// and partial parity. raid5 only; every stripe of the plan must have the
    /// same parity member (the host plans one stripe at a time).
    pub fn partial_parity(
        &self,
        plan: &WritePlan,
        scratch: &[u8],
        unit: &mut PplUnit,
    ) -> Result<(), PplRefused> {
        unit.role = None;
        unit.header.entries.clear();
        unit.bytes.clear();
        unit.bytes.resize(PPL_HEADER_BYTES, 0);
        if self.geometry.level() != Level::Raid5 {
            return Err(PplRefused("only raid5 has a partial parity log"));
        }
        let chunk = u64::from(self.geometry.chunk_sectors());
        for op in &plan.ops {
            if op.compute == Compute::None {
                continue;
            }
            if unit.role.is_some_and(|r| r != op.p_role) {
                return Err(PplRefused("a plan's stripes have different parity members"));
            }
            unit.role = Some(op.p_role);
            let chunks = &plan.chunks[op.chunks.0..op.chunks.1];
            log_stripe(op, chunks, chunk, scratch, unit)?;
        }
        if unit.header.entries.len() > PPL_MAX_ENTRIES {
            return Err(PplRefused("more entries than a header holds"));
        }
        Ok(())
    }
}

/// The entries of one stripe, appended to `unit`.
fn log_stripe(
    op: &StripeOp,
    chunks: &[ChunkOp],
    chunk: u64,
    scratch: &[u8],
    unit: &mut PplUnit,
) -> Result<(), PplRefused> {
    let d = chunks.len() as u64;
    let window = op.window_sectors;
    let mut cuts = [0u64; 2 * parity::MAX_STRIPE_BLOCKS + 2];
    let mut n = 0;
    for c in chunks.iter().filter(|c| c.new_hi > c.new_lo) {
        for at in [c.new_lo, c.new_hi] {
            if n < cuts.len() {
                cuts[n] = at;
                n += 1;
            }
        }
    }
    if n == cuts.len() {
        return Err(PplRefused("too many data chunks in a stripe"));
    }
    cuts[n] = window;
    n += 1;
    let cuts = &mut cuts[..n];
    cuts.sort_unstable();
    let mut lo = 0;
    for &hi in cuts.iter() {
        if hi > lo {
            log_rows(op, chunks, (lo, hi), (chunk, d), scratch, unit)?;
        }
        lo = hi;
    }
    Ok(())
}

/// One entry for window rows `[lo, hi)`, where the modified set is constant.
fn log_rows(
    op: &StripeOp,
    chunks: &[ChunkOp],
    (lo, hi): (u64, u64),
    (chunk, data_chunks): (u64, u64),
    scratch: &[u8],
    unit: &mut PplUnit,
) -> Result<(), PplRefused> {
    let modified = |c: &ChunkOp| c.new_lo <= lo && lo < c.new_hi;
    let Some(first) = chunks.iter().position(modified) else {
        return Ok(());
    };
    let count = chunks.iter().filter(|c| modified(c)).count();
    if !chunks[first..first + count].iter().all(modified) {
        return Err(PplRefused(
            "the modified chunks of a row are not contiguous",
        ));
    }
    let rows = hi - lo;
    let data_sector = op.stripe * chunk * data_chunks + first as u64 * chunk + op.window_lo + lo;
    let too_big = |_| PplRefused("an entry larger than 4 GiB");
    let data_size = u32::try_from(rows * SECTOR_BYTES as u64 * count as u64).map_err(too_big)?;
    if count as u64 == data_chunks {
        unit.header.entries.push(PplEntry {
            data_sector,
            pp_size: 0,
            data_size,
            parity_disk: op.p_role,
            checksum: 0,
        });
        return Ok(());
    }
    let window_bytes = op.window_sectors as usize * SECTOR_BYTES;
    let (from, to) = (lo as usize * SECTOR_BYTES, hi as usize * SECTOR_BYTES);
    let block = |slot: usize| &scratch[op.scratch_at + slot * window_bytes..][from..to];
    let missing = &op.missing[..op.missing_count];
    let unmodified_missing = chunks
        .iter()
        .any(|c| !modified(c) && missing.contains(&c.slot));
    // Old parity XOR the old data of the modified chunks, or the XOR of
    // the chunks the row leaves alone: the same bytes, from what was read.
    let from_parity = unmodified_missing || op.compute == Compute::Delta;
    let mut sources: [&[u8]; parity::MAX_STRIPE_BLOCKS] = [&[]; parity::MAX_STRIPE_BLOCKS];
    let mut n = 0;
    if from_parity {
        sources[0] = block(op.slots);
        n = 1;
    }
    for c in chunks.iter().filter(|c| modified(c) == from_parity) {
        sources[n] = block(c.slot);
        n += 1;
    }
    if n == 0 {
        return Err(PplRefused("a partial row modifies every chunk"));
    }
    let at = unit.bytes.len();
    unit.bytes.resize(at + (to - from), 0);
    let out = &mut unit.bytes[at..];
    parity::xor_gen(&sources[..n], out);
    let mut crc = Crc32c::new();
    crc.update(out);
    unit.header.entries.push(PplEntry {
        data_sector,
        pp_size: u32::try_from(to - from).map_err(too_big)?,
        data_size,
        parity_disk: op.p_role,
        checksum: crc.finish(),
    });
    Ok(())
}

#[cfg(test)]
mod tests;

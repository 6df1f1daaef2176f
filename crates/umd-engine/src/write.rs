//! Write planning: which member ranges to read and write for a logical write,
//! and the parity maths that makes the stripes consistent again.
//!
//! Sans-I/O (style R8), on the model of [`crate::read`]: [`WritePlanner::plan`]
//! turns "write logical sectors here" into a [`WritePlan`] of member reads
//! (old data and parity, into the plan's scratch buffer) and member writes
//! (from the caller's payload or from scratch). The caller performs every read,
//! calls [`WritePlanner::compute`], then performs every write. linear and raid0
//! write each sector once; raid1 and raid10 write every present copy; raid4/5/6
//! choose per stripe between a full-stripe write, reconstruct-write (rcw: read
//! the data not being written, regenerate parity) and read-modify-write (rmw:
//! read old data and parity, apply the difference), by fewer reads as md's
//! `handle_stripe_dirtying` does, and never rmw on a stripe whose parity is
//! not known to be in sync (md's `recovery_cp`). Degraded stripes pick a
//! strategy that never needs a missing role and never writes one.
//!
//! Invariants a plan owns: no write targets a missing role; no two writes of
//! one plan overlap on a member; every read lands in scratch inside
//! `scratch_bytes`. Plans reuse their vectors, so a caller that keeps one
//! `WritePlan` allocates nothing per request once warmed up (style R7).

use crate::read::{DataLost, MemberMap};
use crate::resync::Roles;
use compute::compute_stripe;
pub(crate) use compute::{gen_parity, recover};
use umd_layout::geometry::{Copy, Geometry, Level, StripeLayout, Target};

/// Bytes in a sector.
pub(crate) const SECTOR_BYTES: usize = 512;

/// Where a planned I/O's bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufRef {
    /// In the caller's write payload, at this byte offset.
    Data {
        /// Byte offset into the payload.
        offset_bytes: usize,
    },
    /// In the plan's scratch buffer, at this byte offset.
    Scratch {
        /// Byte offset into scratch.
        offset_bytes: usize,
    },
}

/// One member I/O of a plan: `len_sectors` at absolute `device_sector` of
/// `role`'s device, from or into `buf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedIo {
    /// The role whose device to read or write.
    pub role: u32,
    /// Absolute device sector (data offset included).
    pub device_sector: u64,
    /// Sectors to transfer.
    pub len_sectors: u64,
    /// Where the bytes are.
    pub buf: BufRef,
}

/// How one stripe (or, for levels without parity, one extent) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeMode {
    /// No parity: the data goes straight to its member(s).
    Direct,
    /// Every data chunk is overwritten over the window: no reads.
    FullStripe,
    /// Read the data not being written, regenerate parity (md's rcw).
    ReconstructWrite,
    /// Read old data and parity, apply the difference (md's rmw).
    ReadModifyWrite,
    /// A role of the stripe (or a mirror copy) is missing.
    Degraded,
}

impl StripeMode {
    /// Index into [`WritePlan::modes`].
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::Direct => 0,
            Self::FullStripe => 1,
            Self::ReconstructWrite => 2,
            Self::ReadModifyWrite => 3,
            Self::Degraded => 4,
        }
    }
}

/// What [`WritePlanner::compute`] does for one raid4/5/6 stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compute {
    /// Nothing: only data is written (every parity role is missing).
    None,
    /// Overlay new data on the read blocks, regenerate parity.
    Generate,
    /// Parity ^= f(old data ^ new data) (rmw).
    Delta,
    /// Recover the missing blocks, then as `Generate`.
    Rebuild,
}

/// One data chunk of a planned stripe: the new data's range in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkOp {
    /// Block index (Q slot for raid6, data index for raid4/5).
    slot: usize,
    /// New data covers window sectors `[new_lo, new_hi)`; equal = untouched.
    new_lo: u64,
    /// End of the new data in the window.
    new_hi: u64,
    /// Payload byte offset of the new data's first sector.
    data_at: usize,
}

/// One planned raid4/5/6 stripe. Its blocks lie in scratch from `scratch_at`,
/// each `window_sectors` long: data slots, then P, Q, then (raid6 rmw) the
/// parity deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StripeOp {
    compute: Compute,
    window_sectors: u64,
    scratch_at: usize,
    slots: usize,
    parity: usize,
    /// Range of this stripe's entries in `WritePlan::chunks`.
    chunks: (usize, usize),
    /// Slots that hold no data (DDF raid6 P/Q positions).
    zero_slots: [usize; 2],
    zero_count: usize,
    /// Blocks that cannot be read (sorted), for `Compute::Rebuild`.
    missing: [usize; 2],
    missing_count: usize,
    /// The stripe's number, its window's first row in the chunk and its P
    /// role: where the partial parity log says the write goes (`ppl.rs`).
    stripe: u64,
    window_lo: u64,
    p_role: u32,
}

/// The member I/O for one logical write.
#[derive(Debug, Clone, Default)]
pub struct WritePlan {
    /// Logical sector the write starts at.
    pub sector: u64,
    /// Logical sectors written (the payload is this x 512 bytes).
    pub len_sectors: u64,
    /// Inclusive raid4/5/6 stripe range touched, for the host's stripe lock.
    pub stripes: Option<(u64, u64)>,
    /// Reads to perform first, any order, all into scratch.
    pub reads: Vec<PlannedIo>,
    /// Writes to perform after [`WritePlanner::compute`], any order.
    pub writes: Vec<PlannedIo>,
    /// Bytes of scratch the caller must provide.
    pub scratch_bytes: usize,
    /// Stripes (extents for levels without parity) per [`StripeMode::index`].
    pub modes: [u32; 5],
    ops: Vec<StripeOp>,
    chunks: Vec<ChunkOp>,
    copies: Vec<Copy>,
    layout: StripeLayout,
    slot_used: Vec<bool>,
}

impl WritePlan {
    fn reset(&mut self, sector: u64, len_sectors: u64) {
        self.sector = sector;
        self.len_sectors = len_sectors;
        self.stripes = None;
        self.reads.clear();
        self.writes.clear();
        self.scratch_bytes = 0;
        self.modes = [0; 5];
        self.ops.clear();
        self.chunks.clear();
    }

    fn count(&mut self, mode: StripeMode) {
        self.modes[mode.index()] += 1;
    }
}

/// Plans writes to one assembled array.
#[derive(Debug, Clone)]
pub struct WritePlanner {
    geometry: Geometry,
    roles: Roles,
    array_sectors: u64,
}

impl WritePlanner {
    /// A planner for `geometry` over `members`, writing at most `array_sectors`.
    #[must_use]
    // By value like `ReadPlanner::new`: the host hands its map over.
    #[allow(clippy::needless_pass_by_value)]
    pub fn new(geometry: Geometry, members: MemberMap, array_sectors: u64) -> Self {
        assert!(
            array_sectors <= geometry.array_sectors(),
            "array longer than its geometry"
        );
        let roles = Roles::from_map(&members, geometry.raid_disks());
        Self {
            geometry,
            roles,
            array_sectors,
        }
    }

    /// Stop using `role` (its device failed); later plans neither read nor write it.
    pub fn mark_failed(&mut self, role: u32) {
        self.roles.mark_failed(role);
    }

    /// The array's length in sectors.
    #[must_use]
    pub fn array_sectors(&self) -> u64 {
        self.array_sectors
    }

    /// Plan writing logical sectors `[sector, sector + len_sectors)`.
    ///
    /// `unsynced_from_stripe`: stripes >= this are not known to have
    /// consistent parity (a resync is pending or running, md's recovery_cp):
    /// they are never read-modify-written, parity is always computed from all
    /// data (reconstruct-write). `u64::MAX` = all in sync.
    pub fn plan(
        &self,
        sector: u64,
        len_sectors: u64,
        unsynced_from_stripe: u64,
        plan: &mut WritePlan,
    ) -> Result<(), DataLost> {
        assert!(len_sectors > 0, "empty write");
        assert!(
            sector
                .checked_add(len_sectors)
                .is_some_and(|end| end <= self.array_sectors),
            "write [{sector}, +{len_sectors}) past the array end"
        );
        plan.reset(sector, len_sectors);
        let end = sector + len_sectors;
        let mut at = sector;
        while at < end {
            at = match self.geometry.level() {
                Level::Raid4 | Level::Raid5 | Level::Raid6 => {
                    self.plan_stripe(at, end, unsynced_from_stripe, plan)?
                }
                _ => self.plan_extent(at, end, plan)?,
            };
        }
        self.roles.add_replacement_writes(&mut plan.writes, 0);
        assert!(!plan.writes.is_empty(), "a write plan writes something");
        assert!(
            plan.reads.iter().all(|r| match r.buf {
                BufRef::Scratch { offset_bytes } =>
                    offset_bytes + r.len_sectors as usize * SECTOR_BYTES <= plan.scratch_bytes,
                BufRef::Data { .. } => false,
            }),
            "every read lands inside scratch"
        );
        Ok(())
    }

    /// linear, raid0, raid1, raid10: one extent; returns where the next starts.
    fn plan_extent(&self, at: u64, end: u64, plan: &mut WritePlan) -> Result<u64, DataLost> {
        let extent = self.geometry.locate(at, &mut plan.copies);
        let len = extent.len_sectors.min(end - at);
        let data_at = (at - plan.sector) as usize * SECTOR_BYTES;
        let buf = BufRef::Data {
            offset_bytes: data_at,
        };
        match extent.target {
            Target::Single(copy) => {
                if !self.roles.present(copy.role) {
                    return Err(DataLost {
                        sector: at,
                        roles: vec![copy.role],
                    });
                }
                plan.writes
                    .push(self.io(copy.role, copy.dev_sector, len, buf));
                plan.count(StripeMode::Direct);
            }
            Target::Mirrored => {
                let mut written = 0;
                for i in 0..plan.copies.len() {
                    let copy = plan.copies[i];
                    // A recovering copy is written too, as md does: recovery
                    // would copy the same bytes there later anyway.
                    if self.roles.present(copy.role) {
                        plan.writes
                            .push(self.io(copy.role, copy.dev_sector, len, buf));
                        written += 1;
                    }
                }
                if written == 0 {
                    return Err(DataLost {
                        sector: at,
                        roles: plan.copies.iter().map(|c| c.role).collect(),
                    });
                }
                let degraded = written < plan.copies.len();
                plan.count(if degraded {
                    StripeMode::Degraded
                } else {
                    StripeMode::Direct
                });
            }
            Target::Striped { .. } => unreachable!("parity levels plan by stripe"),
        }
        Ok(at + len)
    }

    fn io(&self, role: u32, dev_sector: u64, len_sectors: u64, buf: BufRef) -> PlannedIo {
        PlannedIo {
            role,
            device_sector: self.roles.data_offset(role) + dev_sector,
            len_sectors,
            buf,
        }
    }

    /// After every read of `plan.reads` landed in scratch: compute parity
    /// (and any reconstructed old data) into scratch so every write's bytes
    /// are ready. `data` is the caller's write payload (len_sectors x 512 bytes).
    pub fn compute(&self, plan: &WritePlan, data: &[u8], scratch: &mut [u8]) {
        assert_eq!(
            data.len(),
            plan.len_sectors as usize * SECTOR_BYTES,
            "payload length"
        );
        assert!(scratch.len() >= plan.scratch_bytes, "scratch too small");
        for op in &plan.ops {
            let chunks = &plan.chunks[op.chunks.0..op.chunks.1];
            compute_stripe(op, chunks, data, scratch);
        }
    }
}

impl WritePlanner {
    /// raid4/5/6: plan the part of `[at, end)` inside `at`'s stripe; returns
    /// where the next stripe's part starts.
    fn plan_stripe(
        &self,
        at: u64,
        end: u64,
        unsynced_from_stripe: u64,
        plan: &mut WritePlan,
    ) -> Result<u64, DataLost> {
        let chunk = u64::from(self.geometry.chunk_sectors());
        let Target::Striped { data, stripe } = self.geometry.locate(at, &mut plan.copies).target
        else {
            unreachable!("raid4/5/6 sectors are striped")
        };
        let base = data.dev_sector - at % chunk;
        assert_eq!(base % chunk, 0, "a stripe starts on a chunk boundary");
        self.geometry.stripe_layout(stripe, &mut plan.layout);
        let d = plan.layout.data_roles.len();
        let raid6 = plan.layout.q_role.is_some();
        let slots = if raid6 {
            plan.layout.q_slot_count as usize
        } else {
            d
        };
        let first = plan.chunks.len();
        for j in 0..d {
            let slot = if raid6 {
                plan.layout.q_slots[j] as usize
            } else {
                j
            };
            plan.chunks.push(ChunkOp {
                slot,
                new_lo: 0,
                new_hi: 0,
                data_at: 0,
            });
        }
        let (mut window_lo, mut window_hi, mut next) = (chunk, 0, at);
        while next < end {
            let extent = self.geometry.locate(next, &mut plan.copies);
            let Target::Striped { data, stripe: s } = extent.target else {
                unreachable!("raid4/5/6 sectors are striped")
            };
            if s != stripe {
                break;
            }
            let j = ((next / chunk) % d as u64) as usize;
            assert_eq!(
                plan.layout.data_roles[j], data.role,
                "chunk j of the stripe"
            );
            let (lo, len) = (next % chunk, extent.len_sectors.min(end - next));
            let op = &mut plan.chunks[first + j];
            (op.new_lo, op.new_hi) = (lo, lo + len);
            op.data_at = (next - plan.sector) as usize * SECTOR_BYTES;
            (window_lo, window_hi) = (window_lo.min(lo), window_hi.max(lo + len));
            next += len;
        }
        assert!(
            window_lo < window_hi && next > at,
            "the stripe's part is not empty"
        );
        for op in &mut plan.chunks[first..] {
            if op.new_hi > op.new_lo {
                op.new_lo -= window_lo;
                op.new_hi -= window_lo;
            }
        }
        let window = window_hi - window_lo;
        let op = self.decide(
            stripe,
            base + window_lo,
            window,
            slots,
            unsynced_from_stripe,
            plan,
        )?;
        let op = StripeOp {
            chunks: (first, plan.chunks.len()),
            stripe,
            window_lo,
            p_role: plan.layout.p_role,
            ..op
        };
        self.emit(&op, base + window_lo, plan);
        plan.ops.push(op);
        plan.stripes = Some(
            plan.stripes
                .map_or((stripe, stripe), |(a, b)| (a.min(stripe), b.max(stripe))),
        );
        Ok(next)
    }

    /// Choose how to write the stripe whose chunks were just pushed; counts
    /// the mode and reserves its scratch.
    fn decide(
        &self,
        stripe: u64,
        dev_lo: u64,
        window: u64,
        slots: usize,
        unsynced_from_stripe: u64,
        plan: &mut WritePlan,
    ) -> Result<StripeOp, DataLost> {
        let layout = &plan.layout;
        let parity = if layout.q_role.is_some() { 2 } else { 1 };
        let chunks = &plan.chunks[plan.chunks.len() - layout.data_roles.len()..];
        let usable = |role: u32| self.roles.usable(role, dev_lo, window);
        let parity_roles = std::iter::once(layout.p_role).chain(layout.q_role);
        let mut missing = [0usize; 2];
        let mut missing_count = 0;
        let lost_blocks = (layout
            .data_roles
            .iter()
            .zip(chunks)
            .map(|(&r, c)| (r, c.slot)))
        .chain(
            parity_roles
                .clone()
                .enumerate()
                .map(|(k, r)| (r, slots + k)),
        )
        .filter(|&(role, _)| !usable(role));
        for (_, block) in lost_blocks.clone() {
            if missing_count == parity {
                return Err(DataLost {
                    sector: plan.sector,
                    roles: lost_blocks.map(|(role, _)| role).collect(),
                });
            }
            missing[missing_count] = block;
            missing_count += 1;
        }
        missing[..missing_count].sort_unstable();
        let lost = &missing[..missing_count];
        let full = |c: &ChunkOp| c.new_lo == 0 && c.new_hi == window;
        let touched = |c: &ChunkOp| c.new_hi > c.new_lo;
        let lost_chunk = |c: &ChunkOp| lost.contains(&c.slot);
        let lost_parity = lost.iter().filter(|&&b| b >= slots).count();
        let synced = stripe < unsynced_from_stripe;
        let (mode, compute) = if missing_count == 0 {
            let rcw = chunks.iter().filter(|c| !full(c)).count();
            let rmw = chunks.iter().filter(|c| touched(c)).count() + parity;
            if rcw == 0 {
                (StripeMode::FullStripe, Compute::Generate)
            } else if synced && rmw < rcw {
                (StripeMode::ReadModifyWrite, Compute::Delta)
            } else {
                (StripeMode::ReconstructWrite, Compute::Generate)
            }
        } else if parity_roles.clone().all(|r| !self.roles.present(r)) {
            (StripeMode::Degraded, Compute::None)
        } else if chunks.iter().all(|c| !lost_chunk(c) || full(c)) {
            (StripeMode::Degraded, Compute::Generate)
        } else if synced && lost_parity == 0 && chunks.iter().all(|c| !lost_chunk(c) || !touched(c))
        {
            (StripeMode::Degraded, Compute::Delta)
        } else {
            (StripeMode::Degraded, Compute::Rebuild)
        };
        let (zero_slots, zero_count) = zero_slots(&mut plan.slot_used, slots, chunks);
        let blocks = match compute {
            Compute::None => 0,
            Compute::Delta if parity == 2 => slots + 4,
            _ => slots + parity,
        };
        let scratch_at = plan.scratch_bytes;
        plan.scratch_bytes += blocks * window as usize * SECTOR_BYTES;
        plan.count(mode);
        Ok(StripeOp {
            compute,
            window_sectors: window,
            scratch_at,
            slots,
            parity,
            chunks: (0, 0),
            zero_slots,
            zero_count,
            missing,
            missing_count,
            stripe,
            window_lo: 0,
            p_role: 0,
        })
    }

    /// Push the reads and writes of a decided stripe.
    fn emit(&self, op: &StripeOp, dev_lo: u64, plan: &mut WritePlan) {
        let window = op.window_sectors;
        let wbytes = window as usize * SECTOR_BYTES;
        let usable = |role: u32| self.roles.usable(role, dev_lo, window);
        // Writes go to recovering roles too (as md's do): the bytes are right
        // for the whole window, and below recovery_offset they must stay so.
        let present = |role: u32| self.roles.present(role);
        let read = |role: u32, block: usize, lo: u64, hi: u64| PlannedIo {
            role,
            device_sector: self.roles.data_offset(role) + dev_lo + lo,
            len_sectors: hi - lo,
            buf: BufRef::Scratch {
                offset_bytes: op.scratch_at + block * wbytes + lo as usize * SECTOR_BYTES,
            },
        };
        let layout = &plan.layout;
        let chunks = &plan.chunks[op.chunks.0..op.chunks.1];
        for (&role, c) in layout.data_roles.iter().zip(chunks) {
            let touched = c.new_hi > c.new_lo;
            if touched && present(role) {
                plan.writes.push(PlannedIo {
                    role,
                    device_sector: self.roles.data_offset(role) + dev_lo + c.new_lo,
                    len_sectors: c.new_hi - c.new_lo,
                    buf: BufRef::Data {
                        offset_bytes: c.data_at,
                    },
                });
            }
            if !usable(role) {
                continue;
            }
            let ranges = match op.compute {
                Compute::None => [(0, 0), (0, 0)],
                Compute::Generate => [(0, c.new_lo), (c.new_hi, window)],
                Compute::Delta => [(c.new_lo, c.new_hi), (0, 0)],
                Compute::Rebuild => [(0, window), (0, 0)],
            };
            let ranges = if touched {
                ranges
            } else {
                [(0, 0), (0, window)]
            };
            for (lo, hi) in ranges {
                let wanted = touched || op.compute != Compute::Delta && op.compute != Compute::None;
                if hi > lo && wanted {
                    plan.reads.push(read(role, c.slot, lo, hi));
                }
            }
        }
        let parity_roles = std::iter::once(layout.p_role).chain(layout.q_role);
        for (k, role) in parity_roles.enumerate() {
            if op.compute == Compute::None || !present(role) {
                continue;
            }
            if usable(role) && matches!(op.compute, Compute::Delta | Compute::Rebuild) {
                plan.reads.push(read(role, op.slots + k, 0, window));
            }
            plan.writes.push(read(role, op.slots + k, 0, window));
        }
    }
}

/// Slots of the stripe that no data chunk fills (DDF raid6 P/Q positions).
fn zero_slots(used: &mut Vec<bool>, slots: usize, chunks: &[ChunkOp]) -> ([usize; 2], usize) {
    used.clear();
    used.resize(slots, false);
    for c in chunks {
        used[c.slot] = true;
    }
    let mut out = [0; 2];
    let mut count = 0;
    for (slot, _) in used.iter().enumerate().filter(|(_, &u)| !u) {
        out[count] = slot;
        count += 1;
    }
    assert_eq!(
        count,
        slots - chunks.len(),
        "every data chunk has its own slot"
    );
    (out, count)
}

mod compute;
pub mod gather;
pub mod ppl;

#[cfg(test)]
pub(crate) mod tests;

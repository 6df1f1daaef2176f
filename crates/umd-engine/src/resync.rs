//! Sync planning: reading a window of the array to verify, and making it
//! consistent again, for md's resync, check and repair actions; and
//! rebuilding members that are recovering (md's recovery onto a spare).
//!
//! Sans-I/O (style R8), on the model of [`crate::read`]: [`SyncPlanner::plan`]
//! lists the member reads that cover one window into a [`SyncWindow`]; the
//! caller performs them into scratch and calls [`SyncPlanner::finish`], which
//! compares and, for resync and repair, appends the member writes that fix
//! the window. raid4/5/6 recompute P (and Q) from the data and compare them
//! with what the members hold; raid1/10 compare every copy with the first
//! readable one. A window never spans two stripes (raid4/5/6) or two chunks
//! (raid10), so the host can lock exactly [`SyncPlanner::stripe_of`].
//!
//! Positions are in md's sync units, the ones `sync_completed` shows:
//! member (component) sectors for raid1/4/5/6, array sectors for raid10 (md's
//! raid10 resync walks the virtual array). raid1's member and array sectors
//! are the same.
//!
//! Mismatches are counted as md's `mismatch_cnt` does for raid4/5/6: 8
//! sectors (one 4 KiB stripe unit, [`SYNC_BLOCK_SECTORS`]) per block whose
//! parity differs. raid1/10 use the same 4 KiB blocks, counted once per copy
//! that differs from the source, as md's raid1 counts per differing member.
//! A window with a role missing or not yet recovered is neither compared nor
//! written (rebuilding a member is recovery's job, not resync's), except
//! raid6 with one block missing, which md resyncs too: a missing data block
//! is taken to be what P says, and the parity that is present is compared
//! and fixed (Q; P when Q is the one missing). raid6 check
//! and repair go beyond md: the P and Q syndromes locate a single wrong
//! block (data, P or Q) and repair rewrites only it (`resync/locate.rs`).
//!
//! Recovery ([`SyncPlanner::plan_recover`]) is the other way round: a role
//! that is present but not yet valid at the window (its member is below its
//! `recovery_offset` there) is a target. The window reads every usable role,
//! rebuilds the targets' blocks (raid4/5 by XOR, raid6 with the P/Q
//! recovery for up to two lost blocks, raid1/10 from the first usable copy)
//! and writes only the targets. A window with more lost blocks than the
//! level survives is skipped and counted: that data is gone.
//!
//! Windows reuse their vectors: no allocation per window once warmed up (R7).
//! This module also holds [`Roles`], the per-role table of data offsets and
//! recovery offsets that both the sync and the write planner consult.

use crate::read::MemberMap;
use crate::write::{gen_parity, recover, BufRef, PlannedIo, SECTOR_BYTES};
use umd_layout::geometry::{Copy, Geometry, Level, StripeLayout, Target};

/// Sectors compared and counted as one unit: md's 4 KiB stripe unit
/// (`RAID5_STRIPE_SECTORS`).
pub const SYNC_BLOCK_SECTORS: u64 = 8;

/// Which block of a raid6 stripe the syndromes located as the wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocatedBlock {
    /// A data block.
    Data,
    /// The P block.
    P,
    /// The Q block.
    Q,
}

/// One 4 KiB sync block (or its part inside the window) whose mismatch the
/// raid6 syndromes pinned on a single member
/// ([`umd_layout::parity::syndrome::locate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocatedMismatch {
    /// Role (raid slot) of the member holding the wrong block.
    pub role: u32,
    /// Sync position of the block (member sectors past the data offset, the
    /// units of `sync_completed`).
    pub position: u64,
    /// Sectors of the block inside the window.
    pub len_sectors: u64,
    /// What the block is in its stripe.
    pub block: LocatedBlock,
}

/// Which md sync action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Make redundancy consistent after an unclean shutdown (md "resync").
    Resync,
    /// Count mismatches, change nothing (md "check").
    Check,
    /// Count mismatches and fix them (md "repair").
    Repair,
}

/// What a window holds, for [`SyncPlanner::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    /// Nothing to compare (a role missing, or fewer than two copies).
    #[default]
    Skip,
    /// raid4/5/6: scratch = data slots, computed P (Q), read P (Q).
    Parity {
        slots: usize,
        parity: usize,
        zero_slots: [usize; 2],
        zero_count: usize,
    },
    /// raid6 with one block missing: scratch as `Parity`; a missing data
    /// block is rebuilt from P, then the parity that is present is compared.
    DegradedRaid6 {
        slots: usize,
        lost: Lost,
        zero_slots: [usize; 2],
        zero_count: usize,
    },
    /// raid1/10: scratch block i = read i; block 0 is the source.
    Mirror,
    /// Recovery, raid4/5/6: scratch = slots blocks then P (Q); `missing`
    /// blocks are rebuilt, then `targets` written.
    RecoverParity {
        slots: usize,
        parity: usize,
        missing: [usize; 2],
        missing_count: usize,
        zero_slots: [usize; 2],
        zero_count: usize,
    },
    /// Recovery, raid1/10: scratch block 0 = the source, written to `targets`.
    RecoverMirror,
    /// Recovery, raid4/5/6, with nothing lost: only replacements to fill,
    /// each from its role's block as read (laid out as `RecoverParity`).
    RecoverCopy,
    /// Recovery impossible here: more blocks lost than the level survives.
    Lost,
}

/// Which block of a degraded raid6 window has no member to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// The data block in this Q-ordered slot.
    Data(usize),
    /// P.
    P,
    /// Q.
    Q,
}

/// One window of a sync: what to read, and what finish needs to know.
#[derive(Debug, Clone, Default)]
pub struct SyncWindow {
    /// First position of the window (units: see the module doc).
    pub position: u64,
    /// Length of the window in the same units (sectors).
    pub len: u64,
    /// Reads to perform, any order, all into scratch.
    pub reads: Vec<PlannedIo>,
    /// Bytes of scratch the caller must provide.
    pub scratch_bytes: usize,
    kind: Kind,
    p_io: Option<PlannedIo>,
    q_io: Option<PlannedIo>,
    layout: StripeLayout,
    copies: Vec<Copy>,
    slot_used: Vec<bool>,
    /// Recovery: the writes of the rebuilt blocks, from scratch.
    targets: Vec<PlannedIo>,
}

/// One 4 KiB sync block of a role's read in a window (or the part of it
/// inside the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleBlock {
    /// Sync position of the block's first sector.
    pub position: u64,
    /// Where that sector is on the role's member (data offset included).
    pub device_sector: u64,
    /// Sectors of the block inside the window.
    pub len_sectors: u64,
}

impl SyncWindow {
    /// Recovery: whether this window had more blocks lost than the level
    /// survives (its targets cannot be rebuilt).
    #[must_use]
    pub fn lost(&self) -> bool {
        self.kind == Kind::Lost
    }

    /// The sync blocks this window reads from `role`, in order: where a
    /// host reads again, one block at a time, after a read of `role`
    /// failed, to find the blocks to rewrite (md works per 4 KiB block). A
    /// window reads a role at most once (one block of a stripe, one copy of
    /// a mirror), over the whole window, its sectors one to one with the
    /// window's positions.
    pub fn role_blocks(&self, role: u32) -> impl Iterator<Item = RoleBlock> + '_ {
        let (position, len) = (self.position, self.len);
        self.reads
            .iter()
            .filter(move |r| r.role == role)
            .flat_map(move |io| {
                assert_eq!(io.len_sectors, len, "a role's read covers the window");
                let mut offset = 0;
                std::iter::from_fn(move || {
                    if offset >= len {
                        return None;
                    }
                    let at = position + offset;
                    let block_end = (at / SYNC_BLOCK_SECTORS + 1) * SYNC_BLOCK_SECTORS;
                    let block = RoleBlock {
                        position: at,
                        device_sector: io.device_sector + offset,
                        len_sectors: (block_end - at).min(len - offset),
                    };
                    offset += block.len_sectors;
                    Some(block)
                })
            })
    }
}

/// Plans resync, check and repair of one assembled array.
#[derive(Debug, Clone)]
pub struct SyncPlanner {
    geometry: Geometry,
    roles: Roles,
}

impl SyncPlanner {
    /// A planner for `geometry` over `members`.
    #[must_use]
    // By value like `ReadPlanner::new`: the host hands its map over.
    #[allow(clippy::needless_pass_by_value)]
    pub fn new(geometry: Geometry, members: MemberMap) -> Self {
        let roles = Roles::from_map(&members, geometry.raid_disks());
        Self { geometry, roles }
    }

    /// The end of the sync range: member sectors for raid1/4/5/6 (md's
    /// dev_sectors), array sectors for raid10 (md's resync_max_sectors), 0 for
    /// linear and raid0, which have nothing to sync.
    #[must_use]
    pub fn max_position(&self) -> u64 {
        match self.geometry.level() {
            Level::Linear | Level::Raid0 => 0,
            Level::Raid1 | Level::Raid10 => self.geometry.array_sectors(),
            Level::Raid4 | Level::Raid5 | Level::Raid6 => self.geometry.member_used_sectors(0),
        }
    }

    /// The stripe (raid4/5/6; the unit of `unsynced_from_stripe`) or chunk
    /// (raid10) holding `position`; raid1, without chunks, returns `position`.
    #[must_use]
    pub fn stripe_of(&self, position: u64) -> u64 {
        match u64::from(self.geometry.chunk_sectors()) {
            0 => position,
            chunk => position / chunk,
        }
    }

    /// Plan reading everything needed to verify or repair
    /// `[position, position + len)`, `len <= len_max`; the window stops at the
    /// end of a stripe or chunk: continue from `position + window.len`.
    pub fn plan(&self, position: u64, len_max: u64, window: &mut SyncWindow) {
        let max = self.max_position();
        assert!(position < max, "sync position {position} past {max}");
        assert!(len_max > 0, "empty sync window");
        window.position = position;
        window.reads.clear();
        window.scratch_bytes = 0;
        window.kind = Kind::Skip;
        (window.p_io, window.q_io) = (None, None);
        match self.geometry.level() {
            Level::Raid4 | Level::Raid5 | Level::Raid6 => {
                self.plan_parity(position, len_max, window);
            }
            _ => self.plan_mirror(position, len_max, window),
        }
        assert!(
            window.len > 0 && position + window.len <= max,
            "window inside the range"
        );
    }

    /// A raid4/5/6 window: its length (inside one chunk row) and stripe
    /// layout in `window`; returns (Q-ordered slots, parity blocks).
    fn parity_window(
        &self,
        position: u64,
        len_max: u64,
        window: &mut SyncWindow,
    ) -> (usize, usize) {
        let chunk = u64::from(self.geometry.chunk_sectors());
        window.len = len_max
            .min(chunk - position % chunk)
            .min(self.max_position() - position);
        self.geometry
            .stripe_layout(position / chunk, &mut window.layout);
        let layout = &window.layout;
        let slots_parity = if layout.q_role.is_some() {
            (layout.q_slot_count as usize, 2)
        } else {
            (layout.data_roles.len(), 1)
        };
        assert!(window.len > 0 && slots_parity.0 >= layout.data_roles.len());
        slots_parity
    }

    fn plan_parity(&self, position: u64, len_max: u64, window: &mut SyncWindow) {
        let (slots, parity) = self.parity_window(position, len_max, window);
        let len = window.len;
        let layout = &window.layout;
        let raid6 = parity == 2;
        let d = layout.data_roles.len();
        let every_role = layout
            .data_roles
            .iter()
            .chain([&layout.p_role])
            .chain(&layout.q_role);
        let mut unusable = every_role
            .clone()
            .filter(|&&r| !self.roles.usable(r, position, len));
        // raid6 survives one block missing and still has a parity to
        // compare (md resyncs a degraded raid6); anything else is left alone.
        let missing = match (unusable.next(), unusable.next()) {
            (None, _) => None,
            (Some(&role), None) if raid6 => Some(role),
            _ => return,
        };
        let wbytes = len as usize * SECTOR_BYTES;
        let io = |role: u32, block: usize| PlannedIo {
            role,
            device_sector: self.roles.data_offset(role) + position,
            len_sectors: len,
            buf: BufRef::Scratch {
                offset_bytes: block * wbytes,
            },
        };
        window.slot_used.clear();
        window.slot_used.resize(slots, false);
        let mut lost = None;
        for (j, &role) in layout.data_roles.iter().enumerate() {
            let slot = if raid6 { layout.q_slots[j] as usize } else { j };
            window.slot_used[slot] = true;
            if missing == Some(role) {
                lost = Some(Lost::Data(slot));
            } else {
                window.reads.push(io(role, slot));
            }
        }
        // Scratch: data slots, computed P (Q), then the P (Q) read.
        let read = |r: &u32| missing != Some(*r);
        window.p_io = Some(layout.p_role)
            .filter(read)
            .map(|p| io(p, slots + parity));
        window.q_io = layout
            .q_role
            .filter(read)
            .map(|q| io(q, slots + parity + 1));
        if missing == Some(layout.p_role) {
            lost = Some(Lost::P);
        }
        if missing.is_some() && missing == layout.q_role {
            lost = Some(Lost::Q);
        }
        assert_eq!(
            lost.is_some(),
            missing.is_some(),
            "the missing role is in the stripe"
        );
        window.reads.extend(window.p_io.iter().chain(&window.q_io));
        let mut zero_slots = [0; 2];
        let mut zero_count = 0;
        for (slot, _) in window.slot_used.iter().enumerate().filter(|(_, &u)| !u) {
            zero_slots[zero_count] = slot;
            zero_count += 1;
        }
        assert_eq!(zero_count, slots - d, "every data role has its own slot");
        window.kind = match lost {
            None => Kind::Parity {
                slots,
                parity,
                zero_slots,
                zero_count,
            },
            Some(lost) => Kind::DegradedRaid6 {
                slots,
                lost,
                zero_slots,
                zero_count,
            },
        };
        window.scratch_bytes = (slots + 2 * parity) * wbytes;
    }

    fn plan_mirror(&self, position: u64, len_max: u64, window: &mut SyncWindow) {
        let extent = self.geometry.locate(position, &mut window.copies);
        assert!(
            extent.target == Target::Mirrored,
            "raid1/10 sectors are mirrored"
        );
        let len = extent.len_sectors.min(len_max);
        window.len = len;
        let wbytes = len as usize * SECTOR_BYTES;
        for copy in &window.copies {
            if self.roles.usable(copy.role, copy.dev_sector, len) {
                let offset_bytes = window.reads.len() * wbytes;
                window.reads.push(PlannedIo {
                    role: copy.role,
                    device_sector: self.roles.data_offset(copy.role) + copy.dev_sector,
                    len_sectors: len,
                    buf: BufRef::Scratch { offset_bytes },
                });
            }
        }
        if window.reads.len() < 2 {
            window.reads.clear();
            return;
        }
        window.kind = Kind::Mirror;
        window.scratch_bytes = window.reads.len() * wbytes;
    }

    /// Plan rebuilding the recovering roles over `[position, position +
    /// len)`, `len <= len_max` (same window bounds as [`Self::plan`]): the
    /// reads of every usable role, and in [`Self::finish_recover`] the
    /// writes of the targets. A window with no target reads nothing.
    pub fn plan_recover(&self, position: u64, len_max: u64, window: &mut SyncWindow) {
        let max = self.max_position();
        assert!(position < max, "recovery position {position} past {max}");
        assert!(len_max > 0, "empty recovery window");
        // Where positions are member sectors, stop at a recovering member's
        // checkpoint, so what it already holds is not rewritten.
        let member_units = self.geometry.level() != Level::Raid10;
        let len_max = if member_units {
            self.roles
                .checkpoints()
                .filter(|&c| c > position)
                .fold(len_max, |l, c| l.min(c - position))
        } else {
            len_max
        };
        window.position = position;
        window.reads.clear();
        window.targets.clear();
        window.scratch_bytes = 0;
        window.kind = Kind::Skip;
        (window.p_io, window.q_io) = (None, None);
        match self.geometry.level() {
            Level::Raid4 | Level::Raid5 | Level::Raid6 => {
                self.plan_recover_parity(position, len_max, window);
            }
            _ => self.plan_recover_mirror(position, len_max, window),
        }
        assert!(window.len > 0 && position + window.len <= max);
        assert!(window.targets.is_empty() || window.kind != Kind::Skip);
    }

    /// A read of `role` failed inside a sync window: plan rebuilding that
    /// role's blocks over `[position, position + len)`, `len <= len_max`,
    /// from the other roles, so the host can rewrite what the member could
    /// not read (md rewrites such a block in every sync action, check
    /// included, and reads it back). The window is a recovery window whose
    /// only target is `role`: the host reads, calls
    /// [`Self::finish_recover`] and writes; continue from `position +
    /// window.len`. Returns false when the other roles cannot rebuild the
    /// blocks (more lost than the level survives, or `role` has no member
    /// here): the member must then be failed.
    ///
    /// Rebuilt from parity, a data block is only as good as the parity: if
    /// the array is being resynced after an unclean stop, parity may be stale
    /// there, and the rewrite carries md's write hole, as md's own does.
    /// Allocates a planner copy: this is the error path.
    pub fn plan_rewrite(
        &self,
        role: u32,
        position: u64,
        len_max: u64,
        window: &mut SyncWindow,
    ) -> bool {
        if !self.roles.present(role) {
            return false;
        }
        let mut stale = self.clone();
        stale.roles.mark_stale(role);
        stale.plan_recover(position, len_max, window);
        // Other roles still recovering here are recovery's to write.
        window.targets.retain(|t| t.role == role);
        let rebuildable = !window.lost() && !window.targets.is_empty();
        if !rebuildable {
            window.reads.clear();
            window.targets.clear();
            window.kind = Kind::Lost;
        }
        assert!(window.targets.iter().all(|t| t.role == role));
        rebuildable
    }

    fn plan_recover_parity(&self, position: u64, len_max: u64, window: &mut SyncWindow) {
        let (slots, parity) = self.parity_window(position, len_max, window);
        let len = window.len;
        let layout = &window.layout;
        let raid6 = parity == 2;
        let wbytes = len as usize * SECTOR_BYTES;
        let io = |role: u32, block: usize| PlannedIo {
            role,
            device_sector: self.roles.data_offset(role) + position,
            len_sectors: len,
            buf: BufRef::Scratch {
                offset_bytes: block * wbytes,
            },
        };
        let blocks = layout
            .data_roles
            .iter()
            .enumerate()
            .map(|(j, &role)| (if raid6 { layout.q_slots[j] as usize } else { j }, role))
            .chain([(slots, layout.p_role)])
            .chain(layout.q_role.map(|q| (slots + 1, q)));
        let mut missing = [0usize; 2];
        let mut missing_count = 0usize;
        let mut lost = 0usize;
        window.slot_used.clear();
        window.slot_used.resize(slots, false);
        for (block, role) in blocks {
            if block < slots {
                window.slot_used[block] = true;
            }
            // A replacement not yet filled here gets its role's block: read,
            // or rebuilt with the missing ones.
            let unfilled = self
                .roles
                .replacement(role)
                .filter(|&to| !self.roles.usable(to, position, len));
            if let Some(to) = unfilled {
                window.targets.push(io(to, block));
            }
            if self.roles.usable(role, position, len) {
                window.reads.push(io(role, block));
                continue;
            }
            lost += 1;
            if missing_count < 2 {
                missing[missing_count] = block;
                missing_count += 1;
            }
            if self.roles.present(role) {
                window.targets.push(io(role, block));
            }
        }
        if window.targets.is_empty() {
            window.reads.clear();
            return;
        }
        if lost == 0 {
            // Only replacements to fill: copy their roles' blocks, nothing
            // to rebuild, so the other roles need not be read.
            window
                .reads
                .retain(|r| window.targets.iter().any(|t| t.buf == r.buf));
            window.kind = Kind::RecoverCopy;
            window.scratch_bytes = (slots + parity) * wbytes;
            return;
        }
        if lost > parity {
            window.reads.clear();
            window.targets.clear();
            window.kind = Kind::Lost;
            return;
        }
        let mut zero_slots = [0; 2];
        let mut zero_count = 0;
        for (slot, _) in window.slot_used.iter().enumerate().filter(|(_, &u)| !u) {
            zero_slots[zero_count] = slot;
            zero_count += 1;
        }
        missing[..missing_count].sort_unstable();
        window.kind = Kind::RecoverParity {
            slots,
            parity,
            missing,
            missing_count,
            zero_slots,
            zero_count,
        };
        window.scratch_bytes = (slots + parity) * wbytes;
    }

    fn plan_recover_mirror(&self, position: u64, len_max: u64, window: &mut SyncWindow) {
        let extent = self.geometry.locate(position, &mut window.copies);
        assert!(
            extent.target == Target::Mirrored,
            "raid1/10 sectors are mirrored"
        );
        let len = extent.len_sectors.min(len_max);
        window.len = len;
        let source = window
            .copies
            .iter()
            .find(|c| self.roles.usable(c.role, c.dev_sector, len));
        let targets = window.copies.iter().filter(|c| {
            self.roles.present(c.role) && !self.roles.usable(c.role, c.dev_sector, len)
        });
        let io = |role: u32, c: &Copy| PlannedIo {
            role,
            device_sector: self.roles.data_offset(role) + c.dev_sector,
            len_sectors: len,
            buf: BufRef::Scratch { offset_bytes: 0 },
        };
        window.targets.extend(targets.map(|c| io(c.role, c)));
        // Replacements not yet filled here get the copy too.
        let replacements = window.copies.iter().filter_map(|c| {
            let to = self.roles.replacement(c.role)?;
            (!self.roles.usable(to, c.dev_sector, len)).then(|| io(to, c))
        });
        window.targets.extend(replacements);
        if window.targets.is_empty() {
            return;
        }
        let Some(source) = source else {
            window.targets.clear();
            window.kind = Kind::Lost;
            return;
        };
        window.reads.push(io(source.role, source));
        window.kind = Kind::RecoverMirror;
        window.scratch_bytes = len as usize * SECTOR_BYTES;
    }

    /// After a recovery window's reads: rebuild the targets' blocks in
    /// `scratch` and append their writes.
    pub fn finish_recover(
        &self,
        window: &SyncWindow,
        scratch: &mut [u8],
        writes: &mut Vec<PlannedIo>,
    ) {
        assert!(scratch.len() >= window.scratch_bytes, "scratch too small");
        let wbytes = window.len as usize * SECTOR_BYTES;
        match window.kind {
            Kind::Skip | Kind::Lost => return,
            Kind::RecoverMirror | Kind::RecoverCopy => {}
            Kind::RecoverParity {
                slots,
                parity,
                missing,
                missing_count,
                zero_slots,
                zero_count,
            } => {
                let region = &mut scratch[..(slots + parity) * wbytes];
                zero_slots_of(region, wbytes, &zero_slots[..zero_count]);
                recover(region, wbytes, slots, parity, &missing[..missing_count]);
            }
            Kind::Parity { .. } | Kind::DegradedRaid6 { .. } | Kind::Mirror => {
                unreachable!("finish_recover on a resync window")
            }
        }
        // The targets name the replacements to fill themselves (a role
        // being rebuilt is not in sync, so it is never being replaced).
        writes.extend_from_slice(&window.targets);
        assert!(
            !window.targets.is_empty(),
            "a recovery window writes its targets"
        );
    }

    /// After the reads: compare. Resync and Repair append the writes that make
    /// the window consistent (parity recomputed from data for raid4/5/6; the
    /// first readable copy copied to the others for raid1/10), only over the
    /// 4 KiB blocks that differ; Check appends none. raid6 Check and Repair
    /// first locate the wrong block of each differing 4 KiB block (module
    /// `locate`),
    /// append it to `located` and repair only it. Returns the mismatched
    /// sectors, counted as the module doc says, in every mode.
    pub fn finish(
        &self,
        window: &SyncWindow,
        mode: SyncMode,
        scratch: &mut [u8],
        writes: &mut Vec<PlannedIo>,
        located: &mut Vec<LocatedMismatch>,
    ) -> u64 {
        let writes_before = writes.len();
        let mismatched = self.finish_window(window, mode, scratch, writes, located);
        self.roles.add_replacement_writes(writes, writes_before);
        mismatched
    }

    /// [`Self::finish`] but for the replacements' writes.
    fn finish_window(
        &self,
        window: &SyncWindow,
        mode: SyncMode,
        scratch: &mut [u8],
        writes: &mut Vec<PlannedIo>,
        located: &mut Vec<LocatedMismatch>,
    ) -> u64 {
        assert!(scratch.len() >= window.scratch_bytes, "scratch too small");
        let writes_before = writes.len();
        let wbytes = window.len as usize * SECTOR_BYTES;
        let fix = mode != SyncMode::Check;
        let mismatched = match window.kind {
            Kind::Skip => 0,
            Kind::Parity {
                slots,
                parity,
                zero_slots,
                zero_count,
            } => {
                let region = &mut scratch[..(slots + 2 * parity) * wbytes];
                zero_slots_of(region, wbytes, &zero_slots[..zero_count]);
                gen_parity(
                    &mut region[..(slots + parity) * wbytes],
                    wbytes,
                    slots,
                    parity,
                );
                if parity == 2 && mode != SyncMode::Resync {
                    let r6 = locate::Raid6Region {
                        region,
                        slots,
                        wbytes,
                    };
                    return self.checked(locate::finish_raid6(window, r6, fix, writes, located));
                }
                let (computed, read) = region[slots * wbytes..].split_at(parity * wbytes);
                let targets = [window.p_io, window.q_io];
                let fixes = targets.iter().flatten().enumerate().map(|(k, io)| {
                    let at = (slots + k) * wbytes;
                    (io, at)
                });
                Self::compare(window, computed, read, fix.then_some(&fixes), writes)
            }
            Kind::DegradedRaid6 {
                slots,
                lost,
                zero_slots,
                zero_count,
            } => {
                let region = &mut scratch[..(slots + 4) * wbytes];
                zero_slots_of(region, wbytes, &zero_slots[..zero_count]);
                if let Lost::Data(slot) = lost {
                    // The data block is what P says it is: P read into the
                    // computed-P place, then XOR-recovered over the slots.
                    region.copy_within((slots + 2) * wbytes..(slots + 3) * wbytes, slots * wbytes);
                    recover(
                        &mut region[..(slots + 1) * wbytes],
                        wbytes,
                        slots,
                        1,
                        &[slot],
                    );
                }
                gen_parity(&mut region[..(slots + 2) * wbytes], wbytes, slots, 2);
                // Compare the parity there is: Q, unless Q is the one missing.
                let (k, io) = match lost {
                    Lost::Q => (0, window.p_io),
                    Lost::Data(_) | Lost::P => (1, window.q_io),
                };
                let io = io.expect("the parity compared was read");
                let computed = &region[(slots + k) * wbytes..][..wbytes];
                let read = &region[(slots + 2 + k) * wbytes..][..wbytes];
                let target = std::iter::once((&io, (slots + k) * wbytes));
                Self::compare(window, computed, read, fix.then_some(&target), writes)
            }
            Kind::RecoverParity { .. } | Kind::RecoverMirror | Kind::RecoverCopy | Kind::Lost => {
                unreachable!("finish on a recovery window")
            }
            Kind::Mirror => {
                let (source, others) = scratch[..window.scratch_bytes].split_at(wbytes);
                let mut total = 0;
                for (i, io) in window.reads.iter().enumerate().skip(1) {
                    let copy = &others[(i - 1) * wbytes..][..wbytes];
                    let target = std::iter::once((io, 0));
                    total += Self::compare(window, source, copy, fix.then_some(&target), writes);
                }
                total
            }
        };
        assert!(fix || writes.len() == writes_before, "check writes nothing");
        self.checked(mismatched)
    }

    /// `finish`'s postcondition on its count.
    fn checked(&self, mismatched: u64) -> u64 {
        assert_eq!(
            mismatched % SYNC_BLOCK_SECTORS,
            0,
            "counted in whole sync blocks"
        );
        assert!(
            self.max_position() > 0 || mismatched == 0,
            "nothing to sync, nothing found"
        );
        mismatched
    }

    /// Compare `good` with `seen` per sync block (both `parts` blocks of
    /// window length laid end to end); for each run of differing blocks, push
    /// a write of `good`'s bytes to each target (`(io, scratch offset of the
    /// good block)`). Returns the mismatched sectors.
    fn compare<'a, I>(
        window: &SyncWindow,
        good: &[u8],
        seen: &[u8],
        targets: Option<&I>,
        writes: &mut Vec<PlannedIo>,
    ) -> u64
    where
        I: Iterator<Item = (&'a PlannedIo, usize)> + Clone,
    {
        assert_eq!(good.len(), seen.len(), "compared blocks differ in length");
        let wbytes = window.len as usize * SECTOR_BYTES;
        let parts = good.len() / wbytes.max(1);
        let (start, end) = (window.position, window.position + window.len);
        let mut mismatched = 0;
        let mut run: Option<u64> = None;
        let mut lo = start;
        while lo < end {
            let hi = ((lo / SYNC_BLOCK_SECTORS + 1) * SYNC_BLOCK_SECTORS).min(end);
            let range = (lo - start) as usize * SECTOR_BYTES..(hi - start) as usize * SECTOR_BYTES;
            let differs = (0..parts).any(|k| {
                let at = k * wbytes;
                good[at + range.start..at + range.end] != seen[at + range.start..at + range.end]
            });
            if differs {
                mismatched += SYNC_BLOCK_SECTORS;
                run.get_or_insert(lo);
            }
            if let (Some(from), Some(targets)) = (run, targets) {
                if !differs || hi == end {
                    let to = if differs { hi } else { lo };
                    push_fix(targets.clone(), from - start, to - from, writes);
                }
            }
            if !differs {
                run = None;
            }
            lo = hi;
        }
        mismatched
    }
}

/// Zero the Q-order slots no data role fills (raid6 layouts with fewer data
/// roles than slots), so the syndrome computations see zeroes there.
fn zero_slots_of(region: &mut [u8], wbytes: usize, zero_slots: &[usize]) {
    for &z in zero_slots {
        region[z * wbytes..][..wbytes].fill(0);
    }
}

/// Writes of window sectors `[offset, offset + len)` from the good blocks.
fn push_fix<'a>(
    targets: impl Iterator<Item = (&'a PlannedIo, usize)>,
    offset: u64,
    len: u64,
    writes: &mut Vec<PlannedIo>,
) {
    assert!(len > 0, "a fix writes something");
    for (io, good_at) in targets {
        assert!(offset + len <= io.len_sectors, "fix inside the window");
        writes.push(PlannedIo {
            role: io.role,
            device_sector: io.device_sector + offset,
            len_sectors: len,
            buf: BufRef::Scratch {
                offset_bytes: good_at + offset as usize * SECTOR_BYTES,
            },
        });
    }
}

/// Per-role data offsets and validity, as [`MemberMap`] holds them, and the
/// replacements' (ids `base + role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Roles {
    entries: Vec<Option<(u64, Option<u64>)>>,
    /// Roles of the array; `entries` holds twice as many.
    base: usize,
    /// Whether any role has a replacement (the common case skips the search).
    replacing: bool,
}

impl Roles {
    /// The table of `map`, `raid_disks` entries long (absent entries =
    /// missing), then as many for the replacements.
    pub(crate) fn from_map(map: &MemberMap, raid_disks: u32) -> Self {
        let base = map.role_count().max(raid_disks as usize);
        let mut entries: Vec<_> = (0..base as u32).map(|r| map.role(r)).collect();
        entries.extend((0..map.role_count() as u32).map(|r| map.role(map.replacement_of(r))));
        entries.resize(base * 2, None);
        let replacing = entries[base..].iter().any(Option::is_some);
        // Ids `base + role` are the map's ids only when it covers every role.
        assert!(
            !replacing || base == map.role_count(),
            "replacements in a map short of raid_disks"
        );
        Self {
            entries,
            base,
            replacing,
        }
    }

    /// Whether any role has a replacement.
    pub(crate) fn replacing(&self) -> bool {
        self.replacing
    }

    /// The id of `role`'s replacement, if it has one.
    pub(crate) fn replacement(&self, role: u32) -> Option<u32> {
        let id = self.base + role as usize;
        (self.replacing && role < self.base as u32 && matches!(self.entries.get(id), Some(Some(_))))
            .then_some(id as u32)
    }

    /// md writes everything a replaced role is written to its replacement
    /// too: append, for each write of `writes[from..]` to a role being
    /// replaced, the same write to the replacement (at its own data offset).
    /// Writes past the replacement's checkpoint are harmless: recovery
    /// copies the same bytes there later.
    pub(crate) fn add_replacement_writes(&self, writes: &mut Vec<PlannedIo>, from: usize) {
        if !self.replacing {
            return;
        }
        for i in from..writes.len() {
            let w = writes[i];
            let Some(to) = self.replacement(w.role) else {
                continue;
            };
            let member_sector = w.device_sector - self.data_offset(w.role);
            writes.push(PlannedIo {
                role: to,
                device_sector: self.data_offset(to) + member_sector,
                ..w
            });
        }
    }

    /// Whether `role` has a member at all (it may still be recovering).
    pub(crate) fn present(&self, role: u32) -> bool {
        matches!(self.entries.get(role as usize), Some(Some(_)))
    }

    /// Whether `role` holds valid member sectors `[dev_sector, dev_sector + len_sectors)`.
    pub(crate) fn usable(&self, role: u32, dev_sector: u64, len_sectors: u64) -> bool {
        match self.entries.get(role as usize) {
            Some(Some((_, None))) => true,
            Some(Some((_, Some(valid_below)))) => dev_sector + len_sectors <= *valid_below,
            _ => false,
        }
    }

    /// The recovery checkpoints of the roles that are recovering.
    pub(crate) fn checkpoints(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries
            .iter()
            .filter_map(|r| r.and_then(|(_, valid_below)| valid_below))
    }

    /// Data offset of a present role.
    pub(crate) fn data_offset(&self, role: u32) -> u64 {
        match self.entries.get(role as usize) {
            Some(Some((offset, _))) => *offset,
            _ => unreachable!("data_offset of a missing role {role}"),
        }
    }

    /// Treat a present `role` as holding nothing valid (recovering from 0).
    pub(crate) fn mark_stale(&mut self, role: u32) {
        if let Some(Some((_, valid_below))) = self.entries.get_mut(role as usize) {
            *valid_below = Some(0);
        }
    }

    /// Forget `role`'s member.
    pub(crate) fn mark_failed(&mut self, role: u32) {
        if let Some(slot) = self.entries.get_mut(role as usize) {
            *slot = None;
        }
    }
}

mod locate;
#[cfg(test)]
mod tests;

//! The partial parity log of a running raid5 (md's PPL): before a stripe's
//! data and parity writes, its log unit (header and partial parity) is
//! written to the parity member's PPL area and made durable.
//!
//! Why the order holds: a crash after the unit is durable and before the
//! writes end leaves a unit whose entries say which rows may be torn and
//! what the untouched chunks XOR to; replay (`umd_engine::ppl::start`) makes their
//! parity right for whatever landed. A crash before the unit is durable
//! leaves the stripe untouched.
//!
//! One slot per member, as md keeps one log per member: its unit always
//! starts at the head of the area (md's single-PPL placement, which md's
//! walk over a MULTIPLE_PPLS ring also reads first). A slot's lock is held
//! from the unit's write until the piece's data and parity writes completed,
//! so a unit is never overwritten while its stripe is being written; the
//! next unit first syncs the members (the previous piece's writes must be
//! durable before the record that covers them goes away, as md flushes
//! before it reuses a log).
//!
//! A spare added while the array runs gets its area when it joins
//! ([`PplLog::set_area`], set once, outside the slots' locks, so the add
//! path may set it while it holds `core`); until then the table has room
//! for it, as the member table has.
//!
//! Lock order: a slot is taken after the piece's `RangeLock` stripes and
//! before `core`; a thread holds one slot at a time (PPL pieces are one
//! stripe, with one parity member).

use super::ctx::member_of;
use super::Shared;
use crate::member_file::IoError;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
pub use umd_engine::ppl::start::PplArea;
use umd_engine::write::ppl::{PplRefused, PplUnit};
use umd_engine::write::{WritePlan, WritePlanner};

/// A member's log: the unit being built.
#[derive(Debug, Default)]
pub(crate) struct LogSlot {
    generation: u64,
    /// The last unit's writes may still sit in the members' caches.
    unsynced: bool,
    unit: PplUnit,
}

/// Every member's log (by member index) and the array's signature.
#[derive(Debug)]
pub(crate) struct PplLog {
    signature: u32,
    /// Each member's area, by member index (set once: at the start, or
    /// when the member joins).
    areas: Vec<OnceLock<PplArea>>,
    slots: Vec<Mutex<LogSlot>>,
}

/// Why a piece could not be logged.
pub(crate) enum LogFailed {
    /// A member failed an I/O (the log write or the sync before it).
    Member(u32, IoError),
    /// The plan does not fit md's log (a bug, or an area too small).
    Refused(String),
}

impl PplLog {
    /// Logs for `areas` (by member index; `None`: the member has no area),
    /// with room for `capacity` members: one added later gets its area
    /// with [`PplLog::set_area`].
    pub(crate) fn new(signature: u32, areas: &[Option<PplArea>], capacity: usize) -> Self {
        let n = capacity.max(areas.len());
        let areas = (0..n)
            .map(|member| {
                let cell = OnceLock::new();
                if let Some(area) = areas.get(member).copied().flatten() {
                    let _ = cell.set(area);
                }
                cell
            })
            .collect();
        let slots = (0..n).map(|_| Mutex::new(LogSlot::default())).collect();
        Self {
            signature,
            areas,
            slots,
        }
    }

    /// A member joined (a spare added): its log is the area its superblock
    /// announces. A member index is reused only by the same device coming
    /// back, whose area is the one it had.
    pub(crate) fn set_area(&self, member: usize, area: PplArea) {
        if let Some(cell) = self.areas.get(member) {
            let _ = cell.set(area);
        }
    }

    /// After `plan`'s reads landed in `scratch`: log its partial parity on
    /// its parity member, durably. The returned guard must live until the
    /// plan's writes completed. `None`: nothing to log (the parity member
    /// is missing).
    pub(crate) fn log<'a>(
        &'a self,
        shared: &Shared,
        planner: &WritePlanner,
        plan: &WritePlan,
        scratch: &[u8],
    ) -> Result<Option<MutexGuard<'a, LogSlot>>, LogFailed> {
        let refused = |e: PplRefused| LogFailed::Refused(e.to_string());
        let Some(role) = planner.log_role(plan) else {
            return Ok(None);
        };
        let member = member_of(shared, role);
        let name = || shared.member_name(member).unwrap_or("?").to_owned();
        let Some(slot) = self.slots.get(member) else {
            return Err(LogFailed::Refused(format!(
                "member {} has no partial parity log",
                name()
            )));
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(&area) = self.areas.get(member).and_then(OnceLock::get) else {
            return Err(LogFailed::Refused(format!(
                "member {} has no PPL area",
                name()
            )));
        };
        let slot_ref = &mut *slot;
        planner
            .partial_parity(plan, scratch, &mut slot_ref.unit)
            .map_err(refused)?;
        if slot_ref.unit.len_bytes() as u64 > area.sectors * 512 {
            return Err(LogFailed::Refused(format!(
                "a log unit of {} bytes does not fit the {}-sector PPL area of {}",
                slot_ref.unit.len_bytes(),
                area.sectors,
                name()
            )));
        }
        if slot_ref.unsynced {
            // The previous unit's writes must be durable before the unit
            // that covers them is overwritten.
            for r in 0..shared.geometry.raid_disks() {
                if let Some(f) = shared.role_member(r).and_then(|m| shared.file(m)) {
                    f.sync_data().map_err(|e| LogFailed::Member(r, e))?;
                }
            }
            slot_ref.unsynced = false;
        }
        slot_ref.generation += 1;
        slot_ref
            .unit
            .seal(self.signature, slot_ref.generation)
            .map_err(refused)?;
        let file = shared
            .file(member)
            .ok_or_else(|| LogFailed::Refused(format!("member {} has no file", name())))?;
        file.write_all_at(area.sector * 512, &slot_ref.unit.bytes)
            .and_then(|()| file.sync_data())
            .map_err(|e| LogFailed::Member(role, e))?;
        slot_ref.unsynced = true;
        Ok(Some(slot))
    }
}

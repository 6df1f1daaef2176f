//! The partial parity log (md's PPL) in the simulated host, as the real
//! host keeps it (`umd-io/src/host/ppl_log.rs`): before a raid5 stripe's
//! data and parity writes, its log unit goes to the parity member's area
//! and is made durable; before a member's unit is overwritten, the writes
//! it covered are made durable on every member. At the start, the logs are
//! replayed and reset by the engine's own code (`umd_engine::ppl::start`)
//! on the simulated disks.
//!
//! Why here: a unit write and its flush are member I/O like any other, so
//! each is a crash point, and a power loss may keep a stripe's data and
//! drop its parity in any combination. Then a member may be lost at the
//! restart (`sim.rs`): the array is dirty and degraded, and only the logs
//! make the missing member's chunks rebuild right.

use crate::disk::SimDisk;
use crate::host::SimHost;
use crate::members::Fault;
use umd_engine::ppl::start::{PplArea, PplDisks, PplStart, Replayed};
use umd_engine::write::ppl::PplUnit;
use umd_engine::write::WritePlan;

/// The logs of a running PPL raid5.
#[derive(Debug, Default)]
pub struct SimPpl {
    signature: u32,
    /// Each member's area, by member index.
    areas: Vec<Option<PplArea>>,
    /// Each member's last unit generation.
    generations: Vec<u64>,
    /// Each member's last unit covers writes that may still sit in the
    /// members' caches.
    unsynced: Vec<bool>,
    /// The unit being built (one request at a time).
    unit: PplUnit,
    /// Units written (each a member write and a flush).
    pub units: u64,
    /// Whether the start found the array dirty and replayed the logs.
    pub replayed_dirty: bool,
    /// What the start's replay did.
    pub replayed: Replayed,
}

impl SimPpl {
    /// The logs the start opened.
    pub(crate) fn new(start: &PplStart) -> Self {
        Self {
            signature: start.signature,
            areas: start.areas.clone(),
            replayed_dirty: start.replayed_dirty,
            replayed: start.replayed.clone(),
            ..Self::default()
        }
    }

    /// Member `member` joined with the area its superblock announces.
    pub(crate) fn set_area(&mut self, member: usize, area: Option<PplArea>) {
        if self.areas.len() <= member {
            self.areas.resize(member + 1, None);
        }
        self.areas[member] = area;
    }
}

/// Why a piece was not logged.
pub(crate) enum LogStop {
    /// A member I/O failed, or the power.
    Fault(Fault),
    /// The plan cannot be logged: the real host answers EIO; here it is a
    /// failure of the run.
    Refused(String),
}

impl SimHost {
    /// After `plan`'s reads landed in scratch, before its writes: its log
    /// unit is durable on its parity member. Nothing to do without PPL or
    /// when the parity member is missing.
    pub(crate) fn log_piece(&mut self, plan: &WritePlan) -> Result<(), LogStop> {
        let Some(mut ppl) = self.ppl.take() else {
            return Ok(());
        };
        let logged = self.log_with(&mut ppl, plan);
        self.ppl = Some(ppl);
        logged
    }

    fn log_with(&mut self, ppl: &mut SimPpl, plan: &WritePlan) -> Result<(), LogStop> {
        let Some(role) = self.write_planner.log_role(plan) else {
            return Ok(());
        };
        let member = self.member_of(role);
        let name = &self.names[member];
        let Some(area) = ppl.areas.get(member).copied().flatten() else {
            return Err(LogStop::Refused(format!("member {name} has no PPL area")));
        };
        self.write_planner
            .partial_parity(plan, &self.scratch, &mut ppl.unit)
            .map_err(|e| LogStop::Refused(e.to_string()))?;
        if ppl.unit.len_bytes() as u64 > area.sectors * 512 {
            return Err(LogStop::Refused(format!(
                "a log unit of {} bytes does not fit the {}-sector PPL area of {name}",
                ppl.unit.len_bytes(),
                area.sectors
            )));
        }
        if ppl.generations.len() <= member {
            ppl.generations.resize(member + 1, 0);
            ppl.unsynced.resize(member + 1, false);
        }
        if ppl.unsynced[member] {
            // The previous unit's writes must be durable before the unit
            // that covers them is overwritten.
            self.flush_roles().map_err(LogStop::Fault)?;
            ppl.unsynced[member] = false;
        }
        ppl.generations[member] += 1;
        ppl.unit
            .seal(ppl.signature, ppl.generations[member])
            .map_err(|e| LogStop::Refused(e.to_string()))?;
        let bytes = &ppl.unit.bytes[..];
        self.io
            .write_batch(&[(member, area.sector * 512, bytes)])
            .map_err(LogStop::Fault)?;
        // The injected bug: the stripe's writes may reach the disks while
        // its unit still sits in the parity member's cache.
        if !cfg!(feature = "inject-ppl-late-log") {
            self.io.flush(member).map_err(LogStop::Fault)?;
        }
        ppl.unsynced[member] = true;
        ppl.units += 1;
        Ok(())
    }
}

/// The simulated disks as the engine's replay reads and writes them.
pub(crate) struct Disks<'a>(pub(crate) &'a mut [SimDisk]);

impl PplDisks for Disks<'_> {
    fn read(&mut self, member: usize, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        self.0[member].read(offset, buf).map_err(|e| e.to_string())
    }

    fn write(&mut self, member: usize, offset: u64, bytes: &[u8]) -> Result<(), String> {
        self.0[member]
            .write(offset, bytes)
            .map_err(|e| e.to_string())
    }

    fn sync(&mut self, member: usize) -> Result<(), String> {
        self.0[member].flush().map_err(|e| e.to_string())
    }
}

//! The simulated host: one array driven by the engine's decision code on a
//! single thread, with simulated time and simulated member disks.
//!
//! Why: the real host (`umd_io::ArrayHost`) runs the same engine calls from
//! several threads against real files, where a crash cannot be placed and a
//! run cannot be replayed. Here every call the real host makes into the
//! engine is made in the same order (md_write_start and the wait for the
//! dirty superblock, plan, bitmap bit on disk before data, reads, parity,
//! writes, FUA and FLUSH as member flushes, md_write_end; the md thread's
//! pass; the sync thread's windows), and what runs "concurrently" in the
//! real host is interleaved here at seeded points: the md thread's pass may
//! run between any two steps of a write (`sched_point`).
//!
//! Not modelled: several front-end requests in flight at once (requests run
//! one after another; their member writes still complete in random order),
//! stripe gathering, and the range lock (nothing runs concurrently to lock
//! against). Deviation kept on purpose: a FLUSH flushes the members that
//! hold a role, where the real host also flushes failed members.
//!
//! Lock order: none (one thread owns everything).

use crate::manager::SimManager;
use crate::members::{Fault, Members};
use crate::ppl::{LogStop, SimPpl};
use crate::rng::Rng;
use umd_engine::array::{Array, ArrayEvent, Ro};
use umd_engine::bitmap::WriteIntentBitmap;
use umd_engine::durability;
use umd_engine::native::{MetadataWrite, NativeMetadata};
use umd_engine::ppl::start::PplStart;
use umd_engine::read::{MemberMap, ReadPlan, ReadPlanner};
use umd_engine::resync::SyncPlanner;
use umd_engine::time::Time;
use umd_engine::write::{BufRef, PlannedIo, WritePlan, WritePlanner};
use umd_engine::EngineError;
use umd_layout::geometry::Geometry;

pub use crate::housekeeping::SyncRun;

/// Times one piece is planned again after member failures (as the real host).
const REPLANS_MAX: usize = 4;

/// Scheduling points a write waits for the manager before its pass is
/// forced (the manager is slow, never absent).
const MANAGER_WAITS_FORCED: u32 = 4;
/// Scheduling points after which a write still blocked is a failure.
const MANAGER_WAITS_MAX: u32 = 16;

/// Longest ordinary member I/O latency.
const IO_LATENCY_NS_MAX: u64 = 5_000_000;
/// Longest latency of a slow member (longer than two bitmap daemon passes).
const SLOW_MEMBER_NS_MAX: u64 = 12_000_000_000;

/// Why a host operation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The power failed: the run crashes here.
    Crash,
    /// The operation failed and was not acknowledged (an error reply).
    Failed(String),
}

impl From<Fault> for Stop {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Crash => Stop::Crash,
            Fault::Member { member, error } => Stop::Failed(format!("member {member}: {error}")),
        }
    }
}

/// Everything the start path assembled.
pub struct HostParts {
    /// The member disks.
    pub members: Members,
    /// Member names (`dev-NAME`), by member index.
    pub names: Vec<String>,
    /// `role_members[role]` = member index.
    pub role_members: Vec<Option<usize>>,
    /// The array's shape.
    pub geometry: Geometry,
    /// Data and recovery offsets per role.
    pub member_map: MemberMap,
    /// Usable array length in sectors.
    pub array_sectors: u64,
    /// The engine core, configured but not running.
    pub array: Array,
    /// Native superblocks (and bitmap); `None` with external metadata.
    pub native: Option<NativeMetadata>,
    /// How the array starts: read-write (native), read-only until the
    /// manager decides (external, as `umd run` starts a subarray).
    pub start: Ro,
    /// The metadata manager (external metadata).
    pub manager: Option<SimManager>,
    /// The logs of a PPL raid5, opened (replayed and reset) by the start.
    pub ppl: Option<PplStart>,
}

/// The simulated host.
pub struct SimHost {
    /// The member disks (taken back by the world at a crash).
    pub io: Members,
    /// The engine core.
    pub array: Array,
    pub(crate) native: Option<NativeMetadata>,
    /// The simulated `umd mon` (external metadata).
    pub(crate) manager: Option<SimManager>,
    /// Percent chance the manager's pass runs at each scheduling point.
    pub manager_interleave_percent: u64,
    pub(crate) geometry: Geometry,
    /// Usable array length in sectors.
    pub array_sectors: u64,
    pub(crate) member_map: MemberMap,
    pub(crate) read_planner: ReadPlanner,
    pub(crate) write_planner: WritePlanner,
    /// The partial parity log of a PPL raid5.
    pub(crate) ppl: Option<SimPpl>,
    /// Why a write could not be logged (a failure of the run).
    pub(crate) ppl_refused: Option<String>,
    pub(crate) names: Vec<String>,
    pub(crate) role_members: Vec<Option<usize>>,
    /// Simulated time.
    pub now: Time,
    pub(crate) superblock_due: bool,
    pub(crate) sync_kick: bool,
    pub(crate) sync_abort: bool,
    pub(crate) sync: Option<SyncRun>,
    pub(crate) scratch: Vec<u8>,
    wplan: WritePlan,
    rplan: ReadPlan,
    /// Chooses where the md thread's pass interleaves with a request.
    sched: Rng,
    /// Percent chance of an md pass at each scheduling point.
    pub md_interleave_percent: u64,
    /// Member failures the host made (I/O errors): a write that made one
    /// is held until the metadata records it.
    pub(crate) failures_seen: u64,
    /// Blocks a member could not read that were rebuilt and rewritten.
    pub read_errors_rewritten: u32,
    /// Metadata writes that failed on a member (the member was failed).
    pub metadata_write_failures: u32,
    /// Replacements whose copy completed.
    pub replacements_done: u32,
    /// Native: the members the last durable superblock write recorded in
    /// sync in a slot. A recovery finished in memory adds no redundancy
    /// until it is recorded: a power loss before that brings the member
    /// back as a spare (0.90) or below its checkpoint (1.x).
    pub(crate) recorded_in_sync: Vec<String>,
}

impl SimHost {
    /// Start the array read-write, as `ArrayHost::start` does.
    pub fn start(parts: HostParts, sched: Rng) -> Result<SimHost, Stop> {
        let HostParts {
            members,
            names,
            role_members,
            geometry,
            member_map,
            array_sectors,
            mut array,
            native,
            start,
            manager,
            ppl,
        } = parts;
        if ppl.is_some() {
            array.set_ppl(true);
        }
        array
            .run(start, Time(0))
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let read_planner = ReadPlanner::new(geometry.clone(), member_map.clone(), array_sectors);
        let write_planner = WritePlanner::new(geometry.clone(), member_map.clone(), array_sectors);
        let mut host = SimHost {
            io: members,
            array,
            native,
            manager,
            manager_interleave_percent: 0,
            geometry,
            array_sectors,
            member_map,
            read_planner,
            write_planner,
            ppl: ppl.as_ref().map(SimPpl::new),
            ppl_refused: None,
            names,
            role_members,
            now: Time(0),
            superblock_due: false,
            sync_kick: true,
            sync_abort: false,
            sync: None,
            scratch: Vec::new(),
            wplan: WritePlan::default(),
            rplan: ReadPlan::default(),
            sched,
            md_interleave_percent: 0,
            failures_seen: 0,
            read_errors_rewritten: 0,
            metadata_write_failures: 0,
            replacements_done: 0,
            recorded_in_sync: Vec::new(),
        };
        // What the disks say before anything is written: the members the
        // start found in sync.
        host.recorded_in_sync = host
            .in_sync_members()
            .into_iter()
            .map(|m| host.names[m].clone())
            .collect();
        host.drain_events();
        let degraded = host.array.degraded() > 0;
        if let Some(bitmap) = host.bitmap_mut() {
            bitmap.set_degraded(degraded);
        }
        host.flush_bitmap()?;
        // The manager starts with the array (its first pass decides
        // read-auto or active from the metadata).
        host.manager_pass()?;
        Ok(host)
    }

    /// The internal bitmap, if the array has one.
    pub(crate) fn bitmap_mut(&mut self) -> Option<&mut WriteIntentBitmap> {
        self.native.as_mut().and_then(NativeMetadata::bitmap_mut)
    }

    /// The internal bitmap, if the array has one.
    pub(crate) fn bitmap(&self) -> Option<&WriteIntentBitmap> {
        self.native.as_ref().and_then(NativeMetadata::bitmap)
    }

    /// Drain the engine's events into the host's flags (style R8).
    pub(crate) fn drain_events(&mut self) {
        while let Some(event) = self.array.poll_event() {
            let membership = !matches!(
                event,
                ArrayEvent::Notify(_)
                    | ArrayEvent::UpdateSuperblock
                    | ArrayEvent::StripeCacheResize(_)
            );
            if membership && std::env::var_os("UMD_SIM_TRACE").is_some() {
                eprintln!("event: {event:?}");
            }
            match event {
                ArrayEvent::UpdateSuperblock => self.superblock_due = true,
                ArrayEvent::StartSync(_) | ArrayEvent::Run => self.sync_kick = true,
                ArrayEvent::StopSync => self.sync_abort = true,
                ArrayEvent::Stop { .. } => {
                    self.sync_abort = true;
                    self.superblock_due = true;
                }
                ArrayEvent::MemberFailed { name } => self.member_gone(&name),
                event @ (ArrayEvent::MemberActivated { .. } | ArrayEvent::MemberInSync { .. }) => {
                    self.apply_membership(event);
                }
                ArrayEvent::Notify(_)
                | ArrayEvent::MemberRemoved { .. }
                | ArrayEvent::StripeCacheResize(_) => {}
            }
        }
    }

    /// Plan with the role map as it is now (a role gained a member or
    /// finished recovering), as the real host's request contexts rebuild
    /// their planners when the member generation moves on.
    pub(crate) fn replan(&mut self) {
        self.read_planner = ReadPlanner::new(
            self.geometry.clone(),
            self.member_map.clone(),
            self.array_sectors,
        );
        self.write_planner = WritePlanner::new(
            self.geometry.clone(),
            self.member_map.clone(),
            self.array_sectors,
        );
    }

    /// The engine failed a member: plans avoid it from now on.
    fn member_gone(&mut self, name: &str) {
        let member = self.names.iter().position(|n| n == name);
        let role = self
            .role_members
            .iter()
            .position(|m| m.is_some() && *m == member);
        if let Some(role) = role {
            let role = role as u32;
            if self.member_map.is_present(role) {
                self.member_map.mark_missing(role);
                self.read_planner.mark_failed(role);
                self.write_planner.mark_failed(role);
            }
        }
        if let Some(bitmap) = self.bitmap_mut() {
            bitmap.set_degraded(true);
        }
    }

    /// The role member `member` holds, if any.
    pub(crate) fn role_holding(&self, member: usize) -> Option<u32> {
        let role = self.role_members.iter().position(|m| *m == Some(member))?;
        Some(role as u32)
    }

    pub(crate) fn member_of(&self, role: u32) -> usize {
        self.role_members[role as usize].expect("planners only plan roles that have a member")
    }

    /// A member failed an I/O: fail it in the engine, as the real host does.
    pub(crate) fn member_failed(&mut self, role: u32, replans: &mut usize) -> Result<(), Stop> {
        *replans += 1;
        if *replans > REPLANS_MAX {
            return Err(Stop::Failed(format!("role {role}: too many failures")));
        }
        let failed = self.member_of(role);
        self.store_faulty(failed)
            .map_err(|e| Stop::Failed(format!("role {role} not failed: {e}")))?;
        self.failures_seen += 1;
        // Planners follow the map even if the event was already handled,
        // unless a replacement took the role over (the real host's rule).
        if self.role_members[role as usize] == Some(failed) {
            self.read_planner.mark_failed(role);
            self.write_planner.mark_failed(role);
        }
        Ok(())
    }

    /// A scheduling point inside a request: member I/O takes time (now and
    /// then a slow member takes seconds), and the md thread may run its
    /// pass meanwhile.
    pub(crate) fn sched_point(&mut self) -> Result<(), Stop> {
        let latency_ns = if self.sched.chance(5) {
            self.sched.range(1, SLOW_MEMBER_NS_MAX)
        } else {
            self.sched.below(IO_LATENCY_NS_MAX)
        };
        self.now = self.now + umd_engine::time::Duration(latency_ns);
        if self.md_interleave_percent > 0 && self.sched.chance(self.md_interleave_percent) {
            self.md_pass()?;
        }
        if self.manager.is_some()
            && self.manager_interleave_percent > 0
            && self.sched.chance(self.manager_interleave_percent)
        {
            self.manager_pass()?;
        }
        Ok(())
    }

    /// Read `len_sectors` logical sectors from `sector`.
    pub fn read(&mut self, sector: u64, len_sectors: u64) -> Result<Vec<u8>, Stop> {
        let mut out = vec![0u8; (len_sectors * 512) as usize];
        let mut done = 0u64;
        let mut replans = 0usize;
        while done < len_sectors {
            let mut plan = std::mem::take(&mut self.rplan);
            self.read_planner
                .plan(sector + done, len_sectors - done, &mut plan)
                .map_err(|e| Stop::Failed(e.to_string()))?;
            let len = (plan.len_sectors * 512) as usize;
            let at = (done * 512) as usize;
            let mut extra = vec![vec![0u8; len]; plan.buffers - 1];
            let mut failed = None;
            for r in &plan.reads {
                let member = self.member_of(r.role);
                let buf = match r.buffer {
                    0 => &mut out[at..at + len],
                    b => &mut extra[b - 1][..],
                };
                match self.io.read(member, r.device_sector * 512, buf) {
                    Ok(()) => {}
                    Err(Fault::Crash) => return Err(Stop::Crash),
                    Err(fault) => {
                        failed = Some((*r, fault));
                        break;
                    }
                }
            }
            if let Some((r, fault)) = failed {
                // As the real host: a direct read is repaired from
                // redundancy; a read that rebuilds fails its member.
                let direct = plan.buffers == 1 && plan.reads.len() == 1;
                let repaired = if direct {
                    self.repair_read(&r, sector + done, fault)
                } else {
                    Err(fault)
                };
                self.rplan = plan;
                match repaired {
                    Ok(()) => replans += 1,
                    Err(Fault::Crash) => return Err(Stop::Crash),
                    Err(Fault::Member { member, .. }) => {
                        let role = self.role_holding(member).unwrap_or(r.role);
                        self.member_failed(role, &mut replans)?;
                    }
                }
                if replans > REPLANS_MAX {
                    return Err(Stop::Failed("read: too many member errors".into()));
                }
                continue;
            }
            let mut bufs: Vec<&mut [u8]> = Vec::with_capacity(plan.buffers);
            bufs.push(&mut out[at..at + len]);
            bufs.extend(extra.iter_mut().map(|b| &mut b[..]));
            self.read_planner.finish(&plan, &mut bufs);
            done += plan.len_sectors;
            self.rplan = plan;
        }
        Ok(out)
    }

    /// md_write_start: count the write and wait (letting the md thread
    /// run) while the dirty transition is pending.
    fn write_start(&mut self) -> Result<(), Stop> {
        self.array
            .write_start(self.now)
            .map_err(|e| Stop::Failed(e.to_string()))?;
        self.drain_events();
        if self.manager.is_some() {
            return self.wait_acknowledged();
        }
        let mut passes = 0;
        while self.array.write_blocked() {
            passes += 1;
            if passes > 4 {
                self.array.write_end(self.now);
                return Err(Stop::Failed("the write stayed blocked".into()));
            }
            self.md_pass()?;
        }
        Ok(())
    }

    /// External metadata: the write waits while the dirty transition or a
    /// blocked member waits for the manager. Time passes and the manager
    /// runs when the seed says (a slow manager), and at the latest after a
    /// few scheduling points.
    fn wait_acknowledged(&mut self) -> Result<(), Stop> {
        let mut waits = 0;
        while self.array.write_blocked() {
            waits += 1;
            if waits > MANAGER_WAITS_MAX {
                self.array.write_end(self.now);
                return Err(Stop::Failed(
                    "the write stayed blocked: the manager never acknowledged".into(),
                ));
            }
            self.sched_point()?;
            if waits >= MANAGER_WAITS_FORCED && self.array.write_blocked() {
                self.manager_pass()?;
            }
        }
        Ok(())
    }

    /// Write `data` at logical `sector`; with `fua` durable on return.
    pub fn write(&mut self, sector: u64, data: &[u8], fua: bool) -> Result<(), Stop> {
        assert!(data.len().is_multiple_of(512) && !data.is_empty());
        self.write_start()?;
        let result = self.write_pieces(sector, data, fua);
        if result != Err(Stop::Crash) {
            self.array.write_end(self.now);
            self.drain_events();
        }
        result
    }

    fn write_pieces(&mut self, sector: u64, data: &[u8], fua: bool) -> Result<(), Stop> {
        let failures = self.failures_seen;
        let total = (data.len() / 512) as u64;
        let mut done = 0u64;
        while done < total {
            let len = self.piece_len(sector + done, total - done);
            let bytes = &data[(done * 512) as usize..((done + len) * 512) as usize];
            self.write_piece(sector + done, bytes)?;
            done += len;
        }
        if fua {
            self.sched_point()?;
            self.sync_members()?;
        }
        // The real host's hold (`write_tracked`): a FUA write like a FLUSH,
        // any write that failed a member until the failure is recorded.
        if fua || self.failures_seen != failures {
            self.hold_until_recorded()?;
        }
        Ok(())
    }

    /// Pieces end at stripe-row boundaries on parity levels (each piece is
    /// one planner call over whole rows or part of one).
    fn piece_len(&self, sector: u64, remaining: u64) -> u64 {
        let g = &self.geometry;
        let parity = g.level().parity_members();
        if parity == 0 {
            return remaining;
        }
        let row = u64::from(g.chunk_sectors()) * u64::from(g.raid_disks() - parity);
        remaining.min(row - sector % row)
    }

    /// Plan and perform one piece, planning again after member failures.
    fn write_piece(&mut self, sector: u64, data: &[u8]) -> Result<(), Stop> {
        let len = (data.len() / 512) as u64;
        let mut replans = 0usize;
        loop {
            let unsynced = self.unsynced_stripe();
            let mut plan = std::mem::take(&mut self.wplan);
            self.write_planner
                .plan(sector, len, unsynced, &mut plan)
                .map_err(|e| Stop::Failed(e.to_string()))?;
            let range = self.bitmap_range(sector, len, plan.stripes);
            self.bitmap_start(range)?;
            self.sched_point()?;
            self.scratch.clear();
            self.scratch.resize(plan.scratch_bytes, 0);
            let mut outcome = self.run_reads(&plan.reads);
            // md's PPL: the stripe's log unit is durable before any of its
            // data or parity writes.
            if outcome.is_ok() {
                match self.log_piece(&plan) {
                    Ok(()) => {}
                    Err(LogStop::Fault(f)) => outcome = Err(f),
                    Err(LogStop::Refused(why)) => {
                        self.wplan = plan;
                        self.bitmap_end(range);
                        self.ppl_refused = Some(why.clone());
                        return Err(Stop::Failed(why));
                    }
                }
            }
            if outcome.is_ok() {
                self.write_planner.compute(&plan, data, &mut self.scratch);
                self.sched_point()?;
                outcome = self.run_writes(&plan.writes, data);
            }
            self.wplan = plan;
            match outcome {
                Ok(()) => {
                    self.bitmap_end(range);
                    return Ok(());
                }
                Err(Fault::Crash) => return Err(Stop::Crash),
                Err(Fault::Member { member, .. }) => {
                    self.bitmap_end(range);
                    let role = self
                        .role_holding(member)
                        .expect("a planned member holds a role");
                    self.member_failed(role, &mut replans)?;
                }
            }
        }
    }

    /// The first stripe whose parity is not known good (the real host's rule).
    pub(crate) fn unsynced_stripe(&self) -> u64 {
        let position = self.array.sync_position();
        if position == u64::MAX || self.geometry.level().parity_members() == 0 {
            return u64::MAX;
        }
        SyncPlanner::new(self.geometry.clone(), self.member_map.clone()).stripe_of(position)
    }

    /// Reads of a plan into scratch.
    pub(crate) fn run_reads(&mut self, reads: &[PlannedIo]) -> Result<(), Fault> {
        for r in reads {
            let member = self.member_of(r.role);
            let BufRef::Scratch { offset_bytes: at } = r.buf else {
                unreachable!("planners read only into scratch")
            };
            let len = (r.len_sectors * 512) as usize;
            self.io.read(
                member,
                r.device_sector * 512,
                &mut self.scratch[at..at + len],
            )?;
        }
        Ok(())
    }

    /// Writes of a plan, from the payload or scratch, completing in any order.
    pub(crate) fn run_writes(&mut self, writes: &[PlannedIo], data: &[u8]) -> Result<(), Fault> {
        let mut batch = Vec::with_capacity(writes.len());
        for w in writes {
            let len = (w.len_sectors * 512) as usize;
            let bytes = match w.buf {
                BufRef::Data { offset_bytes: at } => &data[at..at + len],
                BufRef::Scratch { offset_bytes: at } => &self.scratch[at..at + len],
            };
            batch.push((self.member_of(w.role), w.device_sector * 512, bytes));
        }
        self.io.write_batch(&batch)
    }

    /// The bitmap's range for a piece: member sectors of its stripes on
    /// parity levels, array sectors otherwise (as the real host).
    fn bitmap_range(&self, sector: u64, len: u64, stripes: Option<(u64, u64)>) -> (u64, u64) {
        match stripes {
            Some((a, b)) => {
                let chunk = u64::from(self.geometry.chunk_sectors());
                (a * chunk, (b - a + 1) * chunk)
            }
            None => (sector, len),
        }
    }

    /// Count the write in the bitmap and put its bits on disk first.
    fn bitmap_start(&mut self, (sector, len): (u64, u64)) -> Result<(), Stop> {
        let Some(bitmap) = self.bitmap_mut() else {
            return Ok(());
        };
        bitmap.start_write(sector, len);
        self.flush_bitmap()
    }

    fn bitmap_end(&mut self, (sector, len): (u64, u64)) {
        let now = self.now;
        if let Some(bitmap) = self.bitmap_mut() {
            bitmap.end_write(sector, len, now);
        }
    }

    /// Write every bitmap block whose bits were set in memory only.
    pub(crate) fn flush_bitmap(&mut self) -> Result<(), Stop> {
        let mut writes = Vec::new();
        if let Some(bitmap) = self.bitmap_mut() {
            bitmap.flush_set_bits(&mut writes);
        }
        self.write_metadata(&writes)
    }

    /// Write metadata blocks and make them durable before returning (md's
    /// PREFLUSH and FUA), as the real host's `md_thread::write_metadata`: a
    /// member whose write or flush fails is failed and the others are
    /// written again without it, so one bad disk neither leaves the array
    /// without its record nor fails the write that waited for it; the
    /// failure makes the engine ask for a superblock that records it. An
    /// error that stands (the member cannot be failed, or fails twice) is
    /// dropped, as the real md thread logs it and goes on.
    pub(crate) fn write_metadata(&mut self, writes: &[MetadataWrite]) -> Result<(), Stop> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut failed: Vec<usize> = Vec::new();
        loop {
            match self.write_metadata_once(writes, &failed) {
                Ok(()) => return Ok(()),
                Err(Fault::Crash) => return Err(Stop::Crash),
                Err(Fault::Member { member, .. }) => {
                    self.metadata_write_failures += 1;
                    if failed.contains(&member) || !self.fail_member(member) {
                        return Ok(());
                    }
                    failed.push(member);
                }
            }
        }
    }

    /// One attempt of [`Self::write_metadata`], skipping the members in `skip`.
    fn write_metadata_once(
        &mut self,
        writes: &[MetadataWrite],
        skip: &[usize],
    ) -> Result<(), Fault> {
        let wanted: Vec<usize> = (0..self.io.disks.len())
            .filter(|m| !skip.contains(m) && writes.iter().any(|w| w.member == *m))
            .collect();
        if durability::metadata_preflush() {
            for &member in &wanted {
                self.io.flush(member)?;
            }
        }
        let batch: Vec<(usize, u64, &[u8])> = writes
            .iter()
            .filter(|w| wanted.contains(&w.member))
            .map(|w| (w.member, w.offset_bytes, &w.bytes[..]))
            .collect();
        self.io.write_batch(&batch)?;
        for &member in &wanted {
            self.io.flush(member)?;
        }
        Ok(())
    }

    /// md_error for a member a metadata write failed on, as the real
    /// host's `io_path::fail_member`; false when the engine refuses (md
    /// keeps the last working member).
    fn fail_member(&mut self, member: usize) -> bool {
        let failed = self.store_faulty(member).is_ok();
        self.failures_seen += u64::from(failed);
        failed
    }

    /// md_error's store (`dev-NAME/state` <- `faulty`) for `member`, its
    /// events drained; the engine's refusal if it keeps the member.
    pub(crate) fn store_faulty(&mut self, member: usize) -> Result<(), EngineError> {
        let attr = format!("dev-{}/state", self.names[member]);
        let result = self.array.store(&attr, "faulty", self.now);
        self.drain_events();
        result
    }

    /// Flush every member that holds a role, replacements included.
    pub(crate) fn flush_members(&mut self) -> Result<(), Stop> {
        Ok(self.flush_roles()?)
    }

    pub(crate) fn flush_roles(&mut self) -> Result<(), Fault> {
        for role in 0..self.role_members.len() {
            if let (Some(member), true) = (
                self.role_members[role],
                self.member_map.is_present(role as u32),
            ) {
                self.io.flush(member)?;
            }
        }
        Ok(())
    }

    /// FLUSH: acknowledged once every completed write is durable and no
    /// member failure waits to be recorded (the real host's `flush_all`).
    pub fn flush(&mut self) -> Result<(), Stop> {
        if durability::flush_syncs_members() {
            self.sync_members()?;
        }
        self.hold_until_recorded()
    }

    /// The real host's hold on a FLUSH, a FUA write, or a write that failed
    /// a member: it completes once the metadata records every change
    /// pending (native: the md thread's superblock write; external: the
    /// manager's pass).
    fn hold_until_recorded(&mut self) -> Result<(), Stop> {
        let mut waits = 0;
        while self.array.write_blocked() {
            waits += 1;
            if waits > MANAGER_WAITS_MAX {
                return Err(Stop::Failed(
                    "held for a change the metadata never recorded".into(),
                ));
            }
            if self.manager.is_none() {
                self.md_pass()?;
                continue;
            }
            self.sched_point()?;
            if waits >= MANAGER_WAITS_FORCED && self.array.write_blocked() {
                self.manager_pass()?;
            }
        }
        Ok(())
    }

    /// Flush every member that holds a role, as the real host's FLUSH, FUA
    /// and end of a sync pass do (`io_path::sync_members`): a member whose
    /// flush fails is failed, as a failed write fails it, and the rest are
    /// flushed again; the error stands only when it cannot be failed.
    pub(crate) fn sync_members(&mut self) -> Result<(), Stop> {
        let mut replans = 0usize;
        loop {
            let member = match self.flush_roles() {
                Ok(()) => return Ok(()),
                Err(Fault::Crash) => return Err(Stop::Crash),
                Err(Fault::Member { member, .. }) => member,
            };
            let role = self
                .role_holding(member)
                .expect("only members holding a role are flushed");
            self.member_failed(role, &mut replans)?;
        }
    }
}

impl SimHost {
    /// Members holding a role that is in use (replacements not counted).
    #[must_use]
    pub fn role_members(&self) -> Vec<usize> {
        (0..self.member_map.role_count())
            .filter(|&r| self.member_map.is_present(r as u32))
            .filter_map(|r| self.role_members[r])
            .collect()
    }

    /// The name member `member` has in the engine (`dev-NAME`).
    #[must_use]
    pub fn name(&self, member: usize) -> &str {
        &self.names[member]
    }

    /// Where `role`'s data starts on its member (sectors), if it has one.
    #[must_use]
    pub fn data_offset(&self, role: u32) -> Option<u64> {
        self.member_map.role(role).map(|(offset, _)| offset)
    }

    /// The partial parity log of a PPL raid5.
    #[must_use]
    pub fn ppl(&self) -> Option<&SimPpl> {
        self.ppl.as_ref()
    }

    /// The metadata manager (external metadata).
    #[must_use]
    pub fn manager(&self) -> Option<&SimManager> {
        self.manager.as_ref()
    }

    /// Drain the engine's events after a call the caller made directly.
    pub fn drain(&mut self) {
        self.drain_events();
    }

    /// Clean stop, as `ArrayHost::shutdown`: the sync stops at its
    /// checkpoint, the engine marks itself clean, the superblocks are
    /// written, the members flushed.
    pub fn shutdown(&mut self) -> Result<(), Stop> {
        if self.sync.is_some() {
            self.sync_abort = true;
            self.sync_step()?;
        }
        if self.manager.is_some() {
            return self.shutdown_external();
        }
        self.array.shutdown(self.now);
        self.drain_events();
        self.superblock_due = true;
        self.md_pass()?;
        self.flush_members()
    }
}

impl SimHost {
    /// Stop an external subarray as `umd run` stops a container: `inactive`
    /// (the engine marks itself clean and stops), the manager records the
    /// clean state and releases it with `clear`, the members are flushed.
    fn shutdown_external(&mut self) -> Result<(), Stop> {
        self.array
            .store("array_state", "inactive", self.now)
            .map_err(|e| Stop::Failed(format!("stop: {e}")))?;
        self.drain_events();
        // Passes until it released the array (one more is a no-op).
        for _ in 0..4 {
            self.manager_pass()?;
        }
        self.flush_members()
    }
}

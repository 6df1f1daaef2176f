//! One seeded run: create an array on simulated disks, drive a random
//! workload through the simulated host with faults and power losses, and
//! after every crash start the array again from the disks alone and check
//! it against the model.
//!
//! Phases, as in a TigerBeetle simulator: a safety phase (the workload,
//! faults, crashes) and, after each crash and at the end, a liveness phase
//! (every needed sync must finish), then the checks:
//! - every sector reads back a value the model allows (acknowledged and
//!   flushed or FUA data survives; nothing never written appears);
//! - a `check` pass finds parity (or mirrors) consistent after the resync;
//! - the superblocks of the members in the array parse and agree;
//! - a dirty degraded raid5/6 does not start (md's rule), and a cleanly
//!   stopped array comes back clean;
//! - a raid5 with a partial parity log (PPL) that loses a member at the
//!   power loss starts dirty and degraded anyway, its logs replayed, and
//!   every durable sector reads back, the lost member's rebuilt from parity.

use crate::disk::{LossMode, SimDisk};
use crate::host::{SimHost, Stop};
use crate::members::{Fault, Members};
use crate::model::{fill_sector, identify, Model};
use crate::options::Options;
use crate::reshape::{self, GrowStop};
use crate::rng::Rng;
use crate::world::{self, Started};
use umd_engine::array::SyncAction;
use umd_engine::time::Duration;
use umd_layout::geometry::Target;

/// Steps the liveness phase may take before it is a failure.
const LIVENESS_STEPS_MAX: u32 = 100_000;

/// Passes of the md thread and the manager the final checks allow for a
/// waiting spare to be activated.
const SPARE_PASSES_MAX: usize = 8;
/// Blank disks one run adds as spares at most.
const SPARES_MAX: u32 = 4;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Operations issued.
    pub ops: u32,
    /// Power losses survived.
    pub crashes: u32,
    /// Member writes completed (crash points passed).
    pub member_writes: u64,
    /// Starts refused because the array was dirty and degraded.
    pub refused_starts: u32,
    /// Sectors checked against the model.
    pub sectors_checked: u64,
    /// Member faults injected.
    pub faults: u32,
    /// Writes and FLUSHes answered with an error (not acknowledged).
    pub error_replies: u32,
    /// Member writes of the first host (the array as created), until it
    /// crashed or stopped: the crash points of the run.
    pub crash_points: u64,
    /// Control actions made (`stripe_cache_size` changes).
    pub control_actions: u32,
    /// Of those, refused with EAGAIN until the manager acknowledged.
    pub eagain_retries: u32,
    /// External: the manager's `active` acknowledgements.
    pub dirty_acks: u64,
    /// External: failed members the manager recorded and unblocked.
    pub unblocks: u64,
    /// Blank disks added as spares (native).
    pub spares_added: u32,
    /// External: the container's global spares the manager activated into
    /// a slot (the metadata recording them durable).
    pub container_spares_activated: u64,
    /// External: runs whose container had global spares.
    pub runs_with_container_spares: u32,
    /// Failed members removed to make room for them.
    pub members_removed: u32,
    /// Members failed by hand (`umd manage --fail`; the disk stays good).
    pub failed_by_hand: u32,
    /// Of those, added back after their removal (a bitmap re-add when the
    /// bitmap covers what they missed, else a full recovery).
    pub added_back: u32,
    /// Of those, re-added into their old slot through the bitmap.
    pub bitmap_re_adds: u32,
    /// Blocks a member could not read, rebuilt from the others and
    /// rewritten (foreground reads and sync passes).
    pub read_errors_rewritten: u32,
    /// Metadata (superblock, bitmap) writes that failed on a member, which
    /// was then failed as md fails it.
    pub metadata_write_failures: u32,
    /// Grows by one member that reached their end.
    pub grows: u32,
    /// Of those, resumed after a power loss mid-grow.
    pub grows_resumed: u32,
    /// Members asked to be replaced (`umd manage --replace`).
    pub replacements_asked: u32,
    /// Replacements whose copy completed, the old member failed.
    pub replacements_done: u32,
    /// Runs on native 0.90 superblocks.
    pub runs_090: u32,
    /// Runs ended because a power loss tore a member's superblock while
    /// another role was missing or still rebuilding: too few members to
    /// assemble, a double fault md does not survive either.
    pub torn_superblock_stops: u32,
    /// Runs of a raid5 with a partial parity log.
    pub ppl_runs: u32,
    /// PPL log units written (each a crash point before its stripe).
    pub ppl_units: u64,
    /// Members lost at a power loss of a whole array (`loss_at_crash_percent`).
    pub members_lost_at_crash: u32,
    /// Starts of a dirty PPL raid5 that replayed its logs.
    pub ppl_dirty_starts: u32,
    /// Of those, degraded (md's write hole, closed by the logs).
    pub ppl_dirty_degraded_starts: u32,
    /// Log entries replayed.
    pub ppl_entries_replayed: u64,
    /// Sectors of a member lost at a crash that read back as no write
    /// they may hold: written since their last durable point, in a stripe
    /// the crash tore, on the lost member (md's PPL cannot restore them).
    pub torn_sectors_of_lost_members: u64,
}

impl Outcome {
    /// Add another run's counts to these.
    pub fn add(&mut self, o: &Outcome) {
        self.ops += o.ops;
        self.crashes += o.crashes;
        self.member_writes += o.member_writes;
        self.refused_starts += o.refused_starts;
        self.sectors_checked += o.sectors_checked;
        self.faults += o.faults;
        self.error_replies += o.error_replies;
        self.crash_points += o.crash_points;
        self.control_actions += o.control_actions;
        self.eagain_retries += o.eagain_retries;
        self.dirty_acks += o.dirty_acks;
        self.unblocks += o.unblocks;
        self.spares_added += o.spares_added;
        self.container_spares_activated += o.container_spares_activated;
        self.runs_with_container_spares += o.runs_with_container_spares;
        self.members_removed += o.members_removed;
        self.failed_by_hand += o.failed_by_hand;
        self.added_back += o.added_back;
        self.bitmap_re_adds += o.bitmap_re_adds;
        self.read_errors_rewritten += o.read_errors_rewritten;
        self.metadata_write_failures += o.metadata_write_failures;
        self.grows += o.grows;
        self.grows_resumed += o.grows_resumed;
        self.replacements_asked += o.replacements_asked;
        self.replacements_done += o.replacements_done;
        self.runs_090 += o.runs_090;
        self.torn_superblock_stops += o.torn_superblock_stops;
        self.ppl_runs += o.ppl_runs;
        self.ppl_units += o.ppl_units;
        self.members_lost_at_crash += o.members_lost_at_crash;
        self.ppl_dirty_starts += o.ppl_dirty_starts;
        self.ppl_dirty_degraded_starts += o.ppl_dirty_degraded_starts;
        self.ppl_entries_replayed += o.ppl_entries_replayed;
        self.torn_sectors_of_lost_members += o.torn_sectors_of_lost_members;
    }
}

struct Sim {
    rng: Rng,
    opts: Options,
    host: Box<SimHost>,
    model: Model,
    next_id: u64,
    out: Outcome,
    /// Members faulted (vanished or given bad sectors); never more than
    /// the level survives.
    faulted: Vec<usize>,
    /// Power fails after this many member writes (crash-point enumeration).
    crash_after: Option<u64>,
    /// Draws the spare action and the spares' identities, apart from
    /// `rng`, so seeds keep their workloads until a spare is added.
    spare_rng: Rng,
    /// Members failed by hand whose disks are intact: they may come back.
    failed_by_hand: Vec<usize>,
    /// Draws the grow action, apart from `rng` (as `spare_rng`).
    grow_rng: Rng,
    /// The disks of a grow under way: a power loss resumes it first.
    growing: Option<Vec<usize>>,
    /// Draws the replace action, apart from `rng` (as `spare_rng`).
    replace_rng: Rng,
    /// Draws the loss of a member at a power loss (PPL arrays), apart from
    /// `rng` (as `spare_rng`).
    ppl_rng: Rng,
    /// Roles that some start since the last check found missing or still
    /// recovering after replaying a PPL raid5's logs (see
    /// `Model::check_after_crash`); a spare may have rebuilt them since.
    lost_roles: Vec<u32>,
}

/// Run `seed` with the options it derives (`level` pins the level).
pub fn run_seed(seed: u64, level: Option<i32>) -> Result<Outcome, String> {
    run(seed, &Options::from_seed(seed, level), None)
}

/// Run `seed` with the options it derives for a DDF subarray run by the
/// simulated manager (`level` pins the level).
pub fn run_seed_external(seed: u64, level: Option<i32>) -> Result<Outcome, String> {
    run(seed, &Options::from_seed_external(seed, level), None)
}

/// Run `seed` with `opts`; with `crash_after`, the power also fails right
/// after that member write.
pub fn run(seed: u64, opts: &Options, crash_after: Option<u64>) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let disks = world::create(&opts.array, &mut rng)?;
    let host = match world::start(disks, &mut rng, false)? {
        Started::Running(h) => h,
        Started::Refused { why, .. } | Started::Torn { why } => {
            return Err(format!("a new array refused to start: {why}"))
        }
    };
    let model = Model::new(host.array_sectors);
    let mut sim = Sim {
        rng,
        opts: opts.clone(),
        host,
        model,
        next_id: 1,
        out: Outcome {
            runs_090: u32::from(opts.array.v090),
            runs_with_container_spares: u32::from(opts.array.container_spares > 0),
            ppl_runs: u32::from(opts.array.ppl),
            ..Outcome::default()
        },
        faulted: Vec::new(),
        crash_after,
        spare_rng: Rng::new(seed ^ 0x05ba_4e00_0000_ad0d),
        failed_by_hand: Vec::new(),
        grow_rng: Rng::new(seed ^ 0x06c0_3e00_0000_9a0d),
        growing: None,
        replace_rng: Rng::new(seed ^ 0x07e9_1ace_0000_0b0d),
        // Each enumerated crash point loses its own member.
        ppl_rng: Rng::new(seed ^ 0x0991_1057_0000_0c0d ^ crash_after.unwrap_or(0)),
        lost_roles: Vec::new(),
    };
    sim.arm();
    for _ in 0..opts.ops {
        sim.out.ops += 1;
        match sim.step() {
            Ok(true) => {}
            Ok(false) => return Ok(sim.finish_counts()),
            Err(e) => return Err(format!("op {}: {e}", sim.out.ops)),
        }
    }
    sim.finish().map_err(|e| format!("final check: {e}"))?;
    Ok(sim.finish_counts())
}

impl Sim {
    /// Configure a freshly started host: its interleaving, and the member
    /// write after which the power fails (the enumerated crash point, else
    /// a random one while crashes remain).
    fn arm(&mut self) {
        self.host.md_interleave_percent = self.opts.md_interleave_percent;
        self.host.manager_interleave_percent = self.opts.manager_interleave_percent;
        self.host.io.crash_after = match self.crash_after {
            Some(k) => Some(k),
            None if self.out.crashes < self.opts.crashes_max && self.opts.crash_percent > 0 => {
                let mean_gap = 2000 / self.opts.crash_percent;
                Some(self.host.io.writes_done + self.rng.range(1, 2 * mean_gap))
            }
            None => None,
        };
    }

    fn finish_counts(&mut self) -> Outcome {
        self.host_replaced();
        self.out.clone()
    }

    /// Count the member writes of the host about to be replaced.
    fn host_replaced(&mut self) {
        let writes = self.host.io.writes_done;
        self.out.member_writes += writes;
        self.host.io.writes_done = 0;
        self.out.read_errors_rewritten += self.host.read_errors_rewritten;
        self.host.read_errors_rewritten = 0;
        self.out.metadata_write_failures += self.host.metadata_write_failures;
        self.host.metadata_write_failures = 0;
        self.out.replacements_done += self.host.replacements_done;
        self.host.replacements_done = 0;
        if let Some(p) = self.host.ppl.as_mut() {
            self.out.ppl_units += p.units;
            p.units = 0;
        }
        if self.out.crash_points == 0 {
            self.out.crash_points = writes;
        }
        if let Some(m) = self.host.manager() {
            self.out.dirty_acks += m.dirty_acks;
            self.out.unblocks += m.unblocks;
            self.out.container_spares_activated += m.spares_activated;
        }
    }

    /// One operation; `Ok(false)`: the run ended early (a refused start).
    fn step(&mut self) -> Result<bool, String> {
        self.host.now = self.host.now + Duration(self.rng.below(20_000_000));
        if self.opts.fail_at_op == Some(self.out.ops) {
            let result = self.fail_first_in_sync();
            return self.after_step(u64::MAX - 3, result);
        }
        if self.grow_due() {
            let result = self.grow();
            return self.after_step(u64::MAX - 1, result);
        }
        if self.spare_due() {
            let result = self.spare();
            return self.after_step(u64::MAX, result);
        }
        if self.replace_due() {
            let result = self.replace();
            return self.after_step(u64::MAX - 2, result);
        }
        let roll = self.rng.below(100);
        let writes = self.opts.write_percent;
        let flushes = writes + self.opts.flush_percent;
        let reads = flushes + self.opts.read_percent;
        let result = if roll < writes {
            self.write()
        } else if roll < flushes {
            self.flush()
        } else if roll < reads {
            self.read_some()
        } else if self.opts.stripe_cache_percent > 0
            && self.rng.chance(self.opts.stripe_cache_percent)
        {
            let n = [32, 64, 256, 1024][self.rng.below(4) as usize];
            self.out.control_actions += 1;
            crate::control::stripe_cache_size(&mut self.host, n)
                .map(|again| self.out.eagain_retries += u32::from(again))
        } else if self.rng.chance(self.opts.fault_percent * 4) {
            self.fault()
        } else {
            self.background()
        };
        self.after_step(roll, result)
    }

    /// Trace an operation, and crash after it when the seed says or it
    /// reached the crash point.
    fn after_step(&mut self, roll: u64, result: Result<(), Stop>) -> Result<bool, String> {
        if let Some(why) = self.host.ppl_refused.take() {
            return Err(format!("a write could not be logged: {why}"));
        }
        if std::env::var_os("UMD_SIM_TRACE").is_some() {
            eprintln!(
                "op {} roll {roll} -> {result:?} writes {} state {:?} sync {:?} degraded {}",
                self.out.ops,
                self.host.io.writes_done,
                self.host.array.show("array_state"),
                self.host.array.show("sync_completed"),
                self.host.array.degraded()
            );
        }
        let crashed = match result {
            Ok(()) => {
                self.rng.chance(self.opts.crash_percent)
                    && self.out.crashes < self.opts.crashes_max
                    && self.crash_after.is_none()
            }
            Err(Stop::Crash) => true,
            Err(Stop::Failed(why)) => return Err(why),
        };
        if crashed {
            return self.crash();
        }
        Ok(true)
    }

    fn write(&mut self) -> Result<(), Stop> {
        let max = self.opts.write_sectors_max;
        let area = self.opts.hot_sectors.min(self.host.array_sectors);
        let len = self.rng.range(1, max.min(area));
        let sector = self.rng.below(area - len + 1);
        let trim = self.rng.chance(self.opts.trim_percent);
        let fua = self.rng.chance(self.opts.fua_percent);
        let id = if trim { 0 } else { self.next_id };
        self.next_id += 1;
        let mut data = vec![0u8; (len * 512) as usize];
        for (i, s) in data.chunks_mut(512).enumerate() {
            fill_sector(id, sector + i as u64, s);
        }
        self.model.issued(sector, len, id);
        if std::env::var_os("UMD_SIM_TRACE").is_some() {
            eprintln!(
                "write {id} at {sector}+{len} fua {fua} (member writes {})",
                self.host.io.writes_done
            );
        }
        match self.host.write(sector, &data, fua) {
            Ok(()) => {
                self.model.acknowledged(sector, len, fua);
                Ok(())
            }
            // An error reply: the write is not acknowledged (the model
            // keeps it possible, not required).
            Err(Stop::Failed(_)) => {
                self.out.error_replies += 1;
                Ok(())
            }
            Err(Stop::Crash) => Err(Stop::Crash),
        }
    }

    fn flush(&mut self) -> Result<(), Stop> {
        match self.host.flush() {
            Ok(()) => self.model.flushed(),
            // An error reply acknowledges nothing.
            Err(Stop::Failed(_)) => self.out.error_replies += 1,
            Err(Stop::Crash) => return Err(Stop::Crash),
        }
        Ok(())
    }

    fn read_some(&mut self) -> Result<(), Stop> {
        let area = self.opts.hot_sectors.min(self.host.array_sectors);
        let len = self.rng.range(1, 64.min(area));
        let sector = self.rng.below(area - len + 1);
        let data = self.host.read(sector, len)?;
        for (i, s) in data.chunks(512).enumerate() {
            let at = sector + i as u64;
            self.model
                .check_read(at, identify(at, s))
                .map_err(Stop::Failed)?;
        }
        self.out.sectors_checked += len;
        Ok(())
    }

    /// Time passes; the md thread and the sync thread run.
    fn background(&mut self) -> Result<(), Stop> {
        if self.rng.chance(20) {
            // Long enough for safe mode and the bitmap daemon.
            self.host.now = self.host.now + Duration::from_ms(self.rng.range(100, 12_000));
        }
        self.host.md_pass()?;
        for _ in 0..self.rng.range(1, 8) {
            self.host.sync_step()?;
        }
        self.host.manager_pass()?;
        Ok(())
    }

    /// A member fault the level survives: a member vanishes, or sectors of
    /// its data area become unreadable.
    fn fault(&mut self) -> Result<(), Stop> {
        let tolerance = match self.opts.array.level {
            1 => self.opts.array.raid_disks as usize - 1,
            5 => 1,
            _ => 2,
        };
        let candidates: Vec<usize> = self
            .host
            .recorded_in_sync_members()
            .into_iter()
            .filter(|m| !self.faulted.contains(m))
            .collect();
        // Roles without a healthy, recovered member: faulted ones, any the
        // start left out (a member too far behind after a crash), and any
        // a spare is still recovering into.
        let lost = (self.host.array.raid_disks() as usize).saturating_sub(candidates.len());
        if lost >= tolerance || candidates.is_empty() {
            return Ok(());
        }
        // A parity array whose resync has not finished is dirty: losing a
        // member now is md's write hole (dirty and degraded), a double
        // fault md does not survive either (docs/simulation.md).
        if self.opts.array.level != 1 && self.host.array.sync_position() != u64::MAX {
            return Ok(());
        }
        let member = candidates[self.rng.below(candidates.len() as u64) as usize];
        self.faulted.push(member);
        if std::env::var_os("UMD_SIM_TRACE").is_some() {
            eprintln!("fault: member {member}");
        }
        self.out.faults += 1;
        // With spares drawn, a third of the faults are `umd manage --fail`
        // (drawn apart from `rng`, which the vanishing draws nothing from).
        if self.opts.spare_percent > 0 && self.spare_rng.chance(33) {
            self.host.fail_by_hand(member)?;
            self.out.failed_by_hand += 1;
            self.failed_by_hand.push(member);
            return Ok(());
        }
        let disk = &mut self.host.io.disks[member];
        if !self.opts.latent_faults || self.rng.chance(50) {
            disk.vanish();
        } else {
            let sectors = disk.len_bytes() / 512;
            for _ in 0..self.rng.range(1, 8) {
                let s = self.rng.range(sectors / 4, sectors - 1);
                disk.add_latent(s);
            }
        }
        Ok(())
    }

    /// `umd manage --fail` of the first member in sync (`fail_at_op`): the
    /// scripted failure a rebuild's crash-point enumeration starts from.
    fn fail_first_in_sync(&mut self) -> Result<(), Stop> {
        let Some(&member) = self.host.recorded_in_sync_members().first() else {
            return Ok(());
        };
        self.faulted.push(member);
        self.out.faults += 1;
        self.out.failed_by_hand += 1;
        self.host.fail_by_hand(member)
    }

    /// Whether this operation is the spare action: at `spare_percent`
    /// while degraded and a quarter of it otherwise, while the run may add
    /// spares. Draws only from `spare_rng`.
    fn spare_due(&mut self) -> bool {
        if self.opts.spare_percent == 0 || self.out.spares_added >= SPARES_MAX {
            return false;
        }
        let percent = if self.host.array.degraded() > 0 {
            self.opts.spare_percent
        } else {
            self.opts.spare_percent / 4
        };
        self.spare_rng.chance(percent)
    }

    /// `umd manage --remove failed --add NEW`: the failed members leave,
    /// and a blank disk joins as a spare unless one is waiting already.
    /// The engine activates it into a free slot and the recovery runs with
    /// the sync thread's next steps.
    fn spare(&mut self) -> Result<(), Stop> {
        if self.host.array.is_external() {
            return self.container_spare();
        }
        let removed = self.host.remove_failed();
        self.out.members_removed += removed.len() as u32;
        // A removed member's disk is out of the array: its faults no
        // longer count against the redundancy.
        let names = world::member_names(self.host.io.disks.len());
        self.faulted
            .retain(|&m| !removed.iter().any(|r| *r == names[m]));
        let uuid = self.spare_rng.uuid();
        // A member failed by hand and no longer in the array (removed now,
        // or left out by a start) may come back, as an operator re-adds a
        // disk after a transient fault.
        let members = self.host.array.members();
        let back = self.failed_by_hand.iter().copied().find(|&m| {
            !members.iter().any(|x| x.name() == names[m]) && self.host.io.disks[m].is_present()
        });
        if let Some(member) = back.filter(|_| self.spare_rng.chance(50)) {
            self.failed_by_hand.retain(|&m| m != member);
            let role = self.host.add_back(member, uuid)?;
            self.out.added_back += 1;
            self.out.bitmap_re_adds += u32::from(role.is_some());
            return Ok(());
        }
        if self.host.idle_spares() > 0 {
            return Ok(());
        }
        let disk = SimDisk::new(self.opts.array.member_bytes);
        self.host.add_spare(disk, uuid)?;
        self.out.spares_added += 1;

        Ok(())
    }

    /// `umd manage CONTAINER --add NEW` (external metadata): a blank disk is
    /// given to the container unless a spare waits already; the manager
    /// writes it as a global spare with its next pass and activates it into
    /// a slot that lost its member. Failed members are removed by the
    /// manager itself, as mdmon removes them.
    fn container_spare(&mut self) -> Result<(), Stop> {
        if self.host.idle_spares() > 0 {
            return Ok(());
        }
        let uuid = self.spare_rng.uuid();
        let disk = SimDisk::new(self.opts.array.member_bytes);
        self.host.add_spare(disk, uuid)?;
        self.out.spares_added += 1;
        Ok(())
    }

    /// Whether this operation is the replace action: a native 1.x array,
    /// whole, no member faulted or being replaced, no sync due. Draws only
    /// from `replace_rng`.
    fn replace_due(&mut self) -> bool {
        if self.opts.replace_percent == 0
            || self.opts.array.v090
            || self.host.array.is_external()
            || self.out.spares_added >= SPARES_MAX
        {
            return false;
        }
        let quiet = self.host.array.degraded() == 0
            && self.faulted.is_empty()
            && !self
                .host
                .array
                .members()
                .iter()
                .any(umd_engine::member::Member::is_replacement)
            && self.host.array.sync_request().is_none();
        quiet && self.replace_rng.chance(self.opts.replace_percent)
    }

    /// `umd manage --replace MEMBER --with NEW`: a blank disk joins as a
    /// spare (unless one waits already) and a member in sync asks for a
    /// replacement; the engine copies it onto the spare with the sync
    /// thread's next steps while writes go on, then fails it.
    fn replace(&mut self) -> Result<(), Stop> {
        let in_sync = self.host.recorded_in_sync_members();
        if in_sync.is_empty() {
            return Ok(());
        }
        let member = in_sync[self.replace_rng.below(in_sync.len() as u64) as usize];
        if self.host.idle_spares() == 0 {
            let uuid = self.replace_rng.uuid();
            let disk = SimDisk::new(self.opts.array.member_bytes);
            self.host.add_spare(disk, uuid)?;
            self.out.spares_added += 1;
        }
        self.host.want_replacement(member)?;
        self.out.replacements_asked += 1;
        Ok(())
    }

    /// Whether this operation is the grow action: a native raid5/6 without
    /// a bitmap, in sync, nothing missing or failed, no spare waiting, not
    /// grown yet in this run. Draws only from `grow_rng`.
    fn grow_due(&mut self) -> bool {
        let a = &self.opts.array;
        if self.opts.grow_percent == 0
            || self.out.grows > 0
            || a.level == 1
            || a.bitmap_chunk_kib.is_some()
            || self.host.array.is_external()
        {
            return false;
        }
        let quiet = self.host.array.degraded() == 0
            && self.faulted.is_empty()
            && self.host.idle_spares() == 0
            && self.host.array.sync_request().is_none()
            && self.host.array.sync_position() == u64::MAX;
        quiet && self.grow_rng.chance(self.opts.grow_percent)
    }

    /// `umd stop`, `umd grow --raid-devices N+1 --add NEW`, `umd run`: the
    /// array stops cleanly, grows by a blank disk and starts again bigger.
    fn grow(&mut self) -> Result<(), Stop> {
        let members = self.host.role_members();
        match self.host.shutdown() {
            Ok(()) | Err(Stop::Failed(_)) => {}
            Err(Stop::Crash) => return Err(Stop::Crash),
        }
        let uuid = self.grow_rng.uuid();
        if members.len() == self.host.array.raid_disks() as usize && self.host.array.degraded() == 0
        {
            let now = self.host.now.0 / 1_000_000_000;
            let bytes = self.opts.array.member_bytes;
            let grown = reshape::grow(
                &mut self.host.io,
                &members,
                uuid,
                bytes,
                now,
                &mut self.growing,
            );
            match grown {
                Ok(true) => self.out.grows += 1,
                Ok(false) => {}
                Err(GrowStop::Fault(Fault::Crash)) => return Err(Stop::Crash),
                Err(GrowStop::Fault(f)) => return Err(Stop::Failed(format!("grow: {f:?}"))),
                Err(GrowStop::Refused(why)) => return Err(Stop::Failed(format!("grow: {why}"))),
            }
        }
        self.host_replaced();
        let disks = std::mem::take(&mut self.host.io.disks);
        match world::start(disks, &mut self.rng, false).map_err(Stop::Failed)? {
            Started::Running(h) => self.host = h,
            Started::Refused { why, .. } | Started::Torn { why } => {
                return Err(Stop::Failed(format!("a grown array refused: {why}")))
            }
        }
        self.model.grow(self.host.array_sectors);
        self.arm();
        Ok(())
    }

    /// After a power loss: finish a grow it interrupted before the array
    /// may start (`umd grow --continue`; `umd run` refuses mid-reshape).
    /// Another power loss may strike while it runs. `Ok(None)`: the grow
    /// cannot resume (a member's superblock torn): the run ends there, as
    /// a refused start does.
    fn resume_grow(&mut self, mut disks: Vec<SimDisk>) -> Result<Option<Vec<SimDisk>>, String> {
        let Some(grow_disks) = self.growing.clone() else {
            return Ok(Some(disks));
        };
        loop {
            let mut io = Members::new(disks, self.rng.fork());
            if self.out.crashes < self.opts.crashes_max && self.opts.crash_percent > 0 {
                io.crash_after = Some(self.rng.range(1, 4000 / self.opts.crash_percent));
            }
            let now = self.host.now.0 / 1_000_000_000;
            let resumed = reshape::resume(&mut io, &grow_disks, now);
            self.out.member_writes += io.writes_done;
            disks = std::mem::take(&mut io.disks);
            match resumed {
                Ok(()) => {
                    self.growing = None;
                    self.out.grows += 1;
                    self.out.grows_resumed += 1;
                    return Ok(Some(disks));
                }
                Err(GrowStop::Fault(Fault::Crash)) => {
                    self.out.crashes += 1;
                    self.power_loss(&mut disks);
                }
                Err(GrowStop::Refused(_)) => {
                    self.out.refused_starts += 1;
                    return Ok(None);
                }
                Err(GrowStop::Fault(f)) => return Err(format!("resuming the grow: {f:?}")),
            }
        }
    }

    /// Every disk loses or keeps its cached writes.
    fn power_loss(&mut self, disks: &mut [SimDisk]) {
        let mode = match self.rng.below(4) {
            0 => LossMode::DropAll,
            1 => LossMode::KeepAll,
            _ => LossMode::Random,
        };
        for d in disks {
            d.power_loss(mode, &mut self.rng);
        }
    }

    /// Power loss: every disk loses or keeps cached writes, a vanished disk
    /// may come back stale, and the array starts again from the disks (and
    /// again, if the power fails during its resync).
    fn crash(&mut self) -> Result<bool, String> {
        loop {
            self.out.crashes += 1;
            self.host_replaced();
            let mut disks: Vec<SimDisk> = std::mem::take(&mut self.host.io.disks);
            self.power_loss(&mut disks);
            // A vanished disk may come back stale, once the array recorded
            // it faulty. Before that it would look current to assembly (a
            // lag of one event is md's rule), a double fault md does not
            // promise to survive; docs/simulation.md, known gaps.
            for i in 0..disks.len() {
                if !disks[i].is_present()
                    && self.rng.chance(50)
                    && world::recorded_faulty(&disks, i)
                {
                    disks[i].reappear();
                }
            }
            self.lose_at_crash(&mut disks);
            self.crash_after = None;
            let Some(disks) = self.resume_grow(disks)? else {
                return Ok(false);
            };
            match world::start(disks, &mut self.rng, false)? {
                Started::Running(h) => self.host = h,
                Started::Refused { .. } => {
                    self.out.refused_starts += 1;
                    return Ok(false);
                }
                Started::Torn { .. } => {
                    self.out.torn_superblock_stops += 1;
                    return Ok(false);
                }
            }
            self.count_replay();
            self.model.grow(self.host.array_sectors);
            self.arm();
            match self.liveness() {
                Ok(()) => break,
                Err(Stop::Crash) => {}
                Err(Stop::Failed(e)) => return Err(e),
            }
        }
        self.check_all(true)?;
        Ok(true)
    }

    /// An array that was whole, its parity in sync, may lose a member at
    /// the power loss (`loss_at_crash_percent`, drawn from `ppl_rng`): it
    /// restarts dirty and degraded, md's write hole, which only a partial
    /// parity log closes. The member's disk vanishes after the crash's
    /// cache losses.
    fn lose_at_crash(&mut self, disks: &mut [SimDisk]) {
        let host = &self.host;
        let whole = host.array.degraded() == 0
            && self.faulted.is_empty()
            && host.array.sync_position() == u64::MAX
            && host.in_sync_members().len() == host.array.raid_disks() as usize;
        if !whole || !self.ppl_rng.chance(self.opts.loss_at_crash_percent) {
            return;
        }
        let members = host.role_members();
        let member = members[self.ppl_rng.below(members.len() as u64) as usize];
        if std::env::var_os("UMD_SIM_TRACE").is_some() {
            eprintln!("crash: member {member} lost");
        }
        disks[member].vanish();
        self.faulted.push(member);
        self.out.faults += 1;
        self.out.members_lost_at_crash += 1;
    }

    /// Count what the start's log replay did, and note the roles it found
    /// missing or still recovering: their torn chunks may be lost.
    fn count_replay(&mut self) {
        let degraded = self.host.array.degraded() > 0;
        let Some(p) = self.host.ppl().filter(|p| p.replayed_dirty) else {
            return;
        };
        self.out.ppl_dirty_starts += 1;
        self.out.ppl_dirty_degraded_starts += u32::from(degraded);
        self.out.ppl_entries_replayed += p.replayed.entries as u64;
        for r in 0..self.host.array.raid_disks() {
            let in_sync = matches!(self.host.member_map.role(r), Some((_, None)));
            if !in_sync && !self.lost_roles.contains(&r) {
                self.lost_roles.push(r);
            }
        }
    }

    /// Every sync the array needs runs to its end; then a `check` pass
    /// finds nothing to repair.
    fn liveness(&mut self) -> Result<(), Stop> {
        self.settle_syncs()?;
        let slotless = |host: &SimHost| {
            (host.array.raid_disks() as usize).saturating_sub(host.role_members().len())
        };
        // A spare takes a few passes to be activated: the failed member
        // leaves its slot (md thread), the manager removes it, and only
        // then chooses a spare; the recovery follows.
        for _ in 0..SPARE_PASSES_MAX {
            if slotless(&self.host) == 0 || self.host.idle_spares() == 0 {
                break;
            }
            self.host.md_pass()?;
            self.host.manager_pass()?;
            self.settle_syncs()?;
        }
        let slotless = slotless(&self.host);
        // A subarray its manager keeps read-auto (nothing written since the
        // start) takes no spare until its first write makes it writable,
        // as mdmon activates spares only into writable arrays (and md
        // starts no recovery in read-auto for external metadata).
        let read_auto = self
            .host
            .array
            .show("array_state")
            .is_ok_and(|s| s == "read-auto");
        if slotless > 0
            && self.host.idle_spares() > 0
            && !self.host.array.is_broken()
            && !(self.host.array.is_external() && read_auto)
        {
            return Err(Stop::Failed(format!(
                "{slotless} role(s) without a member while {} spare(s) wait",
                self.host.idle_spares()
            )));
        }
        if self.host.array.is_redundant() && !self.host.array.is_broken() {
            self.host
                .array
                .store("sync_action", "check", self.host.now)
                .map_err(|e| Stop::Failed(format!("check: {e}")))?;
            self.host.drain();
            self.settle_syncs()?;
            let mismatches = self.host.array.mismatch_cnt();
            if mismatches != 0 {
                return Err(Stop::Failed(format!(
                    "parity or mirrors inconsistent after resync: mismatch_cnt {mismatches}"
                )));
            }
        }
        Ok(())
    }

    fn settle_syncs(&mut self) -> Result<(), Stop> {
        for _ in 0..LIVENESS_STEPS_MAX {
            let busy = self.host.sync_step()?;
            self.host.md_pass()?;
            self.host.manager_pass()?;
            if !busy && !self.host.syncing() && self.host.array.sync_request().is_none() {
                return Ok(());
            }
            self.host.now = self.host.now + Duration::from_ms(1);
        }
        Err(Stop::Failed(format!(
            "a sync never finished (sync_action {:?}, sync_completed {:?}, degraded {}, faults {:?})",
            self.host.array.show("sync_action"),
            self.host.array.show("sync_completed"),
            self.host.array.degraded(),
            self.faulted,
        )))
    }

    /// Read the whole array and check every sector against the model.
    fn check_all(&mut self, after_crash: bool) -> Result<(), String> {
        let total = self.host.array_sectors;
        let step = 256u64;
        // Anywhere but on these roles a torn stripe is a bug.
        let lost = std::mem::take(&mut self.lost_roles);
        let mut copies = Vec::new();
        let mut at = 0;
        while at < total {
            let len = step.min(total - at);
            let data = self
                .host
                .read(at, len)
                .map_err(|e| format!("read: {e:?}"))?;
            for (i, s) in data.chunks(512).enumerate() {
                let sector = at + i as u64;
                let got = identify(sector, s);
                if after_crash {
                    let on_lost = !lost.is_empty()
                        && {
                            let e = self.host.geometry.locate(sector, &mut copies);
                            matches!(e.target, Target::Striped { data, .. } if lost.contains(&data.role))
                        };
                    let torn = self.model.check_after_crash(sector, got, on_lost)?;
                    self.out.torn_sectors_of_lost_members += u64::from(torn);
                } else {
                    self.model.check_read(sector, got)?;
                }
            }
            at += len;
        }
        self.out.sectors_checked += total;
        let roles = self.host.role_members();
        world::check_metadata_agrees(&self.host.io.disks, &roles)
    }

    /// The end: syncs finish, the array is checked, stopped cleanly, and
    /// must start again clean with the same data. A power failure on the
    /// way is survived like any other.
    fn finish(&mut self) -> Result<(), String> {
        loop {
            match self.finish_once() {
                Ok(()) => return Ok(()),
                Err(Stop::Failed(e)) => return Err(e),
                Err(Stop::Crash) => {
                    if !self.crash()? {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn finish_once(&mut self) -> Result<(), Stop> {
        self.liveness()?;

        self.check_all(false).map_err(Stop::Failed)?;
        self.host.now = self.host.now + Duration::from_ms(1000);
        // Whole and in sync: every role's member recovered (a spare's
        // rebuild included), which the metadata must say after the stop.
        let whole = self.host.array.degraded() == 0;
        let stopped_whole = match self.host.shutdown() {
            Ok(()) => whole,
            // The final flush failed on a member that vanished unnoticed:
            // the real host reports it and stops; the disks say the rest.
            Err(Stop::Failed(_)) => false,
            Err(Stop::Crash) => return Err(Stop::Crash),
        };
        let roles = self.host.role_members();
        world::check_metadata_agrees(&self.host.io.disks, &roles).map_err(Stop::Failed)?;
        self.host_replaced();
        let disks = std::mem::take(&mut self.host.io.disks);
        match world::start(disks, &mut self.rng, false).map_err(Stop::Failed)? {
            Started::Running(h) => self.host = h,
            Started::Refused { why, .. } | Started::Torn { why } => {
                return Err(Stop::Failed(format!("a clean array refused: {why}")))
            }
        }
        // A recovery may start: a spare takes the slot of a member that
        // failed on the way down (its last superblock write).
        let sync = self.host.array.sync_request();
        if sync.is_some_and(|a| a != SyncAction::Recover) {
            return Err(Stop::Failed(format!(
                "a cleanly stopped array needs a {sync:?}"
            )));
        }
        let in_sync = self.host.in_sync_members().len();
        let roles = self.host.array.raid_disks() as usize;
        if stopped_whole && in_sync < roles {
            return Err(Stop::Failed(format!(
                "every member was in sync at the stop, but the metadata records {in_sync} of {roles} in sync"
            )));
        }
        self.check_all(false).map_err(Stop::Failed)
    }
}

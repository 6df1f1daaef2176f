//! The simulated metadata manager: `umd mon` for one DDF subarray, its pass
//! made at seeded points of the simulated host.
//!
//! Why: with external metadata the engine never records dirty, failed or
//! resynced itself; it waits for the manager (protocol.md §6). Whether data
//! survives a crash then depends on the manager's order: metadata written
//! and durable before `active` or `-blocked` is acknowledged. So the manager
//! here runs the real manager's code, not a copy of it: the per-pass
//! decision `umd::mon::decide::decide` and the real DDF handler
//! (`umd::mon::ddf::DdfHandler`), whose metadata writes go to the simulated
//! disks through the same write-then-flush model as every other write (a
//! crash may fall between the metadata write and its flush, or between the
//! flush and the acknowledgement). Only the loop around them is restated,
//! in the real loop's order (`umd/src/mon/monitor.rs` `Monitor::pass`):
//! observe, decide, `sync_metadata`, write every block, make each written
//! disk durable, and only then act. The real loop reads attributes through
//! the control socket; this one reads the engine's attributes directly
//! (the same strings).
//!
//! Dependency: this crate depends on the `umd` library for `mon::decide`
//! and `mon::ddf`. Both are pure already (they change memory only; the
//! monitor does the I/O), but they live beside the socket client and the
//! monitor loop, and moving them (with their tests and the fuzz support code
//! they share) into `umd-engine` touches every user of `umd::mon`; the
//! library dependency gives the simulator the same code without that.
//!
//! Spares: the container's global spares are loaded with the members, and
//! after each pass's acknowledgements the manager activates them into
//! slots without a member, in `Monitor::activate_spares`'s order (the shared
//! `umd::mon::spare_plan`): freeze, add and place each in the engine, write
//! the metadata that records it rebuilding (crash points), only then
//! `recover`. Not driven: the failure propagation between subarrays (one
//! subarray is simulated).

use crate::host::{SimHost, Stop};
use crate::members::Fault;
use umd::mon::ddf::DdfHandler;
use umd::mon::decide::{decide, Acts, Observed, Tracked};
use umd::mon::disks::{write_metadata, MetadataSink};
use umd::mon::handler::MetadataHandler;
use umd::mon::spare_plan::{missing_slots, placement_writes};
use umd_engine::array::Array;
use umd_engine::native::MetadataWrite;

/// The handler's clock: time stamps in the metadata need not follow
/// simulated time, only be deterministic.
const CLOCK_UNIX_S: u64 = 1_700_000_000;

/// The manager of one container with one subarray.
pub struct SimManager {
    handler: Box<dyn MetadataHandler>,
    tracked: Tracked,
    /// Engine member names (`dev-NAME`) the manager watches.
    members: Vec<String>,
    /// `disk_members[d]`: the simulated member holding the handler's disk `d`.
    disk_members: Vec<usize>,
    /// Handler disks that were global spares at the load and have not
    /// been activated since.
    spares: Vec<usize>,
    /// Passes made.
    pub passes: u64,
    /// Spares activated into a slot (the metadata recording them written).
    pub spares_activated: u64,
    /// Passes whose metadata write failed (nothing acknowledged).
    pub failed_passes: u64,
    /// `active` acknowledgements of a write-pending.
    pub dirty_acks: u64,
    /// Failed members recorded and unblocked (`-blocked`).
    pub unblocks: u64,
    /// With `inject-ack-before-metadata`: the metadata of the last pass,
    /// written only at the next.
    deferred: Vec<MetadataWrite>,
}

impl SimManager {
    /// Load the container from `devices` (`(member index, size, read)`), as
    /// `umd mon` loads it from the container's disks, to watch subarray
    /// `index` of an engine whose members are `members`; the devices of
    /// members `spares` are the container's global spares.
    pub fn load<R>(
        devices: Vec<(usize, u64, R)>,
        index: u32,
        members: Vec<String>,
        spares: &[usize],
    ) -> Result<SimManager, String>
    where
        R: FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    {
        let disk_members: Vec<usize> = devices.iter().map(|d| d.0).collect();
        let spares = (0..disk_members.len())
            .filter(|&d| spares.contains(&disk_members[d]))
            .collect();
        let handler = DdfHandler::load(devices.into_iter().map(|(_, size, read)| (size, read)))
            .map_err(|e| format!("manager: {e}"))?
            .with_clock(Box::new(|| CLOCK_UNIX_S));
        Ok(SimManager {
            handler: Box::new(handler),
            tracked: Tracked::new(index),
            members,
            disk_members,
            spares,
            passes: 0,
            spares_activated: 0,
            failed_passes: 0,
            dirty_acks: 0,
            unblocks: 0,
            deferred: Vec::new(),
        })
    }

    /// Whether the subarray is still watched.
    #[must_use]
    pub fn monitored(&self) -> bool {
        self.tracked.monitored
    }

    /// One subarray as `Monitor::observe` reads it (`Observed::read`).
    fn observe(&self, array: &Array) -> Observed {
        Observed::read(|attr| array.show(attr).ok(), &self.members)
    }

    /// The engine writes of [`Acts`] (`Acts::engine_writes`, as
    /// `Monitor::act` writes them). A refusal is a race the next pass
    /// resolves, as the real manager treats it.
    fn act(&mut self, host: &mut SimHost, acts: &Acts) {
        self.dirty_acks += u64::from(acts.array_state == Some("active"));
        self.unblocks += acts.unblock.len() as u64;
        for (attr, value) in acts.engine_writes() {
            let _refused = host.array.store(&attr, value, host.now);
        }
        for m in &acts.remove {
            self.members.retain(|n| n != m);
        }
        host.drain();
    }

    /// The metadata to the disks through the real manager's write policy
    /// (`umd::mon::disks::write_metadata`); `Ok(false)`: not durable
    /// anywhere, acknowledge nothing.
    fn write(&self, host: &mut SimHost, writes: &[MetadataWrite]) -> Result<bool, Stop> {
        let mut sink = Sink {
            host,
            disk_members: &self.disk_members,
            crashed: false,
        };
        let written = write_metadata(&mut sink, writes);
        if sink.crashed {
            return Err(Stop::Crash);
        }
        Ok(written.is_ok())
    }

    /// One pass (`Monitor::pass` for one subarray).
    fn pass(&mut self, host: &mut SimHost) -> Result<(), Stop> {
        if !self.tracked.monitored {
            // (With the injected bug, what the last pass recorded is still
            // written, late.)
            let late = std::mem::take(&mut self.deferred);
            self.write(host, &late)?;
            return Ok(());
        }
        self.passes += 1;
        let seen = self.observe(&host.array);
        let acts = decide(&mut self.tracked, &seen, self.handler.as_mut());
        let mut writes = Vec::new();
        self.handler.sync_metadata(&mut writes);
        if trace() {
            eprintln!(
                "manager: saw {:?} {} resync_start {} sync_completed {:?} -> {acts:?}, {} metadata writes",
                seen.array_state,
                seen.sync_action,
                seen.resync_start,
                seen.sync_completed,
                writes.len()
            );
        }
        if cfg!(feature = "inject-ack-before-metadata") {
            // The injected bug: acknowledge first; the metadata is written
            // at the manager's next pass, while the engine goes on.
            self.act(host, &acts);
            let earlier = std::mem::replace(&mut self.deferred, writes);
            if !self.write(host, &earlier)? {
                self.failed_passes += 1;
            }
            return self.activate_spares(host);
        }
        // Nothing is acknowledged unless the metadata is on disk.
        if !writes.is_empty() && !self.write(host, &writes)? {
            self.failed_passes += 1;
            return Ok(());
        }
        self.act(host, &acts);
        self.activate_spares(host)
    }

    /// `umd manage CONTAINER --add`: the blank disk of member `member` is
    /// given to the container; the handler records it a global spare,
    /// written to every disk with the next pass (the real manager takes it
    /// at its next pass too, `Monitor::take_new_disks`).
    pub fn add_disk(&mut self, host: &SimHost, member: usize, seed: u64) -> Result<(), String> {
        let disk = &host.io.disks[member];
        let mut read = |offset: u64, buf: &mut [u8]| {
            disk.read(offset, buf)
                .map_err(|e| std::io::Error::other(e.to_string()))
        };
        let name = &host.names[member];
        let index = self
            .handler
            .add_disk(name, disk.len_bytes(), &mut read, seed)?;
        assert_eq!(
            index,
            self.disk_members.len(),
            "disks are numbered in order"
        );
        self.disk_members.push(member);
        self.spares.push(index);
        Ok(())
    }

    /// Global spares not yet activated whose disks are still there.
    #[must_use]
    pub fn spares_waiting(&self, host: &SimHost) -> usize {
        self.spares
            .iter()
            .filter(|&&d| host.io.disks[self.disk_members[d]].is_present())
            .count()
    }

    /// `Monitor::activate_spares` for the one subarray (module doc): the
    /// handler chooses for the slots without a member and records its
    /// choice; the engine is frozen, given each disk and its place, and
    /// told to `recover` only once that metadata is durable. A metadata
    /// write that reached no disk leaves the array frozen, as the real
    /// monitor's failed pass does.
    fn activate_spares(&mut self, host: &mut SimHost) -> Result<(), Stop> {
        let array = &host.array;
        let missing = missing_slots(
            self.tracked.prev_state,
            |attr| array.show(attr).ok(),
            &self.members,
        );
        if missing.is_empty() {
            return Ok(());
        }
        let chosen = self.handler.activate_spare(self.tracked.index, &missing);
        if chosen.is_empty() {
            return Ok(());
        }
        let store = |host: &mut SimHost, attr: &str, value: &str| {
            let stored = host.array.store(attr, value, host.now);
            host.drain();
            stored.map_err(|e| Stop::Failed(format!("spare activation: {attr} {value}: {e}")))
        };
        store(host, "sync_action", "frozen")?;
        let mut added = Vec::with_capacity(chosen.len());
        for a in &chosen {
            let member = self.disk_members[a.disk];
            let name = host.add_external_member(member)?;
            for (attr, value) in placement_writes(a, &name) {
                store(host, &attr, &value)?;
            }
            if trace() {
                eprintln!("manager: spare {name} activated into slot {}", a.slot);
            }
            self.spares.retain(|&d| d != a.disk);
            added.push(name);
        }
        let mut writes = Vec::new();
        self.handler.sync_metadata(&mut writes);
        if !self.write(host, &writes)? {
            self.failed_passes += 1;
            return Ok(());
        }
        self.spares_activated += added.len() as u64;
        for name in added {
            if !self.members.contains(&name) {
                self.members.push(name);
            }
        }
        store(host, "sync_action", "recover")
    }
}

/// The simulated disks as the manager writes them. Once the power failed
/// nothing more is written.
struct Sink<'a> {
    host: &'a mut SimHost,
    disk_members: &'a [usize],
    crashed: bool,
}

impl Sink<'_> {
    fn outcome(&mut self, r: Result<(), Fault>) -> Result<(), String> {
        match r {
            Ok(()) => Ok(()),
            Err(Fault::Crash) => {
                self.crashed = true;
                Err("the power failed".into())
            }
            Err(Fault::Member { error, .. }) => Err(error.to_string()),
        }
    }
}

impl MetadataSink for Sink<'_> {
    fn disks(&self) -> usize {
        self.disk_members.len()
    }

    fn name(&self, disk: usize) -> String {
        self.host.names[self.disk_members[disk]].clone()
    }

    fn write(&mut self, disk: usize, offset_bytes: u64, bytes: &[u8]) -> Result<(), String> {
        if self.crashed {
            return Err("the power failed".into());
        }
        let member = self.disk_members[disk];
        let r = self.host.io.write_batch(&[(member, offset_bytes, bytes)]);
        self.outcome(r)
    }

    fn sync(&mut self, disk: usize) -> Result<(), String> {
        if self.crashed {
            return Err("the power failed".into());
        }
        let r = self.host.io.flush(self.disk_members[disk]);
        self.outcome(r)
    }
}

fn trace() -> bool {
    std::env::var_os("UMD_SIM_TRACE").is_some()
}

impl SimHost {
    /// The metadata manager's pass, if the array has one.
    pub fn manager_pass(&mut self) -> Result<(), Stop> {
        let Some(mut manager) = self.manager.take() else {
            return Ok(());
        };
        let result = manager.pass(self);
        self.manager = Some(manager);
        result
    }
}

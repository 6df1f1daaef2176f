//! The DDF metadata handler: mdadm's DDF superswitch for mdmon
//! (`ddf_set_array_state`, `ddf_set_disk`, `ddf_activate_spare`,
//! `ddf_sync_metadata`), over umd's container view of all devices.
//!
//! Why it exists: an array in a DDF container records clean/dirty, member
//! failures and rebuilds in the container's metadata, which md never writes
//! (protocol.md §6); the monitor calls this handler at each such event and
//! writes what [`MetadataHandler::sync_metadata`] returns before telling the
//! engine to go on. It must record exactly what mdadm's mdmon would, so that
//! mdadm, mdmon and DDF controllers read the container the same way after umd
//! ran it, and the other way round.
//!
//! What it owns:
//! - One [`Container`]: a [`Ddf`](umd_formats::ddf::Ddf) per device (each
//!   device keeps its own configuration records and disk_data) plus the shared
//!   view every change is made to. Devices are numbered in load order; that
//!   number is the monitor's "disk" and [`MetadataWrite::member`].
//! - mdadm's `updates_pending`: the first change after a write bumps the
//!   header sequence number once; a change to a basic VD's configuration also
//!   stamps it and bumps its own `seqnum`. [`MetadataHandler::sync_metadata`]
//!   writes every device (both header copies, anchor last) only when something
//!   changed.
//! - The clock: time stamps are seconds since 1980-01-01 from an injected
//!   clock, so tests are deterministic and the handler does no I/O.
//!
//! State changes (per virtual disk; `state.rs` has the condition table):
//!
//! | trigger                         | VD `state` bits            | `init_state`                | PD `state`                       |
//! |---------------------------------|----------------------------|-----------------------------|----------------------------------|
//! | `set_array_state(Dirty)`        | + inconsistent             | from the resync position    | -                                |
//! | `set_array_state(Clean)`        | - inconsistent             | from the resync position    | -                                |
//! | `set_array_state(Decide)`       | absent members failed; inconsistent unless resync complete | from the resync position | absent: - online, + failed, missing |
//! | `set_disk(faulty)`              | condition recomputed       | -                           | + failed                         |
//! | `set_disk(in_sync)`             | condition recomputed       | -                           | + online, - rebuilding           |
//! | `activate_spare`                | -                          | -                           | spare: + active in VD (+ rebuilding when new to VDs) |
//!
//! The resync position gives `init_state`: complete (at or past the resync
//! size) = fully initialised, 0 = not initialised, in between = quick
//! (initialisation in progress).

mod spare;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::debug;
use umd_engine::create::ddf_add::plan_ddf_add;
use umd_engine::native::MetadataWrite;
use umd_formats::ddf::container::{Container, ContainerError};
use umd_formats::ddf::level;
use umd_formats::ddf::{
    self, VdConfig, VirtDisk, GUID_LEN, PD_STATE_FAILED, PD_STATE_MISSING, PD_STATE_ONLINE,
    PD_STATE_REBUILDING, VD_INIT_FULL, VD_INIT_MASK, VD_INIT_NOT, VD_INIT_QUICK,
    VD_STATE_INCONSISTENT, VD_STATE_MASK,
};
use umd_formats::probe::{ProbeError, ReadAt};

use super::handler::{
    Consistency, DiskState, MetadataHandler, SpareAssignment, Subarray, RESYNC_NONE,
};

/// Seconds from 1970-01-01 to 1980-01-01, DDF's epoch (mdadm `DECADE`: ten
/// years with two leap days).
pub const DDF_EPOCH_UNIX_S: u64 = 3600 * 24 * (365 * 10 + 2);

/// A source of the current time in seconds since the Unix epoch.
pub type Clock = Box<dyn FnMut() -> u64 + Send>;

/// Why the devices given do not form a DDF container umd can manage.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading or parsing device `disk` failed.
    Probe {
        /// The device, in load order.
        disk: usize,
        /// What went wrong there.
        error: ProbeError,
    },
    /// Device `disk` carries no DDF anchor.
    NotDdf {
        /// The device, in load order.
        disk: usize,
    },
    /// The devices are not one container.
    Container(ContainerError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Probe { disk, error } => write!(f, "device {disk}: {error}"),
            Self::NotDdf { disk } => write!(f, "device {disk}: no DDF metadata"),
            Self::Container(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// The DDF handler of one container (see the module doc).
pub struct DdfHandler {
    container: Container,
    /// The header sequence number the next write carries.
    seq: u32,
    /// mdadm's `updates_pending`: something changed since the last write.
    pending: bool,
    clock: Clock,
}

impl fmt::Debug for DdfHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DdfHandler")
            .field("seq", &self.seq)
            .field("pending", &self.pending)
            .field("devices", &self.container.devices().len())
            .finish_non_exhaustive()
    }
}

/// The system clock, in seconds since the Unix epoch (0 if it is set before it).
fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DdfHandler {
    /// Load the container from every one of its devices: `(size in bytes,
    /// read function)` per device, in the order the monitor numbers them.
    /// Each device is probed for DDF (mdadm's anchor in the last sector);
    /// all must be devices of one container. Uses the system clock.
    pub fn load<R>(devices: impl IntoIterator<Item = (u64, R)>) -> Result<DdfHandler, LoadError>
    where
        R: FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    {
        let mut loaded = Vec::new();
        for (disk, (size, mut read)) in devices.into_iter().enumerate() {
            match ddf::probe(size, &mut read) {
                Ok(Some(d)) => loaded.push(d),
                Ok(None) => return Err(LoadError::NotDdf { disk }),
                Err(error) => return Err(LoadError::Probe { disk, error }),
            }
        }
        let container = Container::from_devices(loaded).map_err(LoadError::Container)?;
        Ok(Self::from_container(container, Box::new(system_clock)))
    }

    /// A handler over an already loaded container, with `clock`.
    #[must_use]
    pub fn from_container(container: Container, clock: Clock) -> DdfHandler {
        let seq = container.seq();
        DdfHandler {
            container,
            seq,
            pending: false,
            clock,
        }
    }

    /// Use `clock` for time stamps from now on (tests; the default is the
    /// system clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> DdfHandler {
        self.clock = clock;
        self
    }

    /// The container as recorded so far (including changes not yet written).
    #[must_use]
    pub fn container(&self) -> &Container {
        &self.container
    }

    /// The time now, in DDF's seconds since 1980 (0 before 1980; DDF stores
    /// 32 bits, so the value wraps in 2116 as mdadm's does).
    fn now_ddf(&mut self) -> u32 {
        (self.clock)().saturating_sub(DDF_EPOCH_UNIX_S) as u32
    }

    /// mdadm's `ddf_set_updates_pending`: stamp the basic VD `bvd` (GUID,
    /// `sec_elmnt_seq`) if given, and bump the header sequence number once per
    /// write.
    fn mark_changed(&mut self, bvd: Option<([u8; GUID_LEN], u8)>) {
        if let Some((guid, seq)) = bvd {
            let now = self.now_ddf();
            if let Some(c) = self.container.bvd_mut(&guid, seq) {
                c.timestamp = now;
                c.seqnum = c.seqnum.wrapping_add(1);
            }
        }
        if !self.pending {
            self.pending = true;
            self.seq = self.seq.wrapping_add(1);
        }
    }

    /// The VD entry with table index `index` and its basic VDs (cloned, so
    /// the container can be edited meanwhile).
    fn vd(&self, index: u32) -> Option<(VirtDisk, Vec<VdConfig>)> {
        let vd = self.container.virt().iter().find(|v| v.index == index)?;
        let bvds = self.container.bvds(&vd.guid).into_iter().cloned().collect();
        Some((vd.clone(), bvds))
    }

    /// Recompute VD `guid`'s condition; `true` when it changed.
    fn refresh_condition(&mut self, guid: &[u8; GUID_LEN]) -> bool {
        let bvds = self.container.bvds(guid);
        let Some(condition) = state::vd_state(&self.container, &bvds) else {
            return false;
        };
        let Some(vd) = self
            .container
            .virt_mut()
            .iter_mut()
            .find(|v| &v.guid == guid)
        else {
            return false;
        };
        let new = (vd.state & !VD_STATE_MASK) | condition;
        let changed = new != vd.state;
        vd.state = new;
        changed
    }

    /// mdadm's `handle_missing`: when an array starts, every member whose
    /// disk is not among the loaded devices is failed and missing, its element
    /// cleared (refnum 0), and the VD's condition recomputed.
    fn handle_missing(&mut self, vd: &VirtDisk, bvds: &[VdConfig]) {
        for bvd in bvds {
            let key = (bvd.guid, bvd.sec_elmnt_seq);
            let positions: Vec<usize> = state::member_positions(bvd).collect();
            for pos in positions {
                let refnum = bvd.phys_refnum[pos];
                if self.container.device_of(refnum).is_some() {
                    continue;
                }
                let pd = self
                    .container
                    .phys_mut()
                    .iter_mut()
                    .find(|p| p.refnum == refnum);
                if let Some(pd) = pd.filter(|p| p.state & PD_STATE_ONLINE != 0) {
                    pd.state &= !PD_STATE_ONLINE;
                    pd.state |= PD_STATE_FAILED | PD_STATE_MISSING;
                    if let Some(c) = self.container.bvd_mut(&key.0, key.1) {
                        c.phys_refnum[pos] = 0;
                    }
                    debug!(vd = vd.index, refnum, "member disk missing: marked failed");
                    self.mark_changed(Some(key));
                }
            }
            if self.refresh_condition(&vd.guid) {
                self.mark_changed(Some(key));
            }
        }
    }

    /// Whether a resync position means the VD is fully in sync.
    fn resync_complete(bvds: &[VdConfig], resync_start: u64) -> bool {
        if resync_start == RESYNC_NONE {
            return true;
        }
        let Some(first) = bvds.first() else {
            return false;
        };
        let Ok(geo) = level::md_geometry(first) else {
            return false;
        };
        let size = state::sync_size_sectors(geo.level, geo.layout, geo.raid_disks, first.blocks);
        resync_start >= size
    }
}

/// The md role `slot` as (basic VD sequence, element position): roles run
/// through each basic VD's positions in turn (`mdinfo.rs`'s numbering).
fn bvd_position(bvds: &[VdConfig], slot: u32) -> Option<(usize, usize)> {
    let prim = u32::from(bvds.first()?.prim_elmnt_count);
    if prim == 0 {
        return None;
    }
    let seq = (slot / prim) as usize;
    let pos = (slot % prim) as usize;
    let b = bvds
        .iter()
        .position(|b| usize::from(b.sec_elmnt_seq) == seq)?;
    (pos < bvds[b].phys_refnum.len()).then_some((b, pos))
}

impl MetadataHandler for DdfHandler {
    fn format(&self) -> &'static str {
        "ddf"
    }

    fn subarrays(&self) -> Vec<Subarray> {
        let c = &self.container;
        let mut out = Vec::new();
        for vd in c.virt() {
            let bvds: Vec<VdConfig> = c.bvds(&vd.guid).into_iter().cloned().collect();
            let Some(first) = bvds.first() else { continue };
            if first.sec_elmnt_count > 1 && !state::secondary_complete(&c.bvds(&vd.guid)) {
                continue;
            }
            let Ok(geo) = level::md_geometry(first) else {
                continue;
            };
            let slot_disks = (0..geo.raid_disks)
                .map(|slot| {
                    let (b, pos) = bvd_position(&bvds, slot)?;
                    let refnum = bvds[b].phys_refnum[pos];
                    if state::is_working(c, refnum) {
                        c.device_of(refnum)
                    } else {
                        None
                    }
                })
                .collect();
            let consistent = vd.is_in_sync();
            out.push(Subarray {
                index: vd.index,
                name: vd.name(),
                level: geo.level,
                raid_disks: geo.raid_disks,
                slot_disks,
                consistent,
                resync_start: if consistent { RESYNC_NONE } else { 0 },
            });
        }
        out
    }

    fn set_array_state(&mut self, index: u32, consistent: Consistency, resync_start: u64) -> bool {
        let Some((vd, bvds)) = self.vd(index) else {
            return false;
        };
        let complete = Self::resync_complete(&bvds, resync_start);
        let consistent = match consistent {
            Consistency::Dirty => false,
            Consistency::Clean => true,
            Consistency::Decide => {
                self.handle_missing(&vd, &bvds);
                complete
            }
        };
        let init = if complete {
            VD_INIT_FULL
        } else if resync_start == 0 {
            VD_INIT_NOT
        } else {
            VD_INIT_QUICK
        };
        let entry = self
            .container
            .virt_mut()
            .iter_mut()
            .find(|v| v.index == index)
            .expect("the entry was just found");
        let (old_state, old_init) = (entry.state, entry.init_state);
        if consistent {
            entry.state &= !VD_STATE_INCONSISTENT;
        } else {
            entry.state |= VD_STATE_INCONSISTENT;
        }
        entry.init_state = (entry.init_state & !VD_INIT_MASK) | init;
        let clean = entry.is_in_sync();
        let changed = (entry.state, entry.init_state) != (old_state, old_init);
        if changed {
            debug!(vd = index, clean, resync_start, "array state recorded");
            self.mark_changed(None);
        }
        clean
    }

    fn set_disk(&mut self, index: u32, slot: u32, state: DiskState) {
        let Some((vd, bvds)) = self.vd(index) else {
            return;
        };
        let Some((b, pos)) = bvd_position(&bvds, slot) else {
            return;
        };
        let key = (bvds[b].guid, bvds[b].sec_elmnt_seq);
        let refnum = bvds[b].phys_refnum[pos];
        let mut changed = false;
        if let Some(pd) = self
            .container
            .phys_mut()
            .iter_mut()
            .find(|p| p.refnum == refnum)
        {
            let old = pd.state;
            if state.faulty {
                pd.state |= PD_STATE_FAILED;
            }
            if state.in_sync {
                pd.state |= PD_STATE_ONLINE;
                pd.state &= !PD_STATE_REBUILDING;
            }
            changed = pd.state != old;
        }
        changed |= self.refresh_condition(&vd.guid);
        if changed {
            debug!(vd = index, slot, refnum, ?state, "member state recorded");
            self.mark_changed(Some(key));
        }
    }

    fn activate_spare(&mut self, index: u32, missing: &[u32]) -> Vec<SpareAssignment> {
        spare::activate(self, index, missing)
    }

    fn add_disk(
        &mut self,
        name: &str,
        dev_bytes: u64,
        read: &mut ReadAt<'_>,
        seed: u64,
    ) -> Result<usize, String> {
        match umd_formats::probe::probe(dev_bytes, read) {
            Err(ProbeError::NotFound) => {}
            Ok(found) => {
                return Err(format!(
                    "{name} holds {} metadata; umd adds only blank disks to a container \
                     (erase it first)",
                    found.kind()
                ));
            }
            Err(e) => return Err(format!("{name}: {e}")),
        }
        let now = (self.clock)();
        let device =
            plan_ddf_add(&self.container, name, dev_bytes, seed, now).map_err(|e| e.message)?;
        let disk = self
            .container
            .add_device(device)
            .map_err(|e| format!("{name}: {e}"))?;
        debug!(disk, name, "disk added to the container as a global spare");
        self.mark_changed(None);
        Ok(disk)
    }

    fn sync_metadata(&mut self, out: &mut Vec<MetadataWrite>) {
        if !self.pending {
            return;
        }
        self.pending = false;
        let now = self.now_ddf();
        let before = out.len();
        let phases = self.container.write_update(self.seq, now);
        for (phase, writes) in phases.into_iter().enumerate() {
            let phase = u8::try_from(phase).expect("an update has a handful of phases");
            for (member, offset_bytes, bytes) in writes {
                out.push(MetadataWrite {
                    member,
                    offset_bytes,
                    bytes,
                    phase,
                });
            }
        }
        assert!(out.len() > before, "every device gets its metadata");
        debug!(
            seq = self.seq,
            writes = out.len() - before,
            "metadata written"
        );
    }
}

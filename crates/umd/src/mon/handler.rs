//! The interface between `umd mon`'s monitor loop and a metadata format: what
//! mdadm calls the "superswitch" (protocol.md §6.3), reduced to what the
//! monitor needs.
//!
//! Why a trait: the monitor's ordering rules (record dirty before `active`,
//! failures before `-blocked`, engine clean before metadata clean; §6.2) are
//! the same for every external format, while what "dirty" or "failed" means
//! on disk is the format's business. A handler is sans-I/O: it is loaded from
//! bytes the caller read, it records state changes in memory, and
//! [`MetadataHandler::sync_metadata`] hands back the blocks to write. The
//! caller writes them and makes them durable before it acknowledges anything
//! to the engine, so a handler never decides when the disk is written.
//!
//! Naming: a *container* is the set of disks one metadata block describes; a
//! *subarray* is one array carved from it (a DDF virtual disk), numbered as
//! mdadm numbers them (`external:/<container>/<index>`); a *slot* is md's
//! role of a member within a subarray; a *disk* is an index into the
//! container's disk list, in the order the handler was loaded with.

use umd_engine::native::MetadataWrite;

/// md's `MaxSector`: a resync position meaning "in sync, nothing to resync".
pub const RESYNC_NONE: u64 = u64::MAX;

/// A member's state as the monitor read it from `dev-NAME/state` (mdadm's
/// `DS_*` bits, protocol.md §6.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskState {
    /// `faulty`.
    pub faulty: bool,
    /// `in_sync`.
    pub in_sync: bool,
    /// `write_mostly`.
    pub write_mostly: bool,
    /// `spare`.
    pub spare: bool,
    /// `blocked`.
    pub blocked: bool,
    /// `external_bbl`: the manager keeps this member's bad-block list.
    pub external_bbl: bool,
}

impl DiskState {
    /// Parses md's comma-separated `dev-*/state` value. Unknown words are
    /// ignored, as mdmon ignores them.
    #[must_use]
    pub fn parse(value: &str) -> DiskState {
        let mut s = DiskState::default();
        for word in value.trim().split(',') {
            match word {
                "faulty" => s.faulty = true,
                "in_sync" => s.in_sync = true,
                "write_mostly" => s.write_mostly = true,
                "spare" => s.spare = true,
                "blocked" => s.blocked = true,
                "external_bbl" => s.external_bbl = true,
                _ => {}
            }
        }
        s
    }
}

/// The `consistent` argument of mdadm's `set_array_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// 0: writes may be in flight; record the array dirty.
    Dirty,
    /// 1: the engine reports clean; record the array consistent.
    Clean,
    /// 2: at assembly; the handler decides from what it knows (resync
    /// incomplete, degraded, migrating: dirty; else clean).
    Decide,
}

/// One subarray as the metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subarray {
    /// mdadm's subarray index (DDF: the virtual disk's entry in the VD table).
    pub index: u32,
    /// The array's name in the metadata (may be empty).
    pub name: String,
    /// md level number.
    pub level: i32,
    /// Number of slots.
    pub raid_disks: u32,
    /// `slot_disks[slot]`: the container disk in that slot, `None` if missing.
    pub slot_disks: Vec<Option<usize>>,
    /// Whether the metadata records the array consistent (clean).
    pub consistent: bool,
    /// Where a resync must start, or [`RESYNC_NONE`].
    pub resync_start: u64,
}

/// A spare the handler chose for a missing slot (mdadm's `activate_spare`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpareAssignment {
    /// The container disk to add.
    pub disk: usize,
    /// The slot it fills.
    pub slot: u32,
    /// Where the subarray's data starts on that disk.
    pub data_offset_sectors: u64,
    /// Usable sectors from there.
    pub size_sectors: u64,
}

/// A metadata format as the monitor drives it. Every method only changes the
/// handler's memory; nothing reaches a disk until the caller writes what
/// [`MetadataHandler::sync_metadata`] returns.
pub trait MetadataHandler: Send {
    /// The format's name as in `metadata_version` (`external:<name>`): `"ddf"`.
    fn format(&self) -> &'static str;

    /// The container's subarrays, in index order.
    fn subarrays(&self) -> Vec<Subarray>;

    /// mdadm's `set_array_state`: record `consistent` for subarray `index`,
    /// with the engine's current resync position (`resync_start`, or
    /// [`RESYNC_NONE`]; a position below the end means the array is not
    /// consistent whatever `consistent` says). Returns whether the metadata
    /// now records the subarray clean. Unknown `index`: returns `false` and
    /// records nothing.
    fn set_array_state(&mut self, index: u32, consistent: Consistency, resync_start: u64) -> bool;

    /// mdadm's `set_disk`: the member in `slot` of subarray `index` changed
    /// to `state` (failed, rebuilt). Updates the disk's and the subarray's
    /// recorded state (DDF: PD state, VD optimal/degraded/failed).
    fn set_disk(&mut self, index: u32, slot: u32, state: DiskState);

    /// mdadm's `activate_spare`: for each slot in `missing`, choose a spare
    /// disk of the container with room, and record it in the metadata as
    /// rebuilding into that slot. Returns what was chosen (possibly nothing).
    fn activate_spare(&mut self, index: u32, missing: &[u32]) -> Vec<SpareAssignment>;

    /// A disk given to the container while it runs (mdadm `--add` to a
    /// container): `read` reads the device of `dev_bytes` bytes, `name`
    /// names it in messages, `seed` draws its identifiers. A blank disk is
    /// recorded as a global spare of the container (written with the next
    /// [`MetadataHandler::sync_metadata`], to it and every other disk) and
    /// gets the next disk index; a disk holding any RAID metadata is
    /// refused, naming what it holds, so nothing on it is overwritten.
    fn add_disk(
        &mut self,
        name: &str,
        dev_bytes: u64,
        read: &mut umd_formats::probe::ReadAt<'_>,
        seed: u64,
    ) -> Result<usize, String>;

    /// mdadm's `sync_metadata`: the blocks to write so the disks hold what
    /// was recorded since the last call (`member` = container disk index),
    /// or nothing if nothing changed. The caller writes them all and makes
    /// them durable before acknowledging anything to the engine.
    fn sync_metadata(&mut self, out: &mut Vec<MetadataWrite>);
}

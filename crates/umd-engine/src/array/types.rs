//! The shapes the array core is configured with and reports through:
//! what the host assembled ([`ArrayConfig`]), what it must do
//! ([`ArrayEvent`]) and what a native superblock write records
//! ([`SuperblockState`]).
//!
//! Why apart from `array.rs`: these are the contract between the engine and
//! its host, read by both sides; `array.rs` holds the behaviour.

use crate::array::SyncAction;
use crate::member::MemberHealth;
use crate::time::Duration;

/// Who owns the array's metadata (md's `persistent` / `external`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataKind {
    /// md writes its own superblocks: `"0.90"`, `"1.0"`, `"1.1"`, `"1.2"`.
    Native {
        /// `metadata_version` as shown.
        version: String,
    },
    /// A metadata manager owns the metadata (`external:<name>`).
    External {
        /// What follows `external:`.
        name: String,
    },
    /// No metadata at all.
    None,
}

/// One member as the host assembled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// Name used in `dev-NAME/...`.
    pub name: String,
    /// Role, or `None` for a spare.
    pub slot: Option<u32>,
    /// Start of array data on the member.
    pub data_offset_sectors: u64,
    /// Usable size on the member.
    pub size_sectors: u64,
    /// Fully in sync.
    pub in_sync: bool,
    /// Failed.
    pub faulty: bool,
    /// md `WriteMostly`.
    pub write_mostly: bool,
    /// Recovery checkpoint of a slotted member that is not in sync.
    pub recovery_offset_sectors: Option<u64>,
    /// md's `Replacement`: the replacement of the member in `slot`
    /// (recovering; it holds the slot once whole).
    pub replacement: bool,
}

impl MemberConfig {
    /// A spare named `name` whose data lies at `data_offset_sectors` for
    /// `size_sectors` (0 and 0: not placed yet, as an external manager
    /// places it after adding it).
    #[must_use]
    pub fn spare(name: String, data_offset_sectors: u64, size_sectors: u64) -> Self {
        Self {
            name,
            slot: None,
            data_offset_sectors,
            size_sectors,
            in_sync: false,
            faulty: false,
            write_mostly: false,
            recovery_offset_sectors: None,
            replacement: false,
        }
    }
}

/// The write-intent bitmap's attributes (`bitmap/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapConfig {
    /// `bitmap/chunksize`, bytes.
    pub chunk_bytes: u64,
    /// `bitmap/location`, e.g. `"+8"`, `"none"`, `"file"`.
    pub location: String,
    /// `bitmap/time_base` (md's `daemon_sleep`), seconds.
    pub time_base_seconds: u64,
    /// `bitmap/backlog` (md's `max_write_behind`).
    pub backlog: u64,
    /// `bitmap/max_backlog_used`.
    pub max_backlog_used: u64,
    /// `bitmap/space`, sectors available for the bitmap.
    pub space_sectors: u64,
    /// `bitmap/metadata`: `true` = `external`, else `internal`.
    pub external: bool,
    /// `bitmap/can_clear`: `false` when md's `need_sync` is set.
    pub can_clear: bool,
}

/// Everything the host knows when it creates the array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayConfig {
    /// md level number (`-1` linear, 0, 1, 4, 5, 6, 10).
    pub level: i32,
    /// Number of slots.
    pub raid_disks: u32,
    /// Chunk size.
    pub chunk_sectors: u32,
    /// Level-specific layout number.
    pub layout: u32,
    /// Used size of each member (md's `dev_sectors`).
    pub component_sectors: u64,
    /// Size of the array.
    pub array_sectors: u64,
    /// Metadata owner.
    pub metadata: MetadataKind,
    /// The members.
    pub members: Vec<MemberConfig>,
    /// Resync checkpoint; `None` = in sync.
    pub resync_start: Option<u64>,
    /// The bitmap, if any.
    pub bitmap: Option<BitmapConfig>,
    /// `safe_mode_delay`; zero disables safe mode.
    pub safe_mode_delay: Duration,
    /// `stripe_cache_size` (raid4/5/6).
    pub stripe_cache_size: u32,
}

/// What the array asks of its host; drain with [`Array::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrayEvent {
    /// A pollable attribute changed (`"array_state"`, `"dev-sdb/state"`).
    Notify(String),
    /// Native metadata: write every member's superblock from
    /// [`Array::superblock_state`], then call [`Array::superblock_written`]
    /// with the state written.
    UpdateSuperblock,
    /// Start this sync, then report with `sync_started`/`sync_progress`.
    StartSync(SyncAction),
    /// Abort the running sync; the engine already recorded its checkpoint.
    StopSync,
    /// The array stopped; `keep_config: false` means the members were released.
    Stop {
        /// Whether the configuration survives (`inactive`) or was wiped (`clear`).
        keep_config: bool,
    },
    /// Resize the stripe cache to this many entries.
    StripeCacheResize(u32),
    /// A write to `array_state` started the array.
    Run,
    /// A member was failed.
    MemberFailed {
        /// Its name.
        name: String,
    },
    /// A member left the array (`dev-NAME/state` `remove`).
    MemberRemoved {
        /// Its name.
        name: String,
    },
    /// A spare took a slot and starts recovering into it: from now on
    /// writes reach it, reads of it wait for the recovery.
    MemberActivated {
        /// Its name.
        name: String,
        /// The slot (role) it fills.
        slot: u32,
        /// Where the array data starts on it.
        data_offset_sectors: u64,
        /// Below this it already holds current data.
        recovery_offset_sectors: u64,
        /// It fills the slot as the replacement of the member there (md's
        /// hot replace): written with the slot, never read. False also
        /// when a replacement takes over the slot of a member that failed.
        replacement: bool,
    },
    /// A recovering member finished: it is in sync and may be read.
    MemberInSync {
        /// Its name.
        name: String,
        /// Its slot.
        slot: u32,
        /// It was the slot's replacement and now holds the slot; this is
        /// the member it replaced, failed from now on.
        replaced: Option<String>,
    },
}

/// What a native superblock write must record now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperblockState {
    /// Clean: `in_sync` and no resync pending.
    pub clean: bool,
    /// md's `in_sync`: no write pending since the last clean mark (the
    /// superblock then records `resync_offset_sectors`, else 0: dirty).
    pub in_sync: bool,
    /// md's `recovery_cp`; [`MAX_SECTOR`] when in sync.
    pub resync_offset_sectors: u64,
    /// Members with `Faulty` set.
    pub faulty_members: Vec<String>,
    /// Per member (name, slot, in sync, recovery offset), in member order.
    pub member_roles: Vec<(String, Option<u32>, MemberHealth)>,
    /// Number of missing or failed slots.
    pub degraded: u32,
}

impl SuperblockState {
    /// Whether superblocks written from `written` record what this state
    /// must: the clean and dirty state, the failed members and every
    /// member's slot.
    /// Checkpoints (`resync_offset`, recovery offsets) may lag: an older
    /// checkpoint only means more is synced again after a crash.
    #[must_use]
    pub fn records_as(&self, written: &SuperblockState) -> bool {
        let slots = |s: &SuperblockState| {
            s.member_roles
                .iter()
                .map(|(name, slot, _)| (name.clone(), *slot))
                .collect::<Vec<_>>()
        };
        self.clean == written.clean
            && self.in_sync == written.in_sync
            && self.faulty_members == written.faulty_members
            && slots(self) == slots(written)
    }
}

//! `MdInfo`: what one member's metadata says, reduced to one shape for every format.
//!
//! This is umd's counterpart of mdadm's `getinfo_super`: assembly compares
//! members through it and never looks at format-specific structures. A device
//! carrying DDF metadata with several virtual disks yields one `MdInfo` per
//! virtual disk it takes part in.
//!
//! Units: every offset and size is in 512-byte sectors (`_sectors`), whatever
//! the format stores (0.90 stores KiB and bytes, DDF stores blocks).

use serde::Serialize;
use std::fmt;

/// Which metadata format a member carries. Serialised as mdadm's name for
/// it: "0.90", "1.0", "1.1", "1.2" or "ddf".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataFormat {
    /// md superblock 0.90 (host-endian; `big_endian` records a byte-swapped one).
    V0_90 {
        /// The superblock was written by a big-endian host.
        big_endian: bool,
    },
    /// md superblock 1.x; the minor (0, 1, 2) is where it was found.
    V1 {
        /// 0: at the end, 1: at sector 0, 2: at sector 8.
        minor: u8,
    },
    /// SNIA DDF, as mdadm writes it (external metadata).
    Ddf,
}

impl fmt::Display for MetadataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V0_90 { .. } => write!(f, "0.90"),
            Self::V1 { minor } => write!(f, "1.{minor}"),
            Self::Ddf => write!(f, "ddf"),
        }
    }
}

/// An array UUID: 16 raw bytes in stored order (formats.md §1.4, §2.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArrayUuid(pub [u8; 16]);

impl fmt::Display for ArrayUuid {
    /// mdadm's text form: four groups of 8 hex digits joined by ':'.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                write!(f, ":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for MetadataFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for ArrayUuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a superblock says one device is doing in the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SlotState {
    /// Holds data slot `role` (0..raid_disks). If `recovery_offset_sectors` is
    /// set, the device is valid only below that many sectors from its data
    /// offset (a rebuild was in progress).
    Active {
        /// The data slot, 0..raid_disks.
        role: u32,
        /// Valid below this many sectors (1.x feature bit 1); `None` = fully in sync.
        recovery_offset_sectors: Option<u64>,
    },
    /// A spare: holds no data.
    Spare,
    /// Marked faulty: its content must not be trusted.
    Faulty,
    /// A raid4/5/6 write-journal device.
    Journal,
}

/// One entry of a superblock's roster: its view of another device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RosterEntry {
    /// The device's permanent identity: 1.x dev_number, 0.90 descriptor
    /// number, DDF physical-disk refnum.
    pub dev_id: u32,
    /// What this superblock says that device is.
    pub slot: SlotState,
}

/// Reshape in progress (1.x feature bit 2, 0.90 minor 91; formats.md §2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReshapeInfo {
    /// Array sector the reshape has reached.
    pub position_sectors: u64,
    /// Level after the reshape.
    pub new_level: i32,
    /// Layout after the reshape.
    pub new_layout: u32,
    /// Chunk after the reshape, sectors.
    pub new_chunk_sectors: u32,
    /// New minus old raid_disks (`raid_disks` in [`ArraySide`] is the NEW count).
    pub delta_disks: i32,
    /// Sectors added to data_offset in the new geometry (1.x bit 6), else 0.
    pub new_offset_sectors: i64,
    /// The reshape runs from the end (1.x bit 5, or delta_disks < 0).
    pub backwards: bool,
}

/// Where an internal write-intent bitmap lives, relative to the device start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BitmapLocation {
    /// Absolute device sector of the bitmap superblock.
    pub sector: u64,
    /// Sectors available for it, if the format says (0.90: 120 = 60 KiB).
    pub reserved_sectors: Option<u64>,
}

/// The array as one member's metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArraySide {
    /// Array UUID (DDF: derived from the virtual disk GUID as mdadm does).
    pub uuid: ArrayUuid,
    /// Array name ("homehost:name" for 1.x, VD name for DDF, empty for 0.90).
    pub name: String,
    /// md level: -1 linear, 0, 1, 4, 5, 6, 10 (also -4 multipath, -5 faulty: refused later).
    pub level: i32,
    /// md layout number for the level (formats.md §4).
    pub layout: u32,
    /// Chunk size in sectors (0 where the level has none).
    pub chunk_sectors: u32,
    /// Number of data slots (during reshape: the new count).
    pub raid_disks: u32,
    /// Sectors used on each member for redundant levels (md's dev_sectors,
    /// 1.x `size`, 0.90 `size` x 2); 0 for raid0/linear.
    pub component_sectors: u64,
    /// The array's length if the format records it (DDF array_blocks);
    /// md formats leave it to the layout.
    pub array_sectors: Option<u64>,
    /// Update counter: the highest among non-spares is freshest (formats.md §2.7).
    pub events: u64,
    /// The metadata says the array was shut down cleanly.
    pub clean: bool,
    /// Resync checkpoint; `u64::MAX` = in sync.
    pub resync_offset_sectors: u64,
    /// Reshape in progress, if any.
    pub reshape: Option<ReshapeInfo>,
    /// raid0 only: whether the layout field is meaningful (1.x RAID0_LAYOUT bit).
    pub raid0_layout_recorded: bool,
    /// Internal write-intent bitmap, if present.
    pub bitmap: Option<BitmapLocation>,
    /// This superblock's view of every device it knows, by dev_id.
    pub roster: Vec<RosterEntry>,
}

/// The device itself, as its own metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSide {
    /// Permanent identity within the array (see [`RosterEntry::dev_id`]).
    pub dev_id: u32,
    /// What this device is, according to its own superblock.
    pub slot: SlotState,
    /// Device sector where array data starts.
    pub data_offset_sectors: u64,
    /// Sectors usable for data from `data_offset_sectors` (1.x data_size;
    /// 0.90: the superblock start; DDF: blocks per member).
    pub data_sectors: u64,
    /// Device sector of the metadata that was parsed.
    pub super_offset_sectors: u64,
    /// Per-device UUID where the format has one.
    pub device_uuid: Option<[u8; 16]>,
    /// md's hot replace (1.x `MD_FEATURE_REPLACEMENT`): the device is being
    /// filled as the replacement of the one holding the same role.
    pub replacement: bool,
}

/// Everything assembly needs from one member for one array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MdInfo {
    /// The metadata format found.
    pub format: MetadataFormat,
    /// The array side.
    pub array: ArraySide,
    /// The device side.
    pub device: DeviceSide,
}

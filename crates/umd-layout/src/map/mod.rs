//! Per-level mapping functions (one file per level) and the dispatch between them.
//!
//! Each level's type is built once from a [`GeometrySpec`] by [`LevelMap::new`],
//! which performs every check md makes for that level (formats.md §4) and
//! precomputes what the per-sector functions need, so `locate`, `stripe_layout`
//! and `reverse` never validate and never allocate.

mod linear;
mod raid0;
mod raid1;
mod raid10;
mod raid456;

use crate::geometry::{Copy, Extent, GeometrySpec, LayoutError, Level, Raid0Layout, StripeLayout};

/// Smallest chunk md accepts for striped redundant levels and raid0: 4 KiB in
/// sectors (formats.md §4.4 "multiple of 4 KiB"; md checks against PAGE_SIZE).
pub(crate) const CHUNK_SECTORS_MIN: u32 = 8;

/// Most roles a v1.x superblock can describe: (4096 - 256) / 2 dev_roles
/// entries (formats.md §2.3; md refuses a larger max_dev). Bounds every loop
/// over roles.
pub(crate) const RAID_DISKS_MAX: u32 = 1920;

const _: () = assert!(CHUNK_SECTORS_MIN.is_power_of_two());
const _: () = assert!(RAID_DISKS_MAX == (4096 - 256) / 2);

/// Refuse a chunk that is not a power of two of at least 4 KiB (raid4/5/6/10).
pub(crate) fn check_chunk_pow2(chunk_sectors: u32) -> Result<u64, LayoutError> {
    if chunk_sectors < CHUNK_SECTORS_MIN || !chunk_sectors.is_power_of_two() {
        return Err(LayoutError::BadChunk(chunk_sectors));
    }
    Ok(u64::from(chunk_sectors))
}

/// Refuse a raid_disks count outside `min..=RAID_DISKS_MAX`.
pub(crate) fn check_disks(raid_disks: u32, min: u32) -> Result<u32, LayoutError> {
    if raid_disks < min || raid_disks > RAID_DISKS_MAX {
        return Err(LayoutError::BadDiskCount(raid_disks));
    }
    Ok(raid_disks)
}

/// `member_sectors` must name every role exactly once (linear, raid0).
pub(crate) fn check_member_count(spec: &GeometrySpec) -> Result<(), LayoutError> {
    if spec.member_sectors.len() != spec.raid_disks as usize {
        return Err(LayoutError::BadMemberSize(
            "member_sectors length is not raid_disks",
        ));
    }
    Ok(())
}

/// One level's validated map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LevelMap {
    /// formats.md §4.1.
    Linear(linear::Linear),
    /// formats.md §4.2.
    Raid0(raid0::Raid0),
    /// formats.md §4.3.
    Raid1(raid1::Raid1),
    /// formats.md §4.4 and §4.5.
    Raid456(raid456::Raid456),
    /// formats.md §4.6.
    Raid10(raid10::Raid10),
}

impl LevelMap {
    /// Validate `spec` for `level` and precompute its map.
    pub(crate) fn new(level: Level, spec: &GeometrySpec) -> Result<Self, LayoutError> {
        Ok(match level {
            Level::Linear => Self::Linear(linear::Linear::new(spec)?),
            Level::Raid0 => Self::Raid0(raid0::Raid0::new(spec)?),
            Level::Raid1 => Self::Raid1(raid1::Raid1::new(spec)?),
            Level::Raid4 | Level::Raid5 | Level::Raid6 => {
                Self::Raid456(raid456::Raid456::new(level, spec)?)
            }
            Level::Raid10 => Self::Raid10(raid10::Raid10::new(spec)?),
        })
    }

    /// The array's length in sectors.
    pub(crate) fn array_sectors(&self) -> u64 {
        match self {
            Self::Linear(m) => m.array_sectors(),
            Self::Raid0(m) => m.array_sectors(),
            Self::Raid1(m) => m.array_sectors(),
            Self::Raid456(m) => m.array_sectors(),
            Self::Raid10(m) => m.array_sectors(),
        }
    }

    /// See [`crate::Geometry::locate`]; `sector` is already checked in range.
    pub(crate) fn locate(&self, sector: u64, copies: &mut Vec<Copy>) -> Extent {
        copies.clear();
        match self {
            Self::Linear(m) => m.locate(sector),
            Self::Raid0(m) => m.locate(sector),
            Self::Raid1(m) => m.locate(sector, copies),
            Self::Raid456(m) => m.locate(sector),
            Self::Raid10(m) => m.locate(sector, copies),
        }
    }

    /// See [`crate::Geometry::stripe_layout`].
    pub(crate) fn stripe_layout(&self, stripe: u64, out: &mut StripeLayout) {
        match self {
            Self::Raid456(m) => m.stripe_layout(stripe, out),
            _ => panic!("stripe_layout called on a level without parity"),
        }
    }

    /// See [`crate::Geometry::reverse`]; `copy.role` is already checked.
    pub(crate) fn reverse(&self, copy: Copy) -> Option<u64> {
        match self {
            Self::Linear(m) => m.reverse(copy),
            Self::Raid0(m) => m.reverse(copy),
            Self::Raid1(m) => m.reverse(copy),
            Self::Raid456(m) => m.reverse(copy),
            Self::Raid10(m) => m.reverse(copy),
        }
    }

    /// Sectors from the start of member `role` that the mapping may use.
    pub(crate) fn member_used_sectors(&self, role: u32) -> u64 {
        match self {
            Self::Linear(m) => m.member_sectors(role),
            Self::Raid0(m) => m.member_sectors(role),
            Self::Raid1(m) => m.array_sectors(),
            Self::Raid456(m) => m.component_sectors(),
            Self::Raid10(m) => m.used_sectors(),
        }
    }

    /// How many members hold each logical sector.
    pub(crate) fn copies(&self) -> u32 {
        match self {
            Self::Linear(_) | Self::Raid0(_) | Self::Raid456(_) => 1,
            Self::Raid1(m) => m.raid_disks(),
            Self::Raid10(m) => m.copies(),
        }
    }

    /// The raid0 layout in force (after md's selection rule), if raid0.
    pub(crate) fn raid0_layout(&self) -> Option<Raid0Layout> {
        match self {
            Self::Raid0(m) => Some(m.layout()),
            _ => None,
        }
    }
}

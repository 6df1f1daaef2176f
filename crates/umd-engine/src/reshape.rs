//! Reshape: an array between two geometries (md's data-offset method).
//!
//! While md reshapes a raid4/5/6 array, each member's superblock records
//! `reshape_position` (an array sector), the old shape (`layout`,
//! `chunksize`, `raid_disks - delta_disks`) and the new one (`new_layout`,
//! `new_chunk`, `raid_disks`), and the member's new data offset
//! (`data_offset + new_offset`). A forward reshape has already moved the
//! array sectors below `reshape_position` to the new shape at the new data
//! offsets; the sectors at or above it are still where the old shape put
//! them. A backward reshape (delta_disks < 0, or the BACKWARDS bit) is the
//! mirror image: the new shape holds the sectors at or above the position
//! (formats.md §2.8).
//!
//! Moving the data to a new offset is what makes the reshape crash safe
//! without a backup file: the copy of a stripe lands in space that no
//! unreshaped stripe occupies, so the old copy survives until the
//! superblocks record that the stripe moved (see `reshape/copy.rs`).
//!
//! This module is sans-I/O: [`Reshape`] answers which shape holds an array
//! sector, [`ArrayReadPlanner`] reads through both, and
//! [`copy::CopyPlanner`] plans the moves.

pub mod copy;
pub mod drive;
mod read;
pub mod superblocks;

pub use read::ArrayReadPlanner;

use umd_layout::geometry::Geometry;

/// Which shape holds an array sector during a reshape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Not reshaped yet: the old geometry at the old data offsets.
    Old,
    /// Already reshaped: the new geometry at the new data offsets.
    New,
}

/// A reshape in progress, as the freshest superblock records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reshape {
    /// The shape before the reshape (`raid_disks - delta_disks` roles).
    pub old: Geometry,
    /// The shape after it (`raid_disks` roles).
    pub new: Geometry,
    /// Array sector the reshape has reached (md's `reshape_position`).
    pub position_sectors: u64,
    /// The reshape runs from the end towards sector 0.
    pub backwards: bool,
}

impl Reshape {
    /// The array's length while the reshape runs: md's `raid5_size` takes the
    /// component rounded to both chunks times the smaller number of data
    /// members, so neither side maps past its end.
    #[must_use]
    pub fn array_sectors(&self) -> u64 {
        let component = self
            .old
            .member_used_sectors(0)
            .min(self.new.member_used_sectors(0));
        let data = |g: &Geometry| u64::from(g.raid_disks() - g.level().parity_members());
        component * data(&self.old).min(data(&self.new))
    }

    /// Which shape holds `sector`.
    #[must_use]
    pub fn side(&self, sector: u64) -> Side {
        match (self.backwards, sector < self.position_sectors) {
            (false, true) | (true, false) => Side::New,
            _ => Side::Old,
        }
    }

    /// How many sectors from `sector` stay on the same side (at most `max`).
    #[must_use]
    pub fn same_side_len(&self, sector: u64, max: u64) -> u64 {
        if sector < self.position_sectors {
            max.min(self.position_sectors - sector)
        } else {
            max
        }
    }
}

#[cfg(test)]
mod tests;

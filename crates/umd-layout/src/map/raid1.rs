//! raid1: every role holds the whole array at the same member sector.
//!
//! formats.md §4.3. The array size is md's per-device `size`; the chunk is
//! meaningless and ignored. Which copy to read is the engine's choice.

use super::check_disks;
use crate::geometry::{Copy, Extent, GeometrySpec, LayoutError, Target};

/// A validated raid1 map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raid1 {
    raid_disks: u32,
    size_sectors: u64,
}

impl Raid1 {
    /// Validate raid_disks (>= 1) and a non-empty component size.
    pub(crate) fn new(spec: &GeometrySpec) -> Result<Self, LayoutError> {
        let raid_disks = check_disks(spec.raid_disks, 1)?;
        if spec.component_sectors == 0 {
            return Err(LayoutError::BadMemberSize("component size is zero"));
        }
        Ok(Self {
            raid_disks,
            size_sectors: spec.component_sectors,
        })
    }

    pub(crate) fn array_sectors(&self) -> u64 {
        self.size_sectors
    }

    pub(crate) fn raid_disks(&self) -> u32 {
        self.raid_disks
    }

    pub(crate) fn locate(&self, sector: u64, copies: &mut Vec<Copy>) -> Extent {
        assert!(sector < self.size_sectors);
        copies.extend((0..self.raid_disks).map(|role| Copy {
            role,
            dev_sector: sector,
        }));
        assert_eq!(copies.len(), self.raid_disks as usize);
        Extent {
            len_sectors: self.size_sectors - sector,
            target: Target::Mirrored,
        }
    }

    pub(crate) fn reverse(&self, copy: Copy) -> Option<u64> {
        (copy.dev_sector < self.size_sectors).then_some(copy.dev_sector)
    }
}

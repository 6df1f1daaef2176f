//! linear (md level -1): the members' usable sizes concatenated in role order.
//!
//! formats.md §4.1. Each member contributes its size rounded down to the chunk
//! when a chunk is set (mdadm's `--rounding`). Owns the invariant that
//! `starts` is strictly increasing, so every logical sector has one member.

use super::{check_disks, check_member_count};
use crate::geometry::{Copy, Extent, GeometrySpec, LayoutError, Target};

/// A validated linear map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Linear {
    /// `starts[r]` = first array sector on role r; `starts[n]` = array size.
    starts: Vec<u64>,
}

impl Linear {
    /// Validate and precompute member start sectors.
    pub(crate) fn new(spec: &GeometrySpec) -> Result<Self, LayoutError> {
        check_disks(spec.raid_disks, 1)?;
        check_member_count(spec)?;
        let chunk = u64::from(spec.chunk_sectors);
        let mut starts = Vec::with_capacity(spec.member_sectors.len() + 1);
        let mut at = 0u64;
        starts.push(at);
        for &size in &spec.member_sectors {
            let size = if chunk == 0 {
                size
            } else {
                size - size % chunk
            };
            if size == 0 {
                return Err(LayoutError::BadMemberSize(
                    "a linear member is smaller than a chunk",
                ));
            }
            at = at
                .checked_add(size)
                .ok_or(LayoutError::BadMemberSize("array size overflows"))?;
            starts.push(at);
        }
        assert_eq!(starts.len(), spec.raid_disks as usize + 1);
        assert!(
            starts.windows(2).all(|w| w[0] < w[1]),
            "linear members are non-empty"
        );
        Ok(Self { starts })
    }

    pub(crate) fn array_sectors(&self) -> u64 {
        *self
            .starts
            .last()
            .expect("starts holds raid_disks + 1 >= 2 entries")
    }

    pub(crate) fn member_sectors(&self, role: u32) -> u64 {
        let r = role as usize;
        self.starts[r + 1] - self.starts[r]
    }

    pub(crate) fn locate(&self, sector: u64) -> Extent {
        // starts[0] == 0 <= sector, so the partition point is at least 1.
        let role = self.starts.partition_point(|&s| s <= sector) - 1;
        assert!(
            role + 1 < self.starts.len(),
            "sector {sector} beyond the array"
        );
        let dev_sector = sector - self.starts[role];
        Extent {
            len_sectors: self.starts[role + 1] - sector,
            target: Target::Single(Copy {
                role: role as u32,
                dev_sector,
            }),
        }
    }

    pub(crate) fn reverse(&self, copy: Copy) -> Option<u64> {
        if copy.dev_sector >= self.member_sectors(copy.role) {
            return None;
        }
        Some(self.starts[copy.role as usize] + copy.dev_sector)
    }
}

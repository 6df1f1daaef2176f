//! raid0: striping over zones of equal-sized member ranges.
//!
//! formats.md §4.2. Members are rounded down to the chunk; each distinct
//! rounded size ends a zone, and a zone stripes over the members that reach
//! it. Within a later zone the member index comes either from the absolute
//! array sector (ORIG, layout 1) or from the zone-relative one (ALT_MULTIZONE,
//! layout 2); md's selection rule, applied in `new`, decides which is in force,
//! and refuses to guess when the metadata does not say (R17).

use super::{check_disks, check_member_count, CHUNK_SECTORS_MIN};
use crate::geometry::{Copy, Extent, GeometrySpec, LayoutError, Raid0Layout, Target};

/// One zone: a range of member sectors striped over `roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    /// First array sector of the zone.
    array_start: u64,
    /// Array sectors in the zone.
    array_len: u64,
    /// First member sector of the zone (same on every member in it).
    dev_start: u64,
    /// Roles striped over, ascending.
    roles: Vec<u32>,
}

/// A validated raid0 map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raid0 {
    chunk_sectors: u64,
    layout: Raid0Layout,
    /// Each role's size rounded down to the chunk.
    member_sectors: Vec<u64>,
    zones: Vec<Zone>,
}

impl Raid0 {
    /// Validate the chunk (non-zero multiple of 4 KiB), members, build zones
    /// and apply md's layout selection rule.
    pub(crate) fn new(spec: &GeometrySpec) -> Result<Self, LayoutError> {
        check_disks(spec.raid_disks, 1)?;
        check_member_count(spec)?;
        let chunk = spec.chunk_sectors;
        if chunk == 0 || !chunk.is_multiple_of(CHUNK_SECTORS_MIN) {
            return Err(LayoutError::BadChunk(chunk));
        }
        let chunk = u64::from(chunk);
        let member_sectors: Vec<u64> = spec.member_sectors.iter().map(|s| s - s % chunk).collect();
        if member_sectors.contains(&0) {
            return Err(LayoutError::BadMemberSize(
                "a raid0 member is smaller than a chunk",
            ));
        }
        let zones = build_zones(&member_sectors)?;
        // One zone, or a second zone with one member (and so every later zone):
        // both layouts place every sector identically, md uses ORIG.
        let layout = if zones.len() == 1 || zones[1].roles.len() == 1 {
            Raid0Layout::Original
        } else {
            spec.raid0_layout.ok_or(LayoutError::Raid0LayoutUnknown)?
        };
        let map = Self {
            chunk_sectors: chunk,
            layout,
            member_sectors,
            zones,
        };
        assert!(
            map.zones.iter().all(|z| z.array_len % chunk == 0),
            "zones are chunk-aligned"
        );
        Ok(map)
    }

    pub(crate) fn array_sectors(&self) -> u64 {
        let last = self.zones.last().expect("a raid0 has at least one zone");
        last.array_start + last.array_len
    }

    pub(crate) fn member_sectors(&self, role: u32) -> u64 {
        self.member_sectors[role as usize]
    }

    pub(crate) fn layout(&self) -> Raid0Layout {
        self.layout
    }

    pub(crate) fn locate(&self, sector: u64) -> Extent {
        let zone = self
            .zones
            .iter()
            .find(|z| sector < z.array_start + z.array_len)
            .expect("sector is below array_sectors, so some zone holds it");
        let chunk = self.chunk_sectors;
        let members = zone.roles.len() as u64;
        let rel = sector - zone.array_start;
        let in_chunk = sector % chunk;
        // array_start is a chunk multiple, so the offset in the chunk agrees.
        assert_eq!(in_chunk, rel % chunk);
        let index_base = match self.layout {
            Raid0Layout::Original => sector,
            Raid0Layout::AlternateMultizone => rel,
        };
        let index = (index_base / chunk) % members;
        let dev_sector = zone.dev_start + (rel / (chunk * members)) * chunk + in_chunk;
        Extent {
            len_sectors: chunk - in_chunk,
            target: Target::Single(Copy {
                role: zone.roles[index as usize],
                dev_sector,
            }),
        }
    }

    pub(crate) fn reverse(&self, copy: Copy) -> Option<u64> {
        if copy.dev_sector >= self.member_sectors(copy.role) {
            return None;
        }
        let chunk = self.chunk_sectors;
        // The last zone holding this role whose start is at or below the sector.
        let zone = self
            .zones
            .iter()
            .rev()
            .find(|z| z.dev_start <= copy.dev_sector && z.roles.contains(&copy.role))?;
        let members = zone.roles.len() as u64;
        let pos = zone.roles.iter().position(|&r| r == copy.role)? as u64;
        let rel_dev = copy.dev_sector - zone.dev_start;
        let row = rel_dev / chunk;
        let in_chunk = rel_dev % chunk;
        let zone_chunk = match self.layout {
            Raid0Layout::AlternateMultizone => row * members + pos,
            Raid0Layout::Original => {
                // Solve (array_start / C + row * m + i) mod m == pos for i.
                let first = zone.array_start / chunk;
                row * members + (pos + members - first % members) % members
            }
        };
        let sector = zone.array_start + zone_chunk * chunk + in_chunk;
        assert!(
            sector < zone.array_start + zone.array_len,
            "reverse stays in its zone"
        );
        Some(sector)
    }
}

/// Zones from the rounded member sizes (formats.md §4.2).
fn build_zones(member_sectors: &[u64]) -> Result<Vec<Zone>, LayoutError> {
    let mut ends: Vec<u64> = member_sectors.to_vec();
    ends.sort_unstable();
    ends.dedup();
    let mut zones = Vec::with_capacity(ends.len());
    let mut dev_start = 0u64;
    let mut array_start = 0u64;
    for &end in &ends {
        let roles: Vec<u32> = (0..member_sectors.len() as u32)
            .filter(|&r| member_sectors[r as usize] >= end)
            .collect();
        assert!(
            !roles.is_empty(),
            "the member defining a zone end is in the zone"
        );
        let array_len = (end - dev_start)
            .checked_mul(roles.len() as u64)
            .ok_or(LayoutError::BadMemberSize("array size overflows"))?;
        zones.push(Zone {
            array_start,
            array_len,
            dev_start,
            roles,
        });
        array_start = array_start
            .checked_add(array_len)
            .ok_or(LayoutError::BadMemberSize("array size overflows"))?;
        dev_start = end;
    }
    assert_eq!(
        zones[0].roles.len(),
        member_sectors.len(),
        "zone 0 holds every member"
    );
    Ok(zones)
}

//! raid10: near, far and offset copies of raid0-like chunks.
//!
//! formats.md §4.6. The layout word packs near copies (nc), far copies (fc),
//! the offset flag and the far-set selector. Chunk k occupies the nc
//! consecutive "slots" k x nc .. k x nc + nc - 1 of a row-major grid of rows x
//! raid_disks; each near copy has fc - 1 far copies, each moved nc roles on
//! (inside its far set) and `stride` sectors down. `new` proves that no two
//! chunks share a sector: md's far move must be a permutation of roles, and
//! in the offset layout no chunk's near copies may wrap into the next row.
//! Some geometries md would accept break this, and they are refused (R17).

use super::{check_chunk_pow2, check_disks};
use crate::geometry::{Copy, Extent, GeometrySpec, LayoutError, Level, Target};

/// Near copies: layout bits 0-7 (formats.md §4.6; md `near_copies`).
const LAYOUT_NEAR_MASK: u32 = 0xff;
/// Far copies: layout bits 8-15 (md `far_copies`).
const LAYOUT_FAR_SHIFT: u32 = 8;
/// Mask of the far-copies byte after shifting.
const LAYOUT_FAR_MASK: u32 = 0xff;
/// Offset variant of far: layout bit 16 (md `far_offset`).
const LAYOUT_OFFSET_BIT: u32 = 1 << 16;
/// Far-set selector: layout bits 17-18 (md `use_far_sets`).
const LAYOUT_FAR_SET_SHIFT: u32 = 17;
/// Bits at and above 19 must be zero (md refuses otherwise).
const LAYOUT_RESERVED_SHIFT: u32 = 19;
/// Fewest copies md accepts.
const COPIES_MIN: u32 = 2;

/// A validated raid10 map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raid10 {
    raid_disks: u32,
    near_copies: u32,
    far_copies: u32,
    far_offset: bool,
    far_set_size: u32,
    /// First role of the last (possibly larger) far set.
    last_far_set_start: u32,
    /// Roles in the last far set.
    last_far_set_size: u32,
    chunk_sectors: u64,
    /// Distance in sectors between successive far copies.
    stride_sectors: u64,
    /// Chunks in the array.
    array_chunks: u64,
    /// Sectors at the start of every member the mapping can touch.
    used_sectors: u64,
}

impl Raid10 {
    /// Decode and check the layout word, chunk, copies and sizes.
    pub(crate) fn new(spec: &GeometrySpec) -> Result<Self, LayoutError> {
        let chunk_sectors = check_chunk_pow2(spec.chunk_sectors)?;
        let layout = spec.layout;
        let bad_layout = LayoutError::BadLayout {
            level: Level::Raid10,
            layout,
        };
        if layout >> LAYOUT_RESERVED_SHIFT != 0 {
            return Err(bad_layout);
        }
        let n = check_disks(spec.raid_disks, COPIES_MIN)?;
        let nc = layout & LAYOUT_NEAR_MASK;
        let fc = (layout >> LAYOUT_FAR_SHIFT) & LAYOUT_FAR_MASK;
        let far_offset = layout & LAYOUT_OFFSET_BIT != 0;
        let copies = nc * fc;
        if copies < COPIES_MIN || copies > n {
            return Err(LayoutError::BadDiskCount(n));
        }
        let far_set_size = match layout >> LAYOUT_FAR_SET_SHIFT {
            0 => n,
            1 => n / fc,
            2 => nc * fc,
            _ => return Err(bad_layout),
        };
        assert!(far_set_size >= 1 && far_set_size <= n);
        let last_far_set_start = (n / far_set_size - 1) * far_set_size;
        let mut map = Self {
            raid_disks: n,
            near_copies: nc,
            far_copies: fc,
            far_offset,
            far_set_size,
            last_far_set_start,
            last_far_set_size: far_set_size + n % far_set_size,
            chunk_sectors,
            stride_sectors: 0,
            array_chunks: 0,
            used_sectors: 0,
        };
        if !map.far_move_is_permutation() {
            return Err(bad_layout);
        }
        map.set_sizes(spec.component_sectors)?;
        if map.offset_copies_collide() {
            return Err(bad_layout);
        }
        Ok(map)
    }

    /// Array chunks, stride and used size (formats.md §4.6 "Sizes"; the
    /// division by far copies comes first, §8 pitfall 8).
    fn set_sizes(&mut self, component_sectors: u64) -> Result<(), LayoutError> {
        let (n, nc, fc) = (
            u64::from(self.raid_disks),
            u64::from(self.near_copies),
            u64::from(self.far_copies),
        );
        let chunk = self.chunk_sectors;
        let dev_chunks = component_sectors / chunk;
        let rows = dev_chunks / fc;
        let array_chunks = rows
            .checked_mul(n)
            .ok_or(LayoutError::BadMemberSize("array size overflows"))?
            / nc;
        if array_chunks == 0 {
            return Err(LayoutError::BadMemberSize(
                "component too small for the copies",
            ));
        }
        array_chunks
            .checked_mul(chunk * nc * fc)
            .ok_or(LayoutError::BadMemberSize("array size overflows"))?;
        let used_chunks = (array_chunks * nc * fc).div_ceil(n);
        let near_rows = (array_chunks * nc).div_ceil(n);
        self.array_chunks = array_chunks;
        if self.far_offset {
            self.stride_sectors = chunk;
            self.used_sectors = near_rows * fc * chunk;
        } else {
            self.stride_sectors = used_chunks / fc * chunk;
            self.used_sectors = fc * self.stride_sectors;
            assert!(
                near_rows * chunk <= self.stride_sectors,
                "far copies never overlap near ones"
            );
        }
        assert!(
            self.used_sectors <= dev_chunks * chunk,
            "the map stays inside the component"
        );
        Ok(())
    }

    pub(crate) fn array_sectors(&self) -> u64 {
        self.array_chunks * self.chunk_sectors
    }

    pub(crate) fn used_sectors(&self) -> u64 {
        self.used_sectors
    }

    pub(crate) fn copies(&self) -> u32 {
        self.near_copies * self.far_copies
    }

    /// Role of the next far copy after one on `prev`: md moves nc roles on,
    /// wrapping inside the far set; when raid_disks is not a multiple of the
    /// set size, md's test for "in the last set" is on the moved role, which
    /// is what decides the result (and why `new` checks for a permutation).
    fn next_far(&self, prev: u32) -> u32 {
        let set = prev / self.far_set_size;
        let moved = prev + self.near_copies;
        if !self.raid_disks.is_multiple_of(self.far_set_size) && moved > self.last_far_set_start {
            (moved - self.last_far_set_start) % self.last_far_set_size + self.last_far_set_start
        } else {
            moved % self.far_set_size + self.far_set_size * set
        }
    }

    fn far_move_is_permutation(&self) -> bool {
        if self.far_copies == 1 {
            return true;
        }
        let mut seen = vec![false; self.raid_disks as usize];
        for prev in 0..self.raid_disks {
            let next = self.next_far(prev) as usize;
            if next >= seen.len() || seen[next] {
                return false;
            }
            seen[next] = true;
        }
        true
    }

    /// In the offset layout a chunk's near copies that wrap past the last
    /// role move down one device row, which is where md puts the first far
    /// copies of that chunk row: md would store two chunks in one place.
    /// That happens exactly when some chunk's slots straddle a row end; the
    /// pattern of `k x nc mod n` repeats every n chunks, so n checks suffice.
    fn offset_copies_collide(&self) -> bool {
        if !self.far_offset || self.far_copies < 2 {
            return false;
        }
        let n = u64::from(self.raid_disks);
        let nc = u64::from(self.near_copies);
        (0..self.array_chunks.min(n)).any(|k| (k * nc) % n + nc > n)
    }

    pub(crate) fn locate(&self, sector: u64, copies: &mut Vec<Copy>) -> Extent {
        let n = u64::from(self.raid_disks);
        let chunk = self.chunk_sectors;
        let in_chunk = sector % chunk;
        let slot = (sector / chunk) * u64::from(self.near_copies);
        assert!(sector / chunk < self.array_chunks);
        let mut row = slot / n;
        let mut dev = (slot % n) as u32;
        if self.far_offset {
            row *= u64::from(self.far_copies);
        }
        let mut base = row * chunk + in_chunk;
        for _ in 0..self.near_copies {
            let mut d = dev;
            let mut s = base;
            copies.push(Copy {
                role: d,
                dev_sector: s,
            });
            for _ in 1..self.far_copies {
                d = self.next_far(d);
                s += self.stride_sectors;
                copies.push(Copy {
                    role: d,
                    dev_sector: s,
                });
            }
            dev += 1;
            if dev == self.raid_disks {
                dev = 0;
                base += chunk;
            }
        }
        assert_eq!(copies.len(), self.copies() as usize);
        Extent {
            len_sectors: chunk - in_chunk,
            target: Target::Mirrored,
        }
    }

    pub(crate) fn reverse(&self, copy: Copy) -> Option<u64> {
        if copy.dev_sector >= self.used_sectors {
            return None;
        }
        let chunk = self.chunk_sectors;
        let fc = u64::from(self.far_copies);
        let (far, near_sector) = if self.far_offset {
            let far = (copy.dev_sector / chunk) % fc;
            (far, copy.dev_sector - far * chunk)
        } else {
            let far = copy.dev_sector / self.stride_sectors;
            (far, copy.dev_sector - far * self.stride_sectors)
        };
        assert!(far < fc);
        // The far move is a permutation (checked in `new`): exactly one role
        // reaches copy.role after `far` moves.
        let near_role = (0..self.raid_disks)
            .find(|&r| (0..far).fold(r, |d, _| self.next_far(d)) == copy.role)?;
        let mut row = near_sector / chunk;
        if self.far_offset {
            row /= fc;
        }
        let slot = row * u64::from(self.raid_disks) + u64::from(near_role);
        let chunk_number = slot / u64::from(self.near_copies);
        (chunk_number < self.array_chunks).then_some(chunk_number * chunk + near_sector % chunk)
    }
}

//! Write-intent bitmap superblock (256 bytes, LE) and the addressing of its bits.
//!
//! The bitmap superblock sits at the bitmap location (formats.md §3.1) and the
//! bits follow it directly. [`BitmapSuper`] is the validated form; the helpers
//! map resync addresses to bits and bits to bytes (formats.md §3.3) so the
//! engine and `umd examine` share one definition of "which bit covers which sector".

use crate::error::{FormatError, Problem};
use core::mem::{offset_of, size_of};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

const STRUCTURE: &str = "bitmap superblock";

/// `BITMAP_MAGIC`: "bitm" as LE bytes (formats.md §3.2).
pub const BITMAP_MAGIC: u32 = 0x6d74_6962;
/// `BITMAP_MAJOR_LO`: bits in host `unsigned long` order (formats.md §3.2).
pub const BITMAP_MAJOR_LO: u32 = 3;
/// `BITMAP_MAJOR_HI`: little-endian bit order, the current format (formats.md §3.2).
pub const BITMAP_MAJOR_HI: u32 = 4;
/// Size of the bitmap superblock; the bits start right after it (formats.md §3.2, §3.3).
pub const BITMAP_SB_BYTES: usize = 256;
/// Smallest chunk a bit may cover, bytes (formats.md §3.2).
pub const CHUNKSIZE_MIN: u32 = 512;
/// `COUNTER_MAX`: largest write_behind (formats.md §3.2).
pub const WRITE_BEHIND_MAX: u32 = 16383;
/// `BITMAP_STALE`: state bit 1, do not trust the bits (formats.md §3.2).
pub const STATE_STALE: u32 = 1 << 1;
/// Bits per byte of the bitmap.
const BITS_PER_BYTE: u64 = 8;

/// `bitmap_super_t` as stored (formats.md §3.2).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawBitmapSuper {
    magic: U32,
    version: U32,
    uuid: [u8; 16],
    events: U64,
    events_cleared: U64,
    sync_size: U64,
    state: U32,
    chunksize: U32,
    daemon_sleep: U32,
    write_behind: U32,
    sectors_reserved: U32,
    nodes: U32,
    cluster_name: [u8; 64],
    pad: [u8; 120],
}

const _: () = assert!(size_of::<RawBitmapSuper>() == BITMAP_SB_BYTES);
const _: () = assert!(offset_of!(RawBitmapSuper, uuid) == 8);
const _: () = assert!(offset_of!(RawBitmapSuper, events) == 24);
const _: () = assert!(offset_of!(RawBitmapSuper, sync_size) == 40);
const _: () = assert!(offset_of!(RawBitmapSuper, state) == 48);
const _: () = assert!(offset_of!(RawBitmapSuper, chunksize) == 52);
const _: () = assert!(offset_of!(RawBitmapSuper, sectors_reserved) == 64);
const _: () = assert!(offset_of!(RawBitmapSuper, cluster_name) == 72);
const _: () = assert!(offset_of!(RawBitmapSuper, pad) == 136);

/// A validated bitmap superblock; md's names and units (sync_size in
/// sectors, chunksize in bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapSuper {
    /// 3 or 4 (clustered and lockless bitmaps are refused).
    pub version: u32,
    /// Array UUID bytes (must equal the md superblock's).
    pub uuid: [u8; 16],
    /// md events at the last bitmap superblock write.
    pub events: u64,
    /// events when bits were last cleared.
    pub events_cleared: u64,
    /// Sectors covered (per device; array sectors for raid10).
    pub sync_size: u64,
    /// State bits (1 STALE, 2 WRITE_ERROR, 3 FIRST_USE, 4 CLEAN, 5 DAEMON_BUSY, 15 HOSTENDIAN).
    pub state: u32,
    /// Bytes covered per bit: a power of two, at least 512.
    pub chunksize: u32,
    /// Seconds between clearing passes (non-zero).
    pub daemon_sleep: u32,
    /// Max outstanding write-behind.
    pub write_behind: u32,
    /// Sectors available for the bitmap (0 = unknown).
    pub sectors_reserved: u32,
    /// Cluster nodes.
    pub nodes: u32,
    /// Cluster name, NUL padded, kept raw.
    pub cluster_name: [u8; 64],
}

fn invalid(field: &'static str, offset: usize, found: u64, why: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        offset as u64,
        Problem::Invalid { found, why },
    )
}

impl BitmapSuper {
    /// Parse and validate the first 256 bytes of a bitmap area.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let (raw, _) = RawBitmapSuper::ref_from_prefix(bytes).map_err(|_| {
            FormatError::new(
                STRUCTURE,
                "magic",
                0,
                Problem::Truncated {
                    need: BITMAP_SB_BYTES,
                    have: bytes.len(),
                },
            )
        })?;
        if raw.magic.get() != BITMAP_MAGIC {
            return Err(FormatError::new(
                STRUCTURE,
                "magic",
                0,
                Problem::BadMagic {
                    expected: BITMAP_MAGIC.into(),
                    found: raw.magic.get().into(),
                },
            ));
        }
        if raw.pad.iter().any(|&b| b != 0) {
            let at = offset_of!(RawBitmapSuper, pad) as u64;
            return Err(FormatError::new(STRUCTURE, "pad", at, Problem::NonZeroPad));
        }
        let sb = Self {
            version: raw.version.get(),
            uuid: raw.uuid,
            events: raw.events.get(),
            events_cleared: raw.events_cleared.get(),
            sync_size: raw.sync_size.get(),
            state: raw.state.get(),
            chunksize: raw.chunksize.get(),
            daemon_sleep: raw.daemon_sleep.get(),
            write_behind: raw.write_behind.get(),
            sectors_reserved: raw.sectors_reserved.get(),
            nodes: raw.nodes.get(),
            cluster_name: raw.cluster_name,
        };
        sb.check_fields()?;
        Ok(sb)
    }

    /// The checks the kernel makes when loading a bitmap (formats.md §3.2).
    pub fn check_fields(&self) -> Result<(), FormatError> {
        if self.version != BITMAP_MAJOR_LO && self.version != BITMAP_MAJOR_HI {
            return Err(invalid(
                "version",
                offset_of!(RawBitmapSuper, version),
                self.version.into(),
                "only bitmap versions 3 and 4 are supported",
            ));
        }
        if self.chunksize < CHUNKSIZE_MIN || !self.chunksize.is_power_of_two() {
            return Err(invalid(
                "chunksize",
                offset_of!(RawBitmapSuper, chunksize),
                self.chunksize.into(),
                "chunk must be a power of two of at least 512 bytes",
            ));
        }
        if self.daemon_sleep == 0 {
            return Err(invalid(
                "daemon_sleep",
                offset_of!(RawBitmapSuper, daemon_sleep),
                0,
                "daemon sleep period must be non-zero",
            ));
        }
        if self.write_behind > WRITE_BEHIND_MAX {
            return Err(invalid(
                "write_behind",
                offset_of!(RawBitmapSuper, write_behind),
                self.write_behind.into(),
                "write-behind above COUNTER_MAX",
            ));
        }
        Ok(())
    }

    /// Serialise the 256-byte superblock.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; BITMAP_SB_BYTES] {
        assert!(
            self.check_fields().is_ok(),
            "only a valid bitmap superblock is written"
        );
        let raw = RawBitmapSuper {
            magic: BITMAP_MAGIC.into(),
            version: self.version.into(),
            uuid: self.uuid,
            events: self.events.into(),
            events_cleared: self.events_cleared.into(),
            sync_size: self.sync_size.into(),
            state: self.state.into(),
            chunksize: self.chunksize.into(),
            daemon_sleep: self.daemon_sleep.into(),
            write_behind: self.write_behind.into(),
            sectors_reserved: self.sectors_reserved.into(),
            nodes: self.nodes.into(),
            cluster_name: self.cluster_name,
            pad: [0; 120],
        };
        let mut out = [0u8; BITMAP_SB_BYTES];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// Sectors covered by one bit.
    #[must_use]
    pub fn chunk_sectors(&self) -> u64 {
        let s = u64::from(self.chunksize) / crate::SECTOR_BYTES;
        assert!(s >= 1, "chunksize >= 512 checked at parse");
        s
    }

    /// Number of bits: ceil(sync_size / chunk sectors) (formats.md §3.3).
    #[must_use]
    pub fn bits(&self) -> u64 {
        self.sync_size.div_ceil(self.chunk_sectors())
    }

    /// Bytes of the bitmap area: superblock plus the bits (formats.md §3.3).
    #[must_use]
    pub fn area_bytes(&self) -> u64 {
        BITMAP_SB_BYTES as u64 + self.bits().div_ceil(BITS_PER_BYTE)
    }

    /// The bit covering resync address `sector`, or `None` past sync_size.
    #[must_use]
    pub fn bit_for_sector(&self, sector: u64) -> Option<u64> {
        (sector < self.sync_size).then(|| sector / self.chunk_sectors())
    }

    /// Resync addresses `[start, end)` covered by `bit` (end clipped to sync_size).
    #[must_use]
    pub fn sectors_of_bit(&self, bit: u64) -> Option<(u64, u64)> {
        if bit >= self.bits() {
            return None;
        }
        let start = bit * self.chunk_sectors();
        Some((start, (start + self.chunk_sectors()).min(self.sync_size)))
    }
}

/// Where bit `bit` lives: byte offset from the start of the bitmap area and
/// the bit within that byte, least significant first (formats.md §3.3).
#[must_use]
pub fn bit_position(bit: u64) -> (u64, u8) {
    (
        BITMAP_SB_BYTES as u64 + bit / BITS_PER_BYTE,
        (bit % BITS_PER_BYTE) as u8,
    )
}

/// Whether `bit` is set in a bitmap area that starts with the superblock;
/// `None` if `area` is too short to hold it.
#[must_use]
pub fn bit_is_set(area: &[u8], bit: u64) -> Option<bool> {
    let (byte, shift) = bit_position(bit);
    let b = area.get(usize::try_from(byte).ok()?)?;
    Some(b >> shift & 1 == 1)
}

/// Fuzz entry: a valid bitmap superblock writes back to the same bytes.
pub(crate) fn fuzz_entry(data: &[u8]) {
    if let Ok(sb) = BitmapSuper::parse(data) {
        let out = sb.to_bytes();
        assert_eq!(out[..], data[..BITMAP_SB_BYTES], "write(parse(b)) == b");
        let _ = (
            sb.bits(),
            sb.area_bytes(),
            sb.bit_for_sector(sb.sync_size / 2),
        );
        let _ = bit_is_set(data, sb.bits().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_addressing_matches_spec_formula() {
        // 64 KiB chunks = 128 sectors; 1000 sectors -> ceil(1000/128) = 8 bits.
        let sb = BitmapSuper {
            version: 4,
            uuid: [0; 16],
            events: 0,
            events_cleared: 0,
            sync_size: 1000,
            state: 0,
            chunksize: 65536,
            daemon_sleep: 5,
            write_behind: 0,
            sectors_reserved: 0,
            nodes: 0,
            cluster_name: [0; 64],
        };
        assert_eq!(sb.bits(), 8);
        assert_eq!(sb.area_bytes(), 257);
        assert_eq!(sb.bit_for_sector(127), Some(0));
        assert_eq!(sb.bit_for_sector(128), Some(1));
        assert_eq!(sb.bit_for_sector(1000), None);
        assert_eq!(sb.sectors_of_bit(7), Some((896, 1000)));
        assert_eq!(bit_position(9), (257, 1));
        let mut area = vec![0u8; 258];
        area[257] = 0b10;
        assert_eq!(bit_is_set(&area, 9), Some(true));
        assert_eq!(bit_is_set(&area, 8), Some(false));
        assert_eq!(bit_is_set(&area, 16), None);
    }
}

//! md superblock v1.x (1.0, 1.1, 1.2): the 256-byte header and `dev_roles`.
//! The bad-block log the header points at is parsed in `bblog.rs`.
//!
//! The raw view [`RawSb1`] mirrors md's `mdp_superblock_1` byte for byte
//! (formats.md §2.2). [`Superblock1`] is the validated form: every field the
//! format stores, minus the constants (magic, major version), the padding
//! (always zero) and the checksum (recomputed on write). So `to_bytes` of a
//! parsed superblock reproduces the checksummed bytes exactly, and only a
//! superblock the kernel would load can be parsed (formats.md §2.6).

pub use crate::bblog::{parse_bblog, BadBlock, BBLOG_ENTRIES_MAX, BBLOG_ENTRY_BYTES};
use crate::checksum::sb1_csum;
use crate::error::{FormatError, Problem};
use crate::info::{
    ArraySide, ArrayUuid, BitmapLocation, DeviceSide, MdInfo, MetadataFormat, ReshapeInfo,
    RosterEntry, SlotState,
};
use core::mem::{offset_of, size_of};
use zerocopy::little_endian::{I32, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

const STRUCTURE: &str = "md 1.x superblock";

/// `MD_SB_MAGIC`, shared by 0.90 and 1.x (formats.md §2.2).
pub const MD_SB_MAGIC: u32 = 0xa92b_4efc;
/// `major_version` of every 1.x superblock (formats.md §2.2).
pub const MAJOR_VERSION: u32 = 1;
/// Bytes of the fixed header before `dev_roles` (formats.md §2.2).
pub const HEADER_BYTES: usize = 256;
/// Bytes the kernel reads at a superblock location (formats.md §2.1).
pub const READ_BYTES: usize = 4096;
/// Largest `max_dev`: the roles must fit the 4 KiB read, (4096 - 256) / 2
/// (formats.md §2.2, §2.6).
pub const MAX_DEV_MAX: u32 = ((READ_BYTES - HEADER_BYTES) / 2) as u32;
/// Smallest `data_size` the kernel accepts (formats.md §2.6).
pub const DATA_SIZE_MIN: u64 = 10;
/// 1.1 location: sector 0 (formats.md §2.1).
pub const SUPER_OFFSET_1_1: u64 = 0;
/// 1.2 location: sector 8, 4 KiB from the start (formats.md §2.1).
pub const SUPER_OFFSET_1_2: u64 = 8;
/// 1.0: the location is `(N - 16) & !7` sectors (formats.md §2.1).
const END_RESERVE_SECTORS: u64 = 16;
/// 1.0 location alignment mask: 4 KiB = 8 sectors (formats.md §2.1).
const END_ALIGN_MASK: u64 = !7;

/// `MD_FEATURE_BITMAP_OFFSET`: internal write-intent bitmap (formats.md §2.4).
pub const FEATURE_BITMAP_OFFSET: u32 = 1 << 0;
/// `MD_FEATURE_RECOVERY_OFFSET`: `recovery_offset` valid (formats.md §2.4).
pub const FEATURE_RECOVERY_OFFSET: u32 = 1 << 1;
/// `MD_FEATURE_RESHAPE_ACTIVE`: reshape fields valid (formats.md §2.4).
pub const FEATURE_RESHAPE_ACTIVE: u32 = 1 << 2;
/// `MD_FEATURE_BAD_BLOCKS`: the bad-block list is non-empty (formats.md §2.4).
pub const FEATURE_BAD_BLOCKS: u32 = 1 << 3;
/// `MD_FEATURE_REPLACEMENT`: replaces the device with the same role (formats.md §2.4).
pub const FEATURE_REPLACEMENT: u32 = 1 << 4;
/// `MD_FEATURE_RESHAPE_BACKWARDS`: reshape runs from the end (formats.md §2.4).
pub const FEATURE_RESHAPE_BACKWARDS: u32 = 1 << 5;
/// `MD_FEATURE_NEW_OFFSET`: `new_offset` applies (formats.md §2.4).
pub const FEATURE_NEW_OFFSET: u32 = 1 << 6;
/// `MD_FEATURE_RECOVERY_BITMAP`: recovery guided by the bitmap (formats.md §2.4).
pub const FEATURE_RECOVERY_BITMAP: u32 = 1 << 7;
/// `MD_FEATURE_CLUSTERED`: clustered md (formats.md §2.4).
pub const FEATURE_CLUSTERED: u32 = 1 << 8;
/// `MD_FEATURE_JOURNAL`: raid4/5/6 write journal (formats.md §2.4).
pub const FEATURE_JOURNAL: u32 = 1 << 9;
/// `MD_FEATURE_PPL`: partial parity log (formats.md §2.4).
pub const FEATURE_PPL: u32 = 1 << 10;
/// `MD_FEATURE_MULTIPLE_PPLS`: several PPL slots (formats.md §2.4).
pub const FEATURE_MULTIPLE_PPLS: u32 = 1 << 11;
/// `MD_FEATURE_RAID0_LAYOUT`: a raid0's layout field is meaningful (formats.md §2.4).
pub const FEATURE_RAID0_LAYOUT: u32 = 1 << 12;
/// `MD_FEATURE_ALL`: every bit the kernel knows; others are refused (formats.md §2.4).
pub const FEATURE_ALL: u32 = 0x1fff;

/// `MD_DISK_ROLE_SPARE` (formats.md §2.3).
pub const ROLE_SPARE: u16 = 0xffff;
/// `MD_DISK_ROLE_FAULTY` (formats.md §2.3).
pub const ROLE_FAULTY: u16 = 0xfffe;
/// `MD_DISK_ROLE_JOURNAL` (formats.md §2.3).
pub const ROLE_JOURNAL: u16 = 0xfffd;
/// `MD_DISK_ROLE_MAX`: roles at or above this are never data slots (formats.md §2.3).
pub const ROLE_NON_DATA_MIN: u16 = 0xff00;

/// md level number of raid0, the only level that may set RAID0_LAYOUT (formats.md §2.4).
const LEVEL_RAID0: i32 = 0;

/// `mdp_superblock_1`, as stored (formats.md §2.2). All integers LE.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawSb1 {
    magic: U32,
    major_version: U32,
    feature_map: U32,
    pad0: U32,
    set_uuid: [u8; 16],
    set_name: [u8; 32],
    ctime: U64,
    level: I32,
    layout: U32,
    size: U64,
    chunksize: U32,
    raid_disks: U32,
    /// Union with `ppl.offset` (s16) and `ppl.size` (u16).
    bitmap_offset: I32,
    new_level: I32,
    reshape_position: U64,
    delta_disks: I32,
    new_layout: U32,
    new_chunk: U32,
    new_offset: I32,
    data_offset: U64,
    data_size: U64,
    super_offset: U64,
    recovery_offset: U64,
    dev_number: U32,
    cnt_corrected_read: U32,
    device_uuid: [u8; 16],
    devflags: u8,
    bblog_shift: u8,
    bblog_size: U16,
    bblog_offset: I32,
    utime: U64,
    events: U64,
    resync_offset: U64,
    sb_csum: U32,
    max_dev: U32,
    pad3: [u8; 32],
}

// formats.md §2.2 field table; mdadm asserts data_offset at 128 and utime at 192.
const _: () = assert!(size_of::<RawSb1>() == HEADER_BYTES);
const _: () = assert!(offset_of!(RawSb1, feature_map) == 8);
const _: () = assert!(offset_of!(RawSb1, set_uuid) == 16);
const _: () = assert!(offset_of!(RawSb1, set_name) == 32);
const _: () = assert!(offset_of!(RawSb1, ctime) == 64);
const _: () = assert!(offset_of!(RawSb1, level) == 72);
const _: () = assert!(offset_of!(RawSb1, size) == 80);
const _: () = assert!(offset_of!(RawSb1, chunksize) == 88);
const _: () = assert!(offset_of!(RawSb1, bitmap_offset) == 96);
const _: () = assert!(offset_of!(RawSb1, new_level) == 100);
const _: () = assert!(offset_of!(RawSb1, reshape_position) == 104);
const _: () = assert!(offset_of!(RawSb1, new_offset) == 124);
const _: () = assert!(offset_of!(RawSb1, data_offset) == 128);
const _: () = assert!(offset_of!(RawSb1, super_offset) == 144);
const _: () = assert!(offset_of!(RawSb1, dev_number) == 160);
const _: () = assert!(offset_of!(RawSb1, device_uuid) == 168);
const _: () = assert!(offset_of!(RawSb1, devflags) == 184);
const _: () = assert!(offset_of!(RawSb1, bblog_offset) == 188);
const _: () = assert!(offset_of!(RawSb1, utime) == 192);
const _: () = assert!(offset_of!(RawSb1, events) == 200);
const _: () = assert!(offset_of!(RawSb1, resync_offset) == 208);
const _: () = assert!(offset_of!(RawSb1, sb_csum) == 216);
const _: () = assert!(offset_of!(RawSb1, max_dev) == 220);
const _: () = assert!(offset_of!(RawSb1, pad3) == 224);
const _: () = assert!(HEADER_BYTES + 2 * MAX_DEV_MAX as usize == READ_BYTES);

/// A validated md 1.x superblock. Field names and units are md's (sectors
/// unless stated); see formats.md §2.2 for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock1 {
    /// Feature bits (formats.md §2.4); only known bits, never a forbidden mix.
    pub feature_map: u32,
    /// Array UUID, raw bytes.
    pub set_uuid: [u8; 16],
    /// "homehost:name", NUL padded, kept raw.
    pub set_name: [u8; 32],
    /// Creation time: low 40 bits seconds, high 24 bits microseconds.
    pub ctime: u64,
    /// md level (-4 multipath, -1 linear, 0, 1, 4, 5, 6, 10).
    pub level: i32,
    /// Layout for the level (formats.md §4).
    pub layout: u32,
    /// Sectors used per device (0 for raid0 and linear).
    pub size: u64,
    /// Chunk size in sectors.
    pub chunksize: u32,
    /// Number of roles (during reshape: the new count).
    pub raid_disks: u32,
    /// Signed sectors from the superblock to the bitmap (bit 0); shares its
    /// bytes with `ppl.offset`/`ppl.size` (see [`Superblock1::ppl_offset`]).
    pub bitmap_offset: i32,
    /// Level after the reshape (bit 2).
    pub new_level: i32,
    /// Array sector the reshape reached (bit 2).
    pub reshape_position: u64,
    /// New minus old raid_disks (bit 2).
    pub delta_disks: i32,
    /// Layout after the reshape (bit 2).
    pub new_layout: u32,
    /// Chunk after the reshape, sectors (bit 2).
    pub new_chunk: u32,
    /// Signed sectors added to data_offset in the new geometry (bit 6).
    pub new_offset: i32,
    /// Device sector where data starts.
    pub data_offset: u64,
    /// Sectors usable for data on this device.
    pub data_size: u64,
    /// Sector of this superblock; equals where it was found.
    pub super_offset: u64,
    /// Sectors from data_offset already rebuilt (bit 1); journal_tail on a journal device.
    pub recovery_offset: u64,
    /// Permanent index of this device into `dev_roles` (not its role).
    pub dev_number: u32,
    /// Corrected read errors.
    pub cnt_corrected_read: u32,
    /// Per-device UUID.
    pub device_uuid: [u8; 16],
    /// Bit 0 WriteMostly, bit 1 FailFast.
    pub devflags: u8,
    /// Bad-block unit is 2^bblog_shift sectors.
    pub bblog_shift: u8,
    /// Sectors reserved for the bad-block log.
    pub bblog_size: u16,
    /// Signed sectors from the superblock to the bad-block log.
    pub bblog_offset: i32,
    /// Last update time (same encoding as ctime).
    pub utime: u64,
    /// Update counter.
    pub events: u64,
    /// Array resync checkpoint; `u64::MAX` = in sync.
    pub resync_offset: u64,
    /// Role of every dev_number; its length is md's `max_dev`.
    pub dev_roles: Vec<u16>,
}

fn err(field: &'static str, offset: usize, problem: Problem) -> FormatError {
    FormatError::new(STRUCTURE, field, offset as u64, problem)
}

fn invalid(field: &'static str, offset: usize, found: u64, why: &'static str) -> FormatError {
    err(field, offset, Problem::Invalid { found, why })
}

/// Where a 1.x superblock of `minor` (0, 1, 2) sits on a device of
/// `dev_sectors` sectors, or `None` if the device is too small or the minor
/// unknown (formats.md §2.1).
#[must_use]
pub fn super_offset_sectors(minor: u8, dev_sectors: u64) -> Option<u64> {
    let read_sectors = (READ_BYTES as u64) / crate::SECTOR_BYTES;
    let at = match minor {
        0 => dev_sectors.checked_sub(END_RESERVE_SECTORS)? & END_ALIGN_MASK,
        1 => SUPER_OFFSET_1_1,
        2 => SUPER_OFFSET_1_2,
        _ => return None,
    };
    (at + read_sectors <= dev_sectors).then_some(at)
}

/// Bytes covered by the checksum and written: `256 + 2 * max_dev` (formats.md §2.5).
#[must_use]
pub const fn sb_bytes(max_dev: u32) -> usize {
    HEADER_BYTES + 2 * max_dev as usize
}

impl Superblock1 {
    /// Parse and validate a superblock read at device sector `found_at_sector`
    /// of a device of `dev_sectors` sectors (formats.md §2.6). `bytes` may be
    /// longer than the superblock (the usual 4 KiB read). Error offsets are
    /// relative to `bytes`.
    pub fn parse(
        bytes: &[u8],
        found_at_sector: u64,
        dev_sectors: u64,
    ) -> Result<Self, FormatError> {
        let (raw, _) = RawSb1::ref_from_prefix(bytes).map_err(|_| {
            err(
                "magic",
                0,
                Problem::Truncated {
                    need: HEADER_BYTES,
                    have: bytes.len(),
                },
            )
        })?;
        check_identity(raw)?;
        let max_dev = raw.max_dev.get();
        let len = sb_bytes(max_dev);
        if bytes.len() < len {
            return Err(err(
                "dev_roles",
                HEADER_BYTES,
                Problem::Truncated {
                    need: len,
                    have: bytes.len(),
                },
            ));
        }
        let computed = sb1_csum(&bytes[..len], offset_of!(RawSb1, sb_csum));
        let stored = raw.sb_csum.get();
        if computed != stored {
            return Err(err(
                "sb_csum",
                offset_of!(RawSb1, sb_csum),
                Problem::BadChecksum {
                    computed: computed.into(),
                    stored: stored.into(),
                },
            ));
        }
        if raw.super_offset.get() != found_at_sector {
            return Err(invalid(
                "super_offset",
                offset_of!(RawSb1, super_offset),
                raw.super_offset.get(),
                "superblock is not where it says it is",
            ));
        }
        let dev_roles = bytes[HEADER_BYTES..len]
            .chunks_exact(2)
            .map(|r| u16::from_le_bytes([r[0], r[1]]))
            .collect();
        let sb = Self::from_raw(raw, dev_roles);
        sb.check_fields()?;
        sb.check_placement(dev_sectors)?;
        debug_assert_eq!(sb.dev_roles.len(), max_dev as usize);
        Ok(sb)
    }

    fn from_raw(raw: &RawSb1, dev_roles: Vec<u16>) -> Self {
        Self {
            feature_map: raw.feature_map.get(),
            set_uuid: raw.set_uuid,
            set_name: raw.set_name,
            ctime: raw.ctime.get(),
            level: raw.level.get(),
            layout: raw.layout.get(),
            size: raw.size.get(),
            chunksize: raw.chunksize.get(),
            raid_disks: raw.raid_disks.get(),
            bitmap_offset: raw.bitmap_offset.get(),
            new_level: raw.new_level.get(),
            reshape_position: raw.reshape_position.get(),
            delta_disks: raw.delta_disks.get(),
            new_layout: raw.new_layout.get(),
            new_chunk: raw.new_chunk.get(),
            new_offset: raw.new_offset.get(),
            data_offset: raw.data_offset.get(),
            data_size: raw.data_size.get(),
            super_offset: raw.super_offset.get(),
            recovery_offset: raw.recovery_offset.get(),
            dev_number: raw.dev_number.get(),
            cnt_corrected_read: raw.cnt_corrected_read.get(),
            device_uuid: raw.device_uuid,
            devflags: raw.devflags,
            bblog_shift: raw.bblog_shift,
            bblog_size: raw.bblog_size.get(),
            bblog_offset: raw.bblog_offset.get(),
            utime: raw.utime.get(),
            events: raw.events.get(),
            resync_offset: raw.resync_offset.get(),
            dev_roles,
        }
    }

    /// Checks that need only the superblock itself: roster size, feature
    /// bits and their exclusions, data_size, bitmap position (formats.md §2.4, §2.6).
    pub fn check_fields(&self) -> Result<(), FormatError> {
        let fm_at = offset_of!(RawSb1, feature_map);
        if self.dev_roles.len() > MAX_DEV_MAX as usize {
            return Err(invalid(
                "max_dev",
                offset_of!(RawSb1, max_dev),
                self.dev_roles.len() as u64,
                "more roles than fit in 4 KiB",
            ));
        }
        let fm = self.feature_map;
        if fm & !FEATURE_ALL != 0 {
            return Err(err(
                "feature_map",
                fm_at,
                Problem::UnknownFeature {
                    bits: (fm & !FEATURE_ALL).into(),
                },
            ));
        }
        let ppl = fm & (FEATURE_PPL | FEATURE_MULTIPLE_PPLS);
        if ppl == FEATURE_PPL | FEATURE_MULTIPLE_PPLS {
            return Err(invalid(
                "feature_map",
                fm_at,
                fm.into(),
                "PPL and MULTIPLE_PPLS together",
            ));
        }
        if ppl != 0 && fm & (FEATURE_BITMAP_OFFSET | FEATURE_JOURNAL) != 0 {
            return Err(invalid(
                "feature_map",
                fm_at,
                fm.into(),
                "PPL excludes a bitmap and a journal",
            ));
        }
        if fm & FEATURE_RAID0_LAYOUT != 0 && self.level != LEVEL_RAID0 {
            return Err(invalid(
                "feature_map",
                fm_at,
                fm.into(),
                "RAID0_LAYOUT on a non-raid0",
            ));
        }
        if self.data_size < DATA_SIZE_MIN {
            return Err(invalid(
                "data_size",
                offset_of!(RawSb1, data_size),
                self.data_size,
                "fewer than 10 data sectors",
            ));
        }
        if fm & FEATURE_BITMAP_OFFSET != 0
            && self
                .super_offset
                .checked_add_signed(self.bitmap_offset.into())
                .is_none()
        {
            return Err(invalid(
                "bitmap_offset",
                offset_of!(RawSb1, bitmap_offset),
                self.bitmap_offset as u64,
                "bitmap would lie outside the device",
            ));
        }
        Ok(())
    }

    /// Checks against the device: data after the superblock and inside the
    /// device for 1.1/1.2, data before the superblock for 1.0 (formats.md §2.6).
    fn check_placement(&self, dev_sectors: u64) -> Result<(), FormatError> {
        let size_at = offset_of!(RawSb1, data_size);
        let offset_at = offset_of!(RawSb1, data_offset);
        if self.minor() == 0 {
            if self.data_size > self.super_offset {
                return Err(invalid(
                    "data_size",
                    size_at,
                    self.data_size,
                    "overlaps the superblock",
                ));
            }
            return Ok(());
        }
        let sb_sectors = (sb_bytes(self.max_dev()) as u64).div_ceil(crate::SECTOR_BYTES);
        let data_min = self.super_offset + sb_sectors;
        if self.data_offset < data_min {
            return Err(invalid(
                "data_offset",
                offset_at,
                self.data_offset,
                "data starts inside the superblock",
            ));
        }
        if self.feature_map & FEATURE_NEW_OFFSET != 0 {
            let new = self.data_offset.checked_add_signed(self.new_offset.into());
            if new.is_none_or(|n| n < data_min) {
                return Err(invalid(
                    "new_offset",
                    offset_of!(RawSb1, new_offset),
                    self.new_offset as u64,
                    "new data offset starts inside the superblock",
                ));
            }
        }
        let room = dev_sectors.saturating_sub(self.data_offset);
        if self.data_size > room {
            return Err(invalid(
                "data_size",
                size_at,
                self.data_size,
                "runs past the device end",
            ));
        }
        Ok(())
    }

    /// md's `max_dev`: the number of `dev_roles` entries.
    #[must_use]
    pub fn max_dev(&self) -> u32 {
        assert!(
            self.dev_roles.len() <= MAX_DEV_MAX as usize,
            "max_dev checked at parse"
        );
        self.dev_roles.len() as u32
    }

    /// The 1.x minor, which is positional only (formats.md §2.1): sector 0 is
    /// 1.1, sector 8 is 1.2, anything else is 1.0 at the end. A valid 1.0
    /// superblock cannot sit at 0 or 8 since its data (>= 10 sectors) lies before it.
    #[must_use]
    pub fn minor(&self) -> u8 {
        match self.super_offset {
            SUPER_OFFSET_1_1 => 1,
            SUPER_OFFSET_1_2 => 2,
            _ => 0,
        }
    }

    /// The array name as text: `set_name` up to its first NUL.
    #[must_use]
    pub fn name(&self) -> String {
        let end = self
            .set_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.set_name.len());
        String::from_utf8_lossy(&self.set_name[..end]).into_owned()
    }

    /// `ppl.offset`: signed sectors from the superblock (formats.md §2.2; the
    /// low half of the `bitmap_offset` bytes).
    #[must_use]
    pub fn ppl_offset(&self) -> i16 {
        let b = self.bitmap_offset.to_le_bytes();
        i16::from_le_bytes([b[0], b[1]])
    }

    /// `ppl.size`: sectors of PPL space (the high half of the `bitmap_offset` bytes).
    #[must_use]
    pub fn ppl_size(&self) -> u16 {
        let b = self.bitmap_offset.to_le_bytes();
        u16::from_le_bytes([b[2], b[3]])
    }

    /// The partial parity log area, when a PPL feature bit is set: absolute
    /// device sector, sectors, and whether it is a ring of several logs
    /// (MULTIPLE_PPLS). `None` when the offset would leave the device start.
    #[must_use]
    pub fn ppl_area(&self) -> Option<(u64, u64, bool)> {
        if self.feature_map & (FEATURE_PPL | FEATURE_MULTIPLE_PPLS) == 0 {
            return None;
        }
        let sector = self
            .super_offset
            .checked_add_signed(self.ppl_offset().into())?;
        Some((
            sector,
            self.ppl_size().into(),
            self.feature_map & FEATURE_MULTIPLE_PPLS != 0,
        ))
    }

    /// This device's role from `dev_roles`; `ROLE_SPARE` when `dev_number`
    /// is past the table (formats.md §2.3).
    #[must_use]
    pub fn role(&self) -> u16 {
        self.dev_roles
            .get(self.dev_number as usize)
            .copied()
            .unwrap_or(ROLE_SPARE)
    }

    /// Serialise: exactly `256 + 2 * max_dev` bytes with a fresh checksum.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(
            self.check_fields().is_ok(),
            "only a valid superblock is written"
        );
        let raw = RawSb1 {
            magic: MD_SB_MAGIC.into(),
            major_version: MAJOR_VERSION.into(),
            feature_map: self.feature_map.into(),
            pad0: 0.into(),
            set_uuid: self.set_uuid,
            set_name: self.set_name,
            ctime: self.ctime.into(),
            level: self.level.into(),
            layout: self.layout.into(),
            size: self.size.into(),
            chunksize: self.chunksize.into(),
            raid_disks: self.raid_disks.into(),
            bitmap_offset: self.bitmap_offset.into(),
            new_level: self.new_level.into(),
            reshape_position: self.reshape_position.into(),
            delta_disks: self.delta_disks.into(),
            new_layout: self.new_layout.into(),
            new_chunk: self.new_chunk.into(),
            new_offset: self.new_offset.into(),
            data_offset: self.data_offset.into(),
            data_size: self.data_size.into(),
            super_offset: self.super_offset.into(),
            recovery_offset: self.recovery_offset.into(),
            dev_number: self.dev_number.into(),
            cnt_corrected_read: self.cnt_corrected_read.into(),
            device_uuid: self.device_uuid,
            devflags: self.devflags,
            bblog_shift: self.bblog_shift,
            bblog_size: self.bblog_size.into(),
            bblog_offset: self.bblog_offset.into(),
            utime: self.utime.into(),
            events: self.events.into(),
            resync_offset: self.resync_offset.into(),
            sb_csum: 0.into(),
            max_dev: self.max_dev().into(),
            pad3: [0; 32],
        };
        let mut out = Vec::with_capacity(sb_bytes(self.max_dev()));
        out.extend_from_slice(raw.as_bytes());
        for role in &self.dev_roles {
            out.extend_from_slice(&role.to_le_bytes());
        }
        let at = offset_of!(RawSb1, sb_csum);
        let csum = sb1_csum(&out, at);
        out[at..at + 4].copy_from_slice(&csum.to_le_bytes());
        assert_eq!(
            out.len(),
            sb_bytes(self.max_dev()),
            "written length is the checksummed length"
        );
        out
    }

    /// The normalized view (formats.md §2.3, §2.7, §2.8).
    #[must_use]
    pub fn info(&self) -> MdInfo {
        let fm = self.feature_map;
        let recovery = (fm & FEATURE_RECOVERY_OFFSET != 0).then_some(self.recovery_offset);
        let roster = self
            .dev_roles
            .iter()
            .enumerate()
            .filter(|&(_, &r)| r != ROLE_SPARE)
            .map(|(i, &r)| {
                let mine = i == self.dev_number as usize;
                RosterEntry {
                    dev_id: i as u32,
                    slot: slot_of(r, if mine { recovery } else { None }),
                }
            })
            .collect();
        let reshape = (fm & FEATURE_RESHAPE_ACTIVE != 0).then(|| ReshapeInfo {
            position_sectors: self.reshape_position,
            new_level: self.new_level,
            new_layout: self.new_layout,
            new_chunk_sectors: self.new_chunk,
            delta_disks: self.delta_disks,
            new_offset_sectors: if fm & FEATURE_NEW_OFFSET != 0 {
                self.new_offset.into()
            } else {
                0
            },
            backwards: fm & FEATURE_RESHAPE_BACKWARDS != 0 || self.delta_disks < 0,
        });
        let bitmap = (fm & FEATURE_BITMAP_OFFSET != 0).then(|| BitmapLocation {
            // check_fields refused a bitmap before sector 0.
            sector: self
                .super_offset
                .saturating_add_signed(self.bitmap_offset.into()),
            reserved_sectors: None,
        });
        MdInfo {
            format: MetadataFormat::V1 {
                minor: self.minor(),
            },
            array: ArraySide {
                uuid: ArrayUuid(self.set_uuid),
                name: self.name(),
                level: self.level,
                layout: self.layout,
                chunk_sectors: self.chunksize,
                raid_disks: self.raid_disks,
                component_sectors: self.size,
                array_sectors: None,
                events: self.events,
                clean: self.resync_offset == u64::MAX,
                resync_offset_sectors: self.resync_offset,
                reshape,
                raid0_layout_recorded: fm & FEATURE_RAID0_LAYOUT != 0,
                bitmap,
                roster,
            },
            device: DeviceSide {
                dev_id: self.dev_number,
                slot: slot_of(self.role(), recovery),
                data_offset_sectors: self.data_offset,
                data_sectors: self.data_size,
                super_offset_sectors: self.super_offset,
                device_uuid: Some(self.device_uuid),
                replacement: fm & FEATURE_REPLACEMENT != 0,
            },
        }
    }

    /// Where the bad-block log lies: (device sector, sectors reserved), if
    /// space is reserved (formats.md §2.10).
    #[must_use]
    pub fn bblog_location_sectors(&self) -> Option<(u64, u64)> {
        if self.bblog_size == 0 {
            return None;
        }
        let at = self
            .super_offset
            .checked_add_signed(self.bblog_offset.into())?;
        Some((at, self.bblog_size.into()))
    }
}

/// A role value as a slot state (formats.md §2.3). Roles at or above
/// `ROLE_NON_DATA_MIN` that md gives no name to hold no data, as spares.
fn slot_of(role: u16, recovery_offset_sectors: Option<u64>) -> SlotState {
    match role {
        ROLE_FAULTY => SlotState::Faulty,
        ROLE_JOURNAL => SlotState::Journal,
        r if r >= ROLE_NON_DATA_MIN => SlotState::Spare,
        r => SlotState::Active {
            role: r.into(),
            recovery_offset_sectors,
        },
    }
}

/// The identity checks that come before anything is trusted: magic, major
/// version, roster size (formats.md §2.6).
fn check_identity(raw: &RawSb1) -> Result<(), FormatError> {
    if raw.magic.get() != MD_SB_MAGIC {
        return Err(err(
            "magic",
            offset_of!(RawSb1, magic),
            Problem::BadMagic {
                expected: MD_SB_MAGIC.into(),
                found: raw.magic.get().into(),
            },
        ));
    }
    if raw.major_version.get() != MAJOR_VERSION {
        return Err(invalid(
            "major_version",
            offset_of!(RawSb1, major_version),
            raw.major_version.get().into(),
            "a 1.x superblock has major_version 1",
        ));
    }
    if raw.max_dev.get() > MAX_DEV_MAX {
        return Err(invalid(
            "max_dev",
            offset_of!(RawSb1, max_dev),
            raw.max_dev.get().into(),
            "more roles than fit in 4 KiB",
        ));
    }
    if raw.pad0.get() != 0 {
        return Err(err("pad0", offset_of!(RawSb1, pad0), Problem::NonZeroPad));
    }
    if raw.pad3.iter().any(|&b| b != 0) {
        return Err(err("pad3", offset_of!(RawSb1, pad3), Problem::NonZeroPad));
    }
    Ok(())
}

/// Whether `bytes` start like a 1.x superblock (magic and major version), so
/// a prober can tell "nothing here" from "something broken here".
#[must_use]
pub fn looks_like_sb1(bytes: &[u8]) -> bool {
    RawSb1::ref_from_prefix(bytes)
        .is_ok_and(|(r, _)| r.magic.get() == MD_SB_MAGIC && r.major_version.get() == MAJOR_VERSION)
}

/// Whether `bytes` start with md's magic read little-endian, whatever follows.
#[must_use]
pub fn has_md_magic(bytes: &[u8]) -> bool {
    RawSb1::ref_from_prefix(bytes).is_ok_and(|(r, _)| r.magic.get() == MD_SB_MAGIC)
}

/// The `super_offset` a superblock claims, without validating anything else.
#[must_use]
pub fn claimed_super_offset(bytes: &[u8]) -> Option<u64> {
    RawSb1::ref_from_prefix(bytes)
        .ok()
        .map(|(r, _)| r.super_offset.get())
}

/// Fuzz entry: parse at the location the bytes claim and on a device of a
/// size derived from them; a valid superblock must write back to the same bytes.
pub(crate) fn fuzz_entry(data: &[u8]) {
    let Some(at) = claimed_super_offset(data) else {
        return;
    };
    let dev_sectors = at.saturating_add((data.len() as u64) << 4);
    if let Ok(sb) = Superblock1::parse(data, at, dev_sectors) {
        let out = sb.to_bytes();
        assert_eq!(out, data[..out.len()], "write(parse(b)) == b");
        let again = Superblock1::parse(&out, at, dev_sectors);
        assert_eq!(again.as_ref(), Ok(&sb), "parse(write(x)) == x");
        let _ = sb.info();
    }
    let _ = parse_bblog(data, data.first().copied().unwrap_or(0));
}

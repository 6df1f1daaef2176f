//! md superblock v0.90 (and 0.91 during a reshape): 4096 bytes of host-endian words.
//!
//! 0.90 stores every integer in the byte order of the host that wrote it
//! (formats.md §1.2), so the raw view [`RawSb0`] is generic over byte order:
//! the magic tells which order to read, and we always write little-endian.
//! [`Superblock0`] keeps every stored field; reserved words must be zero, so a
//! parsed superblock written back gives the same bytes (when it was LE).
#![allow(clippy::host_endian_bytes)]

use crate::checksum::{sb0_csum, sb0_csum_matches};
use crate::error::{FormatError, Problem};
use crate::info::{
    ArraySide, ArrayUuid, BitmapLocation, DeviceSide, MdInfo, MetadataFormat, ReshapeInfo,
    RosterEntry, SlotState,
};
use core::mem::{offset_of, size_of};
use zerocopy::byteorder::{BigEndian, ByteOrder, LittleEndian, I32, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

const STRUCTURE: &str = "md 0.90 superblock";

/// `MD_SB_MAGIC` as read in the writer's byte order (formats.md §1.3).
pub const MD_SB_MAGIC: u32 = 0xa92b_4efc;
/// `MD_SB_BYTES`: the superblock is 4 KiB (formats.md §1.3).
pub const SB_BYTES: usize = 4096;
/// `MD_SB_DISKS`: descriptors in `disks[]` (formats.md §1.3).
pub const MD_SB_DISKS: usize = 27;
/// `minor_version` of a plain 0.90 superblock (formats.md §1.3).
pub const MINOR_VERSION_90: u32 = 90;
/// `minor_version` while a reshape is in progress (formats.md §1.3).
pub const MINOR_VERSION_91: u32 = 91;
/// `MD_RESERVED_SECTORS`: the superblock sits 64 KiB before the 64 KiB-rounded
/// end (formats.md §1.1).
pub const RESERVED_SECTORS: u64 = 128;
/// Sectors from the superblock to an internal bitmap (formats.md §3.1).
pub const BITMAP_OFFSET_SECTORS: u64 = 8;
/// Sectors left for that bitmap: the rest of the reserved 64 KiB (formats.md §1.1).
pub const BITMAP_RESERVED_SECTORS: u64 = RESERVED_SECTORS - BITMAP_OFFSET_SECTORS;
/// `size` counts KiB: two sectors each (formats.md §1.3).
const SECTORS_PER_KIB: u64 = 2;

/// `MD_SB_CLEAN`: state bit 0 (formats.md §1.3).
pub const STATE_CLEAN: u32 = 1 << 0;
/// `MD_SB_BITMAP_PRESENT`: state bit 8 (formats.md §1.3).
pub const STATE_BITMAP_PRESENT: u32 = 1 << 8;

/// `MD_DISK_FAULTY`: descriptor state bit 0 (formats.md §1.3).
pub const DISK_FAULTY: u32 = 1 << 0;
/// `MD_DISK_ACTIVE`: descriptor state bit 1 (formats.md §1.3).
pub const DISK_ACTIVE: u32 = 1 << 1;
/// `MD_DISK_SYNC`: descriptor state bit 2 (formats.md §1.3).
pub const DISK_SYNC: u32 = 1 << 2;
/// `MD_DISK_REMOVED`: descriptor state bit 3 (formats.md §1.3).
pub const DISK_REMOVED: u32 = 1 << 3;
/// `MD_DISK_JOURNAL`: descriptor state bit 18 (formats.md §1.3).
pub const DISK_JOURNAL: u32 = 1 << 18;

/// One `mdp_disk_t` as stored: 32 words (formats.md §1.3).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawDisk<O: ByteOrder> {
    number: U32<O>,
    major: U32<O>,
    minor: U32<O>,
    raid_disk: U32<O>,
    state: U32<O>,
    reserved: [u8; 108],
}

/// `mdp_super_t` as stored, in byte order `O` (formats.md §1.3).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawSb0<O: ByteOrder> {
    md_magic: U32<O>,
    major_version: U32<O>,
    minor_version: U32<O>,
    patch_version: U32<O>,
    gvalid_words: U32<O>,
    set_uuid0: U32<O>,
    ctime: U32<O>,
    level: I32<O>,
    size: U32<O>,
    nr_disks: U32<O>,
    raid_disks: U32<O>,
    md_minor: U32<O>,
    not_persistent: U32<O>,
    set_uuid1: U32<O>,
    set_uuid2: U32<O>,
    set_uuid3: U32<O>,
    gstate_creserved: [u8; 64],
    utime: U32<O>,
    state: U32<O>,
    active_disks: U32<O>,
    working_disks: U32<O>,
    failed_disks: U32<O>,
    spare_disks: U32<O>,
    sb_csum: U32<O>,
    /// events_hi/events_lo: a native u64 whichever the order (formats.md §1.2).
    events: U64<O>,
    cp_events: U64<O>,
    recovery_cp: U32<O>,
    reshape_position: U64<O>,
    new_level: I32<O>,
    delta_disks: I32<O>,
    new_layout: U32<O>,
    new_chunk: U32<O>,
    gstate_sreserved: [u8; 56],
    layout: U32<O>,
    chunk_size: U32<O>,
    root_pv: U32<O>,
    root_block: U32<O>,
    pstate_reserved: [u8; 240],
    disks: [RawDisk<O>; MD_SB_DISKS],
    this_disk: RawDisk<O>,
}

type Le = RawSb0<LittleEndian>;
const _: () = assert!(size_of::<Le>() == SB_BYTES);
const _: () = assert!(size_of::<RawDisk<LittleEndian>>() == 128);
const _: () = assert!(offset_of!(Le, set_uuid0) == 5 * 4);
const _: () = assert!(offset_of!(Le, set_uuid1) == 13 * 4);
const _: () = assert!(offset_of!(Le, utime) == 32 * 4);
const _: () = assert!(offset_of!(Le, sb_csum) == 152);
const _: () = assert!(offset_of!(Le, events) == 156);
const _: () = assert!(offset_of!(Le, cp_events) == 164);
const _: () = assert!(offset_of!(Le, recovery_cp) == 172);
const _: () = assert!(offset_of!(Le, reshape_position) == 176);
const _: () = assert!(offset_of!(Le, new_chunk) == 49 * 4);
const _: () = assert!(offset_of!(Le, layout) == 256);
const _: () = assert!(offset_of!(Le, disks) == 512);
const _: () = assert!(offset_of!(Le, this_disk) == 3968);

/// Word index of `sb_csum` (formats.md §1.3).
const CSUM_WORD: usize = offset_of!(Le, sb_csum) / 4;

/// One disk descriptor (`mdp_disk_t`), md's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disk0 {
    /// Index of this descriptor in `disks[]`.
    pub number: u32,
    /// Device major number when last seen.
    pub major: u32,
    /// Device minor number when last seen.
    pub minor: u32,
    /// Role in the array (data slot).
    pub raid_disk: u32,
    /// `DISK_*` bits.
    pub state: u32,
}

/// A validated 0.90 superblock: every stored field, md's names and units
/// (size in KiB, chunks in bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock0 {
    /// Read from a big-endian superblock (`to_bytes` writes little-endian).
    pub big_endian: bool,
    /// Device sector where it was found, if known; not stored on disk. Used
    /// by [`Superblock0::info`] for `super_offset_sectors`, `data_sectors`
    /// and the bitmap position.
    pub found_at_sector: Option<u64>,
    /// 0.90 or 0.91 (reshape fields valid).
    pub minor_version: u32,
    /// Patch level.
    pub patch_version: u32,
    /// Ignored by md, kept for the round trip.
    pub gvalid_words: u32,
    /// UUID word 0.
    pub set_uuid0: u32,
    /// Creation time, seconds.
    pub ctime: u32,
    /// md level.
    pub level: i32,
    /// KiB used per device.
    pub size: u32,
    /// Devices in the array.
    pub nr_disks: u32,
    /// Data slots.
    pub raid_disks: u32,
    /// md minor number (md127...).
    pub md_minor: u32,
    /// Always 0 for persistent superblocks.
    pub not_persistent: u32,
    /// UUID word 1.
    pub set_uuid1: u32,
    /// UUID word 2.
    pub set_uuid2: u32,
    /// UUID word 3.
    pub set_uuid3: u32,
    /// Last update time, seconds.
    pub utime: u32,
    /// `STATE_*` bits.
    pub state: u32,
    /// Active devices.
    pub active_disks: u32,
    /// Working devices.
    pub working_disks: u32,
    /// Failed devices.
    pub failed_disks: u32,
    /// Spare devices.
    pub spare_disks: u32,
    /// Update counter.
    pub events: u64,
    /// Events when `recovery_cp` was written.
    pub cp_events: u64,
    /// Resync checkpoint, sectors.
    pub recovery_cp: u32,
    /// Reshape position, array sectors (minor 91).
    pub reshape_position: u64,
    /// Level after the reshape.
    pub new_level: i32,
    /// New minus old raid_disks.
    pub delta_disks: i32,
    /// Layout after the reshape.
    pub new_layout: u32,
    /// Chunk after the reshape, BYTES.
    pub new_chunk: u32,
    /// Layout for the level.
    pub layout: u32,
    /// Chunk size, BYTES.
    pub chunk_size: u32,
    /// Legacy root device fields, kept for the round trip.
    pub root_pv: u32,
    /// Legacy root device fields, kept for the round trip.
    pub root_block: u32,
    /// The 27 descriptors (boxed: they are most of the superblock's size).
    pub disks: Box<[Disk0; MD_SB_DISKS]>,
    /// This device's descriptor; `this_disk.number` indexes `disks`.
    pub this_disk: Disk0,
}

/// Where the 0.90 superblock of a device of `dev_sectors` sectors starts, or
/// `None` if the device is smaller than the reserved area (formats.md §1.1).
#[must_use]
pub fn super_offset_sectors(dev_sectors: u64) -> Option<u64> {
    (dev_sectors & !(RESERVED_SECTORS - 1)).checked_sub(RESERVED_SECTORS)
}

fn err(field: &'static str, offset: usize, problem: Problem) -> FormatError {
    FormatError::new(STRUCTURE, field, offset as u64, problem)
}

fn disk_from<O: ByteOrder>(d: &RawDisk<O>) -> Disk0 {
    Disk0 {
        number: d.number.get(),
        major: d.major.get(),
        minor: d.minor.get(),
        raid_disk: d.raid_disk.get(),
        state: d.state.get(),
    }
}

fn disk_to(d: &Disk0) -> RawDisk<LittleEndian> {
    RawDisk {
        number: d.number.into(),
        major: d.major.into(),
        minor: d.minor.into(),
        raid_disk: d.raid_disk.into(),
        state: d.state.into(),
        reserved: [0; 108],
    }
}

/// Whether `bytes` start with the 0.90 magic in either byte order.
#[must_use]
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.get(..4).is_some_and(|m| {
        let m = [m[0], m[1], m[2], m[3]];
        u32::from_le_bytes(m) == MD_SB_MAGIC || u32::from_be_bytes(m) == MD_SB_MAGIC
    })
}

impl Superblock0 {
    /// Parse and validate 4096 bytes (either byte order). Error offsets are
    /// relative to `bytes`; `found_at_sector` is left `None`.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let Some(bytes) = bytes.get(..SB_BYTES) else {
            return Err(err(
                "md_magic",
                0,
                Problem::Truncated {
                    need: SB_BYTES,
                    have: bytes.len(),
                },
            ));
        };
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if u32::from_le_bytes(magic) == MD_SB_MAGIC {
            parse_in::<LittleEndian>(bytes, false)
        } else if u32::from_be_bytes(magic) == MD_SB_MAGIC {
            parse_in::<BigEndian>(bytes, true)
        } else {
            Err(err(
                "md_magic",
                0,
                Problem::BadMagic {
                    expected: MD_SB_MAGIC.into(),
                    found: u32::from_le_bytes(magic).into(),
                },
            ))
        }
    }

    /// Parse and record where the superblock was found.
    pub fn parse_at(bytes: &[u8], found_at_sector: u64) -> Result<Self, FormatError> {
        let mut sb = Self::parse(bytes)?;
        sb.found_at_sector = Some(found_at_sector);
        Ok(sb)
    }

    /// Checks on fields alone (formats.md §1.3): versions and descriptor indices.
    pub fn check_fields(&self) -> Result<(), FormatError> {
        if self.minor_version != MINOR_VERSION_90 && self.minor_version != MINOR_VERSION_91 {
            return Err(err(
                "minor_version",
                offset_of!(Le, minor_version),
                Problem::Invalid {
                    found: self.minor_version.into(),
                    why: "not 90 or 91",
                },
            ));
        }
        if self.this_disk.number as usize >= MD_SB_DISKS {
            return Err(err(
                "this_disk.number",
                offset_of!(Le, this_disk),
                Problem::Invalid {
                    found: self.this_disk.number.into(),
                    why: "not below 27",
                },
            ));
        }
        if self.raid_disks as usize > MD_SB_DISKS {
            return Err(err(
                "raid_disks",
                offset_of!(Le, raid_disks),
                Problem::Invalid {
                    found: self.raid_disks.into(),
                    why: "more than 27 devices",
                },
            ));
        }
        Ok(())
    }

    /// Serialise as a little-endian 0.90 superblock with a fresh checksum.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; SB_BYTES] {
        assert!(
            self.check_fields().is_ok(),
            "only a valid superblock is written"
        );
        let raw: Le = RawSb0 {
            md_magic: MD_SB_MAGIC.into(),
            major_version: 0.into(),
            minor_version: self.minor_version.into(),
            patch_version: self.patch_version.into(),
            gvalid_words: self.gvalid_words.into(),
            set_uuid0: self.set_uuid0.into(),
            ctime: self.ctime.into(),
            level: self.level.into(),
            size: self.size.into(),
            nr_disks: self.nr_disks.into(),
            raid_disks: self.raid_disks.into(),
            md_minor: self.md_minor.into(),
            not_persistent: self.not_persistent.into(),
            set_uuid1: self.set_uuid1.into(),
            set_uuid2: self.set_uuid2.into(),
            set_uuid3: self.set_uuid3.into(),
            gstate_creserved: [0; 64],
            utime: self.utime.into(),
            state: self.state.into(),
            active_disks: self.active_disks.into(),
            working_disks: self.working_disks.into(),
            failed_disks: self.failed_disks.into(),
            spare_disks: self.spare_disks.into(),
            sb_csum: 0.into(),
            events: self.events.into(),
            cp_events: self.cp_events.into(),
            recovery_cp: self.recovery_cp.into(),
            reshape_position: self.reshape_position.into(),
            new_level: self.new_level.into(),
            delta_disks: self.delta_disks.into(),
            new_layout: self.new_layout.into(),
            new_chunk: self.new_chunk.into(),
            gstate_sreserved: [0; 56],
            layout: self.layout.into(),
            chunk_size: self.chunk_size.into(),
            root_pv: self.root_pv.into(),
            root_block: self.root_block.into(),
            pstate_reserved: [0; 240],
            disks: self.disks.each_ref().map(disk_to),
            this_disk: disk_to(&self.this_disk),
        };
        let mut out = [0u8; SB_BYTES];
        out.copy_from_slice(raw.as_bytes());
        let words: Vec<u32> = out
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let csum = sb0_csum(&words, CSUM_WORD);
        let at = offset_of!(Le, sb_csum);
        out[at..at + 4].copy_from_slice(&csum.to_le_bytes());
        out
    }

    /// The array UUID: the four words in order, each as its big-endian bytes,
    /// so the text form is mdadm's (formats.md §1.4) whatever the byte order.
    #[must_use]
    pub fn uuid(&self) -> ArrayUuid {
        let mut u = [0u8; 16];
        for (dst, w) in u.chunks_exact_mut(4).zip([
            self.set_uuid0,
            self.set_uuid1,
            self.set_uuid2,
            self.set_uuid3,
        ]) {
            dst.copy_from_slice(&w.to_be_bytes());
        }
        ArrayUuid(u)
    }

    /// The resync checkpoint md derives (formats.md §1.4): in sync when clean,
    /// else `recovery_cp` if written at the current events, else from 0.
    #[must_use]
    pub fn resync_offset_sectors(&self) -> u64 {
        if self.state & STATE_CLEAN != 0 {
            u64::MAX
        } else if self.events == self.cp_events {
            self.recovery_cp.into()
        } else {
            0
        }
    }

    /// A descriptor's slot as md reads it (formats.md §1.4): faulty first,
    /// then in-sync, then active-but-recovering only during a reshape.
    fn slot_of(&self, d: &Disk0) -> SlotState {
        if d.state & DISK_FAULTY != 0 {
            SlotState::Faulty
        } else if d.state & DISK_JOURNAL != 0 {
            SlotState::Journal
        } else if d.state & DISK_SYNC != 0 {
            SlotState::Active {
                role: d.raid_disk,
                recovery_offset_sectors: None,
            }
        } else if d.state & DISK_ACTIVE != 0 && self.minor_version == MINOR_VERSION_91 {
            SlotState::Active {
                role: d.raid_disk,
                recovery_offset_sectors: Some(0),
            }
        } else {
            SlotState::Spare
        }
    }

    /// The normalized view (formats.md §1.4). The roster lists descriptors
    /// that name a device: not REMOVED-only, and either below raid_disks or
    /// with any state or device number set. When `found_at_sector` is
    /// unknown, the superblock and data end are reported at sector 0.
    #[must_use]
    pub fn info(&self) -> MdInfo {
        let sb_at = self.found_at_sector.unwrap_or(0);
        let roster = self
            .disks
            .iter()
            .enumerate()
            .filter(|&(i, d)| {
                let removed_only = d.state & DISK_REMOVED != 0 && d.state & DISK_FAULTY == 0;
                let named = (i as u64) < u64::from(self.raid_disks)
                    || d.state != 0
                    || d.major != 0
                    || d.minor != 0;
                !removed_only && named
            })
            .map(|(_, d)| RosterEntry {
                dev_id: d.number,
                slot: self.slot_of(d),
            })
            .collect();
        let reshape = (self.minor_version == MINOR_VERSION_91).then(|| ReshapeInfo {
            position_sectors: self.reshape_position,
            new_level: self.new_level,
            new_layout: self.new_layout,
            new_chunk_sectors: self.new_chunk / crate::SECTOR_BYTES as u32,
            delta_disks: self.delta_disks,
            new_offset_sectors: 0,
            backwards: self.delta_disks < 0,
        });
        let bitmap = (self.state & STATE_BITMAP_PRESENT != 0).then_some(BitmapLocation {
            sector: sb_at + BITMAP_OFFSET_SECTORS,
            reserved_sectors: Some(BITMAP_RESERVED_SECTORS),
        });
        // raid0 and linear ignore size (formats.md §1.3).
        let component_sectors = if self.level >= 1 {
            u64::from(self.size) * SECTORS_PER_KIB
        } else {
            0
        };
        MdInfo {
            format: MetadataFormat::V0_90 {
                big_endian: self.big_endian,
            },
            array: ArraySide {
                uuid: self.uuid(),
                name: String::new(),
                level: self.level,
                layout: self.layout,
                chunk_sectors: self.chunk_size / crate::SECTOR_BYTES as u32,
                raid_disks: self.raid_disks,
                component_sectors,
                array_sectors: None,
                events: self.events,
                clean: self.state & STATE_CLEAN != 0,
                resync_offset_sectors: self.resync_offset_sectors(),
                reshape,
                raid0_layout_recorded: false,
                bitmap,
                roster,
            },
            device: DeviceSide {
                dev_id: self.this_disk.number,
                slot: self.slot_of(&self.this_disk),
                data_offset_sectors: 0,
                data_sectors: sb_at,
                super_offset_sectors: sb_at,
                device_uuid: None,
                replacement: false,
            },
        }
    }
}

/// Validate and convert a superblock already known to be in byte order `O`.
fn parse_in<O: ByteOrder>(bytes: &[u8], big_endian: bool) -> Result<Superblock0, FormatError> {
    let (raw, _) = RawSb0::<O>::ref_from_prefix(bytes).map_err(|_| {
        err(
            "md_magic",
            0,
            Problem::Truncated {
                need: SB_BYTES,
                have: bytes.len(),
            },
        )
    })?;
    assert_eq!(
        raw.md_magic.get(),
        MD_SB_MAGIC,
        "caller detected the byte order from the magic"
    );
    if raw.major_version.get() != 0 {
        return Err(err(
            "major_version",
            offset_of!(Le, major_version),
            Problem::Invalid {
                found: raw.major_version.get().into(),
                why: "0.90 has major 0",
            },
        ));
    }
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|w| U32::<O>::from_bytes([w[0], w[1], w[2], w[3]]).get())
        .collect();
    let computed = sb0_csum(&words, CSUM_WORD);
    let stored = raw.sb_csum.get();
    if !sb0_csum_matches(stored, computed) {
        return Err(err(
            "sb_csum",
            offset_of!(Le, sb_csum),
            Problem::BadChecksum {
                computed: computed.into(),
                stored: stored.into(),
            },
        ));
    }
    check_reserved(raw)?;
    let sb = Superblock0 {
        big_endian,
        found_at_sector: None,
        minor_version: raw.minor_version.get(),
        patch_version: raw.patch_version.get(),
        gvalid_words: raw.gvalid_words.get(),
        set_uuid0: raw.set_uuid0.get(),
        ctime: raw.ctime.get(),
        level: raw.level.get(),
        size: raw.size.get(),
        nr_disks: raw.nr_disks.get(),
        raid_disks: raw.raid_disks.get(),
        md_minor: raw.md_minor.get(),
        not_persistent: raw.not_persistent.get(),
        set_uuid1: raw.set_uuid1.get(),
        set_uuid2: raw.set_uuid2.get(),
        set_uuid3: raw.set_uuid3.get(),
        utime: raw.utime.get(),
        state: raw.state.get(),
        active_disks: raw.active_disks.get(),
        working_disks: raw.working_disks.get(),
        failed_disks: raw.failed_disks.get(),
        spare_disks: raw.spare_disks.get(),
        events: raw.events.get(),
        cp_events: raw.cp_events.get(),
        recovery_cp: raw.recovery_cp.get(),
        reshape_position: raw.reshape_position.get(),
        new_level: raw.new_level.get(),
        delta_disks: raw.delta_disks.get(),
        new_layout: raw.new_layout.get(),
        new_chunk: raw.new_chunk.get(),
        layout: raw.layout.get(),
        chunk_size: raw.chunk_size.get(),
        root_pv: raw.root_pv.get(),
        root_block: raw.root_block.get(),
        disks: Box::new(raw.disks.each_ref().map(disk_from)),
        this_disk: disk_from(&raw.this_disk),
    };
    sb.check_fields()?;
    Ok(sb)
}

/// Reserved words must be zero: md never writes them, so anything there is
/// not a superblock we understand (style R17).
fn check_reserved<O: ByteOrder>(raw: &RawSb0<O>) -> Result<(), FormatError> {
    let zero = |b: &[u8]| b.iter().all(|&x| x == 0);
    if !zero(&raw.gstate_creserved) {
        return Err(err(
            "gstate_creserved",
            offset_of!(Le, gstate_creserved),
            Problem::NonZeroPad,
        ));
    }
    if !zero(&raw.gstate_sreserved) {
        return Err(err(
            "gstate_sreserved",
            offset_of!(Le, gstate_sreserved),
            Problem::NonZeroPad,
        ));
    }
    if !zero(&raw.pstate_reserved) {
        return Err(err(
            "pstate_reserved",
            offset_of!(Le, pstate_reserved),
            Problem::NonZeroPad,
        ));
    }
    let disk_bytes = size_of::<RawDisk<O>>();
    let reserved_in_disk = offset_of!(RawDisk<LittleEndian>, reserved);
    for (i, d) in raw.disks.iter().enumerate() {
        if !zero(&d.reserved) {
            let at = offset_of!(Le, disks) + i * disk_bytes + reserved_in_disk;
            return Err(err("disks.reserved", at, Problem::NonZeroPad));
        }
    }
    if !zero(&raw.this_disk.reserved) {
        let at = offset_of!(Le, this_disk) + reserved_in_disk;
        return Err(err("this_disk.reserved", at, Problem::NonZeroPad));
    }
    Ok(())
}

/// Fuzz entry: a superblock that parses must write back and parse to the
/// same value; an LE one with an exact checksum must give back its bytes.
pub(crate) fn fuzz_entry(data: &[u8]) {
    let Ok(sb) = Superblock0::parse(data) else {
        return;
    };
    let out = sb.to_bytes();
    let again = Superblock0::parse(&out).map(|s| Superblock0 {
        big_endian: sb.big_endian,
        ..s
    });
    assert_eq!(again.as_ref(), Ok(&sb), "parse(write(x)) == x");
    if !sb.big_endian && data[152..156] == out[152..156] {
        assert_eq!(out[..], data[..SB_BYTES], "write(parse(b)) == b");
    }
    let _ = sb.info();
}

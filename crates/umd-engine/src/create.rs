//! `umd create`'s planning: from the options and the member sizes to the exact
//! bytes every member of a new array receives.
//!
//! Why it exists: an array umd creates must look to Linux and mdadm as if
//! mdadm 4.x had made it, so the placement policy (data offset, superblock and
//! bitmap positions, bad-block log reservation, component rounding, bitmap
//! chunk) follows mdadm's defaults (formats.md §1.1, §2.9, §3). It is pure so
//! every refusal and every placement can be tested without files (style R8);
//! the command line opens the members and performs the writes.
//!
//! Invariants owned here:
//! - Every superblock is validated before it is serialised and parsed back
//!   from its own bytes afterwards (style R6); so is the bitmap superblock.
//! - No write touches a member's data area, so `--assume-clean` over existing
//!   data (mdadm's re-create trick) keeps that data.
//! - Per member, writes come in commit order: stale-metadata clears, then the
//!   bitmap, then the superblock, which makes the member part of the array.

use crate::errno::{EngineError, Errno};
use umd_formats::bitmap::{self, BitmapSuper};
use umd_formats::sb0::{self, Disk0, Superblock0};
use umd_formats::sb1::{self, Superblock1};
use umd_formats::SECTOR_BYTES;
use umd_layout::geometry::{Geometry, GeometrySpec, Level, Raid0Layout};

mod bitmap_plan;
pub mod ddf;
pub mod ddf_add;
mod ddf_vd;
mod layout_names;
mod ppl_plan;
mod superblocks;
#[cfg(test)]
mod tests;

use bitmap_plan::{bitmap_area, bitmap_offset_sectors, plan_bitmap};
pub use layout_names::parse_layout;
use ppl_plan::{check_ppl, ppl_area_write, ppl_word, space_sectors};
use superblocks::{superblock_0_90, superblock_1};

/// mdadm's default chunk for raid0/4/5/6/10, KiB (formats.md §2.9).
pub const CHUNK_KIB_DEFAULT: u32 = 512;
/// Sectors per KiB (a sector is 512 bytes).
const SECTORS_PER_KIB: u64 = 2;
/// Bytes per KiB.
const KIB_BYTES: u32 = 1024;
/// The smallest chunk md stripes with: 4 KiB, a page (formats.md §4.4).
const CHUNK_KIB_MIN: u32 = 4;
/// md's "in sync" resync checkpoint, `MaxSector` (formats.md §2.7).
pub const RESYNC_DONE: u64 = u64::MAX;
/// The events count mdadm's first superblock write carries.
pub const EVENTS_INITIAL: u64 = 0;

/// raid4/5/6 algorithm `ALGORITHM_LEFT_SYMMETRIC`, mdadm's default (formats.md §2.9, §4.4).
pub const LAYOUT_LEFT_SYMMETRIC: u32 = 2;
/// raid10 "n2": two near copies, mdadm's default (formats.md §2.9, §4.6).
pub const LAYOUT_RAID10_N2: u32 = 0x102;
/// raid0 layout `RAID0_ORIG_LAYOUT`, what mdadm records for new raid0 (formats.md §2.9, §4.2).
pub const LAYOUT_RAID0_ORIG: u32 = 1;
/// raid0 layout `RAID0_ALT_MULTIZONE_LAYOUT` (formats.md §4.2).
pub const LAYOUT_RAID0_ALT: u32 = 2;
/// raid10 layout bit 16: the "offset" variant of far copies (formats.md §4.6).
const RAID10_OFFSET_BIT: u32 = 1 << 16;
/// raid10 layout: far copies live in bits 8..16 (formats.md §4.6).
const RAID10_FAR_SHIFT: u32 = 8;
/// raid10 copies are stored in one byte each (formats.md §4.6).
const RAID10_COPIES_MAX: u32 = 0xff;

/// 1.1/1.2 data offsets are rounded up to 1 MiB (formats.md §2.9).
const DATA_OFFSET_ALIGN_SECTORS: u64 = 2048;
/// mdadm's fixed 12 KiB before the bitmap space when it picks a data offset (formats.md §2.9).
const DATA_OFFSET_BASE_SECTORS: u64 = 24;
/// Reshape headroom starts at 128 MiB (formats.md §2.9).
const HEADROOM_START_SECTORS: u64 = 128 * 1024 * SECTORS_PER_KIB;
/// Headroom halves while larger than 1/1024 of the device (formats.md §2.9, "~0.1%").
const HEADROOM_DEVICE_SHIFT: u32 = 10;
/// ...and while it stays at least this many chunks after halving (formats.md §2.9).
const HEADROOM_HALF_CHUNKS_MIN: u64 = 2;

/// Devices below 64 KiB get no bitmap space (mdadm's `choose_bm_space`, formats.md §2.9).
const BM_SPACE_DEVICE_MIN_SECTORS: u64 = 128;
/// Bitmap space up to 8 GiB: 4 KiB (formats.md §2.9).
const BM_SPACE_SMALL_SECTORS: u64 = 8;
/// Bitmap space from 8 GiB: 64 KiB (formats.md §2.9).
const BM_SPACE_MEDIUM_SECTORS: u64 = 128;
/// Bitmap space from 200 GiB: 128 KiB (formats.md §2.9).
const BM_SPACE_LARGE_SECTORS: u64 = 256;
/// Where the medium bitmap space starts: 8 GiB.
const BM_SPACE_MEDIUM_FROM_SECTORS: u64 = 8 * 1024 * 1024 * SECTORS_PER_KIB;
/// Where the large bitmap space starts: 200 GiB.
const BM_SPACE_LARGE_FROM_SECTORS: u64 = 200 * 1024 * 1024 * SECTORS_PER_KIB;
/// mdadm measures the medium threshold past one 4 KiB superblock area.
const BM_SPACE_SB_SECTORS: u64 = 8;

/// Bad-block log reservation: 8 sectors, 512 entries (formats.md §2.9, §2.10).
const BBLOG_SECTORS: u16 = 8;
/// 1.1/1.2 bitmap: 4 KiB after the superblock start (formats.md §2.9, §3.1).
const BITMAP_OFFSET_1X_SECTORS: u64 = 8;
/// One superblock area: md reads 4 KiB, and we write whole 4 KiB units (formats.md §2.1).
const SB_AREA_BYTES: usize = 4096;
/// Bitmap I/O is in 4 KiB pages, so its area is reserved in those (formats.md §3.3).
const BITMAP_PAGE_BYTES: u64 = 4096;
/// The smallest bitmap chunk mdadm uses: a page (formats.md §3.2).
const BITMAP_CHUNK_MIN_BYTES: u64 = 4096;
/// mdadm's default bitmap chunk: 64 MiB, unless the bits need larger (formats.md §3.2).
const BITMAP_CHUNK_DEFAULT_BYTES: u64 = 64 * 1024 * 1024;
/// mdadm limits a default internal bitmap to 128 KiB (formats.md §3.5).
const BITMAP_ROOM_MAX_SECTORS: u64 = 256;
/// `daemon_sleep`: md's default of 5 seconds (formats.md §3.2).
const BITMAP_DAEMON_SLEEP_S: u32 = 5;
/// Bits per byte of the bitmap.
const BITS_PER_BYTE: u64 = 8;

/// mdadm rounds a raid1 component to 64 KiB so a later reshape to raid5 has whole chunks.
const RAID1_ROUND_SECTORS: u64 = 128;
/// 0.90 `size` is a u32 of KiB: levels >= 1 use at most 2^33 - 2 sectors (formats.md §1.1).
const SIZE_MAX_0_90_SECTORS: u64 = (1 << 33) - 2;
/// A raid_disks count the 1.x roster rounds to whole 512-byte sectors (formats.md §2.3).
const ROSTER_ROUND_BYTES: usize = 512;
/// The DDF anchor lives in a device's last sector (formats.md §5.1).
const DDF_ANCHOR_BYTES: u64 = 512;
/// Longest array name: 1.x `set_name` is 32 bytes (formats.md §2.2).
pub const NAME_BYTES_MAX: usize = 32;
/// Low 40 bits of a 1.x time stamp are seconds (formats.md §2.2).
const TIME_SECONDS_MASK: u64 = (1 << 40) - 1;

const _: () = assert!(BITMAP_CHUNK_DEFAULT_BYTES <= u32::MAX as u64);
const _: () = assert!(BITMAP_OFFSET_1X_SECTORS * SECTOR_BYTES == SB_AREA_BYTES as u64);
const _: () = assert!(sb0::SB_BYTES == SB_AREA_BYTES);
const _: () = assert!(sb1::READ_BYTES == SB_AREA_BYTES);
const _: () =
    assert!(DATA_OFFSET_BASE_SECTORS + BM_SPACE_LARGE_SECTORS < DATA_OFFSET_ALIGN_SECTORS);

/// What to create: the command line's options plus what the caller measured
/// and drew (member sizes, UUIDs, the time), so planning stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSpec {
    /// md level: -1 linear, 0, 1, 4, 5, 6, 10.
    pub level: i32,
    /// Number of roles; equals the number of MEMBER arguments.
    pub raid_disks: u32,
    /// Chunk in KiB; `None` = mdadm's default for the level.
    pub chunk_kib: Option<u32>,
    /// Layout by mdadm name or number (see [`parse_layout`]); `None` = default.
    pub layout: Option<String>,
    /// "0.90", "1.0", "1.1" or "1.2" ("ddf" goes to [`ddf::plan_ddf_create`]).
    pub metadata: String,
    /// Add an internal write-intent bitmap.
    pub bitmap: bool,
    /// Bytes of data per bitmap bit, in KiB (mdadm's `--bitmap-chunk`);
    /// `None` = mdadm's default (64 MiB, or more if the bits must fit).
    pub bitmap_chunk_kib: Option<u32>,
    /// Array name, stored in 1.x `set_name` (at most 32 bytes).
    pub name: String,
    /// Mark the array in sync: no initial resync, bitmap bits clear.
    pub assume_clean: bool,
    /// Size of each MEMBER argument in bytes; `None` = the word `missing`.
    pub member_bytes: Vec<Option<u64>>,
    /// How to name each MEMBER in messages (its path); may be empty.
    pub member_names: Vec<String>,
    /// Array UUID (random, drawn by the caller).
    pub uuid: [u8; 16],
    /// One device UUID per MEMBER argument (1.x only).
    pub device_uuids: Vec<[u8; 16]>,
    /// Creation time, seconds since the epoch.
    pub ctime_seconds: u64,
    /// md's `consistency_policy` `ppl`: a partial parity log area on every
    /// member instead of a bitmap (raid5, 1.x; formats.md §2.9, §2.11).
    pub ppl: bool,
}

/// Bytes to write at one byte offset of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberWrite {
    /// Byte offset from the start of the member.
    pub offset_bytes: u64,
    /// What to write there.
    pub bytes: Vec<u8>,
}

/// Everything `umd create` writes, and the array that results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePlan {
    /// Writes per MEMBER argument, in order; empty for `missing`.
    pub members: Vec<Vec<MemberWrite>>,
    /// The array's shape, as assembly will find it.
    pub geometry: GeometrySpec,
    /// The array's length in sectors.
    pub array_sectors: u64,
    /// Device sector where data starts, per MEMBER argument (also for missing ones).
    pub data_offset_sectors: Vec<u64>,
    /// Sectors used per member (md's dev_sectors; the smallest usable size
    /// rounded down, also for raid0/linear where each member may use more).
    pub component_sectors: u64,
    /// One line for the user, mdadm style.
    pub summary: String,
}

/// Which superblock the array gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metadata {
    V090,
    V1 { minor: u8 },
}

impl Metadata {
    fn parse(text: &str) -> Result<Self, EngineError> {
        match text {
            "0.90" | "0" | "0.9" | "default/0.90" => Ok(Self::V090),
            "1.0" => Ok(Self::V1 { minor: 0 }),
            "1.1" => Ok(Self::V1 { minor: 1 }),
            "1.2" | "1" | "default" => Ok(Self::V1 { minor: 2 }),
            "ddf" => Err(EngineError::new(
                Errno::EOPNOTSUPP,
                "--metadata ddf: DDF containers are planned by create::ddf::plan_ddf_create",
            )),
            other => Err(einval(format!(
                "--metadata {other}: unknown (choose 0.90, 1.0, 1.1 or 1.2)"
            ))),
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::V090 => "0.90",
            Self::V1 { minor: 0 } => "1.0",
            Self::V1 { minor: 1 } => "1.1",
            Self::V1 { .. } => "1.2",
        }
    }
}

/// The options, resolved and checked against each other.
#[derive(Debug, Clone, Copy)]
struct Shape {
    level: Level,
    layout: u32,
    chunk_sectors: u32,
    metadata: Metadata,
    /// The array starts in sync (assume-clean, or a level with nothing to sync).
    clean: bool,
    /// A PPL area takes the bitmap's place (`ppl_plan.rs`).
    ppl: bool,
}

/// Where one present member's superblock and data go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    dev_sectors: u64,
    super_offset: u64,
    data_offset: u64,
    /// Usable data sectors from `data_offset` (1.x `data_size`).
    data_sectors: u64,
}

/// The bitmap every member carries (formats.md §3).
#[derive(Debug, Clone, Copy)]
struct BitmapPlan {
    chunk_bytes: u32,
    sync_sectors: u64,
    bits: u64,
    area_sectors: u64,
}

fn einval(message: impl Into<String>) -> EngineError {
    EngineError::new(Errno::EINVAL, message)
}

fn enospc(message: impl Into<String>) -> EngineError {
    EngineError::new(Errno::ENOSPC, message)
}

/// mdadm's `choose_bm_space`: sectors kept for a bitmap on a device of
/// `dev_sectors` (formats.md §2.9).
fn bm_space_sectors(dev_sectors: u64) -> u64 {
    if dev_sectors < BM_SPACE_DEVICE_MIN_SECTORS {
        0
    } else if dev_sectors - BM_SPACE_DEVICE_MIN_SECTORS >= BM_SPACE_LARGE_FROM_SECTORS {
        BM_SPACE_LARGE_SECTORS
    } else if dev_sectors - BM_SPACE_SB_SECTORS > BM_SPACE_MEDIUM_FROM_SECTORS {
        BM_SPACE_MEDIUM_SECTORS
    } else {
        BM_SPACE_SMALL_SECTORS
    }
}

/// mdadm's 1.1/1.2 data offset for a device of `dev_sectors` (formats.md §2.9):
/// fixed part, bitmap space and reshape headroom, rounded up to 1 MiB.
#[cfg(test)]
fn data_offset_1x_sectors(dev_sectors: u64, chunk_sectors: u32) -> u64 {
    data_offset_1x_with(dev_sectors, chunk_sectors, bm_space_sectors(dev_sectors))
}

/// [`data_offset_1x_sectors`] with `space` sectors kept for a bitmap or PPL.
fn data_offset_1x_with(dev_sectors: u64, chunk_sectors: u32, space: u64) -> u64 {
    let chunk = u64::from(chunk_sectors);
    let mut headroom = HEADROOM_START_SECTORS;
    while (headroom << HEADROOM_DEVICE_SHIFT) > dev_sectors
        && (chunk == 0 || headroom / 2 >= HEADROOM_HALF_CHUNKS_MIN * chunk)
    {
        headroom >>= 1;
    }
    let raw = DATA_OFFSET_BASE_SECTORS + space + headroom;
    let offset = raw.next_multiple_of(DATA_OFFSET_ALIGN_SECTORS);
    assert!(offset >= raw, "rounding up never shrinks");
    assert_eq!(offset % DATA_OFFSET_ALIGN_SECTORS, 0);
    offset
}

/// `max_dev` as mdadm sets it: the roster fills whole 512-byte sectors (formats.md §2.3).
fn max_dev_for(raid_disks: u32) -> u32 {
    let bytes = (sb1::HEADER_BYTES + 2 * raid_disks as usize).next_multiple_of(ROSTER_ROUND_BYTES);
    let max_dev = ((bytes - sb1::HEADER_BYTES) / 2) as u32;
    assert!(max_dev >= raid_disks, "every role has a roster entry");
    max_dev
}

fn member_name(spec: &CreateSpec, i: usize) -> String {
    spec.member_names
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("member {i}"))
}

/// Plan a new array: every byte each member gets, and the resulting shape.
pub fn plan_create(spec: &CreateSpec) -> Result<CreatePlan, EngineError> {
    let shape = resolve_shape(spec)?;
    let placements = place_members(spec, &shape)?;
    let component = component_sectors(spec, &shape, &placements)?;
    let geometry_spec = geometry_spec(spec, &shape, &placements, component);
    let geometry = Geometry::new(&geometry_spec).map_err(|e| {
        einval(format!(
            "{} over {} members: {e}",
            geometry_spec.level, spec.raid_disks
        ))
    })?;
    check_missing(spec, &shape, &geometry)?;
    let bitmap = plan_bitmap(spec, &shape, &geometry, &placements, component)?;
    let members = placements
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Some(p) => member_writes(spec, &shape, i, p, component, bitmap.as_ref()),
            None => Vec::new(),
        })
        .collect::<Vec<_>>();
    let data_offset = placements.iter().flatten().map(|p| p.data_offset).next();
    let data_offset_sectors = placements
        .iter()
        .map(|p| p.map_or(data_offset.unwrap_or(0), |p| p.data_offset))
        .collect();
    let summary = summary(spec, &shape, &geometry);
    assert_eq!(members.len(), spec.member_bytes.len());
    assert!(geometry.array_sectors() > 0);
    Ok(CreatePlan {
        members,
        array_sectors: geometry.array_sectors(),
        geometry: geometry_spec,
        data_offset_sectors,
        component_sectors: component,
        summary,
    })
}

/// Level, layout, chunk and metadata from the options, checked against each
/// other and against the member list.
fn resolve_shape(spec: &CreateSpec) -> Result<Shape, EngineError> {
    let level = Level::from_md(spec.level).ok_or_else(|| {
        einval(format!(
            "--level {}: not a level umd can create",
            spec.level
        ))
    })?;
    let metadata = Metadata::parse(&spec.metadata)?;
    if spec.member_bytes.len() != spec.raid_disks as usize {
        return Err(einval(format!(
            "--raid-devices {} but {} members given (spares are not supported yet)",
            spec.raid_disks,
            spec.member_bytes.len()
        )));
    }
    if spec.device_uuids.len() != spec.member_bytes.len() {
        return Err(einval("one device UUID per member is needed"));
    }
    if metadata == Metadata::V090 && spec.raid_disks as usize > sb0::MD_SB_DISKS {
        return Err(einval(format!(
            "--raid-devices {}: metadata 0.90 holds at most {} devices",
            spec.raid_disks,
            sb0::MD_SB_DISKS
        )));
    }
    if spec.name.len() > NAME_BYTES_MAX || spec.name.contains('\0') {
        return Err(einval(format!(
            "--name {:?}: at most {NAME_BYTES_MAX} bytes, no NUL",
            spec.name
        )));
    }
    let layout = match (&spec.layout, level) {
        (Some(name), Level::Linear | Level::Raid1) => {
            return Err(einval(format!("--layout {name}: {level} has no layouts")))
        }
        (Some(name), _) => parse_layout(spec.level, name)?,
        (None, Level::Raid5 | Level::Raid6) => LAYOUT_LEFT_SYMMETRIC,
        (None, Level::Raid10) => LAYOUT_RAID10_N2,
        (None, Level::Raid0) => LAYOUT_RAID0_ORIG,
        (None, _) => 0,
    };
    let chunk_sectors = resolve_chunk(spec, level)?;
    let redundant = !matches!(level, Level::Linear | Level::Raid0);
    if spec.bitmap && !redundant {
        return Err(einval(format!(
            "--bitmap internal: not meaningful for {level}, which has nothing to resync"
        )));
    }
    // raid4/5/6 created with a member missing have nothing a resync could
    // make consistent, and md refuses to start a dirty degraded parity
    // array: such arrays are created clean, as mdadm does.
    let parity_degraded =
        level.parity_members() > 0 && spec.member_bytes.iter().any(Option::is_none);
    Ok(Shape {
        level,
        layout,
        chunk_sectors,
        metadata,
        clean: spec.assume_clean || !redundant || parity_degraded,
        ppl: check_ppl(spec, level, metadata)?,
    })
}

fn resolve_chunk(spec: &CreateSpec, level: Level) -> Result<u32, EngineError> {
    let kib = match (spec.chunk_kib, level) {
        (Some(_), Level::Raid1) => {
            return Err(einval("--chunk: raid1 has no chunk size"));
        }
        (Some(kib), _) => kib,
        (None, Level::Linear | Level::Raid1) => 0,
        (None, _) => CHUNK_KIB_DEFAULT,
    };
    let striped = !matches!(level, Level::Linear | Level::Raid1);
    if striped && (kib < CHUNK_KIB_MIN || !kib.is_power_of_two()) {
        return Err(einval(format!(
            "--chunk {kib}: must be a power of two of at least {CHUNK_KIB_MIN} KiB"
        )));
    }
    if level == Level::Linear && kib != 0 && kib % CHUNK_KIB_MIN != 0 {
        return Err(einval(format!(
            "--chunk {kib}: linear rounding must be a multiple of {CHUNK_KIB_MIN} KiB"
        )));
    }
    // 0.90 stores the chunk in bytes as a u32 (formats.md §1.3).
    if kib.checked_mul(KIB_BYTES).is_none() {
        return Err(einval(format!("--chunk {kib}: too large")));
    }
    Ok(kib * SECTORS_PER_KIB as u32)
}

/// Superblock and data placement of every present member (formats.md §1.1, §2.1, §2.9).
fn place_members(spec: &CreateSpec, shape: &Shape) -> Result<Vec<Option<Placement>>, EngineError> {
    let sizes: Vec<Option<u64>> = spec
        .member_bytes
        .iter()
        .map(|b| b.map(|b| b / SECTOR_BYTES))
        .collect();
    let smallest = sizes
        .iter()
        .flatten()
        .copied()
        .min()
        .ok_or_else(|| einval("every member is missing"))?;
    let data_offset_1x = data_offset_1x_with(
        smallest,
        shape.chunk_sectors,
        space_sectors(shape, smallest),
    );
    let mut out = Vec::with_capacity(sizes.len());
    for (i, size) in sizes.iter().enumerate() {
        let Some(n) = *size else {
            out.push(None);
            continue;
        };
        let placed = match shape.metadata {
            Metadata::V090 => place_0_90(n, shape.level),
            Metadata::V1 { minor: 0 } => place_1_0(n, space_sectors(shape, n)),
            Metadata::V1 { minor } => place_1_1_or_1_2(n, minor, data_offset_1x),
        };
        let p = placed.ok_or_else(|| {
            enospc(format!(
                "{}: too small for metadata {} ({n} sectors)",
                member_name(spec, i),
                shape.metadata.text()
            ))
        })?;
        assert!(p.data_offset + p.data_sectors <= p.dev_sectors);
        out.push(Some(p));
    }
    Ok(out)
}

fn place_0_90(n: u64, level: Level) -> Option<Placement> {
    let super_offset = sb0::super_offset_sectors(n)?;
    let usable = if matches!(level, Level::Linear | Level::Raid0) {
        super_offset
    } else {
        super_offset.min(SIZE_MAX_0_90_SECTORS)
    };
    (usable > 0).then_some(Placement {
        dev_sectors: n,
        super_offset,
        data_offset: 0,
        data_sectors: usable,
    })
}

/// 1.0: data from sector 0; bitmap space and the bad-block log sit below the
/// superblock at the end (formats.md §2.9).
fn place_1_0(n: u64, space: u64) -> Option<Placement> {
    let super_offset = sb1::super_offset_sectors(0, n)?;
    let reserved = space + u64::from(BBLOG_SECTORS);
    let data = super_offset.checked_sub(reserved)?;
    (data >= sb1::DATA_SIZE_MIN).then_some(Placement {
        dev_sectors: n,
        super_offset,
        data_offset: 0,
        data_sectors: data,
    })
}

fn place_1_1_or_1_2(n: u64, minor: u8, data_offset: u64) -> Option<Placement> {
    let super_offset = sb1::super_offset_sectors(minor, n)?;
    let data = n.checked_sub(data_offset)?;
    (data >= sb1::DATA_SIZE_MIN).then_some(Placement {
        dev_sectors: n,
        super_offset,
        data_offset,
        data_sectors: data,
    })
}

/// The smallest usable size, rounded as mdadm rounds it.
fn component_sectors(
    spec: &CreateSpec,
    shape: &Shape,
    placements: &[Option<Placement>],
) -> Result<u64, EngineError> {
    let (i, smallest) = placements
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p.data_sectors)))
        .min_by_key(|&(_, s)| s)
        .ok_or_else(|| einval("every member is missing"))?;
    let round = match shape.level {
        Level::Raid1 => RAID1_ROUND_SECTORS,
        // md uses whole far-copy groups of chunks (formats.md §4.6, pitfall
        // 8); rounding to them keeps mdadm's displayed size equal to md's.
        Level::Raid10 => {
            let far = u64::from((shape.layout >> RAID10_FAR_SHIFT) & RAID10_COPIES_MAX).max(1);
            u64::from(shape.chunk_sectors) * far
        }
        _ if shape.chunk_sectors > 0 => u64::from(shape.chunk_sectors),
        _ => 1,
    };
    let component = smallest - smallest % round;
    if component == 0 {
        return Err(enospc(format!(
            "{}: too small: {smallest} usable sectors, less than one {round}-sector unit",
            member_name(spec, i)
        )));
    }
    assert!(component <= smallest);
    Ok(component)
}

fn geometry_spec(
    spec: &CreateSpec,
    shape: &Shape,
    placements: &[Option<Placement>],
    component: u64,
) -> GeometrySpec {
    let raid0_layout = match (shape.level, shape.metadata, shape.layout) {
        (Level::Raid0, Metadata::V1 { .. }, LAYOUT_RAID0_ALT) => {
            Some(Raid0Layout::AlternateMultizone)
        }
        (Level::Raid0, Metadata::V1 { .. }, _) => Some(Raid0Layout::Original),
        _ => None,
    };
    GeometrySpec {
        level: spec.level,
        layout: shape.layout,
        chunk_sectors: shape.chunk_sectors,
        raid_disks: spec.raid_disks,
        member_sectors: placements
            .iter()
            .map(|p| p.map_or(component, |p| p.data_sectors))
            .collect(),
        component_sectors: component,
        raid0_layout,
    }
}

/// Refuse missing members the level cannot do without.
fn check_missing(spec: &CreateSpec, shape: &Shape, geometry: &Geometry) -> Result<(), EngineError> {
    let missing: Vec<u32> = spec
        .member_bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_none())
        .map(|(r, _)| r as u32)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let level = shape.level;
    let lost = match level {
        Level::Linear | Level::Raid0 => true,
        Level::Raid1 => missing.len() == spec.member_bytes.len(),
        Level::Raid4 | Level::Raid5 | Level::Raid6 => {
            missing.len() > level.parity_members() as usize
        }
        Level::Raid10 => raid10_loses_data(geometry, &missing),
    };
    if lost {
        return Err(einval(format!(
            "{level} cannot start with {} of {} members missing",
            missing.len(),
            spec.member_bytes.len()
        )));
    }
    Ok(())
}

/// Whether some raid10 chunk has every copy on a missing member. The copy
/// pattern repeats within `raid_disks` rows for every layout (formats.md
/// §4.6), so the first rows of chunks decide.
fn raid10_loses_data(geometry: &Geometry, missing: &[u32]) -> bool {
    let chunk = u64::from(geometry.chunk_sectors()).max(1);
    let rows = u64::from(geometry.raid_disks()) * u64::from(geometry.copies());
    let chunks = (geometry.array_sectors() / chunk).min(rows * u64::from(geometry.raid_disks()));
    let mut copies = Vec::with_capacity(geometry.copies() as usize);
    (0..chunks).any(|c| {
        geometry.locate(c * chunk, &mut copies);
        assert!(!copies.is_empty(), "raid10 locates every copy");
        copies.iter().all(|cp| missing.contains(&cp.role))
    })
}

/// Every write for present member `i`: stale clears, bitmap, superblock.
fn member_writes(
    spec: &CreateSpec,
    shape: &Shape,
    i: usize,
    p: &Placement,
    component: u64,
    bm: Option<&BitmapPlan>,
) -> Vec<MemberWrite> {
    let mut writes = Vec::new();
    if let Some(bm) = bm {
        let at = p
            .super_offset
            .checked_add_signed(bitmap_offset_sectors(shape, bm))
            .expect("the bitmap lies inside the device by placement");
        writes.push(MemberWrite {
            offset_bytes: at * SECTOR_BYTES,
            bytes: bitmap_area(spec, shape, bm),
        });
    }
    let mut sb_bytes = match shape.metadata {
        Metadata::V090 => superblock_0_90(spec, shape, i, p, component, bm.is_some()),
        Metadata::V1 { .. } => superblock_1(spec, shape, i, p, component, bm),
    };
    sb_bytes.resize(SB_AREA_BYTES, 0);
    writes.push(MemberWrite {
        offset_bytes: p.super_offset * SECTOR_BYTES,
        bytes: sb_bytes,
    });
    let data_end = p.data_offset
        + if matches!(shape.level, Level::Linear | Level::Raid0) {
            p.data_sectors
        } else {
            component
        };
    if shape.ppl {
        writes.push(ppl_area_write(spec, p, shape));
    }
    let mut clears = stale_clears(p, (p.data_offset, data_end), &writes);
    clears.append(&mut writes);
    clears
}

/// Zero writes over the other places md or DDF metadata could be found,
/// where they lie outside the data area and our own writes, so an old
/// superblock cannot make the member ambiguous (formats.md §8 pitfall 2).
fn stale_clears(p: &Placement, data: (u64, u64), ours: &[MemberWrite]) -> Vec<MemberWrite> {
    let n_bytes = p.dev_sectors * SECTOR_BYTES;
    let area = SB_AREA_BYTES as u64;
    let mut spots: Vec<(u64, u64)> = [
        sb1::super_offset_sectors(1, p.dev_sectors),
        sb1::super_offset_sectors(2, p.dev_sectors),
        sb1::super_offset_sectors(0, p.dev_sectors),
        sb0::super_offset_sectors(p.dev_sectors),
    ]
    .into_iter()
    .flatten()
    .map(|s| (s * SECTOR_BYTES, area))
    .collect();
    spots.push((n_bytes - DDF_ANCHOR_BYTES, DDF_ANCHOR_BYTES));
    let data_bytes = (data.0 * SECTOR_BYTES, data.1 * SECTOR_BYTES);
    let overlaps = |a: (u64, u64), b: (u64, u64)| a.0 < b.1 && b.0 < a.1;
    let mut out: Vec<MemberWrite> = Vec::new();
    for (at, len) in spots {
        let range = (at, at + len);
        let busy = overlaps(range, data_bytes)
            || ours.iter().any(|w| {
                overlaps(
                    range,
                    (w.offset_bytes, w.offset_bytes + w.bytes.len() as u64),
                )
            })
            || out.iter().any(|w| w.offset_bytes == at)
            || range.1 > n_bytes;
        if !busy {
            out.push(MemberWrite {
                offset_bytes: at,
                bytes: vec![0; len as usize],
            });
        }
    }
    out
}

fn summary(spec: &CreateSpec, shape: &Shape, geometry: &Geometry) -> String {
    let missing = spec.member_bytes.iter().filter(|b| b.is_none()).count();
    let chunk = if shape.chunk_sectors > 0 {
        format!(
            ", chunk {}K",
            u64::from(shape.chunk_sectors) / SECTORS_PER_KIB
        )
    } else {
        String::new()
    };
    let degraded = if missing > 0 {
        format!(" ({missing} missing: degraded)")
    } else {
        String::new()
    };
    let sync = match (shape.clean, spec.assume_clean) {
        (true, true) => ", assumed clean",
        (true, false) => "",
        (false, _) => ", needs an initial resync",
    };
    let bitmap = if spec.bitmap { ", internal bitmap" } else { "" };
    format!(
        "array {} created: {}, {} devices{degraded}, {} KiB{chunk}, metadata {}{bitmap}{sync}",
        spec.name,
        shape.level,
        spec.raid_disks,
        geometry.array_sectors() / SECTORS_PER_KIB,
        shape.metadata.text(),
    )
}

//! The superblocks of a new array: 1.x (with its bad-block log reservation)
//! and 0.90, built from the plan's placement and validated by parsing back.
//!
//! Split from `create.rs`; formats.md §1 and §2 give every field.

// A child of `create`: it shares that module's constants, types and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

/// The 1.x superblock of present member `i` (formats.md §2.2, §2.9).
pub(super) fn superblock_1(
    spec: &CreateSpec,
    shape: &Shape,
    i: usize,
    p: &Placement,
    component: u64,
    bm: Option<&BitmapPlan>,
) -> Vec<u8> {
    let Metadata::V1 { minor } = shape.metadata else {
        unreachable!("superblock_1 is only called for 1.x")
    };
    let redundant = !matches!(shape.level, Level::Linear | Level::Raid0);
    let mut feature_map = 0;
    if bm.is_some() {
        feature_map |= sb1::FEATURE_BITMAP_OFFSET;
    }
    if shape.level == Level::Raid0 {
        feature_map |= sb1::FEATURE_RAID0_LAYOUT;
    }
    if shape.ppl {
        feature_map |= sb1::FEATURE_PPL;
    }
    let bitmap_offset = if shape.ppl {
        ppl_word(shape)
    } else {
        bm.map_or(0, |bm| bitmap_offset_sectors(shape, bm) as i32)
    };
    let space = match bm {
        Some(bm) => bm.area_sectors,
        None => space_sectors(shape, if redundant { component } else { 0 }),
    };
    let (bblog_size, bblog_offset) = bblog_1x(minor, p, space);
    let mut dev_roles = vec![sb1::ROLE_SPARE; max_dev_for(spec.raid_disks) as usize];
    for (r, b) in spec.member_bytes.iter().enumerate() {
        if b.is_some() {
            dev_roles[r] = r as u16;
        }
    }
    let mut set_name = [0u8; 32];
    set_name[..spec.name.len()].copy_from_slice(spec.name.as_bytes());
    let time = spec.ctime_seconds & TIME_SECONDS_MASK;
    let sb = Superblock1 {
        feature_map,
        set_uuid: spec.uuid,
        set_name,
        ctime: time,
        level: spec.level,
        layout: match shape.level {
            Level::Linear | Level::Raid1 => 0,
            _ => shape.layout,
        },
        size: if redundant { component } else { 0 },
        chunksize: shape.chunk_sectors,
        raid_disks: spec.raid_disks,
        bitmap_offset,
        new_level: 0,
        reshape_position: 0,
        delta_disks: 0,
        new_layout: 0,
        new_chunk: 0,
        new_offset: 0,
        data_offset: p.data_offset,
        data_size: p.data_sectors,
        super_offset: p.super_offset,
        recovery_offset: 0,
        dev_number: i as u32,
        cnt_corrected_read: 0,
        device_uuid: spec.device_uuids[i],
        devflags: 0,
        bblog_shift: 0,
        bblog_size,
        bblog_offset,
        utime: time,
        events: EVENTS_INITIAL,
        resync_offset: if shape.clean { RESYNC_DONE } else { 0 },
        dev_roles,
    };
    assert!(sb.check_fields().is_ok(), "a valid superblock: {sb:?}");
    let bytes = sb.to_bytes();
    let mut area = bytes.clone();
    area.resize(SB_AREA_BYTES, 0);
    let back = Superblock1::parse(&area, p.super_offset, p.dev_sectors);
    assert_eq!(
        back.as_ref().ok(),
        Some(&sb),
        "superblock reads back: {back:?}"
    );
    assert_eq!(
        sb.minor(),
        minor,
        "the superblock sits where its minor says"
    );
    bytes
}

/// Bad-block log reservation as mdadm makes it (formats.md §2.9): after the
/// bitmap space for 1.1/1.2, just below the superblock for 1.0.
pub(super) fn bblog_1x(minor: u8, p: &Placement, bm_space: u64) -> (u16, i32) {
    if minor == 0 {
        return (BBLOG_SECTORS, -i32::from(BBLOG_SECTORS));
    }
    let bblog = u64::from(BBLOG_SECTORS);
    let room = p.data_offset - p.super_offset;
    if room >= BITMAP_OFFSET_1X_SECTORS + bm_space + bblog {
        (BBLOG_SECTORS, (BITMAP_OFFSET_1X_SECTORS + bm_space) as i32)
    } else if room >= 2 * bblog {
        (BBLOG_SECTORS, (room - bblog) as i32)
    } else {
        (0, 0)
    }
}

/// The 0.90 superblock of present member `i` (formats.md §1.3, §1.4).
pub(super) fn superblock_0_90(
    spec: &CreateSpec,
    shape: &Shape,
    i: usize,
    p: &Placement,
    component: u64,
    bitmap: bool,
) -> Vec<u8> {
    let mut disks = Box::new([Disk0::default(); sb0::MD_SB_DISKS]);
    for (r, b) in spec.member_bytes.iter().enumerate() {
        disks[r] = Disk0 {
            number: r as u32,
            major: 0,
            minor: 0,
            raid_disk: r as u32,
            state: if b.is_some() {
                sb0::DISK_ACTIVE | sb0::DISK_SYNC
            } else {
                sb0::DISK_FAULTY | sb0::DISK_REMOVED
            },
        };
    }
    let present = spec.member_bytes.iter().flatten().count() as u32;
    let words: Vec<u32> = spec
        .uuid
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    let mut state = if shape.clean { sb0::STATE_CLEAN } else { 0 };
    if bitmap {
        state |= sb0::STATE_BITMAP_PRESENT;
    }
    // 0.90 stores seconds as a u32; past 2106 it wraps, as in md.
    let time = spec.ctime_seconds as u32;
    let sb = Superblock0 {
        big_endian: false,
        found_at_sector: None,
        minor_version: sb0::MINOR_VERSION_90,
        patch_version: 0,
        gvalid_words: 0,
        set_uuid0: words[0],
        ctime: time,
        level: spec.level,
        size: (component / SECTORS_PER_KIB) as u32,
        nr_disks: present,
        raid_disks: spec.raid_disks,
        md_minor: 0,
        not_persistent: 0,
        set_uuid1: words[1],
        set_uuid2: words[2],
        set_uuid3: words[3],
        utime: time,
        state,
        active_disks: present,
        working_disks: present,
        failed_disks: spec.raid_disks - present,
        spare_disks: 0,
        events: EVENTS_INITIAL,
        cp_events: EVENTS_INITIAL,
        recovery_cp: if shape.clean { u32::MAX } else { 0 },
        reshape_position: 0,
        new_level: 0,
        delta_disks: 0,
        new_layout: 0,
        new_chunk: 0,
        layout: match shape.level {
            Level::Linear | Level::Raid1 => 0,
            _ => shape.layout,
        },
        chunk_size: shape.chunk_sectors * SECTOR_BYTES as u32,
        root_pv: 0,
        root_block: 0,
        this_disk: disks[i],
        disks,
    };
    assert!(sb.check_fields().is_ok(), "a valid 0.90 superblock");
    assert!(component <= SIZE_MAX_0_90_SECTORS || !matches!(shape.level, Level::Raid1));
    let bytes = sb.to_bytes().to_vec();
    let back = Superblock0::parse(&bytes);
    assert_eq!(back.as_ref().ok(), Some(&sb), "0.90 superblock reads back");
    assert_eq!(
        sb0::super_offset_sectors(p.dev_sectors),
        Some(p.super_offset)
    );
    bytes
}

//! Unit tests of create planning: mdadm's placement numbers, layouts, refusals.

use super::*;

const MIB: u64 = 1024 * 1024;

fn spec(level: i32, members: usize, metadata: &str, member_bytes: u64) -> CreateSpec {
    CreateSpec {
        level,
        raid_disks: members as u32,
        chunk_kib: None,
        layout: None,
        metadata: metadata.to_string(),
        bitmap: false,
        bitmap_chunk_kib: None,
        name: "t".to_string(),
        assume_clean: false,
        member_bytes: vec![Some(member_bytes); members],
        member_names: (0..members).map(|i| format!("m{i}")).collect(),
        uuid: [0x11; 16],
        device_uuids: (0..members).map(|i| [i as u8; 16]).collect(),
        ctime_seconds: 1_700_000_000,
        ppl: false,
    }
}

fn superblock_1_of(plan: &CreatePlan, member: usize, dev_bytes: u64) -> Superblock1 {
    let w = plan.members[member].last().expect("a superblock write");
    Superblock1::parse(
        &w.bytes,
        w.offset_bytes / SECTOR_BYTES,
        dev_bytes / SECTOR_BYTES,
    )
    .expect("planned superblock parses")
}

#[test]
fn data_offsets_match_the_real_mdadm_images() {
    // formats.md §2.9: a 3 MiB raid1 member gets 2048; 4 MiB members with a 512 KiB chunk 4096.
    assert_eq!(data_offset_1x_sectors(3 * 2048, 0), 2048);
    assert_eq!(data_offset_1x_sectors(4 * 2048, 1024), 4096);
    let plan = plan_create(&spec(1, 2, "1.2", 3 * MIB)).unwrap();
    let sb = superblock_1_of(&plan, 0, 3 * MIB);
    assert_eq!((sb.data_offset, sb.size, sb.bblog_offset), (2048, 4096, 16));
    let plan = plan_create(&spec(5, 3, "1.2", 4 * MIB)).unwrap();
    let sb = superblock_1_of(&plan, 2, 4 * MIB);
    assert_eq!(
        (sb.data_offset, sb.size, sb.layout, sb.chunksize),
        (4096, 4096, 2, 1024)
    );
    assert_eq!(plan.array_sectors, 8192);
    assert_eq!(sb.resync_offset, 0, "a new raid5 needs its resync");
}

#[test]
fn raid0_records_its_layout_and_is_born_clean() {
    let plan = plan_create(&spec(0, 3, "1.2", 64 * MIB)).unwrap();
    let sb = superblock_1_of(&plan, 1, 64 * MIB);
    assert_eq!(sb.feature_map, sb1::FEATURE_RAID0_LAYOUT);
    assert_eq!((sb.layout, sb.size, sb.bblog_offset), (1, 0, 8));
    assert_eq!(sb.resync_offset, RESYNC_DONE);
    assert_eq!(sb.dev_roles[..4], [0, 1, 2, sb1::ROLE_SPARE]);
}

#[test]
fn layout_names_follow_mdadm() {
    assert_eq!(parse_layout(5, "left-symmetric").unwrap(), 2);
    assert_eq!(parse_layout(5, "la").unwrap(), 0);
    assert_eq!(parse_layout(5, "ddf-zero-restart").unwrap(), 1);
    assert_eq!(parse_layout(6, "ddf-zero-restart").unwrap(), 8);
    assert_eq!(parse_layout(6, "ddf-N-continue").unwrap(), 10);
    assert_eq!(parse_layout(6, "left-symmetric-6").unwrap(), 18);
    assert_eq!(parse_layout(6, "parity-first").unwrap(), 4);
    assert_eq!(parse_layout(10, "n2").unwrap(), 0x102);
    assert_eq!(parse_layout(10, "f2").unwrap(), 0x201);
    assert_eq!(parse_layout(10, "o3").unwrap(), 0x10301);
    assert_eq!(parse_layout(10, "258").unwrap(), 0x102);
    assert_eq!(
        parse_layout(5, "sideways").unwrap_err().errno,
        Errno::EINVAL
    );
    assert_eq!(parse_layout(10, "x2").unwrap_err().errno, Errno::EINVAL);
    assert_eq!(
        parse_layout(6, "left-symmetric-7").unwrap_err().errno,
        Errno::EINVAL
    );
}

#[test]
fn metadata_1_0_keeps_bitmap_and_bblog_below_the_superblock() {
    let mut s = spec(1, 2, "1.0", 64 * MIB);
    s.bitmap = true;
    let plan = plan_create(&s).unwrap();
    let sb = superblock_1_of(&plan, 0, 64 * MIB);
    let n = 64 * MIB / SECTOR_BYTES;
    assert_eq!(sb.super_offset, (n - 16) & !7);
    assert_eq!(
        (sb.bitmap_offset, sb.bblog_offset, sb.data_offset),
        (-16, -8, 0)
    );
    assert!(
        sb.size + 16 <= sb.super_offset,
        "data ends before the bitmap"
    );
    let bm_write = &plan.members[0][plan.members[0].len() - 2];
    assert_eq!(bm_write.offset_bytes, (sb.super_offset - 16) * SECTOR_BYTES);
    let bm = BitmapSuper::parse(&bm_write.bytes).unwrap();
    assert_eq!((bm.chunksize, bm.sync_size), (64 << 20, sb.size));
    assert_eq!(bitmap::bit_is_set(&bm_write.bytes, 0), Some(true));
}

#[test]
fn assume_clean_bitmap_has_no_dirty_bits() {
    let mut s = spec(10, 4, "1.2", 64 * MIB);
    s.bitmap = true;
    s.assume_clean = true;
    let plan = plan_create(&s).unwrap();
    let area = &plan.members[3][plan.members[3].len() - 2].bytes;
    let bm = BitmapSuper::parse(area).unwrap();
    assert_eq!(
        bm.sync_size, plan.array_sectors,
        "raid10 bitmaps cover the array"
    );
    assert!(area[bitmap::BITMAP_SB_BYTES..].iter().all(|&b| b == 0));
}

#[test]
fn metadata_0_90_superblock_and_missing_slot() {
    let mut s = spec(5, 3, "0.90", 64 * MIB);
    s.member_bytes[1] = None;
    s.bitmap = true;
    let plan = plan_create(&s).unwrap();
    assert!(plan.members[1].is_empty());
    let w = plan.members[2].last().unwrap();
    let sb = Superblock0::parse(&w.bytes).unwrap();
    assert_eq!(
        w.offset_bytes / SECTOR_BYTES,
        sb0::super_offset_sectors(64 * MIB / 512).unwrap()
    );
    assert_eq!(sb.disks[1].state, sb0::DISK_FAULTY | sb0::DISK_REMOVED);
    assert_eq!((sb.this_disk.number, sb.failed_disks), (2, 1));
    assert_ne!(sb.state & sb0::STATE_BITMAP_PRESENT, 0);
    // A degraded raid5 has nothing to resync: created clean (md would not
    // start it dirty).
    assert_ne!(sb.state & sb0::STATE_CLEAN, 0);
    assert_eq!(sb.uuid().0, s.uuid);
}

#[test]
fn refusals_name_the_problem() {
    let mut s = spec(5, 3, "1.2", 64 * MIB);
    s.member_bytes[0] = None;
    s.member_bytes[2] = None;
    assert_eq!(plan_create(&s).unwrap_err().errno, Errno::EINVAL);

    let mut s = spec(0, 2, "1.2", 64 * MIB);
    s.bitmap = true;
    assert!(plan_create(&s).unwrap_err().message.contains("--bitmap"));

    let mut s = spec(1, 2, "1.2", 64 * MIB);
    s.member_bytes[1] = Some(512 * 1024);
    let e = plan_create(&s).unwrap_err();
    assert_eq!(e.errno, Errno::ENOSPC);
    assert!(e.message.contains("m1"), "{e}");

    let s = spec(5, 3, "ddf", 64 * MIB);
    assert_eq!(plan_create(&s).unwrap_err().errno, Errno::EOPNOTSUPP);

    let mut s = spec(1, 2, "1.2", 64 * MIB);
    s.name = "x".repeat(33);
    assert!(plan_create(&s).unwrap_err().message.contains("--name"));

    let mut s = spec(10, 4, "1.2", 64 * MIB);
    s.member_bytes[0] = None;
    s.member_bytes[1] = None;
    assert!(
        plan_create(&s).is_err(),
        "n2 over 4: roles 0 and 1 hold the same chunks"
    );
    s.member_bytes[1] = Some(64 * MIB);
    s.member_bytes[2] = None;
    assert!(
        plan_create(&s).is_ok(),
        "roles 0 and 2 are in different mirror pairs"
    );

    let mut s = spec(5, 3, "1.2", 64 * MIB);
    s.chunk_kib = Some(12);
    assert!(plan_create(&s).unwrap_err().message.contains("--chunk"));
}

#[test]
fn stale_metadata_outside_the_data_is_cleared_before_the_superblock() {
    let plan = plan_create(&spec(1, 2, "1.2", 64 * MIB)).unwrap();
    let writes = &plan.members[0];
    let last = writes.last().unwrap();
    assert_eq!(
        last.offset_bytes,
        8 * SECTOR_BYTES,
        "the superblock commits last"
    );
    assert!(
        writes.iter().any(|w| w.offset_bytes == 0),
        "1.1 location cleared"
    );
    let data = (
        2048 * SECTOR_BYTES,
        (2048 + plan.component_sectors) * SECTOR_BYTES,
    );
    for w in writes {
        let end = w.offset_bytes + w.bytes.len() as u64;
        assert!(
            end <= data.0 || w.offset_bytes >= data.1,
            "write at {} hits data",
            w.offset_bytes
        );
    }
}

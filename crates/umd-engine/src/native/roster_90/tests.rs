//! md's `super_90_sync` numbering, checked on mdadm's own 0.90 raid1
//! members: a spare and a member still recovering take numbers from
//! `raid_disks` up with state 0, a member in sync takes its slot's number,
//! an empty slot is "removed, faulty", and the counts follow.

use super::*;
use crate::native::roster::tests::update;
use crate::native::tests::member as real;
use crate::native::MetadataWrite;

fn entry(member: usize, slot: Option<u32>, health: MemberHealth) -> RosterEntry {
    RosterEntry {
        member,
        slot,
        health,
        write_mostly: false,
        corrected_errors: 0,
        replacement: false,
    }
}

fn written(out: &[MetadataWrite], member: usize) -> Superblock0 {
    let w = out.iter().find(|w| w.member == member).expect("written");
    Superblock0::parse_at(&w.bytes, w.offset_bytes / SECTOR_BYTES).expect("parses")
}

fn counts(sb: &Superblock0) -> [u32; 5] {
    [
        sb.nr_disks,
        sb.active_disks,
        sb.working_disks,
        sb.failed_disks,
        sb.spare_disks,
    ]
}

#[test]
fn a_spare_added_to_a_degraded_090_raid1_is_recorded_as_md_records_it() {
    let mut md = NativeMetadata::load(vec![Some(real("90-raid1-1")), None]).expect("load");
    let added = md.add_spare(1, 64 << 20, [0; 16]).expect("hot add");
    assert_eq!(added.data_offset_sectors, 0, "0.90 data starts at 0");
    let in_sync = entry(0, Some(0), MemberHealth::InSync);
    let recovering = MemberHealth::OutOfSync {
        recovery_offset_sectors: 0,
    };

    // Recovering: written as a spare, numbered from raid_disks.
    md.record_roster(&[in_sync, entry(1, Some(1), recovering)]);
    let mut out = Vec::new();
    md.update(&update(), &mut out);
    assert_eq!(out.len(), 2);
    let spare = written(&out, 1);
    let first = written(&out, 0);
    assert_eq!(spare.disks, first.disks, "one table on every member");
    assert_eq!((spare.this_disk.number, spare.this_disk.state), (2, 0));
    assert_eq!(first.this_disk.number, 0);
    assert_eq!(first.disks[0].state, sb0::DISK_ACTIVE | sb0::DISK_SYNC);
    assert_eq!(
        first.disks[1].state,
        sb0::DISK_REMOVED | sb0::DISK_FAULTY,
        "slot 1 has no device in sync"
    );
    assert_eq!(first.disks[2].raid_disk, 2);
    assert_eq!(counts(&first), [2, 1, 2, 1, 1]);
    let spare_write = out.iter().find(|w| w.member == 1).expect("written");
    assert_eq!(
        spare_write.offset_bytes,
        sb0::super_offset_sectors((64 << 20) / 512).expect("fits") * 512,
        "at the end of the new device"
    );

    // In sync: its slot's number, active and in sync; nothing failed.
    md.record_roster(&[in_sync, entry(1, Some(1), MemberHealth::InSync)]);
    let mut out = Vec::new();
    md.update(&update(), &mut out);
    let rebuilt = written(&out, 1);
    assert_eq!(rebuilt.this_disk.number, 1);
    assert_eq!(rebuilt.this_disk.raid_disk, 1);
    assert_eq!(rebuilt.this_disk.state, sb0::DISK_ACTIVE | sb0::DISK_SYNC);
    assert_eq!(counts(&rebuilt), [2, 2, 2, 0, 0]);
    assert_eq!(
        rebuilt.disks[2],
        Disk0::default(),
        "the spare number is free"
    );
    assert_eq!(
        rebuilt.info().array.roster,
        written(&out, 0).info().array.roster
    );
}

#[test]
fn a_failed_member_still_attached_is_numbered_after_the_slots() {
    let metas = vec![Some(real("90-raid1-1")), Some(real("90-raid1-2"))];
    let mut md = NativeMetadata::load(metas).expect("load");
    md.record_roster(&[
        entry(0, Some(0), MemberHealth::InSync),
        entry(1, Some(1), MemberHealth::Faulty),
    ]);
    let mut out = Vec::new();
    let mut up = update();
    up.faulty_members = vec![1];
    md.update(&up, &mut out);
    assert_eq!(out.len(), 1, "a failed member's superblock is not written");
    let sb = written(&out, 0);
    assert_eq!(sb.disks[2].state, sb0::DISK_FAULTY);
    assert_eq!(sb.disks[1].state, sb0::DISK_REMOVED | sb0::DISK_FAULTY);
    assert_eq!(counts(&sb), [2, 1, 1, 2, 0]);
}

#[test]
fn a_28th_device_is_refused() {
    let mut md = NativeMetadata::load(vec![Some(real("90-raid1-1")), None]).expect("load");
    for m in 1..=25 {
        md.add_spare(m, 64 << 20, [0; 16]).expect("room");
    }
    let e = md.add_spare(26, 64 << 20, [0; 16]).unwrap_err();
    assert_eq!(e.errno, Errno::ENOSPC, "{e}");
}

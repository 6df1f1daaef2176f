//! Superblock transitions on superblocks mdadm wrote (the real raid5 set):
//! the start of a grow assembles as a reshape at 0 with the joining member
//! in the next role, a member one round behind is brought to the freshest
//! state (including md's end of reshape), and too little room is refused.

use super::*;
use crate::assemble::{assemble, AssembleOptions, Candidate};
use umd_formats::probe::Metadata;

fn real_raid5() -> Vec<Superblock1> {
    (1..=3)
        .map(
            |i| match crate::native::tests::member(&format!("raid5-{i}")) {
                Metadata::V1(sb) => sb,
                other => panic!("raid5-{i}: not 1.x: {other:?}"),
            },
        )
        .collect()
}

fn candidates(sbs: &[Superblock1]) -> Vec<Candidate> {
    sbs.iter()
        .enumerate()
        .map(|(index, sb)| Candidate {
            index,
            name: format!("m{index}"),
            info: sb.info(),
        })
        .collect()
}

fn assembled(sbs: &[Superblock1]) -> crate::assemble::Assembly {
    assemble(&candidates(sbs), &AssembleOptions::default()).expect("assembles")
}

fn start(sbs: &[Superblock1], gap: u64) -> Result<Vec<Superblock1>, String> {
    let room = sbs[0].data_offset + sbs[0].size + 64;
    let joining = [Joining {
        dev_sectors: room,
        device_uuid: [7; 16],
    }];
    start_reshape(sbs, &joining, Target::default(), gap, 1_700_000_000)
}

#[test]
fn a_started_grow_assembles_as_a_reshape_at_zero() {
    let sbs = real_raid5();
    let gap = u64::from(sbs[0].chunksize);
    let new = start(&sbs, gap).expect("room for one chunk");
    assert_eq!(new.len(), 4);
    for sb in &new {
        // Every superblock is valid and reads back the same.
        let bytes = sb.to_bytes();
        let mut area = bytes.clone();
        area.resize(4096, 0);
        let back = Superblock1::parse(&area, sb.super_offset, sb.data_offset + sb.data_size)
            .expect("parses back");
        assert_eq!(&back, sb);
        assert_eq!(sb.events, sbs[0].events.max(sbs[1].events) + 1);
    }
    let a = assembled(&new);
    let r = a.reshape.as_ref().expect("a reshape");
    assert_eq!(
        (r.position_sectors, r.old.raid_disks(), r.new.raid_disks()),
        (0, 3, 4)
    );
    assert_eq!(
        a.array_sectors,
        assembled(&sbs).array_sectors,
        "size unchanged until the end"
    );
    let joined = a.members[3].as_ref().expect("role 3 is the joining device");
    assert_eq!(joined.index, 3);
    for m in a.members.iter().flatten() {
        assert_eq!(m.data_offset_sectors - m.new_data_offset_sectors, gap);
    }
}

#[test]
fn too_little_room_is_refused_naming_it() {
    let sbs = real_raid5();
    let free = sbs[0].data_offset - metadata_end(&sbs[0]);
    let err = start(&sbs, free + 8).expect_err("more than the room");
    assert!(err.contains(&format!("only {free} are free")), "{err}");
}

#[test]
fn members_a_round_behind_are_brought_up() {
    let sbs = real_raid5();
    let gap = u64::from(sbs[0].chunksize);
    let started = start(&sbs, gap).expect("starts");
    // A member that missed the start takes it.
    let caught_up = reconcile(&sbs[1], &started[0]);
    assert_eq!(caught_up.new_offset, started[1].new_offset);
    assert_eq!(caught_up.reshape_position, 0);
    assert_eq!(caught_up.dev_roles, started[0].dev_roles);
    // A member that missed the end is finished as md finishes it.
    let mut ended = started[0].clone();
    let events = ended.events + 1;
    finish(&mut ended, events, 1_700_000_001);
    assert_eq!(ended.data_offset, started[0].data_offset - gap);
    assert_eq!(ended.data_size, started[0].data_size + gap);
    assert_eq!(ended.feature_map & RESHAPE_BITS, 0);
    let behind = reconcile(&started[1], &ended);
    assert_eq!(behind.data_offset, started[1].data_offset - gap);
    assert_eq!((behind.events, behind.raid_disks), (ended.events, 4));
    assert_eq!(behind.feature_map & RESHAPE_BITS, 0);
    let mut finished = started.clone();
    for sb in &mut finished {
        *sb = reconcile(sb, &ended);
    }
    let a = assembled(&finished);
    assert!(a.reshape.is_none());
    assert_eq!(a.geometry.raid_disks(), 4);
    // Until then, a set where one says finished and another reshaping is refused.
    let mut mixed = started.clone();
    mixed[0] = ended;
    let err = assemble(&candidates(&mixed), &AssembleOptions::default()).expect_err("refused");
    assert!(err.to_string().contains("--continue"), "{err}");
}

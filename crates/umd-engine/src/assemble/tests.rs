//! Assembly rules, each driven from metadata shaped as real members carry it.

use super::*;
use umd_formats::info::{ArraySide, DeviceSide, RosterEntry};

const UUID_A: ArrayUuid = ArrayUuid([0xaa; 16]);
const UUID_B: ArrayUuid = ArrayUuid([0xbb; 16]);

/// A raid5 member as mdadm creates it: 3 roles, dev_numbers 0, 1, 3.
fn raid5_member(index: usize, dev_id: u32, role: u32, events: u64) -> Candidate {
    let roster = [(0, 0), (1, 1), (3, 2)]
        .iter()
        .map(|&(dev_id, role)| RosterEntry {
            dev_id,
            slot: SlotState::Active {
                role,
                recovery_offset_sectors: None,
            },
        })
        .collect();
    Candidate {
        index,
        name: format!("m{index}"),
        info: MdInfo {
            format: MetadataFormat::V1 { minor: 2 },
            array: ArraySide {
                uuid: UUID_A,
                name: "host:5".into(),
                level: 5,
                layout: 2,
                chunk_sectors: 1024,
                raid_disks: 3,
                component_sectors: 4096,
                array_sectors: None,
                events,
                clean: true,
                resync_offset_sectors: u64::MAX,
                reshape: None,
                raid0_layout_recorded: false,
                bitmap: None,
                roster,
            },
            device: DeviceSide {
                dev_id,
                slot: SlotState::Active {
                    role,
                    recovery_offset_sectors: None,
                },
                data_offset_sectors: 4096,
                data_sectors: 4096,
                super_offset_sectors: 8,
                device_uuid: None,
                replacement: false,
            },
        },
    }
}

fn full_set() -> Vec<Candidate> {
    // Argument order deliberately not role order.
    vec![
        raid5_member(0, 3, 2, 20),
        raid5_member(1, 0, 0, 20),
        raid5_member(2, 1, 1, 20),
    ]
}

#[test]
fn roles_come_from_dev_ids_not_argument_order() {
    let asm = assemble(&full_set(), &AssembleOptions::default()).expect("assembles");
    let order: Vec<usize> = asm
        .members
        .iter()
        .map(|m| m.as_ref().map_or(99, |m| m.index))
        .collect();
    assert_eq!(order, [1, 2, 0]);
    assert_eq!(asm.array_sectors, 8192);
}

/// mdadm records RAID1E over three members as one member's worth, but it
/// assembles DDF arrays without setting `array_size`, so the kernel serves
/// raid10's own size (1.5 members' worth). The record must not truncate it.
#[test]
fn a_recorded_length_short_of_the_layout_is_not_what_md_serves() {
    let mut set = full_set();
    for c in &mut set {
        c.info.array.level = 10;
        c.info.array.layout = 0x102; // near 2 over 3 members: RAID1E
        c.info.array.array_sectors = Some(4096);
    }
    let asm = assemble(&set, &AssembleOptions::default()).expect("assembles");
    assert_eq!(asm.array_sectors, 3 * 4096 / 2);
    assert!(
        asm.warnings
            .iter()
            .any(|w| w.contains("records 4096 sectors")),
        "{:?}",
        asm.warnings
    );
}

#[test]
fn one_missing_member_is_degraded_two_is_refused() {
    let mut set = full_set();
    set.remove(1);
    let asm = assemble(&set, &AssembleOptions::default()).expect("degraded assembles");
    assert_eq!(asm.missing_roles(), [0]);
    set.remove(0);
    let err = assemble(&set, &AssembleOptions::default()).unwrap_err();
    assert!(matches!(err, AssembleError::TooFewMembers { .. }), "{err}");
}

#[test]
fn stale_member_is_named() {
    let mut set = full_set();
    set[2].info.array.events = 17;
    let err = assemble(&set, &AssembleOptions::default()).unwrap_err();
    assert_eq!(
        err,
        AssembleError::Stale {
            member: "m2".into(),
            events: 17,
            array_events: 20
        }
    );
    assert!(err.to_string().contains("m2"));
}

#[test]
fn events_one_behind_is_accepted() {
    let mut set = full_set();
    set[2].info.array.events = 19;
    assemble(&set, &AssembleOptions::default()).expect("a lag of one is md's clean transition");
}

#[test]
fn a_ddf_member_the_freshest_tables_list_online_is_current_whatever_its_header() {
    // Found by the simulator: two crashes that each kept a metadata write on
    // one disk only left the others two sequence numbers behind, and the
    // array refused to assemble although the freshest tables list them.
    let mut set = full_set();
    for c in &mut set {
        c.info.format = MetadataFormat::Ddf;
    }
    set[2].info.array.events = 17;
    let asm = assemble(&set, &AssembleOptions::default()).expect("listed online: current");
    assert!(asm.missing_roles().is_empty());
    // One the freshest tables do not list (m2 is dev 1, role 1) is judged
    // by its events.
    for c in &mut set {
        c.info.array.roster.retain(|e| e.dev_id != 1);
    }
    let err = assemble(&set, &AssembleOptions::default()).unwrap_err();
    assert!(matches!(err, AssembleError::Stale { .. }), "{err}");
}

#[test]
fn mixed_uuids_are_refused() {
    let mut set = full_set();
    set[1].info.array.uuid = UUID_B;
    let err = assemble(&set, &AssembleOptions::default()).unwrap_err();
    assert!(matches!(err, AssembleError::MixedArrays { .. }), "{err}");
    assert!(err.to_string().contains("m1"));
}

#[test]
fn member_marked_faulty_by_the_freshest_is_ignored() {
    let mut set = full_set();
    for c in &mut set {
        c.info.array.events = 22;
        c.info.array.roster[0].slot = SlotState::Faulty;
    }
    // The failed member still has its old superblock saying active, events 20.
    set[1].info.array.events = 20;
    set[1].info.array.roster[0].slot = SlotState::Active {
        role: 0,
        recovery_offset_sectors: None,
    };
    let asm = assemble(&set, &AssembleOptions::default()).expect("assembles without it");
    assert_eq!(asm.missing_roles(), [0]);
    assert!(asm
        .warnings
        .iter()
        .any(|w| w.contains("m1") && w.contains("faulty")));
}

#[test]
fn duplicate_roles_are_refused() {
    let mut set = full_set();
    set.push(raid5_member(3, 3, 2, 20));
    let err = assemble(&set, &AssembleOptions::default()).unwrap_err();
    assert!(
        matches!(err, AssembleError::DuplicateRole { role: 2, .. }),
        "{err}"
    );
}

#[test]
fn level_changing_reshape_is_refused_clearly() {
    let mut set = full_set();
    for c in &mut set {
        c.info.array.reshape = Some(umd_formats::info::ReshapeInfo {
            position_sectors: 128,
            new_level: 6,
            new_layout: 2,
            new_chunk_sectors: 1024,
            delta_disks: 1,
            new_offset_sectors: 0,
            backwards: false,
        });
    }
    let err = assemble(&set, &AssembleOptions::default()).unwrap_err();
    assert!(err.to_string().contains("reshape"), "{err}");
}

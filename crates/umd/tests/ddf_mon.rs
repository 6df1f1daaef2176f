//! The DDF metadata handler on containers mdadm made, judged by mdadm.
//!
//! Each test loads the handler from real mdadm-made images (the dissect.volume
//! set), records what the monitor would (dirty, clean, a failed member, an
//! array starting with a member absent), writes what `sync_metadata` returns
//! into copies of the images, and reads them with the host's `mdadm
//! --examine`, whose VD state, init state and physical disk rows are the
//! reference. Our own parser is only used to find which refnum sits in which
//! slot.

mod ddf_support;
mod support;

use ddf_support::{dissect_set, examine_image, field, handler_over, pd_row, sync_into};
use support::TempDir;
use umd::mon::ddf::DdfHandler;
use umd::mon::handler::{Consistency, DiskState, MetadataHandler, SpareAssignment, RESYNC_NONE};
use umd_engine::native::MetadataWrite;

const FAULTY: DiskState = DiskState {
    faulty: true,
    in_sync: false,
    write_mostly: false,
    spare: false,
    blocked: false,
    external_bbl: false,
};

/// The refnum in md role `slot` of VD 0.
fn refnum_in_slot(h: &DdfHandler, slot: usize) -> u32 {
    let c = h.container();
    let bvds = c.bvds(&c.virt()[0].guid);
    let prim = usize::from(bvds[0].prim_elmnt_count);
    bvds[slot / prim].phys_refnum[slot % prim]
}

/// mdadm's VD 0 state and init state lines, from every image.
fn vd0_states(dir: &TempDir, images: &[Vec<u8>]) -> Vec<(String, String)> {
    images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let text = examine_image(dir.path(), &format!("d{i}.img"), img);
            (
                field(&text, "state[0]").expect("state[0]"),
                field(&text, "init state[0]").expect("init state[0]"),
            )
        })
        .collect()
}

#[test]
fn dirty_and_clean_are_what_mdadm_reads() {
    let Some(mut images) = dissect_set("ddf-raid5", 3) else {
        return;
    };
    let dir = TempDir::new("ddf-mon-dirty");
    let mut h = handler_over(&images);
    let seq = h.container().seq();
    let before = vd0_states(&dir, &images);
    assert!(
        before.iter().all(|s| s.0 == "Optimal, Consistent"),
        "{before:?}"
    );

    assert!(!h.set_array_state(0, Consistency::Dirty, RESYNC_NONE));
    assert!(sync_into(&mut h, &mut images) > 0);
    for (i, (state, init)) in vd0_states(&dir, &images).into_iter().enumerate() {
        assert_eq!(state, "Optimal, Not Consistent", "disk {i}");
        assert_eq!(init, "Fully Initialised", "disk {i}");
    }
    let text = examine_image(dir.path(), "d0.img", &images[0]);
    assert_eq!(field(&text, "Seq"), Some(format!("{:08x}", seq + 1)));

    // Recording the same state again changes nothing and writes nothing.
    assert!(!h.set_array_state(0, Consistency::Dirty, RESYNC_NONE));
    assert_eq!(sync_into(&mut h, &mut images), 0);

    assert!(h.set_array_state(0, Consistency::Clean, RESYNC_NONE));
    assert!(sync_into(&mut h, &mut images) > 0);
    for (i, (state, init)) in vd0_states(&dir, &images).into_iter().enumerate() {
        assert_eq!(state, "Optimal, Consistent", "disk {i}");
        assert_eq!(init, "Fully Initialised", "disk {i}");
    }
    let text = examine_image(dir.path(), "d2.img", &images[2]);
    assert_eq!(field(&text, "Seq"), Some(format!("{:08x}", seq + 2)));
}

#[test]
fn resync_position_sets_the_init_state() {
    let Some(mut images) = dissect_set("ddf-raid1", 2) else {
        return;
    };
    let dir = TempDir::new("ddf-mon-init");
    let mut h = handler_over(&images);
    let cases = [
        (
            Consistency::Dirty,
            0,
            false,
            "Optimal, Not Consistent",
            "Not Initialised",
        ),
        (
            Consistency::Clean,
            100,
            false,
            "Optimal, Consistent",
            "QuickInit in Progress",
        ),
        (
            Consistency::Decide,
            100,
            false,
            "Optimal, Not Consistent",
            "QuickInit in Progress",
        ),
        (
            Consistency::Decide,
            RESYNC_NONE,
            true,
            "Optimal, Consistent",
            "Fully Initialised",
        ),
        // A position at the component's end is complete too (8192 sectors).
        (
            Consistency::Dirty,
            8192,
            false,
            "Optimal, Not Consistent",
            "Fully Initialised",
        ),
    ];
    for (consistency, resync, clean, state, init) in cases {
        let got = h.set_array_state(0, consistency, resync);
        assert_eq!(got, clean, "{consistency:?} at {resync}");
        sync_into(&mut h, &mut images);
        for (i, s) in vd0_states(&dir, &images).into_iter().enumerate() {
            assert_eq!(
                s,
                (state.to_string(), init.to_string()),
                "{consistency:?} {resync} disk {i}"
            );
        }
        let sub = &h.subarrays()[0];
        assert_eq!(sub.consistent, clean, "{consistency:?} at {resync}");
    }
}

#[test]
fn failures_degrade_then_fail_raid5() {
    let Some(mut images) = dissect_set("ddf-raid5", 3) else {
        return;
    };
    let dir = TempDir::new("ddf-mon-fail");
    let mut h = handler_over(&images);
    let (first, second) = (refnum_in_slot(&h, 1), refnum_in_slot(&h, 2));
    h.set_disk(0, 1, FAULTY);
    sync_into(&mut h, &mut images);
    for (i, img) in images.iter().enumerate() {
        let text = examine_image(dir.path(), &format!("d{i}.img"), img);
        assert_eq!(
            field(&text, "state[0]").as_deref(),
            Some("Degraded, Consistent"),
            "disk {i}"
        );
        assert_eq!(
            pd_row(&text, first).as_deref(),
            Some("active/Offline, Failed"),
            "disk {i}"
        );
        assert_eq!(
            pd_row(&text, second).as_deref(),
            Some("active/Online"),
            "disk {i}"
        );
    }
    let sub = &h.subarrays()[0];
    assert_eq!(sub.slot_disks[1], None, "a failed member is not assembled");
    assert!(sub.slot_disks[0].is_some() && sub.slot_disks[2].is_some());

    h.set_disk(0, 2, FAULTY);
    sync_into(&mut h, &mut images);
    let text = examine_image(dir.path(), "d0.img", &images[0]);
    assert_eq!(
        field(&text, "state[0]").as_deref(),
        Some("Failed, Consistent")
    );
    assert_eq!(
        pd_row(&text, second).as_deref(),
        Some("active/Offline, Failed")
    );
    // A failed VD gets no spare.
    assert!(h.activate_spare(0, &[1, 2]).is_empty());
}

#[test]
fn raid10_loses_a_mirror_half_then_a_whole_mirror() {
    let Some(mut images) = dissect_set("ddf-raid10", 4) else {
        return;
    };
    let dir = TempDir::new("ddf-mon-raid10");
    let mut h = handler_over(&images);
    // Roles 0,1 are the first mirror (BVD 0), 2,3 the second (BVD 1).
    h.set_disk(0, 2, FAULTY);
    sync_into(&mut h, &mut images);
    let text = examine_image(dir.path(), "d0.img", &images[0]);
    assert_eq!(
        field(&text, "state[0]").as_deref(),
        Some("Degraded, Consistent")
    );
    h.set_disk(0, 3, FAULTY);
    sync_into(&mut h, &mut images);
    let text = examine_image(dir.path(), "d1.img", &images[1]);
    assert_eq!(
        field(&text, "state[0]").as_deref(),
        Some("Failed, Consistent")
    );
}

#[test]
fn starting_without_a_member_marks_it_missing() {
    let Some(images) = dissect_set("ddf-raid5", 3) else {
        return;
    };
    let dir = TempDir::new("ddf-mon-missing");
    // The monitor was given only the first two devices.
    let mut two = images[..2].to_vec();
    let absent = {
        let h = handler_over(&images);
        h.container().devices()[2].disk_data().refnum
    };
    let mut h = handler_over(&two);
    let slot = (0..3)
        .find(|&s| refnum_in_slot(&h, s) == absent)
        .expect("in the VD");
    assert!(h.set_array_state(0, Consistency::Decide, RESYNC_NONE));
    sync_into(&mut h, &mut two);
    for (i, img) in two.iter().enumerate() {
        let text = examine_image(dir.path(), &format!("d{i}.img"), img);
        assert_eq!(
            field(&text, "state[0]").as_deref(),
            Some("Degraded, Consistent"),
            "disk {i}"
        );
        assert_eq!(
            pd_row(&text, absent).as_deref(),
            Some("active/Offline, Failed, Missing"),
            "disk {i}"
        );
        // The element is cleared: mdadm prints no PD number for it.
        let devices = field(&text, "Raid Devices[0]").expect("raid devices");
        assert!(devices.contains("--@"), "{devices}");
    }
    assert_eq!(
        refnum_in_slot(&h, slot),
        0,
        "mdadm clears the element to refnum 0"
    );
    assert_eq!(h.subarrays()[0].slot_disks[slot], None);
}

#[test]
fn nothing_changed_writes_nothing() {
    let Some(images) = dissect_set("ddf-raid1", 2) else {
        return;
    };
    let mut h = handler_over(&images);
    let mut out: Vec<MetadataWrite> = Vec::new();
    h.sync_metadata(&mut out);
    assert!(out.is_empty());
    // Unknown subarray: refused, nothing recorded.
    assert!(!h.set_array_state(7, Consistency::Dirty, RESYNC_NONE));
    h.set_disk(7, 0, FAULTY);
    assert!(h.activate_spare(7, &[0]).is_empty());
    h.sync_metadata(&mut out);
    assert!(out.is_empty());
    let subs = h.subarrays();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        (subs[0].index, subs[0].level, subs[0].raid_disks),
        (0, 1, 2)
    );
    assert_eq!(subs[0].name, "ddf-raid1");
    assert!(subs[0].consistent);
    assert_eq!(subs[0].resync_start, RESYNC_NONE);
}

const IN_SYNC: DiskState = DiskState {
    faulty: false,
    in_sync: true,
    write_mostly: false,
    spare: false,
    blocked: false,
    external_bbl: false,
};

/// A container umd made on three 64 MiB members, with a clean raid1 on the
/// first two: the third is a global spare. Returns the images in memory.
fn raid1_with_spare(dir: &TempDir) -> Vec<Vec<u8>> {
    let members = support::sparse_members(dir.path(), 3, 64);
    let paths: Vec<String> = members.iter().map(|p| p.display().to_string()).collect();
    support::umd_ok(&[
        "create",
        "-e",
        "ddf",
        "-l",
        "container",
        "-n",
        "3",
        &paths[0],
        &paths[1],
        &paths[2],
    ]);
    support::umd_ok(&[
        "create",
        "-e",
        "ddf",
        "-l",
        "1",
        "-n",
        "2",
        "--assume-clean",
        "--name",
        "m",
        &paths[0],
        &paths[1],
    ]);
    members
        .iter()
        .map(|p| std::fs::read(p).expect("read member"))
        .collect()
}

#[test]
fn a_spare_replaces_a_failed_member_and_rebuilds() {
    let dir = TempDir::new("ddf-mon-spare");
    let mut images = raid1_with_spare(&dir);
    let mut h = handler_over(&images);
    let failed = refnum_in_slot(&h, 1);
    let spare = h.container().devices()[2].disk_data().refnum;
    h.set_disk(0, 1, FAULTY);
    let got = h.activate_spare(0, &[1]);
    assert_eq!(
        got,
        vec![SpareAssignment {
            disk: 2,
            slot: 1,
            data_offset_sectors: 0,
            size_sectors: 65536
        }]
    );
    sync_into(&mut h, &mut images);
    for (i, img) in images.iter().enumerate() {
        let text = examine_image(dir.path(), &format!("x{i}.img"), img);
        assert_eq!(
            field(&text, "state[0]").as_deref(),
            Some("Degraded, Consistent"),
            "x{i}"
        );
        assert_eq!(
            pd_row(&text, spare).as_deref(),
            Some("active/Online, Rebuilding"),
            "x{i}"
        );
        assert_eq!(
            pd_row(&text, failed).as_deref(),
            Some("Global-Spare/Offline, Failed"),
            "x{i}"
        );
        // The failed disk no longer holds the VD's record; the spare does.
        let devices = field(&text, "Raid Devices[0]");
        if i == 1 {
            assert_eq!(devices, None, "x{i}");
        } else {
            assert_eq!(devices.as_deref(), Some("2 (0@0K 2@0K)"), "x{i}");
        }
    }
    // A rebuilding member is not assembled as in sync.
    assert_eq!(h.subarrays()[0].slot_disks, vec![Some(0), None]);
    // Nothing else to choose for the same slot now.
    assert!(h.activate_spare(0, &[1]).is_empty());

    h.set_disk(0, 1, IN_SYNC);
    sync_into(&mut h, &mut images);
    let text = examine_image(dir.path(), "x2.img", &images[2]);
    assert_eq!(
        field(&text, "state[0]").as_deref(),
        Some("Optimal, Consistent")
    );
    assert_eq!(pd_row(&text, spare).as_deref(), Some("active/Online"));
    assert_eq!(h.subarrays()[0].slot_disks, vec![Some(0), Some(2)]);
}

#[test]
fn a_spare_for_an_absent_member_drops_it_from_the_table() {
    let dir = TempDir::new("ddf-mon-spare-absent");
    let all = raid1_with_spare(&dir);
    let absent = handler_over(&all).container().devices()[1]
        .disk_data()
        .refnum;
    let mut two = vec![all[0].clone(), all[2].clone()];
    let mut h = handler_over(&two);
    assert!(h.set_array_state(0, Consistency::Decide, RESYNC_NONE));
    let got = h.activate_spare(0, &[1]);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].disk, got[0].slot, got[0].data_offset_sectors),
        (1, 1, 0)
    );
    sync_into(&mut h, &mut two);
    for (i, img) in two.iter().enumerate() {
        let text = examine_image(dir.path(), &format!("y{i}.img"), img);
        assert_eq!(
            ddf_support::pd_count(&text),
            2,
            "y{i}: the absent disk left the table"
        );
        assert_eq!(pd_row(&text, absent), None, "y{i}");
        assert_eq!(
            field(&text, "Raid Devices[0]").as_deref(),
            Some("2 (0@0K 1@0K)"),
            "y{i}"
        );
    }
}

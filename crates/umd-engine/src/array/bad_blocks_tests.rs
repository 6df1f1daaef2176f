//! Bad blocks on external arrays (protocol.md §5.8, §8.26): a recorded range
//! blocks writes until acknowledged; a manager without a bad-block list
//! that unblocks instead fails the member.

use super::*;
use crate::time::Time;

fn member(name: &str, slot: u32) -> MemberConfig {
    MemberConfig {
        name: name.to_owned(),
        slot: Some(slot),
        data_offset_sectors: 0,
        size_sectors: 4096,
        in_sync: true,
        faulty: false,
        write_mostly: false,
        replacement: false,
        recovery_offset_sectors: None,
    }
}

fn external_raid1() -> Array {
    let mut a = Array::new(ArrayConfig {
        level: 1,
        raid_disks: 2,
        chunk_sectors: 0,
        layout: 0,
        component_sectors: 4096,
        array_sectors: 4096,
        metadata: MetadataKind::External {
            name: "/ddf-1/0".to_owned(),
        },
        members: vec![member("sda", 0), member("sdb", 1)],
        resync_start: None,
        bitmap: None,
        safe_mode_delay: DEFAULT_SAFEMODE_DELAY,
        stripe_cache_size: DEFAULT_STRIPE_CACHE_SIZE,
    });
    a.run(Ro::ReadWrite, Time(0)).expect("runs");
    while a.poll_event().is_some() {}
    a
}

#[test]
fn with_external_bbl_writes_wait_for_the_acknowledgement() {
    let mut a = external_raid1();
    a.store("dev-sdb/state", "external_bbl", Time(0))
        .expect("external_bbl");
    assert!(a.record_bad_block("sdb", 100, 8));
    assert_eq!(
        a.show("dev-sdb/state").ok().as_deref(),
        Some("in_sync,blocked,external_bbl")
    );
    assert_eq!(
        a.show("dev-sdb/unacknowledged_bad_blocks").ok().as_deref(),
        Some("100 8")
    );
    assert!(a.write_blocked());
    a.store("array_state", "active", Time(0))
        .expect("ack the dirty mark");
    assert!(
        a.write_blocked(),
        "still waiting for the bad block's record"
    );
    a.store("dev-sdb/bad_blocks", "100 8", Time(0))
        .expect("ack");
    assert!(!a.write_blocked());
    assert_eq!(a.show("dev-sdb/bad_blocks").ok().as_deref(), Some("100 8"));
    assert_eq!(
        a.show("dev-sdb/unacknowledged_bad_blocks").ok().as_deref(),
        Some("")
    );
    assert_eq!(
        a.show("dev-sdb/state").ok().as_deref(),
        Some("in_sync,external_bbl")
    );
    assert_eq!(a.degraded(), 0);
}

#[test]
fn without_external_bbl_unblocking_fails_the_member() {
    let mut a = external_raid1();
    assert!(a.record_bad_block("sdb", 100, 8));
    assert_eq!(
        a.show("dev-sdb/state").ok().as_deref(),
        Some("faulty,in_sync,blocked")
    );
    a.store("dev-sdb/state", "-blocked", Time(0))
        .expect("unblock");
    assert_eq!(a.degraded(), 1);
    assert!(a.members()[1].is_faulty());
}

#[test]
fn bad_block_stores_are_checked() {
    let mut a = external_raid1();
    for bad in ["", "1", "1 0", "x 8", "1 2 3"] {
        assert_eq!(
            a.store("dev-sda/bad_blocks", bad, Time(0))
                .map_err(|e| e.errno),
            Err(Errno::EINVAL),
            "{bad:?}"
        );
    }
    assert!(a.store("dev-sda/bad_blocks", "8 8\n", Time(0)).is_ok());
    assert!(!a.write_blocked(), "an acknowledged range blocks nothing");
}

//! md's start rules, shown on simulated disks: a raid5/6 that is dirty
//! and degraded does not start unless forced (its stripes may not match
//! their parity: rebuilding the missing member from them could return data
//! never written); raid1 in the same state starts; a clean degraded raid5
//! starts. The same holds for a DDF subarray, whose dirty mark is the
//! virtual disk's state the simulated manager recorded.

mod support;

use umd_sim::disk::SimDisk;
use umd_sim::rng::Rng;
use umd_sim::world::{self, ArraySpec, Started};

fn spec(level: i32, raid_disks: u32, external: bool) -> ArraySpec {
    let bytes = if external {
        world::DDF_RESERVED_BYTES + (4 << 20)
    } else {
        4 << 20
    };
    ArraySpec {
        external,
        ..support::spec(level, raid_disks, bytes)
    }
}

/// Disks of an array that took one write (so is dirty on disk) and then
/// lost power; member 0 is then missing.
fn dirty_then_degraded(level: i32, raid_disks: u32, write: bool, external: bool) -> Vec<SimDisk> {
    let mut rng = Rng::new(7);
    let disks = world::create(&spec(level, raid_disks, external), &mut rng).expect("create");
    let Ok(Started::Running(mut host)) = world::start(disks, &mut rng, false) else {
        panic!("a new array starts");
    };
    if write {
        host.write(0, &[0xab; 4096], false).expect("write");
    }
    let mut disks = std::mem::take(&mut host.io.disks);
    for d in &mut disks {
        d.power_loss(umd_sim::disk::LossMode::KeepAll, &mut rng);
    }
    disks[0].vanish();
    disks
}

#[test]
fn dirty_degraded_raid5_refuses_unless_forced() {
    for (level, external) in [(5, false), (6, false), (5, true), (6, true)] {
        let disks = dirty_then_degraded(level, 4, true, external);
        let mut rng = Rng::new(1);
        let Ok(Started::Refused { why, disks }) = world::start(disks, &mut rng, false) else {
            panic!("raid{level} (external {external}) dirty and degraded must not start");
        };
        assert!(why.contains("dirty and degraded"), "{why}");
        assert!(
            matches!(world::start(disks, &mut rng, true), Ok(Started::Running(_))),
            "raid{level} starts when forced"
        );
    }
}

#[test]
fn dirty_degraded_raid1_and_clean_degraded_raid5_start() {
    for external in [false, true] {
        let mut rng = Rng::new(1);
        let raid1 = dirty_then_degraded(1, 2, true, external);
        assert!(
            matches!(
                world::start(raid1, &mut rng, false),
                Ok(Started::Running(_))
            ),
            "raid1 (external {external})"
        );
        let clean5 = dirty_then_degraded(5, 3, false, external);
        assert!(
            matches!(
                world::start(clean5, &mut rng, false),
                Ok(Started::Running(_))
            ),
            "clean raid5 (external {external})"
        );
    }
}

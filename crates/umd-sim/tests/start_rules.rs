//! md's start rules, shown on simulated disks: a raid5/6 that is dirty
//! and degraded does not start unless forced (its stripes may not match
//! their parity: rebuilding the missing member from them could return data
//! never written); raid1 in the same state starts; a clean degraded raid5
//! starts.

use umd_sim::disk::SimDisk;
use umd_sim::rng::Rng;
use umd_sim::world::{self, ArraySpec, Started};

fn spec(level: i32, raid_disks: u32) -> ArraySpec {
    ArraySpec {
        level,
        raid_disks,
        chunk_kib: 8,
        bitmap_chunk_kib: None,
        assume_clean: true,
        member_bytes: 4 << 20,
    }
}

/// Disks of an array that took one write (so is dirty on disk) and then
/// lost power; member 0 is then missing.
fn dirty_then_degraded(level: i32, raid_disks: u32, write: bool) -> Vec<SimDisk> {
    let mut rng = Rng::new(7);
    let disks = world::create(&spec(level, raid_disks), &mut rng).expect("create");
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
    for level in [5, 6] {
        let disks = dirty_then_degraded(level, 4, true);
        let mut rng = Rng::new(1);
        let Ok(Started::Refused { why, disks }) = world::start(disks, &mut rng, false) else {
            panic!("raid{level} dirty and degraded must not start");
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
    let mut rng = Rng::new(1);
    let raid1 = dirty_then_degraded(1, 2, true);
    assert!(matches!(
        world::start(raid1, &mut rng, false),
        Ok(Started::Running(_))
    ));
    let clean5 = dirty_then_degraded(5, 3, false);
    assert!(matches!(
        world::start(clean5, &mut rng, false),
        Ok(Started::Running(_))
    ));
}

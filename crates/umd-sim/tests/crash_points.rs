//! Crash-point enumeration: for short workloads, the power fails after
//! each member write in turn (not only at random points), on raid1, raid5
//! and raid6, native with and without an internal bitmap, and external (a
//! DDF subarray run by the simulated manager, whose metadata writes are
//! crash points too; DDF has no internal bitmap); every crash is followed
//! by a restart from the disks, the resync, and the checks.

use umd_sim::{enumerate_crash_points, enumeration_options, external_enumeration_options};

/// Seeds enumerated per level and bitmap setting.
pub const SEEDS: u64 = 3;
/// Operations in each enumerated workload.
pub const OPS: u32 = 10;
/// Operations in each enumerated external workload (each metadata write
/// is a dozen member writes per disk, so the crash points are many).
pub const EXTERNAL_OPS: u32 = 6;

fn enumerate(level: i32, bitmap: bool) {
    let mut points = 0;
    for seed in 0..SEEDS {
        let opts = enumeration_options(seed, Some(level), Some(bitmap), OPS);
        match enumerate_crash_points(seed, &opts) {
            Ok(n) => points += n,
            Err(e) => panic!(
                "raid{level} bitmap {bitmap} seed {seed}: {e}\n  replay: cargo run -p umd-sim \
                 --profile sim -- --crash-points {seed} --ops {OPS} --level {level} --bitmap {bitmap}"
            ),
        }
    }
    assert!(points > 10 * SEEDS, "only {points} crash points");
}

fn enumerate_external(level: i32, seeds: &[u64]) {
    let mut points = 0;
    for &seed in seeds {
        let opts = external_enumeration_options(seed, Some(level), EXTERNAL_OPS);
        match enumerate_crash_points(seed, &opts) {
            Ok(n) => points += n,
            Err(e) => panic!(
                "raid{level} external seed {seed}: {e}\n  replay: cargo run -p umd-sim \
                 --profile sim -- --crash-points {seed} --ops {EXTERNAL_OPS} --level {level} --external true"
            ),
        }
    }
    assert!(
        points > 50 * seeds.len() as u64,
        "only {points} crash points"
    );
}

#[test]
fn raid1_every_crash_point() {
    enumerate(1, false);
}

#[test]
fn raid1_bitmap_every_crash_point() {
    enumerate(1, true);
}

#[test]
fn raid5_every_crash_point() {
    enumerate(5, false);
}

#[test]
fn raid5_bitmap_every_crash_point() {
    enumerate(5, true);
}

#[test]
fn raid6_every_crash_point() {
    enumerate(6, false);
}

#[test]
fn raid6_bitmap_every_crash_point() {
    enumerate(6, true);
}

#[test]
fn raid1_external_every_crash_point() {
    enumerate_external(1, &[0, 1]);
}

#[test]
fn raid5_external_every_crash_point() {
    enumerate_external(5, &[1]);
}

#[test]
fn raid6_external_every_crash_point() {
    enumerate_external(6, &[1]);
}

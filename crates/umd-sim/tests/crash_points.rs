//! Crash-point enumeration: for a short workload, the power fails after
//! each member write in turn (not only at random points), on raid1, raid5
//! and raid6, with and without an internal bitmap; every crash is followed
//! by a restart from the disks, the resync, and the checks.

use umd_sim::{crash_points, run, short_workload, Options};

/// Operations in each enumerated workload.
const OPS: u32 = 8;

fn options(seed: u64, level: i32, bitmap: bool) -> Options {
    let mut opts = Options::from_seed(seed, Some(level));
    opts.array.bitmap_chunk_kib = bitmap.then_some(64);
    // Enough writes and flushes for every ordering rule to matter.
    opts.write_percent = 60;
    opts.flush_percent = 15;
    opts.read_percent = 10;
    short_workload(opts, OPS)
}

fn enumerate(level: i32, bitmap: bool) {
    let mut checked = 0;
    for seed in 0..1u64 {
        let opts = options(seed, level, bitmap);
        let points = crash_points(seed, &opts).expect("the workload passes without a crash");
        assert!(points > 5, "seed {seed}: only {points} member writes");
        for k in 1..=points {
            if let Err(e) = run(seed, &opts, Some(k)) {
                panic!(
                    "raid{level} bitmap {bitmap} seed {seed}, crash after member write {k}: {e}\n  \
                     replay: cargo run -p umd-sim --profile sim -- --crash-points {seed} --ops {OPS} --level {level}"
                );
            }
        }
        checked += points;
    }
    assert!(checked > 10);
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

//! Crash-point enumeration: for short workloads, the power fails after
//! each member write in turn (not only at random points), on raid1, raid5
//! and raid6, native with and without an internal bitmap, and external (a
//! DDF subarray run by the simulated manager, whose metadata writes are
//! crash points too; DDF has no internal bitmap); every crash is followed
//! by a restart from the disks, the resync, and the checks. A rebuild is
//! enumerated too: a DDF subarray's member fails by hand and the manager
//! rebuilds it onto the container's global spare. And a raid5 with a
//! partial parity log loses a member at every crash point.

use umd_sim::{
    crash_points, enumerate_crash_points, enumeration_options, external_enumeration_options,
    ppl_enumeration_options, run, spare_enumeration_options, Outcome,
};

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

/// Operations in each enumerated rebuild, and the one at which the member
/// fails (the rest run while the spare is activated and rebuilt).
pub const SPARE_OPS: u32 = 8;
/// See [`SPARE_OPS`].
pub const SPARE_FAIL_AT: u32 = 2;

/// A DDF subarray loses a member at op [`SPARE_FAIL_AT`]; the manager
/// activates the container's spare and the recovery runs while writes go
/// on. Without a crash the spare must be activated; then the power fails
/// after every member write in turn (the activation's metadata, the
/// recovery's writes, the metadata recording it in sync).
fn enumerate_spare_rebuild(level: i32, seed: u64) {
    let opts = spare_enumeration_options(seed, Some(level), SPARE_OPS, SPARE_FAIL_AT);
    let whole = run(seed, &opts, None).expect("the workload passes without a crash");
    assert!(
        whole.container_spares_activated > 0,
        "the failure did not bring the spare in: {whole:?}"
    );
    match enumerate_crash_points(seed, &opts) {
        Ok(points) => assert!(points > 200, "only {points} crash points"),
        Err(e) => panic!(
            "raid{level} spare rebuild seed {seed}: {e}\n  replay: cargo run -p umd-sim \
             --profile sim -- --crash-points {seed} --spare-rebuild {SPARE_FAIL_AT} --ops {SPARE_OPS} --level {level}"
        ),
    }
}

#[test]
fn raid1_spare_rebuild_every_crash_point() {
    enumerate_spare_rebuild(1, 1);
}

#[test]
fn raid5_spare_rebuild_every_crash_point() {
    enumerate_spare_rebuild(5, 1);
}

#[test]
fn raid6_spare_rebuild_every_crash_point() {
    enumerate_spare_rebuild(6, 1);
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

/// Operations in each enumerated PPL workload.
pub const PPL_OPS: u32 = 30;

/// md's write hole, closed: a raid5 with a partial parity log loses a
/// member at every crash point (each point its own member), so every
/// restart is dirty and degraded. It must start without `--force`, replay
/// its logs, and read back every durable sector, the lost member's rebuilt
/// from the replayed parity. The same crashes without a log are refused,
/// as md refuses them.
#[test]
fn raid5_ppl_every_crash_point_with_a_member_lost() {
    let mut total = Outcome::default();
    for seed in 0..SEEDS {
        let opts = ppl_enumeration_options(seed, PPL_OPS);
        let points = crash_points(seed, &opts).expect("the workload passes without a crash");
        for k in 1..=points {
            match run(seed, &opts, Some(k)) {
                Ok(o) => total.add(&o),
                Err(e) => panic!(
                    "raid5 ppl seed {seed}, crash after member write {k}: {e}\n  replay: cargo run \
                     -p umd-sim --profile sim -- --crash-points {seed} --ppl true --ops {PPL_OPS}"
                ),
            }
        }
    }
    assert!(
        total.ppl_dirty_degraded_starts > 100 && total.ppl_entries_replayed > 100,
        "too few dirty degraded starts replayed: {total:?}"
    );
    assert_eq!(
        total.refused_starts, 0,
        "a PPL start was refused: {total:?}"
    );
    println!(
        "{} crash points: {} dirty degraded starts, {} entries replayed, {} torn sectors of lost members",
        total.crashes,
        total.ppl_dirty_degraded_starts,
        total.ppl_entries_replayed,
        total.torn_sectors_of_lost_members
    );
    let mut without = ppl_enumeration_options(0, PPL_OPS);
    without.array.ppl = false;
    let points = crash_points(0, &without).expect("the workload passes without a crash");
    let refused = (1..=points)
        .filter(|&k| run(0, &without, Some(k)).is_ok_and(|o| o.refused_starts > 0))
        .count();
    assert!(
        refused as u64 > points / 2,
        "without a log, only {refused} of {points} dirty degraded starts were refused"
    );
}

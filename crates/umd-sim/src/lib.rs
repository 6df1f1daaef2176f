//! Deterministic simulation of umd arrays.
//!
//! A seed drives everything: the array's shape, the workload, which member
//! writes complete first, where the power fails, which writes a disk's
//! cache keeps, which members fail. The engine's own decision code runs
//! on a single-threaded simulated host ([`host::SimHost`]) with simulated
//! time, over simulated member disks ([`disk::SimDisk`]); after every crash
//! the array is started again from the disks' bytes through the same start
//! path as `umd run` ([`world`]) and checked against a model of what may be
//! on it ([`model`]). `docs/simulation.md` describes the guarantees checked.
//!
//! Why: an ordering bug (a FLUSH answered before the members flushed, data
//! written before the dirty superblock is durable, a bitmap bit cleared
//! early) loses data only in a crash at one particular moment. A real
//! process cannot be stopped at every moment; a simulation can, and replays
//! the one that failed from its seed.
#![forbid(unsafe_code)]

pub mod control;
pub mod disk;
pub mod host;
mod housekeeping;
pub mod manager;
pub mod members;
pub mod model;
pub mod options;
pub mod ppl;
mod read_errors;
pub mod reshape;
pub mod rng;
pub mod sim;
mod spares;
pub mod world;

pub use options::Options;
pub use sim::{run, run_seed, run_seed_external, Outcome};

/// Member writes of `seed`'s workload run without any crash: the crash
/// points crash-point enumeration visits are `1..=` this.
pub fn crash_points(seed: u64, opts: &Options) -> Result<u64, String> {
    run(seed, opts, None).map(|o| o.crash_points)
}

/// Member size in crash-point enumeration.
pub const ENUMERATION_MEMBER_BYTES: usize = 2 << 20;

/// Options for crash-point enumeration: `seed`'s options for `level`, with
/// an internal bitmap or none as `bitmap` says (`None`: as the seed says),
/// a workload of `ops` operations, and no random crashes or faults, so
/// every member write can be the crash point in turn.
#[must_use]
pub fn enumeration_options(
    seed: u64,
    level: Option<i32>,
    bitmap: Option<bool>,
    ops: u32,
) -> Options {
    let mut opts = Options::from_seed(seed, level);
    if let Some(bitmap) = bitmap {
        opts.array.bitmap_chunk_kib = bitmap.then_some(64);
    }
    // Small members: every crash point reads the whole array back.
    opts.array.member_bytes = ENUMERATION_MEMBER_BYTES;
    opts.ops = ops;
    opts.crash_percent = 0;
    opts.crashes_max = 1;
    opts.fault_percent = 0;
    // Nothing fails, so a spare would only wait.
    opts.spare_percent = 0;
    opts.grow_percent = 0;
    opts.replace_percent = 0;
    // PPL has its own enumeration (a bitmap excludes it).
    opts.array.ppl = false;
    opts.loss_at_crash_percent = 0;
    opts
}

/// Options for crash-point enumeration of a raid5 with a partial parity
/// log: as [`enumeration_options`] for raid5 without a bitmap, created in
/// sync, and every crash also loses a member (drawn per crash point), so
/// each restart is dirty and degraded and reads the lost member's chunks
/// back through the replayed logs.
#[must_use]
pub fn ppl_enumeration_options(seed: u64, ops: u32) -> Options {
    let mut opts = enumeration_options(seed, Some(5), Some(false), ops);
    opts.array.v090 = false;
    opts.array.ppl = true;
    opts.array.assume_clean = true;
    // Room for the 1 MiB log area besides the data.
    opts.array.member_bytes = 2 * ENUMERATION_MEMBER_BYTES;
    opts.loss_at_crash_percent = 100;
    opts
}

/// Options for crash-point enumeration of a DDF subarray run by the
/// simulated manager: as [`enumeration_options`], with members as small as
/// DDF allows (its metadata keeps the last 32 MiB) and no bitmap.
#[must_use]
pub fn external_enumeration_options(seed: u64, level: Option<i32>, ops: u32) -> Options {
    let mut opts = enumeration_options(seed, level, Some(false), ops);
    let external = Options::from_seed_external(seed, level);
    opts.array.external = true;
    opts.array.member_bytes = world::DDF_RESERVED_BYTES + ENUMERATION_MEMBER_BYTES;
    opts.manager_interleave_percent = external.manager_interleave_percent;
    opts.stripe_cache_percent = external.stripe_cache_percent;
    opts
}

/// Options for crash-point enumeration of a rebuild onto a DDF container's
/// global spare: as [`external_enumeration_options`], with one spare made
/// with the container and the first member in sync failed by hand at
/// operation `fail_at` (`ops` in all), so the manager's activation, the
/// metadata recording the spare rebuilding, the recovery with writes going
/// on, and the metadata recording it in sync are all crash points.
#[must_use]
pub fn spare_enumeration_options(seed: u64, level: Option<i32>, ops: u32, fail_at: u32) -> Options {
    let mut opts = external_enumeration_options(seed, level, ops);
    opts.array.container_spares = 1;
    opts.fail_at_op = Some(fail_at);
    opts
}

/// Crash after every member write of `opts`' workload in turn; returns the
/// number of crash points, or the first that failed.
pub fn enumerate_crash_points(seed: u64, opts: &Options) -> Result<u64, String> {
    let points = crash_points(seed, opts).map_err(|e| format!("without a crash: {e}"))?;
    for k in 1..=points {
        run(seed, opts, Some(k)).map_err(|e| format!("crash after member write {k}: {e}"))?;
    }
    Ok(points)
}

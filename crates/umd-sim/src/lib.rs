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

pub mod disk;
pub mod host;
mod housekeeping;
pub mod members;
pub mod model;
pub mod options;
pub mod rng;
pub mod sim;
pub mod world;

pub use options::Options;
pub use sim::{run, run_seed, Outcome};

/// Member writes of `seed`'s workload run without any crash: the crash
/// points crash-point enumeration visits are `1..=` this.
pub fn crash_points(seed: u64, opts: &Options) -> Result<u64, String> {
    run(seed, opts, None).map(|o| o.crash_points)
}

/// Options for crash-point enumeration: `opts` without random crashes or
/// faults and with a short workload, so every member write can be a crash
/// point in turn.
#[must_use]
pub fn short_workload(mut opts: Options, ops: u32) -> Options {
    opts.ops = ops;
    opts.crash_percent = 0;
    opts.crashes_max = 1;
    opts.fault_percent = 0;
    opts
}

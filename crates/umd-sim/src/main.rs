//! `umd-sim`: run simulation seeds.
//!
//! ```text
//! umd-sim --seeds N [--from S] [--level 1|5|6]   N seeds from S (default: a random start)
//! umd-sim --seconds T [--level L]                 seeds for T seconds
//! umd-sim --replay SEED [--level L]               one seed, verbosely
//! (--latent: member faults include latent sector errors;
//!  --external true: the array is a DDF subarray run by the simulated manager)
//! umd-sim --crash-points SEED [--ops N] [--level L] [--bitmap true|false] [--external true]
//!                                                 crash after every member write in turn
//! umd-sim --crash-points SEED --ppl true [--ops N]
//!                                                 the same, for a raid5 with a partial
//!                                                 parity log that also loses a member
//!                                                 at every crash
//! umd-sim --crash-points SEED --spare-rebuild K [--ops N] [--level L]
//!                                                 the same, for a DDF subarray whose first
//!                                                 member fails at op K and is rebuilt onto
//!                                                 the container's spare
//! ```
//!
//! Each failing seed is printed with the one command that replays it.

use std::process::ExitCode;
use std::time::Instant;
use umd_sim::{
    enumerate_crash_points, enumeration_options, external_enumeration_options,
    ppl_enumeration_options, run, spare_enumeration_options, Options, Outcome,
};

struct Args {
    seeds: Option<u64>,
    seconds: Option<u64>,
    from: Option<u64>,
    replay: Option<u64>,
    crash_points: Option<u64>,
    ops: u32,
    level: Option<i32>,
    latent: bool,
    bitmap: Option<bool>,
    external: bool,
    spare_rebuild: Option<u32>,
    ppl: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seeds: None,
        seconds: None,
        from: None,
        replay: None,
        crash_points: None,
        ops: 12,
        level: None,
        latent: false,
        bitmap: None,
        external: false,
        spare_rebuild: None,
        ppl: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<u64, String> {
            it.next()
                .ok_or(format!("{flag} needs a value"))?
                .parse()
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--seeds" => a.seeds = Some(value()?),
            "--seconds" => a.seconds = Some(value()?),
            "--from" => a.from = Some(value()?),
            "--replay" => a.replay = Some(value()?),
            "--crash-points" => a.crash_points = Some(value()?),
            "--ops" => a.ops = u32::try_from(value()?).map_err(|e| e.to_string())?,
            "--spare-rebuild" => {
                a.spare_rebuild = Some(u32::try_from(value()?).map_err(|e| e.to_string())?);
            }
            "--latent" => a.latent = true,
            "--bitmap" => {
                let v = it.next().ok_or("--bitmap needs true or false")?;
                a.bitmap = Some(v.parse().map_err(|e| format!("--bitmap: {e}"))?);
            }
            "--ppl" => {
                let v = it.next().ok_or("--ppl needs true or false")?;
                a.ppl = v.parse().map_err(|e| format!("--ppl: {e}"))?;
            }
            "--external" => {
                let v = it.next().ok_or("--external needs true or false")?;
                a.external = v.parse().map_err(|e| format!("--external: {e}"))?;
            }
            "--level" => a.level = Some(i32::try_from(value()?).map_err(|e| e.to_string())?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn replay_command(seed: u64, args: &Args) -> String {
    let level = args
        .level
        .map_or(String::new(), |l| format!(" --level {l}"));
    let latent = if args.latent { " --latent" } else { "" };
    let external = if args.external {
        " --external true"
    } else {
        ""
    };
    let features: Vec<&str> = [
        (
            "inject-early-flush-ack",
            cfg!(feature = "inject-early-flush-ack"),
        ),
        (
            "inject-write-before-dirty",
            cfg!(feature = "inject-write-before-dirty"),
        ),
        (
            "inject-early-bitmap-clear",
            cfg!(feature = "inject-early-bitmap-clear"),
        ),
        (
            "inject-ack-before-metadata",
            cfg!(feature = "inject-ack-before-metadata"),
        ),
        (
            "inject-grow-before-sync",
            cfg!(feature = "inject-grow-before-sync"),
        ),
        ("inject-ppl-late-log", cfg!(feature = "inject-ppl-late-log")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let features = if features.is_empty() {
        String::new()
    } else {
        format!(" --features {}", features.join(","))
    };
    format!(
        "cargo run -p umd-sim --profile sim{features} -- --replay {seed}{level}{latent}{external}"
    )
}

/// The options of `seed` under the command line's pins.
fn options(seed: u64, args: &Args) -> Options {
    let mut opts = if args.external {
        Options::from_seed_external(seed, args.level)
    } else {
        Options::from_seed(seed, args.level)
    };
    opts.latent_faults = args.latent;
    opts
}

/// One seed; a panic (a failed assertion in the engine or the simulator)
/// is a failure of that seed like any other.
fn run_one(seed: u64, args: &Args) -> Result<Outcome, String> {
    let opts = options(seed, args);
    std::panic::catch_unwind(|| run(seed, &opts, None))
        .unwrap_or_else(|p| Err(format!("panic: {}", panic_text(&p))))
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

fn main() -> ExitCode {
    // Panics are reported per seed, with the seed; a backtrace comes with
    // --replay under RUST_BACKTRACE.
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("umd-sim: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = args.replay {
        println!("{:#?}", options(seed, &args));
        return match run_one(seed, &args) {
            Ok(o) => {
                println!("seed {seed}: ok {o:?}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("seed {seed}: FAILED: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(seed) = args.crash_points {
        return enumerate(seed, &args);
    }
    let start = Instant::now();
    let first = args.from.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let (mut ran, mut failed) = (0u64, 0u64);
    let mut total = Outcome::default();
    let limit = args.seeds.unwrap_or(u64::MAX);
    let seconds = args.seconds.unwrap_or(u64::MAX);
    while ran < limit && start.elapsed().as_secs() < seconds {
        let seed = first.wrapping_add(ran);
        ran += 1;
        match run_one(seed, &args) {
            Ok(o) => total.add(&o),
            Err(e) => {
                failed += 1;
                println!(
                    "FAILED seed {seed}: {e}\n  replay: {}",
                    replay_command(seed, &args)
                );
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{ran} seeds from {first}, {failed} failed, {secs:.1} s ({:.1} seeds/s)",
        f64::from(u32::try_from(ran).unwrap_or(u32::MAX)) / secs.max(1e-9)
    );
    println!("passing seeds in all: {total:?}");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn enumerate(seed: u64, args: &Args) -> ExitCode {
    let mut opts = if args.ppl {
        ppl_enumeration_options(seed, args.ops)
    } else if let Some(fail_at) = args.spare_rebuild {
        spare_enumeration_options(seed, args.level, args.ops, fail_at)
    } else if args.external {
        external_enumeration_options(seed, args.level, args.ops)
    } else {
        enumeration_options(seed, args.level, args.bitmap, args.ops)
    };
    opts.latent_faults = args.latent;
    match enumerate_crash_points(seed, &opts) {
        Ok(points) => {
            println!("seed {seed}: {points} crash points, all passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED seed {seed}: {e}");
            ExitCode::FAILURE
        }
    }
}

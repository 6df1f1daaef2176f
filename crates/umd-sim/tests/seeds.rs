//! The seed budget of `cargo test`: a few hundred seeded runs across
//! raid1, raid5 and raid6, each with its own swarm of options (shape,
//! bitmap, 1.2 or 0.90 superblocks, operation mix, faults, crashes, spares,
//! hot replaces, a grow; raid5 with a partial parity log, which may lose a
//! member at a crash). The same levels again with
//! external metadata: a DDF container subarray (created as `umd create
//! --metadata ddf` creates it) run by the simulated manager, which runs
//! `umd mon`'s own decision code and DDF handler; fewer seeds, as each
//! restart goes through the DDF start path and the manager. A failure
//! names the seed and the command that replays it.

use umd_sim::{run, run_seed, run_seed_external, Options, Outcome};

/// Seeds per level (the budget the bug-injection check must work within).
const SEEDS_PER_LEVEL: u64 = 100;
/// Seeds per level with external metadata.
const EXTERNAL_SEEDS_PER_LEVEL: u64 = 60;

fn seeds(level: i32, external: bool) -> Outcome {
    let mut total = Outcome::default();
    let mut failures = Vec::new();
    let (count, flag) = if external {
        (EXTERNAL_SEEDS_PER_LEVEL, " --external true")
    } else {
        (SEEDS_PER_LEVEL, "")
    };
    for seed in 0..count {
        let run = if external {
            run_seed_external
        } else {
            run_seed
        };
        match run(seed, Some(level)) {
            Ok(o) => total.add(&o),
            Err(e) => failures.push(format!(
                "seed {seed}: {e}\n  replay: cargo run -p umd-sim --profile sim -- --replay {seed} --level {level}{flag}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_exercised(&total, count);
    if !external {
        assert!(
            total.runs_090 > 0,
            "no seed ran on 0.90 superblocks: {total:?}"
        );
        assert!(
            total.replacements_done > 0 && total.replacements_asked >= total.replacements_done,
            "no hot replace finished: {total:?}"
        );
    }
    if external {
        // The manager acknowledged write-pendings and recorded failures.
        assert!(
            total.dirty_acks > count,
            "too few acknowledgements: {total:?}"
        );
        assert!(
            total.unblocks > 0,
            "no failure recorded and unblocked: {total:?}"
        );
        // Some containers had spares, and the manager put them to work.
        assert!(
            total.runs_with_container_spares > 0 && total.container_spares_activated > 0,
            "no container spare activated: {total:?}"
        );
    }
    total
}

/// The runs must have done what they are for: crashed, checked data,
/// injected faults. A budget that never crashes proves nothing.
fn assert_exercised(o: &Outcome, seeds: u64) {
    assert!(u64::from(o.crashes) > seeds / 2, "too few crashes: {o:?}");
    assert!(o.faults > 10, "too few faults: {o:?}");
    assert!(o.sectors_checked > 500_000, "too little checked: {o:?}");
}

#[test]
fn raid1_seeds() {
    seeds(1, false);
}

#[test]
fn raid5_seeds() {
    let o = seeds(5, false);
    assert!(
        o.refused_starts > 0,
        "dirty degraded starts never met: {o:?}"
    );
    // Seeds with a partial parity log lost members at crashes and started
    // dirty and degraded anyway, their logs replayed.
    assert!(
        o.ppl_runs > 0 && o.members_lost_at_crash > 0 && o.ppl_entries_replayed > 0,
        "no PPL raid5 lost a member at a crash: {o:?}"
    );
    assert!(
        o.ppl_dirty_degraded_starts > 0,
        "no PPL raid5 started dirty and degraded: {o:?}"
    );
}

#[test]
fn raid6_seeds() {
    seeds(6, false);
}

#[test]
fn raid1_external_seeds() {
    seeds(1, true);
}

#[test]
fn raid5_external_seeds() {
    let o = seeds(5, true);
    assert!(
        o.refused_starts > 0,
        "dirty degraded starts never met: {o:?}"
    );
    assert!(o.eagain_retries > 0, "EAGAIN never met: {o:?}");
}

#[test]
fn raid6_external_seeds() {
    let o = seeds(6, true);
    assert!(o.eagain_retries > 0, "EAGAIN never met: {o:?}");
}

/// Seeds per level whose member faults include latent sectors.
const LATENT_SEEDS_PER_LEVEL: u64 = 60;

/// Latent sectors (reads fail until the sector is written) among the
/// faults: foreground reads and sync passes rebuild and rewrite them, with
/// crashes anywhere around the rewrites, and nothing acknowledged is lost.
#[test]
fn latent_sector_seeds() {
    let mut total = Outcome::default();
    let mut failures = Vec::new();
    for level in [1, 5, 6] {
        for seed in 0..LATENT_SEEDS_PER_LEVEL {
            let mut opts = Options::from_seed(seed, Some(level));
            opts.latent_faults = true;
            match run(seed, &opts, None) {
                Ok(o) => total.add(&o),
                Err(e) => failures.push(format!(
                    "seed {seed}: {e}\n  replay: cargo run -p umd-sim --profile sim -- --replay {seed} --level {level} --latent"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        total.read_errors_rewritten > 10,
        "too few rewrites: {total:?}"
    );
}

//! The seed budget of `cargo test`: a few hundred seeded runs across
//! raid1, raid5 and raid6, each with its own swarm of options (shape,
//! bitmap, operation mix, faults, crashes). A failure names the seed and
//! the command that replays it.

use umd_sim::{run_seed, Outcome};

/// Seeds per level (the budget the bug-injection check must work within).
const SEEDS_PER_LEVEL: u64 = 100;

fn seeds(level: i32) -> Outcome {
    let mut total = Outcome::default();
    let mut failures = Vec::new();
    for seed in 0..SEEDS_PER_LEVEL {
        match run_seed(seed, Some(level)) {
            Ok(o) => total.add(&o),
            Err(e) => failures.push(format!(
                "seed {seed}: {e}\n  replay: cargo run -p umd-sim --profile sim -- --replay {seed} --level {level}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    total
}

/// The runs must have done what they are for: crashed, checked data,
/// injected faults. A budget that never crashes proves nothing.
fn assert_exercised(o: &Outcome) {
    assert!(
        u64::from(o.crashes) > SEEDS_PER_LEVEL / 2,
        "too few crashes: {o:?}"
    );
    assert!(o.faults > 10, "too few faults: {o:?}");
    assert!(o.sectors_checked > 1_000_000, "too little checked: {o:?}");
}

#[test]
fn raid1_seeds() {
    assert_exercised(&seeds(1));
}

#[test]
fn raid5_seeds() {
    let o = seeds(5);
    assert_exercised(&o);
    assert!(
        o.refused_starts > 0,
        "dirty degraded starts never met: {o:?}"
    );
}

#[test]
fn raid6_seeds() {
    assert_exercised(&seeds(6));
}

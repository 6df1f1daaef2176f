//! The bug-injection check: built with one of the `inject-*` features, an
//! ordering rule is broken on purpose, and the simulator must find a
//! failing run within the budget of `cargo test`: the seeds of
//! `tests/seeds.rs`, then the crash points `tests/crash_points.rs`
//! enumerates (native, PPL last, then external metadata; for the external
//! rule, external first). Without a feature this file tests nothing.
//!
//! ```text
//! cargo test -p umd-sim --profile sim --features inject-early-flush-ack --test injected -- --nocapture
//! ```

#[cfg(any(
    feature = "inject-early-flush-ack",
    feature = "inject-write-before-dirty",
    feature = "inject-early-bitmap-clear",
    feature = "inject-grow-before-sync",
    feature = "inject-ack-before-metadata",
    feature = "inject-ppl-late-log"
))]
#[test]
fn the_injected_bug_is_found_within_the_budget() {
    let external_first = cfg!(feature = "inject-ack-before-metadata");
    let found = if external_first {
        first_failure(true).or_else(|| first_failure(false))
    } else {
        first_failure(false).or_else(|| first_failure(true))
    };
    println!(
        "found: {}",
        found.expect("nothing in the budget found the injected bug")
    );
}

/// The budget of `cargo test` for native or external metadata.
#[cfg(any(
    feature = "inject-early-flush-ack",
    feature = "inject-write-before-dirty",
    feature = "inject-early-bitmap-clear",
    feature = "inject-grow-before-sync",
    feature = "inject-ack-before-metadata",
    feature = "inject-ppl-late-log"
))]
fn first_failure(external: bool) -> Option<String> {
    let (seeds, kind) = if external {
        (60u64, "external ")
    } else {
        (100u64, "")
    };
    for level in [1, 5, 6] {
        for seed in 0..seeds {
            let run = if external {
                umd_sim::run_seed_external(seed, Some(level))
            } else {
                umd_sim::run_seed(seed, Some(level))
            };
            if let Err(e) = run {
                return Some(format!("{kind}raid{level} seed {seed}: {e}"));
            }
        }
    }
    // The same enumeration as tests/crash_points.rs.
    if external {
        for (level, seeds) in [(1, &[0u64, 1][..]), (5, &[1][..]), (6, &[1][..])] {
            for &seed in seeds {
                let opts = umd_sim::external_enumeration_options(seed, Some(level), 6);
                if let Err(e) = umd_sim::enumerate_crash_points(seed, &opts) {
                    return Some(format!(
                        "crash points external raid{level} seed {seed}: {e}"
                    ));
                }
            }
        }
        return None;
    }
    for level in [1, 5, 6] {
        for bitmap in [false, true] {
            for seed in 0..3u64 {
                let opts = umd_sim::enumeration_options(seed, Some(level), Some(bitmap), 10);
                if let Err(e) = umd_sim::enumerate_crash_points(seed, &opts) {
                    return Some(format!(
                        "crash points raid{level} bitmap {bitmap} seed {seed}: {e}"
                    ));
                }
            }
        }
    }
    for seed in 0..3u64 {
        let opts = umd_sim::ppl_enumeration_options(seed, 30);
        if let Err(e) = umd_sim::enumerate_crash_points(seed, &opts) {
            return Some(format!("crash points raid5 ppl seed {seed}: {e}"));
        }
    }
    None
}

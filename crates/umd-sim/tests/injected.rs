//! The bug-injection check: built with one of the `inject-*` features, an
//! ordering rule of the engine is broken on purpose, and the simulator must
//! find a failing run within the budget of `cargo test`: the 300 seeds of
//! `tests/seeds.rs`, then the crash points `tests/crash_points.rs`
//! enumerates. Without a feature this file tests nothing.
//!
//! ```text
//! cargo test -p umd-sim --profile sim --features inject-early-flush-ack --test injected -- --nocapture
//! ```

#[cfg(any(
    feature = "inject-early-flush-ack",
    feature = "inject-write-before-dirty",
    feature = "inject-early-bitmap-clear"
))]
#[test]
fn the_injected_bug_is_found_within_the_budget() {
    let found = first_failure().expect("nothing in the budget found the injected bug");
    println!("found: {found}");
}

#[cfg(any(
    feature = "inject-early-flush-ack",
    feature = "inject-write-before-dirty",
    feature = "inject-early-bitmap-clear"
))]
fn first_failure() -> Option<String> {
    for level in [1, 5, 6] {
        for seed in 0..100u64 {
            if let Err(e) = umd_sim::run_seed(seed, Some(level)) {
                return Some(format!("raid{level} seed {seed}: {e}"));
            }
        }
    }
    // The same enumeration as tests/crash_points.rs.
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
    None
}

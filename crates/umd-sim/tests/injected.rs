//! The bug-injection check: built with one of the `inject-*` features, an
//! ordering rule of the engine is broken on purpose, and the simulator must
//! find a failing seed within the seed budget of `cargo test` (the same
//! seeds `tests/seeds.rs` runs). Without a feature this file tests nothing.
//!
//! ```text
//! cargo test -p umd-sim --profile sim --features inject-early-flush-ack --test injected
//! ```

#[cfg(any(
    feature = "inject-early-flush-ack",
    feature = "inject-write-before-dirty",
    feature = "inject-early-bitmap-clear"
))]
#[test]
fn the_injected_bug_is_found_within_the_budget() {
    let mut found = None;
    'seeds: for level in [1, 5, 6] {
        for seed in 0..100u64 {
            if let Err(e) = umd_sim::run_seed(seed, Some(level)) {
                found = Some(format!("raid{level} seed {seed}: {e}"));
                break 'seeds;
            }
        }
    }
    let found = found.expect("no seed of the budget found the injected bug");
    println!("found: {found}");
}

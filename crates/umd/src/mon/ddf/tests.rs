//! Unit tests of the handler that need no real image: the fuzz entry over
//! pseudo-random inputs (every run builds a container, bends it, drives the
//! handler and reloads what it wrote). The tests against mdadm's own reading
//! are in `tests/ddf_mon.rs`.

use crate::mon::fuzz::ddf_handler;

/// splitmix64, for reproducible inputs.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn handler_survives_bent_containers_and_random_calls() {
    for seed in 0..64u64 {
        let len = (seed as usize * 37) % 300;
        ddf_handler(&bytes(seed, len));
    }
    ddf_handler(&[]);
    ddf_handler(&[0xff; 64]);
}

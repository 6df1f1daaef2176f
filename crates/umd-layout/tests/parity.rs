//! Parity kernels against the definition (formats.md §4.4-4.5) and against the
//! scalar reference: every kernel this CPU runs must produce the reference's
//! bytes for any length, alignment and disk count, and recovery must give back
//! the original blocks for every one- and two-block loss.

use proptest::prelude::*;
use umd_layout::parity::{self, available_kernels, scalar, Kernels};

/// md's multiply by 2, written out here so the known vectors do not lean on the
/// crate's tables: shift, and reduce by 0x1d (x^8 = x^4 + x^3 + x^2 + 1).
fn times2(a: u8) -> u8 {
    let shifted = a << 1;
    if a & 0x80 == 0 {
        shifted
    } else {
        shifted ^ 0x1d
    }
}

/// g^z . v by z repeated doublings.
fn times_g_pow(v: u8, z: usize) -> u8 {
    (0..z).fold(v, |acc, _| times2(acc))
}

/// Deterministic bytes: xorshift64 from the seed, so proptest shrinks seeds
/// instead of megabytes.
fn fill(buf: &mut [u8], seed: u64) {
    let mut state = seed | 1;
    for byte in buf {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = (state >> 24) as u8;
    }
}

/// `count` buffers of `offset + len` random bytes; the blocks are `[offset..]`.
fn random_buffers(count: usize, offset: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut buf = vec![0u8; offset + len];
            fill(&mut buf, seed.wrapping_add(i as u64 * 0x9e37_79b9));
            buf
        })
        .collect()
}

fn views(buffers: &[Vec<u8>], offset: usize) -> Vec<&[u8]> {
    buffers.iter().map(|b| &b[offset..]).collect()
}

#[test]
fn q_of_single_bytes_matches_repeated_doubling() {
    for d in 1..=32usize {
        for slot in 0..d {
            for value in [1u8, 0x80, 0x53, 0xff] {
                let mut data = vec![[0u8]; d];
                data[slot] = [value];
                let refs: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
                for kernels in available_kernels() {
                    let (mut p, mut q) = ([0u8], [0u8]);
                    kernels.pq_gen(&refs, &mut p, &mut q);
                    assert_eq!(p, [value], "{}: P of slot {slot}", kernels.name());
                    let expected = times_g_pow(value, slot);
                    assert_eq!(
                        q,
                        [expected],
                        "{}: Q of {value:#x} in slot {slot}",
                        kernels.name()
                    );
                }
            }
        }
    }
}

#[test]
fn known_powers_of_the_generator() {
    // g^8 = 0x1d (the polynomial's low byte), g^9 = 0x3a, g^255 = 1.
    assert_eq!(times_g_pow(1, 8), 0x1d);
    let mut data = [[0u8]; 10];
    data[8] = [1];
    data[9] = [1];
    let refs: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
    let (mut p, mut q) = ([0u8], [0u8]);
    scalar::pq_gen(&refs, &mut p, &mut q);
    assert_eq!(q, [0x1d ^ 0x3a]);
    assert_eq!(p, [0]);
    assert_eq!(times_g_pow(1, 255), 1);
}

#[test]
fn q_of_multi_byte_blocks_matches_definition() {
    let (d, len) = (13, 300);
    let buffers = random_buffers(d, 0, len, 7);
    let data = views(&buffers, 0);
    for kernels in available_kernels() {
        let (mut p, mut q) = (vec![0u8; len], vec![0u8; len]);
        kernels.pq_gen(&data, &mut p, &mut q);
        for i in 0..len {
            let want_p = data.iter().fold(0, |acc, b| acc ^ b[i]);
            let want_q = (0..d).fold(0, |acc, z| acc ^ times_g_pow(data[z][i], z));
            assert_eq!(
                (p[i], q[i]),
                (want_p, want_q),
                "{} byte {i}",
                kernels.name()
            );
        }
    }
}

#[test]
fn chosen_kernel_is_available() {
    let names: Vec<&str> = available_kernels().iter().map(Kernels::name).collect();
    assert!(
        names.contains(&parity::kernel_name()),
        "{} not in {names:?}",
        parity::kernel_name()
    );
    assert_eq!(names.last(), Some(&"scalar"));
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..=2,
        1usize..=300,
        (1usize..=1024).prop_map(|k| k * 64),
        0usize..=65536
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generation_matches_scalar(
        d in 1usize..=32,
        len in len_strategy(),
        offset in 0usize..64,
        seed in any::<u64>(),
    ) {
        let buffers = random_buffers(d, offset, len, seed);
        let data = views(&buffers, offset);
        let (mut want_x, mut want_p, mut want_q) = (vec![0; len], vec![0; len], vec![0; len]);
        scalar::xor_gen(&data, &mut want_x);
        scalar::pq_gen(&data, &mut want_p, &mut want_q);
        prop_assert_eq!(&want_x, &want_p);
        for kernels in available_kernels() {
            // Outputs at their own odd offset too.
            let out_offset = (offset * 7 + 3) % 64;
            let mut x = vec![0xa5; out_offset + len];
            let mut p = vec![0x5a; out_offset + len];
            let mut q = vec![0x3c; out_offset + len];
            kernels.xor_gen(&data, &mut x[out_offset..]);
            kernels.pq_gen(&data, &mut p[out_offset..], &mut q[out_offset..]);
            prop_assert!(x[out_offset..] == want_x[..], "{} xor_gen", kernels.name());
            prop_assert!(p[out_offset..] == want_p[..], "{} pq_gen P", kernels.name());
            prop_assert!(q[out_offset..] == want_q[..], "{} pq_gen Q", kernels.name());
        }
    }
}

/// Every 1- and 2-block loss of a raid6 stripe of `d` data blocks.
fn loss_patterns(d: usize) -> Vec<Vec<usize>> {
    let n = d + 2;
    let mut patterns: Vec<Vec<usize>> = (0..n).map(|x| vec![x]).collect();
    for x in 0..n {
        for y in x + 1..n {
            patterns.push(vec![x, y]);
        }
    }
    patterns
}

/// A raid6 stripe (data, P, Q) built with the scalar reference.
fn raid6_stripe(d: usize, offset: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut stripe = random_buffers(d, offset, len, seed);
    let (mut p, mut q) = (vec![0u8; offset + len], vec![0u8; offset + len]);
    scalar::pq_gen(&views(&stripe, offset), &mut p[offset..], &mut q[offset..]);
    stripe.push(p);
    stripe.push(q);
    stripe
}

type Recover = dyn Fn(&mut [&mut [u8]], &[usize]);

/// Wipes the blocks of each loss pattern, runs `recover`, and wants the original back.
fn check_raid6_recovery(name: &str, recover: &Recover, stripe: &[Vec<u8>], offset: usize) {
    let d = stripe.len() - 2;
    for missing in loss_patterns(d) {
        let mut damaged = stripe.to_vec();
        for &m in &missing {
            damaged[m][offset..].fill(0xee);
        }
        let mut blocks: Vec<&mut [u8]> = damaged.iter_mut().map(|b| &mut b[offset..]).collect();
        recover(&mut blocks, &missing);
        for (i, (got, want)) in damaged.iter().zip(stripe).enumerate() {
            assert!(
                got == want,
                "{name}: d={d} missing {missing:?}: block {i} differs"
            );
        }
    }
}

fn all_recoverers() -> Vec<(&'static str, Box<Recover>)> {
    let mut recoverers: Vec<(&'static str, Box<Recover>)> =
        vec![("scalar reference", Box::new(scalar::raid6_recover))];
    for kernels in available_kernels() {
        recoverers.push((
            kernels.name(),
            Box::new(move |b, m| kernels.raid6_recover(b, m)),
        ));
    }
    recoverers.push(("dispatched", Box::new(parity::raid6_recover)));
    recoverers
}

#[test]
fn raid6_every_loss_pattern_small_blocks() {
    for d in 1..=32usize {
        let len = [0, 1, 31, 64, 97, 200][d % 6];
        let offset = d % 5;
        let stripe = raid6_stripe(d, offset, len, d as u64);
        for (name, recover) in all_recoverers() {
            check_raid6_recovery(name, &*recover, &stripe, offset);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn raid6_recovery_restores_random_stripes(
        d in 1usize..=10,
        len in prop_oneof![1usize..=300, 16_000usize..=40_000],
        offset in 0usize..64,
        seed in any::<u64>(),
    ) {
        let stripe = raid6_stripe(d, offset, len, seed);
        for (name, recover) in all_recoverers() {
            check_raid6_recovery(name, &*recover, &stripe, offset);
        }
    }

    #[test]
    fn raid5_recovery_restores_random_stripes(
        d in 1usize..=32,
        len in len_strategy(),
        offset in 0usize..64,
        seed in any::<u64>(),
    ) {
        let mut stripe = random_buffers(d, offset, len, seed);
        let mut p = vec![0u8; offset + len];
        scalar::xor_gen(&views(&stripe, offset), &mut p[offset..]);
        stripe.push(p);
        for missing in 0..=d {
            let mut reference = stripe.clone();
            reference[missing][offset..].fill(0);
            let mut blocks: Vec<&mut [u8]> =
                reference.iter_mut().map(|b| &mut b[offset..]).collect();
            scalar::raid5_recover(&mut blocks, missing);
            prop_assert!(reference == stripe, "scalar reference, missing {}", missing);
            for kernels in available_kernels() {
                let mut damaged = stripe.clone();
                damaged[missing][offset..].fill(0x77);
                let mut blocks: Vec<&mut [u8]> =
                    damaged.iter_mut().map(|b| &mut b[offset..]).collect();
                kernels.raid5_recover(&mut blocks, missing);
                prop_assert!(damaged == stripe, "{} missing {}", kernels.name(), missing);
            }
        }
    }
}

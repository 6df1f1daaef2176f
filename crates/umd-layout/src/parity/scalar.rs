//! Plain-Rust reference of every parity operation: the specification the SIMD
//! kernels are tested against (style R14), and the fallback on CPUs without them.
//!
//! The public functions follow formats.md §4.4-4.5 literally: P is the XOR of
//! the data blocks, Q is Horner's rule from the highest slot (Q = 2.Q xor D_z),
//! and recovery solves the two syndrome equations byte by byte with log/antilog
//! arithmetic. The `*_from` helpers are the same maths over the byte range
//! `start..`, which the SIMD kernels use for the tail that is shorter than one
//! vector stride.

use super::gf256::{self, mul2, MUL};
use super::{check_pq_args, check_raid5_args, check_raid6_args, check_xor_args, Loss};

/// dest = XOR of all sources (equal lengths, at least one source).
pub fn xor_gen(sources: &[&[u8]], dest: &mut [u8]) {
    check_xor_args(sources, dest);
    xor_gen_from(sources, dest, 0);
}

/// p = XOR of data; q = sum over slots z of g^z . data[z] (data in Q slot order).
pub fn pq_gen(data: &[&[u8]], p: &mut [u8], q: &mut [u8]) {
    check_pq_args(data, p, q);
    pq_gen_from(data, p, q, 0);
}

/// Rebuild `blocks[missing]` as the XOR of all other blocks (raid4/5: data then P).
pub fn raid5_recover(blocks: &mut [&mut [u8]], missing: usize) {
    let len = check_raid5_args(blocks, missing);
    for i in 0..len {
        let mut acc = 0u8;
        for (k, block) in blocks.iter().enumerate() {
            if k != missing {
                acc ^= block[i];
            }
        }
        blocks[missing][i] = acc;
    }
}

/// Rebuild the 1 or 2 blocks listed in `missing` (sorted) of a raid6 stripe laid
/// out as d data blocks in Q slot order, then P, then Q; formats.md §4.5.
// Byte columns across blocks are the natural unit of the definition.
#[allow(clippy::needless_range_loop)]
pub fn raid6_recover(blocks: &mut [&mut [u8]], missing: &[usize]) {
    let (d, len, loss) = check_raid6_args(blocks, missing);
    for i in 0..len {
        // Syndromes of the surviving data, lost data counted as zero.
        let mut p_partial = 0u8;
        let mut q_partial = 0u8;
        for z in 0..d {
            if !missing.contains(&z) {
                p_partial ^= blocks[z][i];
                q_partial ^= gf256::mul(gf256::exp(z), blocks[z][i]);
            }
        }
        match loss {
            Loss::P => blocks[d][i] = p_partial,
            Loss::Q => blocks[d + 1][i] = q_partial,
            Loss::PQ => {
                blocks[d][i] = p_partial;
                blocks[d + 1][i] = q_partial;
            }
            Loss::Data(x) => blocks[x][i] = blocks[d][i] ^ p_partial,
            Loss::DataQ(x) => {
                let dx = blocks[d][i] ^ p_partial;
                blocks[x][i] = dx;
                blocks[d + 1][i] = q_partial ^ gf256::mul(gf256::exp(x), dx);
            }
            Loss::DataP(x) => {
                let dx = gf256::mul(blocks[d + 1][i] ^ q_partial, gf256::inv(gf256::exp(x)));
                blocks[x][i] = dx;
                blocks[d][i] = p_partial ^ dx;
            }
            Loss::DataData(x, y) => {
                let pxy = blocks[d][i] ^ p_partial;
                let qxy = blocks[d + 1][i] ^ q_partial;
                let (a, b) = two_data_coefficients(x, y);
                let dx = gf256::mul(a, pxy) ^ gf256::mul(b, qxy);
                blocks[x][i] = dx;
                blocks[y][i] = pxy ^ dx;
            }
        }
    }
}

/// A and B of formats.md §4.5 for lost data slots x < y:
/// A = g^(y-x) / (g^(y-x) xor 1), B = g^(-x) / (g^(y-x) xor 1).
#[must_use]
pub(crate) fn two_data_coefficients(x: usize, y: usize) -> (u8, u8) {
    assert!(x < y, "lost data slots must be sorted and distinct");
    let gyx = gf256::exp(y - x);
    // g^(y-x) = 1 would make the system singular; slots are < 255 apart.
    assert!(gyx != 1, "data slots {x} and {y} share a Q coefficient");
    let denominator = gyx ^ 1;
    let a = gf256::div(gyx, denominator);
    let b = gf256::div(gf256::inv(gf256::exp(x)), denominator);
    (a, b)
}

/// `xor_gen` over bytes `start..`.
pub(crate) fn xor_gen_from(sources: &[&[u8]], dest: &mut [u8], start: usize) {
    let dest = &mut dest[start..];
    dest.copy_from_slice(&sources[0][start..]);
    for source in &sources[1..] {
        for (out, byte) in dest.iter_mut().zip(&source[start..]) {
            *out ^= byte;
        }
    }
}

/// `pq_gen` over bytes `start..`: Horner from the highest slot.
pub(crate) fn pq_gen_from(data: &[&[u8]], p: &mut [u8], q: &mut [u8], start: usize) {
    let (last, rest) = data
        .split_last()
        .expect("check_pq_args demands one data block");
    let p = &mut p[start..];
    let q = &mut q[start..];
    p.copy_from_slice(&last[start..]);
    q.copy_from_slice(&last[start..]);
    for block in rest.iter().rev() {
        let block = &block[start..];
        for ((pb, qb), byte) in p.iter_mut().zip(q.iter_mut()).zip(block) {
            *pb ^= byte;
            *qb = mul2(*qb) ^ byte;
        }
    }
}

/// Two lost data blocks, over bytes `start..`. On entry dx = P' and dy = Q'
/// (syndromes of the surviving data); on exit they hold Dx and Dy.
pub(crate) fn recov_2data_from(
    dx: &mut [u8],
    dy: &mut [u8],
    p: &[u8],
    q: &[u8],
    coefficients: (u8, u8),
    start: usize,
) {
    let mul_a = &MUL[coefficients.0 as usize];
    let mul_b = &MUL[coefficients.1 as usize];
    let pairs = dx[start..].iter_mut().zip(dy[start..].iter_mut());
    for (((x, y), pb), qb) in pairs.zip(&p[start..]).zip(&q[start..]) {
        let pxy = pb ^ *x;
        let qxy = qb ^ *y;
        let data_x = mul_a[pxy as usize] ^ mul_b[qxy as usize];
        *x = data_x;
        *y = pxy ^ data_x;
    }
}

/// One lost data block and P, over bytes `start..`. On entry dx = Q' and p = P'
/// (syndromes of the surviving data); on exit dx = (Q xor Q') . g^-x and p = P.
pub(crate) fn recov_datap_from(
    dx: &mut [u8],
    p: &mut [u8],
    q: &[u8],
    coefficient: u8,
    start: usize,
) {
    let mul_c = &MUL[coefficient as usize];
    let pairs = dx[start..].iter_mut().zip(p[start..].iter_mut());
    for ((x, pb), qb) in pairs.zip(&q[start..]) {
        let data_x = mul_c[(qb ^ *x) as usize];
        *x = data_x;
        *pb ^= data_x;
    }
}

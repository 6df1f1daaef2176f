//! AVX2 parity kernels: 32-byte vectors, four per stride so each pass over the
//! data blocks keeps 128 bytes of P and Q in registers.
//!
//! Q uses md's multiply-by-2 per Horner step: bytes whose top bit is set
//! (a signed compare with zero) get 0x1d XORed in after doubling with a byte
//! add (formats.md §4.5). Recovery multiplies by constants with two 16-entry
//! `vpshufb` lookups, one per nibble ([`gf256::NIBBLES`]). Lengths that are not
//! a multiple of the stride finish with single vectors, then the scalar code.
//!
//! The safe wrappers at the bottom are reachable only through the table that
//! [`kernels`] builds after `is_x86_feature_detected!("avx2")` said yes; that is
//! the whole argument for calling the `#[target_feature]` functions from them.

use std::arch::x86_64::{
    __m256i, _mm256_add_epi8, _mm256_and_si256, _mm256_broadcastsi128_si256, _mm256_cmpgt_epi8,
    _mm256_loadu_si256, _mm256_set1_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8,
    _mm256_srli_epi16, _mm256_storeu_si256, _mm256_xor_si256, _mm_loadu_si128,
};

use super::gf256::{self, NIBBLES, NIBBLE_ENTRIES, POLYNOMIAL_LOW};
use super::{scalar, Kernels};

/// Bytes in one AVX2 vector.
const VECTOR_BYTES: usize = 32;
/// Vectors per stride of the main loops.
const WIDE: usize = 4;
/// Mask selecting the low nibble of each byte for the `vpshufb` lookups.
const LOW_NIBBLE: u8 = 0x0f;

/// The AVX2 kernel set if this CPU supports AVX2.
pub(super) fn kernels() -> Option<Kernels> {
    if !is_x86_feature_detected!("avx2") {
        return None;
    }
    Some(Kernels {
        name: "avx2",
        xor_gen,
        pq_gen,
        recov_2data,
        recov_datap,
    })
}

/// Ends of the wide-stride part and of the single-vector part of `len` bytes.
fn split(len: usize) -> (usize, usize) {
    let wide_end = len - len % (WIDE * VECTOR_BYTES);
    let vector_end = len - len % VECTOR_BYTES;
    (wide_end, vector_end)
}

/// Loads 32 bytes at `src[offset..]`.
///
/// # Safety
/// `offset + 32 <= src.len()` and the CPU supports AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load(src: &[u8], offset: usize) -> __m256i {
    debug_assert!(offset + VECTOR_BYTES <= src.len());
    // SAFETY: the caller guarantees the 32 bytes are inside `src`; loadu has no
    // alignment requirement.
    unsafe { _mm256_loadu_si256(src.as_ptr().add(offset).cast()) }
}

/// Stores 32 bytes at `dst[offset..]`.
///
/// # Safety
/// `offset + 32 <= dst.len()` and the CPU supports AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store(dst: &mut [u8], offset: usize, value: __m256i) {
    debug_assert!(offset + VECTOR_BYTES <= dst.len());
    // SAFETY: the caller guarantees the 32 bytes are inside `dst`, which we
    // borrow mutably; storeu has no alignment requirement.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().add(offset).cast(), value) }
}

/// The two nibble tables for multiplying by `c`, each in both 128-bit lanes
/// (`vpshufb` looks up within a lane).
#[inline]
#[target_feature(enable = "avx2")]
fn nibble_tables(c: u8) -> (__m256i, __m256i) {
    let tables = &NIBBLES[c as usize];
    // SAFETY: `tables` is 32 bytes, so both 16-byte loads are in bounds.
    let (low, high) = unsafe {
        (
            _mm_loadu_si128(tables.as_ptr().cast()),
            _mm_loadu_si128(tables.as_ptr().add(NIBBLE_ENTRIES).cast()),
        )
    };
    (
        _mm256_broadcastsi128_si256(low),
        _mm256_broadcastsi128_si256(high),
    )
}

/// c . x for each byte, with c's nibble tables.
#[inline]
#[target_feature(enable = "avx2")]
fn mul_const(x: __m256i, tables: (__m256i, __m256i)) -> __m256i {
    let mask = _mm256_set1_epi8(LOW_NIBBLE as i8);
    let low = _mm256_and_si256(x, mask);
    let high = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
    _mm256_xor_si256(
        _mm256_shuffle_epi8(tables.0, low),
        _mm256_shuffle_epi8(tables.1, high),
    )
}

/// 2 . x for each byte: double, then reduce bytes whose top bit fell off.
#[inline]
#[target_feature(enable = "avx2")]
fn mul2(x: __m256i) -> __m256i {
    let top_set = _mm256_cmpgt_epi8(_mm256_setzero_si256(), x);
    let reduce = _mm256_and_si256(top_set, _mm256_set1_epi8(POLYNOMIAL_LOW as i8));
    _mm256_xor_si256(_mm256_add_epi8(x, x), reduce)
}

/// XOR of `sources` over `start..end` into `dest`.
///
/// # Safety
/// The CPU supports AVX2; `end <= len` of dest and of every source; `end - start`
/// is a multiple of `V * 32`.
#[target_feature(enable = "avx2")]
unsafe fn xor_range<const V: usize>(sources: &[&[u8]], dest: &mut [u8], start: usize, end: usize) {
    let mut offset = start;
    while offset < end {
        let mut acc = [_mm256_setzero_si256(); V];
        for source in sources {
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: offset + V*32 <= end <= source.len() (caller contract).
                *a = _mm256_xor_si256(*a, unsafe { load(source, offset + i * VECTOR_BYTES) });
            }
        }
        for (i, a) in acc.iter().enumerate() {
            // SAFETY: offset + V*32 <= end <= dest.len() (caller contract).
            unsafe { store(dest, offset + i * VECTOR_BYTES, *a) };
        }
        offset += V * VECTOR_BYTES;
    }
}

/// P and Q of `data` over `start..end`, Horner from the highest slot.
///
/// # Safety
/// The CPU supports AVX2; `data` is not empty; `end <= len` of p, q and every
/// data block; `end - start` is a multiple of `V * 32`.
#[target_feature(enable = "avx2")]
unsafe fn pq_range<const V: usize>(
    data: &[&[u8]],
    p: &mut [u8],
    q: &mut [u8],
    start: usize,
    end: usize,
) {
    let (last, rest) = data
        .split_last()
        .expect("caller passes at least one data block");
    let mut offset = start;
    while offset < end {
        let mut pv = [_mm256_setzero_si256(); V];
        for (i, v) in pv.iter_mut().enumerate() {
            // SAFETY: offset + V*32 <= end <= last.len() (caller contract).
            *v = unsafe { load(last, offset + i * VECTOR_BYTES) };
        }
        let mut qv = pv;
        for block in rest.iter().rev() {
            for (i, (pi, qi)) in pv.iter_mut().zip(qv.iter_mut()).enumerate() {
                // SAFETY: offset + V*32 <= end <= block.len() (caller contract).
                let d = unsafe { load(block, offset + i * VECTOR_BYTES) };
                *pi = _mm256_xor_si256(*pi, d);
                *qi = _mm256_xor_si256(mul2(*qi), d);
            }
        }
        for (i, (pi, qi)) in pv.iter().zip(qv.iter()).enumerate() {
            // SAFETY: offset + V*32 <= end <= p.len() == q.len() (caller contract).
            unsafe {
                store(p, offset + i * VECTOR_BYTES, *pi);
                store(q, offset + i * VECTOR_BYTES, *qi);
            }
        }
        offset += V * VECTOR_BYTES;
    }
}

/// Two-data solve over `start..end` (see [`super::Recov2DataFn`]).
///
/// # Safety
/// The CPU supports AVX2; `end <= len` of all four buffers; `end - start` is a
/// multiple of 32.
#[target_feature(enable = "avx2")]
unsafe fn recov_2data_range(
    dx: &mut [u8],
    dy: &mut [u8],
    p: &[u8],
    q: &[u8],
    coefficients: (u8, u8),
    end: usize,
) {
    let a = nibble_tables(coefficients.0);
    let b = nibble_tables(coefficients.1);
    let mut offset = 0;
    while offset < end {
        // SAFETY: offset + 32 <= end <= every buffer's length (caller contract).
        unsafe {
            let pxy = _mm256_xor_si256(load(p, offset), load(dx, offset));
            let qxy = _mm256_xor_si256(load(q, offset), load(dy, offset));
            let data_x = _mm256_xor_si256(mul_const(pxy, a), mul_const(qxy, b));
            store(dx, offset, data_x);
            store(dy, offset, _mm256_xor_si256(pxy, data_x));
        }
        offset += VECTOR_BYTES;
    }
}

/// Data-plus-P solve over `..end` (see [`super::RecovDataPFn`]).
///
/// # Safety
/// The CPU supports AVX2; `end <= len` of all three buffers; `end` is a
/// multiple of 32.
#[target_feature(enable = "avx2")]
unsafe fn recov_datap_range(dx: &mut [u8], p: &mut [u8], q: &[u8], coefficient: u8, end: usize) {
    let c = nibble_tables(coefficient);
    let mut offset = 0;
    while offset < end {
        // SAFETY: offset + 32 <= end <= every buffer's length (caller contract).
        unsafe {
            let data_x = mul_const(_mm256_xor_si256(load(q, offset), load(dx, offset)), c);
            store(dx, offset, data_x);
            store(p, offset, _mm256_xor_si256(load(p, offset), data_x));
        }
        offset += VECTOR_BYTES;
    }
}

fn xor_gen(sources: &[&[u8]], dest: &mut [u8]) {
    super::check_xor_args(sources, dest);
    let (wide_end, vector_end) = split(dest.len());
    // SAFETY: only reachable through the table `kernels` builds after detecting
    // AVX2; check_xor_args made every source as long as dest, and split returns
    // ends within it at multiples of the stride.
    unsafe {
        xor_range::<WIDE>(sources, dest, 0, wide_end);
        xor_range::<1>(sources, dest, wide_end, vector_end);
    }
    scalar::xor_gen_from(sources, dest, vector_end);
}

fn pq_gen(data: &[&[u8]], p: &mut [u8], q: &mut [u8]) {
    super::check_pq_args(data, p, q);
    let (wide_end, vector_end) = split(p.len());
    // SAFETY: only reachable through the table `kernels` builds after detecting
    // AVX2; check_pq_args made data non-empty and every block as long as P and
    // Q, and split returns ends within them at multiples of the stride.
    unsafe {
        pq_range::<WIDE>(data, p, q, 0, wide_end);
        pq_range::<1>(data, p, q, wide_end, vector_end);
    }
    scalar::pq_gen_from(data, p, q, vector_end);
}

fn recov_2data(dx: &mut [u8], dy: &mut [u8], p: &[u8], q: &[u8], coefficients: (u8, u8)) {
    let len = dx.len();
    assert!(
        dy.len() == len && p.len() == len && q.len() == len,
        "recovery buffers differ"
    );
    let (_, vector_end) = split(len);
    // SAFETY: only reachable through the table `kernels` builds after detecting
    // AVX2; all four buffers are `len` long and vector_end <= len is a multiple of 32.
    unsafe { recov_2data_range(dx, dy, p, q, coefficients, vector_end) };
    scalar::recov_2data_from(dx, dy, p, q, coefficients, vector_end);
}

fn recov_datap(dx: &mut [u8], p: &mut [u8], q: &[u8], coefficient: u8) {
    let len = dx.len();
    assert!(p.len() == len && q.len() == len, "recovery buffers differ");
    let (_, vector_end) = split(len);
    // SAFETY: only reachable through the table `kernels` builds after detecting
    // AVX2; all three buffers are `len` long and vector_end <= len is a multiple of 32.
    unsafe { recov_datap_range(dx, p, q, coefficient, vector_end) };
    scalar::recov_datap_from(dx, p, q, coefficient, vector_end);
}

// The nibble split in mul_const relies on 16-entry tables.
const _: () = assert!(NIBBLE_ENTRIES == 16);
const _: () = assert!(gf256::GENERATOR == 2);

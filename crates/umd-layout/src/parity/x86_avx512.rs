//! AVX-512 (F + BW) parity kernels: 64-byte vectors, four per stride so each
//! pass over the data blocks keeps 256 bytes of P and Q in registers.
//!
//! The same algorithms as `x86_avx2`, one vector twice as wide: Q's multiply by
//! 2 takes the top bits as a mask register (`vpmovb2m`) and XORs 0x1d into
//! those bytes after doubling (formats.md §4.5); recovery multiplies by
//! constants with per-lane `vpshufb` nibble lookups ([`gf256::NIBBLES`]).
//! Lengths that are not a multiple of the stride finish with single vectors,
//! then the scalar code.
//!
//! The safe wrappers at the bottom are reachable only through the table that
//! [`kernels`] builds after `is_x86_feature_detected!` confirmed both AVX-512F
//! and AVX-512BW; that is the whole argument for calling the
//! `#[target_feature]` functions from them.

// The AVX-512 intrinsics are stable since Rust 1.89; the toolchain in use is newer
// than the declared rust-version.
#![allow(clippy::incompatible_msrv)]

use std::arch::x86_64::{
    __m512i, _mm512_add_epi8, _mm512_and_si512, _mm512_broadcast_i32x4, _mm512_loadu_si512,
    _mm512_maskz_mov_epi8, _mm512_movepi8_mask, _mm512_set1_epi8, _mm512_setzero_si512,
    _mm512_shuffle_epi8, _mm512_srli_epi16, _mm512_storeu_si512, _mm512_xor_si512, _mm_loadu_si128,
};

use super::gf256::{self, NIBBLES, NIBBLE_ENTRIES, POLYNOMIAL_LOW};
use super::{scalar, Kernels};

/// Bytes in one AVX-512 vector.
const VECTOR_BYTES: usize = 64;
/// Vectors per stride of the main loops.
const WIDE: usize = 4;
/// Mask selecting the low nibble of each byte for the `vpshufb` lookups.
const LOW_NIBBLE: u8 = 0x0f;

/// The AVX-512 kernel set if this CPU supports AVX-512F and AVX-512BW.
pub(super) fn kernels() -> Option<Kernels> {
    if !is_x86_feature_detected!("avx512f") || !is_x86_feature_detected!("avx512bw") {
        return None;
    }
    Some(Kernels {
        name: "avx512",
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

/// Loads 64 bytes at `src[offset..]`.
///
/// # Safety
/// `offset + 64 <= src.len()` and the CPU supports AVX-512F and AVX-512BW.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn load(src: &[u8], offset: usize) -> __m512i {
    debug_assert!(offset + VECTOR_BYTES <= src.len());
    // SAFETY: the caller guarantees the 64 bytes are inside `src`; loadu has no
    // alignment requirement.
    unsafe { _mm512_loadu_si512(src.as_ptr().add(offset).cast()) }
}

/// Stores 64 bytes at `dst[offset..]`.
///
/// # Safety
/// `offset + 64 <= dst.len()` and the CPU supports AVX-512F and AVX-512BW.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn store(dst: &mut [u8], offset: usize, value: __m512i) {
    debug_assert!(offset + VECTOR_BYTES <= dst.len());
    // SAFETY: the caller guarantees the 64 bytes are inside `dst`, which we
    // borrow mutably; storeu has no alignment requirement.
    unsafe { _mm512_storeu_si512(dst.as_mut_ptr().add(offset).cast(), value) }
}

/// The two nibble tables for multiplying by `c`, each in all four 128-bit lanes
/// (`vpshufb` looks up within a lane).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn nibble_tables(c: u8) -> (__m512i, __m512i) {
    let tables = &NIBBLES[c as usize];
    // SAFETY: `tables` is 32 bytes, so both 16-byte loads are in bounds.
    let (low, high) = unsafe {
        (
            _mm_loadu_si128(tables.as_ptr().cast()),
            _mm_loadu_si128(tables.as_ptr().add(NIBBLE_ENTRIES).cast()),
        )
    };
    (_mm512_broadcast_i32x4(low), _mm512_broadcast_i32x4(high))
}

/// c . x for each byte, with c's nibble tables.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn mul_const(x: __m512i, tables: (__m512i, __m512i)) -> __m512i {
    let mask = _mm512_set1_epi8(LOW_NIBBLE as i8);
    let low = _mm512_and_si512(x, mask);
    let high = _mm512_and_si512(_mm512_srli_epi16(x, 4), mask);
    _mm512_xor_si512(
        _mm512_shuffle_epi8(tables.0, low),
        _mm512_shuffle_epi8(tables.1, high),
    )
}

/// 2 . x for each byte: double, then reduce bytes whose top bit fell off.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn mul2(x: __m512i) -> __m512i {
    let top_set = _mm512_movepi8_mask(x);
    let reduce = _mm512_maskz_mov_epi8(top_set, _mm512_set1_epi8(POLYNOMIAL_LOW as i8));
    _mm512_xor_si512(_mm512_add_epi8(x, x), reduce)
}

/// XOR of `sources` over `start..end` into `dest`.
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512BW; `end <= len` of dest and of every
/// source; `end - start` is a multiple of `V * 64`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn xor_range<const V: usize>(sources: &[&[u8]], dest: &mut [u8], start: usize, end: usize) {
    let mut offset = start;
    while offset < end {
        let mut acc = [_mm512_setzero_si512(); V];
        for source in sources {
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: offset + V*64 <= end <= source.len() (caller contract).
                *a = _mm512_xor_si512(*a, unsafe { load(source, offset + i * VECTOR_BYTES) });
            }
        }
        for (i, a) in acc.iter().enumerate() {
            // SAFETY: offset + V*64 <= end <= dest.len() (caller contract).
            unsafe { store(dest, offset + i * VECTOR_BYTES, *a) };
        }
        offset += V * VECTOR_BYTES;
    }
}

/// P and Q of `data` over `start..end`, Horner from the highest slot.
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512BW; `data` is not empty; `end <= len` of p, q and every
/// data block; `end - start` is a multiple of `V * 64`.
#[target_feature(enable = "avx512f,avx512bw")]
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
        let mut pv = [_mm512_setzero_si512(); V];
        for (i, v) in pv.iter_mut().enumerate() {
            // SAFETY: offset + V*64 <= end <= last.len() (caller contract).
            *v = unsafe { load(last, offset + i * VECTOR_BYTES) };
        }
        let mut qv = pv;
        for block in rest.iter().rev() {
            for (i, (pi, qi)) in pv.iter_mut().zip(qv.iter_mut()).enumerate() {
                // SAFETY: offset + V*64 <= end <= block.len() (caller contract).
                let d = unsafe { load(block, offset + i * VECTOR_BYTES) };
                *pi = _mm512_xor_si512(*pi, d);
                *qi = _mm512_xor_si512(mul2(*qi), d);
            }
        }
        for (i, (pi, qi)) in pv.iter().zip(qv.iter()).enumerate() {
            // SAFETY: offset + V*64 <= end <= p.len() == q.len() (caller contract).
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
/// The CPU supports AVX-512F and AVX-512BW; `end <= len` of all four buffers; `end - start` is a
/// multiple of 64.
#[target_feature(enable = "avx512f,avx512bw")]
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
        // SAFETY: offset + 64 <= end <= every buffer's length (caller contract).
        unsafe {
            let pxy = _mm512_xor_si512(load(p, offset), load(dx, offset));
            let qxy = _mm512_xor_si512(load(q, offset), load(dy, offset));
            let data_x = _mm512_xor_si512(mul_const(pxy, a), mul_const(qxy, b));
            store(dx, offset, data_x);
            store(dy, offset, _mm512_xor_si512(pxy, data_x));
        }
        offset += VECTOR_BYTES;
    }
}

/// Data-plus-P solve over `..end` (see [`super::RecovDataPFn`]).
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512BW; `end <= len` of all three buffers; `end` is a
/// multiple of 64.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn recov_datap_range(dx: &mut [u8], p: &mut [u8], q: &[u8], coefficient: u8, end: usize) {
    let c = nibble_tables(coefficient);
    let mut offset = 0;
    while offset < end {
        // SAFETY: offset + 64 <= end <= every buffer's length (caller contract).
        unsafe {
            let data_x = mul_const(_mm512_xor_si512(load(q, offset), load(dx, offset)), c);
            store(dx, offset, data_x);
            store(p, offset, _mm512_xor_si512(load(p, offset), data_x));
        }
        offset += VECTOR_BYTES;
    }
}

fn xor_gen(sources: &[&[u8]], dest: &mut [u8]) {
    super::check_xor_args(sources, dest);
    let (wide_end, vector_end) = split(dest.len());
    // SAFETY: only reachable through the table `kernels` builds after detecting
    // AVX-512F and AVX-512BW; check_xor_args made every source as long as dest, and split returns
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
    // AVX-512F and AVX-512BW; check_pq_args made data non-empty and every block as long as P and
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
    // AVX-512F and AVX-512BW; all four buffers are `len` long and vector_end <= len is a multiple of 64.
    unsafe { recov_2data_range(dx, dy, p, q, coefficients, vector_end) };
    scalar::recov_2data_from(dx, dy, p, q, coefficients, vector_end);
}

fn recov_datap(dx: &mut [u8], p: &mut [u8], q: &[u8], coefficient: u8) {
    let len = dx.len();
    assert!(p.len() == len && q.len() == len, "recovery buffers differ");
    let (_, vector_end) = split(len);
    // SAFETY: only reachable through the table `kernels` builds after detecting
    // AVX-512F and AVX-512BW; all three buffers are `len` long and vector_end <= len is a multiple of 64.
    unsafe { recov_datap_range(dx, p, q, coefficient, vector_end) };
    scalar::recov_datap_from(dx, p, q, coefficient, vector_end);
}

// The nibble split in mul_const relies on 16-entry tables.
const _: () = assert!(NIBBLE_ENTRIES == 16);
const _: () = assert!(gf256::GENERATOR == 2);

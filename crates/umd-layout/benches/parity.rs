//! Parity kernel throughput against ISA-L on the same buffers, and against the
//! single-core memory read bandwidth of this machine.
//!
//! Needs ISA-L (Debian/Ubuntu `libisal-dev`): the bench links `-lisal` and will
//! not build without it ("unable to find library -lisal"); it never silently
//! skips the comparison. Every kernel's output is checked against ISA-L's
//! before timing, so the bench also confirms both compute md's field (0x11d).
//!
//! Operations: `xor` (raid5 P), `pq` (raid6 P and Q), `recover2` (two lost
//! data blocks of a raid6 stripe; ISA-L does it as `ec_encode_data` with the
//! decoding matrix, its fastest general route). Throughput counts the data
//! bytes of the stripe (members x chunk), as ISA-L's own perf tests do.

// Byte counts here are far below 2^52, so converting them to f64 for GB/s is exact;
// d, x, y, a, b are formats.md §4.5's names in the recovery formulas.
#![allow(clippy::cast_precision_loss, clippy::many_single_char_names)]

use std::ffi::{c_int, c_uchar, c_void};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput};
use umd_layout::parity::{available_kernels, gf256, Kernels};

#[link(name = "isal")]
extern "C" {
    fn xor_gen(vects: c_int, len: c_int, array: *mut *mut c_void) -> c_int;
    fn pq_gen(vects: c_int, len: c_int, array: *mut *mut c_void) -> c_int;
    fn ec_init_tables(k: c_int, rows: c_int, a: *mut c_uchar, gftbls: *mut c_uchar);
    fn ec_encode_data(
        len: c_int,
        k: c_int,
        rows: c_int,
        gftbls: *mut c_uchar,
        data: *mut *mut c_uchar,
        coding: *mut *mut c_uchar,
    );
}

/// Data members per stripe to measure.
const MEMBERS: [usize; 3] = [4, 8, 14];
/// Chunk sizes: one that stays in cache and one that does not.
const CHUNKS: [(usize, &str); 2] = [(64 * 1024, "64KiB"), (4 * 1024 * 1024, "4MiB")];
/// ISA-L wants 32-byte aligned vectors; 64 keeps AVX-512 loads in one line too.
const ALIGN: usize = 64;
/// Bytes of an ISA-L `ec_init_tables` entry per (row, source) pair.
const EC_TABLE_BYTES: usize = 32;
/// Buffer for the memory bandwidth reference: well beyond the 32 MiB L3.
const MEMORY_BUFFER_BYTES: usize = 512 * 1024 * 1024;
/// Wall time the summary spends timing each entry.
const SUMMARY_TIME: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Xor,
    Pq,
    Recover2,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Xor => "xor",
            Op::Pq => "pq",
            Op::Recover2 => "recover2",
        }
    }
}

/// A 64-byte aligned, randomly filled block.
struct Block {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new(len: usize, seed: u64) -> Self {
        let mut storage = vec![0u8; len + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN);
        let mut state = seed | 1;
        for byte in &mut storage[start..start + len] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = (state >> 24) as u8;
        }
        Self {
            storage,
            start,
            len,
        }
    }
    fn get(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Data blocks, then P, then Q, plus ISA-L's decoding tables for recover2.
struct Stripe {
    blocks: Vec<Block>,
    members: usize,
    len: usize,
    ec_tables: Vec<u8>,
}

/// Lost data slots for recover2: the first two, so every Q coefficient is used.
const LOST: [usize; 2] = [0, 1];

impl Stripe {
    fn new(members: usize, len: usize) -> Self {
        let mut blocks: Vec<Block> = (0..members + 2)
            .map(|i| Block::new(len, i as u64 + 1))
            .collect();
        {
            let (data, parity) = blocks.split_at_mut(members);
            let sources: Vec<&[u8]> = data.iter().map(Block::get).collect();
            let (p, q) = parity.split_at_mut(1);
            umd_layout::parity::scalar::pq_gen(&sources, p[0].get_mut(), q[0].get_mut());
        }
        let ec_tables = decode_tables(members);
        Self {
            blocks,
            members,
            len,
            ec_tables,
        }
    }

    fn pointers(&mut self, count: usize) -> Vec<*mut c_void> {
        self.blocks[..count]
            .iter_mut()
            .map(|b| b.get_mut().as_mut_ptr().cast())
            .collect()
    }

    fn umd(&mut self, kernels: &Kernels, op: Op) {
        let d = self.members;
        match op {
            Op::Xor | Op::Pq => {
                let (data, parity) = self.blocks.split_at_mut(d);
                let sources: Vec<&[u8]> = data.iter().map(Block::get).collect();
                let (p, q) = parity.split_at_mut(1);
                if op == Op::Xor {
                    kernels.xor_gen(&sources, p[0].get_mut());
                } else {
                    kernels.pq_gen(&sources, p[0].get_mut(), q[0].get_mut());
                }
            }
            Op::Recover2 => {
                let mut blocks: Vec<&mut [u8]> =
                    self.blocks.iter_mut().map(Block::get_mut).collect();
                kernels.raid6_recover(&mut blocks, &LOST);
            }
        }
    }

    fn isal(&mut self, op: Op) {
        let d = self.members;
        let len = c_int::try_from(self.len).expect("bench chunks fit in an int");
        match op {
            Op::Xor => {
                let mut array = self.pointers(d + 1);
                let vects = c_int::try_from(array.len()).expect("few members");
                // SAFETY: d sources then the destination, each `len` bytes, 64-byte
                // aligned and alive for the call; len is a multiple of 32.
                let rc = unsafe { xor_gen(vects, len, array.as_mut_ptr()) };
                assert_eq!(rc, 0, "ISA-L xor_gen failed");
            }
            Op::Pq => {
                let mut array = self.pointers(d + 2);
                let vects = c_int::try_from(array.len()).expect("few members");
                // SAFETY: d sources then P and Q, each `len` bytes, 64-byte aligned
                // and alive for the call; len is a multiple of 32.
                let rc = unsafe { pq_gen(vects, len, array.as_mut_ptr()) };
                assert_eq!(rc, 0, "ISA-L pq_gen failed");
            }
            Op::Recover2 => {
                let mut all = self.pointers(d + 2);
                let mut coding: Vec<*mut c_uchar> = LOST.iter().map(|&i| all[i].cast()).collect();
                let mut sources: Vec<*mut c_uchar> = (0..d + 2)
                    .filter(|i| !LOST.contains(i))
                    .map(|i| all[i].cast())
                    .collect();
                all.clear();
                let k = c_int::try_from(sources.len()).expect("few members");
                // SAFETY: k source and 2 output pointers to distinct `len`-byte
                // buffers alive for the call; ec_tables holds 32 * k * 2 bytes from
                // ec_init_tables for exactly this k and row count.
                unsafe {
                    ec_encode_data(
                        len,
                        k,
                        2,
                        self.ec_tables.as_mut_ptr(),
                        sources.as_mut_ptr(),
                        coding.as_mut_ptr(),
                    );
                }
            }
        }
    }

    /// The outputs the operation writes.
    fn outputs(&self, op: Op) -> Vec<Vec<u8>> {
        let d = self.members;
        let indices: Vec<usize> = match op {
            Op::Xor => vec![d],
            Op::Pq => vec![d, d + 1],
            Op::Recover2 => LOST.to_vec(),
        };
        indices
            .iter()
            .map(|&i| self.blocks[i].get().to_vec())
            .collect()
    }
}

/// ISA-L tables recovering data slots 0 and 1 from the survivors (slots 2..d,
/// P, Q): with Pxy = P xor sum D_s and Qxy = Q xor sum g^s D_s (formats.md
/// §4.5), D0 = A.Pxy xor B.Qxy and D1 = Pxy xor D0, expanded per survivor.
fn decode_tables(d: usize) -> Vec<u8> {
    let [x, y] = LOST;
    let gyx = gf256::exp(y - x);
    let a = gf256::div(gyx, gyx ^ 1);
    let b = gf256::div(gf256::inv(gf256::exp(x)), gyx ^ 1);
    let mut row_x = Vec::new();
    let mut row_y = Vec::new();
    for s in (0..d).filter(|s| !LOST.contains(s)) {
        let coefficient = a ^ gf256::mul(b, gf256::exp(s));
        row_x.push(coefficient);
        row_y.push(1 ^ coefficient);
    }
    row_x.extend([a, b]);
    row_y.extend([1 ^ a, b]);
    let k = row_x.len();
    let mut matrix: Vec<u8> = row_x.into_iter().chain(row_y).collect();
    let mut tables = vec![0u8; EC_TABLE_BYTES * k * 2];
    let k_int = c_int::try_from(k).expect("few members");
    // SAFETY: matrix holds rows * k = 2k coefficients and tables the 32 * k * rows
    // bytes ec_init_tables writes.
    unsafe { ec_init_tables(k_int, 2, matrix.as_mut_ptr(), tables.as_mut_ptr()) };
    tables
}

/// Seconds per call: the median of calls made during [`SUMMARY_TIME`].
fn time_per_call(mut f: impl FnMut()) -> f64 {
    f();
    let mut samples = Vec::new();
    let begin = Instant::now();
    while begin.elapsed() < SUMMARY_TIME || samples.len() < 3 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Single-core read bandwidth in GB/s: summing u64 words of a buffer far larger than L3.
fn memory_read_gbps() -> f64 {
    let words: Vec<u64> = (0..MEMORY_BUFFER_BYTES as u64 / 8).collect();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut lanes = [0u64; 8];
        for chunk in words.chunks_exact(8) {
            for (lane, w) in lanes.iter_mut().zip(chunk) {
                *lane = lane.wrapping_add(*w);
            }
        }
        black_box(lanes);
        best = best.min(t.elapsed().as_secs_f64());
    }
    MEMORY_BUFFER_BYTES as f64 / best / 1e9
}

fn bench_group(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    stripe: &mut Stripe,
    op: Op,
    all: &[Kernels],
) {
    for kernels in all {
        group.bench_function(format!("umd-{}", kernels.name()), |b| {
            b.iter(|| stripe.umd(kernels, op));
        });
    }
    group.bench_function("isa-l", |b| b.iter(|| stripe.isal(op)));
}

/// Every kernel must produce ISA-L's bytes before its speed means anything.
fn cross_check(stripe: &mut Stripe, op: Op, all: &[Kernels]) {
    stripe.isal(op);
    let want = stripe.outputs(op);
    for kernels in all {
        stripe.umd(kernels, op);
        assert!(
            stripe.outputs(op) == want,
            "umd {} {} disagrees with ISA-L ({} members)",
            kernels.name(),
            op.name(),
            stripe.members
        );
    }
}

fn main() {
    let all = available_kernels();
    let mut criterion = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10)
        .configure_from_args();
    let mut rows = Vec::new();
    for &(chunk, chunk_name) in &CHUNKS {
        for members in MEMBERS {
            let mut stripe = Stripe::new(members, chunk);
            for op in [Op::Xor, Op::Pq, Op::Recover2] {
                cross_check(&mut stripe, op, &all);
                let mut group =
                    criterion.benchmark_group(format!("{}/{members}x{chunk_name}", op.name()));
                group.throughput(Throughput::Bytes((members * chunk) as u64));
                bench_group(&mut group, &mut stripe, op, &all);
                group.finish();
                let bytes = (members * chunk) as f64;
                let isal = bytes / time_per_call(|| stripe.isal(op)) / 1e9;
                for kernels in &all {
                    let umd = bytes / time_per_call(|| stripe.umd(kernels, op)) / 1e9;
                    rows.push((op.name(), kernels.name(), members, chunk_name, umd, isal));
                }
            }
        }
    }
    let memory = memory_read_gbps();
    println!("\nsingle-core memory read bandwidth: {memory:.2} GB/s");
    println!(
        "{:<9} {:<7} {:>3} {:>6} {:>9} {:>9} {:>8} {:>8}",
        "op", "kernel", "d", "chunk", "umd GB/s", "isal GB/s", "umd/isal", "umd/mem"
    );
    for (op, kernel, members, chunk_name, umd, isal) in rows {
        let vs_memory = if chunk_name == "4MiB" {
            format!("{:.2}", umd / memory)
        } else {
            "-".into()
        };
        println!(
            "{op:<9} {kernel:<7} {members:>3} {chunk_name:>6} {umd:>9.2} {isal:>9.2} {:>8.2} {vs_memory:>8}",
            umd / isal
        );
    }
    criterion.final_summary();
}

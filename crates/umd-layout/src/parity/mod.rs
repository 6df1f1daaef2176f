//! RAID parity: XOR (raid4/5 P) and RAID6 P/Q in md's GF(2^8), and rebuilding
//! up to two lost blocks of a stripe (formats.md §4.4-4.5).
//!
//! Every operation has a plain-Rust reference in [`scalar`], which is the
//! specification. Faster per-ISA kernels (`x86_avx2`, `x86_avx512`) compute the
//! same bytes; one set is chosen once, at first use, into a table of function
//! pointers ([`Kernels`]) so no call pays for feature detection (style R14).
//! `UMD_PARITY=scalar` forces the reference; `UMD_PARITY=<name>` forces any
//! other kernel this CPU supports; an unknown or unsupported name falls back
//! to the best kernel available.
//!
//! GFNI is deliberately not used: `gf2p8mulb` multiplies in the AES field
//! (polynomial 0x11b), not md's 0x11d, so it would give wrong Q bytes. md's
//! field could be reached through `gf2p8affineqb` with one 8x8 bit matrix per
//! constant, but the Q generation only ever multiplies by 2 (three cheap
//! instructions) and recovery is bounded by memory bandwidth already with
//! `vpshufb` nibble tables, so the extra kernel would buy little.
//!
//! Buffers are caller-owned slices of any length and alignment; kernels run
//! full vector strides and finish the tail with the scalar code. Nothing here
//! allocates: recovery walks the stripe in [`RECOVERY_CHUNK_BYTES`] pieces,
//! using a static zero block for lost data.

// d, p, q, x, y are formats.md §4.5's names for the stripe; longer ones would
// hide the correspondence with the recovery formulas.
#![allow(clippy::many_single_char_names)]

pub mod gf256;
mod recover;
pub mod scalar;
pub mod syndrome;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;
#[cfg(target_arch = "x86_64")]
mod x86_avx512;

use std::sync::OnceLock;

/// Most data blocks a RAID6 stripe can have: Q's coefficients g^z repeat after
/// 255 slots (g^255 = 1, formats.md §4.5), so beyond that two lost data blocks
/// can no longer be told apart.
pub const MAX_DATA_BLOCKS: usize = gf256::GROUP_ORDER;

/// Most blocks any stripe passed to recovery may have: the data plus P and Q.
pub const MAX_STRIPE_BLOCKS: usize = MAX_DATA_BLOCKS + 2;

/// Bytes of a stripe rebuilt per pass: small enough that the syndromes written
/// in the first pass are still in L1/L2 for the solving pass, large enough to
/// amortise rebuilding the per-pass table of block slices.
pub const RECOVERY_CHUNK_BYTES: usize = 16 * 1024;

/// Environment variable naming the kernel to use instead of the best detected.
pub const KERNEL_ENV: &str = "UMD_PARITY";

/// Name of the scalar reference kernel.
pub const SCALAR_NAME: &str = "scalar";

/// dest = XOR of sources, all the same length as dest.
pub type XorGenFn = fn(&[&[u8]], &mut [u8]);
/// (data, p, q): P and Q of data in Q slot order.
pub type PqGenFn = fn(&[&[u8]], &mut [u8], &mut [u8]);
/// (dx, dy, p, q, (a, b)): dx, dy hold P' and Q' of the survivors on entry and
/// the two lost data blocks on exit (formats.md §4.5 two-data recovery).
pub type Recov2DataFn = fn(&mut [u8], &mut [u8], &[u8], &[u8], (u8, u8));
/// (dx, p, q, g^-x): dx holds Q' and p holds P' of the survivors on entry; on
/// exit dx = (Q xor Q') . g^-x and p = P' xor dx.
pub type RecovDataPFn = fn(&mut [u8], &mut [u8], &[u8], u8);

/// One complete set of parity kernels for one instruction set.
///
/// Built only by this module after the CPU was checked to support the set, so
/// every function pointer in it is safe to call.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    name: &'static str,
    xor_gen: XorGenFn,
    pq_gen: PqGenFn,
    recov_2data: Recov2DataFn,
    recov_datap: RecovDataPFn,
}

impl Kernels {
    /// The scalar reference as a kernel set.
    #[must_use]
    pub fn scalar() -> Self {
        Self {
            name: SCALAR_NAME,
            xor_gen: |sources, dest| scalar::xor_gen_from(sources, dest, 0),
            pq_gen: |data, p, q| scalar::pq_gen_from(data, p, q, 0),
            recov_2data: |dx, dy, p, q, ab| scalar::recov_2data_from(dx, dy, p, q, ab, 0),
            recov_datap: |dx, p, q, c| scalar::recov_datap_from(dx, p, q, c, 0),
        }
    }

    /// Name of the instruction set ("avx512", "avx2", "scalar").
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// dest = XOR of all sources (equal lengths, at least one source).
    pub fn xor_gen(&self, sources: &[&[u8]], dest: &mut [u8]) {
        check_xor_args(sources, dest);
        (self.xor_gen)(sources, dest);
    }

    /// p = XOR of data; q = sum over slots z of g^z . data[z].
    pub fn pq_gen(&self, data: &[&[u8]], p: &mut [u8], q: &mut [u8]) {
        check_pq_args(data, p, q);
        (self.pq_gen)(data, p, q);
    }
}

/// The kernel set every public function uses, chosen on first use.
fn kernels() -> &'static Kernels {
    static CHOSEN: OnceLock<Kernels> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        let available = available_kernels();
        let wanted = std::env::var(KERNEL_ENV).ok();
        let forced = wanted.and_then(|name| available.iter().find(|k| k.name == name).copied());
        // available_kernels lists the best first and always ends with scalar.
        forced.unwrap_or(available[0])
    })
}

/// Every kernel set this CPU can run, best first, the scalar reference last.
/// For tests and benchmarks; production code uses the free functions.
#[doc(hidden)]
#[must_use]
pub fn available_kernels() -> Vec<Kernels> {
    let mut sets = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        sets.extend(x86_avx512::kernels());
        sets.extend(x86_avx2::kernels());
    }
    sets.push(Kernels::scalar());
    sets
}

/// dest = XOR of all sources (equal lengths, at least one source).
pub fn xor_gen(sources: &[&[u8]], dest: &mut [u8]) {
    kernels().xor_gen(sources, dest);
}

/// p = XOR of data, q = sum g^z . data[z]; data is in Q slot order (slot z has
/// coefficient g^z, formats.md §4.5).
pub fn pq_gen(data: &[&[u8]], p: &mut [u8], q: &mut [u8]) {
    kernels().pq_gen(data, p, q);
}

/// Rebuild one lost block of a raid4/5 stripe: blocks = data blocks then P (any
/// order works for XOR); `blocks[missing]` is overwritten.
pub fn raid5_recover(blocks: &mut [&mut [u8]], missing: usize) {
    kernels().raid5_recover(blocks, missing);
}

/// Rebuild up to two lost blocks of a raid6 stripe: blocks = d data blocks in Q
/// slot order, then P, then Q (len d + 2). `missing` has 1 or 2 sorted distinct
/// indices; those blocks are overwritten, the others are only read.
pub fn raid6_recover(blocks: &mut [&mut [u8]], missing: &[usize]) {
    kernels().raid6_recover(blocks, missing);
}

/// Name of the kernel chosen at startup ("avx512", "avx2", "scalar").
#[must_use]
pub fn kernel_name() -> &'static str {
    kernels().name
}

/// Which blocks of a raid6 stripe are lost, by role; data slots are indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loss {
    Data(usize),
    P,
    Q,
    PQ,
    DataP(usize),
    DataQ(usize),
    DataData(usize, usize),
}

pub(crate) fn check_xor_args(sources: &[&[u8]], dest: &[u8]) {
    assert!(!sources.is_empty(), "xor_gen needs at least one source");
    assert!(
        sources.iter().all(|s| s.len() == dest.len()),
        "xor_gen sources must all be as long as dest ({} bytes)",
        dest.len()
    );
}

pub(crate) fn check_pq_args(data: &[&[u8]], p: &[u8], q: &[u8]) {
    assert!(!data.is_empty(), "pq_gen needs at least one data block");
    assert!(
        data.len() <= MAX_DATA_BLOCKS,
        "pq_gen: {} data blocks",
        data.len()
    );
    assert_eq!(p.len(), q.len(), "P and Q must be the same length");
    assert!(
        data.iter().all(|s| s.len() == p.len()),
        "pq_gen data blocks must all be as long as P ({} bytes)",
        p.len()
    );
}

/// Validates a raid4/5 stripe; returns the block length.
pub(crate) fn check_raid5_args(blocks: &[&mut [u8]], missing: usize) -> usize {
    assert!(
        blocks.len() >= 2,
        "a raid4/5 stripe has at least one data block and P"
    );
    assert!(
        blocks.len() <= MAX_STRIPE_BLOCKS,
        "raid5: {} blocks",
        blocks.len()
    );
    assert!(
        missing < blocks.len(),
        "missing block {missing} is not in the stripe"
    );
    let len = blocks[0].len();
    assert!(
        blocks.iter().all(|b| b.len() == len),
        "stripe blocks differ in length"
    );
    len
}

/// Validates a raid6 stripe; returns (data blocks, block length, what is lost).
pub(crate) fn check_raid6_args(blocks: &[&mut [u8]], missing: &[usize]) -> (usize, usize, Loss) {
    assert!(
        blocks.len() >= 3,
        "a raid6 stripe has at least one data block, P and Q"
    );
    let d = blocks.len() - 2;
    assert!(d <= MAX_DATA_BLOCKS, "raid6: {d} data blocks");
    let len = blocks[0].len();
    assert!(
        blocks.iter().all(|b| b.len() == len),
        "stripe blocks differ in length"
    );
    let (p, q) = (d, d + 1);
    let loss = match *missing {
        [x] if x < d => Loss::Data(x),
        [x] if x == p => Loss::P,
        [x] if x == q => Loss::Q,
        [x, y] if x < y && y < d => Loss::DataData(x, y),
        [x, y] if x < d && y == p => Loss::DataP(x),
        [x, y] if x < d && y == q => Loss::DataQ(x),
        [x, y] if x == p && y == q => Loss::PQ,
        _ => panic!(
            "raid6 missing {missing:?}: want 1 or 2 sorted distinct indices < {}",
            d + 2
        ),
    };
    (d, len, loss)
}

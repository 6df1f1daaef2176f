//! Rebuilding lost blocks of a raid4/5/6 stripe from a [`Kernels`] set.
//!
//! Recovery is built from the generation kernels plus two small solving
//! kernels, as md's lib/raid6 does: the lost blocks' own buffers receive the
//! syndromes of the survivors (lost data counted as a static zero block), then
//! the solving kernel turns them into the lost bytes in place (formats.md §4.5).
//! The raid6 stripe is walked in [`RECOVERY_CHUNK_BYTES`] pieces so those
//! syndromes are still in cache when solved and so the only extra memory is a
//! table of slices and, when Q must be regenerated, one chunk of scratch for
//! the P the generation kernel also writes; both on the stack.

use std::ops::Range;

use super::gf256;
use super::scalar::two_data_coefficients;
use super::{check_raid5_args, check_raid6_args, Kernels, Loss};
use super::{MAX_STRIPE_BLOCKS, RECOVERY_CHUNK_BYTES};

/// Stands in for lost data blocks while the survivors' syndromes are computed.
static ZERO_CHUNK: [u8; RECOVERY_CHUNK_BYTES] = [0; RECOVERY_CHUNK_BYTES];

impl Kernels {
    /// Rebuild `blocks[missing]` of a raid4/5 stripe as the XOR of the others.
    pub fn raid5_recover(&self, blocks: &mut [&mut [u8]], missing: usize) {
        check_raid5_args(blocks, missing);
        let survivors = blocks.len() - 1;
        let (before, rest) = blocks.split_at_mut(missing);
        let (target, after) = rest
            .split_first_mut()
            .expect("check_raid5_args: missing < len");
        let mut sources: [&[u8]; MAX_STRIPE_BLOCKS] = [&[]; MAX_STRIPE_BLOCKS];
        for (slot, block) in sources.iter_mut().zip(before.iter().chain(after.iter())) {
            *slot = block;
        }
        self.xor_gen(&sources[..survivors], target);
    }

    /// Rebuild the 1 or 2 blocks in `missing` (sorted) of a raid6 stripe laid out
    /// as d data blocks in Q slot order, then P, then Q.
    pub fn raid6_recover(&self, blocks: &mut [&mut [u8]], missing: &[usize]) {
        let (d, len, loss) = check_raid6_args(blocks, missing);
        let mut start = 0;
        while start < len {
            let end = len.min(start + RECOVERY_CHUNK_BYTES);
            self.raid6_recover_chunk(blocks, d, loss, start..end);
            start = end;
        }
    }

    fn raid6_recover_chunk(
        &self,
        blocks: &mut [&mut [u8]],
        d: usize,
        loss: Loss,
        range: Range<usize>,
    ) {
        let chunk_len = range.len();
        assert!(
            chunk_len <= RECOVERY_CHUNK_BYTES,
            "chunk of {chunk_len} bytes"
        );
        // Survivors by index; lost entries stay empty until replaced below.
        let mut sources: [&[u8]; MAX_STRIPE_BLOCKS] = [&[]; MAX_STRIPE_BLOCKS];
        let mut lost: [&mut [u8]; 2] = [&mut [], &mut []];
        let mut lost_count = 0;
        for (index, block) in blocks.iter_mut().enumerate() {
            let piece = &mut block[range.clone()];
            if is_lost(loss, d, index) {
                lost[lost_count] = piece;
                lost_count += 1;
            } else {
                sources[index] = piece;
            }
        }
        let zero = &ZERO_CHUNK[..chunk_len];
        let [first, second] = lost;
        let (p, q) = (d, d + 1);
        match loss {
            Loss::Data(x) => {
                // Dx = P xor the other data: P takes x's place among the sources.
                sources[x] = sources[p];
                (self.xor_gen)(&sources[..d], first);
            }
            Loss::P => (self.xor_gen)(&sources[..d], first),
            Loss::Q => {
                let mut scratch_p = [0u8; RECOVERY_CHUNK_BYTES];
                (self.pq_gen)(&sources[..d], &mut scratch_p[..chunk_len], first);
            }
            Loss::PQ => (self.pq_gen)(&sources[..d], first, second),
            Loss::DataQ(x) => {
                sources[x] = sources[p];
                (self.xor_gen)(&sources[..d], first);
                sources[x] = first;
                let mut scratch_p = [0u8; RECOVERY_CHUNK_BYTES];
                (self.pq_gen)(&sources[..d], &mut scratch_p[..chunk_len], second);
            }
            Loss::DataP(x) => {
                sources[x] = zero;
                // P' lands in P's buffer, Q' in Dx's buffer.
                (self.pq_gen)(&sources[..d], second, first);
                let g_minus_x = gf256::inv(gf256::exp(x));
                (self.recov_datap)(first, second, sources[q], g_minus_x);
            }
            Loss::DataData(x, y) => {
                sources[x] = zero;
                sources[y] = zero;
                (self.pq_gen)(&sources[..d], first, second);
                let coefficients = two_data_coefficients(x, y);
                (self.recov_2data)(first, second, sources[p], sources[q], coefficients);
            }
        }
    }
}

/// Whether stripe block `index` is among the lost ones.
fn is_lost(loss: Loss, d: usize, index: usize) -> bool {
    let (p, q) = (d, d + 1);
    match loss {
        Loss::Data(x) => index == x,
        Loss::P => index == p,
        Loss::Q => index == q,
        Loss::PQ => index == p || index == q,
        Loss::DataP(x) => index == x || index == p,
        Loss::DataQ(x) => index == x || index == q,
        Loss::DataData(x, y) => index == x || index == y,
    }
}

//! The parity maths of one planned raid4/5/6 stripe, run after the plan's
//! reads landed in scratch and before its writes go out.
//!
//! Why a file of its own: the planner (`write.rs`) decides which blocks to
//! read and write; this file only computes bytes, and is where the copies and
//! passes over memory that a write costs are decided. Full data chunks are
//! read straight from the caller's payload (no copy into scratch), so a
//! full-stripe write reads each data byte once and writes only parity.

use super::{ChunkOp, Compute, StripeOp, SECTOR_BYTES};
use umd_layout::parity::{self, MAX_STRIPE_BLOCKS};

/// Run one stripe's maths in its scratch blocks.
pub(super) fn compute_stripe(op: &StripeOp, chunks: &[ChunkOp], data: &[u8], scratch: &mut [u8]) {
    let w = op.window_sectors as usize * SECTOR_BYTES;
    let extra = if op.compute == Compute::Delta && op.parity == 2 {
        2
    } else {
        0
    };
    let blocks = match op.compute {
        Compute::None => return,
        _ => op.slots + op.parity + extra,
    };
    let region = &mut scratch[op.scratch_at..][..blocks * w];
    for &z in &op.zero_slots[..op.zero_count] {
        region[z * w..][..w].fill(0);
    }
    match op.compute {
        Compute::None => {}
        Compute::Generate if op.slots <= MAX_STRIPE_BLOCKS => {
            generate_from_payload(region, w, op, chunks, data);
        }
        Compute::Generate => {
            overlay(region, w, chunks, data);
            gen_parity(region, w, op.slots, op.parity);
        }
        Compute::Rebuild => {
            recover(
                region,
                w,
                op.slots,
                op.parity,
                &op.missing[..op.missing_count],
            );
            overlay(region, w, chunks, data);
            gen_parity(region, w, op.slots, op.parity);
        }
        Compute::Delta => apply_delta(region, w, op, chunks, data),
    }
}

/// Generate parity with every fully written chunk read in place from the
/// payload: only partly written chunks get their new bytes copied over the old
/// ones read into scratch. One pass over the data, none over scratch copies.
fn generate_from_payload(
    region: &mut [u8],
    w: usize,
    op: &StripeOp,
    chunks: &[ChunkOp],
    data: &[u8],
) {
    let full = |c: &ChunkOp| c.new_lo == 0 && c.new_hi as usize * SECTOR_BYTES == w;
    let (blocks, parity_blocks) = region.split_at_mut(op.slots * w);
    for c in chunks.iter().filter(|c| c.new_hi > c.new_lo && !full(c)) {
        let (lo, hi) = (
            c.new_lo as usize * SECTOR_BYTES,
            c.new_hi as usize * SECTOR_BYTES,
        );
        blocks[c.slot * w + lo..c.slot * w + hi].copy_from_slice(&data[c.data_at..][..hi - lo]);
    }
    let mut refs: [&[u8]; MAX_STRIPE_BLOCKS] = [&[]; MAX_STRIPE_BLOCKS];
    for (r, block) in refs.iter_mut().zip(blocks.chunks_exact(w)) {
        *r = block;
    }
    for c in chunks.iter().filter(|c| full(c)) {
        refs[c.slot] = &data[c.data_at..][..w];
    }
    let sources = &refs[..op.slots];
    assert!(
        sources.iter().all(|s| s.len() == w),
        "every slot has a source block"
    );
    let (p, rest) = parity_blocks.split_at_mut(w);
    if op.parity == 2 {
        parity::pq_gen(sources, p, &mut rest[..w]);
    } else {
        assert_eq!(op.parity, 1, "raid4/5 has one parity block");
        parity::xor_gen(sources, p);
    }
}

/// Copy each chunk's new data into its block.
fn overlay(region: &mut [u8], w: usize, chunks: &[ChunkOp], data: &[u8]) {
    for c in chunks.iter().filter(|c| c.new_hi > c.new_lo) {
        let (lo, hi) = (
            c.new_lo as usize * SECTOR_BYTES,
            c.new_hi as usize * SECTOR_BYTES,
        );
        region[c.slot * w + lo..c.slot * w + hi].copy_from_slice(&data[c.data_at..][..hi - lo]);
    }
}

/// rmw: fold old ^ new of every written chunk into P (and, through g^slot, Q).
fn apply_delta(region: &mut [u8], w: usize, op: &StripeOp, chunks: &[ChunkOp], data: &[u8]) {
    let (blocks, parity) = region.split_at_mut(op.slots * w);
    if op.parity == 1 {
        for c in chunks.iter().filter(|c| c.new_hi > c.new_lo) {
            let (lo, hi) = (
                c.new_lo as usize * SECTOR_BYTES,
                c.new_hi as usize * SECTOR_BYTES,
            );
            xor_into(
                &mut parity[lo..hi],
                &blocks[c.slot * w + lo..c.slot * w + hi],
            );
            xor_into(&mut parity[lo..hi], &data[c.data_at..][..hi - lo]);
        }
        return;
    }
    for c in chunks {
        let block = &mut blocks[c.slot * w..][..w];
        let (lo, hi) = (
            c.new_lo as usize * SECTOR_BYTES,
            c.new_hi as usize * SECTOR_BYTES,
        );
        if hi > lo {
            xor_into(&mut block[lo..hi], &data[c.data_at..][..hi - lo]);
            block[..lo].fill(0);
            block[hi..].fill(0);
        } else {
            block.fill(0);
        }
    }
    let (pq, deltas) = parity.split_at_mut(2 * w);
    let (dp, dq) = deltas.split_at_mut(w);
    pq_gen_blocks(blocks, w, op.slots, dp, dq);
    xor_into(&mut pq[..w], dp);
    xor_into(&mut pq[w..], dq);
}

/// dest ^= src, byte by byte (equal lengths).
pub(crate) fn xor_into(dest: &mut [u8], src: &[u8]) {
    assert_eq!(dest.len(), src.len(), "xor of unequal blocks");
    for (d, s) in dest.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// pq_gen over the first `slots` blocks of `blocks`.
fn pq_gen_blocks(blocks: &[u8], w: usize, slots: usize, p: &mut [u8], q: &mut [u8]) {
    assert!(
        slots <= parity::MAX_DATA_BLOCKS,
        "raid6 with {slots} Q slots"
    );
    let mut refs: [&[u8]; MAX_STRIPE_BLOCKS] = [&[]; MAX_STRIPE_BLOCKS];
    for (r, block) in refs.iter_mut().zip(blocks.chunks_exact(w).take(slots)) {
        *r = block;
    }
    parity::pq_gen(&refs[..slots], p, q);
}

/// Regenerate parity blocks `slots..slots + parity` from the data slots.
pub(crate) fn gen_parity(region: &mut [u8], w: usize, slots: usize, parity: usize) {
    let (blocks, rest) = region.split_at_mut(slots * w);
    let (p, rest) = rest.split_at_mut(w);
    if parity == 2 {
        pq_gen_blocks(blocks, w, slots, p, &mut rest[..w]);
    } else {
        // No fixed-size table of sources: raid4/5 may have up to 1919 data roles.
        p.copy_from_slice(&blocks[..w]);
        for block in blocks.chunks_exact(w).skip(1) {
            xor_into(p, block);
        }
    }
}

/// Rebuild the `missing` blocks (sorted block indices) from the others.
pub(crate) fn recover(region: &mut [u8], w: usize, slots: usize, parity: usize, missing: &[usize]) {
    assert!(
        !missing.is_empty() && missing.len() <= parity,
        "1..=parity lost blocks"
    );
    let count = slots + parity;
    if parity == 1 {
        let m = missing[0];
        let (before, rest) = region.split_at_mut(m * w);
        let (target, after) = rest.split_at_mut(w);
        target.fill(0);
        for block in before
            .chunks_exact(w)
            .chain(after[..(count - m - 1) * w].chunks_exact(w))
        {
            xor_into(target, block);
        }
        return;
    }
    assert!(count <= MAX_STRIPE_BLOCKS, "raid6 with {count} blocks");
    let mut refs: [&mut [u8]; MAX_STRIPE_BLOCKS] = std::array::from_fn(|_| <&mut [u8]>::default());
    for (r, block) in refs.iter_mut().zip(region.chunks_exact_mut(w).take(count)) {
        *r = block;
    }
    parity::raid6_recover(&mut refs[..count], missing);
}

//! Locating the one wrong block of a RAID6 stripe from its two syndromes.
//!
//! md's `check` only says that P or Q disagree with the data; its `repair`
//! then rewrites P and Q, which makes a silently corrupted data block
//! permanent. With two independent syndromes one wrong block can be found
//! (the maths mdadm's offline `raid6check` uses): let `dp = P xor P'` and
//! `dq = Q xor Q'`, where P' and Q' are recomputed from the data as read.
//!
//! - `dp = 0, dq = 0`: consistent.
//! - `dp != 0, dq = 0`: only P is wrong (a wrong data block would change Q).
//! - `dp = 0, dq != 0`: only Q is wrong.
//! - both non-zero: if data slot z alone holds an error `e`, then `dp = e`
//!   and `dq = g^z . e` byte for byte, so `log dq - log dp = z (mod 255)` on
//!   every byte where `e != 0`, and `dp` and `dq` are zero on the same bytes.
//!   Anything else (two wrong blocks, almost always) is unexplained.
//!
//! Two wrong blocks can imitate one only when every differing byte happens
//! to give the same z, which for independent errors has probability about
//! `(1/255)^bytes`: a block with one differing byte is always "explained"
//! by some slot, which is why callers must check that the slot is a data
//! slot of the stripe and why the decision is only as good as the number of
//! differing bytes. Pure byte maths over caller-owned slices; nothing here
//! allocates.

use super::gf256::{GROUP_ORDER, LOG};

/// Which block of a RAID6 stripe the syndromes point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syndrome {
    /// P and Q agree with the data.
    Consistent,
    /// Only P differs: P is wrong.
    P,
    /// Only Q differs: Q is wrong.
    Q,
    /// One data block is wrong: the one in this Q slot (0-based, formats.md
    /// §4.5 order); its right bytes are the read bytes XOR the P delta.
    Data(usize),
    /// No single wrong block explains the syndromes.
    Unexplained,
}

/// Classify a stripe from its P delta (`P xor P'`) and Q delta (`Q xor Q'`),
/// equal lengths. `Data(z)` may name any slot below 255; the caller decides
/// whether z is a data slot of its stripe.
#[must_use]
pub fn locate(p_delta: &[u8], q_delta: &[u8]) -> Syndrome {
    assert_eq!(
        p_delta.len(),
        q_delta.len(),
        "syndrome deltas differ in length"
    );
    let mut slot: Option<usize> = None;
    let (mut p_seen, mut q_seen) = (false, false);
    for (&dp, &dq) in p_delta.iter().zip(q_delta) {
        p_seen |= dp != 0;
        q_seen |= dq != 0;
        match (dp, dq) {
            (0, 0) => {}
            // A byte wrong in only one syndrome is P or Q itself: consistent
            // only if the whole block says the same, checked after the loop.
            (0, _) | (_, 0) => {
                if slot.is_some() {
                    return Syndrome::Unexplained;
                }
            }
            (dp, dq) => {
                let z = (usize::from(LOG[usize::from(dq)]) + GROUP_ORDER
                    - usize::from(LOG[usize::from(dp)]))
                    % GROUP_ORDER;
                if slot.is_some_and(|s| s != z) {
                    return Syndrome::Unexplained;
                }
                slot = Some(z);
            }
        }
    }
    let verdict = match (p_seen, q_seen, slot) {
        (false, false, _) => Syndrome::Consistent,
        (true, false, _) => Syndrome::P,
        (false, true, _) => Syndrome::Q,
        (true, true, Some(z)) if agree_on_zero_bytes(p_delta, q_delta) => Syndrome::Data(z),
        (true, true, _) => Syndrome::Unexplained,
    };
    assert!(
        !matches!(verdict, Syndrome::Data(z) if z >= GROUP_ORDER),
        "a slot is an exponent below the group order"
    );
    verdict
}

/// Whether the deltas are zero on exactly the same bytes (a single wrong
/// data block changes P and Q on the same bytes, since g^z is never zero).
fn agree_on_zero_bytes(p_delta: &[u8], q_delta: &[u8]) -> bool {
    p_delta
        .iter()
        .zip(q_delta)
        .all(|(&dp, &dq)| (dp == 0) == (dq == 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::scalar;

    fn stripe(slots: usize, len: usize, seed: u8) -> Vec<Vec<u8>> {
        (0..slots)
            .map(|s| {
                (0..len)
                    .map(|i| (i as u8).wrapping_mul(31) ^ seed.wrapping_add(s as u8 * 7))
                    .collect()
            })
            .collect()
    }

    fn deltas(data: &[Vec<u8>], p: &[u8], q: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let (mut pc, mut qc) = (vec![0; p.len()], vec![0; q.len()]);
        scalar::pq_gen(&refs, &mut pc, &mut qc);
        let dp = pc.iter().zip(p).map(|(a, b)| a ^ b).collect();
        let dq = qc.iter().zip(q).map(|(a, b)| a ^ b).collect();
        (dp, dq)
    }

    #[test]
    fn each_single_wrong_block_is_named() {
        let (slots, len) = (6, 64);
        let data = stripe(slots, len, 3);
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let (mut p, mut q) = (vec![0; len], vec![0; len]);
        scalar::pq_gen(&refs, &mut p, &mut q);
        let (dp, dq) = deltas(&data, &p, &q);
        assert_eq!(locate(&dp, &dq), Syndrome::Consistent);
        for z in 0..slots {
            let mut bad = data.clone();
            bad[z][5] ^= 0x40;
            bad[z][40] ^= 0x07;
            let (dp, dq) = deltas(&bad, &p, &q);
            assert_eq!(locate(&dp, &dq), Syndrome::Data(z));
        }
        let mut bad_p = p.clone();
        bad_p[9] ^= 1;
        let (dp, dq) = deltas(&data, &bad_p, &q);
        assert_eq!(locate(&dp, &dq), Syndrome::P);
        let mut bad_q = q.clone();
        bad_q[63] ^= 0xff;
        let (dp, dq) = deltas(&data, &p, &bad_q);
        assert_eq!(locate(&dp, &dq), Syndrome::Q);
    }

    #[test]
    fn two_wrong_blocks_are_unexplained() {
        let (slots, len) = (5, 64);
        let data = stripe(slots, len, 11);
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let (mut p, mut q) = (vec![0; len], vec![0; len]);
        scalar::pq_gen(&refs, &mut p, &mut q);
        let mut bad = data.clone();
        for (i, byte) in bad[1].iter_mut().enumerate() {
            *byte ^= (i as u8) | 1;
        }
        for byte in &mut bad[3] {
            *byte ^= 0x5a;
        }
        let (dp, dq) = deltas(&bad, &p, &q);
        assert_eq!(locate(&dp, &dq), Syndrome::Unexplained);
        // A data block and P on different bytes: not one block either.
        let mut bad = data.clone();
        bad[2][0] ^= 1;
        let mut bad_p = p.clone();
        bad_p[1] ^= 1;
        let (dp, dq) = deltas(&bad, &bad_p, &q);
        assert_eq!(locate(&dp, &dq), Syndrome::Unexplained);
    }
}

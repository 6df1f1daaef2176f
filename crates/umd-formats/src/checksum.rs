//! Checksums of the md superblocks: the 0.90 word sum and the 1.x `sb_csum`.
//!
//! Kept apart from the parsers so the arithmetic can be checked on its own
//! against the real images (formats.md §1.5, §2.5), and so writers and readers
//! share one definition.

/// Fold a 64-bit word sum into 32 bits the way md does: low half plus high
/// half, truncated (formats.md §1.5, §2.5).
const fn fold_to_u32(sum: u64) -> u32 {
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}

/// md 0.90 checksum over one 4096-byte superblock (formats.md §1.5).
///
/// `words` are the 1024 words already decoded in the superblock's own byte
/// order; `csum_index` is the word holding `sb_csum`, counted as zero.
#[must_use]
pub fn sb0_csum(words: &[u32], csum_index: usize) -> u32 {
    assert!(
        csum_index < words.len(),
        "sb_csum word lies inside the superblock"
    );
    let sum = words
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != csum_index)
        .fold(0u64, |acc, (_, &w)| acc + u64::from(w));
    fold_to_u32(sum)
}

/// The kernel's 16-bit fold of a 0.90 checksum, applied twice so any carry is
/// absorbed; it accepts a stored sum whose fold equals the computed one's
/// (formats.md §1.5: old Alpha kernels wrote a differently folded sum).
#[must_use]
pub const fn sb0_fold16(csum: u32) -> u32 {
    let once = (csum & 0xffff) + (csum >> 16);
    (once & 0xffff) + (once >> 16)
}

/// Whether a stored 0.90 checksum is acceptable for the computed one.
#[must_use]
pub const fn sb0_csum_matches(stored: u32, computed: u32) -> bool {
    stored == computed || sb0_fold16(stored) == sb0_fold16(computed)
}

/// md 1.x `calc_sb_1_csum` over the first `256 + 2 * max_dev` bytes of a
/// superblock (formats.md §2.5).
///
/// `bytes` must be exactly the checksummed length; the 4 bytes at
/// `csum_offset` (`sb_csum`) count as zero. An odd trailing u16 is added as is.
#[must_use]
pub fn sb1_csum(bytes: &[u8], csum_offset: usize) -> u32 {
    assert!(csum_offset.is_multiple_of(4), "sb_csum is word aligned");
    assert!(
        csum_offset + 4 <= bytes.len(),
        "sb_csum lies inside the checksummed bytes"
    );
    let mut sum = 0u64;
    let mut words = bytes.chunks_exact(4);
    for (i, w) in words.by_ref().enumerate() {
        if i * 4 != csum_offset {
            sum += u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
    }
    match *words.remainder() {
        [] => {}
        [a, b] => sum += u64::from(u16::from_le_bytes([a, b])),
        // 256 + 2 * max_dev is always even, so 1 or 3 trailing bytes cannot occur.
        _ => panic!("sb1_csum length must be even, got {}", bytes.len()),
    }
    fold_to_u32(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold16_matches_hand_computation() {
        // 0x0001_ffff -> 0x1 + 0xffff = 0x10000 -> 0x0 + 0x1 = 1.
        assert_eq!(sb0_fold16(0x0001_ffff), 1);
        assert_eq!(sb0_fold16(0x1234_0000), 0x1234);
        assert!(sb0_csum_matches(0x0001_0002, 0x0002_0001));
        assert!(!sb0_csum_matches(0x0001_0002, 0x0002_0002));
    }

    #[test]
    fn sb1_sum_folds_once_and_skips_csum() {
        // Two words 0xffff_ffff and the csum slot (ignored) and an odd u16 of 2.
        let mut b = vec![0xffu8; 8];
        b.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        b.extend_from_slice(&[2, 0]);
        // sum = 0x1_ffff_fffe + 2 = 0x2_0000_0000 -> 0 + 2 = 2.
        assert_eq!(sb1_csum(&b, 8), 2);
    }

    #[test]
    fn sb0_sum_skips_csum_word() {
        let mut w = vec![0u32; 1024];
        w[0] = 0xffff_ffff;
        w[1] = 2;
        w[38] = 12345;
        // 0x1_0000_0001 -> 1 + 1 = 2.
        assert_eq!(sb0_csum(&w, 38), 2);
    }
}

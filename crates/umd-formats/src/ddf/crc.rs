//! The DDF CRC: the checksum every DDF header, section and record carries at byte 4.
//!
//! mdadm computes it with zlib's reflected CRC-32 (polynomial 0xEDB88320) but with
//! both the initial and the final inversion disabled, over the structure with its
//! CRC field set to all ones (formats.md §5.1, verified on every structure of 21
//! images). `crc32fast` computes the standard inverted form, so we start it from
//! all ones and invert its result, which cancels both inversions.

use crate::error::{FormatError, Problem};

/// Byte offset of the CRC field in every DDF structure (formats.md §5.1, `crc`).
pub(crate) const CRC_OFFSET: usize = 4;
/// Length of the CRC field.
const CRC_LEN: usize = 4;
/// Value the CRC field holds while the CRC is computed (formats.md §5.1).
const CRC_PLACEHOLDER: [u8; CRC_LEN] = [0xff; CRC_LEN];
/// Starting value that, with `crc32fast`'s built-in inversion, gives mdadm's
/// initial value 0 (formats.md §5.1: "crc32(data, 0xFFFFFFFF) XOR 0xFFFFFFFF").
const CRC32FAST_INIT: u32 = 0xFFFF_FFFF;

/// The `guid_crc` mdadm stores in a new virtual disk entry: the low 16 bits
/// of its CRC (no inversions) over the container GUID, stored in the host
/// order of the little-endian machines mdadm runs on (`init_super_ddf_bvd`
/// assigns the raw field). Returned as [`VirtDisk::guid_crc`] holds it
/// (big-endian decoded), so the on-disk bytes match mdadm's.
///
/// [`VirtDisk::guid_crc`]: super::VirtDisk::guid_crc
#[must_use]
pub fn vd_guid_crc(container_guid: &[u8; super::GUID_LEN]) -> u16 {
    let mut hasher = crc32fast::Hasher::new_with_initial(CRC32FAST_INIT);
    hasher.update(container_guid);
    let crc = hasher.finalize() ^ CRC32FAST_INIT;
    (crc as u16).swap_bytes()
}

/// The DDF CRC of `structure`, computed as if its CRC field held all ones.
///
/// `structure` must be at least 8 bytes long (every DDF structure is at least
/// one sector); shorter input is an internal error and gives 0.
#[must_use]
pub fn ddf_crc(structure: &[u8]) -> u32 {
    let crc_end = CRC_OFFSET + CRC_LEN;
    assert!(
        structure.len() >= crc_end,
        "a DDF structure is at least 8 bytes"
    );
    let mut hasher = crc32fast::Hasher::new_with_initial(CRC32FAST_INIT);
    hasher.update(&structure[..CRC_OFFSET]);
    hasher.update(&CRC_PLACEHOLDER);
    hasher.update(&structure[crc_end..]);
    hasher.finalize() ^ CRC32FAST_INIT
}

/// The CRC stored in `structure` (big-endian at byte 4).
fn stored_crc(structure: &[u8]) -> u32 {
    let mut crc = [0u8; CRC_LEN];
    crc.copy_from_slice(&structure[CRC_OFFSET..CRC_OFFSET + CRC_LEN]);
    u32::from_be_bytes(crc)
}

/// Check the CRC of `structure`, which starts at device byte `offset`.
pub(crate) fn verify(structure: &[u8], what: &'static str, offset: u64) -> Result<(), FormatError> {
    let computed = ddf_crc(structure);
    let stored = stored_crc(structure);
    if computed == stored {
        return Ok(());
    }
    Err(FormatError::new(
        what,
        "crc",
        offset + CRC_OFFSET as u64,
        Problem::BadChecksum {
            computed: u64::from(computed),
            stored: u64::from(stored),
        },
    ))
}

/// Store the DDF CRC of `structure` in its CRC field, so it verifies.
pub(crate) fn seal(structure: &mut [u8]) {
    let crc = ddf_crc(structure);
    structure[CRC_OFFSET..CRC_OFFSET + CRC_LEN].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        stored_crc(structure),
        ddf_crc(structure),
        "a sealed structure verifies"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bitwise reflected CRC-32 with no inversions: the textbook definition,
    /// independent of crc32fast.
    fn reference(data: &[u8]) -> u32 {
        let mut crc = 0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn matches_bitwise_reference() {
        let mut data: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
        let got = ddf_crc(&data);
        data[CRC_OFFSET..CRC_OFFSET + CRC_LEN].copy_from_slice(&CRC_PLACEHOLDER);
        assert_eq!(got, reference(&data));
    }

    #[test]
    fn seal_then_verify() {
        let mut data = vec![0x5au8; 512];
        seal(&mut data);
        assert!(verify(&data, "test", 0).is_ok());
        data[100] ^= 1;
        let err = verify(&data, "test", 1000).unwrap_err();
        assert_eq!(err.offset, 1004);
    }
}

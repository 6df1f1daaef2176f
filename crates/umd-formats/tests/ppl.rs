//! PPL header and area walk (formats.md §2.11): CRC-32C against its check
//! value, round trips of random headers, refusals that name the field and
//! offset, and the walk over a ring of units as md leaves it.

use proptest::prelude::*;
use umd_formats::ppl::{
    crc32c, scan, signature, PplEntry, PplHeader, PPL_HEADER_BYTES, PPL_MAX_ENTRIES,
};
use umd_formats::Problem;

#[test]
fn crc32c_is_the_castagnoli_check_value() {
    // The catalogued check value of CRC-32C over "123456789".
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c(&[]), 0);
}

fn entry() -> impl Strategy<Value = PplEntry> {
    (any::<u64>(), 0u32..64, 1u32..64, 0u32..32, any::<u32>()).prop_map(
        |(data_sector, pp, k, parity_disk, checksum)| PplEntry {
            data_sector,
            pp_size: pp * 512,
            data_size: if pp == 0 {
                k * 512
            } else {
                pp * 512 * (k % 8 + 1)
            },
            parity_disk,
            checksum,
        },
    )
}

proptest! {
    #[test]
    fn headers_round_trip(
        sig in any::<u32>(),
        generation in any::<u64>(),
        entries in proptest::collection::vec(entry(), 0..=PPL_MAX_ENTRIES),
    ) {
        let h = PplHeader { signature: sig, generation, entries };
        let bytes = h.to_bytes().expect("at most 148 entries");
        prop_assert_eq!(bytes.len(), PPL_HEADER_BYTES);
        prop_assert!(bytes[..512].iter().all(|&b| b == 0xff), "reserved bytes are 0xff");
        prop_assert_eq!(PplHeader::parse(&bytes), Ok(h));
    }

    #[test]
    fn any_flipped_bit_is_caught(entries in proptest::collection::vec(entry(), 0..8), bit in 0usize..PPL_HEADER_BYTES * 8) {
        let h = PplHeader { signature: 7, generation: 3, entries };
        let mut bytes = h.to_bytes().expect("few entries");
        bytes[bit / 8] ^= 1 << (bit % 8);
        let e = PplHeader::parse(&bytes).expect_err("a flipped bit breaks the checksum");
        prop_assert_eq!(e.field, "checksum");
        prop_assert_eq!(e.offset, 532);
    }
}

#[test]
fn too_many_entries_are_refused_with_their_offset() {
    let mut bytes = PplHeader::empty(1).to_bytes().expect("empty");
    bytes[528..532].copy_from_slice(&149u32.to_le_bytes());
    // Fix the checksum so only the count is wrong.
    bytes[532..536].fill(0);
    let sum = crc32c(&bytes);
    bytes[532..536].copy_from_slice(&sum.to_le_bytes());
    let e = PplHeader::parse(&bytes).expect_err("149 entries");
    assert_eq!((e.field, e.offset), ("entries_count", 528));
    assert!(matches!(e.problem, Problem::Invalid { found: 149, .. }));
}

/// An area of `units` written one after another from the start, as md's
/// ring does, each unit's partial parity filled with its generation.
fn ring(sig: u32, units: &[(u64, u32)], area: usize) -> Vec<u8> {
    let mut out = vec![0u8; area];
    let mut at = 0;
    for &(generation, pp_sectors) in units {
        let h = PplHeader {
            signature: sig,
            generation,
            entries: vec![PplEntry {
                data_sector: 8,
                pp_size: pp_sectors * 512,
                data_size: pp_sectors * 512,
                parity_disk: 2,
                checksum: 0,
            }],
        };
        let bytes = h.to_bytes().expect("one entry");
        if at + PPL_HEADER_BYTES + pp_sectors as usize * 512 > area {
            at = 0;
        }
        out[at..at + PPL_HEADER_BYTES].copy_from_slice(&bytes);
        out[at + PPL_HEADER_BYTES..][..pp_sectors as usize * 512].fill(generation as u8);
        at += PPL_HEADER_BYTES + pp_sectors as usize * 512;
    }
    out
}

fn walk(area: &[u8], sig: u32) -> umd_formats::ppl::PplScan {
    scan(area.len() as u64, sig, |at, buf| {
        let at = at as usize;
        buf.copy_from_slice(&area[at..at + PPL_HEADER_BYTES]);
        Ok::<(), ()>(())
    })
    .expect("reads from memory")
}

#[test]
fn the_walk_finds_the_newest_unit_of_a_ring() {
    let sig = signature(&[0x24; 16]);
    let area = ring(sig, &[(1, 8), (2, 16), (3, 8)], 1 << 20);
    let found = walk(&area, sig);
    assert_eq!(found.header.map(|h| h.generation), Some(3));
    assert_eq!(found.offset_bytes, (4096 + 4096) + (4096 + 8192));
    // Wrapped: unit 5 did not fit after unit 4 and overwrote the start;
    // unit 2 right after it is older, so the walk stops there.
    let area = ring(
        sig,
        &[(1, 200), (2, 200), (3, 200), (4, 200), (5, 200)],
        512 * 1024,
    );
    let found = walk(&area, sig);
    assert_eq!(found.header.map(|h| h.generation), Some(5));
    assert_eq!(found.offset_bytes, 0);
    // Unit 6 follows unit 5: the walk passes 5 and takes 6.
    let area = ring(
        sig,
        &[(1, 200), (2, 200), (3, 200), (4, 200), (5, 200), (6, 200)],
        512 * 1024,
    );
    let found = walk(&area, sig);
    assert_eq!(found.header.map(|h| h.generation), Some(6));
    assert_eq!(found.offset_bytes, 4096 + 200 * 512);
}

#[test]
fn another_arrays_log_is_not_taken() {
    let area = ring(signature(&[1; 16]), &[(1, 8)], 64 * 1024);
    let found = walk(&area, signature(&[2; 16]));
    assert_eq!(found.header, None);
    let stopped = found.stopped.expect("names why");
    assert_eq!((stopped.field, stopped.offset), ("signature", 512));
}

#[test]
fn an_empty_area_has_no_log() {
    let found = walk(&vec![0u8; 1 << 20], 5);
    assert_eq!(found.header, None);
    assert_eq!(found.stopped.map(|e| e.field), Some("checksum"));
}

proptest! {
    /// The fuzz entry on bent headers and areas: never a panic.
    #[test]
    fn bent_headers_never_panic(
        entries in proptest::collection::vec(entry(), 0..4),
        edits in proptest::collection::vec((0usize..3 * PPL_HEADER_BYTES, any::<u8>()), 0..16),
        extra_units in 0usize..3,
    ) {
        let h = PplHeader { signature: 9, generation: 1, entries };
        let unit = h.to_bytes().expect("few entries");
        let mut area = Vec::new();
        for _ in 0..=extra_units {
            area.extend_from_slice(&unit);
        }
        for (at, byte) in edits {
            if let Some(b) = area.get_mut(at) {
                *b = byte;
            }
        }
        umd_formats::fuzz::ppl(&area);
    }
}

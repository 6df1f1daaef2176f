//! The partial parity log area of a new raid5 (`--consistency-policy ppl`),
//! placed as mdadm places it (formats.md §2.9, §2.11): 1 MiB in the room a
//! bitmap would take, at +8 sectors from a 1.1/1.2 superblock or just below
//! the bad-block log of a 1.0 one, zeroed with one empty header at its start.
//!
//! Split from `create.rs`.

// A child of `create`: it shares that module's constants, types and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;
use umd_formats::ppl::{signature, PplHeader, PPL_AREA_SECTORS_DEFAULT};

/// Sectors of the PPL area mdadm reserves on 1.x members.
const PPL_AREA_SECTORS: u64 = PPL_AREA_SECTORS_DEFAULT as u64;

/// Whether the spec asks for PPL, refusing what md refuses with it.
pub(super) fn check_ppl(
    spec: &CreateSpec,
    level: Level,
    metadata: Metadata,
) -> Result<bool, EngineError> {
    if !spec.ppl {
        return Ok(false);
    }
    if level != Level::Raid5 {
        return Err(einval(format!(
            "--consistency-policy ppl: only raid5 has a partial parity log, not {level}"
        )));
    }
    if !matches!(metadata, Metadata::V1 { .. }) {
        return Err(einval(
            "--consistency-policy ppl: needs metadata 1.x (0.90 has no PPL area)",
        ));
    }
    if spec.bitmap {
        return Err(einval(
            "--consistency-policy ppl: a PPL and an internal bitmap exclude each other",
        ));
    }
    Ok(true)
}

/// Sectors kept before the data (1.1/1.2) or below the superblock (1.0) for
/// a bitmap or, with PPL, the log area.
pub(super) fn space_sectors(shape: &Shape, dev_sectors: u64) -> u64 {
    if shape.ppl {
        PPL_AREA_SECTORS
    } else {
        bm_space_sectors(dev_sectors)
    }
}

/// `ppl.offset` from the superblock: +8 for 1.1/1.2, below the bad-block log
/// for 1.0.
pub(super) fn ppl_offset_sectors(shape: &Shape) -> i16 {
    match shape.metadata {
        Metadata::V1 { minor: 0 } => -(PPL_AREA_SECTORS as i16) - BBLOG_SECTORS as i16,
        _ => BITMAP_OFFSET_1X_SECTORS as i16,
    }
}

/// The `bitmap_offset` word that carries `ppl.offset` (low half) and
/// `ppl.size` (high half), formats.md §2.2.
pub(super) fn ppl_word(shape: &Shape) -> i32 {
    let offset = u32::from(ppl_offset_sectors(shape) as u16);
    (offset | (PPL_AREA_SECTORS as u32) << 16) as i32
}

/// The zeroed area with an empty header, as mdadm initialises it.
pub(super) fn ppl_area_write(spec: &CreateSpec, p: &Placement, shape: &Shape) -> MemberWrite {
    let at = p
        .super_offset
        .checked_add_signed(ppl_offset_sectors(shape).into())
        .expect("the PPL area lies inside the device by placement");
    let mut bytes = vec![0u8; (PPL_AREA_SECTORS * SECTOR_BYTES) as usize];
    PplHeader::empty(signature(&spec.uuid))
        .write_to(&mut bytes)
        .expect("an empty header fits 4 KiB");
    MemberWrite {
        offset_bytes: at * SECTOR_BYTES,
        bytes,
    }
}

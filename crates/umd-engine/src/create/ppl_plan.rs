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

#[cfg(test)]
mod tests {
    use super::*;
    use umd_formats::ppl::PPL_HEADER_BYTES;

    const MIB: u64 = 1024 * 1024;

    fn spec(level: i32, metadata: &str) -> CreateSpec {
        CreateSpec {
            level,
            raid_disks: 3,
            chunk_kib: Some(64),
            layout: None,
            metadata: metadata.to_string(),
            bitmap: false,
            bitmap_chunk_kib: None,
            name: "p".to_string(),
            assume_clean: false,
            member_bytes: vec![Some(64 * MIB); 3],
            member_names: (0..3).map(|i| format!("m{i}")).collect(),
            uuid: [0x42; 16],
            device_uuids: (0..3).map(|i| [i as u8; 16]).collect(),
            ctime_seconds: 1_700_000_000,
            ppl: true,
        }
    }

    /// The superblock and the PPL area a member gets, found by where md
    /// looks: the superblock where its minor says, the area at `ppl.offset`.
    fn placed(plan: &CreatePlan, sb_sector: u64) -> (Superblock1, Vec<u8>) {
        let writes = &plan.members[0];
        let sb_write = writes
            .iter()
            .find(|w| w.offset_bytes == sb_sector * SECTOR_BYTES && w.bytes.len() == SB_AREA_BYTES)
            .expect("a superblock write");
        let sb = Superblock1::parse(&sb_write.bytes, sb_sector, 64 * MIB / SECTOR_BYTES)
            .expect("planned superblock parses");
        let (area_sector, area_sectors, multiple) = sb.ppl_area().expect("a PPL area");
        assert!(!multiple, "mdadm writes the PPL bit, not MULTIPLE_PPLS");
        let area = writes
            .iter()
            .find(|w| w.offset_bytes == area_sector * SECTOR_BYTES)
            .expect("the area is written");
        assert_eq!(area.bytes.len() as u64, area_sectors * SECTOR_BYTES);
        (sb, area.bytes.clone())
    }

    #[test]
    fn areas_sit_where_mdadm_puts_them() {
        // 1.2: +8 sectors, 2048 of them, bad-block log after (formats.md §2.9).
        let plan = plan_create(&spec(5, "1.2")).expect("raid5 1.2 with PPL");
        let (sb, area) = placed(&plan, 8);
        assert_eq!(sb.feature_map & sb1::FEATURE_PPL, sb1::FEATURE_PPL);
        assert_eq!((sb.ppl_offset(), sb.ppl_size()), (8, 2048));
        assert_eq!((sb.bblog_offset, sb.bblog_size), (2056, 8));
        assert!(
            sb.data_offset >= 8 + 8 + 2048 + 8,
            "data after the area and the log"
        );
        let header = PplHeader::parse(&area).expect("an empty header");
        assert_eq!(header, PplHeader::empty(signature(&[0x42; 16])));
        assert!(
            area[PPL_HEADER_BYTES..].iter().all(|&b| b == 0),
            "the rest zeroed"
        );
        // 1.0: below the bad-block log, below the superblock at the end.
        let plan = plan_create(&spec(5, "1.0")).expect("raid5 1.0 with PPL");
        let sb_sector = sb1::super_offset_sectors(0, 64 * MIB / SECTOR_BYTES).expect("fits");
        let (sb, _) = placed(&plan, sb_sector);
        assert_eq!((sb.ppl_offset(), sb.ppl_size()), (-2056, 2048));
        assert_eq!(sb.data_offset + sb.data_size, sb_sector - 2056);
    }

    #[test]
    fn what_md_refuses_is_refused() {
        let refused = |s: CreateSpec| plan_create(&s).expect_err("refused").to_string();
        assert!(refused(spec(6, "1.2")).contains("only raid5"));
        assert!(refused(spec(5, "0.90")).contains("metadata 1.x"));
        let mut with_bitmap = spec(5, "1.2");
        with_bitmap.bitmap = true;
        assert!(refused(with_bitmap).contains("bitmap"));
    }
}

//! The internal write-intent bitmap of a new array: its chunk (mdadm's
//! choice, or `--bitmap-chunk`), its place relative to the superblock, and
//! its initial bytes (all bits set when the array needs a resync).
//!
//! Split from `create.rs`; formats.md §3 gives the format.

// A child of `create`: it shares that module's constants, types and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

/// The internal bitmap: chunk chosen as mdadm does, so the bits fit the room
/// reserved for them (formats.md §3.2, §3.5).
pub(super) fn plan_bitmap(
    spec: &CreateSpec,
    shape: &Shape,
    geometry: &Geometry,
    placements: &[Option<Placement>],
    component: u64,
) -> Result<Option<BitmapPlan>, EngineError> {
    if !spec.bitmap {
        return Ok(None);
    }
    let room_sectors = match shape.metadata {
        Metadata::V090 => sb0::BITMAP_RESERVED_SECTORS,
        Metadata::V1 { .. } => bm_space_sectors(component),
    }
    .min(BITMAP_ROOM_MAX_SECTORS);
    if room_sectors == 0 {
        return Err(enospc("members too small for an internal bitmap"));
    }
    // The bitmap's resync address space: the array for raid10 (formats.md §3.2).
    let sync_sectors = if shape.level == Level::Raid10 {
        geometry.array_sectors()
    } else {
        component
    };
    let max_bits = (room_sectors * SECTOR_BYTES - bitmap::BITMAP_SB_BYTES as u64) * BITS_PER_BYTE;
    let mut min_chunk = BITMAP_CHUNK_MIN_BYTES;
    let mut bits = sync_sectors * SECTOR_BYTES / min_chunk + 1;
    while bits > max_bits {
        min_chunk *= 2;
        bits = bits.div_ceil(2);
    }
    let wanted = match spec.bitmap_chunk_kib {
        None => BITMAP_CHUNK_DEFAULT_BYTES,
        Some(kib) => {
            let bytes = u64::from(kib) * 1024;
            if !bytes.is_power_of_two() || bytes < BITMAP_CHUNK_MIN_BYTES {
                return Err(EngineError::new(
                    Errno::EINVAL,
                    format!("--bitmap-chunk {kib}: must be a power of two of at least 4 KiB"),
                ));
            }
            bytes
        }
    };
    let chunk_bytes = u32::try_from(min_chunk.max(wanted))
        .map_err(|_| enospc("array too large for an internal bitmap"))?;
    let bits = sync_sectors.div_ceil(u64::from(chunk_bytes) / SECTOR_BYTES);
    let area_bytes = (bitmap::BITMAP_SB_BYTES as u64 + bits.div_ceil(BITS_PER_BYTE))
        .next_multiple_of(BITMAP_PAGE_BYTES);
    let area_sectors = area_bytes / SECTOR_BYTES;
    assert!(area_sectors <= room_sectors, "the bits fit the room");
    for p in placements.iter().flatten() {
        if let Metadata::V1 { minor: 1 | 2 } = shape.metadata {
            let end = p.super_offset + BITMAP_OFFSET_1X_SECTORS + area_sectors;
            assert!(end <= p.data_offset, "bitmap ends before the data");
        }
    }
    Ok(Some(BitmapPlan {
        chunk_bytes,
        sync_sectors,
        bits,
        area_sectors,
    }))
}

/// Device sector of the bitmap for a member placed at `p` (formats.md §3.1).
pub(super) fn bitmap_offset_sectors(shape: &Shape, bm: &BitmapPlan) -> i64 {
    match shape.metadata {
        Metadata::V090 => sb0::BITMAP_OFFSET_SECTORS as i64,
        Metadata::V1 { minor: 0 } => -(bm.area_sectors as i64) - i64::from(BBLOG_SECTORS),
        Metadata::V1 { .. } => BITMAP_OFFSET_1X_SECTORS as i64,
    }
}

/// The bitmap area: superblock, then the bits (all set unless clean, formats.md §3.3).
pub(super) fn bitmap_area(spec: &CreateSpec, shape: &Shape, bm: &BitmapPlan) -> Vec<u8> {
    let uuid = match shape.metadata {
        // md compares the 0.90 UUID words in the host's (little-endian) order.
        Metadata::V090 => {
            let mut u = spec.uuid;
            u.chunks_exact_mut(4).for_each(<[u8]>::reverse);
            u
        }
        Metadata::V1 { .. } => spec.uuid,
    };
    let sb = BitmapSuper {
        version: bitmap::BITMAP_MAJOR_HI,
        uuid,
        events: EVENTS_INITIAL,
        events_cleared: EVENTS_INITIAL,
        sync_size: bm.sync_sectors,
        state: 0,
        chunksize: bm.chunk_bytes,
        daemon_sleep: BITMAP_DAEMON_SLEEP_S,
        write_behind: 0,
        sectors_reserved: bm.area_sectors as u32,
        nodes: 0,
        cluster_name: [0; 64],
    };
    assert!(sb.check_fields().is_ok(), "a valid bitmap superblock");
    assert_eq!(sb.bits(), bm.bits);
    let mut area = vec![0u8; (bm.area_sectors * SECTOR_BYTES) as usize];
    area[..bitmap::BITMAP_SB_BYTES].copy_from_slice(&sb.to_bytes());
    if !shape.clean {
        for bit in 0..bm.bits {
            let (byte, shift) = bitmap::bit_position(bit);
            area[byte as usize] |= 1 << shift;
        }
    }
    let back = BitmapSuper::parse(&area);
    assert_eq!(
        back.as_ref().ok(),
        Some(&sb),
        "bitmap superblock reads back"
    );
    area
}

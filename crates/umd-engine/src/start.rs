//! Starting an assembled native array: the engine's configuration from the
//! assembly, md's refusal to start a dirty degraded parity array, and the
//! internal bitmap read from the members.
//!
//! Why in the engine: `umd run` and the simulator (`umd-sim`) must start an
//! array the same way, so the decisions made between "these members form
//! one array" and "the array runs" live here, pure, with the member reads
//! done through a caller-supplied function.

use crate::array::{ArrayConfig, BitmapConfig, MemberConfig, MetadataKind};
use crate::bitmap::WriteIntentBitmap;
use crate::native::NativeMetadata;
use crate::time::Duration;
use crate::{Assembly, Candidate};
use umd_formats::bitmap::{BitmapSuper, BITMAP_SB_BYTES};
use umd_formats::info::SlotState;
use umd_formats::probe::Metadata;
use umd_layout::geometry::Level;

/// md's `DEFAULT_SAFEMODE_DELAY` (protocol.md §1): 200 ms.
pub const SAFE_MODE_DELAY_MS: u64 = 200;
/// md's default `stripe_cache_size` (raid5.c `NR_STRIPES`).
pub const STRIPE_CACHE_SIZE_DEFAULT: u32 = 256;
/// Bitmap write unit: one 512-byte sector, the smallest md writes, so a bit
/// change rewrites as little as possible.
pub const BITMAP_BLOCK_BYTES: u32 = 512;

/// md's `start_dirty_degraded` rule: a raid4/5/6 that was not shut down
/// cleanly and misses a member may hold stripes whose parity does not match
/// their data (the write hole), so rebuilding the missing member from them
/// could return data that was never written. Returns why it must not start
/// unless forced, or `None` when it may.
///
/// A member still recovering counts as missing here, which is stricter than
/// md (md starts such an array and rebuilds on): above its recovery
/// checkpoint its blocks come from parity exactly as a missing member's
/// do, so a stripe torn by the crash would be rebuilt wrong, silently.
#[must_use]
pub fn dirty_degraded_refusal(assembly: &Assembly) -> Option<String> {
    let recovering: Vec<u32> = assembly
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            m.as_ref()
                .is_some_and(|m| m.recovery_offset_sectors.is_some())
        })
        .map(|(r, _)| r as u32)
        .collect();
    let missing = assembly.missing_roles();
    let dirty_degraded = !assembly.clean
        && assembly.geometry.level().parity_members() > 0
        && !(missing.is_empty() && recovering.is_empty());
    dirty_degraded.then(|| {
        let which = match (missing.is_empty(), recovering.is_empty()) {
            (false, true) => format!("missing roles {missing:?}"),
            (true, false) => format!("roles {recovering:?} still recovering"),
            _ => format!("missing roles {missing:?}, roles {recovering:?} still recovering"),
        };
        format!(
            "the array is dirty and degraded ({which}): stripes being written \
             when it stopped may rebuild wrong data; add the missing member, or start it \
             anyway with --force"
        )
    })
}

/// The metadata the running array keeps up to date: that of the members
/// the assembly put in the array (replacements included), and of spares; a member it left out
/// (faulty in the freshest roster, or stale) is no longer part of the array
/// and its superblock is never written again. Were it rewritten with the
/// array's events, it would look current at the next assembly, stale data
/// and all. `metadata` and the candidates are indexed alike.
#[must_use]
pub fn members_in_array(
    assembly: &Assembly,
    candidates: &[Candidate],
    mut metadata: Vec<Option<Metadata>>,
) -> Vec<Option<Metadata>> {
    for c in candidates {
        let in_array = assembly
            .members
            .iter()
            .chain(&assembly.replacements)
            .flatten()
            .any(|m| m.index == c.index);
        let spare = c.info.device.slot == SlotState::Spare;
        if !in_array && !spare {
            if let Some(m) = metadata.get_mut(c.index) {
                *m = None;
            }
        }
    }
    metadata
}

/// Sectors the resync (and the bitmap) covers: member sectors, except
/// raid10's array sectors (md's `resync_max_sectors`).
#[must_use]
pub fn resync_sectors(assembly: &Assembly) -> u64 {
    match assembly.geometry.level() {
        Level::Raid10 => assembly.geometry.array_sectors(),
        _ => assembly.geometry.member_used_sectors(0),
    }
}

/// Reads `buf.len()` bytes of member `member` (the caller's index) at a
/// byte offset; the error is one line for the user.
pub type MemberRead<'a> = dyn FnMut(usize, u64, &mut [u8]) -> Result<(), String> + 'a;

/// Read and validate the internal bitmap, if the metadata announces one.
/// `read(member, offset_bytes, buf)` fills `buf` from a member.
pub fn load_bitmap(
    assembly: &Assembly,
    native: &NativeMetadata,
    read: &mut MemberRead<'_>,
) -> Result<Option<WriteIntentBitmap>, String> {
    let offsets = native.bitmap_offsets_bytes();
    let Some((member, offset)) = offsets
        .iter()
        .enumerate()
        .find_map(|(i, o)| o.map(|o| (i, o)))
    else {
        return Ok(None);
    };
    let mut head = vec![0u8; BITMAP_SB_BYTES];
    read(member, offset, &mut head).map_err(|e| format!("bitmap: {e}"))?;
    let sb = BitmapSuper::parse(&head).map_err(|e| format!("bitmap: {e}"))?;
    let sync_sectors = resync_sectors(assembly);
    let chunks = sync_sectors.div_ceil(sb.chunk_sectors().max(1));
    let area_bytes = BITMAP_SB_BYTES
        + usize::try_from(chunks.div_ceil(8)).map_err(|_| "bitmap too large".to_string())?;
    let mut area = vec![0u8; area_bytes.next_multiple_of(512)];
    read(member, offset, &mut area).map_err(|e| format!("bitmap: {e}"))?;
    WriteIntentBitmap::new(
        &area,
        offsets,
        sync_sectors,
        native.events(),
        BITMAP_BLOCK_BYTES,
    )
    .map(Some)
    .map_err(|e| e.to_string())
}

/// The engine's view of a loaded internal bitmap.
#[must_use]
pub fn bitmap_config(bitmap: &WriteIntentBitmap, fresh: &Candidate) -> BitmapConfig {
    BitmapConfig {
        chunk_bytes: bitmap.chunk_sectors() * 512,
        location: bitmap_location(fresh),
        time_base_seconds: u64::from(bitmap.superblock().daemon_sleep),
        backlog: u64::from(bitmap.superblock().write_behind),
        max_backlog_used: 0,
        space_sectors: u64::from(bitmap.superblock().sectors_reserved),
        external: false,
        can_clear: true,
    }
}

/// md's `bitmap/location`: the signed sector offset from the superblock.
fn bitmap_location(fresh: &Candidate) -> String {
    match fresh.info.array.bitmap {
        Some(b) => {
            let delta = b.sector as i64 - fresh.info.device.super_offset_sectors as i64;
            format!("{delta:+}")
        }
        None => "none".to_string(),
    }
}

/// The engine's view of the assembled array. `member_names` are indexed as
/// the assembly's member indices.
#[must_use]
pub fn array_config(
    assembly: &Assembly,
    fresh: &Candidate,
    member_names: &[String],
    metadata: MetadataKind,
    bitmap: Option<BitmapConfig>,
) -> ArrayConfig {
    let array = &fresh.info.array;
    // Only the devices the array uses are its members, as md binds only
    // those mdadm adds: one left out (stale, recorded faulty) is not, and
    // may be added back later like any other device.
    let mut members: Vec<Option<MemberConfig>> = vec![None; member_names.len()];
    // The roles' members, then their replacements (never in sync: assembly
    // gives each a checkpoint).
    let tables = [(&assembly.members, false), (&assembly.replacements, true)];
    for (table, replacement) in tables {
        for (role, m) in table.iter().enumerate() {
            let Some(m) = m else { continue };
            members[m.index] = Some(MemberConfig {
                name: member_names[m.index].clone(),
                slot: Some(role as u32),
                data_offset_sectors: m.data_offset_sectors,
                size_sectors: array.component_sectors,
                in_sync: m.recovery_offset_sectors.is_none(),
                faulty: false,
                write_mostly: false,
                replacement,
                recovery_offset_sectors: m.recovery_offset_sectors,
            });
        }
    }
    for s in &assembly.spares {
        members[s.index] = Some(MemberConfig::spare(
            member_names[s.index].clone(),
            s.data_offset_sectors,
            s.data_sectors,
        ));
    }
    let members = members.into_iter().flatten().collect();
    let resync_start = (!assembly.clean).then_some(if array.resync_offset_sectors == u64::MAX {
        0
    } else {
        array.resync_offset_sectors
    });
    ArrayConfig {
        level: array.level,
        raid_disks: array.raid_disks,
        chunk_sectors: array.chunk_sectors,
        layout: array.layout,
        component_sectors: array.component_sectors,
        array_sectors: assembly.array_sectors,
        metadata,
        members,
        resync_start,
        bitmap,
        safe_mode_delay: Duration::from_ms(SAFE_MODE_DELAY_MS),
        stripe_cache_size: STRIPE_CACHE_SIZE_DEFAULT,
    }
}

//! The superblock side of a grow: starting it, checkpointing it, ending it,
//! and bringing members that a crash left one write behind up to the
//! freshest one. Pure functions on 1.x superblocks; the caller writes them.
//!
//! What md records (formats.md §2.8): at the start `raid_disks` becomes the
//! new count, `delta_disks` the difference, `new_level`/`new_layout`/
//! `new_chunk` the target, `reshape_position` 0, and with bits
//! RESHAPE_ACTIVE and NEW_OFFSET each member's `new_offset` (negative: the
//! data moves down). At each checkpoint `reshape_position` and `events`
//! move. At the end md's `md_finish_reshape` makes `data_offset +
//! new_offset` the data offset, grows `data_size` by what the data moved
//! down, and the new shape becomes the shape.

use umd_formats::sb1::{
    self, Superblock1, FEATURE_BITMAP_OFFSET, FEATURE_NEW_OFFSET, FEATURE_RESHAPE_ACTIVE,
    FEATURE_RESHAPE_BACKWARDS,
};

/// The feature bits that describe a reshape in progress.
const RESHAPE_BITS: u32 = FEATURE_RESHAPE_ACTIVE | FEATURE_NEW_OFFSET | FEATURE_RESHAPE_BACKWARDS;

/// A blank device joining the array in a grow.
#[derive(Debug, Clone)]
pub struct Joining {
    /// Its size in sectors.
    pub dev_sectors: u64,
    /// Its new per-device UUID.
    pub device_uuid: [u8; 16],
}

/// First device sector after a member's metadata (superblock, bad-block
/// log): the new data offset may not go below it.
#[must_use]
pub fn metadata_end(sb: &Superblock1) -> u64 {
    let sb_end = sb.super_offset + (sb1::sb_bytes(sb.max_dev()) as u64).div_ceil(512).max(8);
    let bblog_end = sb
        .super_offset
        .checked_add_signed(i64::from(sb.bblog_offset) + i64::from(sb.bblog_size))
        .unwrap_or(0);
    sb_end.max(if sb.bblog_size > 0 { bblog_end } else { 0 })
}

/// How far a grow moves the data down: as much as every member has free
/// before its data (after its metadata), in whole chunks of
/// `chunk_sectors`, at most `max_sectors`; 0 when not one chunk fits.
#[must_use]
pub fn gap_sectors(members: &[Superblock1], chunk_sectors: u64, max_sectors: u64) -> u64 {
    assert!(chunk_sectors > 0, "a chunked level");
    let room = members
        .iter()
        .map(|s| s.data_offset.saturating_sub(metadata_end(s)))
        .min()
        .unwrap_or(0);
    room.min(max_sectors) / chunk_sectors * chunk_sectors
}

/// The shape a reshape goes to, besides the members added.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target {
    /// New chunk in sectors (`None`: unchanged).
    pub chunk_sectors: Option<u32>,
    /// New md layout number (`None`: unchanged).
    pub layout: Option<u32>,
}

/// The superblocks that start reshaping the array of `members` (every
/// member's current superblock, any order): `joining` devices are added and
/// the shape becomes `target`, with the data moving down by `gap_sectors`
/// on every member. Returns the updated members' superblocks in the same
/// order, then the joining devices' (roles `raid_disks..`). Refuses, naming
/// why, what md would refuse too.
pub fn start_reshape(
    members: &[Superblock1],
    joining: &[Joining],
    target: Target,
    gap_sectors: u64,
    now_seconds: u64,
) -> Result<Vec<Superblock1>, String> {
    let fresh = members
        .iter()
        .max_by_key(|s| s.events)
        .ok_or("no members")?;
    if fresh.feature_map & FEATURE_RESHAPE_ACTIVE != 0 {
        return Err("a reshape is already in progress".to_string());
    }
    if fresh.feature_map & FEATURE_BITMAP_OFFSET != 0 {
        return Err("the array has an internal bitmap: remove it first".to_string());
    }
    if fresh.resync_offset != u64::MAX {
        return Err("the array is not in sync (resync pending): run it until clean".to_string());
    }
    let gap = i32::try_from(gap_sectors).map_err(|_| "gap too large".to_string())?;
    let old_disks = fresh.raid_disks;
    let new_disks = old_disks + joining.len() as u32;
    let max_dev = fresh.max_dev().max(new_disks);
    let events = fresh.events + 1;
    let mut next_dev = fresh.dev_roles.len() as u32;
    let mut out = Vec::new();
    let mut roles = fresh.dev_roles.clone();
    let mut joined = Vec::new();
    for j in joining {
        // a dev_number nobody holds: first spare-marked slot beyond the members
        let dev = (0..=roles.len() as u32)
            .find(|&d| {
                d >= roles.len() as u32
                    || (roles[d as usize] == sb1::ROLE_SPARE
                        && !members.iter().any(|m| m.dev_number == d))
            })
            .expect("some dev_number is free");
        next_dev = next_dev.max(dev + 1);
        if roles.len() <= dev as usize {
            roles.resize(dev as usize + 1, sb1::ROLE_SPARE);
        }
        let role = old_disks + joined.len() as u32;
        roles[dev as usize] = role as u16;
        joined.push((dev, j));
    }
    roles.resize(max_dev.max(next_dev) as usize, sb1::ROLE_SPARE);
    let shape = |sb: &mut Superblock1| {
        sb.feature_map |= FEATURE_RESHAPE_ACTIVE | FEATURE_NEW_OFFSET;
        sb.feature_map &= !FEATURE_RESHAPE_BACKWARDS;
        sb.raid_disks = new_disks;
        sb.delta_disks = joining.len() as i32;
        sb.new_level = fresh.level;
        sb.new_layout = target.layout.unwrap_or(fresh.layout);
        sb.new_chunk = target.chunk_sectors.unwrap_or(fresh.chunksize);
        sb.reshape_position = 0;
        sb.new_offset = -gap;
        sb.events = events;
        sb.utime = now_seconds & ((1 << 40) - 1);
        sb.dev_roles.clone_from(&roles);
    };
    for m in members {
        if m.data_offset < metadata_end(m) + gap_sectors {
            return Err(format!(
                "member with dev_number {}: the reshape moves data down by {gap_sectors} \
                 sectors but only {} are free before data_offset {}",
                m.dev_number,
                m.data_offset.saturating_sub(metadata_end(m)),
                m.data_offset
            ));
        }
        let mut sb = m.clone();
        shape(&mut sb);
        out.push(sb);
    }
    for (dev, j) in joined {
        let mut sb = fresh.clone();
        shape(&mut sb);
        sb.dev_number = dev;
        sb.device_uuid = j.device_uuid;
        sb.recovery_offset = 0;
        sb.cnt_corrected_read = 0;
        sb.devflags = 0;
        let needed = sb.data_offset + sb.size;
        if j.dev_sectors < needed {
            return Err(format!(
                "a joining device has {} sectors, the array needs {needed} \
                 (data offset {} + component {})",
                j.dev_sectors, sb.data_offset, sb.size
            ));
        }
        sb.data_size = j.dev_sectors - sb.data_offset;
        out.push(sb);
    }
    Ok(out)
}

/// Record that the reshape reached `position` (array sectors).
pub fn checkpoint(sb: &mut Superblock1, position: u64, events: u64, now_seconds: u64) {
    sb.reshape_position = position;
    sb.events = events;
    sb.utime = now_seconds & ((1 << 40) - 1);
}

/// The reshape is done: the new shape and the new data offset become the
/// array's (md's `md_finish_reshape` and `end_reshape`).
pub fn finish(sb: &mut Superblock1, events: u64, now_seconds: u64) {
    if sb.feature_map & FEATURE_RESHAPE_ACTIVE == 0 {
        return;
    }
    if sb.feature_map & FEATURE_NEW_OFFSET != 0 {
        let moved = i64::from(sb.new_offset);
        sb.data_offset = sb.data_offset.saturating_add_signed(moved);
        sb.data_size = sb.data_size.saturating_add_signed(-moved);
    }
    sb.feature_map &= !RESHAPE_BITS;
    sb.level = sb.new_level;
    sb.layout = sb.new_layout;
    sb.chunksize = sb.new_chunk;
    sb.new_level = 0;
    sb.new_layout = 0;
    sb.new_chunk = 0;
    sb.new_offset = 0;
    sb.delta_disks = 0;
    sb.reshape_position = 0;
    sb.events = events;
    sb.utime = now_seconds & ((1 << 40) - 1);
}

/// Bring `member`, which a crash may have left one superblock write behind,
/// to the state `fresh` records: before the reshape, during it (with
/// fresh's position), or after it. Its own identity and offsets stay.
#[must_use]
pub fn reconcile(member: &Superblock1, fresh: &Superblock1) -> Superblock1 {
    let mut sb = member.clone();
    let fresh_reshaping = fresh.feature_map & FEATURE_RESHAPE_ACTIVE != 0;
    let member_reshaping = member.feature_map & FEATURE_RESHAPE_ACTIVE != 0;
    if member_reshaping && !fresh_reshaping {
        finish(&mut sb, fresh.events, fresh.utime);
    }
    if fresh_reshaping && !member_reshaping {
        // It missed the start: it takes the new offset every member got.
        sb.new_offset = fresh.new_offset;
    }
    sb.feature_map = (sb.feature_map & !RESHAPE_BITS) | (fresh.feature_map & RESHAPE_BITS);
    sb.level = fresh.level;
    sb.layout = fresh.layout;
    sb.chunksize = fresh.chunksize;
    sb.raid_disks = fresh.raid_disks;
    sb.new_level = fresh.new_level;
    sb.new_layout = fresh.new_layout;
    sb.new_chunk = fresh.new_chunk;
    sb.delta_disks = fresh.delta_disks;
    sb.reshape_position = fresh.reshape_position;
    sb.events = fresh.events;
    sb.utime = fresh.utime;
    sb.resync_offset = fresh.resync_offset;
    sb.dev_roles.clone_from(&fresh.dev_roles);
    if !fresh_reshaping {
        sb.new_offset = 0;
    }
    sb
}

#[cfg(test)]
mod tests;

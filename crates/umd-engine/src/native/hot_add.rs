//! md's hot add to a running array with native metadata (1.x or 0.90):
//! which superblock a device being added gets, and how it joins the engine.
//!
//! Why one place: the real host (`umd manage --add`, the `new_dev` store)
//! and the simulator's operator both add devices, and they must decide
//! alike: the simulator exists to check the real host's decisions. A
//! device whose own superblock says it left this array recently enough for
//! the bitmap to cover what it missed is re-added into its old slot (md's
//! re-add: only the dirty chunks are recovered); any other gets a spare
//! superblock like the others' (written with the next update) and joins as
//! a spare, which the engine activates at once if a slot is free.

use super::{NativeMetadata, RosterEntry};
use crate::array::{Array, MemberConfig};
use crate::errno::EngineError;
use umd_formats::probe::{probe_md, Metadata, ReadAt};
use umd_formats::sb0::Superblock0;
use umd_formats::sb1::Superblock1;
use umd_formats::SECTOR_BYTES;

/// The native superblock already on a device being added.
#[derive(Debug, Clone)]
pub enum OwnSuperblock {
    /// A 1.x superblock.
    V1(Superblock1),
    /// A 0.90 superblock, found at `offset_bytes` (the end of the device).
    V0 {
        /// The superblock.
        sb: Superblock0,
        /// Where it lies.
        offset_bytes: u64,
    },
}

/// A device being added.
#[derive(Debug)]
pub struct NewDevice {
    /// The host's member index for it.
    pub member: usize,
    /// Its name (`dev-NAME`).
    pub name: String,
    /// Its size.
    pub dev_bytes: u64,
    /// The native superblock already on it ([`own_superblock`]), if any.
    pub own_sb: Option<OwnSuperblock>,
    /// Device UUID for a new spare superblock.
    pub device_uuid: [u8; 16],
}

/// The native superblock already on a device of `dev_bytes`, if any (read
/// before the host takes its locks: this is member I/O).
pub fn own_superblock(dev_bytes: u64, read: &mut ReadAt<'_>) -> Option<OwnSuperblock> {
    match probe_md(dev_bytes, read) {
        Ok(Some(Metadata::V1(sb))) => Some(OwnSuperblock::V1(sb)),
        Ok(Some(Metadata::V0_90(sb))) => {
            let offset_bytes = sb.found_at_sector?.checked_mul(SECTOR_BYTES)?;
            Some(OwnSuperblock::V0 { sb, offset_bytes })
        }
        _ => None,
    }
}

/// Add `new` to `array` and `native`. `roster` is every member the array
/// has ([`super::roster_of`]): it is recorded first, so a member removed
/// since the last superblock write frees its index now. Returns the slot
/// it was re-added into, if md's re-add applied. On an error nothing is
/// left of it in either.
pub fn hot_add(
    native: &mut NativeMetadata,
    array: &mut Array,
    roster: &[RosterEntry],
    new: NewDevice,
) -> Result<Option<u32>, EngineError> {
    native.record_roster(roster);
    let fail =
        |e: EngineError| EngineError::new(e.errno, format!("new_dev: {}: {}", new.name, e.message));
    let role = new.own_sb.as_ref().and_then(|own| match own {
        OwnSuperblock::V1(sb) => native.re_add_role(sb),
        OwnSuperblock::V0 { sb, .. } => native.re_add_role_90(sb),
    });
    let (data_offset, size) = match (role, new.own_sb) {
        (Some(_), Some(OwnSuperblock::V1(sb))) => {
            let placement = (sb.data_offset, sb.data_size);
            native.re_add(new.member, sb).map_err(fail)?;
            placement
        }
        (Some(_), Some(OwnSuperblock::V0 { sb, offset_bytes })) => {
            // 0.90 data runs from 0 up to the superblock.
            native
                .re_add_90(new.member, sb, offset_bytes)
                .map_err(fail)?;
            (0, offset_bytes / SECTOR_BYTES)
        }
        _ => {
            let placed = native
                .add_spare(new.member, new.dev_bytes, new.device_uuid)
                .map_err(fail)?;
            (placed.data_offset_sectors, placed.size_sectors)
        }
    };
    let config = MemberConfig::spare(new.name.clone(), data_offset, size);
    let added = match role {
        Some(role) => array.re_add_member(config, role).map(|_| ()),
        None => array.add_member(config),
    };
    if let Err(e) = added {
        native.forget_spare(new.member);
        return Err(e);
    }
    Ok(role)
}

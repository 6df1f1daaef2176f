//! Reducing DDF metadata to `MdInfo`: one entry per virtual disk this device is in.
//!
//! This is umd's counterpart of mdadm's `getinfo_super_ddf_bvd`: level and layout
//! come from `level.rs`, the UUID from a SHA-1 of the VD GUID, the md role of a
//! member from its position in its basic VD. `events` is the active header's
//! `seq`, as mdadm reports it (VD config `seqnum` counts per-record updates only).

use super::config::VdConfig;
use super::level;
use super::records::{PhysDisk, VirtDisk, PD_STATE_REBUILDING, UNUSED_REFNUM};
use super::sha1::sha1;
use super::{Ddf, GUID_LEN};
use crate::info::{
    ArraySide, ArrayUuid, DeviceSide, MdInfo, MetadataFormat, RosterEntry, SlotState,
};

/// Controller GUID prefix of LSI firmware, whose VD GUIDs change at every boot
/// (mdadm `vendors_with_variable_volume_UUID`; compared over 8 bytes).
const LSI_CONTROLLER_PREFIX: &[u8; 8] = b"LSI     ";
/// Bytes mdadm hashes for an LSI subarray: header GUID, VD name, VD index.
const LSI_UUID_INPUT_BYTES: usize = GUID_LEN + 18;

impl Ddf {
    /// The array UUID mdadm gives virtual disk `vd` (mdadm `uuid_of_ddf_subarray`):
    /// the first 16 bytes of SHA-1 of the VD GUID; for LSI controllers, of the
    /// container GUID, the VD name and the VD index instead.
    #[must_use]
    pub fn vd_uuid(&self, vd: &VirtDisk) -> ArrayUuid {
        let digest = if self.controller.guid.starts_with(LSI_CONTROLLER_PREFIX) {
            let mut input = [0u8; LSI_UUID_INPUT_BYTES];
            input[..GUID_LEN].copy_from_slice(&self.anchor.guid());
            input[GUID_LEN..GUID_LEN + 16].copy_from_slice(&vd.name_raw);
            // mdadm stores the index as a host-order u16; every mdadm host
            // that shipped DDF support is little-endian.
            let index = vd.index as u16;
            input[GUID_LEN + 16..].copy_from_slice(&index.to_le_bytes());
            sha1(&input)
        } else {
            sha1(&vd.guid)
        };
        uuid16(digest)
    }

    /// The container's UUID (mdadm `uuid_from_super_ddf` with no subarray):
    /// the first 16 bytes of SHA-1 of the container GUID.
    #[must_use]
    pub fn container_uuid(&self) -> ArrayUuid {
        uuid16(sha1(&self.anchor.guid()))
    }

    /// One normalized view per virtual disk this device belongs to.
    #[must_use]
    pub fn infos(&self) -> Vec<MdInfo> {
        let me = self.this_disk();
        self.virt
            .iter()
            .filter_map(|vd| {
                let config = self.newest_config_for(vd, me.refnum)?;
                Some(self.info_for(vd, config, me))
            })
            .collect()
    }

    /// The newest record on this disk for `vd` that lists `refnum`.
    fn newest_config_for(&self, vd: &VirtDisk, refnum: u32) -> Option<&VdConfig> {
        self.configs
            .iter()
            .filter(|c| c.guid == vd.guid && c.position_of(refnum).is_some())
            .max_by_key(|c| c.seqnum)
    }

    fn info_for(&self, vd: &VirtDisk, config: &VdConfig, me: &PhysDisk) -> MdInfo {
        let md = level::md_geometry(config).unwrap_or_else(|_| {
            unreachable!("configs are validated by level::md_geometry at parse time")
        });
        let position = config.position_of(me.refnum).unwrap_or(0);
        let role_base = u32::from(config.sec_elmnt_seq) * u32::from(config.prim_elmnt_count);
        let roster = config
            .phys_refnum
            .iter()
            .enumerate()
            .filter(|&(_, &r)| r != UNUSED_REFNUM)
            .map(|(pos, &r)| RosterEntry {
                dev_id: r,
                slot: slot_of(
                    self.phys.iter().find(|pd| pd.refnum == r),
                    role_base + pos as u32,
                ),
            })
            .collect();
        let in_sync = vd.is_in_sync();
        let array = ArraySide {
            uuid: self.vd_uuid(vd),
            name: vd.name(),
            level: md.level,
            layout: md.layout,
            chunk_sectors: if md.uses_chunk {
                config.chunk_sectors()
            } else {
                0
            },
            raid_disks: md.raid_disks,
            component_sectors: config.blocks,
            array_sectors: Some(config.array_blocks),
            events: u64::from(self.active.seq()),
            clean: vd.state & super::records::VD_STATE_INCONSISTENT == 0,
            resync_offset_sectors: if in_sync { u64::MAX } else { 0 },
            reshape: None,
            raid0_layout_recorded: false,
            bitmap: None,
            roster,
        };
        let device = DeviceSide {
            dev_id: me.refnum,
            slot: slot_of(Some(me), role_base + position as u32),
            data_offset_sectors: config.lba_offset[position],
            data_sectors: config.blocks,
            super_offset_sectors: self.active.lba(),
            device_uuid: None,
            replacement: false,
        };
        assert!(
            role_base + (position as u32) < md.raid_disks,
            "role within raid_disks"
        );
        MdInfo {
            format: MetadataFormat::Ddf,
            array,
            device,
        }
    }
}

/// What the physical disk record says a member in md role `role` is
/// (mdadm: in sync only if online and not failed; rebuilding = recovering).
fn slot_of(pd: Option<&PhysDisk>, role: u32) -> SlotState {
    match pd {
        Some(pd) if pd.is_working() => SlotState::Active {
            role,
            recovery_offset_sectors: (pd.state & PD_STATE_REBUILDING != 0).then_some(0),
        },
        Some(pd) if pd.is_spare() => SlotState::Spare,
        _ => SlotState::Faulty,
    }
}

fn uuid16(digest: [u8; 20]) -> ArrayUuid {
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest[..16]);
    ArrayUuid(uuid)
}

//! Choosing spares for a degraded DDF virtual disk and recording them:
//! mdadm's `ddf_activate_spare` followed by what `ddf_process_conf_update`
//! does when mdmon applies the resulting configuration update.
//!
//! Why both halves here: mdmon's manager thread chooses and its monitor thread
//! records; umd's monitor asks once and expects the metadata to say "this disk
//! now rebuilds into that slot" when it next syncs, so the handler does both.
//!
//! Choice, per missing slot in slot order: the first loaded device whose
//! physical disk is online and neither failed nor missing, that does not
//! already serve this VD, that is not a dedicated spare (umd does not read
//! spare assignment records, and mdadm skips a dedicated spare without one),
//! that has a free config slot, and whose first free extent holds the
//! component (mdadm `find_space`). A VD that has failed, or a level without
//! redundancy, gets nothing.
//!
//! Recording (mdadm `ddf_process_conf_update`, `ddf_update_vlist`,
//! `ddf_remove_failed`): the spare's refnum and offset go into the basic VD's
//! element; every failed disk is marked in transition; each loaded disk's type
//! follows its membership (in a VD: active, not a global spare, and newly
//! active disks in a degraded VD rebuilding, which also clears a failed
//! disk's transition mark; in none: a global spare); failed disks still in
//! transition that are not loaded leave the physical disk table, which is
//! compacted.
//!
//! A disk already active in another VD does not get the rebuilding mark (it
//! would degrade that VD too): mdadm behaves so, and umd records the same.

use umd_formats::ddf::level::{self, MdGeometry};
use umd_formats::ddf::{
    VdConfig, VirtDisk, GUID_LEN, PD_STATE_FAILED, PD_STATE_MISSING, PD_STATE_ONLINE,
    PD_STATE_REBUILDING, PD_STATE_TRANSITION, PD_TYPE_ACTIVE_IN_VD, PD_TYPE_GLOBAL_SPARE,
    PD_TYPE_SPARE, VD_STATE_DEGRADED, VD_STATE_MASK, VD_STATE_PART_OPTIMAL,
};

use super::{bvd_position, DdfHandler};
use crate::mon::handler::SpareAssignment;

/// raid10 layouts keep the near-copy count in the low byte; mdadm's
/// `raid10_degraded` takes the layout without its far-count bit 8 as the
/// size of a mirror group.
const RAID10_FAR_ONE_BIT: u32 = 0x100;

/// One chosen spare: (slot, device, data offset in sectors).
type Choice = (u32, usize, u64);

/// `activate_spare` for VD `index` (see the module doc).
pub(super) fn activate(h: &mut DdfHandler, index: u32, missing: &[u32]) -> Vec<SpareAssignment> {
    let Some((vd, bvds)) = h.vd(index) else {
        return Vec::new();
    };
    let Some(geo) = bvds.first().and_then(|b| level::md_geometry(b).ok()) else {
        return Vec::new();
    };
    let mut missing: Vec<u32> = missing
        .iter()
        .copied()
        .filter(|&s| s < geo.raid_disks)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() || !recoverable(geo, &missing) {
        return Vec::new();
    }
    let component = bvds[0].blocks;
    let serving: Vec<u32> = (0..geo.raid_disks)
        .filter(|s| !missing.contains(s))
        .filter_map(|s| bvd_position(&bvds, s).map(|(b, p)| bvds[b].phys_refnum[p]))
        .collect();
    let mut chosen: Vec<Choice> = Vec::new();
    for &slot in &missing {
        let found = (0..h.container.devices().len()).find_map(|disk| {
            candidate(h, disk, &serving, &chosen, component).map(|pos| (slot, disk, pos))
        });
        chosen.extend(found);
    }
    if chosen.is_empty() {
        return Vec::new();
    }
    record(h, &vd, &bvds, &chosen);
    chosen
        .into_iter()
        .map(|(slot, disk, pos)| SpareAssignment {
            disk,
            slot,
            data_offset_sectors: pos,
            size_sectors: component,
        })
        .collect()
}

/// Whether the VD still holds its data with `missing` slots gone (mdadm's
/// level switch in `ddf_activate_spare`, `raid10_degraded` for raid10).
fn recoverable(geo: MdGeometry, missing: &[u32]) -> bool {
    let n = geo.raid_disks as usize;
    let working = n - missing.len();
    match geo.level {
        1 => working > 0,
        4 | 5 => working + 1 >= n,
        6 => working + 2 >= n,
        10 => {
            let group = (geo.layout & !RAID10_FAR_ONE_BIT) as usize;
            if group == 0 {
                return false;
            }
            (0..n / group)
                .all(|g| (g * group..(g + 1) * group).any(|role| !missing.contains(&(role as u32))))
        }
        _ => false,
    }
}

/// Where device `disk` could take a component of `component` sectors, if it
/// may serve as a spare (module doc).
fn candidate(
    h: &DdfHandler,
    disk: usize,
    serving: &[u32],
    chosen: &[Choice],
    component: u64,
) -> Option<u64> {
    let c = &h.container;
    let pd = c.device_phys(disk)?;
    let usable =
        pd.state & (PD_STATE_ONLINE | PD_STATE_FAILED | PD_STATE_MISSING) == PD_STATE_ONLINE;
    if !usable
        || serving.contains(&pd.refnum)
        || chosen.iter().any(|&(_, d, _)| d == disk)
        || pd.pd_type & PD_TYPE_SPARE != 0
        || !c.has_free_slot(disk)
    {
        return None;
    }
    c.find_space(disk, component).ok()
}

/// Put the chosen spares into the basic VDs and apply mdadm's consequences
/// (module doc).
fn record(h: &mut DdfHandler, vd: &VirtDisk, bvds: &[VdConfig], chosen: &[Choice]) {
    let mut touched: Vec<([u8; GUID_LEN], u8)> = Vec::new();
    for &(slot, disk, pos) in chosen {
        let (b, p) = bvd_position(bvds, slot).expect("slots were checked against raid_disks");
        let key = (vd.guid, bvds[b].sec_elmnt_seq);
        let refnum = h.container.devices()[disk].disk_data().refnum;
        let config = h
            .container
            .bvd_mut(&key.0, key.1)
            .expect("the basic VD was just read");
        config.phys_refnum[p] = refnum;
        config.lba_offset[p] = pos;
        if !touched.contains(&key) {
            touched.push(key);
        }
    }
    for pd in h.container.phys_mut() {
        if pd.state & PD_STATE_FAILED != 0 {
            pd.state |= PD_STATE_TRANSITION;
        }
    }
    for disk in 0..h.container.devices().len() {
        update_membership(h, disk);
    }
    remove_failed(h);
    for key in touched {
        h.mark_changed(Some(key));
    }
}

/// mdadm's `ddf_update_vlist` for one loaded device.
fn update_membership(h: &mut DdfHandler, disk: usize) {
    let c = &h.container;
    let me = c.devices()[disk].disk_data().clone();
    let guids: Vec<[u8; GUID_LEN]> = c.bvds_on(me.refnum).iter().map(|(b, _)| b.guid).collect();
    let in_degraded = c.virt().iter().any(|v| {
        guids.contains(&v.guid)
            && matches!(
                v.state & VD_STATE_MASK,
                VD_STATE_DEGRADED | VD_STATE_PART_OPTIMAL
            )
    });
    let Some(pd) = h
        .container
        .phys_mut()
        .iter_mut()
        .find(|p| p.guid == me.guid)
    else {
        return;
    };
    if !guids.is_empty() {
        if pd.state & PD_STATE_FAILED != 0 {
            pd.state &= !PD_STATE_TRANSITION;
        }
        pd.pd_type &= !PD_TYPE_GLOBAL_SPARE;
        if pd.pd_type & PD_TYPE_ACTIVE_IN_VD == 0 {
            pd.pd_type |= PD_TYPE_ACTIVE_IN_VD;
            if in_degraded {
                pd.state |= PD_STATE_REBUILDING;
            }
        }
    } else if pd.pd_type & PD_TYPE_SPARE == 0 {
        pd.pd_type |= PD_TYPE_GLOBAL_SPARE;
        pd.pd_type &= !PD_TYPE_ACTIVE_IN_VD;
    }
}

/// mdadm's `ddf_remove_failed`: failed disks in transition that are not
/// loaded leave the table, and the used entries are packed from index 0.
fn remove_failed(h: &mut DdfHandler) {
    let loaded: Vec<[u8; GUID_LEN]> = h
        .container
        .devices()
        .iter()
        .map(|d| d.disk_data().guid)
        .collect();
    let phys = h.container.phys_mut();
    let before = phys.len();
    phys.retain(|p| {
        let gone = p.state & PD_STATE_FAILED != 0 && p.state & PD_STATE_TRANSITION != 0;
        !gone || loaded.contains(&p.guid)
    });
    for (i, p) in phys.iter_mut().enumerate() {
        p.index = i as u32;
    }
    assert!(phys.len() <= before, "entries only leave");
    assert!(
        loaded.iter().all(|g| phys.iter().any(|p| &p.guid == g)),
        "loaded devices keep their entries"
    );
}

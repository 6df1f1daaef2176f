//! The virtual disk of `umd create --metadata ddf`: its shape, size and
//! place on each member, and the records that describe it (mdadm's
//! `validate_geometry_ddf_bvd`, `init_super_ddf_bvd`, `add_to_super_ddf_bvd`).
//!
//! Split from `ddf.rs`, which owns the container; this file owns the rules
//! that decide where a VD's data lies: the largest extent every member has
//! free (`find_space`), mdadm's rounding, and `calc_array_size`.

use umd_formats::ddf::container::Container;
use umd_formats::ddf::{
    self, VdConfig, VirtDisk, GUID_LEN, PD_TYPE_ACTIVE_IN_VD, PD_TYPE_GLOBAL_SPARE, VD_INIT_FULL,
    VD_INIT_NOT, VD_STATE_OPTIMAL,
};

use super::ddf::{ddf_time, header_guid, DdfCreateSpec, Rng};
use super::{einval, enospc, parse_layout, CHUNK_KIB_DEFAULT, SECTORS_PER_KIB};
use crate::errno::{EngineError, Errno};

/// Longest VD name: 16 bytes in the VD record (formats.md §5.1).
pub(super) const VD_NAME_MAX: usize = 16;
/// mdadm rounds a raid1 component to 64 KiB so a later reshape to raid5 has
/// whole chunks (`Create.c`).
const RAID1_ROUND_SECTORS: u64 = 128;
/// chunk_shift mdadm writes for levels without chunks: `ffs(0) - 1` as a byte.
const NO_CHUNK_SHIFT: u8 = 0xff;
/// The smallest chunk md stripes with, KiB.
const CHUNK_KIB_MIN: u32 = 4;

/// The new virtual disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdfVdPlan {
    /// Its index in the VD table: mdadm's subarray number.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Sectors per member.
    pub component_sectors: u64,
    /// Sectors of the array (the record's `array_blocks`).
    pub array_sectors: u64,
    /// Where its data starts on each member, in sectors.
    pub data_offset_sectors: Vec<u64>,
    /// Whether it is recorded fully initialised.
    pub clean: bool,
}

/// What the VD's shape resolves to.
#[derive(Debug, Clone, Copy)]
struct VdShape {
    level: i32,
    layout: u32,
    chunk_sectors: u64,
    codes: ddf::DdfLevel,
}

/// Level, layout and chunk for a DDF VD, with mdadm's DDF defaults
/// (`ddf_level_to_layout`: left-symmetric raid5, rotating N-continue raid6,
/// near-2 raid10; chunk 512 KiB except raid1).
fn vd_shape(spec: &DdfCreateSpec, level: i32) -> Result<VdShape, EngineError> {
    if level == -1 {
        return Err(EngineError::new(
            Errno::EOPNOTSUPP,
            "--level linear: mdadm records no array size for DDF concatenations; \
             umd does not create them",
        ));
    }
    let layout = match (&spec.layout, level) {
        (Some(name), 1) => return Err(einval(format!("--layout {name}: raid1 has no layouts"))),
        (Some(name), _) => parse_layout(level, name)?,
        (None, 5) => ddf::level::MD_LEFT_SYMMETRIC,
        (None, 6) => ddf::level::MD_ROTATING_N_CONTINUE,
        (None, 10) => ddf::level::MD_RAID10_NEAR2,
        (None, _) => 0,
    };
    let codes = ddf::ddf_level(level, layout, spec.raid_disks).map_err(|why| {
        einval(format!(
            "level {level} layout {layout:#x} over {} members: {why}",
            spec.raid_disks
        ))
    })?;
    let chunk_kib = match (spec.chunk_kib, level) {
        (Some(_), 1) => return Err(einval("--chunk: raid1 has no chunk size")),
        (Some(k), _) => k,
        (None, 1) => 0,
        (None, _) => CHUNK_KIB_DEFAULT,
    };
    if level != 1 && (chunk_kib < CHUNK_KIB_MIN || !chunk_kib.is_power_of_two()) {
        return Err(einval(format!(
            "--chunk {chunk_kib}: must be a power of two of at least {CHUNK_KIB_MIN} KiB"
        )));
    }
    Ok(VdShape {
        level,
        layout,
        chunk_sectors: u64::from(chunk_kib) * SECTORS_PER_KIB,
        codes,
    })
}

/// The array's sectors from the component size: mdadm's `calc_array_size`,
/// except for raid10, where it is md's own `raid10_size` (whole chunks, far
/// copies, then near copies). The two agree for every raid10 mdadm describes
/// as spanned mirrors; for RAID1E over an odd number of members mdadm's
/// formula undercounts, and the kernel ignores the record when mdadm
/// assembles a DDF container (it serves md's size), so umd records that.
fn array_sectors(shape: &VdShape, raid_disks: u32, component: u64) -> u64 {
    if shape.level == 1 {
        return component;
    }
    let chunk = shape.chunk_sectors.max(1);
    let rounded = component - component % chunk;
    let n = u64::from(raid_disks);
    if shape.level == 10 {
        let near = u64::from(shape.layout & 0xff).max(1);
        let far = u64::from((shape.layout >> 8) & 0xff).max(1);
        return rounded / chunk / far * n / near * chunk;
    }
    let data_disks = match shape.level {
        0 => n,
        4 | 5 => n - 1,
        6 => n - 2,
        _ => 0,
    };
    data_disks * rounded
}

/// The chunk_shift mdadm records (`chunk_to_shift`): log2 of the chunk in
/// sectors, all ones without a chunk.
fn chunk_shift(chunk_sectors: u64) -> u8 {
    if chunk_sectors == 0 {
        return NO_CHUNK_SHIFT;
    }
    assert!(chunk_sectors.is_power_of_two(), "checked by vd_shape");
    chunk_sectors.trailing_zeros() as u8
}

/// The component size every member can give: `--size`, else the largest
/// free extent common to all, rounded to the chunk (raid1: to 64 KiB).
fn component_sectors(
    spec: &DdfCreateSpec,
    shape: &VdShape,
    largest_free: &[u64],
) -> Result<u64, EngineError> {
    let round = if shape.level == 1 {
        RAID1_ROUND_SECTORS
    } else {
        shape.chunk_sectors
    };
    let sectors = if let Some(kib) = spec.size_kib {
        let want = kib
            .checked_mul(SECTORS_PER_KIB)
            .ok_or_else(|| einval("--size too large"))?;
        want - want % shape.chunk_sectors.max(1)
    } else {
        let common = largest_free.iter().copied().min().unwrap_or(0);
        common - common % round.max(1)
    };
    if sectors == 0 {
        return Err(enospc(format!(
            "no space for a virtual disk: the members have {} KiB free in common",
            largest_free.iter().copied().min().unwrap_or(0) / SECTORS_PER_KIB
        )));
    }
    Ok(sectors)
}

/// The VD record mdadm's `init_super_ddf_bvd` makes (state optimal once
/// every member is added).
fn new_virt_disk(
    index: u32,
    guid: [u8; GUID_LEN],
    container_guid: &[u8; GUID_LEN],
    name: &str,
    clean: bool,
) -> VirtDisk {
    let mut name_raw = [0u8; VD_NAME_MAX];
    name_raw[..name.len()].copy_from_slice(name.as_bytes());
    VirtDisk {
        index,
        guid,
        unit: index as u16,
        guid_crc: ddf::vd_guid_crc(container_guid),
        vd_type: 0,
        state: VD_STATE_OPTIMAL,
        init_state: if clean { VD_INIT_FULL } else { VD_INIT_NOT },
        name_raw,
    }
}

/// One basic VD's record: elements `refnums` at `offsets`; mdadm bumps a new
/// record's `seqnum` (1) once per member added.
fn new_bvd(
    vd: &VirtDisk,
    shape: &VdShape,
    seq: u8,
    component: u64,
    array: u64,
    elements: (&[u32], &[u64]),
    timestamp: u32,
) -> VdConfig {
    let (refnums, offsets) = elements;
    assert_eq!(refnums.len(), offsets.len(), "one offset per element");
    VdConfig {
        slot: 0,
        guid: vd.guid,
        timestamp,
        seqnum: 1 + refnums.len() as u32,
        prim_elmnt_count: shape.codes.prim_elmnt_count,
        chunk_shift: chunk_shift(shape.chunk_sectors),
        prl: shape.codes.prl,
        rlq: shape.codes.rlq,
        sec_elmnt_count: shape.codes.sec_elmnt_count,
        sec_elmnt_seq: seq,
        srl: shape.codes.srl,
        blocks: component,
        array_blocks: array,
        phys_refnum: refnums.to_vec(),
        lba_offset: offsets.to_vec(),
    }
}

/// Members join a VD: no longer global spares, active in a VD.
fn mark_members_active(c: &mut Container, refnums: &[u32]) {
    for pd in c
        .phys_mut()
        .iter_mut()
        .filter(|p| refnums.contains(&p.refnum))
    {
        pd.pd_type &= !PD_TYPE_GLOBAL_SPARE;
        pd.pd_type |= PD_TYPE_ACTIVE_IN_VD;
    }
}

/// Add the VD `spec` asks for to `c`: shape, name, VD index, the space on
/// every member, the VD entry and its basic VDs, and the members' new type.
pub(super) fn add_vd(
    spec: &DdfCreateSpec,
    level: i32,
    c: &mut Container,
    rng: &mut Rng,
) -> Result<DdfVdPlan, EngineError> {
    let shape = vd_shape(spec, level)?;
    let index = free_vd_index(c)?;
    let name = vd_name(spec, c, index)?;
    let disks = member_disks(spec, c)?;
    let largest: Vec<u64> = disks
        .iter()
        .map(|&d| c.find_space(d, u64::MAX).err().unwrap_or(0))
        .collect();
    let component = component_sectors(spec, &shape, &largest)?;
    let mut offsets = Vec::with_capacity(disks.len());
    for (m, &d) in spec.members.iter().zip(&disks) {
        let at = c.find_space(d, component).map_err(|largest| {
            enospc(format!(
                "{}: no free extent of {} KiB (largest {} KiB)",
                m.name,
                component / SECTORS_PER_KIB,
                largest / SECTORS_PER_KIB
            ))
        })?;
        offsets.push(at);
    }
    let refnums: Vec<u32> = disks
        .iter()
        .map(|&d| c.devices()[d].disk_data().refnum)
        .collect();
    let clean = spec.assume_clean || level == 0;
    let container_guid = c.devices()[0].container_guid();
    let vd = new_virt_disk(
        index,
        header_guid(rng, spec.now_unix_s),
        &container_guid,
        &name,
        clean,
    );
    let array = array_sectors(&shape, spec.raid_disks, component);
    let prim = usize::from(shape.codes.prim_elmnt_count);
    let now = ddf_time(spec.now_unix_s);
    let bvds: Vec<VdConfig> = (0..shape.codes.sec_elmnt_count)
        .map(|seq| {
            let range = usize::from(seq) * prim..(usize::from(seq) + 1) * prim;
            let elements = (&refnums[range.clone()], &offsets[range]);
            new_bvd(&vd, &shape, seq, component, array, elements, now)
        })
        .collect();
    assert_eq!(
        bvds.len() * prim,
        refnums.len(),
        "every member is in one basic VD"
    );
    c.virt_mut().push(vd);
    c.add_bvds(bvds);
    mark_members_active(c, &refnums);
    Ok(DdfVdPlan {
        index,
        name,
        component_sectors: component,
        array_sectors: array,
        data_offset_sectors: offsets,
        clean,
    })
}

/// The first unused entry of the VD table (mdadm `find_unused_vde`).
fn free_vd_index(c: &Container) -> Result<u32, EngineError> {
    let max = u32::from(c.devices()[0].header().max_vd_entries());
    (0..max)
        .find(|i| !c.virt().iter().any(|v| v.index == *i))
        .ok_or_else(|| enospc(format!("the container already holds {max} virtual disks")))
}

/// `--name`, or "umdN"; at most 16 bytes, unique in the container (mdadm
/// `find_vde_by_name`).
fn vd_name(spec: &DdfCreateSpec, c: &Container, index: u32) -> Result<String, EngineError> {
    let name = spec.name.clone().unwrap_or_else(|| format!("umd{index}"));
    if name.is_empty() || name.len() > VD_NAME_MAX || name.contains(['\0', ' ']) {
        return Err(einval(format!(
            "--name {name:?}: 1 to {VD_NAME_MAX} bytes, no space or NUL"
        )));
    }
    if c.virt().iter().any(|v| v.name() == name) {
        return Err(EngineError::new(
            Errno::EEXIST,
            format!("the container already has a virtual disk called {name:?}"),
        ));
    }
    Ok(name)
}

/// The container device of each member (same order), each able to take one
/// more virtual disk.
fn member_disks(spec: &DdfCreateSpec, c: &Container) -> Result<Vec<usize>, EngineError> {
    assert_eq!(
        c.devices().len(),
        spec.members.len(),
        "one device per member"
    );
    let mut out = Vec::with_capacity(spec.members.len());
    for (d, m) in spec.members.iter().enumerate() {
        if c.used_extents(d).is_none() {
            return Err(einval(format!(
                "{}: its physical disk is not online (failed or missing)",
                m.name
            )));
        }
        if !c.has_free_slot(d) {
            return Err(enospc(format!(
                "{}: no free configuration slot (it serves {} virtual disks)",
                m.name,
                c.bvds_on(c.devices()[d].disk_data().refnum).len()
            )));
        }
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_sizes_follow_calc_array_size() {
        let shape = |level, layout, chunk, n| VdShape {
            level,
            layout,
            chunk_sectors: chunk,
            codes: ddf::ddf_level(level, layout, n).expect("ok"),
        };
        assert_eq!(
            array_sectors(&shape(5, 2, 1024, 4), 4, 8192 + 100),
            3 * 8192
        );
        assert_eq!(array_sectors(&shape(6, 10, 1024, 4), 4, 8192), 2 * 8192);
        assert_eq!(array_sectors(&shape(10, 0x102, 1024, 4), 4, 8192), 2 * 8192);
        // RAID1E over three: md serves 1.5 members' worth (mdadm records 1).
        assert_eq!(array_sectors(&shape(10, 0x102, 1024, 3), 3, 8192), 12288);
        assert_eq!(array_sectors(&shape(10, 0x201, 1024, 3), 3, 8192), 12288);
        assert_eq!(array_sectors(&shape(1, 0, 0, 2), 2, 777), 777);
        assert_eq!(chunk_shift(1024), 10);
        assert_eq!(chunk_shift(0), 0xff);
    }
}

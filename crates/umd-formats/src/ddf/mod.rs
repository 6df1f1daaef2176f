//! SNIA DDF metadata as mdadm writes it: find it on a device, check it, and
//! reduce it to `MdInfo`.
//!
//! DDF is a container format (formats.md §5.1): one set of global tables
//! (controller, physical disks, virtual disks) shared by all members, plus per-disk
//! configuration records saying which virtual disks this disk serves and where.
//! [`probe`] reads everything through the caller's read function and returns a
//! [`Ddf`] only if every magic and CRC checks out; [`Ddf::infos`] then gives one
//! `MdInfo` per virtual disk this device is a member of. [`Ddf::write_metadata`]
//! serialises it back, every structure resealed, for both header copies.
//!
//! [`Container`] views all devices of one container together, as mdadm and
//! mdmon do, and [`Ddf::new_device`] lays out a new container's metadata.
//!
//! Files: `header.rs` (anchor and header copies), `records.rs` (controller, PD and
//! VD tables, disk_data), `config.rs` (VD configuration records), `level.rs`
//! (DDF level codes to md level/layout), `load.rs` (reading and choosing copies),
//! `mdinfo.rs` (the `MdInfo` view), `write.rs` (edits and serialisation),
//! `edit.rs` (adding and removing records), `build.rs` (new metadata),
//! `container.rs` (all devices of a container), `crc.rs`, `sha1.rs`.

pub mod build;
mod config;
pub mod container;
mod crc;
mod edit;
mod header;
pub mod level;
mod load;
mod mdinfo;
mod records;
mod sha1;
mod write;

pub use build::{probe_writes, BuildError, NewContainer};
pub use config::{VdConfig, SPARE_ASSIGN_MAGIC, VD_CONF_MAGIC};
pub use container::{Container, ContainerError, Extent};
pub use crc::{ddf_crc, vd_guid_crc};
pub use header::{
    Header, HeaderType, SectionKind, SectionLocation, HEADER_MAGIC, NO_SECONDARY_LBA, REVISION_0,
    REVISION_2,
};
pub use level::{ddf_level, md_geometry, DdfLevel, MdGeometry};
pub use load::AnchorSearch;
pub use records::{
    Controller, DiskData, PhysDisk, VirtDisk, CONTROLLER_MAGIC, PD_PATH_MDADM, PD_STATE_FAILED,
    PD_STATE_MISSING, PD_STATE_ONLINE, PD_STATE_READ_ERRORS, PD_STATE_REBUILDING, PD_STATE_SMART,
    PD_STATE_TRANSITION, PD_TYPE_ACTIVE_IN_VD, PD_TYPE_FORCED_GUID, PD_TYPE_FOREIGN,
    PD_TYPE_GLOBAL_SPARE, PD_TYPE_LEGACY, PD_TYPE_SPARE, PHYS_DATA_MAGIC, PHYS_RECORDS_MAGIC,
    VD_INIT_FULL, VD_INIT_MASK, VD_INIT_NOT, VD_INIT_QUICK, VD_STATE_DEGRADED, VD_STATE_DELETED,
    VD_STATE_FAILED, VD_STATE_INCONSISTENT, VD_STATE_MASK, VD_STATE_MISSING, VD_STATE_MORPHING,
    VD_STATE_OPTIMAL, VD_STATE_PART_OPTIMAL, VIRT_RECORDS_MAGIC,
};

use crate::probe::{ProbeError, ReadAt};

/// Length of every DDF GUID (formats.md §5.1, mdadm `DDF_GUID_LEN`).
pub const GUID_LEN: usize = 24;

/// Validated DDF metadata as seen from one device: every structure of the header
/// copy in use, with its magic and CRC checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ddf {
    anchor: Header,
    active: Header,
    notes: Vec<String>,
    controller: Controller,
    phys: Vec<PhysDisk>,
    virt: Vec<VirtDisk>,
    configs: Vec<VdConfig>,
    disk_data: DiskData,
    /// Index into `phys` of this device's entry; always valid (checked at load).
    this_pd: usize,
    /// Verified bytes the typed fields do not hold, for a faithful rewrite.
    kept: write::Kept,
}

impl Ddf {
    /// The anchor header from the device's last sector.
    #[must_use]
    pub fn anchor(&self) -> &Header {
        &self.anchor
    }
    /// The header copy whose sections were loaded (primary unless unusable or
    /// older, see [`Ddf::notes`]).
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.active
    }
    /// Remarks about the load, e.g. "primary copy bad, used the secondary".
    #[must_use]
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
    /// The container GUID (the anchor's).
    #[must_use]
    pub fn container_guid(&self) -> [u8; GUID_LEN] {
        self.anchor.guid()
    }
    /// Controller data.
    #[must_use]
    pub fn controller(&self) -> &Controller {
        &self.controller
    }
    /// The controller record's vendor bytes as stored (mdadm keeps the home
    /// host there): what a disk added to the container copies.
    #[must_use]
    pub fn controller_vendor_data(&self) -> &[u8] {
        records::controller_vendor_data(&self.kept.sections.controller)
    }
    /// The table capacities of this device's header copy: physical disk
    /// entries, virtual disk entries, configuration records per disk, and
    /// elements per basic VD. A disk added to a container must have the
    /// same, or the tables could not be shared.
    #[must_use]
    pub fn table_capacities(&self) -> [u32; 4] {
        let h = &self.active;
        [
            u32::from(h.max_pd_entries()),
            u32::from(h.max_vd_entries()),
            u32::from(h.max_partitions()),
            u32::from(h.max_primary_element_entries()),
        ]
    }
    /// Used entries of the physical disk table, in table order.
    #[must_use]
    pub fn phys_disks(&self) -> &[PhysDisk] {
        &self.phys
    }
    /// Used entries of the virtual disk table, in table order.
    #[must_use]
    pub fn virt_disks(&self) -> &[VirtDisk] {
        &self.virt
    }
    /// The VD configuration records on this device, in slot order.
    #[must_use]
    pub fn configs(&self) -> &[VdConfig] {
        &self.configs
    }
    /// This device's disk_data.
    #[must_use]
    pub fn disk_data(&self) -> &DiskData {
        &self.disk_data
    }
    /// This device's entry in the physical disk table.
    #[must_use]
    pub fn this_disk(&self) -> &PhysDisk {
        &self.phys[self.this_pd]
    }
}

/// Look for DDF metadata on a device of `dev_bytes` bytes, in the last sector
/// only (mdadm's default). `Ok(None)`: no anchor there.
pub fn probe(dev_bytes: u64, read: &mut ReadAt<'_>) -> Result<Option<Ddf>, ProbeError> {
    load::probe(dev_bytes, read, AnchorSearch::LastSector)
}

/// Like [`probe`], choosing where to look for the anchor.
pub fn probe_with(
    dev_bytes: u64,
    read: &mut ReadAt<'_>,
    search: AnchorSearch,
) -> Result<Option<Ddf>, ProbeError> {
    load::probe(dev_bytes, read, search)
}

/// Size of the virtual device the fuzz entry builds: just over the 32 MiB
/// minimum, so the tail can hold a whole mdadm layout.
const FUZZ_DEV_BYTES: u64 = load::DDF_REGION_BYTES * 2;

/// Treat `data` as the last bytes of a device (zeros before it) and probe it,
/// with and without the anchor search. Must never panic.
pub(crate) fn fuzz_entry(data: &[u8]) {
    let tail = &data[data.len().saturating_sub(FUZZ_DEV_BYTES as usize)..];
    let tail_start = FUZZ_DEV_BYTES - tail.len() as u64;
    // A virtual device: zeros, with `data` as its last bytes. Whole-range
    // copies keep the extended anchor scan (32 MiB) fast enough to fuzz.
    let mut read = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        buf.fill(0);
        let end = offset.saturating_add(buf.len() as u64).min(FUZZ_DEV_BYTES);
        let from = offset.max(tail_start);
        if from < end {
            let dst = &mut buf[(from - offset) as usize..(end - offset) as usize];
            dst.copy_from_slice(&tail[(from - tail_start) as usize..(end - tail_start) as usize]);
        }
        Ok(())
    };
    for search in [AnchorSearch::LastSector, AnchorSearch::Extended] {
        if let Ok(Some(ddf)) = load::probe(FUZZ_DEV_BYTES, &mut read, search) {
            let _ = ddf.infos();
            // Whatever parses must also serialise without panicking.
            let _ = ddf.write_metadata();
        }
    }
}

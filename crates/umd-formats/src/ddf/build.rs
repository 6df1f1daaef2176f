//! New DDF metadata for one device of a new container, laid out as mdadm lays
//! it out (`init_super_ddf`, `add_to_super_ddf`, `_write_super_to_disk`).
//!
//! Why mdadm's layout and not just any valid one: mdadm and mdmon must take a
//! container umd made for one of their own, and the metadata region must sit
//! where mdadm would look for free space later (formats.md §5.1). The region
//! is the last 32 MiB of the device: the secondary copy and the workspace
//! start 32 MiB before the end, the primary copy 16 MiB before it, the anchor
//! is the last sector, and data may use everything before the region.
//!
//! The new metadata is produced as bytes and then read back through the
//! ordinary loader, so a built [`Ddf`] is checked exactly like one read from
//! a disk (style R6: validate after serialising).

use std::collections::BTreeMap;
use std::fmt;

use super::header::{Header, HeaderType, NewHeaderFields, SectionKind, SectionLocation};
use super::load::{self, AnchorSearch};
use super::records::{self, Controller, DiskData, PhysDisk, Table};
use super::{Ddf, GUID_LEN};
use crate::probe::ProbeError;
use crate::SECTOR_BYTES;

/// Physical disk entries mdadm provides (`init_super_ddf`: "should be enough").
pub const MAX_PD_ENTRIES: u16 = 1023;
/// Virtual disk entries mdadm provides.
pub const MAX_VD_ENTRIES: u16 = 255;
/// Configuration records per disk mdadm provides (`max_partitions`).
pub const MAX_PARTITIONS: u16 = 64;
/// Elements per basic VD mdadm provides (`max_primary_element_entries`).
pub const MAX_PRIMARY_ELEMENTS: u16 = 256;
/// Bytes of one element of a configuration record: refnum (4) and LBA (8).
const ELEMENT_BYTES: u64 = 12;
/// Sectors of one configuration record: one fixed sector plus the elements
/// (mdadm: `1 + ROUND_UP(mppe * 12, 512) / 512`).
pub const CONFIG_RECORD_SECTORS: u16 =
    (1 + (MAX_PRIMARY_ELEMENTS as u64 * ELEMENT_BYTES).div_ceil(SECTOR_BYTES)) as u16;
/// Sectors the workspace spans (mdadm: "at least 32768").
pub const WORKSPACE_SECTORS: u32 = 32 * 1024;
/// The metadata region at the end of every device: 32 MiB, which mdadm
/// reserves (`avail_size_ddf`); data may use what lies before it.
pub const RESERVED_SECTORS: u64 = 32 * 1024 * 2;
/// The primary copy starts 16 MiB before the end (mdadm `add_to_super_ddf`).
const PRIMARY_FROM_END_SECTORS: u64 = 16 * 1024 * 2;
/// The secondary copy and the workspace start 32 MiB before the end.
const SECONDARY_FROM_END_SECTORS: u64 = RESERVED_SECTORS;
/// Table entries are 64 bytes after a 64-byte head (formats.md §5.1).
const TABLE_ENTRY_BYTES: u64 = 64;

/// Sectors of the physical disk records section.
const PHYS_SECTORS: u32 =
    ((1 + MAX_PD_ENTRIES as u64) * TABLE_ENTRY_BYTES).div_ceil(SECTOR_BYTES) as u32;
/// Sectors of the virtual disk records section.
const VIRT_SECTORS: u32 =
    ((1 + MAX_VD_ENTRIES as u64) * TABLE_ENTRY_BYTES).div_ceil(SECTOR_BYTES) as u32;
/// Sectors of the config section: `max_partitions + 1` records (the last slot
/// is mdadm's place for a spare assignment record).
const CONFIG_SECTORS: u32 = CONFIG_RECORD_SECTORS as u32 * (MAX_PARTITIONS as u32 + 1);
/// Section offsets from the header: controller right after it, then the
/// tables, the config records and disk_data (mdadm `init_super_ddf`).
const CONTROLLER_AT: u32 = 1;
const PHYS_AT: u32 = CONTROLLER_AT + 1;
const VIRT_AT: u32 = PHYS_AT + PHYS_SECTORS;
const CONFIG_AT: u32 = VIRT_AT + VIRT_SECTORS;
const DATA_AT: u32 = CONFIG_AT + CONFIG_SECTORS;
/// Sectors one header copy and its sections span.
const COPY_SECTORS: u64 = DATA_AT as u64 + 1;

// The layout of the real mdadm images (dissect.volume set, formats.md §5.1).
const _: () = assert!(CONFIG_RECORD_SECTORS == 7);
const _: () = assert!(PHYS_SECTORS == 128 && VIRT_SECTORS == 32);
const _: () = assert!(CONFIG_AT == 162 && DATA_AT == 617);
// The table lengths are ones mdadm's loader accepts (2, 8, 32, 128 or 512).
const _: () = assert!(matches!(PHYS_SECTORS, 2 | 8 | 32 | 128 | 512));
const _: () = assert!(matches!(VIRT_SECTORS, 2 | 8 | 32 | 128 | 512));
// Both copies fit in the region without overlapping each other or the anchor.
const _: () = assert!(SECONDARY_FROM_END_SECTORS - PRIMARY_FROM_END_SECTORS >= COPY_SECTORS);
const _: () = assert!(PRIMARY_FROM_END_SECTORS > COPY_SECTORS + 1);

/// Why new metadata cannot be built for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The device is 32 MiB or smaller: no room for data beside the region.
    TooSmall {
        /// Its size in bytes.
        dev_bytes: u64,
    },
    /// The size is not a whole number of sectors (mdadm refuses it too).
    OddSize {
        /// Its size in bytes.
        dev_bytes: u64,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { dev_bytes } => write!(
                f,
                "{dev_bytes} bytes is too small for DDF (more than {} MiB needed)",
                (RESERVED_SECTORS * SECTOR_BYTES) >> 20
            ),
            Self::OddSize { dev_bytes } => {
                write!(f, "{dev_bytes} bytes is not a whole number of sectors")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// What every device of a new container shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContainer {
    /// The container GUID (header and anchor).
    pub guid: [u8; GUID_LEN],
    /// Controller data (GUID, PCI ids, product id).
    pub controller: Controller,
    /// Vendor bytes of the controller data; mdadm stores the home host,
    /// NUL-terminated (at most 448 bytes are kept).
    pub vendor_data: Vec<u8>,
    /// Update sequence number of the header copies.
    pub seq: u32,
    /// Header time stamp, seconds since 1980-01-01.
    pub timestamp: u32,
}

/// Sectors a device of `dev_bytes` offers for data: everything before the
/// reserved region (mdadm `_set_config_size`), or why it offers none.
pub fn config_size_sectors(dev_bytes: u64) -> Result<u64, BuildError> {
    if !dev_bytes.is_multiple_of(SECTOR_BYTES) {
        return Err(BuildError::OddSize { dev_bytes });
    }
    let sectors = dev_bytes / SECTOR_BYTES;
    if sectors <= RESERVED_SECTORS {
        return Err(BuildError::TooSmall { dev_bytes });
    }
    Ok(sectors - RESERVED_SECTORS)
}

/// The physical disk entry mdadm's `add_to_super_ddf` makes for a new disk:
/// forced GUID and global spare, online, data space up to the region.
pub fn new_phys_disk(
    index: u32,
    guid: [u8; GUID_LEN],
    refnum: u32,
    dev_bytes: u64,
) -> Result<PhysDisk, BuildError> {
    Ok(PhysDisk {
        index,
        guid,
        refnum,
        pd_type: records::PD_TYPE_FORCED_GUID | records::PD_TYPE_GLOBAL_SPARE,
        state: records::PD_STATE_ONLINE,
        config_size_sectors: config_size_sectors(dev_bytes)?,
        path: records::PD_PATH_MDADM,
    })
}

/// Header fields of a device of `dev_sectors` in `container`.
fn header_fields(container: &NewContainer, dev_sectors: u64) -> NewHeaderFields {
    let loc = |offset_sectors, len_sectors| {
        Some(SectionLocation {
            offset_sectors,
            len_sectors,
        })
    };
    let mut sections = [None; super::header::SECTION_COUNT];
    sections[SectionKind::Controller as usize] = loc(CONTROLLER_AT, 1);
    sections[SectionKind::PhysRecords as usize] = loc(PHYS_AT, PHYS_SECTORS);
    sections[SectionKind::VirtRecords as usize] = loc(VIRT_AT, VIRT_SECTORS);
    sections[SectionKind::Config as usize] = loc(CONFIG_AT, CONFIG_SECTORS);
    sections[SectionKind::DiskData as usize] = loc(DATA_AT, 1);
    NewHeaderFields {
        guid: container.guid,
        seq: container.seq,
        timestamp: container.timestamp,
        primary_lba: dev_sectors - PRIMARY_FROM_END_SECTORS,
        secondary_lba: dev_sectors - SECONDARY_FROM_END_SECTORS,
        workspace_lba: dev_sectors - SECONDARY_FROM_END_SECTORS,
        workspace_len_sectors: WORKSPACE_SECTORS,
        max_pd_entries: MAX_PD_ENTRIES,
        max_vd_entries: MAX_VD_ENTRIES,
        max_partitions: MAX_PARTITIONS,
        config_record_len_sectors: CONFIG_RECORD_SECTORS,
        max_primary_element_entries: MAX_PRIMARY_ELEMENTS,
        sections,
    }
}

/// Every structure of a new device as (byte offset, bytes): both copies,
/// each with its sections, then the anchor.
fn new_device_writes(
    container: &NewContainer,
    phys: &[PhysDisk],
    disk: &DiskData,
    dev_sectors: u64,
) -> Vec<(u64, Vec<u8>)> {
    let fields = header_fields(container, dev_sectors);
    let controller = records::new_controller(&container.controller, &container.vendor_data);
    let section_bytes = |sectors: u32| sectors as usize * SECTOR_BYTES as usize;
    let mut phys_table =
        records::new_table(Table::Phys, section_bytes(PHYS_SECTORS), MAX_PD_ENTRIES);
    records::set_table_used(&mut phys_table, phys.len());
    let phys_table = records::write_phys(phys, &phys_table);
    let virt_table = records::new_table(Table::Virt, section_bytes(VIRT_SECTORS), MAX_VD_ENTRIES);
    let config = vec![records::FILL; section_bytes(CONFIG_SECTORS)];
    let disk_data = records::new_disk_data(disk);
    let mut out = Vec::new();
    for (kind, lba) in [
        (HeaderType::Primary, fields.primary_lba),
        (HeaderType::Secondary, fields.secondary_lba),
    ] {
        let at = |offset: u32| (lba + u64::from(offset)) * SECTOR_BYTES;
        out.push((at(CONTROLLER_AT), controller.clone()));
        out.push((at(PHYS_AT), phys_table.clone()));
        out.push((at(VIRT_AT), virt_table.clone()));
        out.push((at(CONFIG_AT), config.clone()));
        out.push((at(DATA_AT), disk_data.clone()));
        let header = Header::new_mdadm(&fields, kind, lba);
        out.push((lba * SECTOR_BYTES, header.sealed_bytes()));
    }
    let anchor_lba = dev_sectors - 1;
    let anchor = Header::new_mdadm(&fields, HeaderType::Anchor, anchor_lba);
    out.push((anchor_lba * SECTOR_BYTES, anchor.sealed_bytes()));
    out
}

impl Ddf {
    /// The metadata of one device of the new `container`: the physical disk
    /// table `phys` (shared by every device; it must hold this device's
    /// entry, whose GUID is `disk.guid`), no virtual disk, every config slot
    /// unused. The next [`Ddf::write_metadata`] writes the whole config
    /// section, so records of an earlier container on the device vanish.
    pub fn new_device(
        container: &NewContainer,
        phys: &[PhysDisk],
        disk: &DiskData,
        dev_bytes: u64,
    ) -> Result<Ddf, BuildError> {
        config_size_sectors(dev_bytes)?;
        assert!(
            phys.iter()
                .any(|p| p.guid == disk.guid && p.refnum == disk.refnum),
            "the table holds this device's entry"
        );
        let writes = new_device_writes(container, phys, disk, dev_bytes / SECTOR_BYTES);
        let mut ddf = match probe_writes(dev_bytes, &writes) {
            Ok(Some(ddf)) => ddf,
            Ok(None) => unreachable!("the anchor was just written"),
            Err(e) => unreachable!("freshly built DDF metadata is valid: {e}"),
        };
        assert!(ddf.notes().is_empty(), "both copies were written");
        assert_eq!(ddf.this_disk().refnum, disk.refnum, "this device's entry");
        ddf.kept.rewrite_config_section = true;
        Ok(ddf)
    }
}

/// Probe a device of `dev_bytes` that holds only `writes` (zeros elsewhere):
/// how a caller checks metadata it is about to write.
pub fn probe_writes(dev_bytes: u64, writes: &[(u64, Vec<u8>)]) -> Result<Option<Ddf>, ProbeError> {
    let blocks: BTreeMap<u64, &[u8]> = writes.iter().map(|(o, b)| (*o, b.as_slice())).collect();
    let mut read = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        buf.fill(0);
        let end = offset + buf.len() as u64;
        for (&at, bytes) in blocks.range(..end) {
            let stop = at + bytes.len() as u64;
            if stop <= offset {
                continue;
            }
            let from = at.max(offset);
            let to = stop.min(end);
            let src = &bytes[(from - at) as usize..(to - at) as usize];
            buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
        }
        Ok(())
    };
    load::probe(dev_bytes, &mut read, AnchorSearch::LastSector)
}

//! The global DDF sections (controller data, physical and virtual disk records)
//! and this disk's own disk_data: byte layouts, checks and decoded views.
//!
//! The global sections are identical on every member; disk_data is local and says
//! which physical disk entry "this" device is (formats.md §5.1). Each parser
//! checks magic and CRC; the loader keeps the verified bytes, and the `write_*`
//! functions here lay the decoded fields back over them and reseal the CRC, so
//! reserved, padding and vendor bytes survive a rewrite unchanged.

use core::mem::{offset_of, size_of};

use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{crc, GUID_LEN};
use crate::error::{FormatError, Problem};

/// Controller data magic (formats.md §5.1, mdadm `DDF_CONTROLLER_MAGIC`).
pub const CONTROLLER_MAGIC: u32 = 0xAD11_1111;
/// Physical disk records magic (formats.md §5.1, mdadm `DDF_PHYS_RECORDS_MAGIC`).
pub const PHYS_RECORDS_MAGIC: u32 = 0x2222_2222;
/// Disk data magic (formats.md §5.1, mdadm `DDF_PHYS_DATA_MAGIC`). mdadm 3.1
/// (2010, util-linux's ddf-raid.img) also wrote it at the head of the physical
/// disk records; mdadm never checks that magic, so we accept it there too.
pub const PHYS_DATA_MAGIC: u32 = 0x3333_3333;
/// Virtual disk records magic (formats.md §5.1, mdadm `DDF_VIRT_RECORDS_MAGIC`).
pub const VIRT_RECORDS_MAGIC: u32 = 0xDDDD_DDDD;
/// Unused physical disk entry: refnum all ones (mdadm checks `refnum == 0xffffffff`).
pub(crate) const UNUSED_REFNUM: u32 = u32::MAX;

/// PD type bit: GUID was forced (mdadm `DDF_Forced_PD_GUID`).
pub const PD_TYPE_FORCED_GUID: u16 = 1;
/// PD type bit: member of a virtual disk (mdadm `DDF_Active_in_VD`).
pub const PD_TYPE_ACTIVE_IN_VD: u16 = 2;
/// PD type bit: global spare (mdadm `DDF_Global_Spare`).
pub const PD_TYPE_GLOBAL_SPARE: u16 = 4;
/// PD type bit: dedicated spare (mdadm `DDF_Spare`).
pub const PD_TYPE_SPARE: u16 = 8;
/// PD type bit: foreign (mdadm `DDF_Foreign`).
pub const PD_TYPE_FOREIGN: u16 = 16;
/// PD type bit: legacy disk, no DDF on it (mdadm `DDF_Legacy`).
pub const PD_TYPE_LEGACY: u16 = 32;
/// PD state bit: online (mdadm `DDF_Online`).
pub const PD_STATE_ONLINE: u16 = 1;
/// PD state bit: failed; overrides online/rebuilding/transition (mdadm `DDF_Failed`).
pub const PD_STATE_FAILED: u16 = 2;
/// PD state bit: rebuilding (mdadm `DDF_Rebuilding`).
pub const PD_STATE_REBUILDING: u16 = 4;
/// PD state bit: in transition (mdadm `DDF_Transition`).
pub const PD_STATE_TRANSITION: u16 = 8;
/// PD state bit: SMART error (mdadm `DDF_SMART`).
pub const PD_STATE_SMART: u16 = 16;
/// PD state bit: read errors (mdadm `DDF_ReadErrors`).
pub const PD_STATE_READ_ERRORS: u16 = 32;
/// PD state bit: missing (mdadm `DDF_Missing`).
pub const PD_STATE_MISSING: u16 = 64;

/// VD state: low three bits hold the condition (mdadm `DDF_state_mask`).
pub const VD_STATE_MASK: u8 = 0x7;
/// VD condition optimal (mdadm `DDF_state_optimal`).
pub const VD_STATE_OPTIMAL: u8 = 0x0;
/// VD condition degraded: still serves data, redundancy lost (mdadm
/// `DDF_state_degraded`).
pub const VD_STATE_DEGRADED: u8 = 0x1;
/// VD condition deleted (mdadm `DDF_state_deleted`).
pub const VD_STATE_DELETED: u8 = 0x2;
/// VD condition missing (mdadm `DDF_state_missing`).
pub const VD_STATE_MISSING: u8 = 0x3;
/// VD condition failed: data lost (mdadm `DDF_state_failed`).
pub const VD_STATE_FAILED: u8 = 0x4;
/// VD condition partially optimal: degraded but still redundant (mdadm
/// `DDF_state_part_optimal`).
pub const VD_STATE_PART_OPTIMAL: u8 = 0x5;
/// VD state bit: morphing (mdadm `DDF_state_morphing`).
pub const VD_STATE_MORPHING: u8 = 0x8;
/// VD state bit: not consistent, needs resync (mdadm `DDF_state_inconsistent`).
pub const VD_STATE_INCONSISTENT: u8 = 0x10;
/// VD init_state: low two bits (mdadm `DDF_initstate_mask`).
pub const VD_INIT_MASK: u8 = 0x3;
/// VD init_state: not initialised (mdadm `DDF_init_not`).
pub const VD_INIT_NOT: u8 = 0x0;
/// VD init_state: initialisation in progress (mdadm `DDF_init_quick`).
pub const VD_INIT_QUICK: u8 = 0x1;
/// VD init_state: fully initialised (mdadm `DDF_init_full`).
pub const VD_INIT_FULL: u8 = 0x2;

/// Bytes of controller data and of disk_data: one sector each.
pub(crate) const ONE_SECTOR: usize = 512;
/// Structure names used in errors.
pub(crate) const CONTROLLER_NAME: &str = "DDF controller data";
/// Structure name of the physical disk records.
pub(crate) const PHYS_NAME: &str = "DDF physical disk records";
/// Structure name of the virtual disk records.
pub(crate) const VIRT_NAME: &str = "DDF virtual disk records";
/// Structure name of disk_data.
pub(crate) const DISK_DATA_NAME: &str = "DDF disk data";

/// Controller data as stored (mdadm `struct ddf_controller_data`).
#[derive(Debug, Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawController {
    magic: U32,
    crc: U32,
    guid: [u8; GUID_LEN],
    vendor_id: U16,
    device_id: U16,
    sub_vendor_id: U16,
    sub_device_id: U16,
    product_id: [u8; 16],
    pad: [u8; 8],
    vendor_data: [u8; 448],
}
const _: () = assert!(size_of::<RawController>() == ONE_SECTOR);
const _: () = assert!(offset_of!(RawController, crc) == crc::CRC_OFFSET);
const _: () = assert!(offset_of!(RawController, product_id) == 40);

/// Head of the physical and virtual disk sections (mdadm `struct phys_disk`,
/// `struct virtual_disk` before their entries).
#[derive(Debug, Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawTableHead {
    magic: U32,
    crc: U32,
    used: U16,
    max: U16,
    pad: [u8; 52],
}
const TABLE_HEAD_BYTES: usize = 64;
const _: () = assert!(size_of::<RawTableHead>() == TABLE_HEAD_BYTES);
const _: () = assert!(offset_of!(RawTableHead, max) == 10);

/// A physical disk entry (mdadm `struct phys_disk_entry`).
#[derive(Debug, Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawPdEntry {
    guid: [u8; GUID_LEN],
    refnum: U32,
    pd_type: U16,
    state: U16,
    config_size: U64,
    path: [u8; 18],
    pad: [u8; 6],
}
const PD_ENTRY_BYTES: usize = 64;
const _: () = assert!(size_of::<RawPdEntry>() == PD_ENTRY_BYTES);
const _: () = assert!(offset_of!(RawPdEntry, refnum) == 24);
const _: () = assert!(offset_of!(RawPdEntry, config_size) == 32);

/// A virtual disk entry (mdadm `struct virtual_entry`).
#[derive(Debug, Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawVdEntry {
    guid: [u8; GUID_LEN],
    unit: U16,
    pad0: [u8; 2],
    guid_crc: U16,
    vd_type: U16,
    state: u8,
    init_state: u8,
    pad1: [u8; 14],
    name: [u8; 16],
}
const VD_ENTRY_BYTES: usize = 64;
const _: () = assert!(size_of::<RawVdEntry>() == VD_ENTRY_BYTES);
const _: () = assert!(offset_of!(RawVdEntry, state) == 32);
const _: () = assert!(offset_of!(RawVdEntry, name) == 48);

/// disk_data as stored (mdadm `struct disk_data`).
#[derive(Debug, Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawDiskData {
    magic: U32,
    crc: U32,
    guid: [u8; GUID_LEN],
    refnum: U32,
    forced_ref: u8,
    forced_guid: u8,
    vendor: [u8; 32],
    pad: [u8; 442],
}
const _: () = assert!(size_of::<RawDiskData>() == ONE_SECTOR);
const _: () = assert!(offset_of!(RawDiskData, refnum) == 32);

/// Controller data (decoded copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// Controller GUID; mdadm's starts with "Linux-MD".
    pub guid: [u8; GUID_LEN],
    /// PCI vendor, device, subsystem vendor, subsystem device.
    pub pci_ids: [u16; 4],
    /// Product id, space padded.
    pub product_id: [u8; 16],
}

/// One used physical disk entry (decoded copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysDisk {
    /// Index in the physical disk table (mdadm's `pdnum`).
    pub index: u32,
    /// Disk GUID.
    pub guid: [u8; GUID_LEN],
    /// Reference number: how VD configuration records name this disk.
    pub refnum: u32,
    /// Type bits (`PD_TYPE_*`).
    pub pd_type: u16,
    /// State bits (`PD_STATE_*`).
    pub state: u16,
    /// Sectors usable for data; DDF metadata lies beyond.
    pub config_size_sectors: u64,
    /// Informational path text.
    pub path: [u8; 18],
}

impl PhysDisk {
    /// Online and neither failed nor missing: its data can be trusted.
    #[must_use]
    pub fn is_working(&self) -> bool {
        self.state & PD_STATE_ONLINE != 0 && self.state & (PD_STATE_FAILED | PD_STATE_MISSING) == 0
    }
    /// A global or dedicated spare.
    #[must_use]
    pub fn is_spare(&self) -> bool {
        self.pd_type & (PD_TYPE_GLOBAL_SPARE | PD_TYPE_SPARE) != 0
    }
}

/// One used virtual disk entry (decoded copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtDisk {
    /// Index in the virtual disk table (mdadm's `vcnum`, the container member number).
    pub index: u32,
    /// VD GUID.
    pub guid: [u8; GUID_LEN],
    /// Unit number.
    pub unit: u16,
    /// CRC of the GUID (informational).
    pub guid_crc: u16,
    /// Type bits (shared, enforce groups, unicode, owner valid).
    pub vd_type: u16,
    /// State: condition in `VD_STATE_MASK` plus morphing/inconsistent bits.
    pub state: u8,
    /// Initialisation state (`VD_INIT_*` in the low bits, access mode above).
    pub init_state: u8,
    /// Name as stored (16 bytes, space or NUL padded).
    pub name_raw: [u8; 16],
}

impl VirtDisk {
    /// The name as mdadm uses it: the bytes up to the first space or NUL
    /// (mdadm `_ddf_array_name` turns every space into a terminator).
    #[must_use]
    pub fn name(&self) -> String {
        let end = self
            .name_raw
            .iter()
            .position(|&b| b == b' ' || b == 0)
            .unwrap_or(16);
        let name = &self.name_raw[..end];
        let end = name.iter().rposition(|&b| b != 0xff).map_or(0, |p| p + 1);
        String::from_utf8_lossy(&name[..end]).into_owned()
    }
    /// Consistent and fully initialised: no resync needed (mdadm
    /// `getinfo_super_ddf_bvd`'s `resync_start` rule).
    #[must_use]
    pub fn is_in_sync(&self) -> bool {
        self.state & VD_STATE_INCONSISTENT == 0 && self.init_state & VD_INIT_MASK == VD_INIT_FULL
    }
}

/// This disk's disk_data (decoded copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskData {
    /// This disk's GUID: selects its entry in the physical disk table.
    pub guid: [u8; GUID_LEN],
    /// This disk's refnum.
    pub refnum: u32,
    /// The refnum was forced.
    pub forced_ref: u8,
    /// The GUID was forced.
    pub forced_guid: u8,
}

fn bad_magic(what: &'static str, base: u64, expected: u32, found: u32) -> FormatError {
    let problem = Problem::BadMagic {
        expected: u64::from(expected),
        found: u64::from(found),
    };
    FormatError::new(what, "magic", base, problem)
}

fn truncated(what: &'static str, base: u64, need: usize, have: usize) -> FormatError {
    FormatError::new(what, "magic", base, Problem::Truncated { need, have })
}

/// Parse controller data from `bytes` read at device byte `base`.
pub(crate) fn parse_controller(bytes: &[u8], base: u64) -> Result<Controller, FormatError> {
    let head = bytes
        .get(..ONE_SECTOR)
        .ok_or_else(|| truncated(CONTROLLER_NAME, base, ONE_SECTOR, bytes.len()))?;
    let raw = RawController::read_from_bytes(head)
        .map_err(|_| truncated(CONTROLLER_NAME, base, ONE_SECTOR, head.len()))?;
    if raw.magic.get() != CONTROLLER_MAGIC {
        return Err(bad_magic(
            CONTROLLER_NAME,
            base,
            CONTROLLER_MAGIC,
            raw.magic.get(),
        ));
    }
    crc::verify(head, CONTROLLER_NAME, base)?;
    Ok(Controller {
        guid: raw.guid,
        pci_ids: [
            raw.vendor_id.get(),
            raw.device_id.get(),
            raw.sub_vendor_id.get(),
            raw.sub_device_id.get(),
        ],
        product_id: raw.product_id,
    })
}

/// Check a table section's head and CRC; return (max entries, head) after
/// checking that `max` entries fit in the section and in `header_max`.
fn table_head(
    section: &[u8],
    base: u64,
    what: &'static str,
    magics: &[u32],
    entry_bytes: usize,
    header_max: u16,
) -> Result<usize, FormatError> {
    let head_bytes = section
        .get(..TABLE_HEAD_BYTES)
        .ok_or_else(|| truncated(what, base, TABLE_HEAD_BYTES, section.len()))?;
    let head = RawTableHead::read_from_bytes(head_bytes)
        .map_err(|_| truncated(what, base, TABLE_HEAD_BYTES, section.len()))?;
    if !magics.contains(&head.magic.get()) {
        return Err(bad_magic(what, base, magics[0], head.magic.get()));
    }
    crc::verify(section, what, base)?;
    let max = usize::from(head.max.get());
    let fits = (section.len() - TABLE_HEAD_BYTES) / entry_bytes;
    if max > fits || max > usize::from(header_max) {
        let problem = Problem::Invalid {
            found: max as u64,
            why: "more entries than the section or the header's maximum allows",
        };
        let at = base + offset_of!(RawTableHead, max) as u64;
        return Err(FormatError::new(what, "max", at, problem));
    }
    Ok(max)
}

/// Parse the physical disk records section (`section` read at device byte `base`).
pub(crate) fn parse_phys(
    section: &[u8],
    base: u64,
    header_max: u16,
) -> Result<Vec<PhysDisk>, FormatError> {
    let magics = [PHYS_RECORDS_MAGIC, PHYS_DATA_MAGIC];
    let max = table_head(
        section,
        base,
        PHYS_NAME,
        &magics,
        PD_ENTRY_BYTES,
        header_max,
    )?;
    let entries = &section[TABLE_HEAD_BYTES..TABLE_HEAD_BYTES + max * PD_ENTRY_BYTES];
    let mut disks = Vec::new();
    for (index, bytes) in entries.chunks_exact(PD_ENTRY_BYTES).enumerate() {
        let raw = RawPdEntry::read_from_bytes(bytes).map_err(|_| {
            FormatError::new(PHYS_NAME, "entries", base, Problem::Unreachable("pd size"))
        })?;
        if raw.refnum.get() == UNUSED_REFNUM {
            continue;
        }
        disks.push(PhysDisk {
            index: index as u32,
            guid: raw.guid,
            refnum: raw.refnum.get(),
            pd_type: raw.pd_type.get(),
            state: raw.state.get(),
            config_size_sectors: raw.config_size.get(),
            path: raw.path,
        });
    }
    Ok(disks)
}

/// Parse the virtual disk records section (`section` read at device byte `base`).
pub(crate) fn parse_virt(
    section: &[u8],
    base: u64,
    header_max: u16,
) -> Result<Vec<VirtDisk>, FormatError> {
    let magics = [VIRT_RECORDS_MAGIC];
    let max = table_head(
        section,
        base,
        VIRT_NAME,
        &magics,
        VD_ENTRY_BYTES,
        header_max,
    )?;
    let entries = &section[TABLE_HEAD_BYTES..TABLE_HEAD_BYTES + max * VD_ENTRY_BYTES];
    let mut disks = Vec::new();
    for (index, bytes) in entries.chunks_exact(VD_ENTRY_BYTES).enumerate() {
        let raw = RawVdEntry::read_from_bytes(bytes).map_err(|_| {
            FormatError::new(VIRT_NAME, "entries", base, Problem::Unreachable("vd size"))
        })?;
        // mdadm marks an unused entry by an all-ones GUID (`all_ff`).
        if raw.guid.iter().all(|&b| b == 0xff) {
            continue;
        }
        disks.push(VirtDisk {
            index: index as u32,
            guid: raw.guid,
            unit: raw.unit.get(),
            guid_crc: raw.guid_crc.get(),
            vd_type: raw.vd_type.get(),
            state: raw.state,
            init_state: raw.init_state,
            name_raw: raw.name,
        });
    }
    Ok(disks)
}

/// Parse disk_data from `bytes` read at device byte `base`.
pub(crate) fn parse_disk_data(bytes: &[u8], base: u64) -> Result<DiskData, FormatError> {
    let head = bytes
        .get(..ONE_SECTOR)
        .ok_or_else(|| truncated(DISK_DATA_NAME, base, ONE_SECTOR, bytes.len()))?;
    let raw = RawDiskData::read_from_bytes(head)
        .map_err(|_| truncated(DISK_DATA_NAME, base, ONE_SECTOR, head.len()))?;
    if raw.magic.get() != PHYS_DATA_MAGIC {
        return Err(bad_magic(
            DISK_DATA_NAME,
            base,
            PHYS_DATA_MAGIC,
            raw.magic.get(),
        ));
    }
    crc::verify(head, DISK_DATA_NAME, base)?;
    Ok(DiskData {
        guid: raw.guid,
        refnum: raw.refnum.get(),
        forced_ref: raw.forced_ref,
        forced_guid: raw.forced_guid,
    })
}

/// Controller data from `c`, laid over the verified sector `kept`.
pub(crate) fn write_controller(c: &Controller, kept: &[u8]) -> Vec<u8> {
    let mut out = kept.to_vec();
    let raw = RawController::mut_from_bytes(&mut out)
        .expect("kept controller data is one sector (sliced at load)");
    raw.guid = c.guid;
    raw.vendor_id.set(c.pci_ids[0]);
    raw.device_id.set(c.pci_ids[1]);
    raw.sub_vendor_id.set(c.pci_ids[2]);
    raw.sub_device_id.set(c.pci_ids[3]);
    raw.product_id = c.product_id;
    crc::seal(&mut out);
    out
}

/// Number of entries the kept table section declares (checked at load to fit).
fn table_max(kept: &[u8]) -> usize {
    let head = RawTableHead::ref_from_bytes(&kept[..TABLE_HEAD_BYTES])
        .expect("kept table sections hold their head (checked at load)");
    usize::from(head.max.get())
}

/// The physical disk records section with every entry of `disks` laid over
/// the verified section `kept`; other entries stay as they were.
///
/// # Panics
/// If a disk's `index` lies beyond the table: an edit changed it.
pub(crate) fn write_phys(disks: &[PhysDisk], kept: &[u8]) -> Vec<u8> {
    let max = table_max(kept);
    let mut out = kept.to_vec();
    for pd in disks {
        let index = pd.index as usize;
        assert!(index < max, "PD index {index} is beyond the table");
        let at = TABLE_HEAD_BYTES + index * PD_ENTRY_BYTES;
        let raw = RawPdEntry::mut_from_bytes(&mut out[at..at + PD_ENTRY_BYTES])
            .expect("an entry slice is one entry");
        raw.guid = pd.guid;
        raw.refnum.set(pd.refnum);
        raw.pd_type.set(pd.pd_type);
        raw.state.set(pd.state);
        raw.config_size.set(pd.config_size_sectors);
        raw.path = pd.path;
    }
    crc::seal(&mut out);
    assert_eq!(out.len(), kept.len(), "a rewrite keeps the section length");
    out
}

/// The virtual disk records section with every entry of `disks` laid over
/// the verified section `kept`; other entries stay as they were.
///
/// # Panics
/// If a disk's `index` lies beyond the table: an edit changed it.
pub(crate) fn write_virt(disks: &[VirtDisk], kept: &[u8]) -> Vec<u8> {
    let max = table_max(kept);
    let mut out = kept.to_vec();
    for vd in disks {
        let index = vd.index as usize;
        assert!(index < max, "VD index {index} is beyond the table");
        let at = TABLE_HEAD_BYTES + index * VD_ENTRY_BYTES;
        let raw = RawVdEntry::mut_from_bytes(&mut out[at..at + VD_ENTRY_BYTES])
            .expect("an entry slice is one entry");
        raw.guid = vd.guid;
        raw.unit.set(vd.unit);
        raw.guid_crc.set(vd.guid_crc);
        raw.vd_type.set(vd.vd_type);
        raw.state = vd.state;
        raw.init_state = vd.init_state;
        raw.name = vd.name_raw;
    }
    crc::seal(&mut out);
    assert_eq!(out.len(), kept.len(), "a rewrite keeps the section length");
    out
}

/// disk_data from `d`, laid over the verified sector `kept`.
pub(crate) fn write_disk_data(d: &DiskData, kept: &[u8]) -> Vec<u8> {
    let mut out = kept.to_vec();
    let raw = RawDiskData::mut_from_bytes(&mut out)
        .expect("kept disk_data is one sector (sliced at load)");
    raw.guid = d.guid;
    raw.refnum.set(d.refnum);
    raw.forced_ref = d.forced_ref;
    raw.forced_guid = d.forced_guid;
    crc::seal(&mut out);
    out
}

/// Which global table a section holds, for the structural edits below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// Physical disk records (64-byte entries).
    Phys,
    /// Virtual disk records (64-byte entries).
    Virt,
}

impl Table {
    fn entry_bytes(self) -> usize {
        match self {
            Self::Phys => PD_ENTRY_BYTES,
            Self::Virt => VD_ENTRY_BYTES,
        }
    }
}

/// Byte every unused table entry, pad and reserved field holds in metadata
/// mdadm writes (formats.md §5.1: "Structures are padded with 0xff").
pub(crate) const FILL: u8 = 0xff;

/// Reset entry `index` of a table section to an unused entry (all 0xff, as
/// mdadm's `init_super_ddf` leaves every free entry).
///
/// # Panics
/// If `index` lies beyond the entries the section declares.
pub(crate) fn clear_entry(section: &mut [u8], table: Table, index: u32) {
    let max = table_max(section);
    let index = index as usize;
    assert!(
        index < max,
        "entry {index} is beyond the table of {max} entries"
    );
    let at = TABLE_HEAD_BYTES + index * table.entry_bytes();
    section[at..at + table.entry_bytes()].fill(FILL);
}

/// Set the used-entry counter of a table section (`used_pdes`,
/// `populated_vdes`); the CRC is resealed when the section is written.
pub(crate) fn set_table_used(section: &mut [u8], used: usize) {
    let used = u16::try_from(used).expect("a table holds at most u16::MAX entries");
    assert!(
        usize::from(used) <= table_max(section),
        "more used entries than the table holds"
    );
    let head = RawTableHead::mut_from_bytes(&mut section[..TABLE_HEAD_BYTES])
        .expect("the head is 64 bytes");
    head.used.set(used);
}

/// The used-entry counter of a table section.
pub(crate) fn table_used(section: &[u8]) -> usize {
    let head = RawTableHead::ref_from_bytes(&section[..TABLE_HEAD_BYTES])
        .expect("kept table sections hold their head (checked at load)");
    usize::from(head.used.get())
}

/// A table section with no used entry, as mdadm's `init_super_ddf` makes it:
/// head (magic, counter 0, `max` entries, pad 0xff), every entry 0xff, CRC
/// sealed.
pub(crate) fn new_table(table: Table, section_bytes: usize, max: u16) -> Vec<u8> {
    assert!(
        TABLE_HEAD_BYTES + usize::from(max) * table.entry_bytes() <= section_bytes,
        "{max} entries fit in {section_bytes} bytes"
    );
    let mut out = vec![FILL; section_bytes];
    let head =
        RawTableHead::mut_from_bytes(&mut out[..TABLE_HEAD_BYTES]).expect("the head is 64 bytes");
    head.magic.set(match table {
        Table::Phys => PHYS_RECORDS_MAGIC,
        Table::Virt => VIRT_RECORDS_MAGIC,
    });
    head.used.set(0);
    head.max.set(max);
    crc::seal(&mut out);
    out
}

/// mdadm's controller data (`init_super_ddf`): the given GUID, PCI ids
/// DEAD:BEEF:0:0, product "What Is My PID??", and `vendor_data` (mdadm puts
/// the home host there, NUL-terminated) followed by 0xff.
/// The vendor bytes of a stored controller record.
pub(crate) fn controller_vendor_data(record: &[u8]) -> &[u8] {
    let at = offset_of!(RawController, vendor_data);
    &record[at..ONE_SECTOR]
}

pub(crate) fn new_controller(c: &Controller, vendor_data: &[u8]) -> Vec<u8> {
    let mut out = vec![FILL; ONE_SECTOR];
    let raw = RawController::mut_from_bytes(&mut out).expect("one sector");
    raw.magic.set(CONTROLLER_MAGIC);
    let room = raw.vendor_data.len();
    let len = vendor_data.len().min(room);
    raw.vendor_data[..len].copy_from_slice(&vendor_data[..len]);
    let written = write_controller(c, &out);
    assert_eq!(written.len(), ONE_SECTOR, "controller data is one sector");
    written
}

/// disk_data as mdadm's `add_to_super_ddf` writes it: GUID and refnum forced,
/// vendor "Linux" padded with spaces, the rest 0xff.
pub(crate) fn new_disk_data(d: &DiskData) -> Vec<u8> {
    /// mdadm's vendor text in disk_data, space padded.
    const VENDOR: &[u8] = b"Linux";
    let mut out = vec![FILL; ONE_SECTOR];
    let raw = RawDiskData::mut_from_bytes(&mut out).expect("one sector");
    raw.magic.set(PHYS_DATA_MAGIC);
    raw.vendor.fill(b' ');
    raw.vendor[..VENDOR.len()].copy_from_slice(VENDOR);
    write_disk_data(d, &out)
}

/// The `path` text mdadm writes in a new physical disk entry: "Information:
/// nil" right-aligned in 17 characters, then NUL (`sprintf("%17.17s")`).
pub const PD_PATH_MDADM: [u8; 18] = *b" Information: nil\0";

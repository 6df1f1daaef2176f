//! DDF headers: the anchor in the last sector, and the primary and secondary copies.
//!
//! Every header is one 512-byte sector (formats.md §5.1). The anchor only points at
//! the two full copies; each copy repeats the anchor's GUID, revision and LBAs and
//! locates the sections that follow it. This file owns the byte layout of a header
//! and the checks that make one trustworthy: magic, CRC, supported revision, and
//! agreement with the anchor.

use core::mem::{offset_of, size_of};

use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::crc;
use super::GUID_LEN;
use crate::error::{FormatError, Problem};
use crate::SECTOR_BYTES;

/// Header magic (formats.md §5.1, mdadm `DDF_HEADER_MAGIC`).
pub const HEADER_MAGIC: u32 = 0xDE11_DE11;
/// Revision string of DDF 1.0 (mdadm `DDF_REVISION_0`).
pub const REVISION_0: [u8; 8] = *b"01.00.00";
/// Revision string of DDF 1.2, what mdadm writes (mdadm `DDF_REVISION_2`).
pub const REVISION_2: [u8; 8] = *b"01.02.00";
/// `secondary_lba` value meaning "no secondary copy" (formats.md §5.1: all ones).
pub const NO_SECONDARY_LBA: u64 = u64::MAX;
/// Section offset meaning "section absent" (all ones, as mdadm writes for bbm,
/// diag and vendor).
pub(crate) const ABSENT_SECTION: u32 = u32::MAX;
/// Bytes in one header (formats.md §5.1).
pub(crate) const HEADER_BYTES: usize = 512;

/// Structure name used in errors about the anchor.
pub(crate) const ANCHOR_NAME: &str = "DDF anchor header";
/// Structure name used in errors about the primary header.
pub(crate) const PRIMARY_NAME: &str = "DDF primary header";
/// Structure name used in errors about the secondary header.
pub(crate) const SECONDARY_NAME: &str = "DDF secondary header";

/// One section's place, relative to its header (formats.md §5.1, 192..256).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub(crate) struct RawSection {
    /// Sectors from the header's LBA.
    pub(crate) offset: U32,
    /// Length in sectors.
    pub(crate) length: U32,
}

/// The header as stored (mdadm `struct ddf_header`), big-endian.
#[derive(Debug, Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawHeader {
    pub(crate) magic: U32,
    pub(crate) crc: U32,
    pub(crate) guid: [u8; GUID_LEN],
    pub(crate) revision: [u8; 8],
    pub(crate) seq: U32,
    pub(crate) timestamp: U32,
    pub(crate) openflag: u8,
    pub(crate) foreignflag: u8,
    pub(crate) enforcegroups: u8,
    pub(crate) pad0: u8,
    pub(crate) pad1: [u8; 12],
    pub(crate) header_ext: [u8; 32],
    pub(crate) primary_lba: U64,
    pub(crate) secondary_lba: U64,
    pub(crate) header_type: u8,
    pub(crate) pad2: [u8; 3],
    pub(crate) workspace_len: U32,
    pub(crate) workspace_lba: U64,
    pub(crate) max_pd_entries: U16,
    pub(crate) max_vd_entries: U16,
    pub(crate) max_partitions: U16,
    pub(crate) config_record_len: U16,
    pub(crate) max_primary_element_entries: U16,
    pub(crate) pad3: [u8; 54],
    pub(crate) sections: [RawSection; SECTION_COUNT],
    pub(crate) pad4: [u8; 256],
}

/// Number of (offset, length) pairs in a header.
pub(crate) const SECTION_COUNT: usize = 8;

const _: () = assert!(size_of::<RawHeader>() == HEADER_BYTES);
const _: () = assert!(offset_of!(RawHeader, crc) == crc::CRC_OFFSET);
const _: () = assert!(offset_of!(RawHeader, guid) == 8);
const _: () = assert!(offset_of!(RawHeader, revision) == 32);
const _: () = assert!(offset_of!(RawHeader, seq) == 40);
const _: () = assert!(offset_of!(RawHeader, openflag) == 48);
const _: () = assert!(offset_of!(RawHeader, primary_lba) == 96);
const _: () = assert!(offset_of!(RawHeader, secondary_lba) == 104);
const _: () = assert!(offset_of!(RawHeader, header_type) == 112);
const _: () = assert!(offset_of!(RawHeader, workspace_len) == 116);
const _: () = assert!(offset_of!(RawHeader, workspace_lba) == 120);
const _: () = assert!(offset_of!(RawHeader, max_pd_entries) == 128);
const _: () = assert!(offset_of!(RawHeader, config_record_len) == 134);
const _: () = assert!(offset_of!(RawHeader, max_primary_element_entries) == 136);
const _: () = assert!(offset_of!(RawHeader, sections) == 192);
const _: () = assert!(offset_of!(RawHeader, pad4) == 256);

/// Which copy a header is (formats.md §5.1, `type` at byte 112).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderType {
    /// The anchor in the last sector (mdadm `DDF_HEADER_ANCHOR`).
    Anchor = 0,
    /// The primary copy (mdadm `DDF_HEADER_PRIMARY`).
    Primary = 1,
    /// The secondary copy (mdadm `DDF_HEADER_SECONDARY`).
    Secondary = 2,
}

impl HeaderType {
    fn structure(self) -> &'static str {
        match self {
            Self::Anchor => ANCHOR_NAME,
            Self::Primary => PRIMARY_NAME,
            Self::Secondary => SECONDARY_NAME,
        }
    }
}

/// The sections a header locates, in their order at byte 192 (formats.md §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// Controller data (global).
    Controller = 0,
    /// Physical disk records (global).
    PhysRecords = 1,
    /// Virtual disk records (global).
    VirtRecords = 2,
    /// Configuration records (local to each disk).
    Config = 3,
    /// This disk's own data (local).
    DiskData = 4,
    /// Bad-block management log.
    BadBlockLog = 5,
    /// Diagnostic space.
    Diagnostics = 6,
    /// Vendor-specific log.
    Vendor = 7,
}

/// Where one section lies, relative to the header that locates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionLocation {
    /// Sectors from the header's LBA.
    pub offset_sectors: u32,
    /// Length in sectors.
    pub len_sectors: u32,
}

/// A header whose magic and CRC were checked, with where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    raw: RawHeader,
    lba: u64,
}

impl Header {
    /// Parse and check the header in `bytes`, read from device sector `lba`.
    /// `expected` is the copy the caller looked for; the anchor's type is not
    /// checked (mdadm does not either).
    pub(crate) fn parse(bytes: &[u8], lba: u64, expected: HeaderType) -> Result<Self, FormatError> {
        let name = expected.structure();
        let base = lba.saturating_mul(SECTOR_BYTES);
        let raw = RawHeader::read_from_bytes(bytes).map_err(|_| {
            let problem = Problem::Truncated {
                need: HEADER_BYTES,
                have: bytes.len(),
            };
            FormatError::new(name, "magic", base, problem)
        })?;
        if raw.magic.get() != HEADER_MAGIC {
            let problem = Problem::BadMagic {
                expected: u64::from(HEADER_MAGIC),
                found: u64::from(raw.magic.get()),
            };
            return Err(FormatError::new(name, "magic", base, problem));
        }
        crc::verify(bytes, name, base)?;
        if raw.revision != REVISION_0 && raw.revision != REVISION_2 {
            let found = u64::from_be_bytes(raw.revision);
            let problem = Problem::Invalid {
                found,
                why: "unsupported DDF revision",
            };
            let off = base + offset_of!(RawHeader, revision) as u64;
            return Err(FormatError::new(name, "revision", off, problem));
        }
        if expected != HeaderType::Anchor && raw.header_type != expected as u8 {
            let problem = Problem::Invalid {
                found: u64::from(raw.header_type),
                why: "header type does not match the copy the anchor points to",
            };
            let off = base + offset_of!(RawHeader, header_type) as u64;
            return Err(FormatError::new(name, "type", off, problem));
        }
        let header = Self { raw, lba };
        assert_eq!(
            header.raw.as_bytes().len(),
            HEADER_BYTES,
            "a header is one sector"
        );
        Ok(header)
    }

    /// Check that this copy repeats what the anchor says (mdadm `load_ddf_header`).
    pub(crate) fn check_matches(&self, anchor: &Header) -> Result<(), FormatError> {
        let name = HeaderType::from_raw(self.raw.header_type).structure();
        let base = self.lba.saturating_mul(SECTOR_BYTES);
        let mismatch = |field: &'static str, at: usize, found: u64| {
            let problem = Problem::Invalid {
                found,
                why: "differs from the anchor header",
            };
            FormatError::new(name, field, base + at as u64, problem)
        };
        if self.raw.guid != anchor.raw.guid {
            return Err(mismatch("guid", offset_of!(RawHeader, guid), 0));
        }
        if self.raw.revision != anchor.raw.revision {
            let found = u64::from_be_bytes(self.raw.revision);
            return Err(mismatch("revision", offset_of!(RawHeader, revision), found));
        }
        if self.raw.primary_lba != anchor.raw.primary_lba {
            let found = self.raw.primary_lba.get();
            return Err(mismatch(
                "primary_lba",
                offset_of!(RawHeader, primary_lba),
                found,
            ));
        }
        if self.raw.secondary_lba != anchor.raw.secondary_lba {
            let found = self.raw.secondary_lba.get();
            return Err(mismatch(
                "secondary_lba",
                offset_of!(RawHeader, secondary_lba),
                found,
            ));
        }
        Ok(())
    }

    /// Device sector this header was read from.
    #[must_use]
    pub fn lba(&self) -> u64 {
        self.lba
    }
    /// Which copy this header says it is.
    #[must_use]
    pub fn header_type(&self) -> HeaderType {
        HeaderType::from_raw(self.raw.header_type)
    }
    /// The container GUID (24 bytes; mdadm's start with "Linux-MD").
    #[must_use]
    pub fn guid(&self) -> [u8; GUID_LEN] {
        self.raw.guid
    }
    /// Revision string, "01.00.00" or "01.02.00".
    #[must_use]
    pub fn revision(&self) -> [u8; 8] {
        self.raw.revision
    }
    /// Update sequence number (all ones in the anchor: "no sequencing").
    #[must_use]
    pub fn seq(&self) -> u32 {
        self.raw.seq.get()
    }
    /// Timestamp, seconds since 1980-01-01 (mdadm `DECADE` offset).
    #[must_use]
    pub fn timestamp(&self) -> u32 {
        self.raw.timestamp.get()
    }
    /// Open flag: non-zero while mdadm is updating this copy.
    #[must_use]
    pub fn openflag(&self) -> u8 {
        self.raw.openflag
    }
    /// Device sector of the primary copy.
    #[must_use]
    pub fn primary_lba(&self) -> u64 {
        self.raw.primary_lba.get()
    }
    /// Device sector of the secondary copy, if there is one.
    #[must_use]
    pub fn secondary_lba(&self) -> Option<u64> {
        let lba = self.raw.secondary_lba.get();
        (lba != NO_SECONDARY_LBA).then_some(lba)
    }
    /// Workspace length in sectors.
    #[must_use]
    pub fn workspace_len_sectors(&self) -> u32 {
        self.raw.workspace_len.get()
    }
    /// Device sector of the workspace.
    #[must_use]
    pub fn workspace_lba(&self) -> u64 {
        self.raw.workspace_lba.get()
    }
    /// Entries in the physical disk table.
    #[must_use]
    pub fn max_pd_entries(&self) -> u16 {
        self.raw.max_pd_entries.get()
    }
    /// Entries in the virtual disk table.
    #[must_use]
    pub fn max_vd_entries(&self) -> u16 {
        self.raw.max_vd_entries.get()
    }
    /// Configuration records per disk.
    #[must_use]
    pub fn max_partitions(&self) -> u16 {
        self.raw.max_partitions.get()
    }
    /// Sectors per configuration record.
    #[must_use]
    pub fn config_record_len_sectors(&self) -> u16 {
        self.raw.config_record_len.get()
    }
    /// Slots in each configuration record's `phys_refnum` and `lba_offset` lists.
    #[must_use]
    pub fn max_primary_element_entries(&self) -> u16 {
        self.raw.max_primary_element_entries.get()
    }
    /// Where `kind` lies, or `None` if the header marks it absent.
    #[must_use]
    pub fn section(&self, kind: SectionKind) -> Option<SectionLocation> {
        let raw = self.raw.sections[kind as usize];
        let offset_sectors = raw.offset.get();
        (offset_sectors != ABSENT_SECTION).then(|| SectionLocation {
            offset_sectors,
            len_sectors: raw.length.get(),
        })
    }
    /// Device byte offset of field `at` within this header, for error reports.
    pub(crate) fn field_offset(&self, at: usize) -> u64 {
        self.lba
            .saturating_mul(SECTOR_BYTES)
            .saturating_add(at as u64)
    }
    /// The stored bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.raw.as_bytes()
    }

    /// Set the update sequence number.
    pub(crate) fn set_seq(&mut self, seq: u32) {
        self.raw.seq.set(seq);
    }
    /// Set the timestamp (seconds since 1980-01-01).
    pub(crate) fn set_timestamp(&mut self, timestamp: u32) {
        self.raw.timestamp.set(timestamp);
    }
    /// Set the open flag (non-zero while an update is in progress).
    pub(crate) fn set_openflag(&mut self, openflag: u8) {
        self.raw.openflag = openflag;
    }

    /// A header of a new container, as mdadm's `init_super_ddf` and
    /// `_write_super_to_disk` leave it on disk: every pad and reserved byte
    /// 0xff, no foreign or enforce-groups flag, and the anchor marked "open"
    /// with sequencing off (seq all ones) while the copies are closed.
    pub(crate) fn new_mdadm(fields: &NewHeaderFields, kind: HeaderType, lba: u64) -> Self {
        let mut bytes = [0xffu8; HEADER_BYTES];
        let raw = RawHeader::mut_from_bytes(&mut bytes[..]).expect("a header is one sector");
        raw.magic.set(HEADER_MAGIC);
        raw.guid = fields.guid;
        raw.revision = REVISION_2;
        let anchor = kind == HeaderType::Anchor;
        raw.seq.set(if anchor { ANCHOR_SEQ } else { fields.seq });
        raw.timestamp.set(fields.timestamp);
        raw.openflag = if anchor { ANCHOR_OPENFLAG } else { 0 };
        raw.foreignflag = 0;
        raw.enforcegroups = 0;
        raw.primary_lba.set(fields.primary_lba);
        raw.secondary_lba.set(fields.secondary_lba);
        raw.header_type = kind as u8;
        raw.workspace_len.set(fields.workspace_len_sectors);
        raw.workspace_lba.set(fields.workspace_lba);
        raw.max_pd_entries.set(fields.max_pd_entries);
        raw.max_vd_entries.set(fields.max_vd_entries);
        raw.max_partitions.set(fields.max_partitions);
        raw.config_record_len.set(fields.config_record_len_sectors);
        raw.max_primary_element_entries
            .set(fields.max_primary_element_entries);
        for (slot, loc) in raw.sections.iter_mut().zip(&fields.sections) {
            let (offset, length) =
                loc.map_or((ABSENT_SECTION, 0), |l| (l.offset_sectors, l.len_sectors));
            slot.offset.set(offset);
            slot.length.set(length);
        }
        let header = Self {
            raw: raw.clone(),
            lba,
        };
        assert_eq!(header.header_type(), kind, "the type was just set");
        assert_eq!(header.guid(), fields.guid, "the GUID was just set");
        header
    }

    /// The same header as copy `kind` at device sector `lba`: what mdadm writes
    /// to the other copy, which differs only in its type (and so its CRC).
    pub(crate) fn as_copy(&self, kind: HeaderType, lba: u64) -> Self {
        assert_ne!(kind, HeaderType::Anchor, "a copy is primary or secondary");
        let mut raw = self.raw.clone();
        raw.header_type = kind as u8;
        Self { raw, lba }
    }

    /// The header's bytes with the CRC recomputed over them (formats.md §5.1).
    pub(crate) fn sealed_bytes(&self) -> Vec<u8> {
        let mut out = self.raw.as_bytes().to_vec();
        crc::seal(&mut out);
        assert_eq!(out.len(), HEADER_BYTES, "a header is one sector");
        out
    }
}

impl HeaderType {
    /// Types other than 1 and 2 are reported as the anchor (mdadm treats any
    /// other value as "not a copy").
    fn from_raw(v: u8) -> Self {
        match v {
            1 => Self::Primary,
            2 => Self::Secondary,
            _ => Self::Anchor,
        }
    }
}

/// The anchor's `seq`: all ones, "no sequencing" (mdadm `_write_super_to_disk`).
const ANCHOR_SEQ: u32 = u32::MAX;
/// The anchor's open flag: mdadm writes 0xff, "open means nothing" there.
const ANCHOR_OPENFLAG: u8 = 0xff;

/// What a new header says; the rest is fixed by [`Header::new_mdadm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewHeaderFields {
    pub(crate) guid: [u8; GUID_LEN],
    pub(crate) seq: u32,
    pub(crate) timestamp: u32,
    pub(crate) primary_lba: u64,
    pub(crate) secondary_lba: u64,
    pub(crate) workspace_lba: u64,
    pub(crate) workspace_len_sectors: u32,
    pub(crate) max_pd_entries: u16,
    pub(crate) max_vd_entries: u16,
    pub(crate) max_partitions: u16,
    pub(crate) config_record_len_sectors: u16,
    pub(crate) max_primary_element_entries: u16,
    /// Indexed by [`SectionKind`]; `None` = absent.
    pub(crate) sections: [Option<SectionLocation>; SECTION_COUNT],
}

/// Offset of the section table in a header, for error reports.
pub(crate) const SECTIONS_OFFSET: usize = offset_of!(RawHeader, sections);
/// Size of one section-table entry.
pub(crate) const SECTION_ENTRY_BYTES: usize = size_of::<RawSection>();
/// Offset of `config_record_len`, for error reports.
pub(crate) const CONFIG_RECORD_LEN_OFFSET: usize = offset_of!(RawHeader, config_record_len);

//! VD configuration records: the per-disk description of each virtual disk.
//!
//! The config section is local to a disk and holds `max_partitions + 1` slots of
//! `config_record_len` sectors (formats.md §5.1). A slot holds a VD config record
//! (magic 0xEEEEEEEE), the spare-assignment record (0x55555555, skipped: it names
//! no data), a vendor-unique record (skipped, as mdadm does), or all ones (unused).
//! A VD config record carries the RAID geometry and, after its 512-byte fixed
//! part, `phys_refnum[mppe]` then `lba_offset[mppe]`.

use core::mem::{offset_of, size_of};

use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{crc, level, GUID_LEN};
use crate::error::{FormatError, Problem};
use crate::SECTOR_BYTES;

/// VD configuration record magic (formats.md §5.1, mdadm `DDF_VD_CONF_MAGIC`).
pub const VD_CONF_MAGIC: u32 = 0xEEEE_EEEE;
/// Spare assignment record magic (formats.md §5.1, mdadm `DDF_SPARE_ASSIGN_MAGIC`).
pub const SPARE_ASSIGN_MAGIC: u32 = 0x5555_5555;
/// Structure name used in errors.
pub(crate) const CONFIG_NAME: &str = "DDF VD configuration record";
/// Bytes of the fixed part before `phys_refnum` (formats.md §5.1: "at byte 512").
const FIXED_BYTES: usize = 512;
/// Bytes of one `phys_refnum` entry (u32).
const REFNUM_BYTES: usize = size_of::<u32>();
/// Bytes of one `lba_offset` entry (u64).
const LBA_BYTES: usize = size_of::<u64>();
/// Bytes per element: a u32 refnum plus a u64 LBA offset.
const ELEMENT_BYTES: usize = REFNUM_BYTES + LBA_BYTES;
/// Largest chunk_shift giving a chunk (in sectors) that fits md's u32 chunk_sectors.
const CHUNK_SHIFT_MAX: u8 = 31;

/// The fixed part of a VD configuration record (mdadm `struct vd_config`).
#[derive(Debug, Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawVdConfig {
    magic: U32,
    crc: U32,
    guid: [u8; GUID_LEN],
    timestamp: U32,
    seqnum: U32,
    pad0: [u8; 24],
    prim_elmnt_count: U16,
    chunk_shift: u8,
    prl: u8,
    rlq: u8,
    sec_elmnt_count: u8,
    sec_elmnt_seq: u8,
    srl: u8,
    blocks: U64,
    array_blocks: U64,
    pad1: [u8; 8],
    spare_refs: [U32; 8],
    cache_pol: [u8; 8],
    bg_rate: u8,
    pad2: [u8; 3],
    pad3: [u8; 52],
    pad4: [u8; 192],
    v0: [u8; 32],
    v1: [u8; 32],
    v2: [u8; 16],
    v3: [u8; 16],
    vendor: [u8; 32],
}
const _: () = assert!(size_of::<RawVdConfig>() == FIXED_BYTES);
const _: () = assert!(offset_of!(RawVdConfig, crc) == crc::CRC_OFFSET);
const _: () = assert!(offset_of!(RawVdConfig, seqnum) == 36);
const _: () = assert!(offset_of!(RawVdConfig, prim_elmnt_count) == 64);
const _: () = assert!(offset_of!(RawVdConfig, chunk_shift) == 66);
const _: () = assert!(offset_of!(RawVdConfig, prl) == 67);
const _: () = assert!(offset_of!(RawVdConfig, rlq) == 68);
const _: () = assert!(offset_of!(RawVdConfig, sec_elmnt_count) == 69);
const _: () = assert!(offset_of!(RawVdConfig, sec_elmnt_seq) == 70);
const _: () = assert!(offset_of!(RawVdConfig, srl) == 71);
const _: () = assert!(offset_of!(RawVdConfig, blocks) == 72);
const _: () = assert!(offset_of!(RawVdConfig, array_blocks) == 80);
const _: () = assert!(offset_of!(RawVdConfig, spare_refs) == 96);
const _: () = assert!(offset_of!(RawVdConfig, cache_pol) == 128);

/// One VD configuration record found on this disk (decoded copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdConfig {
    /// Slot index within the config section.
    pub slot: u32,
    /// GUID of the virtual disk this record configures.
    pub guid: [u8; GUID_LEN],
    /// Timestamp (seconds since 1980).
    pub timestamp: u32,
    /// Record sequence number: the highest is the newest.
    pub seqnum: u32,
    /// Members in this basic VD.
    pub prim_elmnt_count: u16,
    /// Chunk = 512 << chunk_shift bytes.
    pub chunk_shift: u8,
    /// Primary RAID level (`level::PRL_*`).
    pub prl: u8,
    /// RAID level qualifier (`level::RLQ_*`).
    pub rlq: u8,
    /// Number of basic VDs in a spanned/striped VD (1 = none).
    pub sec_elmnt_count: u8,
    /// Which basic VD this record describes, 0-based.
    pub sec_elmnt_seq: u8,
    /// Secondary RAID level (`level::SRL_*`, 0xff = none).
    pub srl: u8,
    /// Sectors used on each member.
    pub blocks: u64,
    /// Sectors in the whole virtual disk.
    pub array_blocks: u64,
    /// Refnum of the disk in each position, `prim_elmnt_count` entries
    /// (all ones = no disk in that position).
    pub phys_refnum: Vec<u32>,
    /// Sector where the VD starts on each of those disks.
    pub lba_offset: Vec<u64>,
}

impl VdConfig {
    /// Position of the disk with `refnum` in this basic VD.
    #[must_use]
    pub fn position_of(&self, refnum: u32) -> Option<usize> {
        self.phys_refnum.iter().position(|&r| r == refnum)
    }
    /// Chunk size in sectors (512 << chunk_shift bytes).
    #[must_use]
    pub fn chunk_sectors(&self) -> u32 {
        assert!(self.chunk_shift <= CHUNK_SHIFT_MAX, "validated at parse");
        1u32 << self.chunk_shift
    }
}

/// What one config slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A VD configuration record.
    Vd(VdConfig),
    /// Anything else: spare assignment, vendor-unique or unused.
    Other,
}

/// Geometry of the config section, from the header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConfigGeometry {
    /// Bytes per record.
    pub(crate) record_bytes: usize,
    /// `max_primary_element_entries`.
    pub(crate) mppe: usize,
}

/// Parse one slot of `geo.record_bytes` bytes read at device byte `base`.
pub(crate) fn parse_slot(
    bytes: &[u8],
    slot: u32,
    base: u64,
    geo: ConfigGeometry,
) -> Result<Slot, FormatError> {
    assert_eq!(bytes.len(), geo.record_bytes, "caller slices whole records");
    assert!(
        FIXED_BYTES + geo.mppe * ELEMENT_BYTES <= geo.record_bytes,
        "checked by caller"
    );
    let raw = RawVdConfig::read_from_bytes(&bytes[..FIXED_BYTES]).map_err(|_| {
        FormatError::new(
            CONFIG_NAME,
            "magic",
            base,
            Problem::Unreachable("fixed part size"),
        )
    })?;
    let magic = raw.magic.get();
    if magic == SPARE_ASSIGN_MAGIC {
        crc::verify(bytes, "DDF spare assignment record", base)?;
        return Ok(Slot::Other);
    }
    if magic != VD_CONF_MAGIC {
        return Ok(Slot::Other);
    }
    crc::verify(bytes, CONFIG_NAME, base)?;
    let field = |name: &'static str, at: usize, found: u64, why: &'static str| {
        FormatError::new(
            CONFIG_NAME,
            name,
            base + at as u64,
            Problem::Invalid { found, why },
        )
    };
    let count = usize::from(raw.prim_elmnt_count.get());
    if count == 0 || count > geo.mppe {
        let at = offset_of!(RawVdConfig, prim_elmnt_count);
        let why = "zero, or more than max_primary_element_entries";
        return Err(field("prim_elmnt_count", at, count as u64, why));
    }
    if raw.sec_elmnt_count == 0 || raw.sec_elmnt_seq >= raw.sec_elmnt_count {
        let at = offset_of!(RawVdConfig, sec_elmnt_seq);
        let why = "secondary element sequence out of range";
        return Err(field(
            "sec_elmnt_seq",
            at,
            u64::from(raw.sec_elmnt_seq),
            why,
        ));
    }
    let refs_at = FIXED_BYTES;
    let lbas_at = FIXED_BYTES + geo.mppe * 4;
    let phys_refnum: Vec<u32> = bytes[refs_at..refs_at + count * 4]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let lba_offset: Vec<u64> = bytes[lbas_at..lbas_at + count * 8]
        .chunks_exact(8)
        .map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .collect();
    let config = VdConfig {
        slot,
        guid: raw.guid,
        timestamp: raw.timestamp.get(),
        seqnum: raw.seqnum.get(),
        prim_elmnt_count: raw.prim_elmnt_count.get(),
        chunk_shift: raw.chunk_shift,
        prl: raw.prl,
        rlq: raw.rlq,
        sec_elmnt_count: raw.sec_elmnt_count,
        sec_elmnt_seq: raw.sec_elmnt_seq,
        srl: raw.srl,
        blocks: raw.blocks.get(),
        array_blocks: raw.array_blocks.get(),
        phys_refnum,
        lba_offset,
    };
    let md = level::md_geometry(&config).map_err(|why| {
        field(
            "prl",
            offset_of!(RawVdConfig, prl),
            u64::from(config.prl),
            why,
        )
    })?;
    if md.uses_chunk && config.chunk_shift > CHUNK_SHIFT_MAX {
        let at = offset_of!(RawVdConfig, chunk_shift);
        return Err(field(
            "chunk_shift",
            at,
            u64::from(config.chunk_shift),
            "chunk too large",
        ));
    }
    assert_eq!(
        config.phys_refnum.len(),
        config.lba_offset.len(),
        "one offset per position"
    );
    Ok(Slot::Vd(config))
}

/// Check that records of `record_sectors` can hold `mppe` elements; return
/// the geometry. `at` is the device byte offset of `config_record_len`.
pub(crate) fn geometry(
    record_sectors: u16,
    mppe: u16,
    at: u64,
) -> Result<ConfigGeometry, FormatError> {
    let record_bytes = usize::from(record_sectors) * SECTOR_BYTES as usize;
    let mppe = usize::from(mppe);
    if FIXED_BYTES + mppe * ELEMENT_BYTES > record_bytes {
        let problem = Problem::Invalid {
            found: u64::from(record_sectors),
            why: "config records too short for max_primary_element_entries",
        };
        return Err(FormatError::new(
            "DDF header",
            "config_record_len",
            at,
            problem,
        ));
    }
    Ok(ConfigGeometry { record_bytes, mppe })
}

/// The configuration record `c`, laid over its verified slot `kept` (of
/// `geo.record_bytes`); element positions beyond `prim_elmnt_count` and every
/// reserved or vendor byte stay as they were.
///
/// # Panics
/// If an edit made `phys_refnum`, `lba_offset` and `prim_elmnt_count` disagree,
/// or gave more elements than `max_primary_element_entries`.
pub(crate) fn write_record(c: &VdConfig, kept: &[u8], geo: ConfigGeometry) -> Vec<u8> {
    let count = usize::from(c.prim_elmnt_count);
    assert_eq!(kept.len(), geo.record_bytes, "kept slots are whole records");
    assert_eq!(c.phys_refnum.len(), count, "one refnum per element");
    assert_eq!(c.lba_offset.len(), count, "one lba_offset per element");
    assert!(
        count <= geo.mppe,
        "at most max_primary_element_entries elements"
    );
    let mut out = kept.to_vec();
    let raw =
        RawVdConfig::mut_from_bytes(&mut out[..FIXED_BYTES]).expect("the fixed part is 512 bytes");
    raw.magic.set(VD_CONF_MAGIC);
    raw.guid = c.guid;
    raw.timestamp.set(c.timestamp);
    raw.seqnum.set(c.seqnum);
    raw.prim_elmnt_count.set(c.prim_elmnt_count);
    raw.chunk_shift = c.chunk_shift;
    raw.prl = c.prl;
    raw.rlq = c.rlq;
    raw.sec_elmnt_count = c.sec_elmnt_count;
    raw.sec_elmnt_seq = c.sec_elmnt_seq;
    raw.srl = c.srl;
    raw.blocks.set(c.blocks);
    raw.array_blocks.set(c.array_blocks);
    let refs_at = FIXED_BYTES;
    let lbas_at = FIXED_BYTES + geo.mppe * REFNUM_BYTES;
    for (i, (&refnum, &lba)) in c.phys_refnum.iter().zip(&c.lba_offset).enumerate() {
        let r = refs_at + i * REFNUM_BYTES;
        out[r..r + REFNUM_BYTES].copy_from_slice(&refnum.to_be_bytes());
        let l = lbas_at + i * LBA_BYTES;
        out[l..l + LBA_BYTES].copy_from_slice(&lba.to_be_bytes());
    }
    crc::seal(&mut out);
    out
}

/// mdadm's background-rate byte in a new record (`init_super_ddf_bvd`).
const BG_RATE_MDADM: u8 = 0x80;

/// A new configuration record as mdadm's `init_super_ddf_bvd` fills it before
/// any typed field is set: 0xff everywhere except a zero cache policy, a
/// background rate of 0x80 and zero `lba_offset` entries. [`write_record`]
/// lays the typed fields over it.
pub(crate) fn new_record_template(geo: ConfigGeometry) -> Vec<u8> {
    let mut out = vec![0xffu8; geo.record_bytes];
    let raw =
        RawVdConfig::mut_from_bytes(&mut out[..FIXED_BYTES]).expect("the fixed part is 512 bytes");
    raw.magic.set(VD_CONF_MAGIC);
    raw.cache_pol = [0; 8];
    raw.bg_rate = BG_RATE_MDADM;
    let lbas_at = FIXED_BYTES + geo.mppe * REFNUM_BYTES;
    out[lbas_at..lbas_at + geo.mppe * LBA_BYTES].fill(0);
    assert!(
        lbas_at + geo.mppe * LBA_BYTES <= geo.record_bytes,
        "checked by geometry()"
    );
    out
}

/// The (GUID, `sec_elmnt_seq`) of the VD configuration record in `bytes`, if
/// the slot holds one: which basic VD a kept slot describes.
pub(crate) fn record_key(bytes: &[u8]) -> Option<([u8; GUID_LEN], u8)> {
    let raw = RawVdConfig::ref_from_bytes(bytes.get(..FIXED_BYTES)?).ok()?;
    (raw.magic.get() == VD_CONF_MAGIC).then_some((raw.guid, raw.sec_elmnt_seq))
}

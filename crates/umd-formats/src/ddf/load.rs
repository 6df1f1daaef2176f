//! Reading DDF metadata from a device: find the anchor, pick a header copy,
//! read and check every section it locates.
//!
//! Follows mdadm's `load_super_ddf`: devices of 32 MiB or less, or of a size not
//! a multiple of 512, carry no DDF; the anchor is the last sector; the primary
//! copy is used unless the secondary is newer and closed, or the primary is
//! open (an update cut short) and the secondary closed, or the primary is
//! unusable. Unlike mdadm we verify every section's CRC, and if the chosen
//! copy's sections are bad but the other copy is good, we use the other copy and
//! record a note saying so.

use super::config::{self, Slot, VdConfig};
use super::header::{self, Header, HeaderType, SectionKind, HEADER_BYTES, HEADER_MAGIC};
use super::records::{self, Controller, DiskData, PhysDisk, VirtDisk, ONE_SECTOR};
use super::write::{Kept, Positions};
use super::Ddf;
use crate::error::{FormatError, Problem};
use crate::probe::{ProbeError, ReadAt};
use crate::SECTOR_BYTES;

/// Devices this small carry no DDF (mdadm `load_super_ddf`: "32M is a lower
/// bound"); it is also the region mdadm reserves at the end for metadata and
/// searches for a misplaced anchor (mdadm `SEARCH_REGION_SIZE`).
pub(crate) const DDF_REGION_BYTES: u64 = 32 * 1024 * 1024;
/// Longest section mdadm will read, in sectors (mdadm `load_section`).
const SECTION_SECTORS_MAX: u32 = 1024;
/// Lengths mdadm allows for the physical and virtual disk sections (mdadm
/// `load_section` with `check`).
const TABLE_SECTION_SECTORS: [u32; 5] = [2, 8, 32, 128, 512];
/// Step of mdadm's anchor search: it looks at every 4-byte word.
const SEARCH_STEP_BYTES: usize = 4;
/// Bytes read at a time while searching for the anchor.
const SEARCH_CHUNK_BYTES: usize = 1024 * 1024;
/// A chunk of zeros, to recognise an empty stretch of the search region.
static ZERO_CHUNK: [u8; SEARCH_CHUNK_BYTES] = [0; SEARCH_CHUNK_BYTES];
/// Structure name for errors about header fields that locate sections.
const HEADER_NAME: &str = "DDF header";

/// Where to look for the anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorSearch {
    /// Only the last sector: mdadm's default.
    LastSector,
    /// Also search the last 32 MiB when the last sector has no anchor, as mdadm
    /// does with `PROBING ddf_extended` in mdadm.conf (some LSI and PERC
    /// controllers put it elsewhere).
    Extended,
}

fn read_at(read: &mut ReadAt<'_>, offset: u64, len: usize) -> Result<Vec<u8>, ProbeError> {
    let mut buf = vec![0u8; len];
    read(offset, &mut buf).map_err(|source| ProbeError::Io { offset, source })?;
    Ok(buf)
}

/// Find and load DDF metadata; `Ok(None)` when there is no anchor.
pub(crate) fn probe(
    dev_bytes: u64,
    read: &mut ReadAt<'_>,
    search: AnchorSearch,
) -> Result<Option<Ddf>, ProbeError> {
    if dev_bytes <= DDF_REGION_BYTES || !dev_bytes.is_multiple_of(SECTOR_BYTES) {
        return Ok(None);
    }
    let dev_sectors = dev_bytes / SECTOR_BYTES;
    let Some((anchor_offset, anchor_bytes)) = find_anchor(dev_bytes, read, search)? else {
        return Ok(None);
    };
    let anchor_lba = anchor_offset / SECTOR_BYTES;
    let anchor = Header::parse(&anchor_bytes, anchor_lba, HeaderType::Anchor)
        .map_err(|e| ProbeError::Format(e.at_device_offset(anchor_offset % SECTOR_BYTES)))?;
    let primary = load_copy(&anchor, HeaderType::Primary, dev_sectors, read)?;
    let secondary = match anchor.secondary_lba() {
        Some(_) => Some(load_copy(
            &anchor,
            HeaderType::Secondary,
            dev_sectors,
            read,
        )?),
        None => None,
    };
    let (first, second) = order_copies(primary, secondary);
    let first_err = match first {
        Ok(h) => match load_sections(&h, dev_sectors, read) {
            Ok(parts) => {
                let ddf = build(anchor, anchor_offset, h, parts, Vec::new(), dev_sectors);
                return Ok(Some(ddf));
            }
            Err(ProbeError::Format(e)) => e,
            Err(other) => return Err(other),
        },
        Err(e) => e,
    };
    if let Some(Ok(h)) = second {
        let note = format!("{first_err}; using the {:?} copy instead", h.header_type());
        if let Ok(parts) = load_sections(&h, dev_sectors, read) {
            let ddf = build(anchor, anchor_offset, h, parts, vec![note], dev_sectors);
            return Ok(Some(ddf));
        }
    }
    Err(ProbeError::Format(first_err))
}

fn build(
    anchor: Header,
    anchor_offset: u64,
    active: Header,
    parts: Parts,
    mut notes: Vec<String>,
    dev_sectors: u64,
) -> Ddf {
    let other = other_copy(&anchor, &active, dev_sectors);
    if other.is_none() && anchor.secondary_lba().is_some() {
        notes.push("the other header copy cannot be placed; writes update one copy".into());
    }
    let positions = Positions {
        pd_index: parts.phys.iter().map(|p| p.index).collect(),
        vd_index: parts.virt.iter().map(|v| v.index).collect(),
        config_slot: parts.configs.iter().map(|c| c.slot).collect(),
    };
    let kept = Kept {
        anchor_offset,
        other,
        sections: parts.kept,
        positions,
        erased_config_slots: Vec::new(),
        rewrite_config_section: false,
    };
    Ddf {
        anchor,
        active,
        notes,
        controller: parts.controller,
        phys: parts.phys,
        virt: parts.virt,
        configs: parts.configs,
        disk_data: parts.disk_data,
        this_pd: parts.this_pd,
        kept,
    }
}

/// The sections a writer rewrites in every copy.
pub(crate) const WRITTEN_SECTIONS: [SectionKind; 5] = [
    SectionKind::Controller,
    SectionKind::PhysRecords,
    SectionKind::VirtRecords,
    SectionKind::Config,
    SectionKind::DiskData,
];

/// The copy that was not loaded, rebuilt from the one that was, as mdadm writes
/// both from one in-memory header; `None` when there is no second copy or its
/// sections would not fit before the anchor.
fn other_copy(anchor: &Header, active: &Header, dev_sectors: u64) -> Option<Header> {
    let (kind, lba) = match active.header_type() {
        HeaderType::Secondary => (HeaderType::Primary, anchor.primary_lba()),
        _ => (HeaderType::Secondary, anchor.secondary_lba()?),
    };
    let copy = active.as_copy(kind, lba);
    let fits = WRITTEN_SECTIONS.iter().all(|&k| {
        copy.section(k).is_some_and(|l| {
            let end = lba
                .checked_add(u64::from(l.offset_sectors))
                .and_then(|s| s.checked_add(u64::from(l.len_sectors)));
            end.is_some_and(|e| e < dev_sectors)
        })
    });
    (lba < dev_sectors - 1 && fits).then_some(copy)
}

/// The anchor's device byte offset and bytes, if found.
fn find_anchor(
    dev_bytes: u64,
    read: &mut ReadAt<'_>,
    search: AnchorSearch,
) -> Result<Option<(u64, Vec<u8>)>, ProbeError> {
    let last = dev_bytes - SECTOR_BYTES;
    let bytes = read_at(read, last, HEADER_BYTES)?;
    if has_magic(&bytes) {
        return Ok(Some((last, bytes)));
    }
    if search == AnchorSearch::LastSector {
        return Ok(None);
    }
    // mdadm takes the first 4-byte-aligned magic from the start of the region.
    let start = dev_bytes - DDF_REGION_BYTES;
    let mut chunk_start = start;
    while chunk_start < dev_bytes {
        let len = (dev_bytes - chunk_start).min(SEARCH_CHUNK_BYTES as u64) as usize;
        let chunk = read_at(read, chunk_start, len)?;
        // Most of an unused region is zeros: one comparison skips a chunk
        // that holds no magic, where the word-by-word walk costs 256 Ki
        // steps (and makes the fuzz target crawl under instrumentation).
        if chunk[..] == ZERO_CHUNK[..len] {
            chunk_start += len as u64;
            continue;
        }
        for at in (0..len).step_by(SEARCH_STEP_BYTES) {
            if has_magic(&chunk[at..]) {
                let offset = chunk_start + at as u64;
                if offset + HEADER_BYTES as u64 > dev_bytes {
                    return Ok(None);
                }
                return Ok(Some((offset, read_at(read, offset, HEADER_BYTES)?)));
            }
        }
        chunk_start += len as u64;
    }
    Ok(None)
}

fn has_magic(bytes: &[u8]) -> bool {
    bytes
        .get(..4)
        .is_some_and(|m| m == HEADER_MAGIC.to_be_bytes())
}

/// Read and check one header copy; a failure here is a value, not yet an error,
/// because the other copy may serve.
fn load_copy(
    anchor: &Header,
    kind: HeaderType,
    dev_sectors: u64,
    read: &mut ReadAt<'_>,
) -> Result<Result<Header, FormatError>, ProbeError> {
    let (lba, field_at) = match kind {
        HeaderType::Secondary => (anchor.secondary_lba().unwrap_or(u64::MAX), 104),
        _ => (anchor.primary_lba(), 96),
    };
    // mdadm `load_ddf_header`: the copy must lie before the anchor's sector.
    if lba >= dev_sectors - 1 {
        let name = if kind == HeaderType::Primary {
            "primary_lba"
        } else {
            "secondary_lba"
        };
        let problem = Problem::Invalid {
            found: lba,
            why: "beyond the end of the device",
        };
        let err = FormatError::new(
            header::ANCHOR_NAME,
            name,
            anchor.field_offset(field_at),
            problem,
        );
        return Ok(Err(err));
    }
    let bytes = read_at(read, lba * SECTOR_BYTES, HEADER_BYTES)?;
    Ok(Header::parse(&bytes, lba, kind).and_then(|h| h.check_matches(anchor).map(|()| h)))
}

type Copy = Result<Header, FormatError>;

/// Which copy to use: the secondary wins if the primary is unusable, or is
/// open while the secondary is closed, or is older while the secondary is
/// closed. mdadm's `load_ddf_headers` keeps an open primary that is newer
/// than a closed secondary; umd does not: an open copy is one whose update
/// a power loss may have cut between its header and its sections, while a
/// closed one was whole when it was closed (`write.rs`, `Ddf::write_update`).
fn order_copies(primary: Copy, secondary: Option<Copy>) -> (Copy, Option<Copy>) {
    let prefer_secondary = match (&primary, &secondary) {
        (Err(_), Some(Ok(_))) => true,
        (Ok(p), Some(Ok(s))) => s.openflag() == 0 && (p.openflag() != 0 || p.seq() < s.seq()),
        _ => false,
    };
    match (prefer_secondary, secondary) {
        (true, Some(s)) => (s, Some(primary)),
        (_, secondary) => (primary, secondary),
    }
}

/// Everything the sections of one header copy hold.
struct Parts {
    controller: Controller,
    phys: Vec<PhysDisk>,
    virt: Vec<VirtDisk>,
    configs: Vec<VdConfig>,
    disk_data: DiskData,
    this_pd: usize,
    kept: KeptSections,
}

/// The verified bytes of each structure the writer rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptSections {
    /// Controller data (one sector).
    pub(crate) controller: Vec<u8>,
    /// The whole physical disk records section.
    pub(crate) phys: Vec<u8>,
    /// The whole virtual disk records section.
    pub(crate) virt: Vec<u8>,
    /// The whole config section, every slot.
    pub(crate) config: Vec<u8>,
    /// disk_data (one sector).
    pub(crate) disk_data: Vec<u8>,
}

/// Read section `kind` of `header`; returns its bytes and device byte offset.
fn read_section(
    header: &Header,
    kind: SectionKind,
    dev_sectors: u64,
    read: &mut ReadAt<'_>,
) -> Result<(Vec<u8>, u64), ProbeError> {
    let entry_at = header::SECTIONS_OFFSET + kind as usize * header::SECTION_ENTRY_BYTES;
    let invalid = |at: usize, found: u64, why: &'static str| {
        let field = if at == entry_at {
            "section_offset"
        } else {
            "section_length"
        };
        let problem = Problem::Invalid { found, why };
        ProbeError::Format(FormatError::new(
            HEADER_NAME,
            field,
            header.field_offset(at),
            problem,
        ))
    };
    let loc = header
        .section(kind)
        .ok_or_else(|| invalid(entry_at, u64::from(u32::MAX), "required section is absent"))?;
    let len_at = entry_at + 4;
    let len = loc.len_sectors;
    if len == 0 || len > SECTION_SECTORS_MAX {
        return Err(invalid(
            len_at,
            u64::from(len),
            "section length out of range",
        ));
    }
    let table = matches!(kind, SectionKind::PhysRecords | SectionKind::VirtRecords);
    if table && !TABLE_SECTION_SECTORS.contains(&len) {
        return Err(invalid(
            len_at,
            u64::from(len),
            "table length not 2, 8, 32, 128 or 512",
        ));
    }
    let lba = header.lba() + u64::from(loc.offset_sectors);
    if lba + u64::from(len) > dev_sectors {
        return Err(invalid(
            entry_at,
            u64::from(loc.offset_sectors),
            "section beyond device end",
        ));
    }
    let offset = lba * SECTOR_BYTES;
    let bytes = read_at(read, offset, len as usize * SECTOR_BYTES as usize)?;
    Ok((bytes, offset))
}

fn load_sections(
    header: &Header,
    dev_sectors: u64,
    read: &mut ReadAt<'_>,
) -> Result<Parts, ProbeError> {
    let fmt = ProbeError::Format;
    let (ctrl_bytes, at) = read_section(header, SectionKind::Controller, dev_sectors, read)?;
    let controller = records::parse_controller(&ctrl_bytes, at).map_err(fmt)?;
    let (phys_bytes, at) = read_section(header, SectionKind::PhysRecords, dev_sectors, read)?;
    let phys = records::parse_phys(&phys_bytes, at, header.max_pd_entries()).map_err(fmt)?;
    let (virt_bytes, at) = read_section(header, SectionKind::VirtRecords, dev_sectors, read)?;
    let virt = records::parse_virt(&virt_bytes, at, header.max_vd_entries()).map_err(fmt)?;
    let (dd_bytes, at) = read_section(header, SectionKind::DiskData, dev_sectors, read)?;
    let disk_data = records::parse_disk_data(&dd_bytes, at).map_err(fmt)?;
    let (config_bytes, at) = read_section(header, SectionKind::Config, dev_sectors, read)?;
    let configs = parse_configs(header, &config_bytes, at).map_err(fmt)?;
    // mdadm finds "this" disk's entry by GUID (`load_ddf_local`).
    let this_pd = phys
        .iter()
        .position(|pd| pd.guid == disk_data.guid)
        .ok_or_else(|| {
            let problem = Problem::Invalid {
                found: 0,
                why: "no physical disk entry has this GUID",
            };
            fmt(FormatError::new(
                records::DISK_DATA_NAME,
                "guid",
                at_guid(header),
                problem,
            ))
        })?;
    check_configs(&configs, &virt, header)?;
    // Controller data and disk_data are one sector each (their parsers checked
    // the length); any rest of their sections is not theirs to rewrite.
    let kept = KeptSections {
        controller: ctrl_bytes[..ONE_SECTOR].to_vec(),
        phys: phys_bytes,
        virt: virt_bytes,
        config: config_bytes,
        disk_data: dd_bytes[..ONE_SECTOR].to_vec(),
    };
    Ok(Parts {
        controller,
        phys,
        virt,
        configs,
        disk_data,
        this_pd,
        kept,
    })
}

/// Device byte offset of disk_data's GUID (for the error above).
fn at_guid(header: &Header) -> u64 {
    let off = header
        .section(SectionKind::DiskData)
        .map_or(0, |l| u64::from(l.offset_sectors));
    (header.lba() + off) * SECTOR_BYTES + 8
}

fn parse_configs(header: &Header, section: &[u8], base: u64) -> Result<Vec<VdConfig>, FormatError> {
    let geo = config::geometry(
        header.config_record_len_sectors(),
        header.max_primary_element_entries(),
        header.field_offset(header::CONFIG_RECORD_LEN_OFFSET),
    )?;
    let mut configs = Vec::new();
    for (slot, bytes) in section.chunks_exact(geo.record_bytes).enumerate() {
        let at = base + (slot * geo.record_bytes) as u64;
        if let Slot::Vd(c) = config::parse_slot(bytes, slot as u32, at, geo)? {
            configs.push(c);
        }
    }
    Ok(configs)
}

/// Every configuration record must configure a known virtual disk.
fn check_configs(
    configs: &[VdConfig],
    virt: &[VirtDisk],
    header: &Header,
) -> Result<(), ProbeError> {
    let geo_bytes = usize::from(header.config_record_len_sectors()) * SECTOR_BYTES as usize;
    let base = header
        .section(SectionKind::Config)
        .map_or(0, |l| u64::from(l.offset_sectors));
    for c in configs {
        if !virt.iter().any(|v| v.guid == c.guid) {
            let at =
                (header.lba() + base) * SECTOR_BYTES + (c.slot as usize * geo_bytes) as u64 + 8;
            let problem = Problem::Invalid {
                found: u64::from(c.slot),
                why: "names no virtual disk",
            };
            return Err(ProbeError::Format(FormatError::new(
                config::CONFIG_NAME,
                "guid",
                at,
                problem,
            )));
        }
    }
    Ok(())
}

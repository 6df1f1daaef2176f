//! Finding metadata on a device: where to look for each format, and what is there.
//!
//! Pure: the caller supplies a read function, so the same code serves real
//! files, in-memory images in tests and fuzzing. Probe order and tie-breaking
//! follow formats.md §8 pitfall 2: every candidate location is tried, a
//! superblock counts only if its magic, checksum and `super_offset` all agree
//! with where it was found, and two different valid md superblocks on one device
//! are refused as ambiguous rather than guessed between.

use crate::error::FormatError;
use crate::info::MdInfo;

/// Reads `buf.len()` bytes at byte `offset` of the device.
pub type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> std::io::Result<()> + 'a;

/// A parsed metadata block, kept whole for `umd examine`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Metadata {
    /// md 0.90.
    V0_90(crate::sb0::Superblock0),
    /// md 1.x.
    V1(crate::sb1::Superblock1),
    /// DDF container metadata as seen from this device.
    Ddf(Box<crate::ddf::Ddf>),
}

impl Metadata {
    /// The format's name, for messages: `md 0.90`, `md 1.x` or `DDF`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::V0_90(_) => "md 0.90",
            Self::V1(_) => "md 1.x",
            Self::Ddf(_) => "DDF",
        }
    }

    /// The normalized view: one entry per array this device belongs to
    /// (always one for md; one per virtual disk for DDF, none for a DDF
    /// device that is in no virtual disk).
    #[must_use]
    pub fn infos(&self) -> Vec<MdInfo> {
        match self {
            Self::V0_90(sb) => vec![sb.info()],
            Self::V1(sb) => vec![sb.info()],
            Self::Ddf(ddf) => ddf.infos(),
        }
    }
}

/// Why probing a device failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProbeError {
    /// Reading the device failed at this byte offset.
    Io {
        /// Byte offset of the failed read.
        offset: u64,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Metadata was there (the magic matched) but is invalid.
    Format(FormatError),
    /// No md or DDF metadata at any known location.
    NotFound,
    /// More than one different valid superblock: refuse rather than guess.
    Ambiguous {
        /// Human-readable list of what was found, e.g. "1.2 at sector 8 and 0.90 at sector 20352".
        found: String,
    },
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { offset, source } => write!(f, "read error at byte {offset}: {source}"),
            Self::Format(e) => write!(f, "{e}"),
            Self::NotFound => write!(f, "no md superblock or DDF metadata found"),
            Self::Ambiguous { found } => {
                write!(
                    f,
                    "several different superblocks found ({found}); refusing to guess"
                )
            }
        }
    }
}

impl std::error::Error for ProbeError {}

/// Probe a device of `dev_bytes` bytes for md 0.90, 1.0, 1.1, 1.2 and DDF
/// metadata.
///
/// Returns the one valid metadata block found. Candidates whose magic does
/// not match are silently skipped; a candidate whose magic matches but which is
/// invalid is reported as [`ProbeError::Format`] only if nothing valid was found
/// elsewhere.
pub fn probe(dev_bytes: u64, read: &mut ReadAt<'_>) -> Result<Metadata, ProbeError> {
    probe_impl(dev_bytes, read)
}

fn probe_impl(dev_bytes: u64, read: &mut ReadAt<'_>) -> Result<Metadata, ProbeError> {
    let md = probe_md(dev_bytes, read);
    // The DDF prober runs whatever md found, so stale md and DDF metadata on
    // one device are refused together rather than one silently winning.
    let ddf = crate::ddf::probe(dev_bytes, read);
    // A location that cannot be read says nothing about the others: a
    // valid superblock found elsewhere wins (as mdadm, trying each format
    // in turn, takes a read error as "not this one"). Only when nothing
    // valid was found does a read error stand, since what it hides is
    // unknown.
    match (md, ddf) {
        (Ok(Some(m)), Ok(Some(_))) => Err(ProbeError::Ambiguous {
            found: format!("{} and DDF", describe(&m)),
        }),
        (Ok(Some(m)), _) => Ok(m),
        (_, Ok(Some(d))) => Ok(Metadata::Ddf(Box::new(d))),
        (Ok(None), Ok(None)) => Err(ProbeError::NotFound),
        (md, ddf) => Err(worst(md.err(), ddf.err())),
    }
}

/// The error to report when nothing valid was found: a read error first
/// (what it hides is unknown), then md's, then DDF's.
fn worst(md: Option<ProbeError>, ddf: Option<ProbeError>) -> ProbeError {
    let is_io = |e: &Option<ProbeError>| matches!(e, Some(ProbeError::Io { .. }));
    let (first, second) = if is_io(&ddf) && !is_io(&md) {
        (ddf, md)
    } else {
        (md, ddf)
    };
    first.or(second).unwrap_or(ProbeError::NotFound)
}

/// Bytes read at every md candidate location (formats.md §2.1: the kernel
/// reads 4 KiB; a 0.90 superblock is exactly 4 KiB).
const MD_READ_BYTES: usize = 4096;
const _: () = assert!(MD_READ_BYTES == crate::sb0::SB_BYTES);
const _: () = assert!(MD_READ_BYTES == crate::sb1::READ_BYTES);

/// Where a candidate came from, for messages.
fn describe(m: &Metadata) -> String {
    match m {
        Metadata::V0_90(sb) => {
            format!("0.90 at sector {}", sb.found_at_sector.unwrap_or_default())
        }
        Metadata::V1(sb) => format!("1.{} at sector {}", sb.minor(), sb.super_offset),
        Metadata::Ddf(_) => "DDF".to_owned(),
    }
}

/// Identity used to tell agreeing from disagreeing candidates.
fn identity(m: &Metadata) -> Option<(crate::info::MetadataFormat, crate::info::ArrayUuid)> {
    match m {
        Metadata::V0_90(sb) => Some((sb.info().format, sb.uuid())),
        Metadata::V1(sb) => Some((
            crate::info::MetadataFormat::V1 { minor: sb.minor() },
            crate::info::ArrayUuid(sb.set_uuid),
        )),
        Metadata::Ddf(_) => None,
    }
}

/// Read one candidate; `None` if the device is too short to hold it.
fn read_candidate(
    dev_bytes: u64,
    sector: u64,
    read: &mut ReadAt<'_>,
) -> Result<Option<Vec<u8>>, ProbeError> {
    let offset = sector
        .checked_mul(crate::SECTOR_BYTES)
        .ok_or(ProbeError::NotFound)?;
    if offset
        .checked_add(MD_READ_BYTES as u64)
        .is_none_or(|end| end > dev_bytes)
    {
        return Ok(None);
    }
    let mut buf = vec![0u8; MD_READ_BYTES];
    read(offset, &mut buf).map_err(|source| ProbeError::Io { offset, source })?;
    Ok(Some(buf))
}

/// Probe only the md superblock locations: 1.1 at sector 0, 1.2 at sector 8,
/// 1.0 and 0.90 at their end locations (formats.md §1.1, §2.1, §8 pitfall 2).
///
/// `Ok(None)` when no md magic is anywhere; [`ProbeError::Format`] when
/// only invalid superblocks were found (the first one's error, with device
/// byte offsets); [`ProbeError::Ambiguous`] when valid superblocks disagree.
/// A 1.x superblock whose `super_offset` is not where it was found belongs to
/// some other layout (a partition, a copy) and is ignored.
pub fn probe_md(dev_bytes: u64, read: &mut ReadAt<'_>) -> Result<Option<Metadata>, ProbeError> {
    let dev_sectors = dev_bytes / crate::SECTOR_BYTES;
    let mut valid: Vec<Metadata> = Vec::new();
    let mut first_error: Option<FormatError> = None;
    // A location that cannot be read is skipped; its error stands only if
    // no valid superblock is found elsewhere (see `probe`).
    let mut first_io: Option<ProbeError> = None;
    let mut candidate = |at: u64, read: &mut ReadAt<'_>| match read_candidate(dev_bytes, at, read) {
        Ok(buf) => Ok(buf),
        Err(e @ ProbeError::Io { .. }) => {
            first_io.get_or_insert(e);
            Ok(None)
        }
        Err(e) => Err(e),
    };
    for minor in [1u8, 2, 0] {
        let Some(at) = crate::sb1::super_offset_sectors(minor, dev_sectors) else {
            continue;
        };
        let Some(buf) = candidate(at, read)? else {
            continue;
        };
        if !crate::sb1::looks_like_sb1(&buf) {
            if crate::sb1::has_md_magic(&buf) && crate::sb0::Superblock0::parse(&buf).is_err() {
                // md magic with another major version: broken, not absent.
                if let Err(e) = crate::sb1::Superblock1::parse(&buf, at, dev_sectors) {
                    first_error.get_or_insert(e.at_device_offset(at * crate::SECTOR_BYTES));
                }
            }
            continue;
        }
        if crate::sb1::claimed_super_offset(&buf) != Some(at) {
            continue;
        }
        match crate::sb1::Superblock1::parse(&buf, at, dev_sectors) {
            Ok(sb) => valid.push(Metadata::V1(sb)),
            Err(e) => {
                first_error.get_or_insert(e.at_device_offset(at * crate::SECTOR_BYTES));
            }
        }
    }
    if let Some(at) = crate::sb0::super_offset_sectors(dev_sectors) {
        if let Some(buf) = candidate(at, read)? {
            if crate::sb0::has_magic(&buf) {
                match crate::sb0::Superblock0::parse_at(&buf, at) {
                    Ok(sb) => valid.push(Metadata::V0_90(sb)),
                    Err(e) => {
                        first_error.get_or_insert(e.at_device_offset(at * crate::SECTOR_BYTES));
                    }
                }
            }
        }
    }
    match first_io {
        Some(e) if valid.is_empty() => Err(e),
        _ => pick(valid, first_error),
    }
}

/// One valid candidate wins; several must agree; none leaves the first error.
fn pick(
    mut valid: Vec<Metadata>,
    first_error: Option<FormatError>,
) -> Result<Option<Metadata>, ProbeError> {
    let Some(first) = valid.first() else {
        return first_error.map_or(Ok(None), |e| Err(ProbeError::Format(e)));
    };
    let id = identity(first);
    if valid.iter().any(|m| identity(m) != id) {
        let found = valid.iter().map(describe).collect::<Vec<_>>().join(" and ");
        return Err(ProbeError::Ambiguous { found });
    }
    Ok(Some(valid.swap_remove(0)))
}

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
                write!(f, "several different superblocks found ({found}); refusing to guess")
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
    let _ = (dev_bytes, read);
    todo!("probe implementation")
}

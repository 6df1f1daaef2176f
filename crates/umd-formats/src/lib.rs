//! Linux md on-disk formats, parsed and serialised without I/O.
//!
//! Every structure is read in two steps (style R17): a zerocopy view of the raw
//! bytes, then a validated type that is the only thing the rest of umd sees and
//! the only thing that can be written back. Validation refuses what the kernel
//! refuses (unknown feature bits, non-zero pad, bad checksums) and never guesses.
//!
//! [`probe`] finds metadata on a device through a caller-supplied read function,
//! and [`info::MdInfo`] is the one shape every format reduces to, so assembly
//! does not care whether a member carried 0.90, 1.x or DDF metadata.
#![forbid(unsafe_code)]

mod bblog;
pub mod bitmap;
pub mod checksum;
pub mod ddf;
pub mod error;
pub mod info;
pub mod ppl;
pub mod probe;
pub mod sb0;
pub mod sb1;

pub use error::{FormatError, Problem};
pub use info::MdInfo;

/// One sector: the unit of every md offset and size (formats.md, "Units").
pub const SECTOR_BYTES: u64 = 512;

/// Entry points for the fuzz targets (style R21): each parses arbitrary bytes
/// and, where parsing succeeds, checks that serialising and parsing again gives
/// the same value. A panic here is a bug.
#[doc(hidden)]
pub mod fuzz {
    /// Parse `data` as a v0.90 superblock (either byte order).
    pub fn sb0(data: &[u8]) {
        crate::sb0::fuzz_entry(data);
    }
    /// Parse `data` as a v1.x superblock.
    pub fn sb1(data: &[u8]) {
        crate::sb1::fuzz_entry(data);
    }
    /// Parse `data` as a write-intent bitmap superblock.
    pub fn bitmap(data: &[u8]) {
        crate::bitmap::fuzz_entry(data);
    }
    /// Parse `data` as a PPL header and walk it as a PPL area.
    pub fn ppl(data: &[u8]) {
        crate::ppl::fuzz_entry(data);
    }
    /// Treat `data` as the tail of a device and probe it for DDF.
    pub fn ddf(data: &[u8]) {
        crate::ddf::fuzz_entry(data);
    }
}

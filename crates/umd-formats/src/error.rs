//! `FormatError`: bad input, with the structure, field and byte offset at fault.
//!
//! Every refusal names what was wrong and where (product.md: "an error names
//! what was wrong and where"), so `umd examine` can print one precise line.

use std::fmt;

/// What was wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The input ended before the structure did.
    Truncated {
        /// Bytes the structure needs.
        need: usize,
        /// Bytes that were there.
        have: usize,
    },
    /// A magic number did not match.
    BadMagic {
        /// The magic the format requires.
        expected: u64,
        /// The value found.
        found: u64,
    },
    /// A stored checksum does not match the computed one.
    BadChecksum {
        /// The checksum computed over the bytes.
        computed: u64,
        /// The checksum stored in the structure.
        stored: u64,
    },
    /// A field holds a value the format does not allow.
    Invalid {
        /// The value found.
        found: u64,
        /// Why it is refused.
        why: &'static str,
    },
    /// Feature bits this implementation does not know (the kernel refuses them too).
    UnknownFeature {
        /// The unknown bits.
        bits: u64,
    },
    /// Padding that must be zero is not.
    NonZeroPad,
    /// An internal invariant broke: please report this.
    Unreachable(&'static str),
}

/// Bad on-disk input: which structure, which field, at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The structure being parsed ("md 1.x superblock", "DDF anchor header", ...).
    pub structure: &'static str,
    /// The field at fault (md's name where md has one).
    pub field: &'static str,
    /// Byte offset of that field from the start of the device, or of the
    /// buffer when the device position is not known.
    pub offset: u64,
    /// What was wrong.
    pub problem: Problem,
}

impl FormatError {
    /// An error in `field` of `structure` at byte `offset`.
    #[must_use]
    pub fn new(
        structure: &'static str,
        field: &'static str,
        offset: u64,
        problem: Problem,
    ) -> Self {
        Self {
            structure,
            field,
            offset,
            problem,
        }
    }

    /// The same error with `base` added to its offset: parsers report offsets
    /// within their buffer; the prober knows where that buffer sits on the device.
    #[must_use]
    pub fn at_device_offset(mut self, base: u64) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} field {} at byte {}: ",
            self.structure, self.field, self.offset
        )?;
        match &self.problem {
            Problem::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            Problem::BadMagic { expected, found } => {
                write!(f, "bad magic: expected {expected:#x}, found {found:#x}")
            }
            Problem::BadChecksum { computed, stored } => {
                write!(
                    f,
                    "bad checksum: stored {stored:#x}, computed {computed:#x}"
                )
            }
            Problem::Invalid { found, why } => write!(f, "invalid value {found}: {why}"),
            Problem::UnknownFeature { bits } => write!(f, "unknown feature bits {bits:#x}"),
            Problem::NonZeroPad => write!(f, "reserved padding is not zero"),
            Problem::Unreachable(what) => write!(f, "internal error, please report: {what}"),
        }
    }
}

impl std::error::Error for FormatError {}

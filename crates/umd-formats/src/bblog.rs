//! The md 1.x bad-block log: the list of member ranges md stopped trusting,
//! at `bblog_offset` from the superblock (formats.md §2.10).
//!
//! Why a file of its own: the log is a separate on-disk structure with its
//! own entry encoding and limits; the superblock only says where it lies.

use crate::error::{FormatError, Problem};

/// Bytes per bad-block log entry (formats.md §2.10).
pub const BBLOG_ENTRY_BYTES: usize = 8;
/// Entries the kernel loads at most: one 4 KiB page (formats.md §2.10).
pub const BBLOG_ENTRIES_MAX: usize = 512;
/// Low bits of an entry holding the length (formats.md §2.10).
const BBLOG_LEN_BITS: u32 = 10;
/// Mask of the length bits (formats.md §2.10).
const BBLOG_LEN_MASK: u64 = (1 << BBLOG_LEN_BITS) - 1;
/// Longest run one entry records, in units (formats.md §2.10).
const BBLOG_LEN_MAX: u64 = 512;
/// An all-ones entry ends the list (formats.md §2.10).
const BBLOG_END: u64 = u64::MAX;

/// One bad range from the log, in sectors relative to `data_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadBlock {
    /// First bad sector, relative to data_offset.
    pub start_sectors: u64,
    /// Number of bad sectors.
    pub len_sectors: u64,
}

/// Parse the bad-block log stored at `bblog_offset` (formats.md §2.10).
///
/// Reads entries until the first all-ones one, at most `BBLOG_ENTRIES_MAX`
/// (the page the kernel loads) or as many whole entries as `bytes` holds.
pub fn parse_bblog(bytes: &[u8], bblog_shift: u8) -> Result<Vec<BadBlock>, FormatError> {
    const S: &str = "md 1.x bad-block log";
    if bblog_shift >= 64 {
        return Err(FormatError::new(
            S,
            "bblog_shift",
            0,
            Problem::Invalid {
                found: bblog_shift.into(),
                why: "unit of 2^64 sectors or more",
            },
        ));
    }
    let mut out = Vec::new();
    for (i, e) in bytes
        .chunks_exact(BBLOG_ENTRY_BYTES)
        .take(BBLOG_ENTRIES_MAX)
        .enumerate()
    {
        let at = (i * BBLOG_ENTRY_BYTES) as u64;
        let raw = u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
        if raw == BBLOG_END {
            break;
        }
        let len = raw & BBLOG_LEN_MASK;
        if len == 0 || len > BBLOG_LEN_MAX {
            let why = "bad-block entry length must be 1..512 units";
            return Err(FormatError::new(
                S,
                "entry",
                at,
                Problem::Invalid { found: raw, why },
            ));
        }
        let start = raw >> BBLOG_LEN_BITS;
        let scale = 1u64 << bblog_shift;
        let (Some(start_sectors), Some(len_sectors)) =
            (start.checked_mul(scale), len.checked_mul(scale))
        else {
            let why = "bad-block entry overflows 64-bit sectors";
            return Err(FormatError::new(
                S,
                "entry",
                at,
                Problem::Invalid { found: raw, why },
            ));
        };
        out.push(BadBlock {
            start_sectors,
            len_sectors,
        });
    }
    Ok(out)
}

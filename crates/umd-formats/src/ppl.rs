//! md's partial parity log (PPL) for raid5: the 4 KiB header, its entries,
//! and the CRC-32C that guards both (formats.md §2.11).
//!
//! Each member of a PPL raid5 reserves an area (`ppl.offset`/`ppl.size` in
//! its 1.x superblock). A write to a stripe is first logged on that stripe's
//! parity member: a header whose entries say which array sectors are about to
//! change, followed by the *partial parity* of each entry (the XOR of the old
//! data of the chunks the write leaves alone). After a crash, parity for the
//! logged range is that partial parity XOR whatever data is now on the
//! modified chunks, whichever of old or new landed.
//!
//! Layout of the header (`struct ppl_header`, all little-endian):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 512 | reserved, all 0xff |
//! | 512 | 4 | signature: CRC-32C of the array UUID |
//! | 516 | 4 | padding, zero |
//! | 520 | 8 | generation |
//! | 528 | 4 | entries_count (at most 148) |
//! | 532 | 4 | checksum: CRC-32C of the 4 KiB with this field zero |
//! | 536 | 148 x 24 | entries |
//!
//! An entry: u64 `data_sector` (first array sector of the modified data, in
//! 512-byte units for native metadata), u32 `pp_size` (bytes of partial
//! parity after the header, 0 for a full-stripe write), u32 `data_size`
//! (bytes of modified data), u32 `parity_disk` (the parity member's role),
//! u32 `checksum` (CRC-32C of the entry's partial parity; 0 when empty).
//!
//! With MULTIPLE_PPLS the area is a ring of header + partial parity units;
//! a reader walks from the start of the area, each next header sitting right
//! after the previous unit's partial parity, and keeps the last valid one
//! whose generation did not go down ([`PplScan`]). A single-PPL area is the
//! same walk that ends after one unit, so one reader serves both.

use crate::error::{FormatError, Problem};
use core::mem::{offset_of, size_of};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

const STRUCTURE: &str = "PPL header";

/// Bytes of a PPL header (`PPL_HEADER_SIZE`).
pub const PPL_HEADER_BYTES: usize = 4096;
/// Bytes of 0xff at the start of a header (`PPL_HDR_RESERVED`).
pub const PPL_RESERVED_BYTES: usize = 512;
/// Entries a header holds (`PPL_HDR_MAX_ENTRIES`).
pub const PPL_MAX_ENTRIES: usize = 148;
/// Bytes of one entry.
pub const PPL_ENTRY_BYTES: usize = 24;
/// Partial-parity space of one unit in a MULTIPLE_PPLS ring (md's
/// `PPL_SPACE_SIZE`); an area at least twice (this + a header) is a ring.
pub const PPL_RING_SPACE_BYTES: usize = 128 * 1024;
/// The area mdadm reserves for 1.x arrays (formats.md §2.9): 1 MiB.
pub const PPL_AREA_SECTORS_DEFAULT: u16 = 2048;

/// The standard CRC-32C (Castagnoli; init all-ones, final inversion).
const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32C of `bytes`, as PPL stores it.
#[must_use]
pub fn crc32c(bytes: &[u8]) -> u32 {
    CASTAGNOLI.checksum(bytes)
}

/// A running CRC-32C over several pieces (one entry's partial parity may be
/// produced in parts).
pub struct Crc32c(crc::Digest<'static, u32>);

impl Crc32c {
    /// An empty checksum.
    #[must_use]
    pub fn new() -> Self {
        Self(CASTAGNOLI.digest())
    }
    /// Feed `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The checksum of everything fed.
    #[must_use]
    pub fn finish(self) -> u32 {
        self.0.finalize()
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

/// The header signature of a native array: CRC-32C of its UUID bytes.
#[must_use]
pub fn signature(uuid: &[u8; 16]) -> u32 {
    crc32c(uuid)
}

/// `struct ppl_header_entry` as stored.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
struct RawEntry {
    data_sector: U64,
    pp_size: U32,
    data_size: U32,
    parity_disk: U32,
    checksum: U32,
}

const _: () = assert!(size_of::<RawEntry>() == PPL_ENTRY_BYTES);
const _: () = assert!(offset_of!(RawEntry, pp_size) == 8);
const _: () = assert!(offset_of!(RawEntry, data_size) == 12);
const _: () = assert!(offset_of!(RawEntry, parity_disk) == 16);
const _: () = assert!(offset_of!(RawEntry, checksum) == 20);

/// `struct ppl_header` as stored, padded to its 4 KiB.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawHeader {
    reserved: [u8; PPL_RESERVED_BYTES],
    signature: U32,
    padding: U32,
    generation: U64,
    entries_count: U32,
    checksum: U32,
    entries: [RawEntry; PPL_MAX_ENTRIES],
    tail: [u8; 8],
}

const _: () = assert!(size_of::<RawHeader>() == PPL_HEADER_BYTES);
const _: () = assert!(offset_of!(RawHeader, signature) == 512);
const _: () = assert!(offset_of!(RawHeader, padding) == 516);
const _: () = assert!(offset_of!(RawHeader, generation) == 520);
const _: () = assert!(offset_of!(RawHeader, entries_count) == 528);
const _: () = assert!(offset_of!(RawHeader, checksum) == 532);
const _: () = assert!(offset_of!(RawHeader, entries) == 536);

/// One logged write: which array sectors change and where their partial
/// parity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PplEntry {
    /// First array sector of the modified data (block-size units; 512 for
    /// native metadata).
    pub data_sector: u64,
    /// Bytes of partial parity (0: a full-stripe write, no partial parity).
    pub pp_size: u32,
    /// Bytes of modified data.
    pub data_size: u32,
    /// Role of the stripe's parity member (the member holding this log).
    pub parity_disk: u32,
    /// CRC-32C of the partial parity.
    pub checksum: u32,
}

/// A validated PPL header. The reserved bytes, unused entry slots and the
/// checksum are not kept (md ignores them): [`PplHeader::to_bytes`] writes
/// them as md does, so a header md wrote is reproduced byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PplHeader {
    /// The array's signature ([`signature`] of the UUID for native arrays).
    pub signature: u32,
    /// Generation: grows with each unit written since the array started.
    pub generation: u64,
    /// The logged writes, in the order of their partial parity.
    pub entries: Vec<PplEntry>,
}

fn invalid(field: &'static str, offset: usize, found: u64, why: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        offset as u64,
        Problem::Invalid { found, why },
    )
}

impl PplHeader {
    /// An empty header, as md writes when it starts an array.
    #[must_use]
    pub fn empty(signature: u32) -> Self {
        Self {
            signature,
            generation: 0,
            entries: Vec::new(),
        }
    }

    /// Parse and validate 4 KiB at the start of `bytes`: checksum first
    /// (anything that fails it is not a header), then the fields. Offsets in
    /// errors are from the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let raw = raw_of(bytes)?;
        let stored = raw.checksum.get();
        let computed = header_checksum(bytes);
        if stored != computed {
            return Err(FormatError::new(
                STRUCTURE,
                "checksum",
                offset_of!(RawHeader, checksum) as u64,
                Problem::BadChecksum {
                    computed: computed.into(),
                    stored: stored.into(),
                },
            ));
        }
        if raw.padding.get() != 0 {
            return Err(FormatError::new(
                STRUCTURE,
                "padding",
                offset_of!(RawHeader, padding) as u64,
                Problem::NonZeroPad,
            ));
        }
        let count = raw.entries_count.get();
        if count as usize > PPL_MAX_ENTRIES {
            return Err(invalid(
                "entries_count",
                offset_of!(RawHeader, entries_count),
                count.into(),
                "more entries than a header holds (148)",
            ));
        }
        let mut entries = Vec::with_capacity(count as usize);
        for (i, e) in raw.entries[..count as usize].iter().enumerate() {
            let at = offset_of!(RawHeader, entries) + i * PPL_ENTRY_BYTES;
            let entry = PplEntry {
                data_sector: e.data_sector.get(),
                pp_size: e.pp_size.get(),
                data_size: e.data_size.get(),
                parity_disk: e.parity_disk.get(),
                checksum: e.checksum.get(),
            };
            if !entry.pp_size.is_multiple_of(512) {
                return Err(invalid(
                    "pp_size",
                    at + offset_of!(RawEntry, pp_size),
                    entry.pp_size.into(),
                    "not a whole number of sectors",
                ));
            }
            if entry.data_size == 0 || !entry.data_size.is_multiple_of(512) {
                return Err(invalid(
                    "data_size",
                    at + offset_of!(RawEntry, data_size),
                    entry.data_size.into(),
                    "not a positive whole number of sectors",
                ));
            }
            if entry.pp_size != 0 && !entry.data_size.is_multiple_of(entry.pp_size) {
                return Err(invalid(
                    "data_size",
                    at + offset_of!(RawEntry, data_size),
                    entry.data_size.into(),
                    "not a multiple of pp_size",
                ));
            }
            entries.push(entry);
        }
        Ok(Self {
            signature: raw.signature.get(),
            generation: raw.generation.get(),
            entries,
        })
    }

    /// Bytes of partial parity that follow this header.
    #[must_use]
    pub fn pp_bytes(&self) -> u64 {
        self.entries.iter().map(|e| u64::from(e.pp_size)).sum()
    }

    /// Serialise into `out` (4 KiB), checksum included. Refuses more than
    /// [`PPL_MAX_ENTRIES`] entries.
    pub fn write_to(&self, out: &mut [u8]) -> Result<(), FormatError> {
        if self.entries.len() > PPL_MAX_ENTRIES {
            return Err(invalid(
                "entries_count",
                offset_of!(RawHeader, entries_count),
                self.entries.len() as u64,
                "more entries than a header holds (148)",
            ));
        }
        let have = out.len();
        let out = out
            .get_mut(..PPL_HEADER_BYTES)
            .ok_or_else(|| truncated(have))?;
        let mut raw = RawHeader::new_zeroed();
        raw.reserved = [0xff; PPL_RESERVED_BYTES];
        raw.signature.set(self.signature);
        raw.generation.set(self.generation);
        raw.entries_count.set(self.entries.len() as u32);
        for (r, e) in raw.entries.iter_mut().zip(&self.entries) {
            r.data_sector.set(e.data_sector);
            r.pp_size.set(e.pp_size);
            r.data_size.set(e.data_size);
            r.parity_disk.set(e.parity_disk);
            r.checksum.set(e.checksum);
        }
        out.copy_from_slice(raw.as_bytes());
        let sum = header_checksum(out);
        out[offset_of!(RawHeader, checksum)..][..4].copy_from_slice(&sum.to_le_bytes());
        Ok(())
    }

    /// The 4 KiB on-disk form.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = vec![0; PPL_HEADER_BYTES];
        self.write_to(&mut out)?;
        Ok(out)
    }
}

fn raw_of(bytes: &[u8]) -> Result<&RawHeader, FormatError> {
    RawHeader::ref_from_prefix(bytes)
        .map(|(raw, _)| raw)
        .map_err(|_| truncated(bytes.len()))
}

fn truncated(have: usize) -> FormatError {
    FormatError::new(
        STRUCTURE,
        "reserved",
        0,
        Problem::Truncated {
            need: PPL_HEADER_BYTES,
            have,
        },
    )
}

/// CRC-32C of the first 4 KiB of `bytes` with the checksum field taken as 0.
fn header_checksum(bytes: &[u8]) -> u32 {
    let at = offset_of!(RawHeader, checksum);
    let mut crc = Crc32c::new();
    crc.update(&bytes[..at]);
    crc.update(&[0; 4]);
    crc.update(&bytes[at + 4..PPL_HEADER_BYTES]);
    crc.finish()
}

/// Where the newest unit of a PPL area is and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PplScan {
    /// The newest valid header, if any.
    pub header: Option<PplHeader>,
    /// Byte offset of that header from the start of the area.
    pub offset_bytes: u64,
    /// Why the walk stopped after it (a bad checksum, another signature, a
    /// lower generation, the end of the area), for messages.
    pub stopped: Option<FormatError>,
}

/// Walk the units of a PPL area as md does after a crash: from the start,
/// each next header right after the previous unit's partial parity, while
/// headers are valid, carry `signature` and their generation does not go
/// down. `read(offset, buf)` reads 4 KiB at `offset` bytes into the area;
/// `area_bytes` bounds the walk. Error offsets are from the area's start.
pub fn scan<E>(
    area_bytes: u64,
    signature: u32,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), E>,
) -> Result<PplScan, E> {
    let mut buf = vec![0u8; PPL_HEADER_BYTES];
    let mut best: Option<(PplHeader, u64)> = None;
    let mut at = 0u64;
    let mut stopped = None;
    while at + PPL_HEADER_BYTES as u64 <= area_bytes {
        read(at, &mut buf)?;
        let header = match PplHeader::parse(&buf) {
            Ok(h) => h,
            Err(e) => {
                stopped = Some(e.at_device_offset(at));
                break;
            }
        };
        if header.signature != signature {
            stopped = Some(FormatError::new(
                STRUCTURE,
                "signature",
                at + offset_of!(RawHeader, signature) as u64,
                Problem::BadMagic {
                    expected: signature.into(),
                    found: header.signature.into(),
                },
            ));
            break;
        }
        if best
            .as_ref()
            .is_some_and(|(b, _)| b.generation > header.generation)
        {
            break;
        }
        let next = at + PPL_HEADER_BYTES as u64 + header.pp_bytes();
        best = Some((header, at));
        at = next;
    }
    let (header, offset_bytes) = match best {
        Some((h, at)) => (Some(h), at),
        None => (None, 0),
    };
    Ok(PplScan {
        header,
        offset_bytes,
        stopped,
    })
}

/// Fuzz entry: parse `data` as a header; a parsed header must serialise and
/// parse again equal; a scan over `data` never panics.
#[doc(hidden)]
pub fn fuzz_entry(data: &[u8]) {
    if let Ok(h) = PplHeader::parse(data) {
        let bytes = h
            .to_bytes()
            .expect("a parsed header has at most 148 entries");
        assert_eq!(PplHeader::parse(&bytes).as_ref(), Ok(&h), "round trip");
    }
    let signature = data
        .get(512..516)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    let _ = scan(data.len() as u64, signature, |at, buf| {
        let at = at as usize;
        buf.copy_from_slice(&data[at..at + PPL_HEADER_BYTES]);
        Ok::<(), ()>(())
    });
}

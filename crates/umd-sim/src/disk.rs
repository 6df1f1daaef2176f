//! A simulated member disk: durable media behind a volatile write cache.
//!
//! Why: the ordering rules umd keeps (dirty before data, bitmap bit before
//! data, FLUSH means durable) only matter when a disk can lose what it
//! acknowledged. This disk acknowledges a write once it is in its cache;
//! only [`SimDisk::flush`] (and a FUA write, which here drains the whole
//! cache with it) makes cached writes durable. At a power loss each cached
//! write is kept, dropped, or (if it spans several sectors) torn, keeping
//! any subset of its sectors: a 512-byte sector is the unit the model
//! writes atomically, as real disks promise. Writes that survive are applied
//! in the order they completed.
//!
//! Other faults, each on command: latent sector errors (reads of a sector
//! fail until it is written again, as a disk remaps on write), and a disk
//! that vanishes (every I/O fails; its cache is lost) and may come back
//! later holding what it held then (stale).
//!
//! The disk checks its caller's contract: I/O is sector aligned and inside
//! the disk (a violation is a host bug: it panics).

use crate::rng::Rng;

/// Bytes per sector: the unit a disk writes atomically.
pub const SECTOR_BYTES: usize = 512;

/// Writes a cache holds before it writes the oldest back by itself (a real
/// cache is bounded too; writing back early is always allowed).
pub const CACHE_WRITES_MAX: usize = 4096;

/// Why an I/O failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskError {
    /// The disk is gone.
    Gone,
    /// A read hit an unreadable sector (this absolute sector).
    Latent(u64),
}

impl std::fmt::Display for DiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gone => write!(f, "the disk is gone"),
            Self::Latent(s) => write!(f, "unreadable sector {s}"),
        }
    }
}

/// A write that completed into the cache but is not yet durable.
#[derive(Debug, Clone)]
struct CachedWrite {
    offset_bytes: u64,
    bytes: Vec<u8>,
}

/// What a power loss does to the cached writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossMode {
    /// Every cached write is lost.
    DropAll,
    /// Every cached write reaches the media (the cache had power enough).
    KeepAll,
    /// Each write independently kept or dropped; multi-sector writes may
    /// tear (keep some sectors only).
    Random,
}

/// One simulated disk.
#[derive(Debug, Clone)]
pub struct SimDisk {
    media: Vec<u8>,
    cache: Vec<CachedWrite>,
    /// Unreadable absolute sectors, sorted.
    latent: Vec<u64>,
    present: bool,
    /// Member writes ever accepted (for statistics).
    writes: u64,
}

impl SimDisk {
    /// A disk of `bytes` zero bytes.
    #[must_use]
    pub fn new(bytes: usize) -> Self {
        assert!(bytes.is_multiple_of(SECTOR_BYTES), "whole sectors");
        Self {
            media: vec![0; bytes],
            cache: Vec::new(),
            latent: Vec::new(),
            present: true,
            writes: 0,
        }
    }

    /// Size in bytes.
    #[must_use]
    pub fn len_bytes(&self) -> u64 {
        self.media.len() as u64
    }

    /// Whether the disk answers I/O.
    #[must_use]
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// Writes waiting in the cache.
    #[must_use]
    pub fn cached_writes(&self) -> usize {
        self.cache.len()
    }

    fn check_range(&self, offset_bytes: u64, len: usize) {
        assert!(
            offset_bytes.is_multiple_of(SECTOR_BYTES as u64) && len.is_multiple_of(SECTOR_BYTES),
            "unaligned I/O at {offset_bytes}+{len}"
        );
        assert!(
            offset_bytes + len as u64 <= self.len_bytes(),
            "I/O at {offset_bytes}+{len} past the disk's end {}",
            self.len_bytes()
        );
    }

    /// Read what the disk would return now: the media overlaid with the
    /// cache (a disk reads its own cached writes). Reads may be any byte
    /// range (metadata probes read parts of sectors, as from a file).
    pub fn read(&self, offset_bytes: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        assert!(
            offset_bytes + buf.len() as u64 <= self.len_bytes(),
            "read at {offset_bytes}+{} past the disk's end",
            buf.len()
        );
        if !self.present {
            return Err(DiskError::Gone);
        }
        let first = offset_bytes / SECTOR_BYTES as u64;
        let last = (offset_bytes + buf.len() as u64).div_ceil(SECTOR_BYTES as u64);
        if let Some(&s) = self.latent.iter().find(|&&s| s >= first && s < last) {
            return Err(DiskError::Latent(s));
        }
        let at = offset_bytes as usize;
        buf.copy_from_slice(&self.media[at..at + buf.len()]);
        for w in &self.cache {
            overlay(buf, offset_bytes, w.offset_bytes, &w.bytes);
        }
        Ok(())
    }

    /// A write completes into the cache. Writing a latent sector remaps it.
    pub fn write(&mut self, offset_bytes: u64, data: &[u8]) -> Result<(), DiskError> {
        self.check_range(offset_bytes, data.len());
        if !self.present {
            return Err(DiskError::Gone);
        }
        let first = offset_bytes / SECTOR_BYTES as u64;
        let last = first + (data.len() / SECTOR_BYTES) as u64;
        self.latent.retain(|&s| s < first || s >= last);
        if self.cache.len() == CACHE_WRITES_MAX {
            let oldest = self.cache.remove(0);
            apply(&mut self.media, oldest.offset_bytes, &oldest.bytes);
        }
        self.cache.push(CachedWrite {
            offset_bytes,
            bytes: data.to_vec(),
        });
        self.writes += 1;
        Ok(())
    }

    /// A write with FUA: durable when it completes. This model drains the
    /// whole cache with it (stronger than FUA promises, never weaker).
    pub fn write_fua(&mut self, offset_bytes: u64, data: &[u8]) -> Result<(), DiskError> {
        self.write(offset_bytes, data)?;
        self.flush()
    }

    /// FLUSH: every write completed so far is durable.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        if !self.present {
            return Err(DiskError::Gone);
        }
        for w in std::mem::take(&mut self.cache) {
            apply(&mut self.media, w.offset_bytes, &w.bytes);
        }
        Ok(())
    }

    /// Power is lost: the cache's writes survive as `mode` says.
    pub fn power_loss(&mut self, mode: LossMode, rng: &mut Rng) {
        for w in std::mem::take(&mut self.cache) {
            let sectors = w.bytes.len() / SECTOR_BYTES;
            let keep_all = match mode {
                LossMode::DropAll => continue,
                LossMode::KeepAll => true,
                LossMode::Random => match rng.below(3) {
                    0 => continue,
                    1 => true,
                    _ => sectors == 1 && rng.chance(50),
                },
            };
            if keep_all {
                apply(&mut self.media, w.offset_bytes, &w.bytes);
                continue;
            }
            // Torn: any subset of the sectors reaches the media.
            for s in 0..sectors {
                if rng.chance(50) {
                    let bytes = &w.bytes[s * SECTOR_BYTES..(s + 1) * SECTOR_BYTES];
                    apply(
                        &mut self.media,
                        w.offset_bytes + (s * SECTOR_BYTES) as u64,
                        bytes,
                    );
                }
            }
        }
    }

    /// Make the absolute `sector` unreadable until it is written.
    pub fn add_latent(&mut self, sector: u64) {
        assert!(
            sector < self.len_bytes() / SECTOR_BYTES as u64,
            "sector on the disk"
        );
        if let Err(at) = self.latent.binary_search(&sector) {
            self.latent.insert(at, sector);
        }
    }

    /// The disk disappears: I/O fails from now on and its cache is lost.
    pub fn vanish(&mut self) {
        self.cache.clear();
        self.present = false;
    }

    /// The disk comes back holding whatever its media held.
    pub fn reappear(&mut self) {
        self.present = true;
    }

    /// The durable bytes (what survives any power loss).
    #[must_use]
    pub fn media(&self) -> &[u8] {
        &self.media
    }
}

/// Copy `src` (at `src_at`) over the part of `dst` (at `dst_at`) they share.
fn overlay(dst: &mut [u8], dst_at: u64, src_at: u64, src: &[u8]) {
    let lo = dst_at.max(src_at);
    let hi = (dst_at + dst.len() as u64).min(src_at + src.len() as u64);
    if lo >= hi {
        return;
    }
    let (d, s, n) = (
        (lo - dst_at) as usize,
        (lo - src_at) as usize,
        (hi - lo) as usize,
    );
    dst[d..d + n].copy_from_slice(&src[s..s + n]);
}

fn apply(media: &mut [u8], at: u64, bytes: &[u8]) {
    let at = at as usize;
    media[at..at + bytes.len()].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests;

//! md's in-memory write-intent bitmap: per-chunk write counters and the
//! policy that decides when a bit is set or cleared on disk.
//!
//! Why: after a crash only the chunks whose bit is set need a resync, which
//! holds only if every bit is on disk before any data write to its chunk,
//! and a bit is cleared only once no write to its chunk is in flight and
//! the chunk has been idle long enough (formats.md §3.3). This module owns
//! that ordering; the host owns the I/O.
//!
//! Address space: the bitmap covers md's *resync* addresses: member
//! (device) sectors from `data_offset` for raid1/4/5/6, array sectors for
//! raid10 (formats.md §3.2, §3.3, §8 pitfall 9). Every sector argument here is
//! in that space.
//!
//! Chunk states (md's 16-bit counter, learned from md-bitmap.c, modelled as
//! an enum plus a pending-write count):
//!
//! | state | bit on disk | md counter | meaning |
//! | --- | --- | --- | --- |
//! | `Clean` | 0 | 0 | in sync, no write pending |
//! | `Written` | 1 | 2 + pending | writes pending, or idle but no daemon pass yet |
//! | `IdleOnePass` | 1 | 1 | idle for one daemon pass |
//! | `Needed` | 1 | NEEDED flag | must be resynced (set at load, or a write ended while degraded) |
//!
//! | transition | trigger |
//! | --- | --- |
//! | Clean -> Written | `start_write` (bit set in memory; host must flush it first) |
//! | IdleOnePass -> Written | `start_write` (bit already on disk) |
//! | Written -> IdleOnePass | daemon pass, no pending write, not degraded |
//! | IdleOnePass -> Clean | next daemon pass, not degraded (bit cleared on disk) |
//! | any -> Needed | `end_write` while degraded |
//! | Needed/Written/IdleOnePass -> Clean | `clear_range` with no pending write, not degraded |
//!
//! Impossible: `Clean` with pending writes; `IdleOnePass` with pending
//! writes; a bit clear on disk in any state but `Clean`.
//!
//! Daemon passes run every `daemon_sleep` seconds while some chunk is
//! idle, as md's bitmap daemon does, so a chunk is cleared between one and
//! two `daemon_sleep` periods after its last write ended.
//!
//! Bitmap superblock rules (md_bitmap_update_sb, md's daemon): `events`
//! follows the array's events on every md superblock update, written
//! before the md superblocks; `events_cleared` is raised to the current
//! events when a write ends on a non-degraded array and written by the
//! next daemon pass or superblock update; it is lowered if events go back.
//! Only little-endian bit order is produced (version 4, and version 3 as
//! written on little-endian hosts).

use crate::errno::{EngineError, Errno};
use crate::native::MetadataWrite;
use crate::time::{Duration, Time};
use std::collections::BTreeSet;
use umd_formats::bitmap::{BitmapSuper, BITMAP_SB_BYTES, STATE_STALE};

/// md's default `daemon_sleep`: seconds between bitmap clearing passes
/// (formats.md §3.2; mdadm writes 5).
pub const DAEMON_SLEEP_DEFAULT_SECONDS: u32 = 5;
/// Smallest write to the bitmap area: one sector (formats.md §3.3).
pub const BLOCK_BYTES_MIN: u32 = 512;
/// Largest write unit: md writes the bitmap in 4 KiB pages (formats.md §3.3).
pub const BLOCK_BYTES_MAX: u32 = 4096;
/// Nanoseconds per second, for `daemon_sleep`.
const NS_PER_SECOND: u64 = 1_000_000_000;
/// Bits per byte of the bitmap.
const BITS_PER_BYTE: u64 = 8;

const _: () = assert!(BLOCK_BYTES_MIN.is_power_of_two() && BLOCK_BYTES_MAX.is_power_of_two());
const _: () = assert!(BITMAP_SB_BYTES as u32 <= BLOCK_BYTES_MIN);

/// One chunk's state (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Clean,
    Written,
    IdleOnePass,
    Needed,
}

/// One chunk: its state and the writes in flight to it. md caps the count
/// at `COUNTER_MAX` (16383) and makes writers wait; a u32 never fills
/// because the host bounds its I/Os in flight.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    state: ChunkState,
    pending: u32,
}

/// md's write-intent bitmap for one array: counters, the on-disk image of
/// the bitmap area, and the members it is written to.
#[derive(Debug, Clone)]
pub struct WriteIntentBitmap {
    /// The superblock as last placed into `area` (md's in-memory sb page).
    sb: BitmapSuper,
    /// Image of the bitmap area: superblock then bits, padded to whole blocks.
    area: Vec<u8>,
    /// Per chunk: state and pending writes; `chunks.len()` is the bit count.
    chunks: Vec<Chunk>,
    /// Blocks of `area` changed in memory and not yet handed out to write.
    unflushed: BTreeSet<usize>,
    /// Byte offset of the bitmap area on each member (caller's indices);
    /// `None` for a member that is absent, faulty or has no bitmap.
    member_offsets_bytes: Vec<Option<u64>>,
    block_bytes: usize,
    /// The array's events as last told (`update_sb`).
    events: u64,
    /// md's in-memory `events_cleared`.
    events_cleared: u64,
    /// `events_cleared` changed and must reach disk (md's `need_sync`).
    need_sync: bool,
    degraded: bool,
    /// When the next daemon pass is due; `None` while nothing is idle.
    next_pass: Option<Time>,
}

impl WriteIntentBitmap {
    /// Build from the bitmap area as read from one member (`area` starts with
    /// the 256-byte superblock; all members hold the same bitmap), the
    /// area's byte offset on each member (`None`: absent or no bitmap), the
    /// resync sectors the bitmap must cover (formats.md §3.3), the array's
    /// current `events`, and the write unit in bytes (the members' logical
    /// block size: 512 or 4096).
    ///
    /// As md does, a bitmap whose `events` is older than the array's, or
    /// marked STALE, is not trusted: every bit is set (full resync) and the
    /// whole area is queued for writing (`needs_flush`).
    pub fn new(
        area: &[u8],
        member_offsets_bytes: Vec<Option<u64>>,
        sync_size_sectors: u64,
        array_events: u64,
        block_bytes: u32,
    ) -> Result<Self, EngineError> {
        let inval = |m: String| EngineError::new(Errno::EINVAL, m);
        let sb = BitmapSuper::parse(area).map_err(|e| inval(format!("bitmap: {e}")))?;
        if !block_bytes.is_power_of_two()
            || !(BLOCK_BYTES_MIN..=BLOCK_BYTES_MAX).contains(&block_bytes)
        {
            return Err(inval(format!(
                "bitmap: write unit {block_bytes} bytes not 512..4096"
            )));
        }
        if sb.sync_size < sync_size_sectors {
            return Err(inval(format!(
                "bitmap covers {} sectors, array resync range is {sync_size_sectors}",
                sb.sync_size
            )));
        }
        let bits = sb.bits();
        let area_bytes = usize::try_from(sb.area_bytes())
            .map_err(|_| inval("bitmap: area too large".to_owned()))?;
        if area.len() < area_bytes {
            return Err(inval(format!(
                "bitmap: {} bytes read, need {area_bytes}",
                area.len()
            )));
        }
        let block = block_bytes as usize;
        let padded = area_bytes.div_ceil(block) * block;
        let reserved = u64::from(sb.sectors_reserved) * umd_formats::SECTOR_BYTES;
        if sb.sectors_reserved != 0 && padded as u64 > reserved {
            return Err(inval(format!(
                "bitmap: {padded} bytes exceed sectors_reserved"
            )));
        }
        let stale = sb.events < array_events || sb.state & STALE_BIT != 0;
        let mut image = vec![0u8; padded];
        image[..area_bytes].copy_from_slice(&area[..area_bytes]);
        let mut this = Self {
            events_cleared: sb.events_cleared,
            events: array_events,
            sb,
            area: image,
            chunks: Vec::new(),
            unflushed: BTreeSet::new(),
            member_offsets_bytes,
            block_bytes: block,
            need_sync: false,
            degraded: false,
            next_pass: None,
        };
        this.load_chunks(bits, stale);
        this.check_invariants();
        Ok(this)
    }

    /// Turn the on-disk bits into counters: a set bit means "resync this
    /// chunk" (md's NEEDED). A stale bitmap sets every bit.
    fn load_chunks(&mut self, bits: u64, stale: bool) {
        if stale {
            self.sb.state &= !STALE_BIT;
            let area_bytes = self.sb.area_bytes() as usize;
            self.area[BITMAP_SB_BYTES..area_bytes].fill(0xff);
            // Bits past the last chunk stay zero so the image equals md's.
            let tail = bits % BITS_PER_BYTE;
            if tail != 0 {
                self.area[area_bytes - 1] = (1u8 << tail) - 1;
            }
            self.unflushed.extend(0..self.area.len() / self.block_bytes);
        }
        self.write_sb_into_area();
        self.chunks = (0..bits)
            .map(|bit| {
                let set = self.bit(bit);
                let state = if set {
                    ChunkState::Needed
                } else {
                    ChunkState::Clean
                };
                Chunk { state, pending: 0 }
            })
            .collect();
    }

    /// Sectors covered by one bit.
    #[must_use]
    pub fn chunk_sectors(&self) -> u64 {
        self.sb.chunk_sectors()
    }

    /// The bitmap superblock as it stands in memory.
    #[must_use]
    pub fn superblock(&self) -> &BitmapSuper {
        &self.sb
    }

    /// md's in-memory `events_cleared`.
    #[must_use]
    pub fn events_cleared(&self) -> u64 {
        self.events_cleared
    }

    /// Whether some bitmap block changed in memory and waits for
    /// [`WriteIntentBitmap::flush_set_bits`].
    #[must_use]
    pub fn needs_flush(&self) -> bool {
        !self.unflushed.is_empty()
    }

    /// Before a write to resync addresses `[sector, sector + len_sectors)`:
    /// count it in every chunk it touches. Returns true when some touched
    /// bit is not yet on disk: the host must then call `flush_set_bits`, and
    /// have those writes complete on every member, BEFORE issuing the data
    /// write. Addresses past the bitmap's range are not tracked.
    pub fn start_write(&mut self, sector: u64, len_sectors: u64) -> bool {
        let mut must_flush = false;
        for c in self.chunk_range(sector, len_sectors) {
            let chunk = &mut self.chunks[c];
            match chunk.state {
                ChunkState::Clean => {
                    chunk.state = ChunkState::Written;
                    self.set_bit(c as u64, true);
                }
                ChunkState::IdleOnePass => chunk.state = ChunkState::Written,
                ChunkState::Written | ChunkState::Needed => {}
            }
            let chunk = &mut self.chunks[c];
            chunk.pending = chunk
                .pending
                .checked_add(1)
                .expect("in-flight writes are bounded by the host");
            assert!(
                self.bit(c as u64),
                "a written chunk has its bit set in memory"
            );
            must_flush |= self.unflushed.contains(&self.block_of_bit(c as u64));
        }
        must_flush
    }

    /// The bitmap blocks changed in memory (bits newly set, and the
    /// superblock when it changed), as writes to every member with a bitmap.
    /// Blocks are `block_bytes` long and aligned; a block is handed out once.
    pub fn flush_set_bits(&mut self, out: &mut Vec<MetadataWrite>) {
        let blocks: Vec<usize> = std::mem::take(&mut self.unflushed).into_iter().collect();
        self.emit_blocks(&blocks, out);
        assert!(
            self.unflushed.is_empty(),
            "every changed block was handed out"
        );
    }

    /// After a write to `[sector, sector + len_sectors)` completed (on every
    /// member it went to). Must pair with an earlier `start_write` of the
    /// same range. On a non-degraded array this raises `events_cleared` to
    /// the current events (md_bitmap_endwrite); while degraded the chunks
    /// become `Needed` and stay set until `clear_range`.
    pub fn end_write(&mut self, sector: u64, len_sectors: u64, now: Time) {
        for c in self.chunk_range(sector, len_sectors) {
            let degraded = self.degraded;
            let chunk = &mut self.chunks[c];
            assert!(
                chunk.pending > 0,
                "end_write without start_write (chunk {c})"
            );
            assert!(
                chunk.state != ChunkState::Clean,
                "a chunk with writes is not clean"
            );
            chunk.pending -= 1;
            if degraded {
                chunk.state = ChunkState::Needed;
            }
        }
        if !self.degraded && self.events_cleared < self.events {
            self.events_cleared = self.events;
            self.need_sync = true;
        }
        if self.next_pass.is_none() {
            self.next_pass = Some(now + self.daemon_sleep());
        }
    }

    /// When `handle_timeout` should next run: the next daemon pass, or
    /// `None` while no chunk is idle and nothing waits for a pass. Poll
    /// again after every `handle_*` and `end_write`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        self.next_pass
    }

    /// Run md's daemon pass if due: write a raised `events_cleared`, move
    /// idle chunks one step towards clean and clear, on disk, those idle for
    /// a second pass. Nothing is cleared while degraded.
    pub fn handle_timeout(&mut self, now: Time, out: &mut Vec<MetadataWrite>) {
        let Some(due) = self.next_pass else { return };
        if now < due {
            return;
        }
        if self.need_sync {
            self.need_sync = false;
            self.sb.events_cleared = self.events_cleared;
            self.write_sb_into_area();
            self.unflushed.insert(0);
        }
        let mut still_idle = false;
        for c in 0..self.chunks.len() {
            let chunk = self.chunks[c];
            let idle = chunk.pending == 0
                && matches!(chunk.state, ChunkState::Written | ChunkState::IdleOnePass);
            if !idle || self.degraded {
                still_idle |= idle;
                continue;
            }
            match chunk.state {
                ChunkState::Written => {
                    self.chunks[c].state = ChunkState::IdleOnePass;
                    still_idle = true;
                }
                ChunkState::IdleOnePass => {
                    self.chunks[c].state = ChunkState::Clean;
                    self.set_bit(c as u64, false);
                }
                ChunkState::Clean | ChunkState::Needed => {}
            }
        }
        self.next_pass = still_idle.then(|| now + self.daemon_sleep());
        self.flush_set_bits(out);
        self.check_invariants();
    }

    /// After an unclean shutdown or a degraded period: the resync ranges
    /// `(sector, len_sectors)` whose bits are set, merged, clipped to the
    /// bitmap's `sync_size`.
    #[must_use]
    pub fn dirty_ranges(&self) -> Vec<(u64, u64)> {
        let cs = self.chunk_sectors();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for (c, chunk) in self.chunks.iter().enumerate() {
            if chunk.state == ChunkState::Clean {
                continue;
            }
            let start = c as u64 * cs;
            let end = (start + cs).min(self.sb.sync_size);
            match ranges.last_mut() {
                Some((s, l)) if *s + *l == start => *l = end - *s,
                _ => ranges.push((start, end - start)),
            }
        }
        ranges
    }

    /// A resync of `[sector, sector + len)` finished: clear, on disk, the
    /// bits of the chunks it fully covers that have no write in flight.
    /// Chunks with writes in flight fall back to lazy clearing; nothing is
    /// cleared while degraded.
    pub fn clear_range(&mut self, sector: u64, len: u64, out: &mut Vec<MetadataWrite>) {
        if self.degraded {
            return;
        }
        let cs = self.chunk_sectors();
        for c in self.chunk_range(sector, len) {
            let (start, end) = (c as u64 * cs, (c as u64 * cs + cs).min(self.sb.sync_size));
            if start < sector || end > sector.saturating_add(len) {
                continue;
            }
            let chunk = &mut self.chunks[c];
            if chunk.pending > 0 {
                chunk.state = ChunkState::Written;
            } else if chunk.state != ChunkState::Clean {
                chunk.state = ChunkState::Clean;
                self.set_bit(c as u64, false);
            }
        }
        self.flush_set_bits(out);
        self.check_invariants();
    }

    /// Whether the array lacks a member. While degraded no bit is cleared
    /// and writes that end mark their chunks for resync (md keeps the bits
    /// for the missing member).
    pub fn set_degraded(&mut self, degraded: bool) {
        self.degraded = degraded;
    }

    /// Stop writing the bitmap to `member` (it failed or left the array).
    pub fn remove_member(&mut self, member: usize) {
        if let Some(slot) = self.member_offsets_bytes.get_mut(member) {
            *slot = None;
        }
    }

    /// Start writing the bitmap to `member` (a member joined) at
    /// `offset_bytes`: the whole area is queued, so the next flush gives
    /// it the current superblock and bits.
    pub fn add_member(&mut self, member: usize, offset_bytes: u64) {
        if self.member_offsets_bytes.len() <= member {
            self.member_offsets_bytes.resize(member + 1, None);
        }
        self.member_offsets_bytes[member] = Some(offset_bytes);
        self.unflushed.extend(0..self.area.len() / self.block_bytes);
        assert!(!self.unflushed.is_empty(), "the area is queued");
    }

    /// md_bitmap_update_sb, called before every md superblock write: set
    /// `events` to the array's new events (lowering `events_cleared` if
    /// events went back) and write the superblock block to every member.
    pub fn update_sb(&mut self, events: u64, out: &mut Vec<MetadataWrite>) {
        self.events = events;
        if events < self.events_cleared {
            self.events_cleared = events;
        }
        self.need_sync = false;
        self.sb.events = events;
        self.sb.events_cleared = self.events_cleared;
        self.write_sb_into_area();
        let first = [0usize];
        self.unflushed.remove(&0);
        self.emit_blocks(&first, out);
        assert!(
            self.sb.events_cleared <= self.sb.events,
            "events_cleared never passes events"
        );
    }

    fn daemon_sleep(&self) -> Duration {
        Duration(u64::from(self.sb.daemon_sleep).saturating_mul(NS_PER_SECOND))
    }

    /// Chunk indices touched by `[sector, sector + len)`, clipped to the bitmap.
    fn chunk_range(&self, sector: u64, len: u64) -> std::ops::Range<usize> {
        let cs = self.chunk_sectors();
        let n = self.chunks.len() as u64;
        if len == 0 {
            return 0..0;
        }
        let first = (sector / cs).min(n);
        let last = (sector.saturating_add(len - 1) / cs)
            .saturating_add(1)
            .min(n);
        first as usize..last as usize
    }

    fn block_of_bit(&self, bit: u64) -> usize {
        umd_formats::bitmap::bit_position(bit).0 as usize / self.block_bytes
    }

    fn bit(&self, bit: u64) -> bool {
        umd_formats::bitmap::bit_is_set(&self.area, bit).expect("bit index below the bit count")
    }

    fn set_bit(&mut self, bit: u64, value: bool) {
        let (byte, shift) = umd_formats::bitmap::bit_position(bit);
        let byte = byte as usize;
        let before = self.area[byte];
        if value {
            self.area[byte] |= 1 << shift;
        } else {
            self.area[byte] &= !(1 << shift);
        }
        if self.area[byte] != before {
            self.unflushed.insert(byte / self.block_bytes);
        }
    }

    /// Place the in-memory superblock into the area image (md's sb page) and
    /// check it reads back the same.
    fn write_sb_into_area(&mut self) {
        let bytes = self.sb.to_bytes();
        self.area[..BITMAP_SB_BYTES].copy_from_slice(&bytes);
        debug_assert_eq!(BitmapSuper::parse(&self.area).ok().as_ref(), Some(&self.sb));
    }

    fn emit_blocks(&self, blocks: &[usize], out: &mut Vec<MetadataWrite>) {
        for &b in blocks {
            let start = b * self.block_bytes;
            let bytes = &self.area[start..start + self.block_bytes];
            for (member, offset) in self.member_offsets_bytes.iter().enumerate() {
                if let Some(offset) = offset {
                    out.push(MetadataWrite {
                        member,
                        offset_bytes: offset + start as u64,
                        bytes: bytes.to_vec(),
                        phase: 0,
                    });
                }
            }
        }
    }

    /// The module's impossible combinations, checked after each pass.
    fn check_invariants(&self) {
        for (c, chunk) in self.chunks.iter().enumerate() {
            let clean = chunk.state == ChunkState::Clean;
            assert!(
                !clean || chunk.pending == 0,
                "clean chunk {c} has writes pending"
            );
            assert!(
                chunk.state != ChunkState::IdleOnePass || chunk.pending == 0,
                "idle chunk {c} has writes pending"
            );
            assert_eq!(
                self.bit(c as u64),
                !clean,
                "chunk {c}: bit set iff not clean"
            );
        }
    }
}

/// md's `BITMAP_STALE` state bit (formats.md §3.2).
const STALE_BIT: u32 = STATE_STALE;

#[cfg(test)]
mod tests;

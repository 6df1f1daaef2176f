use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use umd_formats::bitmap::{bit_is_set, BITMAP_MAJOR_HI};

const CHUNK_BYTES: u32 = 64 * 1024;
const CHUNK_SECTORS: u64 = CHUNK_BYTES as u64 / 512;
const BITS: u64 = 40;
const BLOCK: u32 = 512;

fn sb(events: u64, state: u32) -> BitmapSuper {
    BitmapSuper {
        version: BITMAP_MAJOR_HI,
        uuid: [7; 16],
        events,
        events_cleared: events,
        sync_size: BITS * CHUNK_SECTORS - 5,
        state,
        chunksize: CHUNK_BYTES,
        daemon_sleep: DAEMON_SLEEP_DEFAULT_SECONDS,
        write_behind: 0,
        sectors_reserved: 8,
        nodes: 0,
        cluster_name: [0; 64],
    }
}

fn area(sb: &BitmapSuper, set: &[u64]) -> Vec<u8> {
    let mut a = vec![0u8; 4096];
    a[..BITMAP_SB_BYTES].copy_from_slice(&sb.to_bytes());
    for &bit in set {
        let (byte, shift) = umd_formats::bitmap::bit_position(bit);
        a[byte as usize] |= 1 << shift;
    }
    a
}

fn offsets() -> Vec<Option<u64>> {
    vec![Some(8192), None, Some(4096)]
}

fn bitmap(set: &[u64]) -> WriteIntentBitmap {
    let s = sb(10, 0);
    WriteIntentBitmap::new(&area(&s, set), offsets(), s.sync_size, 10, BLOCK).expect("valid")
}

/// The member-0 copy of the area, updated from emitted writes.
fn apply(disk: &mut [u8], base: u64, writes: &[MetadataWrite]) {
    for w in writes.iter().filter(|w| w.member == 0) {
        let at = (w.offset_bytes - base) as usize;
        disk[at..at + w.bytes.len()].copy_from_slice(&w.bytes);
    }
}

#[test]
fn loaded_bits_are_dirty_ranges_and_clear_range_clears_them() {
    let mut bm = bitmap(&[0, 1, 5, 39]);
    let cs = CHUNK_SECTORS;
    let end = BITS * cs - 5;
    assert_eq!(
        bm.dirty_ranges(),
        vec![(0, 2 * cs), (5 * cs, cs), (39 * cs, end - 39 * cs)]
    );
    let mut out = Vec::new();
    bm.clear_range(0, 6 * cs, &mut out);
    assert_eq!(bm.dirty_ranges(), vec![(39 * cs, end - 39 * cs)]);
    // One 512-byte block changed, written to the two members with a bitmap.
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].member, out[0].offset_bytes), (0, 8192));
    assert_eq!((out[1].member, out[1].offset_bytes), (2, 4096));
    assert_eq!(bit_is_set(&out[0].bytes, 0), Some(false));
    assert_eq!(bit_is_set(&out[0].bytes, 39), Some(true));
}

#[test]
fn stale_bitmap_sets_every_bit_and_clears_stale() {
    let s = sb(9, STATE_STALE);
    let mut bm =
        WriteIntentBitmap::new(&area(&s, &[]), offsets(), s.sync_size, 10, BLOCK).expect("valid");
    assert_eq!(bm.dirty_ranges(), vec![(0, s.sync_size)]);
    assert!(bm.needs_flush());
    let mut out = Vec::new();
    bm.flush_set_bits(&mut out);
    let parsed = BitmapSuper::parse(&out[0].bytes).expect("sb block");
    assert_eq!(parsed.state & STATE_STALE, 0);
    assert_eq!(bit_is_set(&out[0].bytes, BITS - 1), Some(true));
    assert_eq!(bit_is_set(&out[0].bytes, BITS), Some(false));
}

#[test]
fn new_refuses_bad_input() {
    let s = sb(10, 0);
    let a = area(&s, &[]);
    assert!(WriteIntentBitmap::new(&a[..100], offsets(), s.sync_size, 10, BLOCK).is_err());
    assert!(WriteIntentBitmap::new(&a, offsets(), s.sync_size + 1, 10, BLOCK).is_err());
    assert!(WriteIntentBitmap::new(&a, offsets(), s.sync_size, 10, 1000).is_err());
    let mut big = s.clone();
    big.sectors_reserved = 1;
    let a = area(&big, &[]);
    assert!(WriteIntentBitmap::new(&a, offsets(), s.sync_size, 10, 4096).is_err());
}

#[test]
fn update_sb_follows_events_and_end_write_raises_events_cleared() {
    let mut bm = bitmap(&[]);
    let mut out = Vec::new();
    bm.update_sb(11, &mut out);
    let got = BitmapSuper::parse(&out[0].bytes).expect("sb");
    assert_eq!((got.events, got.events_cleared), (11, 10));
    assert!(bm.start_write(0, 8));
    bm.end_write(0, 8, Time(0));
    assert_eq!(bm.events_cleared(), 11);
    out.clear();
    bm.update_sb(12, &mut out);
    let got = BitmapSuper::parse(&out[0].bytes).expect("sb");
    assert_eq!((got.events, got.events_cleared), (12, 11));
    // Events going back lower events_cleared with them.
    out.clear();
    bm.update_sb(10, &mut out);
    let got = BitmapSuper::parse(&out[0].bytes).expect("sb");
    assert_eq!((got.events, got.events_cleared), (10, 10));
}

/// One step of the property test.
#[derive(Debug, Clone, Copy)]
enum Op {
    Start(u64, u64),
    End(usize),
    Advance(u64),
    Degraded(bool),
    Resync(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let span = BITS * CHUNK_SECTORS;
    prop_oneof![
        4 => (0..span, 1..3 * CHUNK_SECTORS).prop_map(|(s, l)| Op::Start(s, l)),
        4 => any::<usize>().prop_map(Op::End),
        3 => (1u64..12_000).prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::Degraded),
        1 => (0..span, 1..span).prop_map(|(s, l)| Op::Resync(s, l)),
    ]
}

/// Reference model: writes in flight per chunk, when each chunk last went
/// idle, and which chunks must keep their bit until resynced.
struct Model {
    bm: WriteIntentBitmap,
    disk: Vec<u8>,
    now: Time,
    in_flight: Vec<(u64, u64)>,
    pending: BTreeMap<u64, u32>,
    idle_since: BTreeMap<u64, Time>,
    needed: BTreeSet<u64>,
    degraded: bool,
    /// When the array last became whole again.
    whole_since: Time,
}

impl Model {
    fn chunks(sector: u64, len: u64) -> std::ops::Range<u64> {
        let last = ((sector + len - 1) / CHUNK_SECTORS + 1).min(BITS);
        (sector / CHUNK_SECTORS).min(BITS)..last
    }

    fn on_disk(&self, c: u64) -> bool {
        bit_is_set(&self.disk, c).expect("in range")
    }

    fn apply_checked(&mut self, out: &[MetadataWrite], at: Time, resync: bool) {
        let per_member = |m| out.iter().filter(|w| w.member == m).count();
        assert_eq!(
            per_member(0),
            per_member(2),
            "every member gets the same blocks"
        );
        let before: Vec<bool> = (0..BITS).map(|c| self.on_disk(c)).collect();
        apply(&mut self.disk, 8192, out);
        for c in 0..BITS {
            if before[c as usize] && !self.on_disk(c) {
                assert!(!self.degraded, "bit {c} cleared while degraded");
                assert_eq!(
                    self.pending.get(&c).copied().unwrap_or(0),
                    0,
                    "bit {c} busy"
                );
                assert!(!self.needed.contains(&c), "bit {c} cleared before resync");
                if resync {
                    continue;
                }
                let idle = self.idle_since.get(&c).copied().unwrap_or(Time(0));
                let ds = Duration(u64::from(DAEMON_SLEEP_DEFAULT_SECONDS) * NS_PER_SECOND);
                assert!(
                    at - idle >= ds,
                    "bit {c} cleared {:?} after idle",
                    at - idle
                );
            }
        }
    }

    fn step(&mut self, op: Op) {
        let mut out = Vec::new();
        match op {
            Op::Start(s, l) => {
                if self.bm.start_write(s, l) {
                    self.bm.flush_set_bits(&mut out);
                    self.apply_checked(&out, self.now, false);
                }
                for c in Self::chunks(s, l) {
                    assert!(self.on_disk(c), "bit {c} not on disk before the data write");
                    *self.pending.entry(c).or_default() += 1;
                }
                self.in_flight.push((s, l));
            }
            Op::End(i) if !self.in_flight.is_empty() => {
                let (s, l) = self.in_flight.swap_remove(i % self.in_flight.len());
                self.bm.end_write(s, l, self.now);
                for c in Self::chunks(s, l) {
                    let p = self.pending.get_mut(&c).expect("started");
                    *p -= 1;
                    self.idle_since.insert(c, self.now);
                    if self.degraded {
                        self.needed.insert(c);
                    }
                }
            }
            Op::End(_) => {}
            Op::Advance(ms) => self.advance(Duration::from_ms(ms)),
            Op::Degraded(d) => {
                if self.degraded && !d {
                    self.whole_since = self.now;
                }
                self.degraded = d;
                self.bm.set_degraded(d);
            }
            Op::Resync(s, l) => {
                self.bm.clear_range(s, l, &mut out);
                if !self.degraded {
                    for c in Self::chunks(s, l) {
                        let end = ((c + 1) * CHUNK_SECTORS).min(BITS * CHUNK_SECTORS - 5);
                        if c * CHUNK_SECTORS >= s && end <= s + l {
                            self.needed.remove(&c);
                            self.idle_since.insert(c, Time(0));
                        }
                    }
                }
                self.apply_checked(&out, self.now, true);
            }
        }
        self.check_bounds();
    }

    /// Run every timer that falls due, at its due time, as a driver would.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(due) = self.bm.poll_timeout().filter(|&t| t <= target) {
            let due = due.max(self.now);
            let mut out = Vec::new();
            self.now = due;
            self.bm.handle_timeout(due, &mut out);
            self.apply_checked(&out, due, false);
        }
        self.now = target;
    }

    /// A chunk idle for two daemon periods (array whole) is clear on disk.
    fn check_bounds(&self) {
        let ds = Duration(u64::from(DAEMON_SLEEP_DEFAULT_SECONDS) * NS_PER_SECOND);
        for c in 0..BITS {
            if self.pending.get(&c).copied().unwrap_or(0) > 0 {
                assert!(self.on_disk(c), "bit {c} clear with writes in flight");
                continue;
            }
            if self.needed.contains(&c) {
                assert!(self.on_disk(c), "bit {c} awaiting resync is clear");
                continue;
            }
            if let Some(&idle) = self.idle_since.get(&c) {
                let idle = idle.max(self.whole_since);
                let overdue = !self.degraded && self.now - idle > Duration(2 * ds.0);
                if overdue && idle > Time(0) {
                    assert!(
                        !self.on_disk(c),
                        "bit {c} still set {:?} after idle",
                        self.now - idle
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn bits_are_on_disk_before_writes_and_cleared_lazily(ops in prop::collection::vec(op(), 1..120)) {
        let bm = bitmap(&[]);
        let mut disk = vec![0u8; 4096];
        let s = sb(10, 0);
        disk[..BITMAP_SB_BYTES].copy_from_slice(&s.to_bytes());
        let mut m = Model {
            bm,
            disk,
            now: Time(1),
            in_flight: Vec::new(),
            pending: BTreeMap::new(),
            idle_since: BTreeMap::new(),
            needed: BTreeSet::new(),
            degraded: false,
            whole_since: Time(0),
        };
        for op in ops {
            m.step(op);
        }
    }
}

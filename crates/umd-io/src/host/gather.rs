//! Stripe gathering, the host half: entries where partial-stripe pieces of
//! concurrent write requests meet, so that neighbours end in one full-stripe
//! (or at least one) parity update, as md's stripe cache makes them.
//!
//! Why: a raid4/5 write that covers part of a stripe pays a reconstruct-write
//! (read the rest of the stripe) or a read-modify-write; a stream of 1 MiB
//! requests on a 1.5 MiB stripe pays one for every request. md lets the bios of
//! neighbouring requests meet in one stripe head. umd runs each request on its
//! own thread, so a piece *parks* in its stripe's entry while a neighbour that
//! will complete it is known to be on its way; the piece that completes the
//! stripe writes parity with no reads. The arithmetic (coverage, accumulated
//! parity, what a flush reads) is `umd_engine::write::gather`; this file is
//! the entries and their waits; `gather_write.rs` is the I/O.
//!
//! # When a piece parks, and for how long
//!
//! Only while a neighbour is *known* or *expected*. Known: a write the host
//! was told about ([`RangeLock::announce_write`], by the NBD reader as soon as
//! it parsed the request's header, before its payload arrives) or one it is
//! running ([`RangeLock::begin_write`]) that overlaps a part of the stripe
//! nobody contributed yet. Expected: the piece is the tail of a write that
//! continues a pipelined stream (`Table::pipelined`: its client sent it
//! before the previous one was acknowledged), so the stream's next write is
//! on its way; it is waited for at most [`GATHER_SUCCESSOR_WAIT`] before its
//! header arrives, and only while some tracked write is still running rather
//! than parked. A piece that had to wait for an ordinary holder of its
//! stripe creates no entry (the stripe was just written, most likely by the
//! neighbour it would wait for). An entry is only created
//! for such a piece, so random writes and one-at-a-time streams never wait and
//! take the ordinary planner (which picks rmw or rcw by cost). A parked piece
//! stops waiting when the stripe is complete, when nothing is known or
//! expected any more (when every tracked write is parked, every entry looks
//! again), when [`GATHER_WAIT_MAX`] passed since the entry was created, or
//! when the entry is asked to flush: by a FUA write joining it, by an NBD
//! FLUSH ([`RangeLock::unplug_all`]), or by anyone whose stripe lock it is in
//! the way of ([`RangeLock::lock`]: an overlapping write, a resync window, a
//! degraded read). Acknowledgements are never held longer than that.
//!
//! # Entry states (one per slot; `Slot::state`)
//!
//! | state | meaning | next, trigger (actor) |
//! | --- | --- | --- |
//! | `Free` | no stripe; the slot keeps its accumulator | `Gathering`: a piece with a known or expected neighbour, a free slot and room under `stripe_cache_size` (the creating writer) |
//! | `Gathering` | accepts disjoint pieces; each contributor folds its payload into the accumulator | `Flushing`: the stripe is complete (the completing writer), or a parked participant sees a flush request, the deadline, or no neighbour known or expected (that participant) |
//! | `Flushing` | one participant, the flusher, waits for every accepted piece's fold, reads what nobody contributed and finishes parity; nobody joins | `Committed`: parity computed (flusher); `Aborted`: a read failed or the members changed (flusher) |
//! | `Committed` | every participant writes its own data; the flusher writes its data and parity | `Written` (flusher, after its batch completed) |
//! | `Written` | parity is on the members (or its member was failed) | `Free`: the last participant leaves |
//! | `Aborted` | nothing of the stripe was written; every participant takes the ordinary path | `Free`: the last participant leaves |
//!
//! Combinations that never occur (asserted): a free slot with participants, a
//! stripe in two slots, a slot without its accumulator while `Free`,
//! `Written` or `Aborted`, a join in any state but `Gathering`.
//!
//! Why the multi-step `Flushing` -> `Committed` -> `Written` is safe: no byte
//! of the stripe is written before `Committed`, so a failed read (`Aborted`)
//! leaves data and parity as they were and the ordinary path, which plans
//! with the failed member gone, finds a consistent stripe. After `Committed`
//! the parity written is that of every participant's new data, so a failed
//! data write leaves the member's new bytes recoverable from parity (the
//! member is failed, then the piece is written again the ordinary way). A
//! participant acknowledges only after its own data and the parity are on the
//! members (`Written`); the entry holds its stripe in the range lock until the
//! last participant left, so nothing reads or updates the stripe in between.
//! Every participant set its bitmap bits (on disk) before joining, so the
//! flusher's parity write is covered. A crash in between leaves a dirty array
//! whose resync recomputes parity, as after any interrupted write.
//!
//! No deadlock: a thread takes part in one entry at a time (a request's
//! pieces go one after another) and never holds a range guard while it
//! does; a parked piece waits only for a known neighbour, which is either
//! running, parked at a lower stripe of its own (pieces go in increasing order,
//! so such chains end), or blocked on a stripe lock, which asks the entry in
//! its way to flush. [`GATHER_WAIT_MAX`] bounds every wait regardless.
//!
//! Lock order: everything here is under the range lock's mutex (order 1),
//! held only for table updates, never across I/O or any other lock.

use super::range_lock::{Held, RangeLock};
use std::sync::PoisonError;
use std::time::{Duration, Instant};
use umd_engine::write::gather::{Accumulator, Coverage, GatherPiece};

/// Most gathering entries per array. A thread takes part in one entry at a
/// time, so more entries than concurrent writers (NBD workers) buy nothing;
/// 32 covers two clients streaming at queue depth 8 or more.
pub(crate) const GATHER_SLOTS_MAX: usize = 32;

/// Memory for accumulators across all entries (one chunk each): entries are
/// fewer than [`GATHER_SLOTS_MAX`] when chunks are large.
pub(crate) const GATHER_ACC_BYTES_MAX: usize = 32 << 20;

/// Longest a piece stays parked after its entry was created, whatever its
/// neighbours do: a bound on the acknowledgement delay gathering can add,
/// several times a 1 MiB request's transfer time.
pub(crate) const GATHER_WAIT_MAX: Duration = Duration::from_millis(10);

/// Longest a stream's tail piece waits for the stream's next write to be
/// announced (after which it is a known neighbour, under
/// [`GATHER_WAIT_MAX`]). The next header normally arrives within
/// microseconds of the previous payload; a client that has stopped
/// pipelining (it waits for this very acknowledgement) costs at most this.
pub(crate) const GATHER_SUCCESSOR_WAIT: Duration = Duration::from_millis(2);

/// Most writes tracked as neighbours at once (announced or running). More
/// are simply not seen: they are never waited for.
pub(crate) const WRITES_TRACKED_MAX: usize = 256;

/// Ends of recent writes of pipelined streams: a write starting at one of
/// them continues such a stream. A few per client; older ends are forgotten.
pub(crate) const PIPELINED_ENDS: usize = 32;

/// What a slot is doing (module doc, state table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    Free,
    Gathering,
    Flushing,
    Committed,
    Written { parity_ok: bool },
    Aborted,
}

/// Why an entry was flushed; counted in the host's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlushReason {
    /// Every data sector was contributed: a full-stripe write, no reads.
    Full,
    /// No known neighbour was left: the rest of the stripe is read.
    NoNeighbour,
    /// [`GATHER_WAIT_MAX`] passed.
    Deadline,
    /// A FUA write, an NBD FLUSH or a stripe lock asked for it.
    Forced,
}

impl FlushReason {
    /// Index into `Stats::gather_flushes`.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Full => 0,
            Self::NoNeighbour => 1,
            Self::Deadline => 2,
            Self::Forced => 3,
        }
    }
}

/// One gathering entry.
#[derive(Debug)]
pub(crate) struct Slot {
    state: SlotState,
    /// What was contributed (`Some` unless `Free`).
    coverage: Option<Coverage>,
    /// The member generation the pieces were planned for.
    generation: u64,
    /// Writers that joined and have not left.
    participants: u32,
    /// Joined pieces whose payload is not folded into the accumulator yet.
    pending_folds: u32,
    /// `None` while a contributor or the flusher holds it.
    acc: Option<Accumulator>,
    flush_requested: bool,
    deadline: Instant,
    /// Stripe-relative sector where a sequential stream's next write is
    /// expected to start (set by a piece at the tail of its request).
    successor_at: Option<u64>,
    /// Until when that write is waited for before it is announced.
    successor_until: Instant,
}

/// The gathering entries and the writes they may wait for.
#[derive(Debug)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    /// Logical `[lo, hi)` sectors of writes announced or running (a multiset).
    writes: Vec<(u64, u64)>,
    /// Participants parked in [`RangeLock::gather_decide`] right now.
    parked: usize,
    /// Ends of writes of pipelined streams (a ring, [`PIPELINED_ENDS`] long).
    pipelined_ends: [u64; PIPELINED_ENDS],
    pipelined_at: usize,
}

impl Table {
    pub(crate) fn new(slots: usize) -> Self {
        assert!(slots <= GATHER_SLOTS_MAX, "{slots} gathering slots");
        let now = Instant::now();
        Self {
            slots: (0..slots)
                .map(|_| Slot {
                    state: SlotState::Free,
                    coverage: None,
                    generation: 0,
                    participants: 0,
                    pending_folds: 0,
                    acc: Some(Accumulator::default()),
                    flush_requested: false,
                    deadline: now,
                    successor_at: None,
                    successor_until: now,
                })
                .collect(),
            writes: Vec::with_capacity(if slots > 0 { WRITES_TRACKED_MAX } else { 0 }),
            parked: 0,
            pipelined_ends: [u64::MAX; PIPELINED_ENDS],
            pipelined_at: 0,
        }
    }

    /// Whether the write `[lo, hi)` continues a pipelined stream: the write
    /// ending where it starts is still in flight (its client sent this one
    /// before that one was acknowledged), or was itself part of one. Its
    /// end is remembered as such. A client that waits for each write before
    /// sending the next never starts one.
    fn pipelined(&mut self, lo: u64, hi: u64) -> bool {
        let in_flight = self.writes.iter().any(|&(_, end)| end == lo);
        let pipelined = in_flight || self.pipelined_ends.contains(&lo);
        if pipelined && !self.pipelined_ends.contains(&hi) {
            self.pipelined_ends[self.pipelined_at] = hi;
            self.pipelined_at = (self.pipelined_at + 1) % PIPELINED_ENDS;
        }
        pipelined
    }

    /// Whether a tracked write is running rather than parked: one that may
    /// still contribute, or whose acknowledgement lets its client send more.
    fn someone_running(&self) -> bool {
        self.writes.len() > self.parked
    }

    /// Whether a parked participant of `slot` should keep waiting: a known
    /// write would contribute, or the stream's next write is expected (not
    /// for longer than [`GATHER_SUCCESSOR_WAIT`]) while some write is still
    /// running rather than parked.
    fn worth_waiting(&self, slot: &Slot, now: Instant) -> bool {
        let Some(coverage) = slot.coverage else {
            return false;
        };
        self.neighbour_known(&coverage) || expecting(slot, now) && self.someone_running()
    }

    /// Whether a known write overlaps a part of `coverage`'s stripe that nobody
    /// contributed yet.
    fn neighbour_known(&self, coverage: &Coverage) -> bool {
        let first = coverage.first_sector();
        self.writes.iter().any(|&(lo, hi)| {
            hi > first && coverage.overlaps_uncovered(lo.saturating_sub(first), hi - first)
        })
    }

    fn stripe_slot(&self, stripe: u64) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.coverage.is_some_and(|c| c.stripe() == stripe))
    }
}

/// Whether `slot` still waits for its stream's next write, not yet announced.
fn expecting(slot: &Slot, now: Instant) -> bool {
    let uncovered = |at: u64| {
        slot.coverage
            .is_some_and(|c| c.overlaps_uncovered(at, at + 1))
    };
    now < slot.successor_until && slot.successor_at.is_some_and(uncovered)
}

/// The outcome of [`RangeLock::gather_join`].
#[derive(Debug)]
pub(crate) enum Join {
    /// The piece is in entry `slot`; fold it into `acc`, then give `acc`
    /// back with [`RangeLock::gather_folded`]. `completes`: the stripe is
    /// full and the caller is its flusher.
    Joined {
        slot: usize,
        acc: Accumulator,
        completes: bool,
    },
    /// Not gathered: take the ordinary path.
    Refused,
}

/// What a participant does next ([`RangeLock::gather_decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Be the flusher.
    Flush(FlushReason),
    /// Parity is computed: write your data, then leave.
    Committed,
    /// Leave and take the ordinary path.
    Aborted,
}

impl RangeLock {
    /// Whether this array gathers at all (raid4/5 with slots).
    pub(crate) fn gathering(&self) -> bool {
        !self.slot_changed.is_empty()
    }

    fn wait_slot<'a>(
        &self,
        slot: usize,
        held: std::sync::MutexGuard<'a, Held>,
        timeout: Option<Duration>,
    ) -> std::sync::MutexGuard<'a, Held> {
        let condvar = &self.slot_changed[slot];
        match timeout {
            Some(t) => {
                condvar
                    .wait_timeout(held, t)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => condvar.wait(held).unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// A write of logical `[lo, hi)` is coming (its header was read): entries
    /// it would complete wait for it. Pair with [`RangeLock::begin_write`] or
    /// [`RangeLock::withdraw_write`].
    pub(crate) fn announce_write(&self, lo: u64, hi: u64) {
        if !self.gathering() || lo >= hi {
            return;
        }
        let mut held = self.held();
        held.gather.pipelined(lo, hi);
        if held.gather.writes.len() < WRITES_TRACKED_MAX {
            held.gather.writes.push((lo, hi));
        }
    }

    /// The write of `[lo, hi)` starts: adopt its announcement, or track it
    /// now. Returns whether it continues a pipelined stream (`Table::pipelined`),
    /// whose next write is worth waiting for.
    pub(crate) fn begin_write(&self, lo: u64, hi: u64) -> bool {
        if !self.gathering() || lo >= hi {
            return false;
        }
        let mut held = self.held();
        let stream = held.gather.pipelined(lo, hi);
        let announced = held.gather.writes.contains(&(lo, hi));
        if !announced && held.gather.writes.len() < WRITES_TRACKED_MAX {
            held.gather.writes.push((lo, hi));
        }
        stream
    }

    /// The write of `[lo, hi)` finished, or an announced one will not come:
    /// entries that waited for it look again.
    pub(crate) fn withdraw_write(&self, lo: u64, hi: u64) {
        if !self.gathering() || lo >= hi {
            return;
        }
        let mut held = self.held();
        let Some(at) = held.gather.writes.iter().position(|&w| w == (lo, hi)) else {
            return;
        };
        held.gather.writes.swap_remove(at);
        if !held.gather.someone_running() {
            self.notify_gathering(&held);
            return;
        }
        for (i, slot) in held.gather.slots.iter().enumerate() {
            let Some(c) = slot.coverage else { continue };
            let first = c.first_sector();
            let touches = hi > first && c.overlaps_uncovered(lo.saturating_sub(first), hi - first);
            if slot.state == SlotState::Gathering && touches {
                self.slot_changed[i].notify_all();
            }
        }
    }

    /// Ask every gathering entry on stripes `[first, last]` to flush now
    /// (someone needs those stripes). Called with the range mutex held.
    pub(super) fn unplug_slots(&self, held: &mut Held, first: u64, last: u64) {
        for (i, slot) in held.gather.slots.iter_mut().enumerate() {
            let on = slot
                .coverage
                .is_some_and(|c| (first..=last).contains(&c.stripe()));
            if on && slot.state == SlotState::Gathering && !slot.flush_requested {
                slot.flush_requested = true;
                self.slot_changed[i].notify_all();
            }
        }
    }

    /// NBD FLUSH: every gathering entry flushes now.
    pub(crate) fn unplug_all(&self) {
        if self.gathering() {
            let mut held = self.held();
            self.unplug_slots(&mut held, 0, u64::MAX);
        }
    }

    /// Put `piece` (planned for member `generation`) into its stripe's entry,
    /// creating one if a neighbour is known or, with `successor` (the piece
    /// ends a request that continues a stream, short of the stripe's end), if
    /// the stream's next write is likely. With `force` (FUA) the entry is
    /// flushed as soon as the piece is folded in, and none is created.
    /// The caller holds no slot and no range guard.
    pub(crate) fn gather_join(
        &self,
        piece: &GatherPiece,
        generation: u64,
        force: bool,
        successor: bool,
    ) -> Join {
        assert!(self.gathering(), "join on an array that does not gather");
        assert!(
            piece.lo < piece.hi && piece.hi <= piece.stripe_sectors,
            "piece inside its stripe"
        );
        let mut held = self.held();
        let mut waited = false;
        loop {
            if let Some(i) = held.gather.stripe_slot(piece.stripe) {
                return self.join_existing(held, i, piece, generation, (force, successor));
            }
            let stripe = piece.stripe;
            if held.ranges.iter().any(|&(a, b)| a <= stripe && stripe <= b) {
                // An ordinary holder (write, resync window, degraded read): wait
                // for it, then look again (an entry may have been created meanwhile).
                held = self
                    .released
                    .wait(held)
                    .unwrap_or_else(PoisonError::into_inner);
                waited = true;
                continue;
            }
            if waited {
                // The stripe was just written the ordinary way, most likely by
                // the very neighbour this piece would wait for: no entry.
                return Join::Refused;
            }
            return Self::create(&mut held, piece, generation, (force, successor));
        }
    }

    fn join_existing(
        &self,
        mut held: std::sync::MutexGuard<'_, Held>,
        i: usize,
        piece: &GatherPiece,
        generation: u64,
        (force, successor): (bool, bool),
    ) -> Join {
        let slot = &mut held.gather.slots[i];
        let joinable = slot.state == SlotState::Gathering && slot.generation == generation;
        let coverage = slot.coverage.as_mut().expect("a used slot has coverage");
        if !joinable || !coverage.add(piece.lo, piece.hi) {
            // Overlap, too many pieces, or past gathering: the ordinary path
            // waits for this entry, which should therefore go out now.
            if slot.state == SlotState::Gathering && !slot.flush_requested {
                slot.flush_requested = true;
                self.slot_changed[i].notify_all();
            }
            return Join::Refused;
        }
        let completes = coverage.is_full();
        slot.participants += 1;
        slot.pending_folds += 1;
        slot.flush_requested |= force;
        if successor {
            slot.successor_at = Some(piece.hi);
            slot.successor_until = Instant::now() + GATHER_SUCCESSOR_WAIT;
        }
        if completes {
            slot.state = SlotState::Flushing;
        }
        self.slot_changed[i].notify_all();
        loop {
            if let Some(acc) = held.gather.slots[i].acc.take() {
                return Join::Joined {
                    slot: i,
                    acc,
                    completes,
                };
            }
            held = self.wait_slot(i, held, None);
        }
    }

    fn create(
        held: &mut Held,
        piece: &GatherPiece,
        generation: u64,
        (force, successor): (bool, bool),
    ) -> Join {
        let mut coverage = Coverage::new(piece);
        assert!(
            coverage.add(piece.lo, piece.hi),
            "an empty entry takes any piece"
        );
        let fits = held.ranges.is_empty() || held.stripes_in_use < held.max_stripes;
        let free = held
            .gather
            .slots
            .iter()
            .position(|s| s.state == SlotState::Free);
        // The creator itself is a running write: a successor is likely only
        // while its client keeps another write going too.
        let stream = successor && held.gather.writes.len() > held.gather.parked + 1;
        let worth =
            !force && !coverage.is_full() && (held.gather.neighbour_known(&coverage) || stream);
        let (Some(i), true, true) = (free, fits, worth) else {
            return Join::Refused;
        };
        held.ranges.push((piece.stripe, piece.stripe));
        held.stripes_in_use += 1;
        let slot = &mut held.gather.slots[i];
        assert_eq!(slot.participants, 0, "a free slot has no participants");
        let mut acc = slot.acc.take().expect("a free slot keeps its accumulator");
        acc.clear();
        *slot = Slot {
            state: SlotState::Gathering,
            coverage: Some(coverage),
            generation,
            participants: 1,
            pending_folds: 1,
            acc: None,
            flush_requested: false,
            deadline: Instant::now() + GATHER_WAIT_MAX,
            successor_at: successor.then_some(piece.hi),
            successor_until: Instant::now() + GATHER_SUCCESSOR_WAIT,
        };
        Join::Joined {
            slot: i,
            acc,
            completes: false,
        }
    }

    /// The caller folded its piece into `acc`; the entry gets it back.
    pub(crate) fn gather_folded(&self, slot: usize, acc: Accumulator) {
        let mut held = self.held();
        let s = &mut held.gather.slots[slot];
        assert!(s.acc.is_none(), "the accumulator was taken by the caller");
        assert!(s.pending_folds > 0, "a fold was pending");
        s.acc = Some(acc);
        s.pending_folds -= 1;
        self.slot_changed[slot].notify_all();
    }

    /// After folding: park until this participant must flush, write or leave.
    /// While here it counts as parked, not running, so that when every
    /// tracked write is parked the entries stop waiting for one another.
    pub(crate) fn gather_decide(&self, slot: usize) -> Decision {
        let mut held = self.held();
        held.gather.parked += 1;
        if !held.gather.someone_running() {
            // None of them can complete another's stripe: everyone looks again.
            self.notify_gathering(&held);
        }
        let decision = loop {
            let now = Instant::now();
            let worth = held.gather.worth_waiting(&held.gather.slots[slot], now);
            let s = &mut held.gather.slots[slot];
            assert!(s.participants > 0, "a participant waits on a used slot");
            let timeout = match s.state {
                SlotState::Committed | SlotState::Written { .. } => break Decision::Committed,
                SlotState::Aborted => break Decision::Aborted,
                SlotState::Flushing => None,
                SlotState::Free => unreachable!("a slot with participants is never free"),
                SlotState::Gathering => {
                    let reason = if s.flush_requested {
                        Some(FlushReason::Forced)
                    } else if now >= s.deadline {
                        Some(FlushReason::Deadline)
                    } else if !worth {
                        Some(FlushReason::NoNeighbour)
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        s.state = SlotState::Flushing;
                        break Decision::Flush(reason);
                    }
                    // Look again when the expected write's grace ends, too.
                    let until = if expecting(s, now) {
                        s.deadline.min(s.successor_until)
                    } else {
                        s.deadline
                    };
                    Some(until - now)
                }
            };
            held = self.wait_slot(slot, held, timeout);
        };
        assert!(held.gather.parked > 0, "this participant was parked");
        held.gather.parked -= 1;
        decision
    }

    fn notify_gathering(&self, held: &Held) {
        for (i, s) in held.gather.slots.iter().enumerate() {
            if s.state == SlotState::Gathering {
                self.slot_changed[i].notify_all();
            }
        }
    }

    /// The flusher: wait until every accepted piece is folded in, then take
    /// the accumulator and what it covers.
    pub(crate) fn gather_take(&self, slot: usize) -> (Accumulator, Coverage, u64) {
        let mut held = self.held();
        loop {
            let s = &mut held.gather.slots[slot];
            assert_eq!(s.state, SlotState::Flushing, "only the flusher takes");
            if s.pending_folds == 0 {
                if let Some(acc) = s.acc.take() {
                    let coverage = s.coverage.expect("a used slot has coverage");
                    return (acc, coverage, s.generation);
                }
            }
            held = self.wait_slot(slot, held, None);
        }
    }

    /// The flusher computed parity: participants write their data.
    pub(crate) fn gather_commit(&self, slot: usize) {
        self.set_state(slot, SlotState::Flushing, SlotState::Committed, None);
    }

    /// The flusher gives up before anything was written.
    pub(crate) fn gather_abort(&self, slot: usize, acc: Accumulator) {
        self.set_state(slot, SlotState::Flushing, SlotState::Aborted, Some(acc));
    }

    /// The flusher's batch (its data and parity) completed.
    pub(crate) fn gather_written(&self, slot: usize, acc: Accumulator, parity_ok: bool) {
        let to = SlotState::Written { parity_ok };
        self.set_state(slot, SlotState::Committed, to, Some(acc));
    }

    fn set_state(&self, slot: usize, from: SlotState, to: SlotState, acc: Option<Accumulator>) {
        let mut held = self.held();
        let s = &mut held.gather.slots[slot];
        assert_eq!(s.state, from, "entry transition {from:?} -> {to:?}");
        assert!(s.acc.is_none(), "the flusher holds the accumulator");
        s.state = to;
        s.acc = acc;
        self.slot_changed[slot].notify_all();
    }

    /// Wait until the entry is `Written` or `Aborted`, then leave it; the
    /// last one frees it. Returns whether parity was written (`None`: aborted).
    pub(crate) fn gather_leave(&self, slot: usize) -> Option<bool> {
        let mut held = self.held();
        let outcome = loop {
            match held.gather.slots[slot].state {
                SlotState::Written { parity_ok } => break Some(parity_ok),
                SlotState::Aborted => break None,
                _ => held = self.wait_slot(slot, held, None),
            }
        };
        let s = &mut held.gather.slots[slot];
        assert!(s.participants > 0, "a participant leaves once");
        s.participants -= 1;
        if s.participants > 0 {
            return outcome;
        }
        assert!(s.acc.is_some(), "a finished entry has its accumulator back");
        let stripe = s
            .coverage
            .take()
            .expect("a used slot has coverage")
            .stripe();
        s.state = SlotState::Free;
        let at = held
            .ranges
            .iter()
            .position(|&r| r == (stripe, stripe))
            .expect("an entry holds its stripe");
        held.ranges.swap_remove(at);
        held.stripes_in_use -= 1;
        drop(held);
        self.released.notify_all();
        outcome
    }
}

#[cfg(test)]
mod tests;

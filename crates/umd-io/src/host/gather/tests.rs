//! The entry state machine without I/O: who creates, joins, flushes, waits
//! and leaves, and that the stripe is held in the range lock throughout.
//! Threads stand in for requests; nothing here asserts a duration.

use super::*;
use std::sync::Arc;
use umd_engine::read::MemberMap;
use umd_engine::write::WritePlanner;
use umd_layout::geometry::{Geometry, GeometrySpec, Raid0Layout};

/// raid5, 4 members, chunk 8 sectors: stripe s is logical `[24 s, 24 s + 24)`.
fn planner() -> WritePlanner {
    let spec = GeometrySpec {
        level: 5,
        layout: 2,
        chunk_sectors: 8,
        raid_disks: 4,
        member_sectors: vec![64; 4],
        component_sectors: 64,
        raid0_layout: Some(Raid0Layout::Original),
    };
    let geometry = Geometry::new(&spec).expect("valid raid5");
    let array = geometry.array_sectors();
    let map = MemberMap::new(vec![Some((0, None)); 4]);
    WritePlanner::new(geometry, map, array)
}

fn piece(sector: u64, len: u64) -> GatherPiece {
    let mut piece = GatherPiece::default();
    assert!(planner().gather_piece(sector, len, &mut piece), "eligible");
    piece
}

fn joined(join: Join) -> (usize, Accumulator, bool) {
    match join {
        Join::Joined {
            slot,
            acc,
            completes,
        } => (slot, acc, completes),
        Join::Refused => panic!("refused"),
    }
}

fn stripe_held(lock: &RangeLock, stripe: u64) -> bool {
    lock.held().ranges.contains(&(stripe, stripe))
}

#[test]
fn no_known_neighbour_no_entry() {
    let lock = RangeLock::new(16, 4);
    lock.begin_write(24, 40);
    assert!(matches!(
        lock.gather_join(&piece(24, 16), 0, false, false),
        Join::Refused
    ));
    assert!(!stripe_held(&lock, 1), "nothing held after a refusal");
}

#[test]
fn neighbours_meet_and_the_completer_flushes() {
    let lock = Arc::new(RangeLock::new(16, 4));
    lock.begin_write(24, 40);
    lock.announce_write(40, 48);
    let (slot, acc, completes) = joined(lock.gather_join(&piece(24, 16), 0, false, false));
    assert!(!completes && stripe_held(&lock, 1));
    lock.gather_folded(slot, acc);
    let first = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            let decision = lock.gather_decide(slot);
            let parity = lock.gather_leave(slot);
            (decision, parity)
        })
    };
    lock.begin_write(40, 48);
    let (slot2, acc, completes) = joined(lock.gather_join(&piece(40, 8), 0, false, false));
    assert_eq!(slot2, slot, "same stripe, same entry");
    assert!(completes, "the second piece fills the stripe");
    lock.gather_folded(slot, acc);
    let (acc, coverage, _) = lock.gather_take(slot);
    assert!(coverage.is_full());
    lock.gather_commit(slot);
    lock.gather_written(slot, acc, true);
    assert_eq!(lock.gather_leave(slot), Some(true));
    let (decision, parity) = first.join().expect("first writer");
    assert_eq!(decision, Decision::Committed);
    assert_eq!(parity, Some(true));
    assert!(!stripe_held(&lock, 1), "the last to leave frees the stripe");
}

#[test]
fn a_parked_piece_flushes_when_its_neighbour_goes_away() {
    let lock = Arc::new(RangeLock::new(16, 4));
    lock.begin_write(24, 40);
    lock.announce_write(40, 48);
    let (slot, acc, _) = joined(lock.gather_join(&piece(24, 16), 0, false, false));
    lock.gather_folded(slot, acc);
    let parked = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.gather_decide(slot))
    };
    // The announced write's payload never came.
    lock.withdraw_write(40, 48);
    let decision = parked.join().expect("parked writer");
    assert_eq!(decision, Decision::Flush(FlushReason::NoNeighbour));
    let (acc, coverage, _) = lock.gather_take(slot);
    assert!(!coverage.is_full(), "the flush must read the rest");
    lock.gather_abort(slot, acc);
    assert_eq!(lock.gather_leave(slot), None);
    assert!(!stripe_held(&lock, 1));
}

#[test]
fn a_stripe_lock_in_the_way_forces_the_flush() {
    let lock = Arc::new(RangeLock::new(16, 4));
    lock.begin_write(24, 40);
    lock.announce_write(40, 48);
    let (slot, acc, _) = joined(lock.gather_join(&piece(24, 16), 0, false, false));
    lock.gather_folded(slot, acc);
    let locker = {
        let lock = lock.clone();
        // A resync window (or a degraded read) over stripes 0..=2.
        std::thread::spawn(move || drop(lock.lock(0, 2)))
    };
    assert_eq!(
        lock.gather_decide(slot),
        Decision::Flush(FlushReason::Forced)
    );
    let (acc, _, _) = lock.gather_take(slot);
    lock.gather_commit(slot);
    lock.gather_written(slot, acc, true);
    assert_eq!(lock.gather_leave(slot), Some(true));
    locker
        .join()
        .expect("the lock is granted once the entry left");
}

#[test]
fn overlap_is_refused_and_fua_flushes_at_once() {
    let lock = RangeLock::new(16, 4);
    lock.begin_write(24, 40);
    lock.announce_write(36, 48);
    let (slot, acc, _) = joined(lock.gather_join(&piece(24, 16), 0, false, false));
    lock.gather_folded(slot, acc);
    assert!(
        matches!(
            lock.gather_join(&piece(36, 12), 0, false, false),
            Join::Refused
        ),
        "sectors 36..40 are already in the entry"
    );
    assert_eq!(
        lock.gather_decide(slot),
        Decision::Flush(FlushReason::Forced),
        "the refused writer asked for the entry to go out"
    );
    let (acc, _, _) = lock.gather_take(slot);
    lock.gather_abort(slot, acc);
    assert_eq!(lock.gather_leave(slot), None);

    lock.announce_write(40, 48);
    let (slot, acc, _) = joined(lock.gather_join(&piece(24, 8), 0, false, false));
    lock.gather_folded(slot, acc);
    let (slot_fua, acc, completes) = joined(lock.gather_join(&piece(32, 8), 0, true, false));
    assert!(!completes && slot_fua == slot);
    lock.gather_folded(slot, acc);
    assert_eq!(
        lock.gather_decide(slot),
        Decision::Flush(FlushReason::Forced)
    );
}

#[test]
fn a_stream_waits_for_its_successor_only_while_its_client_is_busy() {
    let lock = Arc::new(RangeLock::new(16, 4));
    // A sequential write whose successor is not announced yet, while another
    // write of the same client runs: worth an entry.
    lock.begin_write(0, 8);
    lock.begin_write(24, 32);
    let (slot, acc, _) = joined(lock.gather_join(&piece(24, 8), 0, false, true));
    lock.gather_folded(slot, acc);
    let parked = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.gather_decide(slot))
    };
    // The other write ends; only the parked one is left: nobody can send
    // the successor before it is acknowledged.
    lock.withdraw_write(0, 8);
    let decision = parked.join().expect("parked writer");
    assert_eq!(decision, Decision::Flush(FlushReason::NoNeighbour));
    let (acc, _, _) = lock.gather_take(slot);
    lock.gather_abort(slot, acc);
    assert_eq!(lock.gather_leave(slot), None);
    // Alone, a stream write creates no entry at all.
    assert!(matches!(
        lock.gather_join(&piece(24, 8), 0, false, true),
        Join::Refused
    ));
}

#[test]
fn entries_and_stripes_are_bounded() {
    let lock = RangeLock::new(2, 4);
    for stripe in 0..2 {
        lock.announce_write(stripe * 24 + 8, stripe * 24 + 16);
        let (slot, acc, _) = joined(lock.gather_join(&piece(stripe * 24, 8), 0, false, false));
        lock.gather_folded(slot, acc);
    }
    lock.announce_write(56, 64);
    assert!(
        matches!(
            lock.gather_join(&piece(48, 8), 0, false, false),
            Join::Refused
        ),
        "stripe_cache_size 2 is used up"
    );
    assert_eq!(lock.held().stripes_in_use, 2);
}

#[test]
fn a_stream_is_pipelined_writes_one_after_another() {
    let lock = RangeLock::new(16, 4);
    assert!(!lock.begin_write(0, 8), "nothing before it");
    lock.announce_write(8, 16);
    assert!(lock.begin_write(8, 16), "sent while its predecessor ran");
    lock.withdraw_write(0, 8);
    lock.withdraw_write(8, 16);
    // The stream stays one after a pause in its pipeline.
    assert!(lock.begin_write(16, 24));
    lock.withdraw_write(16, 24);
    // One write at a time from the start (queue depth 1): never a stream.
    assert!(!lock.begin_write(100, 108));
    lock.withdraw_write(100, 108);
    assert!(!lock.begin_write(108, 116));
}

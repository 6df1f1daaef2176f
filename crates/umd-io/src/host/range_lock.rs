//! `RangeLock`: exclusive locks on inclusive ranges of stripe (or region)
//! numbers, held across one request's reads, parity maths and writes.
//!
//! Why: a raid4/5/6 read-modify-write reads old data and parity, then writes
//! new ones; two such updates of one stripe interleaved would leave parity
//! that matches neither. md serialises them in its stripe cache; here every
//! request that updates parity, every resync window and every degraded read
//! that reconstructs from parity holds its stripes for the duration. The
//! number of stripes held at once is bounded by md's `stripe_cache_size`,
//! which is what that attribute limits in md too.
//!
//! The same mutex protects the stripe-gathering entries (`gather.rs`): an entry
//! holds its stripe here like any range, so resync windows, degraded reads and
//! ordinary writes exclude it. A [`RangeLock::lock`] that finds a gathering
//! entry in its way asks it to flush at once, so nobody waits on a parked
//! write for longer than its own I/O.

use super::gather::Table;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Ranges held right now. Lock order: innermost of the host's locks except
/// the per-request context pool; never held while waiting on another lock.
#[derive(Debug)]
pub(crate) struct RangeLock {
    /// Held ranges, the number of stripes they cover and the gathering
    /// entries (protected by this mutex).
    pub(super) state: Mutex<Held>,
    /// Signalled when a range is released.
    pub(super) released: Condvar,
    /// One per gathering entry: signalled when that entry changes.
    pub(super) slot_changed: Box<[Condvar]>,
}

#[derive(Debug)]
pub(super) struct Held {
    pub(super) ranges: Vec<(u64, u64)>,
    pub(super) stripes_in_use: u64,
    pub(super) max_stripes: u64,
    pub(super) gather: Table,
}

/// Proof that a range is held; releases it on drop.
#[derive(Debug)]
pub(crate) struct RangeGuard<'a> {
    lock: &'a RangeLock,
    range: (u64, u64),
}

impl RangeLock {
    /// A lock admitting at most `stripes_max` stripes held at once (a single
    /// larger range is still admitted when nothing else is held), with
    /// `gather_slots` stripe-gathering entries (0: no gathering).
    pub(crate) fn new(stripes_max: u64, gather_slots: usize) -> Self {
        assert!(stripes_max > 0, "a stripe limit of zero would deadlock");
        Self {
            state: Mutex::new(Held {
                ranges: Vec::new(),
                stripes_in_use: 0,
                max_stripes: stripes_max,
                gather: Table::new(gather_slots),
            }),
            released: Condvar::new(),
            slot_changed: (0..gather_slots).map(|_| Condvar::new()).collect(),
        }
    }

    pub(super) fn held(&self) -> MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Change the limit (md's `stripe_cache_size` store).
    pub(crate) fn set_stripes_max(&self, stripes_max: u64) {
        self.held().max_stripes = stripes_max.max(1);
        self.released.notify_all();
    }

    /// Wait until `[first, last]` overlaps nothing held and fits the limit, then hold it.
    pub(crate) fn lock(&self, first: u64, last: u64) -> RangeGuard<'_> {
        assert!(first <= last, "range [{first}, {last}] is reversed");
        let stripes = last - first + 1;
        let mut held = self.held();
        loop {
            let overlaps = held.ranges.iter().any(|&(a, b)| a <= last && first <= b);
            let fits = held.ranges.is_empty() || held.stripes_in_use + stripes <= held.max_stripes;
            if !overlaps && fits {
                break;
            }
            self.unplug_slots(&mut held, first, last);
            held = self
                .released
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.ranges.push((first, last));
        held.stripes_in_use += stripes;
        RangeGuard {
            lock: self,
            range: (first, last),
        }
    }
}

impl Drop for RangeGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.lock.held();
        let at = held.ranges.iter().position(|&r| r == self.range);
        let at = at.expect("a guard's range stays registered until the guard drops");
        held.ranges.swap_remove(at);
        held.stripes_in_use -= self.range.1 - self.range.0 + 1;
        drop(held);
        self.lock.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn overlapping_ranges_exclude_each_other() {
        let lock = Arc::new(RangeLock::new(1024, 0));
        let inside = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (lock, inside) = (lock.clone(), inside.clone());
                std::thread::spawn(move || {
                    for j in 0..200u64 {
                        // Every range contains stripe 4, so no two may be held at once.
                        let first = (i + j) % 4;
                        let _g = lock.lock(first, first + 4);
                        assert_eq!(
                            inside.fetch_add(1, Ordering::SeqCst),
                            0,
                            "two holders overlap"
                        );
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("worker");
        }
    }

    #[test]
    fn disjoint_ranges_are_held_together_within_the_limit() {
        let lock = RangeLock::new(4, 0);
        let a = lock.lock(0, 1);
        let b = lock.lock(10, 11);
        assert_eq!(lock.held().stripes_in_use, 4);
        drop(a);
        drop(b);
        assert!(lock.held().ranges.is_empty());
        // A range larger than the limit is admitted alone.
        let big = lock.lock(0, 99);
        drop(big);
    }
}

//! The pipelined walk of one sync pass: the windows of the next positions are
//! read while the current one is compared, repaired or rebuilt and written.
//!
//! Why: a window at a time (read every member, then compute, then write,
//! then the next read) leaves the members idle during the compute and the
//! writes, and the CPU idle during the reads; a pass then runs at about half
//! the members' sequential read speed. Here a *reader* thread plans each
//! window, takes its range lock, reads it and hands it on; the sync thread
//! (the *finisher*) computes, writes, releases the window and reports
//! progress. At most [`WINDOWS_IN_FLIGHT`] windows exist at once, each in a
//! slot (its plan and scratch) allocated once per pass and circulated, so no
//! window allocates.
//!
//! Invariants this file owns:
//!
//! - **A window's range lock covers its read, compute and write.** The reader
//!   locks before it reads; the guard travels with the window and is dropped
//!   by the finisher only after the window's writes completed. A foreground
//!   write to those stripes waits, exactly as with one window at a time.
//! - **Progress is reported in order, and only for written windows.** The
//!   finisher takes windows in the order the reader read them (one FIFO
//!   channel) and reports a window's end as the sync position only after its
//!   writes completed, so `recovery_offset` and the resync checkpoint never
//!   point past a window that was not written.
//! - **Stopping is prompt and loses nothing.** The reader stops at an abort,
//!   a stop, a pacing decision or a read that failed even after the rewrite
//!   from redundancy (`sync_rewrite.rs`), and says so after the windows
//!   it already handed on; the finisher writes those, then stops. A failed
//!   write stops the finisher; [`walk`] then raises the reader's stop flag
//!   and drops the finisher's ends of both channels, so a reader pacing,
//!   waiting for a slot or sending wakes up and exits. Windows read but never
//!   written are simply dropped, their locks released, their progress never
//!   reported.
//!
//! Lock order: the reader takes range locks in increasing position order and
//! holds at most [`WINDOWS_IN_FLIGHT`] of them; neither thread waits on the
//! other while holding `core`. A window's lock may wait for the finisher to
//! release an overlapping earlier window (mirror regions), which the
//! finisher does without waiting on the reader, so this cannot deadlock.

use super::ctx::IoCtx;
use super::range_lock::RangeGuard;
use super::scratch::Scratch;
use super::sync_rewrite::rewrite_unreadable;
use super::sync_worker::{lock_window, report, Throttle};
use super::Shared;
use crate::member_file::IoError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use umd_engine::resync::{LocatedMismatch, SyncMode, SyncPlanner, SyncWindow};
use umd_engine::write::{BufRef, PlannedIo};

/// Sync positions per window: one chunk row at md's default 512 KiB chunk,
/// big enough for sequential member I/O (the planner also stops a window at
/// a chunk boundary).
pub(crate) const WINDOW_MAX: u64 = 1024;

/// Windows that exist at once: one being finished and written, the others
/// read or being read. Three keeps the next read in flight while the
/// finisher works, with one spare so a read slower than a finish does not
/// stall the pipeline; each costs one window's scratch (a few MiB at most).
pub(crate) const WINDOWS_IN_FLIGHT: usize = 3;
const _: () = assert!(WINDOWS_IN_FLIGHT >= 2, "one window finishing, one reading");

/// One window's plan and the scratch its reads fill and its writes use.
#[derive(Default)]
struct Slot {
    window: SyncWindow,
    scratch: Scratch,
}

/// What the reader hands the finisher, in position order.
enum Handed<'a> {
    /// A window read in full, still holding its range lock.
    Read(Box<Slot>, Option<RangeGuard<'a>>),
    /// A read failed on `role`: stop after the windows handed before.
    ReadFailed(u32, IoError),
    /// Aborted, stopping or paced out: stop after the windows handed before.
    Stopped,
    /// Every range was read.
    Done,
}

/// How a pass's walk ended.
pub(crate) struct Walked {
    /// Mismatched sectors found (comparing passes).
    pub(crate) mismatches: u64,
    /// Recovery windows with more blocks lost than the level survives.
    pub(crate) lost_windows: u64,
    /// Every window of every range was written.
    pub(crate) finished: bool,
}

/// Walk the windows of `ranges` (`mode` `None`: recovery) with the reads of
/// later windows overlapping the finish of earlier ones. `ctx` runs the
/// finisher's writes; the reader takes its own context.
pub(crate) fn walk(
    shared: &Shared,
    planner: &SyncPlanner,
    mode: Option<SyncMode>,
    ranges: &[(u64, u64)],
    ctx: &mut IoCtx,
) -> Walked {
    let stop_reader = AtomicBool::new(false);
    let (free_tx, free_rx) = sync_channel::<Box<Slot>>(WINDOWS_IN_FLIGHT);
    let (read_tx, read_rx) = sync_channel::<Handed<'_>>(WINDOWS_IN_FLIGHT + 1);
    for _ in 0..WINDOWS_IN_FLIGHT {
        free_tx
            .send(Box::default())
            .expect("the receiver is alive and the channel holds every slot");
    }
    let stop = &stop_reader;
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("umd-sync-read".into())
            .spawn_scoped(scope, move || {
                read_windows(shared, planner, mode, ranges, stop, &free_rx, &read_tx);
            });
        if let Err(e) = reader {
            tracing::error!(error = %e, "cannot start the sync reader thread; stopping the sync");
            return Walked {
                mismatches: 0,
                lost_windows: 0,
                finished: false,
            };
        }
        let walked = finish_windows(shared, planner, mode, ctx, &read_rx, &free_tx);
        // Wake a reader blocked on a slot or a send: it sees the stop flag or
        // a closed channel and exits, and the scope joins it.
        stop.store(true, Ordering::Relaxed);
        drop(free_tx);
        drop(read_rx);
        walked
    })
}

/// The reader thread: plan, lock and read each window into a free slot and
/// hand it on, in position order, until the ranges end or something stops it.
fn read_windows<'a>(
    shared: &'a Shared,
    planner: &SyncPlanner,
    mode: Option<SyncMode>,
    ranges: &[(u64, u64)],
    stop_reader: &AtomicBool,
    free: &Receiver<Box<Slot>>,
    out: &SyncSender<Handed<'a>>,
) {
    let mut ctx = IoCtx::take(shared);
    ctx.io.bulk = true;
    let mut throttle = Throttle::default();
    let last = 'ranges: {
        for &(first, len) in ranges {
            let mut pos = first;
            while pos < first + len {
                if throttle.pace(shared, stop_reader) {
                    break 'ranges Handed::Stopped;
                }
                let Ok(mut slot) = free.recv() else {
                    break 'ranges Handed::Stopped;
                };
                let len_max = WINDOW_MAX.min(first + len - pos);
                match mode {
                    Some(_) => planner.plan(pos, len_max, &mut slot.window),
                    None => planner.plan_recover(pos, len_max, &mut slot.window),
                }
                assert!(slot.window.len > 0, "a sync window makes progress");
                assert_eq!(slot.window.position, pos, "windows are read in order");
                let guard = lock_window(shared, planner, pos, slot.window.len);
                slot.scratch.ensure(slot.window.scratch_bytes);
                std::mem::swap(&mut ctx.scratch, &mut slot.scratch);
                let mut outcome = ctx.run_planned(shared, &slot.window.reads, false, &[]);
                if let Err((role, e)) = outcome {
                    // md rewrites what a member cannot read, then reads again.
                    outcome = rewrite_unreadable(shared, planner, &slot.window, role, e)
                        .and_then(|_| ctx.run_planned(shared, &slot.window.reads, false, &[]));
                }
                std::mem::swap(&mut ctx.scratch, &mut slot.scratch);
                if let Err((role, e)) = outcome {
                    drop(guard);
                    break 'ranges Handed::ReadFailed(role, e);
                }
                pos += slot.window.len;
                if out.send(Handed::Read(slot, guard)).is_err() {
                    break 'ranges Handed::Stopped;
                }
            }
        }
        Handed::Done
    };
    ctx.give_back(shared);
    // The finisher may be gone already (a failed write); nothing to tell it.
    let _ = out.send(last);
}

/// The finisher (the sync thread): compute, write and report each window
/// the reader hands on, then return its slot to `free`.
fn finish_windows(
    shared: &Shared,
    planner: &SyncPlanner,
    mode: Option<SyncMode>,
    ctx: &mut IoCtx,
    handed: &Receiver<Handed<'_>>,
    free: &SyncSender<Box<Slot>>,
) -> Walked {
    let mut walked = Walked {
        mismatches: 0,
        lost_windows: 0,
        finished: false,
    };
    let mut writes: Vec<PlannedIo> = Vec::new();
    let mut located: Vec<LocatedMismatch> = Vec::new();
    let mut next_pos = None;
    loop {
        let Ok(handed) = handed.recv() else {
            tracing::error!("the sync reader ended without a word; stopping the sync");
            return walked;
        };
        let (mut slot, guard) = match handed {
            Handed::Read(slot, guard) => (slot, guard),
            Handed::ReadFailed(role, e) => {
                tracing::error!(error = %e, role, "sync read failed; failing the member");
                fail_role(shared, role);
                return walked;
            }
            Handed::Stopped => return walked,
            Handed::Done => {
                walked.finished = true;
                return walked;
            }
        };
        let window = &slot.window;
        assert!(
            next_pos.is_none_or(|p| p <= window.position),
            "windows are finished in position order"
        );
        writes.clear();
        located.clear();
        if let Some(mode) = mode {
            walked.mismatches +=
                planner.finish(window, mode, &mut slot.scratch, &mut writes, &mut located);
        } else {
            planner.finish_recover(window, &mut slot.scratch, &mut writes);
            walked.lost_windows += u64::from(window.lost());
        }
        debug_assert!(writes
            .iter()
            .all(|w| matches!(w.buf, BufRef::Scratch { .. })));
        std::mem::swap(&mut ctx.scratch, &mut slot.scratch);
        let outcome = ctx.run_planned(shared, &writes, true, &[]);
        std::mem::swap(&mut ctx.scratch, &mut slot.scratch);
        // The window's writes completed (or failed): only now may foreground
        // writes to its stripes proceed.
        drop(guard);
        if let Err((role, e)) = outcome {
            tracing::error!(error = %e, role, "sync write failed; failing the member");
            fail_role(shared, role);
            return walked;
        }
        let end = slot.window.position + slot.window.len;
        next_pos = Some(end);
        report(shared, end, slot.window.len, &located, mode);
        // The reader may have stopped; the slot is then no longer needed.
        let _ = free.send(slot);
    }
}

/// md_error for a member the pass could not write, or read even after the
/// rewrite from redundancy (`sync_rewrite.rs`): it is failed, as a
/// foreground I/O error fails it, and the pass stops. Left in its role, it
/// would stop every later pass at the same place and the sync would never
/// end; failed, the engine starts the next pass without it (or onto a
/// spare) (docs/design.md, sync errors).
fn fail_role(shared: &Shared, role: u32) {
    if let Some(member) = shared.role_member(role) {
        super::io_path::fail_member(shared, member);
    }
}

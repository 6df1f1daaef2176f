//! The md thread: the array's housekeeping, as md's per-array thread does it.
//!
//! It runs the engine's timers (safe mode: back to clean after
//! `safe_mode_delay` without writes), writes native superblocks whenever the
//! engine asks (`UpdateSuperblock`: the first write after clean, a member
//! failure, resync progress or end, a clean stop), clears bitmap bits lazily,
//! and wakes writers waiting for the dirty transition. It loops until the
//! host stops; then it writes the final clean superblocks and exits.

use super::ctx::{recycle, IoCtx};
use super::{drain_events, HostError, Shared};
use crate::batch::Op;
use std::sync::atomic::Ordering;
use umd_engine::array::SuperblockState;
use umd_engine::durability;
use umd_engine::native::{MetadataWrite, RosterEntry, SuperblockUpdate};
use umd_engine::Errno;

/// Longest sleep between passes when no timer is due; bounds how stale a
/// missed wake-up can make the loop (it should never miss one).
const IDLE_WAIT_MS: u64 = 1000;

/// The thread body; runs until the host stops (a loop meant to run for the
/// array's lifetime).
pub(crate) fn run(shared: &Shared) {
    loop {
        let now = shared.now();
        let mut core = shared.core();
        // Whether the events drained here ask for the sync thread or a
        // waiting writer: they must be woken, or a kick is lost.
        let mut wake = false;
        if let Some(due) = core.array.poll_timeout() {
            if due <= now {
                core.array.handle_timeout(now);
            }
        }
        if core.stopping && !core.sync_running && !core.shutdown_started {
            // md's final pass: mark clean when no writes are pending.
            core.shutdown_started = true;
            core.array.shutdown(now);
            wake |= drain_events(&mut core);
            // The stop always records the final state, so the loop below
            // has one superblock write to wait for.
            core.superblock_due |= core.native.is_some();
        }
        wake |= drain_events(&mut core);
        shared.apply_membership(&mut core);
        let notes = std::mem::take(&mut core.notify_queue);
        let superblock = if core.superblock_due {
            core.superblock_due = false;
            Some(superblock_writes(shared, &mut core))
        } else {
            None
        };
        let bitmap_due = core.bitmap_timeout().is_some_and(|t| t <= now);
        drop(core);
        if wake {
            shared.core_changed.notify_all();
        }
        shared.deliver_notifications(&notes);
        if let Some(round) = superblock {
            // Members behind first; then md's order: the bitmap superblock
            // is durable before the md superblocks that carry the same events.
            let (writes, bitmap_first) = (&round.writes, round.bitmap_first);
            let outcome = write_metadata(shared, &round.catch_up)
                .and_then(|()| write_metadata(shared, &writes[..bitmap_first]))
                .and_then(|()| write_metadata(shared, &writes[bitmap_first..]));
            if let Err(e) = &outcome {
                tracing::error!(error = %e, "superblock update failed");
            }
            shared
                .stats
                .superblock_writes
                .fetch_add(1, Ordering::Relaxed);
            let mut core = shared.core();
            core.array.superblock_written(&round.state, shared.now());
            if core.shutdown_started {
                core.final_superblock_written = true;
            }
            // Writers wait for exactly this: wake them whatever the events say.
            shared.settle(core, true);
            continue;
        }
        if bitmap_due {
            clear_bitmap_bits(shared);
        }
        let mut core = shared.core();
        if core.superblock_due {
            continue;
        }
        let external = core.native.is_none();
        if core.shutdown_started && (core.final_superblock_written || external) {
            core.md_thread_done = true;
            drop(core);
            shared.core_changed.notify_all();
            return;
        }
        let now = shared.now();
        let mut wait = std::time::Duration::from_millis(IDLE_WAIT_MS);
        let timers = [core.array.poll_timeout(), core.bitmap_timeout()];
        for due in timers.into_iter().flatten() {
            let ns = due.0.saturating_sub(now.0);
            wait = wait.min(std::time::Duration::from_nanos(ns));
        }
        if core.stopping {
            wait = wait.min(std::time::Duration::from_millis(10));
        }
        if !wait.is_zero() {
            drop(shared.wait(core, Some(wait)));
        }
    }
}

/// One superblock update to write, in order: the catch-up writes of members
/// behind the array's events (`NativeMetadata::catch_up`), durable first;
/// then `writes`, whose first `bitmap_first` are bitmap superblock blocks,
/// durable before the rest; `state` is what they record (for
/// `superblock_written`).
struct SuperblockRound {
    catch_up: Vec<MetadataWrite>,
    writes: Vec<MetadataWrite>,
    bitmap_first: usize,
    state: SuperblockState,
}

/// The superblock update for the engine's current state (native metadata
/// only).
fn superblock_writes(shared: &Shared, core: &mut super::Core) -> SuperblockRound {
    let state = core.array.superblock_state();
    let mut round = SuperblockRound {
        catch_up: Vec::new(),
        writes: Vec::new(),
        bitmap_first: 0,
        state,
    };
    let state = &round.state;
    let Some(native) = core.native.as_mut() else {
        return round;
    };
    let faulty_members = state
        .faulty_members
        .iter()
        .filter_map(|name| shared.member_index(name))
        .collect();
    native.record_roster(&roster(shared, &core.array));
    let update = SuperblockUpdate {
        // The native writer's `clean` is md's in_sync: with it the checkpoint is
        // recorded (super_1_sync), without it resync_offset 0 (dirty).
        clean: state.in_sync,
        resync_offset_sectors: state.resync_offset_sectors,
        faulty_members,
        utime_seconds: wall_clock_seconds(),
        raid_disks: Some(core.array.raid_disks()),
    };
    native.catch_up(&update, &mut round.catch_up);
    native.update(&update, &mut round.writes);
    round.bitmap_first = round
        .writes
        .iter()
        .take_while(|w| native.bitmap_offset_bytes(w.member) == Some(w.offset_bytes))
        .count();
    round
}

/// Every member the array has, as the native superblocks record them.
pub(crate) fn roster(shared: &Shared, array: &umd_engine::array::Array) -> Vec<RosterEntry> {
    umd_engine::native::roster_of(array, |name| shared.member_index(name))
}

/// Seconds since the epoch, for superblock `utime` (only recorded, never compared).
fn wall_clock_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Clear bitmap bits whose chunks stayed idle long enough.
fn clear_bitmap_bits(shared: &Shared) {
    let _order = shared
        .bitmap_io
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut writes = Vec::new();
    {
        let mut core = shared.core();
        let now = shared.now();
        if let Some(bitmap) = core.bitmap() {
            bitmap.handle_timeout(now, &mut writes);
        }
    }
    if let Err(e) = write_metadata(shared, &writes) {
        tracing::error!(error = %e, "bitmap update failed");
    }
}

/// Write metadata blocks to their members and make them durable before
/// returning (md writes superblocks with PREFLUSH and FUA: the members are
/// flushed first, then written and synced). Members that are gone are
/// skipped.
///
/// A member whose metadata write or sync fails is failed, as md fails a
/// member whose superblock or bitmap write errored, and the others are
/// written again without it: one bad disk must not leave the array without
/// its dirty record, nor fail the user's write that waited for it. The
/// failure makes the engine ask for a superblock that records it. The
/// error stands only when the member cannot be failed (md keeps the last
/// working member) or fails twice.
pub(crate) fn write_metadata(shared: &Shared, writes: &[MetadataWrite]) -> Result<(), HostError> {
    if writes.is_empty() {
        return Ok(());
    }
    // Allocated on the error path only.
    let mut failed: Vec<usize> = Vec::new();
    loop {
        let Err((member, e)) = write_metadata_once(shared, writes, &failed) else {
            return Ok(());
        };
        let error = HostError::new(Errno::EIO, e.to_string());
        if failed.contains(&member) {
            return Err(error);
        }
        let name = shared.member_name(member).unwrap_or("?");
        tracing::error!(member = %name, error = %e, "metadata write failed; failing the member");
        if !super::io_path::fail_member(shared, member) {
            return Err(error);
        }
        failed.push(member);
    }
}

/// One attempt of [`write_metadata`], skipping the members in `skip`.
fn write_metadata_once(
    shared: &Shared,
    writes: &[MetadataWrite],
    skip: &[usize],
) -> Result<(), (usize, crate::IoError)> {
    let wanted = |m: usize| {
        !skip.contains(&m) && shared.file(m).is_some() && writes.iter().any(|w| w.member == m)
    };
    let mut ctx = IoCtx::take(shared);
    if durability::metadata_preflush() {
        // md's REQ_PREFLUSH: the data writes completed before this metadata
        // are durable before it, so a clean superblock or a cleared bitmap
        // bit never reaches the disk ahead of them.
        if let Err(e) = ctx.sync_members(shared, (0..shared.files.len()).filter(|&m| wanted(m))) {
            ctx.give_back(shared);
            return Err(e);
        }
    }
    let mut ops = recycle(std::mem::take(&mut ctx.ops_store));
    // A block written twice in one update (two cleared ranges in one
    // bitmap block) is written once, with its last content: one batch
    // must not hold overlapping writes.
    let superseded = |i: usize, w: &MetadataWrite| {
        writes[i + 1..].iter().any(|l| {
            l.member == w.member
                && l.offset_bytes == w.offset_bytes
                && l.bytes.len() == w.bytes.len()
        })
    };
    for (_, w) in writes
        .iter()
        .enumerate()
        .filter(|&(i, w)| wanted(w.member) && !superseded(i, w))
    {
        ops.push(Op::Write {
            member: w.member,
            offset_bytes: w.offset_bytes,
            buf: &w.bytes,
        });
    }
    // One batch: the executor starts a member's sync only after that
    // member's writes in the batch completed, so the sync covers them.
    for member in (0..shared.files.len()).filter(|&m| wanted(m)) {
        ops.push(Op::SyncData { member });
    }
    let outcome = ctx.io.run(shared, &mut ops);
    ctx.ops_store = recycle(ops);
    ctx.give_back(shared);
    outcome
}

//! The sync thread: resync, check, repair and recovery passes.
//!
//! The engine says what to run (`sync_request`) and records progress; this
//! thread walks the pass's windows (`sync_pipeline.rs`: the reads of later
//! windows overlap the finish of earlier ones), lets the engine's sync
//! planner compare, repair or rebuild each, writes the results and reports. Each window holds its stripes
//! (or mirror regions) in the range lock, so a concurrent write never
//! interleaves with the window's read-compare-write. After an unclean stop
//! with an internal bitmap, only the chunks whose bits are set are synced.
//! Before each window the engine says whether to pause (md's
//! `sync_speed_min`/`sync_speed_max` pacing); raid6 blocks the check or
//! repair located on one member are logged and counted per member.

use super::ctx::IoCtx;
use super::sync_pipeline;
use super::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use umd_engine::array::SyncAction;
use umd_engine::native::NativeMetadata;
use umd_engine::resync::{LocatedBlock, LocatedMismatch, SyncMode, SyncPlanner};
use umd_engine::sync_pass::{plan_pass, SyncPass};

/// Longest single sleep of a throttled sync, so an abort or stop is seen soon.
const THROTTLE_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// Mirror writes and sync windows lock regions of this many sectors.
pub(crate) const MIRROR_REGION_SECTORS: u64 = 1024;

/// The thread body; runs until the host stops.
pub(crate) fn run(shared: &Shared) {
    loop {
        let mut core = shared.core();
        while !core.sync_kick && !core.stopping {
            core = shared.wait(core, None);
        }
        if core.stopping {
            return;
        }
        core.sync_kick = false;
        let Some(action) = core.array.sync_request() else {
            continue;
        };
        // The pass plans with every activation the engine made so far: a
        // role whose spare is not in the map yet would look missing, and
        // its recovery would end at once with nothing rebuilt.
        shared.apply_membership(&mut core);
        let planner = SyncPlanner::new(shared.geometry.clone(), core.member_map.clone());
        // `mode` `None`: recovery (rebuilding members), else a comparing pass.
        let bitmap = core.native.as_ref().and_then(NativeMetadata::bitmap);
        let SyncPass {
            mode,
            total,
            start,
            ranges,
        } = plan_pass(&core.array, action, &planner, bitmap);
        let bitmap_recovery = mode.is_none() && core.array.recovery_is_bitmap_based();
        let from_bitmap = mode == Some(SyncMode::Resync) || bitmap_recovery;
        if from_bitmap && core.bitmap().is_some() {
            let dirty: u64 = ranges.iter().map(|r| r.1).sum();
            tracing::info!(
                ranges = ranges.len(),
                dirty_sectors = dirty,
                total,
                "resyncing only the dirty bitmap chunks"
            );
            eprintln!(
                "umd: {} of {} dirty bitmap chunks ({dirty} of {total} sectors)",
                if bitmap_recovery {
                    "recovery"
                } else {
                    "resync"
                },
                ranges.len()
            );
        }
        let now = shared.now();
        core.array.sync_started(action, total, now);
        if start > 0 {
            // A resumed pass shows where it resumed (md's curr_resync_completed).
            core.array.sync_progress(start, now);
        }
        core.sync_running = true;
        core.sync_abort = false;
        shared.settle(core, true);
        tracing::info!(?action, start, ranges = ranges.len(), total, "sync started");
        let (mismatches, completed) = sync_ranges(shared, &planner, mode, &ranges);
        finish(shared, action, mode, &ranges, mismatches, completed);
    }
}

/// Run the windows of every range (`mode` `None`: recovery); returns
/// (mismatched sectors, completed). A recovery with windows lost beyond
/// the level's redundancy is not complete: its members stay recovering.
fn sync_ranges(
    shared: &Shared,
    planner: &SyncPlanner,
    mode: Option<SyncMode>,
    ranges: &[(u64, u64)],
) -> (u64, bool) {
    let mut ctx = IoCtx::take(shared);
    ctx.io.bulk = true;
    let walked = sync_pipeline::walk(shared, planner, mode, ranges, &mut ctx);
    if !walked.finished {
        ctx.give_back(shared);
        return (walked.mismatches, false);
    }
    // Repairs must be durable before the engine records the array in sync.
    // Only members with a role: a failed (perhaps vanished) one holds
    // nothing the pass wrote. One whose sync fails now is failed, as a
    // FLUSH fails it, and the rest are synced again: left in its role it
    // would fail every later pass's sync, and the pass would never end.
    let synced = super::io_path::sync_members(shared, &mut ctx);
    ctx.give_back(shared);
    if walked.lost_windows > 0 {
        tracing::error!(
            lost_windows = walked.lost_windows,
            "recovery could not rebuild every window: more members lost than the level survives"
        );
    }
    (
        walked.mismatches,
        synced.is_ok() && walked.lost_windows == 0,
    )
}

/// Hold the stripes (or mirror regions) of the window `[pos, pos + len)`.
pub(super) fn lock_window<'a>(
    shared: &'a Shared,
    planner: &SyncPlanner,
    pos: u64,
    len: u64,
) -> Option<super::range_lock::RangeGuard<'a>> {
    if shared.is_parity_level() {
        Some(
            shared
                .ranges
                .lock(planner.stripe_of(pos), planner.stripe_of(pos + len - 1)),
        )
    } else if shared.geometry.copies() > 1 {
        Some(shared.ranges.lock(
            pos / MIRROR_REGION_SECTORS,
            (pos + len - 1) / MIRROR_REGION_SECTORS,
        ))
    } else {
        None
    }
}

/// Pacing of the sync thread against md's speed limits.
#[derive(Default)]
pub(super) struct Throttle {
    /// `foreground_requests` when the last window started.
    requests_seen: u64,
}

impl Throttle {
    /// Pause while the engine says the sync is too fast; `true` if the
    /// sync must stop instead (an abort, a stop, or `stop_reader` raised by
    /// the pass's finisher). Bounded: each pause re-reads the engine, and
    /// any of those ends it within [`THROTTLE_SLICE`].
    pub(super) fn pace(&mut self, shared: &Shared, stop_reader: &AtomicBool) -> bool {
        loop {
            if stop_reader.load(Ordering::Relaxed) {
                return true;
            }
            // Foreground I/O since the last look (md re-reads is_mddev_idle
            // after each pause too).
            let requests = shared.stats.foreground_requests.load(Ordering::Relaxed);
            let busy = requests != self.requests_seen;
            self.requests_seen = requests;
            let pause = {
                let core = shared.core();
                if core.sync_abort || core.stopping {
                    return true;
                }
                core.array.sync_throttle(shared.now(), busy)
            };
            let Some(pause) = pause else {
                return false;
            };
            let pause = std::time::Duration::from_nanos(pause.0).min(THROTTLE_SLICE);
            std::thread::sleep(pause);
        }
    }
}

/// Record a written window ending at `pos` as the pass's progress.
pub(super) fn report(
    shared: &Shared,
    pos: u64,
    len: u64,
    located: &[LocatedMismatch],
    mode: Option<SyncMode>,
) {
    let now = shared.now();
    let mut core = shared.core();
    core.array.sync_io(len, now);
    core.array.sync_progress(pos, now);
    for l in located {
        let member = core.array.sync_located(l.role, l.len_sectors);
        let block = match l.block {
            LocatedBlock::Data => "data",
            LocatedBlock::P => "P",
            LocatedBlock::Q => "Q",
        };
        tracing::warn!(
            member = member.as_deref().unwrap_or("(gone)"),
            role = l.role,
            sector = l.position,
            sectors = l.len_sectors,
            block,
            repaired = mode == Some(SyncMode::Repair),
            "raid6 mismatch located on one member"
        );
    }
    shared.settle(core, false);
}

fn finish(
    shared: &Shared,
    action: SyncAction,
    mode: Option<SyncMode>,
    ranges: &[(u64, u64)],
    mismatches: u64,
    completed: bool,
) {
    tracing::info!(?action, mismatches, completed, "sync finished");
    // Bits clear once the ranges are known consistent: after a resync or
    // repair (a recovery leaves them to the next bitmap pass).
    if completed && matches!(mode, Some(SyncMode::Resync | SyncMode::Repair)) {
        let _order = shared
            .bitmap_io
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut writes = Vec::new();
        {
            let mut core = shared.core();
            if let Some(bitmap) = core.bitmap() {
                for &(a, len) in ranges {
                    bitmap.clear_range(a, len, &mut writes);
                }
            }
        }
        if let Err(e) = super::md_thread::write_metadata(shared, &writes) {
            tracing::error!(error = %e, "bitmap update after sync failed");
        }
    }
    let now = shared.now();
    let mut core = shared.core();
    core.array.sync_finished(mismatches, completed, now);
    core.sync_running = false;
    core.sync_abort = false;
    // Another action (e.g. a requested check) may be waiting. A kick that
    // arrived while this pass ran (an `idle` then `resync` store) must
    // survive: it is what starts the next pass. An aborted pass does not
    // kick itself, so a failing sync does not spin.
    core.sync_kick |= core.array.sync_request().is_some() && completed;
    shared.settle(core, true);
}

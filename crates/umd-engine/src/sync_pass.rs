//! What one sync pass covers: the sync planner's mode for the action the
//! array asked for, and the ranges of sync positions to walk.
//!
//! Why a function of its own: the real sync thread and the simulator's host
//! must walk the same ranges (a resync from the checkpoint; with an
//! internal bitmap only the chunks whose bits are set; a recovery from its
//! members' checkpoint, and a re-add only over the bitmap's chunks; check and repair from 0), or the simulator would
//! test a resync that does not ship.

use crate::array::{Array, SyncAction};
use crate::bitmap::WriteIntentBitmap;
use crate::resync::{SyncMode, SyncPlanner};

/// One pass to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPass {
    /// The planner's mode; `None`: recovery (rebuilding members).
    pub mode: Option<SyncMode>,
    /// The end of the sync range (the planner's `max_position`).
    pub total: u64,
    /// Where a pass over the whole range starts: a resync's or a recovery's
    /// checkpoint, else 0.
    pub start: u64,
    /// `(position, len)` ranges to walk, in order, none empty.
    pub ranges: Vec<(u64, u64)>,
}

/// The pass for `action` on `array`, whose positions `planner` maps;
/// `bitmap`: the internal bitmap, if any.
#[must_use]
pub fn plan_pass(
    array: &Array,
    action: SyncAction,
    planner: &SyncPlanner,
    bitmap: Option<&WriteIntentBitmap>,
) -> SyncPass {
    let mode = match action {
        SyncAction::Resync => Some(SyncMode::Resync),
        SyncAction::Check => Some(SyncMode::Check),
        SyncAction::Repair => Some(SyncMode::Repair),
        SyncAction::Recover => None,
    };
    let total = planner.max_position();
    let start = match mode {
        Some(SyncMode::Resync) => array.sync_position().min(total),
        // A recovery resumes at its members' checkpoint.
        None => array.recovery_start().min(total),
        Some(_) => 0,
    };
    // A re-added member (md's bitmap-based recovery) missed only the
    // writes whose bits are set, as a resync after a crash does.
    let from_bitmap = match mode {
        Some(SyncMode::Resync) => true,
        None => array.recovery_is_bitmap_based(),
        Some(_) => false,
    };
    let ranges: Vec<(u64, u64)> = match bitmap {
        Some(bitmap) if from_bitmap => bitmap
            .dirty_ranges()
            .into_iter()
            .filter_map(|(a, len)| {
                let end = (a + len).min(total);
                let a = a.max(start);
                (a < end).then(|| (a, end - a))
            })
            .collect(),
        _ if start < total => vec![(start, total - start)],
        _ => Vec::new(),
    };
    assert!(ranges.iter().all(|r| r.1 > 0 && r.0 + r.1 <= total));
    SyncPass {
        mode,
        total,
        start,
        ranges,
    }
}

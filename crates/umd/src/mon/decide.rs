//! One subarray's part of a monitor pass (mdmon's `read_and_act`,
//! protocol.md §6.2): from what the engine shows, decide what the metadata
//! must record and what to tell the engine afterwards.
//!
//! Why pure: the ordering rules are the whole point of the manager, so this
//! file does no I/O. It reads an [`Observed`] snapshot, calls the metadata
//! handler (which only changes memory), and returns an [`Acts`] list of
//! engine writes. The caller writes the metadata to disk (`sync_metadata`)
//! between the two, which gives the rules by construction:
//!
//! * dirty is recorded before `active` is written (write-pending);
//! * a failure is recorded before `-blocked` is written;
//! * going clean is the other way round: the engine is told `clean` first
//!   (active-idle) and the metadata is marked clean on the next pass, when
//!   the engine reports `clean` (a write in between only makes a new
//!   write-pending).
//!
//! Tracked state per subarray (mdmon's `active_array`): the previous
//! `array_state` and `sync_action`, and the last resync checkpoint recorded.
//!
//! | engine shows (cur) | metadata | then tell the engine |
//! |---|---|---|
//! | `clear`/`inactive` after running | clean | `clear`; stop watching |
//! | `write-pending` | dirty | `active` |
//! | `active-idle` | (nothing yet) | `clean` |
//! | `clean`, `broken` | clean | - |
//! | `active` | (dirty already) | - |
//! | `readonly` (not `external:-`) | decide from metadata | `read-auto` if clean, else `active` |
//! | a member `faulty` | failed | `-blocked`; `active` if it was `read-auto`; `remove` once out of its slot |

use super::handler::{Consistency, DiskState, MetadataHandler, RESYNC_NONE};
use umd_engine::array::ArrayStateWord;

/// A member as the monitor read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedMember {
    /// `dev-NAME`.
    pub name: String,
    /// `dev-NAME/slot`, `None` for `none`.
    pub slot: Option<u32>,
    /// `dev-NAME/state`.
    pub state: DiskState,
}

/// One subarray as the monitor read it in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `array_state`; `None` if unreadable (the array went away).
    pub array_state: Option<ArrayStateWord>,
    /// `sync_action`.
    pub sync_action: String,
    /// `resync_start` ([`RESYNC_NONE`] for `none`).
    pub resync_start: u64,
    /// `sync_completed`'s done sectors, `None` when no sync runs.
    pub sync_completed: Option<u64>,
    /// `metadata_version`.
    pub metadata_version: String,
    /// Members.
    pub members: Vec<ObservedMember>,
}

impl Observed {
    /// Read one subarray through `get` (an attribute relative to the
    /// subarray, `None` when unreadable), watching `members`: what the
    /// monitor reads through the control socket, and the simulator from
    /// its engine. An unreadable `array_state` means the array went away;
    /// a member whose state or slot is unreadable (removed) is left out.
    pub fn read(mut get: impl FnMut(&str) -> Option<String>, members: &[String]) -> Observed {
        let array_state = get("array_state").and_then(|v| ArrayStateWord::parse(&v));
        let sync_action = get("sync_action").unwrap_or_else(|| "idle".to_owned());
        let resync_start = get("resync_start")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(RESYNC_NONE);
        let sync_completed = get("sync_completed")
            .and_then(|v| v.split_whitespace().next().and_then(|d| d.parse().ok()));
        let metadata_version = get("metadata_version").unwrap_or_default();
        let mut seen = Vec::with_capacity(members.len());
        for name in members {
            let state = get(&format!("dev-{name}/state"));
            let slot = get(&format!("dev-{name}/slot"));
            if let (Some(state), Some(slot)) = (state, slot) {
                seen.push(ObservedMember {
                    name: name.clone(),
                    slot: slot.trim().parse().ok(),
                    state: DiskState::parse(&state),
                });
            }
        }
        Observed {
            array_state,
            sync_action,
            resync_start,
            sync_completed,
            metadata_version,
            members: seen,
        }
    }
}

/// What the monitor remembers of one subarray between passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// Subarray index.
    pub index: u32,
    /// `array_state` at the previous pass (`None` before the first).
    pub prev_state: Option<ArrayStateWord>,
    /// `sync_action` at the previous pass.
    pub prev_action: String,
    /// Last resync position recorded in the metadata.
    pub last_checkpoint: u64,
    /// Still monitored (false once the array stopped).
    pub monitored: bool,
}

impl Tracked {
    /// A subarray seen for the first time.
    #[must_use]
    pub fn new(index: u32) -> Self {
        Self {
            index,
            prev_state: None,
            prev_action: "idle".to_owned(),
            last_checkpoint: 0,
            monitored: true,
        }
    }
}

/// Engine writes for after the metadata is on disk, in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acts {
    /// New `array_state`.
    pub array_state: Option<&'static str>,
    /// New `sync_action`.
    pub sync_action: Option<&'static str>,
    /// Members to write `-blocked` to.
    pub unblock: Vec<String>,
    /// Members to write `remove` to (faulty and out of their slot).
    pub remove: Vec<String>,
    /// Members that are faulty here (to fail them in the other subarrays).
    pub faulty: Vec<String>,
    /// Members whose bad blocks the metadata cannot record: write
    /// `-external_bbl`, so the engine shows them faulty and the next pass
    /// fails them (mdmon does this when `record_bad_block` fails).
    pub drop_external_bbl: Vec<String>,
}

impl Acts {
    /// The engine writes, in order, as `(attribute relative to the
    /// subarray, value)`: `array_state`, `sync_action`, `-blocked`,
    /// `-external_bbl`, `remove`. The monitor and the simulator both write
    /// exactly these.
    #[must_use]
    pub fn engine_writes(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        if let Some(state) = self.array_state {
            out.push(("array_state".to_owned(), state));
        }
        if let Some(action) = self.sync_action {
            out.push(("sync_action".to_owned(), action));
        }
        let member = |names: &[String], value: &'static str| {
            names
                .iter()
                .map(move |m| (format!("dev-{m}/state"), value))
                .collect::<Vec<_>>()
        };
        out.extend(member(&self.unblock, "-blocked"));
        out.extend(member(&self.drop_external_bbl, "-external_bbl"));
        out.extend(member(&self.remove, "remove"));
        out
    }
}

/// `cur <= clean` in mdmon's state order (clear, inactive, suspended,
/// readonly, read-auto, clean, active, write-pending, active-idle): the
/// engine has no writes outstanding.
fn at_most_clean(word: ArrayStateWord) -> bool {
    use ArrayStateWord as W;
    matches!(
        word,
        W::Clear | W::Inactive | W::Suspended | W::Readonly | W::ReadAuto | W::Clean
    )
}

/// Whether a word means the array runs.
fn running(word: ArrayStateWord) -> bool {
    !matches!(word, ArrayStateWord::Clear | ArrayStateWord::Inactive)
}

/// mdmon's `read_and_act` for one subarray: record in `handler`, return the
/// engine writes.
pub fn decide(t: &mut Tracked, seen: &Observed, handler: &mut dyn MetadataHandler) -> Acts {
    use ArrayStateWord as W;
    assert!(t.monitored, "a stopped subarray is not decided on");
    let mut acts = Acts::default();
    let Some(cur) = seen.array_state else {
        // Unreadable: the engine is gone. Record nothing: an engine that
        // died may have had writes in flight, so the dirty mark must stay.
        t.monitored = false;
        return acts;
    };
    let index = t.index;
    let was_running = t.prev_state.is_some_and(running);
    let clean_now = at_most_clean(cur);
    match cur {
        W::Clear | W::Inactive if was_running => {
            // The engine stopped the array cleanly (it marks itself clean
            // first): record clean, then release it.
            handler.set_array_state(index, Consistency::Clean, seen.resync_start);
            acts.array_state = Some("clear");
            t.monitored = false;
        }
        W::WritePending => {
            handler.set_array_state(index, Consistency::Dirty, seen.resync_start);
            acts.array_state = Some("active");
        }
        W::ActiveIdle => acts.array_state = Some("clean"),
        W::Clean | W::Broken => {
            handler.set_array_state(index, Consistency::Clean, seen.resync_start);
        }
        W::Readonly if !seen.metadata_version.starts_with("external:-") => {
            let clean = handler.set_array_state(index, Consistency::Decide, seen.resync_start);
            acts.array_state = Some(if clean { "read-auto" } else { "active" });
        }
        _ => {}
    }
    if !t.monitored {
        return acts;
    }
    sync_transitions(t, seen, cur, handler);
    if seen.sync_action == "idle" {
        // A finished or aborted pass: the next one checkpoints from its start.
        t.last_checkpoint = 0;
    }
    failures(index, seen, cur, handler, &mut acts);
    checkpoint(t, seen, clean_now, handler);
    t.prev_state = Some(cur);
    t.prev_action.clone_from(&seen.sync_action);
    acts
}

/// A sync that ended: resync recorded, recovered members recorded.
fn sync_transitions(
    t: &Tracked,
    seen: &Observed,
    cur: ArrayStateWord,
    handler: &mut dyn MetadataHandler,
) {
    let ended = seen.sync_action == "idle" && t.prev_action != "idle";
    if !ended {
        return;
    }
    match t.prev_action.as_str() {
        "resync" => {
            handler.set_array_state(t.index, consistency(at_most_clean(cur)), seen.resync_start);
        }
        "recover" => {
            for m in &seen.members {
                if let Some(slot) = m.slot {
                    handler.set_disk(t.index, slot, m.state);
                }
            }
        }
        _ => {}
    }
}

/// Faulty members: record the failure, then unblock, make a read-auto array
/// writable (so the failure is handled), and remove what left its slot.
fn failures(
    index: u32,
    seen: &Observed,
    cur: ArrayStateWord,
    handler: &mut dyn MetadataHandler,
    acts: &mut Acts,
) {
    // Blocked on bad blocks this manager keeps but no handler here records.
    for m in seen
        .members
        .iter()
        .filter(|m| m.state.external_bbl && m.state.blocked && !m.state.faulty)
    {
        acts.drop_external_bbl.push(m.name.clone());
    }
    for m in seen.members.iter().filter(|m| m.state.faulty) {
        acts.faulty.push(m.name.clone());
        if let Some(slot) = m.slot {
            handler.set_disk(index, slot, m.state);
        }
        if m.state.blocked {
            acts.unblock.push(m.name.clone());
        }
        if cur == ArrayStateWord::ReadAuto {
            handler.set_array_state(index, Consistency::Dirty, seen.resync_start);
            acts.array_state = Some("active");
        }
        let writable = !matches!(
            cur,
            ArrayStateWord::Readonly | ArrayStateWord::Clear | ArrayStateWord::Inactive
        );
        if writable && m.slot.is_none() && !m.state.blocked {
            acts.remove.push(m.name.clone());
        }
    }
}

/// Resync progress: record the position once it moved past the last
/// checkpoint (mdmon keeps the metadata's resync start no further than the
/// engine's `sync_completed`), and start over once a pass finished.
fn checkpoint(
    t: &mut Tracked,
    seen: &Observed,
    clean_now: bool,
    handler: &mut dyn MetadataHandler,
) {
    let Some(done) = seen.sync_completed else {
        return;
    };
    if seen.sync_action == "idle" || done <= t.last_checkpoint {
        return;
    }
    t.last_checkpoint = done;
    // A check, repair or recovery of an array in sync shows no resync
    // position: it stays in sync (recording `done` would mark a consistent
    // array partly initialised, and a crash then resyncs it all).
    let position = if seen.resync_start == RESYNC_NONE {
        RESYNC_NONE
    } else {
        seen.resync_start.min(done)
    };
    tracing::debug!(
        subarray = t.index,
        position,
        sync_completed = done,
        "resync checkpoint recorded"
    );
    handler.set_array_state(t.index, consistency(clean_now), position);
}

fn consistency(clean: bool) -> Consistency {
    if clean {
        Consistency::Clean
    } else {
        Consistency::Dirty
    }
}

#[cfg(test)]
mod tests;

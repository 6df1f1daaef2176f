//! The decisions of one pass, against a handler that records its calls.

use super::*;
use crate::mon::handler::RESYNC_NONE;
use crate::mon::handler::{SpareAssignment, Subarray};
use umd_engine::native::MetadataWrite;

#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    decide_clean: bool,
}

impl MetadataHandler for Recorder {
    fn format(&self) -> &'static str {
        "test"
    }
    fn subarrays(&self) -> Vec<Subarray> {
        Vec::new()
    }
    fn set_array_state(&mut self, index: u32, consistent: Consistency, resync_start: u64) -> bool {
        let start = if resync_start == RESYNC_NONE {
            "none".to_owned()
        } else {
            resync_start.to_string()
        };
        self.calls
            .push(format!("state {index} {consistent:?} {start}"));
        match consistent {
            Consistency::Clean => resync_start == RESYNC_NONE,
            Consistency::Dirty => false,
            Consistency::Decide => self.decide_clean,
        }
    }
    fn set_disk(&mut self, index: u32, slot: u32, state: DiskState) {
        self.calls
            .push(format!("disk {index} {slot} faulty={}", state.faulty));
    }
    fn activate_spare(&mut self, _index: u32, _missing: &[u32]) -> Vec<SpareAssignment> {
        Vec::new()
    }
    fn add_disk(
        &mut self,
        name: &str,
        _dev_bytes: u64,
        _read: &mut umd_formats::probe::ReadAt<'_>,
        _seed: u64,
    ) -> Result<usize, String> {
        Err(format!("{name}: not in this test"))
    }
    fn sync_metadata(&mut self, _out: &mut Vec<MetadataWrite>) {}
}

fn seen(state: &str) -> Observed {
    Observed {
        array_state: ArrayStateWord::parse(state),
        sync_action: "idle".to_owned(),
        resync_start: RESYNC_NONE,
        sync_completed: None,
        metadata_version: "external:/ddf-1/0".to_owned(),
        members: vec![
            ObservedMember {
                name: "d0".to_owned(),
                slot: Some(0),
                state: DiskState::parse("in_sync"),
            },
            ObservedMember {
                name: "d1".to_owned(),
                slot: Some(1),
                state: DiskState::parse("in_sync"),
            },
        ],
    }
}

fn running(state: &str) -> Tracked {
    let mut t = Tracked::new(3);
    t.prev_state = ArrayStateWord::parse(state);
    t
}

#[test]
fn write_pending_records_dirty_then_acknowledges() {
    let mut h = Recorder::default();
    let mut t = running("clean");
    let acts = decide(&mut t, &seen("write-pending"), &mut h);
    assert_eq!(h.calls, ["state 3 Dirty none"]);
    assert_eq!(acts.array_state, Some("active"));
    assert_eq!(t.prev_state, Some(ArrayStateWord::WritePending));
}

#[test]
fn idle_is_told_clean_before_the_metadata_says_so() {
    let mut h = Recorder::default();
    let mut t = running("active");
    let acts = decide(&mut t, &seen("active-idle"), &mut h);
    assert!(h.calls.is_empty(), "metadata untouched: {:?}", h.calls);
    assert_eq!(acts.array_state, Some("clean"));
    let acts = decide(&mut t, &seen("clean"), &mut h);
    assert_eq!(h.calls, ["state 3 Clean none"]);
    assert_eq!(acts.array_state, None);
}

#[test]
fn active_needs_nothing() {
    let mut h = Recorder::default();
    let mut t = running("write-pending");
    let acts = decide(&mut t, &seen("active"), &mut h);
    assert!(h.calls.is_empty());
    assert_eq!(acts, Acts::default());
}

#[test]
fn readonly_at_assembly_goes_read_auto_when_clean_else_active() {
    for (clean, next) in [(true, "read-auto"), (false, "active")] {
        let mut h = Recorder {
            decide_clean: clean,
            ..Recorder::default()
        };
        let mut t = Tracked::new(3);
        let acts = decide(&mut t, &seen("readonly"), &mut h);
        assert_eq!(h.calls, ["state 3 Decide none"]);
        assert_eq!(acts.array_state, Some(next));
    }
}

#[test]
fn blocked_read_only_marker_is_left_alone() {
    let mut h = Recorder::default();
    let mut t = Tracked::new(3);
    let mut s = seen("readonly");
    s.metadata_version = "external:-ddf-1/0".to_owned();
    let acts = decide(&mut t, &s, &mut h);
    assert!(h.calls.is_empty());
    assert_eq!(acts.array_state, None);
}

#[test]
fn failure_is_recorded_then_unblocked_and_removed_once_out_of_its_slot() {
    let mut h = Recorder::default();
    let mut t = running("active");
    let mut s = seen("write-pending");
    s.members[1].state = DiskState::parse("faulty,blocked");
    let acts = decide(&mut t, &s, &mut h);
    assert_eq!(h.calls, ["state 3 Dirty none", "disk 3 1 faulty=true"]);
    assert_eq!(acts.array_state, Some("active"));
    assert_eq!(acts.unblock, ["d1"]);
    assert!(acts.remove.is_empty(), "still in its slot");
    assert_eq!(acts.faulty, ["d1"]);
    s.array_state = Some(ArrayStateWord::Active);
    s.members[1].state = DiskState::parse("faulty");
    s.members[1].slot = None;
    let acts = decide(&mut t, &s, &mut h);
    assert_eq!(acts.remove, ["d1"]);
    assert!(acts.unblock.is_empty());
}

#[test]
fn failure_on_read_auto_makes_it_writable() {
    let mut h = Recorder::default();
    let mut t = running("read-auto");
    let mut s = seen("read-auto");
    s.members[0].state = DiskState::parse("faulty,blocked");
    let acts = decide(&mut t, &s, &mut h);
    assert_eq!(h.calls, ["disk 3 0 faulty=true", "state 3 Dirty none"]);
    assert_eq!(acts.array_state, Some("active"));
}

#[test]
fn clean_stop_records_clean_and_releases() {
    let mut h = Recorder::default();
    let mut t = running("clean");
    let acts = decide(&mut t, &seen("inactive"), &mut h);
    assert_eq!(h.calls, ["state 3 Clean none"]);
    assert_eq!(acts.array_state, Some("clear"));
    assert!(!t.monitored);
}

#[test]
fn an_engine_that_vanished_leaves_the_metadata_dirty() {
    let mut h = Recorder::default();
    let mut t = running("active");
    let mut s = seen("active");
    s.array_state = None;
    let acts = decide(&mut t, &s, &mut h);
    assert!(h.calls.is_empty());
    assert_eq!(acts, Acts::default());
    assert!(!t.monitored);
}

#[test]
fn resync_progress_is_checkpointed_monotonically_and_its_end_recorded() {
    let mut h = Recorder::default();
    let mut t = running("active");
    let mut s = seen("active");
    s.sync_action = "resync".to_owned();
    s.resync_start = 1000;
    s.sync_completed = Some(1000);
    decide(&mut t, &s, &mut h);
    assert_eq!(h.calls, ["state 3 Dirty 1000"]);
    h.calls.clear();
    decide(&mut t, &s, &mut h);
    assert!(h.calls.is_empty(), "no progress, no record");
    s.resync_start = 2000;
    s.sync_completed = Some(2000);
    decide(&mut t, &s, &mut h);
    assert_eq!(h.calls, ["state 3 Dirty 2000"]);
    h.calls.clear();
    s.sync_action = "idle".to_owned();
    s.resync_start = RESYNC_NONE;
    s.sync_completed = None;
    s.array_state = Some(ArrayStateWord::WritePending);
    let acts = decide(&mut t, &s, &mut h);
    assert_eq!(h.calls, ["state 3 Dirty none", "state 3 Dirty none"]);
    assert_eq!(acts.array_state, Some("active"));
}

#[test]
fn a_check_of_an_array_in_sync_keeps_it_in_sync() {
    // Found by the simulator: recording `sync_completed` as the position
    // marked a consistent array partly initialised at every checkpoint of a
    // check pass, so a crash then resynced it all.
    let mut h = Recorder::default();
    let mut t = running("clean");
    let mut s = seen("clean");
    s.sync_action = "check".to_owned();
    s.sync_completed = Some(512);
    decide(&mut t, &s, &mut h);
    assert_eq!(h.calls, ["state 3 Clean none", "state 3 Clean none"]);
}

#[test]
fn bad_blocks_the_metadata_cannot_record_drop_external_bbl() {
    let mut h = Recorder::default();
    let mut t = running("active");
    let mut s = seen("write-pending");
    s.members[1].state = DiskState::parse("in_sync,blocked,external_bbl");
    let acts = decide(&mut t, &s, &mut h);
    assert_eq!(acts.drop_external_bbl, ["d1"]);
    assert!(acts.faulty.is_empty() && acts.unblock.is_empty());
    // The engine then shows it faulty: the next pass fails it.
    s.members[1].state = DiskState::parse("faulty,in_sync,blocked");
    let acts = decide(&mut t, &s, &mut h);
    assert_eq!(acts.unblock, ["d1"]);
    assert!(h.calls.iter().any(|c| c == "disk 3 1 faulty=true"));
}

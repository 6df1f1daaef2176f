//! Sync bookkeeping of an array (md's `recovery` bits, `recovery_cp`,
//! `curr_resync_completed`, `resync_mismatches`): which sync the host should
//! run, how far it got, and `sync_action` / `sync_completed`.
//!
//! Why here and not in the sync worker: the worker (host side) moves data;
//! the array decides when a sync is needed, checkpoints `resync_start`,
//! and raises the metadata changes md raises at the end of a sync
//! (`CHANGE_DEVS|CHANGE_PENDING`, protocol.md §3.7). Sync states:
//!
//! | state | shown `sync_action` | leaves by |
//! |---|---|---|
//! | frozen | `frozen` | `idle` or another action written |
//! | running(action) | the action | `sync_finished`, `idle`/`frozen`, failure, stop |
//! | requested(action) | the action | host `sync_started` |
//! | idle | `idle` | need detected (`StartSync`), action written |

use super::sync_speed::{SpeedLimits, SyncMarks};
use super::{Array, ArrayEvent, MAX_SECTOR};
use crate::errno::{EngineError, Errno};
use crate::member::MemberHealth;
use crate::state::{Ro, SbFlags};
use crate::time::{Duration, Time};

/// md refreshes `sync_completed` at least this often during a sync (5 min).
pub const SYNC_COMPLETED_REFRESH: Duration = Duration::from_ms(5 * 60 * 1000);

/// md refreshes `sync_completed` each time progress passes 1/16 of the range.
pub const SYNC_COMPLETED_STEPS: u64 = 16;

/// A kind of sync pass (`sync_action` words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncAction {
    /// Make redundancy consistent after an unclean stop.
    Resync,
    /// Read and count mismatches (`mismatch_cnt`), change nothing.
    Check,
    /// Read and rewrite mismatches.
    Repair,
    /// Rebuild members that are not in sync.
    Recover,
}

impl SyncAction {
    /// md's `sync_action` word.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Resync => "resync",
            Self::Check => "check",
            Self::Repair => "repair",
            Self::Recover => "recover",
        }
    }
}

/// A sync the host reported as started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunningSync {
    pub(crate) action: SyncAction,
    pub(crate) total_sectors: u64,
    pub(crate) done_sectors: u64,
    /// md's `curr_resync_completed`: the last refreshed position.
    pub(crate) completed_sectors: u64,
    pub(crate) refreshed_at: Time,
    /// Speed marks (`sync_speed`, throttling).
    pub(crate) marks: SyncMarks,
}

/// md's recovery bits, as one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SyncState {
    /// `MD_RECOVERY_FROZEN`.
    pub(crate) frozen: bool,
    /// An action written to `sync_action` and not yet started.
    pub(crate) requested: Option<SyncAction>,
    pub(crate) running: Option<RunningSync>,
    /// A `StartSync` queued and not yet answered by `sync_started`.
    pub(crate) announced: Option<SyncAction>,
    /// `mismatch_cnt`.
    pub(crate) mismatch_cnt: u64,
    /// `sync_speed_min` / `sync_speed_max`.
    pub(crate) limits: SpeedLimits,
    /// `dev-NAME/mismatches_located` of the last check or repair: (member
    /// name, sectors) for members the raid6 syndromes named as holding a
    /// wrong block.
    pub(crate) located: Vec<(String, u64)>,
}

impl SyncState {
    /// Forget running and requested syncs (array stopped).
    pub(crate) fn reset(&mut self) {
        self.requested = None;
        self.running = None;
        self.announced = None;
    }
}

impl Array {
    /// What the host should run now, if anything: a requested
    /// check/repair/resync/recover, else a needed resync, else recovery of
    /// slotted members that are not in sync.
    #[must_use]
    pub fn sync_request(&self) -> Option<SyncAction> {
        if self.state.running != Some(Ro::ReadWrite)
            || !self.is_redundant()
            || self.sync.frozen
            || self.state.broken
            || self.sync.running.is_some()
        {
            return None;
        }
        if let Some(action) = self.sync.requested {
            return Some(action);
        }
        if self.recovery_cp != MAX_SECTOR {
            return Some(SyncAction::Resync);
        }
        let recovering = self
            .members
            .iter()
            .any(|m| m.slot.is_some() && matches!(m.health, MemberHealth::OutOfSync { .. }));
        recovering.then_some(SyncAction::Recover)
    }

    /// The host started `action` over `total_sectors`.
    pub fn sync_started(&mut self, action: SyncAction, total_sectors: u64, now: Time) {
        assert!(self.state.running.is_some(), "sync on a stopped array");
        assert!(self.sync.running.is_none(), "two syncs at once");
        self.sync.announced = None;
        self.sync.requested = None;
        let start = if action == SyncAction::Resync && self.recovery_cp != MAX_SECTOR {
            self.recovery_cp.min(total_sectors)
        } else {
            0
        };
        if action != SyncAction::Recover {
            self.sync.mismatch_cnt = 0;
        }
        if matches!(action, SyncAction::Check | SyncAction::Repair) {
            for (name, _) in std::mem::take(&mut self.sync.located) {
                self.notify(&format!("dev-{name}/mismatches_located"));
            }
        }
        self.sync.running = Some(RunningSync {
            action,
            total_sectors,
            done_sectors: start,
            completed_sectors: start,
            refreshed_at: now,
            marks: SyncMarks::new(now),
        });
        self.notify("sync_action");
        self.notify("sync_completed");
        self.md_check_recovery();
    }

    /// Progress of the running sync: `done_sectors` is the absolute position
    /// below which the pass is complete. Refreshes `sync_completed` every
    /// 1/16 of the range or 5 minutes and checkpoints `resync_start`.
    pub fn sync_progress(&mut self, done_sectors: u64, now: Time) {
        let Some(mut run) = self.sync.running else {
            return;
        };
        let done = done_sectors.min(run.total_sectors);
        assert!(done <= run.total_sectors);
        run.done_sectors = run.done_sectors.max(done);
        let step = (run.total_sectors / SYNC_COMPLETED_STEPS).max(1);
        let due = run.done_sectors - run.completed_sectors >= step
            || now - run.refreshed_at >= SYNC_COMPLETED_REFRESH
            || run.done_sectors == run.total_sectors;
        if due && run.done_sectors > run.completed_sectors {
            run.completed_sectors = run.done_sectors;
            run.refreshed_at = now;
            self.notify("sync_completed");
            if run.action == SyncAction::Resync && self.recovery_cp < run.completed_sectors {
                self.recovery_cp = run.completed_sectors;
                self.state.sb_flags.insert(SbFlags::CLEAN);
            }
            if run.action == SyncAction::Recover {
                self.record_recovery_progress(run.completed_sectors);
            }
        }
        self.sync.running = Some(run);
        self.md_check_recovery();
    }

    /// The running sync ended (`completed`) or was aborted. Like md's
    /// `md_do_sync`, the end always raises `CHANGE_DEVS|CHANGE_PENDING`.
    pub fn sync_finished(&mut self, mismatch_sectors: u64, completed: bool, now: Time) {
        let _ = now;
        let Some(run) = self.sync.running.take() else {
            return;
        };
        match run.action {
            SyncAction::Resync if completed => self.recovery_cp = MAX_SECTOR,
            SyncAction::Resync => self.recovery_cp = self.recovery_cp.max(run.done_sectors),
            SyncAction::Recover => self.finish_recovery(run.done_sectors, completed),
            SyncAction::Check | SyncAction::Repair => {}
        }
        if run.action != SyncAction::Recover {
            self.sync.mismatch_cnt = mismatch_sectors;
        }
        if self.state.running == Some(Ro::ReadWrite) {
            self.state
                .sb_flags
                .insert(SbFlags::DEVS.union(SbFlags::PENDING));
            self.notify("array_state");
        }
        self.notify("sync_action");
        self.notify("sync_completed");
        self.md_check_recovery();
        assert!(self.sync.running.is_none());
    }

    fn finish_recovery(&mut self, done_sectors: u64, completed: bool) {
        let mut in_sync = Vec::new();
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            let (
                Some(slot),
                MemberHealth::OutOfSync {
                    recovery_offset_sectors,
                },
            ) = (m.slot, m.health)
            else {
                continue;
            };
            if completed {
                m.health = MemberHealth::InSync;
                m.flags
                    .set(crate::member::MemberFlags::BITMAP_RECOVERY, false);
                let name = m.name.clone();
                let replaced = if m.is_replacement() {
                    self.replacement_done(i)
                } else {
                    None
                };
                in_sync.push(ArrayEvent::MemberInSync {
                    name,
                    slot,
                    replaced,
                });
            } else {
                m.health = MemberHealth::OutOfSync {
                    recovery_offset_sectors: recovery_offset_sectors.max(done_sectors),
                };
            }
        }
        for event in in_sync {
            if let ArrayEvent::MemberInSync { name, .. } = &event {
                let attr = format!("dev-{name}/state");
                self.notify(&attr);
            }
            self.push_event(event);
        }
        self.update_degraded();
    }

    /// The resync checkpoint: writes at or above it must reconstruct
    /// redundancy; [`MAX_SECTOR`] when in sync.
    #[must_use]
    pub fn sync_position(&self) -> u64 {
        self.recovery_cp
    }

    /// `mismatch_cnt`.
    #[must_use]
    pub fn mismatch_cnt(&self) -> u64 {
        self.sync.mismatch_cnt
    }

    /// The running check or repair found `sectors` of the member in `role`
    /// wrong (raid6 syndromes). Returns the member's name, for the log line;
    /// `None` if no member holds the role any more.
    pub fn sync_located(&mut self, role: u32, sectors: u64) -> Option<String> {
        assert!(sectors > 0, "a located block has sectors");
        let name = self.members[self.holder_of(role)?].name.clone();
        match self.sync.located.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += sectors,
            None => self.sync.located.push((name.clone(), sectors)),
        }
        self.notify(&format!("dev-{name}/mismatches_located"));
        Some(name)
    }

    /// `dev-NAME/mismatches_located`.
    pub(crate) fn show_mismatches_located(&self, name: &str) -> String {
        self.sync
            .located
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c)
            .to_string()
    }

    /// `curr_resync`: md's live sync position (what `/proc/mdstat` shows;
    /// `sync_completed` is only the checkpoint), `none` or `done / total`.
    pub(crate) fn show_curr_resync(&self) -> String {
        self.sync.running.map_or_else(
            || "none".to_owned(),
            |r| format!("{} / {}", r.done_sectors, r.total_sectors),
        )
    }

    /// md's `md_unregister_thread` of the sync thread with `RECOVERY_INTR`:
    /// the checkpoint is taken from the last reported position.
    pub(crate) fn stop_sync_thread(&mut self) {
        self.sync.announced = None;
        let Some(run) = self.sync.running.take() else {
            return;
        };
        if run.action == SyncAction::Resync {
            self.recovery_cp = self.recovery_cp.max(run.done_sectors);
        }
        self.push_event(ArrayEvent::StopSync);
        self.notify("sync_action");
        self.notify("sync_completed");
    }

    /// Queue `StartSync` when sync work became possible (md thread with
    /// `MD_RECOVERY_NEEDED`).
    pub(crate) fn kick_sync(&mut self) {
        self.recovery_needed = false;
        let Some(action) = self.sync_request() else {
            return;
        };
        if self.sync.announced != Some(action) {
            self.sync.announced = Some(action);
            self.push_event(ArrayEvent::StartSync(action));
            self.notify("sync_action");
        }
    }

    /// `sync_action` as md shows it.
    #[must_use]
    pub(crate) fn show_sync_action(&self) -> &'static str {
        if self.sync.frozen {
            return "frozen";
        }
        if self.state.running != Some(Ro::ReadWrite) {
            return "idle";
        }
        if let Some(run) = self.sync.running {
            return run.action.name();
        }
        self.sync
            .requested
            .or(self.sync.announced)
            .map_or("idle", SyncAction::name)
    }

    /// `sync_completed`: `none`, or `done / total`.
    #[must_use]
    pub(crate) fn show_sync_completed(&self) -> String {
        self.sync.running.map_or_else(
            || "none".to_owned(),
            |r| format!("{} / {}", r.completed_sectors, r.total_sectors),
        )
    }

    /// A write to `sync_action` (md's `action_store`).
    pub(crate) fn store_sync_action(&mut self, word: &str) -> Result<(), EngineError> {
        if self.state.running.is_none() || !self.is_redundant() {
            return Err(EngineError::new(
                Errno::EINVAL,
                "sync_action: no redundancy",
            ));
        }
        let action = match word {
            "idle" | "frozen" => None,
            "resync" => Some(SyncAction::Resync),
            "recover" => Some(SyncAction::Recover),
            "check" => Some(SyncAction::Check),
            "repair" => Some(SyncAction::Repair),
            _ => {
                return Err(EngineError::new(
                    Errno::EINVAL,
                    format!("sync_action: unknown action {word:?}"),
                ))
            }
        };
        if let Some(action) = action {
            if self.sync.running.is_some() {
                return Err(EngineError::new(
                    Errno::EBUSY,
                    "sync_action: a sync is running",
                ));
            }
            self.sync.frozen = false;
            if matches!(action, SyncAction::Check | SyncAction::Repair) {
                self.sync.requested = Some(action);
            }
        } else {
            self.stop_sync_thread();
            self.sync.frozen = word == "frozen";
        }
        if self.state.running == Some(Ro::AutoRead) {
            self.restart_array();
        }
        self.recovery_needed = true;
        self.notify("sync_action");
        self.md_check_recovery();
        Ok(())
    }
}

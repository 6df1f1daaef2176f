//! The simulated host's background work: the md thread's pass (timers,
//! superblock writes, lazy bitmap clearing) and the sync thread's windows,
//! one step at a time, each making the engine calls the real threads make
//! (`umd-io/src/host/md_thread.rs`, `sync_worker.rs`) in their order.

use crate::host::{SimHost, Stop};
use crate::members::Fault;
use umd_engine::array::{SuperblockState, SyncAction};
use umd_engine::member::MemberHealth;
use umd_engine::native::{roster_of, SuperblockUpdate};
use umd_engine::resync::{SyncMode, SyncPlanner, SyncWindow};
use umd_engine::sync_pass::{plan_pass, SyncPass};
use umd_engine::write::PlannedIo;

/// Sync positions per window (small: more windows, more crash points).
const WINDOW_MAX: u64 = 128;

/// A sync pass in progress.
pub struct SyncRun {
    action: SyncAction,
    /// `None`: recovery.
    mode: Option<SyncMode>,
    planner: SyncPlanner,
    ranges: Vec<(u64, u64)>,
    range: usize,
    pos: u64,
    mismatches: u64,
    lost_windows: u64,
}

impl SimHost {
    /// One pass of the md thread.
    pub fn md_pass(&mut self) -> Result<(), Stop> {
        if let Some(due) = self.array.poll_timeout() {
            if due <= self.now {
                self.array.handle_timeout(self.now);
            }
        }
        self.drain_events();
        if self.superblock_due {
            self.superblock_due = false;
            let written = self.write_superblocks()?;
            self.array.superblock_written(&written, self.now);
            if self.native.is_some() {
                self.recorded_in_sync = written
                    .member_roles
                    .iter()
                    .filter(|(_, slot, health)| slot.is_some() && *health == MemberHealth::InSync)
                    .map(|(name, _, _)| name.clone())
                    .collect();
            }
            self.drain_events();
        }
        let now = self.now;
        let bitmap_due = self
            .bitmap()
            .and_then(umd_engine::bitmap::WriteIntentBitmap::poll_timeout)
            .is_some_and(|t| t <= now);
        if bitmap_due {
            let mut writes = Vec::new();
            if let Some(bitmap) = self.bitmap_mut() {
                bitmap.handle_timeout(now, &mut writes);
            }
            self.write_metadata(&writes)?;
        }
        Ok(())
    }

    /// Superblocks for the engine's state; the bitmap superblock first.
    /// Returns the state written (for `superblock_written`).
    fn write_superblocks(&mut self) -> Result<SuperblockState, Stop> {
        let state = self.array.superblock_state();
        if self.native.is_none() {
            // External metadata: the manager records, the engine never asks.
            return Ok(state);
        }
        let faulty_members = state
            .faulty_members
            .iter()
            .filter_map(|name| self.names.iter().position(|n| n == name))
            .collect();
        let update = SuperblockUpdate {
            clean: state.in_sync,
            resync_offset_sectors: state.resync_offset_sectors,
            faulty_members,
            utime_seconds: self.now.0 / 1_000_000_000,
            raid_disks: Some(self.array.raid_disks()),
        };
        let mut writes = Vec::new();
        let names = &self.names;
        let roster = roster_of(&self.array, |n| names.iter().position(|x| x == n));
        let Some(native) = self.native.as_mut() else {
            return Ok(state);
        };
        // As the real md thread: every member's role and checkpoint first.
        native.record_roster(&roster);
        let mut catch_up = Vec::new();
        native.catch_up(&update, &mut catch_up);
        native.update(&update, &mut writes);
        let bitmap_first = writes
            .iter()
            .take_while(|w| native.bitmap_offset_bytes(w.member) == Some(w.offset_bytes))
            .count();
        // As the real md thread: members behind the array's events first.
        self.write_metadata(&catch_up)?;
        self.write_metadata(&writes[..bitmap_first])?;
        self.write_metadata(&writes[bitmap_first..])?;
        Ok(state)
    }

    /// Whether a sync pass is running.
    #[must_use]
    pub fn syncing(&self) -> bool {
        self.sync.is_some()
    }

    /// One step of the sync thread: start a pass, or run one window of it.
    /// Returns whether there was anything to do.
    pub fn sync_step(&mut self) -> Result<bool, Stop> {
        let Some(mut run) = self.sync.take() else {
            return Ok(self.sync_begin());
        };
        if self.sync_abort {
            self.sync_end(&run, false)?;
            return Ok(true);
        }
        if run.range == run.ranges.len() {
            // Repairs must be durable before the engine records them.
            let synced = self.sync_members();
            if synced == Err(Stop::Crash) {
                return Err(Stop::Crash);
            }
            let completed = synced.is_ok() && run.lost_windows == 0;
            self.sync_end(&run, completed)?;
            return Ok(true);
        }
        match self.sync_window(&mut run) {
            Ok(()) => {
                self.sync = Some(run);
                Ok(true)
            }
            Err(Fault::Crash) => Err(Stop::Crash),
            Err(Fault::Member { member, .. }) => {
                // As the real sync thread: the member is failed (unless it
                // is the last the level needs) and the pass stops.
                if let Some(role) = self.role_holding(member) {
                    let mut replans = 0;
                    match self.member_failed(role, &mut replans) {
                        Ok(()) | Err(Stop::Failed(_)) => {}
                        Err(Stop::Crash) => return Err(Stop::Crash),
                    }
                }
                self.sync_end(&run, false)?;
                Ok(true)
            }
        }
    }

    fn sync_begin(&mut self) -> bool {
        if !self.sync_kick {
            return false;
        }
        self.sync_kick = false;
        let Some(action) = self.array.sync_request() else {
            return false;
        };
        let planner = SyncPlanner::new(self.geometry.clone(), self.member_map.clone());
        let SyncPass {
            mode,
            total,
            start,
            ranges,
        } = plan_pass(&self.array, action, &planner, self.bitmap());
        if std::env::var_os("UMD_SIM_TRACE").is_some() {
            eprintln!("sync {action:?} total {total} ranges {ranges:?}");
        }
        self.array.sync_started(action, total, self.now);
        if start > 0 {
            // As the real sync thread: a resumed pass shows where it resumed.
            self.array.sync_progress(start, self.now);
        }
        self.sync_abort = false;
        self.drain_events();
        let pos = ranges.first().map_or(0, |r| r.0);
        self.sync = Some(SyncRun {
            action,
            mode,
            planner,
            ranges,
            range: 0,
            pos,
            mismatches: 0,
            lost_windows: 0,
        });
        true
    }

    fn sync_window(&mut self, run: &mut SyncRun) -> Result<(), Fault> {
        let (first, len) = run.ranges[run.range];
        let len_max = WINDOW_MAX.min(first + len - run.pos);
        let mut window = SyncWindow::default();
        match run.mode {
            Some(_) => run.planner.plan(run.pos, len_max, &mut window),
            None => run.planner.plan_recover(run.pos, len_max, &mut window),
        }
        assert!(window.len > 0, "a sync window makes progress");
        self.scratch.clear();
        self.scratch.resize(window.scratch_bytes, 0);
        match self.run_reads(&window.reads) {
            Err(Fault::Member { member, error }) => {
                // As the real sync thread: rewrite what the member could
                // not read from the others, then read the window again.
                let fault = Fault::Member { member, error };
                let role = self.role_holding(member).ok_or(fault)?;
                self.rewrite_unreadable(&run.planner, &window, role)?;
                self.scratch.clear();
                self.scratch.resize(window.scratch_bytes, 0);
                self.run_reads(&window.reads)?;
            }
            result => result?,
        }
        let mut writes: Vec<PlannedIo> = Vec::new();
        if let Some(mode) = run.mode {
            let mut located = Vec::new();
            run.mismatches +=
                run.planner
                    .finish(&window, mode, &mut self.scratch, &mut writes, &mut located);
            // As the real sync thread: blocks pinned on one member are counted.
            for l in &located {
                self.array.sync_located(l.role, l.len_sectors);
            }
        } else {
            run.planner
                .finish_recover(&window, &mut self.scratch, &mut writes);
            run.lost_windows += u64::from(window.lost());
        }
        self.run_writes(&writes, &[])?;
        run.pos += window.len;
        if run.pos >= first + len {
            run.range += 1;
            run.pos = run.ranges.get(run.range).map_or(run.pos, |r| r.0);
        }
        self.array.sync_progress(run.pos, self.now);
        self.drain_events();
        Ok(())
    }

    fn sync_end(&mut self, run: &SyncRun, completed: bool) -> Result<(), Stop> {
        if completed && matches!(run.mode, Some(SyncMode::Resync | SyncMode::Repair)) {
            let mut writes = Vec::new();
            if let Some(bitmap) = self.bitmap_mut() {
                for &(a, len) in &run.ranges {
                    bitmap.clear_range(a, len, &mut writes);
                }
            }
            self.write_metadata(&writes)?;
        }
        self.array
            .sync_finished(run.mismatches, completed, self.now);
        self.sync_abort = false;
        self.sync_kick |= self.array.sync_request().is_some() && completed;
        self.drain_events();
        let _ = run.action;
        Ok(())
    }
}

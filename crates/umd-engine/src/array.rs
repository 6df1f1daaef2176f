//! One array (md's `mddev`), sans-I/O: its configuration, the clean/dirty
//! bookkeeping around every write, safe mode, member failure and sync
//! progress, as the surface the I/O host drives.
//!
//! Why one type: md keeps all of this in `mddev` under one lock, and every
//! transition of `array_state` (protocol.md §2) is a function of it. The
//! host owns the `Array` on one thread (style R12) and follows R8: after
//! every call into it, drain [`Array::poll_event`] until `None`, and re-arm
//! its timer from [`Array::poll_timeout`].
//!
//! Invariants owned here (asserted after each call): a stopped array has no
//! writes pending and no superblock changes; `in_sync` never holds while
//! writes are pending; the safemode timer is armed only while running; the
//! queue of events is bounded ([`MAX_QUEUED_EVENTS`]).
//!
//! What md's md thread (`md_check_recovery`, protocol.md §3.5) does in the
//! background happens here at the end of each call
//! ([`Array::md_check_recovery`]), because the engine has no thread.

use std::collections::VecDeque;

use crate::errno::{EngineError, Errno};
use crate::member::{Member, MemberFlags, MemberHealth};
use crate::state::{MdState, SafeMode, SbFlags};
use crate::time::{Duration, Time};

#[cfg(test)]
mod bad_blocks_tests;
mod read_errors;
mod replace;
mod spares;
mod sync;
mod sync_speed;
#[cfg(test)]
mod tests;
mod types;

pub use crate::state::{ArrayStateWord, Ro};
pub use read_errors::{ReadErrorVerdict, MAX_READ_ERRORS_DEFAULT};
pub use spares::MEMBERS_MAX;
pub(crate) use sync::SyncState;
pub use sync::{SyncAction, SYNC_COMPLETED_REFRESH, SYNC_COMPLETED_STEPS};
pub use sync_speed::{
    SPEED_LIMIT_MAX_SYSTEM_KIB, SPEED_LIMIT_MIN_SYSTEM_KIB, SYNC_MARKS, SYNC_MARK_STEP,
    SYNC_THROTTLE_PAUSE,
};
pub use types::{
    ArrayConfig, ArrayEvent, BitmapConfig, MemberConfig, MetadataKind, SuperblockState,
};

/// md's `DEFAULT_SAFEMODE_DELAY`: 200 ms of no writes before an array is
/// idle (md adds one jiffy, which we do not have).
pub const DEFAULT_SAFEMODE_DELAY: Duration = Duration::from_ms(200);

/// md's raid5 `NR_STRIPES`: the default `stripe_cache_size`.
pub const DEFAULT_STRIPE_CACHE_SIZE: u32 = 256;
/// Smallest `stripe_cache_size` md accepts (`raid5_set_cache_size`: `<= 16` is EINVAL).
pub const STRIPE_CACHE_SIZE_MIN: u32 = 17;
/// Largest `stripe_cache_size` md accepts.
pub const STRIPE_CACHE_SIZE_MAX: u32 = 32768;

/// Bound on queued events: the host drains after every call (R8), so more
/// than this means the host stopped draining.
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// md's `MaxSector`: `resync_start` "none", the array is in sync.
pub const MAX_SECTOR: u64 = u64::MAX;

/// md's `LEVEL_NONE`: no level configured.
pub const LEVEL_NONE: i32 = -1_000_000;
/// md's `LEVEL_LINEAR`.
pub const LEVEL_LINEAR: i32 = -1;

const _: () = assert!(STRIPE_CACHE_SIZE_MIN <= DEFAULT_STRIPE_CACHE_SIZE);
const _: () = assert!(DEFAULT_STRIPE_CACHE_SIZE <= STRIPE_CACHE_SIZE_MAX);

/// One array: md's `mddev`.
// md's field names (`array_sectors`) win over clippy's naming taste (R1).
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone)]
pub struct Array {
    pub(crate) level: i32,
    /// `level` text stored while inactive and not a known level name.
    pub(crate) clevel: String,
    pub(crate) raid_disks: u32,
    pub(crate) chunk_sectors: u32,
    pub(crate) layout: u32,
    pub(crate) component_sectors: u64,
    pub(crate) array_sectors: u64,
    /// md's `external_size`: `array_size` was written.
    pub(crate) external_size: bool,
    pub(crate) metadata: MetadataKind,
    pub(crate) members: Vec<Member>,
    /// md's `recovery_cp` (`resync_start`).
    pub(crate) recovery_cp: u64,
    pub(crate) reshape_position: Option<u64>,
    pub(crate) bitmap: Option<BitmapConfig>,
    /// md's `MD_HAS_PPL`: writes are logged in a partial parity log.
    pub(crate) ppl: bool,
    pub(crate) safe_mode_delay: Duration,
    pub(crate) stripe_cache_size: u32,
    /// md's `max_corr_read_errors` (`max_read_errors`): read errors a
    /// member may have (decaying) before it is failed instead of repaired.
    pub(crate) max_read_errors: u32,
    pub(crate) state: MdState,
    /// Open count of the exported device (NBD clients).
    pub(crate) openers: u32,
    pub(crate) safemode_timer: Option<Time>,
    /// md's `MD_RECOVERY_NEEDED`: look for sync work.
    pub(crate) recovery_needed: bool,
    pub(crate) sync: SyncState,
    pub(crate) degraded: u32,
    /// An `UpdateSuperblock` is queued and not yet written.
    pub(crate) sb_write_queued: bool,
    pub(crate) events: VecDeque<ArrayEvent>,
}

impl Array {
    /// A configured, not running array (`inactive`, or `clear` when empty).
    #[must_use]
    pub fn new(config: ArrayConfig) -> Array {
        let members = config.members.into_iter().map(member_from_config).collect();
        let mut array = Array {
            level: config.level,
            clevel: String::new(),
            raid_disks: config.raid_disks,
            chunk_sectors: config.chunk_sectors,
            layout: config.layout,
            component_sectors: config.component_sectors,
            array_sectors: config.array_sectors,
            external_size: false,
            metadata: config.metadata,
            members,
            recovery_cp: config.resync_start.unwrap_or(MAX_SECTOR),
            reshape_position: None,
            bitmap: config.bitmap,
            ppl: false,
            safe_mode_delay: config.safe_mode_delay,
            stripe_cache_size: config.stripe_cache_size,
            max_read_errors: MAX_READ_ERRORS_DEFAULT,
            state: MdState::stopped(),
            openers: 0,
            safemode_timer: None,
            recovery_needed: false,
            sync: SyncState::default(),
            degraded: 0,
            sb_write_queued: false,
            events: VecDeque::new(),
        };
        array.degraded = array.count_degraded();
        array.check_invariants();
        array
    }

    /// md's `md_run`: attach the personality. `in_sync` starts set; a
    /// redundant read-write array with a resync checkpoint asks for a resync.
    pub fn run(&mut self, ro: Ro, now: Time) -> Result<(), EngineError> {
        let _ = now;
        if self.state.running.is_some() {
            return Err(EngineError::new(Errno::EBUSY, "run: already running"));
        }
        if self.members.is_empty() || self.raid_disks == 0 {
            return Err(EngineError::new(Errno::EINVAL, "run: no members"));
        }
        if level_name(self.level).is_none() {
            return Err(EngineError::new(
                Errno::EINVAL,
                "run: no personality for this level",
            ));
        }
        self.state = MdState::stopped();
        self.state.running = Some(ro);
        self.degraded = self.count_degraded();
        self.state.broken = self.degraded > self.max_degraded();
        self.recovery_needed = ro == Ro::ReadWrite;
        self.notify("array_state");
        self.md_check_recovery();
        assert!(self.state.in_sync, "run starts clean");
        Ok(())
    }

    /// md's `md_write_start`. On success the caller holds a `writes_pending`
    /// reference and must call [`Array::write_end`]; while
    /// [`Array::write_blocked`] it must wait (drain events, re-check).
    pub fn write_start(&mut self, now: Time) -> Result<(), EngineError> {
        let _ = now;
        let Some(ro) = self.state.running else {
            return Err(EngineError::new(Errno::EIO, "write: array not running"));
        };
        if self.state.broken {
            return Err(EngineError::new(Errno::EIO, "write: array is broken"));
        }
        let mut changed = false;
        match ro {
            Ro::ReadOnly => {
                return Err(EngineError::new(Errno::EROFS, "write: array is read-only"))
            }
            Ro::AutoRead => {
                self.state.running = Some(Ro::ReadWrite);
                self.recovery_needed = true;
                changed = true;
            }
            Ro::ReadWrite => {}
        }
        assert!(
            self.state.writes_pending < u32::MAX,
            "writes_pending overflow"
        );
        self.state.writes_pending += 1;
        if self.state.safemode == SafeMode::Idle {
            self.state.safemode = SafeMode::Off;
        }
        // raid0 and linear never call md_write_start in md: with no
        // redundancy there is nothing a resync could repair, so they never go
        // dirty (and an external manager never watches them).
        if self.state.in_sync && self.is_redundant() {
            self.state.in_sync = false;
            self.state
                .sb_flags
                .insert(SbFlags::CLEAN.union(SbFlags::PENDING));
            changed = true;
        }
        if changed {
            self.notify("array_state");
        }
        self.md_check_recovery();
        assert!(self.state.writes_pending > 0);
        assert!(!self.state.in_sync || !self.is_redundant());
        Ok(())
    }

    /// Whether writes must wait: md's `CHANGE_PENDING` (protocol.md §3.1
    /// step 6), or a member still `Blocked` after a failure the metadata has
    /// not recorded yet (§5.3, `md_wait_for_blocked_rdev`): a write that went
    /// only to the survivors before the failure is on disk would, after a
    /// crash, leave the failed member looking current.
    #[must_use]
    pub fn write_blocked(&self) -> bool {
        // The injected bug: writes go on before the dirty superblock is durable.
        let pending = self.state.sb_flags.contains(SbFlags::PENDING)
            && !cfg!(feature = "inject-write-before-dirty");
        pending || self.blocked_members().next().is_some()
    }

    /// md's `MD_SB_CHANGE_PENDING`: a metadata update must be recorded (and,
    /// for external metadata, acknowledged with `active`) before writes go on.
    #[must_use]
    pub fn change_pending(&self) -> bool {
        self.state.sb_flags.contains(SbFlags::PENDING)
    }

    /// Names of members writes wait for (md's `rdev_blocked`).
    pub fn blocked_members(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .filter(|m| m.blocks_writes())
            .map(Member::name)
    }

    /// md's `rdev_set_badblocks` after a write error: member `name`'s
    /// sectors `[start, start + len)` (from its data offset) are bad and
    /// unacknowledged. Writes wait until the metadata records them (native:
    /// the superblock's log; external: the manager acknowledges through
    /// `bad_blocks`). Returns `false` when the member cannot record more:
    /// the caller must fail it instead.
    pub fn record_bad_block(&mut self, name: &str, start_sectors: u64, len_sectors: u64) -> bool {
        let Some(i) = self.members.iter().position(|m| m.name == name) else {
            return false;
        };
        if self.members[i].is_faulty() {
            return true;
        }
        if !self.members[i].set_bad_blocks(start_sectors, len_sectors, false) {
            return false;
        }
        if self.state.running == Some(Ro::ReadWrite) {
            self.state
                .sb_flags
                .insert(SbFlags::CLEAN.union(SbFlags::PENDING));
        }
        self.notify(&format!("dev-{name}/state"));
        self.notify(&format!("dev-{name}/unacknowledged_bad_blocks"));
        self.notify("array_state");
        self.md_check_recovery();
        assert!(self.members[i].blocks_writes());
        true
    }

    /// md's `md_write_end`: drop the reference and (re)arm the safemode
    /// timer at `roundup(now, delay) + delay`.
    pub fn write_end(&mut self, now: Time) {
        assert!(
            self.state.writes_pending > 0,
            "write_end without write_start"
        );
        assert!(
            self.state.running.is_some(),
            "writes only on a running array"
        );
        self.state.writes_pending -= 1;
        if self.state.safemode != SafeMode::Immediate && self.safe_mode_delay.0 != 0 {
            self.safemode_timer = Some(safemode_deadline(now, self.safe_mode_delay));
        }
        self.md_check_recovery();
    }

    /// When [`Array::handle_timeout`] must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        self.safemode_timer
    }

    /// The safemode timer (protocol.md §3.3): `safemode = 1`; external
    /// arrays notify (`active-idle`); native arrays go clean by themselves.
    pub fn handle_timeout(&mut self, now: Time) {
        let Some(deadline) = self.safemode_timer else {
            return;
        };
        if now < deadline {
            return;
        }
        self.safemode_timer = None;
        if self.state.running.is_none() {
            return;
        }
        if self.state.safemode != SafeMode::Immediate {
            self.state.safemode = SafeMode::Idle;
        }
        if self.is_external() {
            self.notify("array_state");
        }
        self.md_check_recovery();
    }

    /// The next thing the host must do, or `None`.
    pub fn poll_event(&mut self) -> Option<ArrayEvent> {
        self.events.pop_front()
    }

    /// What a native superblock write must record now.
    #[must_use]
    pub fn superblock_state(&self) -> SuperblockState {
        SuperblockState {
            clean: self.state.in_sync && self.recovery_cp == MAX_SECTOR,
            in_sync: self.state.in_sync,
            resync_offset_sectors: self.recovery_cp,
            faulty_members: self
                .members
                .iter()
                .filter(|m| m.is_faulty())
                .map(|m| m.name.clone())
                .collect(),
            member_roles: self
                .members
                .iter()
                .map(|m| (m.name.clone(), m.slot, m.health))
                .collect(),
            degraded: self.degraded,
        }
    }

    /// Native: the host wrote (durably) the superblocks it built from
    /// `written`, the [`Array::superblock_state`] it read before. Records
    /// the failures `written` carries (`FaultRecorded`, unblocks) and
    /// notifies. Clears `CHANGE_*` only if nothing the superblock records
    /// changed since `written` was read; otherwise asks for another write
    /// and writes keep waiting.
    ///
    /// Why the snapshot: the real host writes without holding the engine,
    /// so a write may take the array dirty, or a member may fail, between
    /// the read of the state and this call. Clearing `CHANGE_PENDING` then
    /// would let that write reach the members while they still say clean
    /// (after a crash, nothing would resync it), and marking that failure
    /// recorded would let a FLUSH be acknowledged while the failed member
    /// still looks current on disk. md does the same check: `md_update_sb`
    /// repeats when `in_sync` or `CHANGE_DEVS` moved while it wrote.
    pub fn superblock_written(&mut self, written: &SuperblockState, now: Time) {
        let _ = now;
        self.sb_write_queued = false;
        if !matches!(self.metadata, MetadataKind::Native { .. }) || self.state.running.is_none() {
            return;
        }
        if self.superblock_state().records_as(written) {
            self.state.sb_flags = SbFlags::default();
        } else {
            self.request_superblock_write();
        }
        for i in 0..self.members.len() {
            let recorded = written.faulty_members.contains(&self.members[i].name);
            if recorded && self.members[i].is_faulty() && self.members[i].is_blocked() {
                let m = &mut self.members[i];
                m.flags.set(MemberFlags::FAULT_RECORDED, true);
                m.flags.set(MemberFlags::BLOCKED, false);
                let name = format!("dev-{}/state", m.name);
                self.notify(&name);
            }
        }
        self.notify("array_state");
        if self.sync.running.is_some() {
            self.notify("sync_completed");
        }
        self.md_check_recovery();
        assert!(!self.write_blocked() || self.sb_write_queued);
    }

    /// Clean stop (SIGTERM): native arrays enter immediate safe mode and go
    /// clean once no writes are pending (an `UpdateSuperblock` follows if
    /// the array was dirty). External arrays are the manager's business.
    pub fn shutdown(&mut self, now: Time) {
        let _ = now;
        if matches!(self.metadata, MetadataKind::Native { .. })
            && self.state.running == Some(Ro::ReadWrite)
        {
            self.state.safemode = SafeMode::Immediate;
            self.safemode_timer = None;
            self.md_check_recovery();
        }
    }

    /// Who owns the metadata.
    #[must_use]
    pub fn metadata(&self) -> &MetadataKind {
        &self.metadata
    }

    /// md's `raid_disks`: the number of slots.
    #[must_use]
    pub fn raid_disks(&self) -> u32 {
        self.raid_disks
    }

    /// Number of openers of the exported device; stops and read-only
    /// switches refuse with EBUSY while it is non-zero (protocol.md §2.2 A).
    pub fn set_openers(&mut self, openers: u32) {
        self.openers = openers;
    }

    /// Current `stripe_cache_size`.
    #[must_use]
    pub fn stripe_cache_size(&self) -> u32 {
        self.stripe_cache_size
    }

    /// Number of slots without a working member.
    #[must_use]
    pub fn degraded(&self) -> u32 {
        self.degraded
    }

    /// The members, in configuration order.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// md's `writes_pending`.
    #[must_use]
    pub fn writes_pending(&self) -> u32 {
        self.state.writes_pending
    }

    /// md's `in_sync`.
    #[must_use]
    pub fn in_sync(&self) -> bool {
        self.state.in_sync
    }

    /// The running mode, `None` when not running.
    #[must_use]
    pub fn ro(&self) -> Option<Ro> {
        self.state.running
    }

    /// md's `MD_BROKEN`.
    #[must_use]
    pub fn is_broken(&self) -> bool {
        self.state.broken
    }

    /// Whether a manager owns the metadata.
    #[must_use]
    pub fn is_external(&self) -> bool {
        matches!(self.metadata, MetadataKind::External { .. })
    }

    /// The level's redundancy: how many slots may be missing.
    #[must_use]
    pub fn max_degraded(&self) -> u32 {
        match self.level {
            1 => self.raid_disks.saturating_sub(1),
            4 | 5 => 1,
            6 => 2,
            10 => {
                let near = self.layout & 0xff;
                let far = (self.layout >> 8) & 0xff;
                (near.max(1) * far.max(1)).saturating_sub(1)
            }
            _ => 0,
        }
    }

    /// Whether the level keeps redundancy (md's `sync_request` exists).
    #[must_use]
    pub fn is_redundant(&self) -> bool {
        matches!(self.level, 1 | 4 | 5 | 6 | 10)
    }

    pub(crate) fn count_degraded(&self) -> u32 {
        let working = (0..self.raid_disks)
            .filter(|s| {
                self.members
                    .iter()
                    .any(|m| m.slot == Some(*s) && m.is_in_sync())
            })
            .count() as u32;
        assert!(working <= self.raid_disks);
        self.raid_disks - working
    }

    /// Recomputes `degraded`, notifying on change.
    pub(crate) fn update_degraded(&mut self) {
        let degraded = self.count_degraded();
        if degraded != self.degraded {
            self.degraded = degraded;
            self.notify("degraded");
        }
    }

    /// Queues a notification unless the same one is already queued
    /// (sysfs notifications coalesce too).
    pub(crate) fn notify(&mut self, attr: &str) {
        let already = self
            .events
            .iter()
            .any(|e| matches!(e, ArrayEvent::Notify(a) if a == attr));
        if !already {
            self.push_event(ArrayEvent::Notify(attr.to_owned()));
        }
    }

    pub(crate) fn push_event(&mut self, event: ArrayEvent) {
        assert!(
            self.events.len() < MAX_QUEUED_EVENTS,
            "host stopped draining poll_event"
        );
        self.events.push_back(event);
    }

    pub(crate) fn request_superblock_write(&mut self) {
        if !self.sb_write_queued {
            self.sb_write_queued = true;
            self.push_event(ArrayEvent::UpdateSuperblock);
        }
    }

    /// md's `md_error` through the personality's error handler (protocol.md
    /// §5.1). Returns whether the array is now broken (the `faulty` store
    /// then fails with EBUSY).
    pub(crate) fn md_error(&mut self, index: usize) -> bool {
        assert!(index < self.members.len());
        assert!(
            self.state.running.is_some(),
            "md_error needs a running array"
        );
        if self.members[index].is_faulty() {
            return self.state.broken;
        }
        let was = self.array_state();
        let working = self.members[index].is_working();
        let would_exceed = working && self.degraded + 1 > self.max_degraded();
        let fails = match self.level {
            // raid0/linear have no error handler beyond marking the array broken.
            0 | LEVEL_LINEAR => false,
            // raid1/raid10 never fail the last copy: they mark the array broken.
            1 | 10 => !would_exceed,
            _ => true,
        };
        if would_exceed || !self.is_redundant() {
            self.state.broken = true;
        }
        let name = self.members[index].name.clone();
        if fails {
            let m = &mut self.members[index];
            m.health = MemberHealth::Faulty;
            m.flags.set(MemberFlags::BLOCKED, true);
            self.update_degraded();
            self.state
                .sb_flags
                .insert(SbFlags::DEVS.union(SbFlags::PENDING));
            self.push_event(ArrayEvent::MemberFailed { name: name.clone() });
            self.promote_replacement(index);
            self.stop_sync_thread();
            self.recovery_needed = true;
        }
        self.notify(&format!("dev-{name}/state"));
        if self.array_state() != was {
            self.notify("array_state");
        }
        self.md_check_recovery();
        self.state.broken
    }

    /// md's `md_check_recovery`, run at the end of every call (protocol.md
    /// §3.5, §3.6): read-only arrays drop PENDING; native arrays go clean
    /// after safe mode; removable members leave their slots; superblock
    /// changes are recorded (native) or dropped (external keeps PENDING).
    pub(crate) fn md_check_recovery(&mut self) {
        let Some(ro) = self.state.running else {
            self.check_invariants();
            return;
        };
        let native = matches!(self.metadata, MetadataKind::Native { .. });
        if ro != Ro::ReadWrite {
            self.state.sb_flags.remove(SbFlags::PENDING);
            if native && self.state.in_sync {
                self.members
                    .iter_mut()
                    .for_each(|m| m.flags.set(MemberFlags::BLOCKED, false));
            }
            self.check_invariants();
            return;
        }
        if native && self.state.safemode != SafeMode::Off && !self.state.in_sync {
            self.set_in_sync();
        }
        self.remove_unblocked_faulty();
        self.activate_spares();
        if self
            .state
            .sb_flags
            .intersects(SbFlags::DEVS.union(SbFlags::CLEAN).union(SbFlags::PENDING))
        {
            match self.metadata {
                MetadataKind::Native { .. } => self.request_superblock_write(),
                MetadataKind::External { .. } => {
                    self.state
                        .sb_flags
                        .remove(SbFlags::DEVS.union(SbFlags::CLEAN));
                }
                MetadataKind::None => {
                    self.state.sb_flags = SbFlags::default();
                    self.members
                        .iter_mut()
                        .for_each(|m| m.flags.set(MemberFlags::BLOCKED, false));
                }
            }
        }
        self.kick_sync();
        self.check_invariants();
    }

    /// md's `remove_and_add_spares`, removal half: a faulty, unblocked
    /// member leaves its slot once no writes are in flight.
    fn remove_unblocked_faulty(&mut self) {
        if self.state.writes_pending > 0 {
            return;
        }
        for m in &mut self.members {
            if m.is_faulty() && !m.is_blocked() && m.slot.is_some() {
                m.slot = None;
            }
        }
    }

    /// md's `md_clean`: forget the whole configuration (`clear`).
    pub(crate) fn wipe_config(&mut self) {
        assert!(self.state.running.is_none(), "wipe only a stopped array");
        self.members.clear();
        self.level = LEVEL_NONE;
        self.clevel.clear();
        self.raid_disks = 0;
        self.chunk_sectors = 0;
        self.layout = 0;
        self.component_sectors = 0;
        self.array_sectors = 0;
        self.external_size = false;
        self.recovery_cp = 0;
        self.reshape_position = None;
        self.bitmap = None;
        if matches!(self.metadata, MetadataKind::Native { .. }) {
            self.metadata = MetadataKind::None;
        }
        self.degraded = 0;
        assert_eq!(self.array_state(), "clear");
    }

    fn check_invariants(&self) {
        self.state.check(self.is_external(), self.is_redundant());
        assert!(
            self.state.running.is_some() || self.safemode_timer.is_none(),
            "safemode timer armed on a stopped array"
        );
        assert!(self.events.len() <= MAX_QUEUED_EVENTS);
    }
}

/// md's level name for a level number (`level` attribute).
#[must_use]
pub fn level_name(level: i32) -> Option<&'static str> {
    Some(match level {
        LEVEL_LINEAR => "linear",
        0 => "raid0",
        1 => "raid1",
        4 => "raid4",
        5 => "raid5",
        6 => "raid6",
        10 => "raid10",
        _ => return None,
    })
}

/// `roundup(now, delay) + delay` (protocol.md §3.2).
fn safemode_deadline(now: Time, delay: Duration) -> Time {
    assert!(delay.0 > 0, "safemode disabled");
    let rounded = now.0.div_ceil(delay.0).saturating_mul(delay.0);
    let deadline = Time(rounded) + delay;
    assert!(deadline > now);
    deadline
}

fn member_from_config(c: MemberConfig) -> Member {
    let health = if c.faulty {
        MemberHealth::Faulty
    } else if c.in_sync {
        MemberHealth::InSync
    } else {
        MemberHealth::OutOfSync {
            recovery_offset_sectors: c.recovery_offset_sectors.unwrap_or(0),
        }
    };
    let mut flags = MemberFlags::default();
    flags.set(MemberFlags::WRITE_MOSTLY, c.write_mostly);
    // A replacement recovers until it holds its slot (md never keeps one
    // in sync beside the member it replaces).
    let replacement = c.replacement && c.slot.is_some() && health != MemberHealth::Faulty;
    assert!(
        !(replacement && health == MemberHealth::InSync),
        "dev-{}: a replacement in sync beside the member it replaces",
        c.name
    );
    flags.set(MemberFlags::REPLACEMENT, replacement);
    Member {
        name: c.name,
        slot: c.slot,
        data_offset_sectors: c.data_offset_sectors,
        size_sectors: c.size_sectors,
        health,
        flags,
        errors: 0,
        read_errors: crate::member::ReadErrors::default(),
        bad_blocks: Vec::new(),
    }
}

//! `ArrayHost`: one running array — the engine core, its member files and
//! the threads that drive them.
//!
//! The engine (`umd_engine`) decides; this module does what it asks. Front
//! ends (the NBD export, the control socket) call [`ArrayHost::read`],
//! [`ArrayHost::write`], [`ArrayHost::flush`], [`ArrayHost::get`] and
//! [`ArrayHost::set`] from their own threads. Two threads of our own run
//! beside them, as md's do:
//!
//! * the **md thread** (`md_thread.rs`): fires the safe-mode timer, writes
//!   superblocks when the core asks (`UpdateSuperblock`), clears bitmap bits
//!   lazily, and wakes writers waiting for the dirty transition;
//! * the **sync thread** (`sync_worker.rs`): resync, check and repair.
//!
//! # Locks, highest first (style R12)
//!
//! 0. `config_lock`: md's `reconfig_mutex`, held across one configuration
//!    store (`config.rs`). Acknowledgements from the metadata manager never
//!    take it; that is the founding rule (protocol.md §4.3).
//! 1. `RangeLock` ranges (stripes or regions): taken first by a request or a
//!    sync window, held across its member I/O. The same mutex protects the
//!    stripe-gathering entries (`gather.rs`), which hold their stripe as a
//!    range from creation until their last participant leaves.
//! 2. `bitmap_io`: serialises bitmap block writes so they reach the disk in
//!    the order their contents were computed; taken before `core`.
//!    A PPL raid5 then takes the parity member's log slot (`ppl_log.rs`),
//!    held across the log write and the piece's member writes.
//! 3. `core`: the engine's `Array`, native metadata and bitmap counters.
//!    Never held across member I/O or a wait on another process: a waiter
//!    on the dirty transition waits on `core_changed`, which releases it.
//! 4. `ctx_pool`: per-request buffers and planners; held only to pop or push.
//!
//! Nothing here waits on the metadata manager while holding `core` (the
//! founding rule, protocol.md §4.3): writers sleep on the condition variable.

mod config;
mod ctx;
mod gather;
mod gather_write;
mod io_path;
mod md_thread;
mod members;
mod ppl_log;
mod range_lock;
mod read_many;
mod read_repair;
mod scratch;
mod sync_pipeline;
mod sync_rewrite;
mod sync_worker;

use crate::member_file::MemberFile;
pub use config::{is_acknowledgement, AllowWrite};
use ctx::IoCtx;
pub use ppl_log::PplArea;
use range_lock::RangeLock;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;
use umd_engine::array::{Array, ArrayEvent, Ro};
use umd_engine::bitmap::WriteIntentBitmap;
use umd_engine::native::NativeMetadata;
use umd_engine::read::MemberMap;
use umd_engine::resync::SyncPlanner;
use umd_engine::time::Time;
use umd_engine::{EngineError, Errno};
use umd_layout::geometry::{Geometry, Level};

/// md's `new_dev`: a store of a device path adds it as a spare (md takes
/// `major:minor`; umd names files and block devices by path).
pub const NEW_DEV: &str = "new_dev";

/// The query name that answers like md's GET_BITMAP_FILE ioctl.
pub const BITMAP_FILE_QUERY: &str = "bitmap_file";

/// umd's stand-in for the `events` field mdadm's `--detail` reads from the
/// superblock: the native metadata's event count (absent with external
/// metadata, where the manager owns it).
pub const EVENTS_QUERY: &str = "events";

/// Everything a host needs, assembled by the caller (`umd run`).
pub struct HostParts {
    /// Member files by member index; `None` for a member that is not present.
    pub files: Vec<Option<MemberFile>>,
    /// Member names as the attributes show them (`dev-NAME/...`), by member index.
    pub member_names: Vec<String>,
    /// `role_members[role]` = member index holding that role; then, at
    /// `MemberMap::replacement_of(role)`, its replacement's (may be left
    /// out when there is none).
    pub role_members: Vec<Option<usize>>,
    /// The array's shape.
    pub geometry: Geometry,
    /// Per role: data offset and recovery offset, as the planners need them.
    pub member_map: MemberMap,
    /// Usable array length in sectors.
    pub array_sectors: u64,
    /// The engine core, configured but not yet running.
    pub array: Array,
    /// Native superblocks to keep up to date, with the internal bitmap
    /// attached if the array has one (`None` for external metadata).
    pub native: Option<NativeMetadata>,
    /// How the array starts: read-write for native metadata; external
    /// redundant arrays start `readonly` and the manager moves them on
    /// (protocol.md §7.1).
    pub start: Ro,
    /// What a configuration change does while an external manager has not
    /// acknowledged the dirty transition.
    pub allow_write: AllowWrite,
}

/// A failed front-end operation: md's code and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    /// The code md would return.
    pub errno: Errno,
    /// What failed, naming the member or range.
    pub message: String,
}

impl HostError {
    pub(crate) fn new(errno: Errno, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.errno, self.message)
    }
}

impl std::error::Error for HostError {}

impl From<EngineError> for HostError {
    fn from(e: EngineError) -> Self {
        Self::new(e.errno, e.message)
    }
}

/// Counters for `umd status` and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Stripe writes by mode: direct, full stripe, reconstruct, read-modify-write, degraded.
    pub stripe_modes: [AtomicU64; 5],
    /// Superblock updates written.
    pub superblock_writes: AtomicU64,
    /// Bitmap block flushes written.
    pub bitmap_flushes: AtomicU64,
    /// Stripe-gathering entries flushed, by why: complete (full stripe, no
    /// reads), no neighbour left, deadline, forced (FUA, FLUSH, a stripe lock);
    /// last, pieces written again the ordinary way after an abort or failure.
    pub gather_flushes: [AtomicU64; 5],
    /// Array requests (reads, writes, zeroes) received: the sync thread
    /// throttles to `sync_speed_min` while this moves (md's `is_mddev_idle`).
    pub foreground_requests: AtomicU64,
}

/// The engine state shared by every thread (behind `Shared::core`).
pub(crate) struct Core {
    pub(crate) array: Array,
    pub(crate) native: Option<NativeMetadata>,
    /// An `UpdateSuperblock` event is waiting for the md thread.
    pub(crate) superblock_due: bool,
    /// The sync thread should (re)consider what to run.
    pub(crate) sync_kick: bool,
    /// The running sync must stop at its next window.
    pub(crate) sync_abort: bool,
    /// The host is stopping: threads finish their work and exit.
    pub(crate) stopping: bool,
    /// The md thread exited (after the final clean superblock).
    pub(crate) md_thread_done: bool,
    /// The sync thread is inside a sync pass.
    pub(crate) sync_running: bool,
    /// The md thread asked the engine for the final clean state.
    pub(crate) shutdown_started: bool,
    /// Superblocks were written after `shutdown_started`.
    pub(crate) final_superblock_written: bool,
    /// Attributes to notify once `core` is released.
    pub(crate) notify_queue: Vec<String>,
    /// Bumped whenever the set of usable members changes; request contexts
    /// rebuild their planners when theirs is older.
    pub(crate) members_generation: u64,
    /// Member map as it is now (members that failed are `None`).
    pub(crate) member_map: MemberMap,
    /// (member name, role) of every member that holds a role, to apply the
    /// engine's `MemberFailed` events to the planners' map.
    pub(crate) roles_by_name: Vec<(String, u32)>,
    /// Membership events drained but not yet applied (they need `Shared`;
    /// `settle` applies them before releasing `core`).
    pub(crate) membership: Vec<ArrayEvent>,
}

impl Core {
    /// The internal write-intent bitmap, if the array has one.
    pub(crate) fn bitmap(&mut self) -> Option<&mut WriteIntentBitmap> {
        self.native.as_mut().and_then(NativeMetadata::bitmap_mut)
    }

    /// When the bitmap's next clearing pass is due.
    pub(crate) fn bitmap_timeout(&self) -> Option<Time> {
        self.native
            .as_ref()
            .and_then(NativeMetadata::bitmap)
            .and_then(WriteIntentBitmap::poll_timeout)
    }
}

/// Where attribute change notifications go (the control server's notifier).
pub type Notify = Box<dyn Fn(&str) + Send + Sync>;

/// Everything the host's threads share.
pub(crate) struct Shared {
    /// Member files by member index; a slot is filled once (at start, or
    /// when a member is added) and never emptied, so readers need no lock.
    pub(crate) files: Vec<OnceLock<MemberFile>>,
    /// Member names by member index, filled with `files`.
    pub(crate) member_names: Vec<OnceLock<String>>,
    /// `role_members[role]`: the member index holding that role, or
    /// [`members::NO_MEMBER`]. Written under `core` before the member
    /// generation moves on, so a context built for the new generation sees it.
    pub(crate) role_members: Vec<AtomicUsize>,
    pub(crate) geometry: Geometry,
    pub(crate) array_sectors: u64,
    /// Maps sync positions to stripes for the write path's checkpoint rule
    /// (its member map is not consulted for that).
    pub(crate) sync_units: SyncPlanner,
    pub(crate) origin: Instant,
    /// Lock order 0: md's `reconfig_mutex` (see `config.rs`).
    pub(crate) config_lock: Mutex<()>,
    pub(crate) allow_write: AllowWrite,
    /// Lock order 1 (see the module doc).
    pub(crate) ranges: RangeLock,
    /// Lock order 2: bitmap block writes, in order. Holds the count of
    /// bitmap flushes completed, for writers waiting on theirs.
    pub(crate) bitmap_io: Mutex<u64>,
    /// Lock order 3: the engine core.
    pub(crate) core: Mutex<Core>,
    /// Signalled whenever `core` changed in a way a waiter may care about
    /// (dirty transition acknowledged, superblock written, stop requested).
    pub(crate) core_changed: Condvar,
    /// Lock order 4: request contexts (buffers, planners, io_uring) for reuse.
    pub(crate) ctx_pool: Mutex<Vec<IoCtx>>,
    pub(crate) notifier: OnceLock<Notify>,
    pub(crate) openers: AtomicU64,
    pub(crate) stats: Stats,
    pub(crate) stopped: AtomicBool,
    /// Members failed and bad ranges recorded by I/O errors so far: a
    /// request that saw it move holds its completion until the metadata
    /// records the change (`io_path::hold_until_recorded`).
    pub(crate) failures_seen: AtomicU64,
    /// The partial parity log, once enabled (raid5 with PPL).
    pub(crate) ppl: OnceLock<ppl_log::PplLog>,
}

impl Shared {
    pub(crate) fn now(&self) -> Time {
        Time(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait on `core_changed`, releasing `core` meanwhile.
    pub(crate) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Core>,
        timeout: Option<std::time::Duration>,
    ) -> MutexGuard<'a, Core> {
        match timeout {
            Some(t) => {
                self.core_changed
                    .wait_timeout(guard, t)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .core_changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Finish a call into the engine: drain its events, release `core`, wake
    /// the md and sync threads and waiting writers when the events ask for
    /// it (or always, with `force_wake`: the caller changed what a waiter
    /// waits on), then deliver notifications outside the lock.
    pub(crate) fn settle(&self, mut core: MutexGuard<'_, Core>, force_wake: bool) {
        let wake = drain_events(&mut core) || force_wake;
        self.apply_membership(&mut core);
        let notes = std::mem::take(&mut core.notify_queue);
        drop(core);
        if wake {
            self.core_changed.notify_all();
        }
        self.deliver_notifications(&notes);
    }

    /// Send queued notifications (after `core` was released).
    pub(crate) fn deliver_notifications(&self, names: &[String]) {
        if let Some(notify) = self.notifier.get() {
            for name in names {
                notify(name);
            }
        }
    }

    /// Whether writes and resync must keep parity or copies in step.
    pub(crate) fn is_parity_level(&self) -> bool {
        matches!(
            self.geometry.level(),
            Level::Raid4 | Level::Raid5 | Level::Raid6
        )
    }
}

/// Drain every engine event into `core`'s flags (style R8: after any call
/// into the engine, drain `poll_event` until `None`). Returns whether the md
/// or sync thread must be woken.
pub(crate) fn drain_events(core: &mut Core) -> bool {
    let mut wake = false;
    while let Some(event) = core.array.poll_event() {
        match event {
            ArrayEvent::Notify(name) => core.notify_queue.push(name),
            ArrayEvent::UpdateSuperblock => {
                core.superblock_due = true;
                wake = true;
            }
            ArrayEvent::StartSync(_) | ArrayEvent::Run => {
                core.sync_kick = true;
                wake = true;
            }
            ArrayEvent::StopSync => {
                core.sync_abort = true;
                wake = true;
            }
            ArrayEvent::Stop { .. } => {
                // md writes the superblocks when it stops an array.
                core.sync_abort = true;
                core.superblock_due |= core.native.is_some();
                wake = true;
            }
            ArrayEvent::MemberFailed { name } => {
                tracing::warn!(member = %name, "member marked faulty");
                // md stops using a faulty member at once: later plans avoid it.
                let role = core
                    .roles_by_name
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|r| r.1);
                if let Some(role) = role {
                    if core.member_map.is_present(role) {
                        core.member_map.mark_missing(role);
                        core.members_generation += 1;
                    }
                }
                if let Some(bitmap) = core.bitmap() {
                    bitmap.set_degraded(true);
                }
                wake = true;
            }
            ArrayEvent::MemberRemoved { name } => {
                tracing::info!(member = %name, "member removed from the array");
                wake = true;
            }
            ArrayEvent::MemberActivated { .. } | ArrayEvent::MemberInSync { .. } => {
                core.membership.push(event);
                wake = true;
            }
            ArrayEvent::StripeCacheResize(_) => wake = true,
        }
    }
    wake
}

/// Gathering entries for an array: raid4/5 only (raid6 parity cannot be
/// folded one contribution at a time with a plain XOR), as many as the
/// accumulator memory bound allows.
fn gather_slots(geometry: &Geometry) -> usize {
    if !matches!(geometry.level(), Level::Raid4 | Level::Raid5) {
        return 0;
    }
    let chunk_bytes = (geometry.chunk_sectors() as usize * 512).max(512);
    (gather::GATHER_ACC_BYTES_MAX / chunk_bytes).clamp(1, gather::GATHER_SLOTS_MAX)
}

/// A running array.
pub struct ArrayHost {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl ArrayHost {
    /// Start the array read-write and its md and sync threads.
    pub fn start(parts: HostParts) -> Result<Arc<ArrayHost>, HostError> {
        let HostParts {
            files,
            member_names,
            role_members,
            geometry,
            member_map,
            array_sectors,
            mut array,
            native,
            start,
            allow_write,
        } = parts;
        assert_eq!(files.len(), member_names.len(), "one name per member");
        // Roles, then replacements (`MemberMap::replacement_of`); a caller
        // with no replacements may leave the second half out.
        let mut role_members = role_members;
        assert!(role_members.len() <= 2 * member_map.role_count());
        role_members.resize(2 * member_map.role_count(), None);
        let origin = Instant::now();
        array.run(start, Time(0))?;
        let stripes_max = u64::from(array.stripe_cache_size());
        let gather_slots = gather_slots(&geometry);
        let roles_by_name = role_members
            .iter()
            .enumerate()
            .filter_map(|(role, m)| m.map(|m| (member_names[m].clone(), role as u32)))
            .collect();
        let mut core = Core {
            array,
            native,
            superblock_due: false,
            sync_kick: true,
            sync_abort: false,
            stopping: false,
            md_thread_done: false,
            sync_running: false,
            shutdown_started: false,
            final_superblock_written: false,
            notify_queue: Vec::new(),
            members_generation: 0,
            member_map,
            roles_by_name,
            membership: Vec::new(),
        };
        drain_events(&mut core);
        let sync_units = SyncPlanner::new(geometry.clone(), core.member_map.clone());
        let (files, member_names, role_members) =
            members::tables(files, member_names, &role_members);
        let shared = Arc::new(Shared {
            files,
            member_names,
            role_members,
            sync_units,
            geometry,
            array_sectors,
            origin,
            config_lock: Mutex::new(()),
            allow_write,
            ranges: RangeLock::new(stripes_max.max(1), gather_slots),
            bitmap_io: Mutex::new(0),
            core: Mutex::new(core),
            core_changed: Condvar::new(),
            ctx_pool: Mutex::new(Vec::new()),
            notifier: OnceLock::new(),
            openers: AtomicU64::new(0),
            stats: Stats::default(),
            stopped: AtomicBool::new(false),
            failures_seen: AtomicU64::new(0),
            ppl: OnceLock::new(),
        });
        {
            let mut core = shared.core();
            // A spare the start activated (`run` does md's first
            // md_check_recovery) holds its role before any thread plans.
            shared.apply_membership(&mut core);
            let degraded = core.array.degraded() > 0;
            if let Some(bitmap) = core.bitmap() {
                // md keeps bits set while a member is missing.
                bitmap.set_degraded(degraded);
            }
        }
        // A stale bitmap was fully set when loaded: write it before any data.
        io_path::flush_bitmap(&shared)?;
        let md = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("umd-md".into())
                .spawn(move || md_thread::run(&shared))
                .map_err(|e| HostError::new(Errno::ENOMEM, format!("md thread: {e}")))?
        };
        let sync = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("umd-sync".into())
                .spawn(move || sync_worker::run(&shared))
                .map_err(|e| HostError::new(Errno::ENOMEM, format!("sync thread: {e}")))?
        };
        Ok(Arc::new(ArrayHost {
            shared,
            threads: Mutex::new(vec![md, sync]),
        }))
    }

    /// Log partial parity before every raid5 stripe write (md's PPL), in
    /// the areas given by member index, with the array's `signature`. Call
    /// before the front ends start. Also shows `consistency_policy` `ppl`.
    pub fn enable_ppl(&self, signature: u32, areas: &[Option<PplArea>]) {
        if self.shared.geometry.level() != Level::Raid5 {
            return;
        }
        let capacity = self.shared.files.len();
        let _ = self
            .shared
            .ppl
            .set(ppl_log::PplLog::new(signature, areas, capacity));
        self.shared.core().array.set_ppl(true);
    }

    /// Route attribute change notifications to `notify` (the control server's).
    pub fn set_notifier(&self, notify: Notify) {
        // A second notifier is ignored: the first control server owns them.
        let _ = self.shared.notifier.set(notify);
    }

    /// Array length in bytes.
    #[must_use]
    pub fn size_bytes(&self) -> u64 {
        self.shared.array_sectors * 512
    }

    /// Preferred I/O size: one full stripe for parity levels, else a chunk.
    #[must_use]
    pub fn preferred_io_bytes(&self) -> u32 {
        let g = &self.shared.geometry;
        let chunk = g.chunk_sectors().max(8) * 512;
        let data = g
            .raid_disks()
            .saturating_sub(g.level().parity_members())
            .max(1);
        if self.shared.is_parity_level() {
            chunk.saturating_mul(data)
        } else {
            chunk
        }
    }

    /// Read an attribute (md's sysfs name). `bitmap_file` is umd's stand-in
    /// for md's GET_BITMAP_FILE ioctl (see `config.rs`).
    pub fn get(&self, attr: &str) -> Result<String, EngineError> {
        if attr == BITMAP_FILE_QUERY {
            return Ok(self.shared.bitmap_file());
        }
        if attr == EVENTS_QUERY {
            let core = self.shared.core();
            return core.native.as_ref().map_or_else(
                || {
                    Err(EngineError::new(
                        Errno::ENOENT,
                        "events: no native metadata",
                    ))
                },
                |n| Ok(n.events().to_string()),
            );
        }
        let now = self.shared.now();
        self.shared.core().array.show_at(attr, now)
    }

    /// Store an attribute with md's locking: acknowledgements take only the
    /// engine lock; everything else also takes the configuration lock and
    /// follows the array's [`AllowWrite`] policy.
    pub fn set(&self, attr: &str, value: &str) -> Result<(), EngineError> {
        if attr == NEW_DEV {
            let path = value.strip_suffix('\n').unwrap_or(value);
            return self.shared.add_member(std::path::Path::new(path)).map(drop);
        }
        self.shared.store(attr, value)
    }

    /// md's hot add: open `path` and add it to the array as a spare.
    /// Returns the member's name.
    pub fn add_member(&self, path: &std::path::Path) -> Result<String, EngineError> {
        self.shared.add_member(path)
    }

    /// Every attribute name.
    #[must_use]
    pub fn attr_names(&self) -> Vec<String> {
        self.shared.core().array.attr_names()
    }

    /// A client opened the array (md's openers count).
    pub fn opened(&self) {
        let n = self.shared.openers.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.core().array.set_openers(n as u32);
    }

    /// A client closed the array.
    pub fn closed(&self) {
        let n = self
            .shared
            .openers
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        self.shared.core().array.set_openers(n as u32);
    }

    /// Counters for status and benchmarks.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Clean stop: stop the sync (its checkpoint is kept), let the md thread
    /// write clean superblocks, flush members, join the threads. Front ends
    /// must have stopped issuing I/O first.
    pub fn shutdown(&self) -> Result<(), HostError> {
        if self.shared.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        {
            let mut core = self.shared.core();
            core.sync_abort = true;
            core.stopping = true;
        }
        self.shared.core_changed.notify_all();
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for t in threads {
            if t.join().is_err() {
                return Err(HostError::new(Errno::EIO, "a host thread panicked"));
            }
        }
        let load = |counters: &[AtomicU64]| -> Vec<u64> {
            counters.iter().map(|c| c.load(Ordering::Relaxed)).collect()
        };
        let stats = &self.shared.stats;
        tracing::info!(
            stripe_modes = ?load(&stats.stripe_modes),
            gather_flushes = ?load(&stats.gather_flushes),
            "array host stopping (direct, full, rcw, rmw, degraded; gathered: full, no neighbour, deadline, forced, rewritten)"
        );
        io_path::flush_all(&self.shared)
    }

    /// Read `buf.len()` bytes at byte `offset` (both multiples of 512).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.shared
            .stats
            .foreground_requests
            .fetch_add(1, Ordering::Relaxed);
        io_path::read(&self.shared, offset, buf)
    }

    /// Several reads at once, each `(offset, buf)` as for [`ArrayHost::read`]:
    /// their member reads go out together. `failed(i, error)` reports each
    /// request that could not be read; the others are filled.
    pub fn read_many(
        &self,
        reads: &mut [(u64, &mut [u8])],
        mut failed: impl FnMut(usize, HostError),
    ) {
        self.shared
            .stats
            .foreground_requests
            .fetch_add(1, Ordering::Relaxed);
        read_many::read_many(&self.shared, reads, &mut failed);
    }

    /// Write `data` at byte `offset` (both multiples of 512); with `fua`
    /// the data is on the members' stable storage before this returns.
    pub fn write(&self, offset: u64, data: &[u8], fua: bool) -> Result<(), HostError> {
        self.shared
            .stats
            .foreground_requests
            .fetch_add(1, Ordering::Relaxed);
        io_path::write(&self.shared, offset, data, fua)
    }

    /// A write of `len` bytes at `offset` is on its way (a front end parsed
    /// its header and is receiving its payload): partial-stripe writes it
    /// would complete wait for it. Every announcement must be followed by
    /// [`ArrayHost::write`] with the same range, or withdrawn.
    pub fn announce_write(&self, offset: u64, len: u64) {
        let (lo, hi) = sector_range(offset, len);
        self.shared.ranges.announce_write(lo, hi);
    }

    /// An announced write will not be issued after all.
    pub fn withdraw_write(&self, offset: u64, len: u64) {
        let (lo, hi) = sector_range(offset, len);
        self.shared.ranges.withdraw_write(lo, hi);
    }

    /// Write zeroes over `len` bytes at `offset`.
    pub fn write_zeroes(&self, offset: u64, len: u64, fua: bool) -> Result<(), HostError> {
        self.shared
            .stats
            .foreground_requests
            .fetch_add(1, Ordering::Relaxed);
        io_path::write_zeroes(&self.shared, offset, len, fua)
    }

    /// Make every completed write durable on every member.
    pub fn flush(&self) -> Result<(), HostError> {
        io_path::flush_all(&self.shared)
    }
}

/// Logical sectors touched by a byte range (empty when it is empty).
pub(crate) fn sector_range(offset: u64, len: u64) -> (u64, u64) {
    let end = offset.saturating_add(len);
    (offset / 512, end.div_ceil(512))
}

impl Drop for ArrayHost {
    fn drop(&mut self) {
        if !self.shared.stopped.load(Ordering::SeqCst) {
            if let Err(e) = self.shutdown() {
                tracing::error!(error = %e, "array host stopped uncleanly");
            }
        }
    }
}

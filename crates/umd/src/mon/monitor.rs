//! The monitor loop (mdmon's `wait_and_act`, protocol.md §6.2): wait for a
//! change in any watched attribute, read every subarray, record what must be
//! recorded, write the metadata, and only then acknowledge.
//!
//! Threads: the loop runs on the caller's thread; one watcher thread holds a
//! `watch` on the container's control socket and only wakes the loop (values
//! are re-read at each pass, as mdmon re-reads its sysfs files). Pings from
//! the manager socket wait on [`MonShared::wait_pass`].
//!
//! The loop never waits on the engine while holding anything the engine
//! needs: each control request is one short call, and acknowledgements never
//! take the engine's configuration lock (protocol.md §4.4), so a pass always
//! finishes.

use super::decide::{decide, Acts, Observed, Tracked};
use super::disks::{Disk, Disks};
use super::handler::MetadataHandler;
use super::spare_plan::{missing_slots, placement_writes};
use crate::control::client::{self, ClientError, Session};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use umd_engine::array::ArrayStateWord;
use umd_engine::Errno;
use umd_io::MemberFile;

/// Longest time between passes with no notification: a safety net only,
/// since every state the manager acts on is notified.
const PASS_INTERVAL_MAX: Duration = Duration::from_secs(5);
/// Pause before retrying after a pass failed (metadata write error, control
/// connection hiccup).
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// mdmon's shutdown `safe_mode_delay` (1 ms): arrays go clean at once.
const SHUTDOWN_SAFE_MODE_DELAY: &str = "0.001";

/// A seed for a new disk's identifiers: from the system's random source,
/// else the clock (identifiers need only be unlikely to collide).
fn random_seed() -> u64 {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    let drawn = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    match drawn {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// Why the loop should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep going.
    No,
    /// SIGTERM: make every array clean, then exit.
    WhenClean,
    /// Another manager took over: exit after the current pass.
    Now,
}

/// What the loop shares with the watcher thread and ping handlers.
#[derive(Debug)]
pub struct MonShared {
    state: Mutex<MonState>,
    changed: Condvar,
}

#[derive(Debug)]
struct MonState {
    /// Notifications seen (bumped by the watcher, and by pings to force a pass).
    events: u64,
    /// Passes completed.
    passes: u64,
    stop: Stop,
}

impl Default for MonShared {
    fn default() -> Self {
        Self {
            state: Mutex::new(MonState {
                events: 0,
                passes: 0,
                stop: Stop::No,
            }),
            changed: Condvar::new(),
        }
    }
}

impl MonShared {
    fn lock(&self) -> MutexGuard<'_, MonState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Something changed: run a pass.
    pub fn kick(&self) {
        self.lock().events += 1;
        self.changed.notify_all();
    }

    /// Ask the loop to stop.
    pub fn request_stop(&self, how: Stop) {
        let mut s = self.lock();
        if how == Stop::Now || s.stop == Stop::No {
            s.stop = how;
        }
        s.events += 1;
        drop(s);
        self.changed.notify_all();
    }

    /// mdmon's ping: return once a full pass that started after this call
    /// has completed (so everything observable before the ping has been
    /// acted upon), or `false` after `timeout`.
    pub fn wait_pass(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        // A pass running now started before the ping: wait for the one after.
        let target = s.passes + 2;
        s.events += 1;
        self.changed.notify_all();
        while s.passes < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Passes completed so far.
    #[must_use]
    pub fn passes(&self) -> u64 {
        self.lock().passes
    }
}

/// One monitored subarray.
struct Sub {
    tracked: Tracked,
    /// `"<index>/"`.
    prefix: String,
    /// Member names (`dev-NAME`).
    members: Vec<String>,
}

/// The monitor of one container.
pub struct Monitor {
    control: PathBuf,
    session: Session,
    handler: Box<dyn MetadataHandler>,
    disks: Disks,
    subs: Vec<Sub>,
    shared: Arc<MonShared>,
    /// Disks given to the container that the handler refused (logged once).
    refused: Vec<String>,
}

impl Monitor {
    /// A monitor for the container served at `control`, with the metadata
    /// already loaded into `handler` from `disks`.
    pub fn new(
        control: &Path,
        handler: Box<dyn MetadataHandler>,
        disks: Disks,
        shared: Arc<MonShared>,
    ) -> Result<Self, String> {
        let mut session = Session::open(control).map_err(|e| e.to_string())?;
        let names = session.list().map_err(|e| e.to_string())?;
        let indices = session.get("subarrays").map_err(|e| e.to_string())?;
        let mut subs = Vec::new();
        for index in indices.split_whitespace() {
            let Ok(n) = index.parse::<u32>() else {
                return Err(format!("subarrays: {index:?} is not an index"));
            };
            let prefix = format!("{n}/");
            // mdmon manages only arrays with redundancy: raid0 and linear
            // never go dirty and have nothing to record.
            let level = session
                .get(&format!("{prefix}level"))
                .map_err(|e| e.to_string())?;
            if matches!(level.as_str(), "raid0" | "linear") {
                continue;
            }
            let members = names
                .iter()
                .filter_map(|a| a.strip_prefix(&prefix))
                .filter_map(|a| a.strip_prefix("dev-"))
                .filter_map(|a| a.strip_suffix("/state"))
                .map(str::to_owned)
                .collect();
            subs.push(Sub {
                tracked: Tracked::new(n),
                prefix,
                members,
            });
        }
        Ok(Self {
            control: control.to_owned(),
            session,
            handler,
            disks,
            subs,
            shared,
            refused: Vec::new(),
        })
    }

    /// The attributes whose changes wake the loop.
    fn watched(&self) -> Vec<String> {
        let mut attrs = vec!["disks".to_owned()];
        for s in &self.subs {
            for a in ["array_state", "sync_action", "sync_completed", "degraded"] {
                attrs.push(format!("{}{a}", s.prefix));
            }
            attrs.extend(
                s.members
                    .iter()
                    .map(|m| format!("{}dev-{m}/state", s.prefix)),
            );
        }
        attrs
    }

    /// Start the watcher thread. It ends when the control socket closes
    /// (the engine stopped or died), after waking the loop one last time.
    fn spawn_watcher(&self) -> Result<(), String> {
        let attrs = self.watched();
        let path = self.control.clone();
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name("umd-mon-watch".into())
            .spawn(move || {
                let result = client::watch(&path, &attrs, |_, _| {
                    shared.kick();
                    true
                });
                if let Err(e) = result {
                    tracing::info!(error = %e, "watch ended");
                }
                shared.kick();
            })
            .map(|_| ())
            .map_err(|e| format!("watch thread: {e}"))
    }

    /// Run until every subarray stopped, the engine went away, or a stop
    /// request is satisfied. Returns how it ended.
    pub fn run(mut self) -> Result<(), String> {
        self.spawn_watcher()?;
        let mut seen_events = u64::MAX;
        let mut shutdown_prepared = false;
        loop {
            let stop = self.wait_for_work(&mut seen_events);
            if stop == Stop::WhenClean && !shutdown_prepared {
                self.prepare_shutdown();
                shutdown_prepared = true;
            }
            let outcome = self.pass();
            self.finish_pass();
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, "monitor pass failed; retrying");
                std::thread::sleep(RETRY_PAUSE);
            }
            if !self.subs.iter().any(|s| s.tracked.monitored) {
                return Ok(());
            }
            match stop {
                Stop::Now => return Ok(()),
                Stop::WhenClean if outcome.is_ok() && self.all_clean() => return Ok(()),
                _ => {}
            }
        }
    }

    fn wait_for_work(&self, seen_events: &mut u64) -> Stop {
        let mut s = self.shared.lock();
        let deadline = Instant::now() + PASS_INTERVAL_MAX;
        while s.events == *seen_events && s.stop == Stop::No {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .shared
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *seen_events = s.events;
        s.stop
    }

    fn finish_pass(&self) {
        self.shared.lock().passes += 1;
        self.shared.changed.notify_all();
    }

    /// mdmon on SIGTERM: make every array go clean at once.
    fn prepare_shutdown(&mut self) {
        for i in 0..self.subs.len() {
            if self.subs[i].tracked.monitored {
                let attr = format!("{}safe_mode_delay", self.subs[i].prefix);
                if let Err(e) = self.session.set(&attr, SHUTDOWN_SAFE_MODE_DELAY) {
                    tracing::warn!(attr, error = %e, "could not shorten safe mode");
                }
            }
        }
    }

    /// Whether no monitored subarray has writes outstanding.
    fn all_clean(&self) -> bool {
        self.subs.iter().filter(|s| s.tracked.monitored).all(|s| {
            s.tracked.prev_state.is_none_or(|w| {
                matches!(
                    w,
                    ArrayStateWord::Clean
                        | ArrayStateWord::Readonly
                        | ArrayStateWord::ReadAuto
                        | ArrayStateWord::Broken
                )
            })
        })
    }

    /// One pass over every subarray (module doc).
    fn pass(&mut self) -> Result<(), String> {
        self.take_new_disks();
        let mut planned: Vec<(usize, Acts)> = Vec::new();
        for i in 0..self.subs.len() {
            if !self.subs[i].tracked.monitored {
                continue;
            }
            let seen = self.observe(i);
            let sub = &mut self.subs[i];
            let acts = decide(&mut sub.tracked, &seen, self.handler.as_mut());
            planned.push((i, acts));
        }
        let mut writes = Vec::new();
        self.handler.sync_metadata(&mut writes);
        if !writes.is_empty() {
            // Nothing is acknowledged unless the metadata is on disk.
            self.disks.write(&writes)?;
        }
        for (i, acts) in &planned {
            self.act(*i, acts);
        }
        self.propagate_failures(&planned);
        for i in 0..self.subs.len() {
            if self.subs[i].tracked.monitored {
                self.activate_spares(i)?;
            }
        }
        Ok(())
    }

    /// Disks given to the container since the last pass (`new_dev`, as
    /// `umd manage --add` stores it; mdmon's `manage_container`): each is
    /// opened and offered to the handler, which records a blank one as a
    /// global spare, written with this pass's metadata to it and every other
    /// disk. One the handler refuses (it holds metadata, or is too small) is
    /// logged once and left alone.
    fn take_new_disks(&mut self) {
        let Ok(list) = self.session.get("disks") else {
            return;
        };
        for name in list.split_whitespace() {
            let known = self.disks.list().iter().any(|d| d.name == name);
            if known || self.refused.iter().any(|r| r == name) {
                continue;
            }
            match self.take_disk(name) {
                Ok(()) => {
                    tracing::info!(disk = name, "disk added to the container as a global spare");
                }
                Err(e) => {
                    tracing::warn!(disk = name, error = %e, "disk given to the container not taken");
                    self.refused.push(name.to_owned());
                }
            }
        }
    }

    fn take_disk(&mut self, name: &str) -> Result<(), String> {
        let path = self
            .session
            .get(&format!("dev-{name}/block"))
            .map_err(|e| format!("dev-{name}/block: {e}"))?;
        let path = PathBuf::from(path);
        let file = MemberFile::open_read_write(&path).map_err(|e| e.to_string())?;
        let mut read =
            |offset: u64, buf: &mut [u8]| file.read_exact_at(offset, buf).map_err(|e| e.source);
        let index = self
            .handler
            .add_disk(name, file.len_bytes(), &mut read, random_seed())?;
        assert_eq!(
            index,
            self.disks.list().len(),
            "the handler numbers disks as the monitor holds them"
        );
        self.disks.add(Disk {
            name: name.to_owned(),
            path,
            file,
        });
        Ok(())
    }

    /// mdmon's spare activation (protocol.md §6.4, §8.24): for a degraded,
    /// writable, idle subarray, let the handler pick spares for the empty
    /// slots; freeze, add each to the engine (`new_dev`, `offset`, `size`,
    /// `slot`), write the metadata that records them rebuilding, and only
    /// then start the recovery (`recover`).
    fn activate_spares(&mut self, i: usize) -> Result<(), String> {
        let prefix = self.subs[i].prefix.clone();
        let session = &mut self.session;
        let missing = missing_slots(
            self.subs[i].tracked.prev_state,
            |attr| session.get(&format!("{prefix}{attr}")).ok(),
            &self.subs[i].members,
        );
        if missing.is_empty() {
            return Ok(());
        }
        let index = self.subs[i].tracked.index;
        let chosen = self.handler.activate_spare(index, &missing);
        if chosen.is_empty() {
            return Ok(());
        }
        let mut set = |attr: String, value: String| {
            self.session
                .set(&attr, &value)
                .map_err(|e| format!("{attr} {value}: {e}"))
        };
        set(format!("{prefix}sync_action"), "frozen".to_owned())?;
        for a in &chosen {
            let disk = &self.disks.list()[a.disk];
            set(format!("{prefix}new_dev"), disk.path.display().to_string())?;
            for (attr, value) in placement_writes(a, &disk.name) {
                set(format!("{prefix}{attr}"), value)?;
            }
            tracing::info!(subarray = index, disk = %disk.name, slot = a.slot, "spare activated");
        }
        let mut writes = Vec::new();
        self.handler.sync_metadata(&mut writes);
        self.disks.write(&writes)?;
        for a in &chosen {
            let name = self.disks.list()[a.disk].name.clone();
            if !self.subs[i].members.contains(&name) {
                self.subs[i].members.push(name);
            }
        }
        self.session
            .set(&format!("{prefix}sync_action"), "recover")
            .map_err(|e| format!("{prefix}sync_action recover: {e}"))
    }

    /// Read one subarray's attributes ([`Observed::read`]).
    fn observe(&mut self, i: usize) -> Observed {
        let prefix = self.subs[i].prefix.clone();
        let names = self.subs[i].members.clone();
        let session = &mut self.session;
        let get = |attr: &str| match session.get(&format!("{prefix}{attr}")) {
            Ok(v) => Some(v),
            // A removed member's attributes are gone.
            Err(ClientError::Engine(e)) if e.errno == Errno::ENOENT => None,
            Err(e) => {
                tracing::info!(subarray = %prefix, attr, error = %e, "attribute unreadable");
                None
            }
        };
        Observed::read(get, &names)
    }

    /// The engine writes of one subarray, in the order of [`Acts`].
    fn act(&mut self, i: usize, acts: &Acts) {
        let prefix = self.subs[i].prefix.clone();
        for (attr, value) in acts.engine_writes() {
            // A refusal is a race the next pass resolves (the array stopped
            // or changed since it was read), as mdmon treats it.
            let attr = format!("{prefix}{attr}");
            if let Err(e) = self.session.set(&attr, value) {
                tracing::info!(attr, value, error = %e, "engine refused");
            }
        }
        for m in &acts.remove {
            self.subs[i].members.retain(|n| n != m);
        }
    }

    /// A disk that failed in one subarray is failed in the others too
    /// (mdmon: a disk is one device, whichever array noticed).
    fn propagate_failures(&mut self, planned: &[(usize, Acts)]) {
        let failed: Vec<&String> = planned.iter().flat_map(|(_, a)| &a.faulty).collect();
        for name in failed {
            for (i, acts) in planned {
                if acts.faulty.contains(name) || !self.subs[*i].members.contains(name) {
                    continue;
                }
                let attr = format!("{}dev-{name}/state", self.subs[*i].prefix);
                if let Err(e) = self.session.set(&attr, "faulty") {
                    tracing::warn!(attr, error = %e, "could not fail the disk here too");
                }
            }
        }
    }
}

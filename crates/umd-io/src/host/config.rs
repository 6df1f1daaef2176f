//! The configuration path: attribute stores, md's configuration lock
//! (`reconfig_mutex`) and what a change does when it needs the array dirty
//! first (`md_allow_write`, protocol.md §4).
//!
//! Why this file exists: the founding rule of umd. A configuration change
//! (growing `stripe_cache_size`, changing `raid_disks`, starting a reshape)
//! runs under the configuration lock. If it needs the array marked dirty and
//! the metadata is external, only the metadata manager can record that, and
//! the manager acknowledges by storing `active` into `array_state`. So:
//!
//! * acknowledgements (`array_state` <- `active` | `clean`, `dev-*/state` <-
//!   `-blocked` | `blocked` | `external_bbl` | `-external_bbl`) never take
//!   the configuration lock and never wait for I/O: they take `core` for one
//!   engine call and return ([`is_acknowledgement`]);
//! * a change that finds the transition unacknowledged does not wait while
//!   holding the lock: the engine starts the transition, notifies, and the
//!   store fails with EAGAIN ([`AllowWrite::Eagain`], the founding patch); the
//!   caller retries after the acknowledgement. Writes still wait for it.
//!
//! [`AllowWrite::Wait`] is today's md: the change waits for the
//! acknowledgement holding only the configuration lock, which is safe
//! because acknowledgements never take it. [`AllowWrite::LegacyDeadlock`]
//! reproduces the bug the patch fixed (every store takes the lock, and the
//! change writes to the array while holding it); it exists only so a test can
//! show the cycle.
//!
//! Lock order: `config_lock` is order 0, above every lock in `mod.rs`. It is
//! held across a whole store, including the waits of `Wait` mode; nothing
//! that holds a lower lock ever takes it.

use super::{HostError, Shared};
use std::sync::{MutexGuard, PoisonError};
use std::time::Duration;
use umd_engine::{EngineError, Errno};

/// What a configuration change does when it needs the array dirty and the
/// external manager has not acknowledged yet (protocol.md §4.3, §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowWrite {
    /// md 2008-2017, the founding patch: start the transition, notify, fail
    /// the store with EAGAIN; the caller retries after the acknowledgement.
    #[default]
    Eagain,
    /// md since 4.12: wait for the acknowledgement, holding only the
    /// configuration lock (acknowledgements never take it).
    Wait,
    /// Before the patch, for the regression test only: every store takes the
    /// configuration lock, and the change proceeds, writing to the array
    /// while it holds the lock (as memory reclaim did), so the manager's
    /// acknowledgement can never get the lock. It deadlocks by design.
    #[doc(hidden)]
    LegacyDeadlock,
}

/// How often a `Wait`-mode change re-checks that the array is still there.
const ACK_WAIT_SLICE: Duration = Duration::from_millis(500);

/// Whether a store is one of the manager's acknowledgements, which must
/// never wait for the configuration lock (protocol.md §4.4, design rule).
#[must_use]
pub fn is_acknowledgement(attr: &str, value: &str) -> bool {
    let value = value.strip_suffix('\n').unwrap_or(value);
    if attr == "array_state" {
        return matches!(value, "active" | "clean");
    }
    let member_state = attr.starts_with("dev-") && attr.ends_with("/state");
    member_state
        && matches!(
            value,
            "-blocked" | "blocked" | "external_bbl" | "-external_bbl"
        )
}

impl Shared {
    /// Take the configuration lock (order 0).
    fn config(&self) -> MutexGuard<'_, ()> {
        self.config_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One engine store under `core`, with its events settled.
    fn store_once(&self, attr: &str, value: &str) -> Result<(), EngineError> {
        let now = self.now();
        let mut core = self.core();
        let result = core.array.store(attr, value, now);
        let stripes = u64::from(core.array.stripe_cache_size());
        self.settle(core, result.is_ok());
        self.ranges.set_stripes_max(stripes);
        result
    }

    /// Store an attribute with md's locking (module doc).
    pub(crate) fn store(&self, attr: &str, value: &str) -> Result<(), EngineError> {
        let legacy = self.allow_write == AllowWrite::LegacyDeadlock;
        if !legacy && is_acknowledgement(attr, value) {
            return self.store_once(attr, value);
        }
        let _config = self.config();
        loop {
            let result = self.store_once(attr, value);
            let again = matches!(&result, Err(e) if e.errno == Errno::EAGAIN);
            if !again {
                return result;
            }
            match self.allow_write {
                AllowWrite::Eagain => return result,
                AllowWrite::Wait => self.wait_acknowledged()?,
                AllowWrite::LegacyDeadlock => self.legacy_reclaim_write()?,
            }
        }
    }

    /// `Wait` mode: sleep until the manager cleared CHANGE_PENDING, holding
    /// the configuration lock but not `core`.
    fn wait_acknowledged(&self) -> Result<(), EngineError> {
        let mut core = self.core();
        while core.array.change_pending() {
            if core.stopping {
                return Err(EngineError::new(
                    Errno::EINTR,
                    "array stopping while waiting for the metadata manager",
                ));
            }
            core = self.wait(core, Some(ACK_WAIT_SLICE));
        }
        Ok(())
    }

    /// `LegacyDeadlock` mode: what memory reclaim did to the pre-patch
    /// kernel: a write to the array from inside the locked change. It rewrites
    /// the array's first sector with its own contents, so the data is
    /// unchanged if it ever completes.
    fn legacy_reclaim_write(&self) -> Result<(), EngineError> {
        let mut sector = vec![0u8; 512];
        let to_engine = |e: HostError| EngineError::new(e.errno, e.message);
        super::io_path::read(self, 0, &mut sector).map_err(to_engine)?;
        super::io_path::write(self, 0, &sector, false).map_err(to_engine)
    }

    /// md's GET_BITMAP_FILE: the path of a file-backed bitmap (empty: none or
    /// internal). Under the configuration lock it calls `md_allow_write`,
    /// whose EAGAIN is not an error here: md then allocated its reply without
    /// reclaim (GFP_NOIO), so the query always answers at once.
    pub(crate) fn bitmap_file(&self) -> String {
        let _config = self.config();
        let mut core = self.core();
        let path = core.array.get_bitmap_file();
        self.settle(core, false);
        path
    }
}

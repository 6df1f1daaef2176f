//! Control actions mixed into the workload: configuration stores a tool
//! makes while the array runs, checked against the engine's rules.
//!
//! Why: growing `stripe_cache_size` needs the array marked dirty first
//! (md's `md_allow_write`). With external metadata only the manager can
//! record that, and the founding rule of umd is that the store must not
//! wait for it: it starts the dirty transition and fails with EAGAIN, and
//! the caller retries once the manager acknowledged (protocol.md §4.3;
//! `umd_io::AllowWrite::Eagain`, whose decision is the engine's). Here the
//! store is made as the real host makes it (one engine call), the manager
//! runs its pass between the refusal and the retry, and the outcome is
//! checked:
//! - EAGAIN only with external metadata, and only with the transition
//!   pending (a write-pending the manager will see);
//! - a growth that succeeds never leaves a transition unacknowledged;
//! - after the manager's pass the retry succeeds.

use crate::host::{SimHost, Stop};
use umd_engine::Errno;

/// Store `stripe_cache_size` = `n`, retrying after the manager's pass when
/// the engine answers EAGAIN; an answer the rules forbid is a failure.
/// Returns whether the engine answered EAGAIN first.
pub fn stripe_cache_size(host: &mut SimHost, n: u32) -> Result<bool, Stop> {
    let external = host.array.is_external();
    let before = host.array.stripe_cache_size();
    let result = host
        .array
        .store("stripe_cache_size", &n.to_string(), host.now);
    host.drain();
    match result {
        Ok(()) => {
            if n > before && host.array.change_pending() {
                return Err(Stop::Failed(format!(
                    "stripe_cache_size grew {before} -> {n} with the dirty transition unacknowledged"
                )));
            }
            Ok(false)
        }
        Err(e) if e.errno == Errno::EAGAIN => {
            if !external {
                return Err(Stop::Failed(format!(
                    "stripe_cache_size {n}: EAGAIN with native metadata: {e}"
                )));
            }
            if !host.array.change_pending() {
                return Err(Stop::Failed(format!(
                    "stripe_cache_size {n}: EAGAIN but no transition for the manager: {e}"
                )));
            }
            // The caller retries once the manager acknowledged.
            host.manager_pass()?;
            host.array
                .store("stripe_cache_size", &n.to_string(), host.now)
                .map_err(|e| {
                    Stop::Failed(format!(
                        "stripe_cache_size {n}: refused again after the manager's pass: {e}"
                    ))
                })?;
            host.drain();
            Ok(true)
        }
        // Not running read-write, or no stripe cache: the engine says so.
        Err(e) if matches!(e.errno, Errno::EINVAL | Errno::EBUSY | Errno::EROFS) => Ok(false),
        Err(e) => Err(Stop::Failed(format!("stripe_cache_size {n}: {e}"))),
    }
}

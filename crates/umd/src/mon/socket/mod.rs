//! The manager's socket: how mdadm-like tools reach a running `umd mon`
//! (mdmon's control socket, protocol.md §6.5 and §6.6).
//!
//! Three requests: queue a metadata update, ping the monitor (answered only
//! after the monitor completed a full pass that started after the ping, so
//! "everything queued before is applied and written"), and ping the manager
//! (look for changed arrays now; answered at once). The monitor's owner
//! implements [`PingTarget`]; [`MonServer`] serves it on the socket that
//! [`MonFiles::claim`] set up; [`client`] is what tools call.
//!
//! Files: `proto.rs` is the sans-I/O frame codec (the byte map is there);
//! `files.rs` the socket and pid file beside it, with mdmon's start and
//! takeover rules; `server.rs` the threads; `client.rs` the calls.
//!
//! The manager's life, as far as the socket goes (protocol.md §6.6):
//!
//! | state | trigger (actor) | next |
//! | --- | --- | --- |
//! | none | `MonFiles::claim`, no live manager (new manager) | claimed: socket bound and renamed into place, pid file written |
//! | none | `claim` with a live manager, no takeover | refused, naming the live manager's pid |
//! | none | `claim` with a live manager and takeover | claimed; the caller SIGTERMs the old pid and [`wait_gone`]s it |
//! | claimed | `MonServer::spawn` | serving |
//! | serving | another manager's takeover (rename over our path) | serving only connected clients; [`MonHandle::taken_over`] is true |
//! | serving | `MonHandle::shutdown` | gone: files removed if they are still ours |

pub mod client;
mod files;
pub mod proto;
mod server;

use std::time::Duration;

use umd_engine::EngineError;

pub use client::{ClientError, MonClient, CLIENT_TIMEOUT_DEFAULT};
pub use files::{wait_gone, ClaimError, Claimed, MonFiles, TAKEOVER_WAIT_DEFAULT};
pub use server::{MonConfig, MonHandle, MonServer, MANAGER_VERSION};

/// What the socket asks of the running manager; the monitor's owner implements it.
///
/// Every method is called from a connection thread, possibly several at once.
pub trait PingTarget: Send + Sync + 'static {
    /// mdadm's metadata update: prepare `blob` (format private to the metadata
    /// handler) and queue it for the monitor. Returns once it is queued, not
    /// once applied or written; the ping that follows waits for that. An error
    /// refuses the update; its message is logged, the client hears "refused".
    fn update(&self, blob: Vec<u8>) -> Result<(), EngineError>;

    /// Look for new, changed or stopped arrays now (mdmon re-reads
    /// /proc/mdstat). Must not wait for the monitor: the reply is immediate.
    fn ping_manager(&self);

    /// Return once the monitor has completed a full pass that started after
    /// this call began (so every update queued before the call is applied and
    /// the metadata written), waking the monitor if it sleeps; or
    /// `Err(PassTimedOut)` after `timeout`.
    fn wait_monitor_pass(&self, timeout: Duration) -> Result<(), PassTimedOut>;
}

/// The monitor did not complete a pass in the time allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassTimedOut;

/// Fuzzing entry points (style R21); not part of the API.
#[doc(hidden)]
pub mod fuzz {
    use std::sync::Mutex;
    use std::time::Duration;

    use umd_engine::{EngineError, Errno};

    use super::proto::{Frame, FrameDecoder, Reply, Request};
    use super::server::dispatch;
    use super::{PassTimedOut, PingTarget};

    /// Updates kept by the fuzz target: a bound so long inputs stay cheap.
    const FUZZ_UPDATES_MAX: usize = 64;

    /// A target that refuses updates starting with 0xff and lets every other
    /// monitor ping time out, so every reply kind is produced.
    #[derive(Default)]
    struct FuzzTarget {
        updates: Mutex<Vec<Vec<u8>>>,
        pings: Mutex<u64>,
    }

    impl PingTarget for FuzzTarget {
        fn update(&self, blob: Vec<u8>) -> Result<(), EngineError> {
            if blob.first() == Some(&0xff) {
                return Err(EngineError::new(
                    Errno::EINVAL,
                    "refused by the fuzz target",
                ));
            }
            let mut updates = self
                .updates
                .lock()
                .map_err(|_| EngineError::new(Errno::EIO, "fuzz target lock poisoned"))?;
            if updates.len() < FUZZ_UPDATES_MAX {
                updates.push(blob);
            }
            Ok(())
        }

        fn ping_manager(&self) {}

        fn wait_monitor_pass(&self, _timeout: Duration) -> Result<(), PassTimedOut> {
            let mut pings = self.pings.lock().map_err(|_| PassTimedOut)?;
            *pings += 1;
            if *pings % 2 == 0 {
                Err(PassTimedOut)
            } else {
                Ok(())
            }
        }
    }

    /// Feeds `data` as a client's byte stream through the frame decoder and
    /// the server's dispatch, and every reply back through the client's
    /// decoder; also decodes `data` as a manager's replies. Never panics.
    pub fn frames(data: &[u8]) {
        let target = FuzzTarget::default();
        for_each_frame(data, |frame| {
            // The server closes at the first bad request; so do we.
            let Ok(request) = Request::from_frame(frame) else {
                return false;
            };
            let reply = dispatch(&target, request, Duration::ZERO);
            let mut wire = Vec::new();
            reply.encode(&mut wire);
            let mut decoded = None;
            for_each_frame(&wire, |frame| {
                decoded = Reply::from_frame(frame).ok();
                false
            });
            assert_eq!(decoded, Some(reply), "a reply our client cannot read");
            true
        });
        for_each_frame(data, |frame| Reply::from_frame(frame).is_ok());
    }

    /// Decodes frames from `data` as a socket reader would, calling `on_frame`
    /// for each until it returns false, the data ends, or a frame is malformed.
    fn for_each_frame(data: &[u8], mut on_frame: impl FnMut(Frame) -> bool) {
        let mut decoder = FrameDecoder::default();
        let mut rest = data;
        while !rest.is_empty() {
            let take = decoder.needed().min(rest.len());
            let pushed = decoder.push(&rest[..take]);
            rest = &rest[take..];
            match pushed {
                Ok(Some(frame)) => {
                    if !on_frame(frame) {
                        return;
                    }
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }
}

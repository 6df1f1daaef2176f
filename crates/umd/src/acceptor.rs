//! The accept loop the control server and the manager socket share: accept
//! Unix-socket connections until told to stop, hand each to the caller's
//! connection starter, and keep the connection threads for joining.
//!
//! Why shared: both servers need the same care (a failed `accept` must not
//! spin, `EINTR` is not an error, finished threads are reaped as new ones
//! arrive so the list stays bounded by the live connections).

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Pause after a failed `accept` (out of descriptors, say) so the loop does
/// not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Accept on `listener` until `stopping` is set (the stopper then wakes the
/// blocked `accept`, e.g. with a connection of its own); `start` runs each
/// connection and returns its thread, or `None` if it refused it. Returns
/// the threads still to join. Runs for the server's whole life by design.
pub(crate) fn accept_until_stopped(
    listener: &UnixListener,
    stopping: &AtomicBool,
    server: &str,
    mut start: impl FnMut(UnixStream) -> Option<JoinHandle<()>>,
) -> Vec<JoinHandle<()>> {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let accepted = listener.accept();
        if stopping.load(Ordering::SeqCst) {
            return connections;
        }
        match accepted {
            Ok((stream, _)) => {
                connections.retain(|c| !c.is_finished());
                connections.extend(start(stream));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, server, "accept failed");
                std::thread::sleep(ACCEPT_ERROR_BACKOFF);
            }
        }
    }
}

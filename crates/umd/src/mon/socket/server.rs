//! The manager socket's server: accepts tools' connections on the claimed
//! socket and answers their requests from the manager's [`PingTarget`].
//!
//! One acceptor thread and one thread per connection, at most
//! [`MonConfig::clients_max`]: clients are a few mdadm-like tools, and a
//! monitor ping blocks its connection for up to a monitor pass, which must not
//! hold up another tool's update. Each connection reads one message, answers
//! it, and reads the next; every message must arrive whole within
//! [`MonConfig::message_timeout`] (mdmon's 3 s), so an idle or dribbling
//! client is closed. A malformed frame closes that connection only, with the
//! reason logged.
//!
//! Invariants:
//! - No lock is held across socket I/O or a call into the target; the one
//!   lock, `Shared::clients`, guards only the registry of live connections.
//! - Peers must run as root or as the manager's effective user; the socket is
//!   also 0600 in a 0700 directory (`files.rs`), so this is the second fence.
//! - A monitor ping is answered only after the target reports a completed
//!   pass; the server never invents one (on timeout it refuses instead).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, sockopt};
use tracing::{debug, info, warn};

use super::files::{FilesGuard, MonFiles};
use super::proto::{FrameDecoder, FrameError, Refusal, Reply, Request, VERSION_BYTES_MAX};
use super::{PassTimedOut, PingTarget};

/// The version a monitor ping's reply carries.
pub const MANAGER_VERSION: &str = concat!("umd ", env!("CARGO_PKG_VERSION"));
/// mdmon's per-message timeout: a message must arrive whole within 3 s.
const MESSAGE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);
/// How long a monitor ping waits for a pass: below the clients' 20 s, so a
/// stalled monitor is reported as such rather than as a client timeout, and
/// bounded, so a stuck monitor cannot pin connection threads (or shutdown).
const MONITOR_PASS_TIMEOUT_DEFAULT: Duration = Duration::from_secs(15);
/// Default connections at once: a few tools, with room to spare.
const CLIENTS_MAX_DEFAULT: usize = 16;
/// Upper bound on `clients_max`: each connection costs a thread.
const CLIENTS_MAX_LIMIT: usize = 256;
/// Bytes read from a socket per call.
const READ_CHUNK_BYTES: usize = 16 << 10;

const _: () = assert!(!MANAGER_VERSION.is_empty());
const _: () = assert!(MANAGER_VERSION.len() <= VERSION_BYTES_MAX);
const _: () = assert!(CLIENTS_MAX_DEFAULT <= CLIENTS_MAX_LIMIT);

/// Server tunables; [`Default`] is mdmon's behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonConfig {
    /// How long one message may take to arrive, and one reply to be taken
    /// (mdmon: 3 s). An idle connection is closed after this long too.
    pub message_timeout: Duration,
    /// How long a monitor ping waits for the monitor to complete a pass before
    /// the client is told the monitor stalled.
    pub monitor_pass_timeout: Duration,
    /// Connections served at once; more are refused with a reply saying so.
    pub clients_max: usize,
}

impl Default for MonConfig {
    fn default() -> Self {
        Self {
            message_timeout: MESSAGE_TIMEOUT_DEFAULT,
            monitor_pass_timeout: MONITOR_PASS_TIMEOUT_DEFAULT,
            clients_max: CLIENTS_MAX_DEFAULT,
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (each
/// critical section is one insert or removal).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A manager socket ready to serve (see [`MonServer::spawn`]).
pub struct MonServer {
    files: MonFiles,
    target: Arc<dyn PingTarget>,
    config: MonConfig,
}

impl MonServer {
    /// A server for the claimed `files`, answering from `target`. Refuses a
    /// zero timeout or a client limit outside 1 to 256.
    pub fn new(
        files: MonFiles,
        target: Arc<dyn PingTarget>,
        config: MonConfig,
    ) -> io::Result<MonServer> {
        let invalid =
            |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, what.to_owned()));
        if config.clients_max == 0 || config.clients_max > CLIENTS_MAX_LIMIT {
            return invalid("clients_max must be between 1 and 256");
        }
        if config.message_timeout.is_zero() || config.monitor_pass_timeout.is_zero() {
            return invalid("timeouts must not be zero");
        }
        Ok(MonServer {
            files,
            target,
            config,
        })
    }

    /// Starts serving on background threads.
    pub fn spawn(self) -> io::Result<MonHandle> {
        let (listener, guard) = self.files.into_parts();
        let shared = Arc::new(Shared {
            listener,
            target: self.target,
            config: self.config,
            stopping: AtomicBool::new(false),
            clients: Mutex::default(),
        });
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("umd-mon-socket".into())
            .spawn(move || accept_loop(&acceptor_shared))?;
        info!(container = guard.container(), socket = %guard.socket_path().display(), "mon: serving");
        Ok(MonHandle {
            shared,
            acceptor: Some(acceptor),
            guard: Some(guard),
        })
    }
}

/// A running manager socket; [`MonHandle::shutdown`] or dropping it stops it.
pub struct MonHandle {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<Vec<JoinHandle<()>>>>,
    /// Removes our files after every thread is joined.
    guard: Option<FilesGuard>,
}

impl MonHandle {
    /// The socket path served (another manager's after a takeover).
    #[must_use]
    pub fn socket_path(&self) -> &Path {
        self.guard
            .as_ref()
            .expect("the guard lives until shutdown consumes the handle")
            .socket_path()
    }

    /// True once another manager took the socket path over: this manager
    /// serves only the clients it had and should stop (protocol.md §6.6).
    #[must_use]
    pub fn taken_over(&self) -> bool {
        self.guard.as_ref().is_none_or(FilesGuard::taken_over)
    }

    /// Stops accepting, closes every connection, joins every thread, then
    /// removes the socket and pid file if they are still ours. A connection
    /// waiting for a monitor pass finishes when the target returns (at most
    /// [`MonConfig::monitor_pass_timeout`]).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Linux wakes a thread blocked in accept() when its socket is shut down.
        let fd = self.shared.listener.as_raw_fd();
        if let Err(error) = socket::shutdown(fd, socket::Shutdown::Both) {
            warn!(%error, "mon: cannot shut down the listener");
        }
        let joined = acceptor.join();
        if joined.is_err() {
            warn!("mon: acceptor thread panicked");
        }
        let acceptor_ok = joined.is_ok();
        let connections = joined.unwrap_or_default();
        for stream in lock(&self.shared.clients).live.values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for connection in connections {
            if connection.join().is_err() {
                warn!("mon: connection thread panicked");
            }
        }
        // Without the acceptor's list some threads were not joined.
        if acceptor_ok {
            assert!(
                lock(&self.shared.clients).live.is_empty(),
                "every connection ended"
            );
        }
        if let Some(guard) = self.guard.take() {
            info!(container = guard.container(), "mon: socket stopped");
            drop(guard);
        }
    }
}

impl Drop for MonHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// State shared by the acceptor, the connections and the handle.
struct Shared {
    listener: UnixListener,
    target: Arc<dyn PingTarget>,
    config: MonConfig,
    /// Set once by shutdown; the acceptor checks it after every accept.
    stopping: AtomicBool,
    /// Live connections, for shutdown to close. Lock order: the only lock;
    /// held for one insert, removal or walk, never across I/O.
    clients: Mutex<Clients>,
}

#[derive(Default)]
struct Clients {
    /// A clone of each live connection's socket, by id.
    live: HashMap<u64, UnixStream>,
    next_id: u64,
}

/// Accepts until stopped; returns the connection threads for the handle to
/// join.
fn accept_loop(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    crate::acceptor::accept_until_stopped(&shared.listener, &shared.stopping, "mon", |stream| {
        start_connection(shared, stream)
    })
}

/// Registers a connection and starts its thread, or refuses it when full.
fn start_connection(shared: &Arc<Shared>, mut stream: UnixStream) -> Option<JoinHandle<()>> {
    let timeout = Some(shared.config.message_timeout);
    if stream.set_write_timeout(timeout).is_err() {
        return None;
    }
    let id = {
        let mut clients = lock(&shared.clients);
        if clients.live.len() >= shared.config.clients_max {
            drop(clients);
            warn!(
                clients_max = shared.config.clients_max,
                "mon: refusing a client"
            );
            let _ = send_reply(&mut stream, &Reply::Refused(Refusal::TooManyClients));
            return None;
        }
        let clone = stream.try_clone().ok()?;
        let id = clients.next_id;
        clients.next_id += 1;
        clients.live.insert(id, clone);
        assert!(
            clients.live.len() <= shared.config.clients_max,
            "the client limit holds"
        );
        id
    };
    let registered = Registered {
        shared: Arc::clone(shared),
        id,
    };
    let spawned = thread::Builder::new()
        .name("umd-mon-client".into())
        .spawn(move || serve_connection(&registered.shared, stream));
    match spawned {
        Ok(handle) => Some(handle),
        Err(error) => {
            // The closure, and with it the registration, was dropped.
            warn!(%error, "mon: cannot start a client thread");
            None
        }
    }
}

/// A connection's entry in `Shared::clients`, removed when its thread ends,
/// even by a panic, so shutdown never waits on a connection that is gone.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.shared.clients).live.remove(&self.id);
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    /// The client closed between messages.
    Closed,
    /// No message began within the message timeout.
    Idle,
    /// A message began but did not arrive whole within the message timeout.
    Incomplete,
    /// The client sent something that is not the protocol.
    Malformed(FrameError),
    /// The socket failed.
    Io(io::Error),
}

fn serve_connection(shared: &Shared, mut stream: UnixStream) {
    if let Err(reason) = check_peer(&stream) {
        warn!(%reason, "mon: client refused");
        let _ = send_reply(&mut stream, &Reply::Refused(Refusal::PeerNotAllowed));
        return;
    }
    let ended = serve_requests(shared, &mut stream);
    match ended {
        Ended::Closed | Ended::Idle => debug!(?ended, "mon: client done"),
        Ended::Incomplete => warn!(
            timeout = ?shared.config.message_timeout,
            "mon: closing a client whose message did not arrive in time"
        ),
        Ended::Malformed(error) => warn!(%error, "mon: closing a client that broke the protocol"),
        Ended::Io(error) => debug!(%error, "mon: client connection failed"),
    }
}

/// Reads, answers and repeats until the connection ends; returns why.
fn serve_requests(shared: &Shared, stream: &mut UnixStream) -> Ended {
    let mut decoder = FrameDecoder::default();
    // Runs for the connection's life: every pass reads one message or ends it.
    loop {
        let request = match read_request(stream, &mut decoder, shared.config.message_timeout) {
            Ok(request) => request,
            Err(ended) => return ended,
        };
        let reply = dispatch(&*shared.target, request, shared.config.monitor_pass_timeout);
        if let Err(error) = send_reply(stream, &reply) {
            return Ended::Io(error);
        }
    }
}

/// Reads one whole request within `timeout`.
fn read_request(
    stream: &mut UnixStream,
    decoder: &mut FrameDecoder,
    timeout: Duration,
) -> Result<Request, Ended> {
    assert!(decoder.is_idle(), "requests are read one at a time");
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    // Bounded by the deadline: a read that returns nothing in time ends it.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(if decoder.is_idle() {
                Ended::Idle
            } else {
                Ended::Incomplete
            });
        }
        stream.set_read_timeout(Some(left)).map_err(Ended::Io)?;
        let want = decoder.needed().min(READ_CHUNK_BYTES);
        match stream.read(&mut chunk[..want]) {
            Ok(0) if decoder.is_idle() => return Err(Ended::Closed),
            Ok(0) => return Err(Ended::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => {
                if let Some(frame) = decoder.push(&chunk[..n]).map_err(Ended::Malformed)? {
                    return Request::from_frame(frame).map_err(Ended::Malformed);
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            Err(error) => return Err(Ended::Io(error)),
        }
    }
}

fn send_reply(stream: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let mut wire = Vec::new();
    reply.encode(&mut wire);
    stream.write_all(&wire)
}

/// Carries out one request against `target` and says what to answer. Pure
/// apart from the target's own effects, so the fuzz target runs it too.
pub(super) fn dispatch(target: &dyn PingTarget, request: Request, pass_timeout: Duration) -> Reply {
    match request {
        Request::Update(blob) => {
            let len_bytes = blob.len();
            match target.update(blob) {
                Ok(()) => {
                    debug!(len_bytes, "mon: metadata update queued");
                    Reply::Ack
                }
                Err(error) => {
                    warn!(len_bytes, %error, "mon: metadata update refused");
                    Reply::Refused(Refusal::UpdateRefused)
                }
            }
        }
        Request::PingManager => {
            target.ping_manager();
            Reply::Ack
        }
        Request::PingMonitor => {
            let passed: Result<(), PassTimedOut> = target.wait_monitor_pass(pass_timeout);
            if passed.is_ok() {
                Reply::Version(MANAGER_VERSION.to_owned())
            } else {
                warn!(?pass_timeout, "mon: the monitor did not complete a pass");
                Reply::Refused(Refusal::MonitorStalled)
            }
        }
    }
}

/// Refuses peers that are neither root nor the manager's effective user.
fn check_peer(stream: &UnixStream) -> Result<(), String> {
    let creds = socket::getsockopt(stream, sockopt::PeerCredentials)
        .map_err(|error| format!("cannot read peer credentials: {error}"))?;
    let server_uid = nix::unistd::geteuid().as_raw();
    if creds.uid() == 0 || creds.uid() == server_uid {
        Ok(())
    } else {
        Err(format!(
            "uid {} (pid {}) may not use the manager socket",
            creds.uid(),
            creds.pid()
        ))
    }
}

//! The control server: serves an [`AttrTree`] on a Unix socket and delivers watch events.
//!
//! One acceptor thread, one thread per connection (at most [`MAX_CLIENTS`]) and, for a
//! connection in watch mode, one delivery thread. Threads rather than an event loop
//! because clients are few (a manager, an operator, `umd status`) and each request is one
//! short call into the tree; a thread per client also keeps one slow `get` from stalling
//! the others.
//!
//! Invariants:
//! - [`Notifier::notify`] only marks attributes pending and signals a condition variable;
//!   it never calls the tree or does I/O, so the array may call it under its own locks.
//!   Values are read through [`AttrTree::get`] by the delivery thread, with no server lock
//!   held, so an event always carries the value at delivery time.
//! - No server lock is held across socket I/O or a call into the tree.
//! - Lock order (highest first): `Shared::clients`, then `Watchers::list`, then
//!   `Watcher::state`. No path takes two of them except `notify` (list, then state).
//! - Peers must run as root or as the server's effective user; the socket file is also
//!   mode 0600 in a 0700 directory (paths), so this check is the second of two fences.

use super::proto::{self, Frame, LineFramer, Request, MAX_LINE_BYTES};
use super::AttrTree;
use nix::sys::socket::{self, sockopt};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use umd_engine::{EngineError, Errno};

/// Most connections served at once. A manager, a few operators and `umd status` need a
/// handful; the cap bounds threads and memory if a local process opens sockets in a loop.
pub(crate) const MAX_CLIENTS: usize = 64;

/// How long one reply or event may take to write before the client is dropped: a client
/// that stops reading must not pin a delivery thread (or shutdown) forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes read from a socket per call; requests are short lines.
const READ_CHUNK_BYTES: usize = 4096;

/// Socket file permissions: owner only (root when umd runs as root).
const SOCKET_MODE: u32 = 0o600;

/// Permissions of a socket directory the server creates: owner only.
const DIR_MODE: u32 = 0o700;

/// Lock a mutex whose data stays consistent even if a holder panicked (every critical
/// section here is a single insert, remove or flag update).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one request line asks the connection to do next.
pub(crate) enum Action {
    /// Send this reply and read the next request.
    Reply(String),
    /// Send `reply`, then switch to watch mode on `attrs`.
    Watch {
        /// The attributes to watch, each known to the tree, without repeats.
        attrs: Vec<String>,
        /// `ok`, terminator included.
        reply: String,
    },
}

/// Decode and carry out one request line against `tree`. Pure apart from the tree's own
/// effects, so the fuzz target runs it too.
pub(crate) fn dispatch(tree: &dyn AttrTree, line: &[u8]) -> Action {
    let request = match proto::decode_request(line) {
        Ok(request) => request,
        Err(e) => return Action::Reply(proto::encode_err(&e.into_engine())),
    };
    let reply = match request {
        Request::Get(attr) => match tree.get(&attr) {
            Ok(value) => proto::encode_ok(Some(&value)),
            Err(e) => proto::encode_err(&e),
        },
        Request::Set { attr, value } => match tree.set(&attr, &value) {
            Ok(()) => proto::encode_ok(None),
            Err(e) => proto::encode_err(&e),
        },
        Request::List => proto::encode_ok(Some(&tree.names().join("\n"))),
        Request::Watch(mut attrs) => {
            attrs.sort_unstable();
            attrs.dedup();
            // Refuse unknown names now, while the client can still be told with `err`.
            if let Some(e) = attrs.iter().find_map(|a| tree.get(a).err()) {
                proto::encode_err(&e)
            } else {
                return Action::Watch {
                    attrs,
                    reply: proto::encode_ok(None),
                };
            }
        }
    };
    Action::Reply(bound_reply(reply))
}

/// Replace a reply too long for the protocol with a refusal the client can read.
fn bound_reply(line: String) -> String {
    if line.len() <= MAX_LINE_BYTES + 1 {
        return line;
    }
    let error = EngineError::new(
        Errno::E2BIG,
        format!("reply longer than {MAX_LINE_BYTES} bytes"),
    );
    proto::encode_err(&error)
}

/// One watching connection's pending changes.
struct Watcher {
    /// The watched names, sorted, fixed for the watcher's life.
    attrs: Vec<String>,
    state: Mutex<WatchState>,
    /// Signalled when an attribute becomes pending or the watcher closes.
    changed: Condvar,
}

struct WatchState {
    /// `pending[i]`: `attrs[i]` changed since its last delivery. A flag, not a queue,
    /// so repeated notifies coalesce and memory stays bounded, as with sysfs poll.
    pending: Vec<bool>,
    closed: bool,
}

impl Watcher {
    fn new(attrs: Vec<String>) -> Self {
        // Every attribute starts pending: the client gets current values first.
        let pending = vec![true; attrs.len()];
        Self {
            attrs,
            state: Mutex::new(WatchState {
                pending,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn mark(&self, attr: &str) {
        if let Ok(i) = self.attrs.binary_search_by(|a| a.as_str().cmp(attr)) {
            lock(&self.state).pending[i] = true;
            self.changed.notify_one();
        }
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_one();
    }

    /// Block until something is pending, then take it; `None` once closed.
    fn take_pending(&self) -> Option<Vec<&str>> {
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return None;
            }
            if state.pending.iter().any(|&p| p) {
                let taken = self
                    .attrs
                    .iter()
                    .zip(state.pending.iter_mut())
                    .filter(|(_, p)| **p)
                    .map(|(a, p)| {
                        *p = false;
                        a.as_str()
                    })
                    .collect();
                return Some(taken);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Every live watcher. Bounded by [`MAX_CLIENTS`]: one per connection at most.
#[derive(Default)]
struct Watchers {
    list: Mutex<Vec<Arc<Watcher>>>,
}

/// md's `sysfs_notify` for one array: tells watchers an attribute changed.
#[derive(Clone)]
pub struct Notifier {
    watchers: Arc<Watchers>,
}

impl Notifier {
    /// Announce that `attr` changed. Every watcher of `attr` gets an event carrying the
    /// value read at delivery time. Never blocks on I/O or calls the tree, so it is safe
    /// from any thread and under the caller's locks.
    pub fn notify(&self, attr: &str) {
        for watcher in lock(&self.watchers.list).iter() {
            watcher.mark(attr);
        }
    }
}

/// A bound control socket, not yet serving (see [`ControlServer::spawn`]).
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    tree: Arc<dyn AttrTree>,
    watchers: Arc<Watchers>,
}

impl ControlServer {
    /// Bind the control socket at `path` (mode 0600; a missing parent directory is created
    /// with mode 0700). A stale socket file that nobody answers on is replaced; a live
    /// server on `path`, or a file that is not a socket, is an error.
    pub fn bind(path: &Path, tree: Arc<dyn AttrTree>) -> io::Result<ControlServer> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(parent)?;
        }
        remove_stale_socket(path)?;
        let listener = UnixListener::bind(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display()))
        })?;
        fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))?;
        tracing::debug!(path = %path.display(), "control socket bound");
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
            tree,
            watchers: Arc::default(),
        })
    }

    /// The notifier for this array's attribute changes; valid before and after `spawn`.
    #[must_use]
    pub fn notifier(&self) -> Notifier {
        Notifier {
            watchers: Arc::clone(&self.watchers),
        }
    }

    /// Start serving on background threads.
    #[must_use]
    pub fn spawn(self) -> ControlHandle {
        let shared = Arc::new(Shared {
            listener: self.listener,
            stopping: AtomicBool::new(false),
            clients: Mutex::default(),
            watchers: self.watchers,
            tree: self.tree,
        });
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("umd-control".into())
            .spawn(move || accept_loop(&acceptor_shared));
        let acceptor = match acceptor {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the control server thread");
                None
            }
        };
        ControlHandle {
            shared,
            acceptor,
            path: self.path,
        }
    }
}

/// Remove `path` if it is a socket nobody answers on; refuse if somebody does.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "a control server is already answering on {}",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale control socket");
            fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot probe existing socket {}: {e}", path.display()),
        )),
    }
}

/// State the acceptor, the connections and the handle share.
struct Shared {
    listener: UnixListener,
    stopping: AtomicBool,
    /// Live connections by id, each a clone used only to shut the connection down.
    clients: Mutex<Clients>,
    watchers: Arc<Watchers>,
    tree: Arc<dyn AttrTree>,
}

#[derive(Default)]
struct Clients {
    next_id: u64,
    live: HashMap<u64, UnixStream>,
}

/// A running control server; stop it with [`ControlHandle::shutdown`] (dropping it does
/// the same).
pub struct ControlHandle {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<Vec<JoinHandle<()>>>>,
    path: PathBuf,
}

impl ControlHandle {
    /// The socket path being served.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Close the listener, disconnect every client, join every thread and remove the
    /// socket file. Bounded by [`WRITE_TIMEOUT`] plus the slowest in-flight tree call.
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // shutdown(2) on a listening socket wakes a blocked accept on Linux; connecting is
        // the fallback should it not.
        let fd = self.shared.listener.as_raw_fd();
        if socket::shutdown(fd, socket::Shutdown::Both).is_err() {
            let _ = UnixStream::connect(&self.path);
        }
        let connections = acceptor.join().unwrap_or_default();
        for stream in lock(&self.shared.clients).live.values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for watcher in lock(&self.shared.watchers.list).iter() {
            watcher.close();
        }
        for connection in connections {
            let _ = connection.join();
        }
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove control socket");
            }
        }
        tracing::debug!(path = %self.path.display(), "control server stopped");
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accept until stopped; returns the connection threads for the handle to join.
fn accept_loop(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    crate::acceptor::accept_until_stopped(&shared.listener, &shared.stopping, "control", |stream| {
        start_connection(shared, stream)
    })
}

/// Register a new connection and start its thread, or refuse it when full.
fn start_connection(shared: &Arc<Shared>, mut stream: UnixStream) -> Option<JoinHandle<()>> {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let id = {
        let mut clients = lock(&shared.clients);
        if clients.live.len() >= MAX_CLIENTS {
            drop(clients);
            let refusal = EngineError::new(
                Errno::EBUSY,
                format!("more than {MAX_CLIENTS} control clients"),
            );
            let _ = stream.write_all(proto::encode_err(&refusal).as_bytes());
            return None;
        }
        let clone = stream.try_clone().ok()?;
        let id = clients.next_id;
        clients.next_id += 1;
        clients.live.insert(id, clone);
        id
    };
    let connection_shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("umd-control-client".into())
        .spawn(move || {
            if let Err(e) = serve_connection(&connection_shared, stream) {
                tracing::debug!(error = %e, "control client disconnected");
            }
            lock(&connection_shared.clients).live.remove(&id);
        });
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a control client thread");
            lock(&shared.clients).live.remove(&id);
            None
        }
    }
}

/// Refuse peers that are neither root nor the server's effective user.
fn check_peer(stream: &UnixStream) -> Result<(), EngineError> {
    let creds = socket::getsockopt(stream, sockopt::PeerCredentials).map_err(|e| {
        EngineError::new(Errno::EACCES, format!("cannot read peer credentials: {e}"))
    })?;
    let server_uid = nix::unistd::geteuid().as_raw();
    if creds.uid() == 0 || creds.uid() == server_uid {
        Ok(())
    } else {
        Err(EngineError::new(
            Errno::EACCES,
            format!(
                "uid {} may not use this array's control socket",
                creds.uid()
            ),
        ))
    }
}

/// Answer requests until the client leaves or asks to watch.
fn serve_connection(shared: &Arc<Shared>, mut stream: UnixStream) -> io::Result<()> {
    if let Err(e) = check_peer(&stream) {
        tracing::warn!(error = %e, "control client refused");
        return stream.write_all(proto::encode_err(&e).as_bytes());
    }
    let mut framer = LineFramer::default();
    let mut chunk = [0_u8; READ_CHUNK_BYTES];
    loop {
        let n = match stream.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        if n == 0 {
            return Ok(());
        }
        framer.push(&chunk[..n]);
        while let Some(frame) = framer.next_frame() {
            let action = match frame {
                Frame::TooLong => Action::Reply(proto::encode_err(&EngineError::new(
                    Errno::EINVAL,
                    format!("request longer than {MAX_LINE_BYTES} bytes"),
                ))),
                Frame::Line(line) => dispatch(shared.tree.as_ref(), &line),
            };
            match action {
                Action::Reply(reply) => stream.write_all(reply.as_bytes())?,
                Action::Watch { attrs, reply } => {
                    stream.write_all(reply.as_bytes())?;
                    return watch(shared, stream, attrs);
                }
            }
        }
    }
}

/// Watch mode: a delivery thread writes events while this thread waits for the client to
/// hang up (its further input is ignored, per the protocol).
fn watch(shared: &Arc<Shared>, mut stream: UnixStream, attrs: Vec<String>) -> io::Result<()> {
    let watcher = Arc::new(Watcher::new(attrs));
    lock(&shared.watchers.list).push(Arc::clone(&watcher));
    let result = (|| {
        let writer = stream.try_clone()?;
        let delivery_watcher = Arc::clone(&watcher);
        let tree = Arc::clone(&shared.tree);
        let delivery = std::thread::Builder::new()
            .name("umd-control-watch".into())
            .spawn(move || deliver(&delivery_watcher, tree.as_ref(), writer))?;
        let mut chunk = [0_u8; READ_CHUNK_BYTES];
        while matches!(stream.read(&mut chunk), Ok(n) if n > 0) {}
        watcher.close();
        let _ = delivery.join();
        Ok(())
    })();
    watcher.close();
    lock(&shared.watchers.list).retain(|w| !Arc::ptr_eq(w, &watcher));
    result
}

/// Write one event per pending attribute, values read now, until the watcher closes or the
/// client stops accepting them.
fn deliver(watcher: &Watcher, tree: &dyn AttrTree, mut writer: UnixStream) {
    while let Some(attrs) = watcher.take_pending() {
        for attr in attrs {
            let mut line = proto::encode_event(attr, &tree.get(attr));
            if line.len() > MAX_LINE_BYTES + 1 {
                let error = EngineError::new(
                    Errno::E2BIG,
                    format!("value longer than {MAX_LINE_BYTES} bytes"),
                );
                line = proto::encode_event(attr, &Err(error));
            }
            if writer.write_all(line.as_bytes()).is_err() {
                // The client is gone or stuck; make its reader thread notice.
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

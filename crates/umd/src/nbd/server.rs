//! The NBD server's sockets and threads: accept, negotiate, read requests, run
//! them on workers, write replies.
//!
//! It is the thin driver around the sans-I/O codec in [`super::proto`] (style R9):
//! policy (what to accept, which error to return) lives there; this file only
//! moves bytes and bounds the work in flight.
//!
//! Threads: one acceptor; per connection a thread that negotiates and then
//! serves as one of `workers_per_connection` workers (`server/transmission.rs`).
//! Workers take turns as the reader (leader/follower, as nbdkit's parallel
//! model does): the one holding the read side parses the next request and
//! reads a WRITE's payload into its own buffer, lets go, executes and replies.
//! Small READs already received together are taken as one batch
//! (`server/reader.rs`), read through one call into the export and answered
//! with one vectored write (`server/reads.rs`); the worker keeps the read side
//! after such a batch, so a stream of small reads costs no hand-off between
//! workers at all. No request changes threads, so none costs an extra wake-up;
//! requests in flight never exceed the workers (times a batch), and memory
//! never exceeds `workers × request_bytes_max` per connection (a batch is at
//! most 2 MiB). Each buffer grows to the largest request it has carried and
//! is reused: steady state allocates nothing. Write payloads go from the
//! socket (past at most one receive buffer) into the worker's buffer, and read
//! data from that buffer straight into a vectored `writev` with its reply
//! header: one copy each way.
//!
//! Exports: the server offers every export in its registry (`exports.rs`) by
//! name. A connection snapshots the registry for each negotiation option and,
//! once it chose, holds that export's `Arc` for its whole life, so a withdrawn
//! export keeps serving the connections that already use it.
//!
//! Locks, highest first (a thread may take a lower lock while holding a higher
//! one, never the reverse): `Shared::connections` (acceptor and shutdown only,
//! never held across I/O); `Shared::exports` (held only to copy, add or remove
//! entries, never across I/O or a call into an export other than its block size
//! queries); `Connection::reader` (held by one worker while it
//! reads one request; it may take `reply_writer` to answer a refused request);
//! `Connection::reply_writer` (held while one reply is written, so header and
//! payload stay contiguous).
//!
//! Shutdown: the listener is shut down (waking `accept`), every connection's read
//! side is shut down (waking its reader with end-of-file), readers stop taking
//! requests, workers finish the ones in flight and send their replies. A client
//! that stops reading replies is cut off after [`SHUTDOWN_GRACE`].

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::socket::{Listener, Stream};

use super::exports::{Registry, Snapshot};
use super::proto::{
    self, Command, ExpectClientFlags, ExportInfo, Limits, OptionOutcome, ProtoError, Request,
    CLIENT_FLAGS_LEN, OPTION_HEADER_LEN,
};
use super::{BlockExport, Listen, ServerConfig};

/// How long shutdown waits for connections to send their last replies before it
/// cuts them off; bounds shutdown when a client stops reading.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Polling interval while shutdown waits for connection threads to finish.
const SHUTDOWN_POLL: Duration = Duration::from_millis(10);
/// Pause after a failed `accept` (out of descriptors, say) so the acceptor does
/// not spin while the condition lasts.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);
/// Upper bound on `connections_max`: each connection costs threads and buffers.
pub const CONNECTIONS_MAX_LIMIT: usize = 1024;
/// Upper bound on `workers_per_connection`: deeper than any client's queue.
pub const WORKERS_PER_CONNECTION_LIMIT: usize = 256;
/// Write payload of a refused request that we still read and discard to keep the
/// stream in sync; a larger one closes the connection instead (the protocol allows
/// a disconnect when the server cannot read the payload). 64 MiB costs the server
/// only reader time, through a small stack buffer.
pub const REJECTED_PAYLOAD_DRAIN_BYTES_MAX: u32 = 64 << 20;

/// Why a connection ended early; logged, never surfaced to the caller.
#[derive(Debug)]
enum ConnectionError {
    /// The socket failed or the client vanished mid-message.
    Io(io::Error),
    /// The client broke the protocol.
    Proto(ProtoError),
}

impl From<io::Error> for ConnectionError {
    fn from(error: io::Error) -> Self {
        ConnectionError::Io(error)
    }
}

impl From<ProtoError> for ConnectionError {
    fn from(error: ProtoError) -> Self {
        ConnectionError::Proto(error)
    }
}

/// A bound, not yet serving, NBD server.
#[derive(Debug)]
pub struct NbdServer {
    listener: Listener,
    local: Listen,
    /// The Unix socket file we created, removed at shutdown.
    socket_path: Option<PathBuf>,
    exports: Registry,
    config: ServerConfig,
}

impl std::fmt::Debug for dyn BlockExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockExport({} bytes)", self.size_bytes())
    }
}

impl NbdServer {
    /// Binds the listener for one export, named `config.export_name` (which is
    /// also the default export). A Unix socket path must not exist yet.
    pub fn bind(
        listen: &Listen,
        export: Arc<dyn BlockExport>,
        config: ServerConfig,
    ) -> io::Result<NbdServer> {
        let name = config.export_name.clone();
        Self::bind_exports(listen, vec![(name, export)], config)
    }

    /// Binds the listener for several named exports; the first is the default
    /// export (what the empty name selects). `config.export_name` is not used:
    /// each export carries its name. The list may be empty: exports can be added
    /// to the running server ([`ServerHandle::add`]). Refuses duplicate or bad
    /// names, more than [`proto::EXPORTS_MAX`] exports, and block sizes the
    /// protocol cannot carry. A Unix socket path must not exist yet.
    pub fn bind_exports(
        listen: &Listen,
        exports: Vec<(String, Arc<dyn BlockExport>)>,
        config: ServerConfig,
    ) -> io::Result<NbdServer> {
        check_config(&config)?;
        let mut registry = Registry::new(config.request_bytes_max);
        for (name, export) in exports {
            registry.add(name, export)?;
        }
        let (listener, local, socket_path) = match listen {
            Listen::Unix(path) => {
                let listener = UnixListener::bind(path)?;
                (Listener::Unix(listener), listen.clone(), Some(path.clone()))
            }
            Listen::Tcp(addr) => {
                let listener = TcpListener::bind(addr)?;
                let local = Listen::Tcp(listener.local_addr()?);
                (Listener::Tcp(listener), local, None)
            }
        };
        Ok(NbdServer {
            listener,
            local,
            socket_path,
            exports: registry,
            config,
        })
    }

    /// Where the server listens, with the actual port for `tcp:...:0`.
    #[must_use]
    pub fn local_addr(&self) -> Listen {
        self.local.clone()
    }

    /// Starts the acceptor thread; the server runs until [`ServerHandle::shutdown`]
    /// (or the handle is dropped).
    #[must_use]
    pub fn spawn(self) -> ServerHandle {
        let shared = Arc::new(Shared {
            exports: Mutex::new(self.exports),
            config: self.config,
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        // A second descriptor for the same socket, so shutdown can wake `accept`.
        let waker = self.listener.try_clone().ok();
        let acceptor_shared = Arc::clone(&shared);
        let listener = self.listener;
        let acceptor = thread::Builder::new()
            .name("nbd-accept".to_owned())
            .spawn(move || accept_loop(&acceptor_shared, &listener));
        let acceptor = match acceptor {
            Ok(handle) => Some(handle),
            Err(error) => {
                warn!(%error, "nbd: cannot start the acceptor thread");
                None
            }
        };
        info!(listen = %self.local, "nbd: serving");
        ServerHandle {
            shared,
            waker,
            acceptor,
            local: self.local,
            socket_path: self.socket_path,
        }
    }
}

/// A running server; [`ServerHandle::shutdown`] or dropping it stops the server.
#[derive(Debug)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    waker: Option<Listener>,
    acceptor: Option<JoinHandle<()>>,
    local: Listen,
    socket_path: Option<PathBuf>,
}

impl ServerHandle {
    /// Where the server listens, with the actual port for `tcp:...:0`.
    #[must_use]
    pub fn local_addr(&self) -> Listen {
        self.local.clone()
    }

    /// Offers one more export as `name`, from the next negotiation option on.
    /// Refuses what [`NbdServer::bind_exports`] refuses.
    pub fn add(&self, name: impl Into<String>, export: Arc<dyn BlockExport>) -> io::Result<()> {
        let name = name.into();
        lock(&self.shared.exports).add(name.clone(), export)?;
        info!(name, "nbd: export added");
        Ok(())
    }

    /// Stops offering `name` (its array was stopped): new connections cannot
    /// choose it and `NBD_OPT_LIST` omits it. Connections already using it keep
    /// their reference and get whatever the export answers. Returns the export,
    /// or `None` if no export has that name.
    pub fn withdraw(&self, name: &str) -> Option<Arc<dyn BlockExport>> {
        let withdrawn = lock(&self.shared.exports).withdraw(name);
        if withdrawn.is_some() {
            info!(name, "nbd: export withdrawn");
        }
        withdrawn
    }

    /// The names offered now, in listing order.
    #[must_use]
    pub fn export_names(&self) -> Vec<String> {
        lock(&self.shared.exports).names()
    }

    /// Stops accepting, lets in-flight requests finish and their replies go out,
    /// closes every connection and joins every thread. Returns within about
    /// [`SHUTDOWN_GRACE`] even if a client stops reading.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(waker) = self.waker.take() {
            // Linux wakes a thread blocked in accept() when its socket is shut down.
            if let Err(error) = nix::sys::socket::shutdown(waker.raw_fd(), nix_shutdown_both()) {
                warn!(%error, "nbd: cannot shut down the listener");
            }
        }
        if let Some(acceptor) = self.acceptor.take() {
            if acceptor.join().is_err() {
                warn!("nbd: acceptor thread panicked");
            }
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        stop_connections(connections);
        if let Some(path) = self.socket_path.take() {
            if let Err(error) = std::fs::remove_file(&path) {
                debug!(%error, path = %path.display(), "nbd: cannot remove socket");
            }
        }
        info!(listen = %self.local, "nbd: stopped");
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (each
/// critical section is one push, removal or copy).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn nix_shutdown_both() -> nix::sys::socket::Shutdown {
    nix::sys::socket::Shutdown::Both
}

/// Ends every connection: read sides first (readers stop, replies still flow),
/// then, past the grace period, write sides too.
fn stop_connections(connections: Vec<ConnectionEntry>) {
    for entry in &connections {
        // Failure means the socket is already gone, which is what we want.
        let _ = entry.control.shutdown(Shutdown::Read);
    }
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while connections.iter().any(|e| !e.thread.is_finished()) && Instant::now() < deadline {
        thread::sleep(SHUTDOWN_POLL);
    }
    for entry in connections {
        if !entry.thread.is_finished() {
            warn!("nbd: client not reading replies; closing it");
            let _ = entry.control.shutdown(Shutdown::Both);
        }
        if entry.thread.join().is_err() {
            warn!("nbd: connection thread panicked");
        }
    }
}

/// State shared by the acceptor, the connections and the handle.
#[derive(Debug)]
struct Shared {
    /// The exports offered. Lock order: below `connections` (never taken
    /// together); held only to copy, add or remove entries.
    exports: Mutex<Registry>,
    config: ServerConfig,
    /// Set once by shutdown; readers and the acceptor check it between messages.
    stopping: AtomicBool,
    /// Live connections. Lock order: highest; held only to add, reap or take
    /// entries, never across I/O or a join of an unfinished thread.
    connections: Mutex<Vec<ConnectionEntry>>,
}

/// A connection's thread and a descriptor shutdown uses to wake it.
#[derive(Debug)]
struct ConnectionEntry {
    control: Stream,
    thread: JoinHandle<()>,
}

/// Accepts until shutdown. Runs for the server's life by design.
fn accept_loop(shared: &Arc<Shared>, listener: &Listener) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok(stream) => admit(shared, stream),
            Err(error) => {
                warn!(%error, "nbd: accept failed");
                thread::sleep(ACCEPT_RETRY_DELAY);
            }
        }
    }
}

/// Starts a connection thread, or closes the socket if `connections_max` are live.
fn admit(shared: &Arc<Shared>, stream: Stream) {
    let mut connections = lock(&shared.connections);
    let (finished, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *connections)
        .into_iter()
        .partition(|e| e.thread.is_finished());
    *connections = live;
    for entry in finished {
        // The thread has returned, so this join does not block.
        if entry.thread.join().is_err() {
            warn!("nbd: connection thread panicked");
        }
    }
    if connections.len() >= shared.config.connections_max {
        warn!(
            connections_max = shared.config.connections_max,
            "nbd: refusing connection"
        );
        return;
    }
    let control = match stream.try_clone() {
        Ok(control) => control,
        Err(error) => {
            warn!(%error, "nbd: cannot clone socket; dropping connection");
            return;
        }
    };
    let thread_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("nbd-conn".to_owned())
        .spawn(move || serve_connection(&thread_shared, stream));
    match spawned {
        Ok(thread) => connections.push(ConnectionEntry { control, thread }),
        Err(error) => warn!(%error, "nbd: cannot start connection thread"),
    }
    assert!(
        connections.len() <= shared.config.connections_max,
        "connection limit holds"
    );
}

fn serve_connection(shared: &Shared, mut stream: Stream) {
    let result = run_connection(shared, &mut stream);
    // The registry holds a clone of this socket for shutdown; without this the
    // client would not see the close until the entry is reaped.
    let _ = stream.shutdown(Shutdown::Both);
    match result {
        Ok(()) => debug!("nbd: client disconnected"),
        Err(ConnectionError::Io(error)) => info!(%error, "nbd: connection closed"),
        Err(ConnectionError::Proto(error)) => warn!(%error, "nbd: client broke the protocol"),
    }
}

fn run_connection(shared: &Shared, stream: &mut Stream) -> Result<(), ConnectionError> {
    // A fresh snapshot per option: the host may have resized an array, added or
    // withdrawn an export since the connection was accepted.
    let snapshot = || lock(&shared.exports).snapshot();
    let Negotiated::Transmission { info, export } = negotiate(stream, &snapshot)? else {
        return Ok(());
    };
    debug!(name = %info.name, "nbd: export chosen");
    export.client_opened();
    let result = transmission(shared, &info, &*export, stream);
    export.client_closed();
    result
}

/// How negotiation ended.
enum Negotiated {
    /// The client chose this export and transmission begins.
    Transmission {
        info: ExportInfo,
        export: Arc<dyn BlockExport>,
    },
    Closed,
}

/// Runs the handshake to its end, answering each option from a fresh
/// `snapshot()` of the exports. Bounded: the codec refuses more than
/// `OPTIONS_MAX` options, each at most `OPTION_DATA_BYTES_MAX` long.
fn negotiate<S: Read + Write>(
    stream: &mut S,
    snapshot: &dyn Fn() -> Snapshot,
) -> Result<Negotiated, ConnectionError> {
    stream.write_all(&proto::greeting())?;
    let mut flags = [0u8; CLIENT_FLAGS_LEN];
    stream.read_exact(&mut flags)?;
    let mut state = ExpectClientFlags.handle(flags)?;
    let mut data = Vec::new();
    let mut out = Vec::new();
    loop {
        let mut header = [0u8; OPTION_HEADER_LEN];
        stream.read_exact(&mut header)?;
        let header = proto::parse_option_header(header)?;
        data.resize(header.len as usize, 0);
        stream.read_exact(&mut data)?;
        out.clear();
        let exports = snapshot();
        let outcome = state.handle(header, &data, &exports.set(), &mut out)?;
        stream.write_all(&out)?;
        match outcome {
            OptionOutcome::Next(next) => state = next,
            OptionOutcome::Transmission(index) => {
                let (info, export) = exports.take(index);
                return Ok(Negotiated::Transmission { info, export });
            }
            OptionOutcome::Close => return Ok(Negotiated::Closed),
        }
    }
}

/// Grows `buf` to at least `len` bytes; never shrinks it, so a pooled buffer
/// allocates only while it grows toward the largest request it carries.
fn ensure_len(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

/// Runs one checked request against the export. Returns the NBD error (0 on
/// success) and how many bytes of `buf` are the READ payload.
fn execute(export: &dyn BlockExport, request: &Request, buf: &mut Vec<u8>) -> (u32, usize) {
    assert!(
        request.command != Command::Disc,
        "DISC never reaches a worker"
    );
    let len = request.length as usize;
    let len_bytes = u64::from(request.length);
    let is_range = !matches!(request.command, Command::Flush);
    if is_range && len == 0 {
        // Nothing to do; not every host accepts empty ranges, so stop here.
        return (0, 0);
    }
    let result = match request.command {
        Command::Read => {
            ensure_len(buf, len);
            export.read(request.offset, &mut buf[..len])
        }
        Command::Write => {
            assert!(buf.len() >= len, "the reader filled the payload");
            export.write(request.offset, &buf[..len], request.fua)
        }
        Command::Flush => export.flush(),
        Command::Trim => export.trim(request.offset, len_bytes).and_then(|()| {
            if request.fua {
                export.flush()
            } else {
                Ok(())
            }
        }),
        Command::WriteZeroes => export.write_zeroes(request.offset, len_bytes, request.fua),
        Command::Disc => return (proto::NBD_EINVAL, 0),
    };
    match result {
        Ok(()) if request.command == Command::Read => (0, len),
        Ok(()) => (0, 0),
        Err(error) => {
            debug!(
                command = ?request.command,
                offset = request.offset,
                len_bytes,
                %error,
                "nbd: request failed"
            );
            (proto::nbd_error_from_errno(error.errno), 0)
        }
    }
}

/// Writes one simple reply, header and payload in one vectored write where the
/// socket takes it all.
fn write_reply<W: Write>(w: &mut W, cookie: u64, error: u32, payload: &[u8]) -> io::Result<()> {
    assert!(
        error == 0 || payload.is_empty(),
        "an error reply carries no payload"
    );
    let header = proto::encode_simple_reply(cookie, error);
    let mut slices = [IoSlice::new(&header), IoSlice::new(payload)];
    let count = if payload.is_empty() { 1 } else { 2 };
    write_all_vectored(w, &mut slices[..count])
}

fn limits(info: &ExportInfo, read_only: bool, request_bytes_max: u32) -> Limits {
    Limits {
        size_bytes: info.size_bytes,
        request_bytes_max,
        read_only,
    }
}

fn check_config(config: &ServerConfig) -> io::Result<()> {
    let invalid = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, what.to_owned()));
    if config.connections_max == 0 || config.connections_max > CONNECTIONS_MAX_LIMIT {
        return invalid("connections_max must be between 1 and 1024");
    }
    if config.workers_per_connection == 0
        || config.workers_per_connection > WORKERS_PER_CONNECTION_LIMIT
    {
        return invalid("workers_per_connection must be between 1 and 256");
    }
    Ok(())
}

mod reader;
mod reads;
mod replay;
mod transmission;
use reader::{batchable, next_request, take_read_batch, Incoming, RecvBuffer, BATCH_REQUESTS_MAX};
use reads::{execute_reads, write_all_vectored, write_read_replies, BatchErrors};
pub(crate) use replay::serve_sequential;
use transmission::transmission;

//! The NBD export: serves running arrays to NBD clients (qemu, libnbd's
//! nbdcopy/nbdinfo, fio, the kernel's nbd client) over a Unix or TCP socket.
//!
//! The array host implements [`BlockExport`]; [`NbdServer::bind`] opens the
//! listener for one export, [`NbdServer::bind_exports`] for several named ones
//! (a DDF container's virtual disks), and [`NbdServer::spawn`] starts serving,
//! returning a [`ServerHandle`] that can add and withdraw exports at runtime and
//! whose [`ServerHandle::shutdown`] stops it. The wire codec is sans-I/O in
//! [`proto`]; the export registry lives in `exports.rs`, sockets and threads in
//! `server.rs`. Errors a client causes
//! become NBD error replies or a closed connection, never a panic, and never stop
//! the server from serving its other clients.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::str::FromStr;

use umd_engine::Errno;

mod exports;
#[doc(hidden)]
pub mod mem_export;
pub mod proto;
mod server;
mod socket;

pub use server::{
    NbdServer, ServerHandle, CONNECTIONS_MAX_LIMIT, REJECTED_PAYLOAD_DRAIN_BYTES_MAX,
    SHUTDOWN_GRACE, WORKERS_PER_CONNECTION_LIMIT,
};

/// A block device the NBD server exports: the array host implements it.
///
/// Every method may be called from several threads at once (one worker per
/// in-flight request, across all connections). Ranges passed to `read`, `write`,
/// `trim` and `write_zeroes` are already checked to lie inside `size_bytes()`, but
/// need not be aligned to `block_size_min()`: the server serves byte ranges.
pub trait BlockExport: Send + Sync + 'static {
    /// Size of the export in bytes; fixed while a client is connected.
    fn size_bytes(&self) -> u64;

    /// `NBD_INFO_BLOCK_SIZE` minimum: a power of two, at most 64 KiB.
    fn block_size_min(&self) -> u32 {
        512
    }

    /// `NBD_INFO_BLOCK_SIZE` preferred: a power of two (the array's chunk or
    /// stripe size avoids read-modify-write).
    fn block_size_preferred(&self) -> u32 {
        4096
    }

    /// True if writes must be refused (`NBD_FLAG_READ_ONLY`).
    fn read_only(&self) -> bool {
        false
    }

    /// One line for `NBD_OPT_LIST` and `NBD_INFO_DESCRIPTION` ("raid5, 4
    /// members"); empty for none. Cut to
    /// [`proto::NBD_DESCRIPTION_BYTES_MAX`] bytes.
    fn description(&self) -> String {
        String::new()
    }

    /// Fills `buf` from the export starting at byte `offset`.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), ExportError>;

    /// Fills each `(offset, buf)` of `reads`; `results[i]` gets request `i`'s
    /// outcome (`results` is as long as `reads`, every entry `Ok` on entry).
    /// The server calls this for the small READs it received together; an
    /// export that can submit them together should.
    fn read_batch(&self, reads: &mut [(u64, &mut [u8])], results: &mut [Result<(), ExportError>]) {
        assert_eq!(reads.len(), results.len(), "one result per read");
        for ((offset, buf), result) in reads.iter_mut().zip(results) {
            *result = self.read(*offset, buf);
        }
    }

    /// Writes `data` at byte `offset`; with `fua`, durable before returning.
    fn write(&self, offset: u64, data: &[u8], fua: bool) -> Result<(), ExportError>;

    /// A WRITE of `len` bytes at `offset` was parsed and its payload is being
    /// received; [`BlockExport::write`] with the same range follows, or
    /// [`BlockExport::write_withdraw`] if the payload never arrives. Lets a
    /// RAID export hold a neighbouring partial-stripe write for it briefly.
    fn write_announce(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }

    /// An announced WRITE will not be executed (its payload did not arrive).
    fn write_withdraw(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }

    /// Makes every completed write durable (`NBD_CMD_FLUSH`).
    fn flush(&self) -> Result<(), ExportError>;

    /// Discards a range; afterwards its contents are unspecified until written.
    fn trim(&self, offset: u64, len: u64) -> Result<(), ExportError>;

    /// Writes zeroes to a range; with `fua`, durable before returning.
    fn write_zeroes(&self, offset: u64, len: u64, fua: bool) -> Result<(), ExportError>;

    /// A client finished negotiation and entered transmission (md counts openers).
    fn client_opened(&self) {}

    /// A client that [`BlockExport::client_opened`] disconnected.
    fn client_closed(&self) {}
}

/// Why the export refused or failed a request; the errno becomes the NBD error
/// reply (see [`proto::nbd_error_from_errno`]) and the message is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportError {
    /// md's code for the failure.
    pub errno: Errno,
    /// One line for the log, naming the member or range involved.
    pub message: String,
}

impl ExportError {
    /// An error with this errno and message.
    #[must_use]
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
        }
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.errno.name(), self.message)
    }
}

impl std::error::Error for ExportError {}

/// Where the server listens: `unix:PATH` or `tcp:ADDR:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A Unix stream socket at this path (the default: no network exposure).
    Unix(PathBuf),
    /// A TCP address; port 0 picks a free port (see [`ServerHandle::local_addr`]).
    Tcp(SocketAddr),
}

/// Loopback is the default TCP address: exporting an array to the network must
/// be asked for by naming an address.
const TCP_ADDR_DEFAULT: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A `--nbd` value that is neither `unix:PATH` nor `tcp:[ADDR]:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenParseError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for ListenParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad listen address {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for ListenParseError {}

impl FromStr for Listen {
    type Err = ListenParseError;

    /// Parses `unix:PATH`, `tcp:ADDR:PORT`, `tcp:[V6]:PORT`, and `tcp:PORT` or
    /// `tcp::PORT`, which mean 127.0.0.1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |reason| ListenParseError {
            input: s.to_owned(),
            reason,
        };
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(error("unix: needs a socket path"));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        let Some(rest) = s.strip_prefix("tcp:") else {
            return Err(error("expected unix:PATH or tcp:ADDR:PORT"));
        };
        let port_only = rest.strip_prefix(':').unwrap_or(rest);
        if let Ok(port) = port_only.parse::<u16>() {
            return Ok(Listen::Tcp(SocketAddr::V4(SocketAddrV4::new(
                TCP_ADDR_DEFAULT,
                port,
            ))));
        }
        rest.parse::<SocketAddr>()
            .map(Listen::Tcp)
            .map_err(|_| error("expected tcp:PORT, tcp:ADDR:PORT or tcp:[ADDR]:PORT"))
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
            Listen::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// Server tunables; [`Default`] suits a local array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The name of the one export [`NbdServer::bind`] serves; clients may also ask
    /// for the empty (default) name. [`NbdServer::bind_exports`] does not use it:
    /// each of its exports carries its own name.
    pub export_name: String,
    /// Connections served at once; more are accepted and closed at once.
    pub connections_max: usize,
    /// Requests one connection executes in parallel; each worker owns one buffer
    /// of up to `request_bytes_max`, so this bounds memory per connection.
    pub workers_per_connection: usize,
    /// Largest READ or WRITE payload, advertised as the maximum block size.
    pub request_bytes_max: u32,
}

/// Default connections: enough for fio or nbdcopy multi-conn (which open 4-8) with
/// room for a second tool, while bounding threads to 16 × workers.
pub const CONNECTIONS_MAX_DEFAULT: usize = 16;
/// Default workers per connection: matches the queue depth clients use by default
/// (nbdcopy 64 requests over 4 connections, qemu 16) on a few cores.
pub const WORKERS_PER_CONNECTION_DEFAULT: usize = 8;
/// Default request limit, 32 MiB: the Linux nbd driver and qemu never send more,
/// and libnbd caps its requests at 32 MiB too.
pub const REQUEST_BYTES_MAX_DEFAULT: u32 = 32 << 20;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            export_name: String::new(),
            connections_max: CONNECTIONS_MAX_DEFAULT,
            workers_per_connection: WORKERS_PER_CONNECTION_DEFAULT,
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
        }
    }
}

/// Fuzzing entry points (style R21); not part of the API.
#[doc(hidden)]
pub mod fuzz {
    use std::sync::Arc;

    use super::exports::Registry;
    use super::mem_export::MemExport;
    use super::server;

    /// Export size for fuzzing: small, so every range check is reachable.
    const FUZZ_EXPORT_BYTES: u64 = 1 << 20;
    /// Request limit for fuzzing: small, so the oversized paths are reachable.
    const FUZZ_REQUEST_BYTES_MAX: u32 = 64 << 10;

    /// Feeds `data` as a client's whole byte stream (handshake, then requests)
    /// through the codec against two in-memory exports, `fuzz` (the default)
    /// and a read-only `ro`, so name lookup and per-export limits are reached.
    /// Never panics.
    pub fn request_stream(data: &[u8]) {
        let mut exports = Registry::new(FUZZ_REQUEST_BYTES_MAX);
        let named = [
            ("fuzz", MemExport::new(FUZZ_EXPORT_BYTES)),
            (
                "ro",
                MemExport::with_contents(vec![0; FUZZ_EXPORT_BYTES as usize / 2], true),
            ),
        ];
        for (name, export) in named {
            exports
                .add(name.to_owned(), Arc::new(export))
                .expect("fuzz exports are valid and distinct");
        }
        server::serve_sequential(data, &exports, FUZZ_REQUEST_BYTES_MAX);
    }
}

//! The manager socket's client: what tools call to reach a container's
//! manager (mdadm's `ping_monitor`, `ping_manager` and metadata updates).
//!
//! Each call has one deadline for the whole exchange (send and reply). The
//! manager closes a connection that stays idle for its message timeout (3 s),
//! so a [`MonClient`] is for a burst of requests, as mdadm's
//! `flush_metadata_updates` sends them: every update, then one monitor ping.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::proto::{FrameDecoder, FrameError, Refusal, Reply, Request, UPDATE_BYTES_MAX};

/// How long a call waits by default: mdadm's 20 s, well above the manager's
/// own limit on waiting for a monitor pass, so a stalled monitor is reported
/// by the manager rather than by our timeout.
pub const CLIENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(20);
/// Bytes read from the socket per call; replies are short.
const READ_CHUNK_BYTES: usize = 512;

/// Why a call to the manager failed. Each names the container and socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Nobody serves the socket: no manager runs for the container.
    NoManager {
        /// The container (the socket's file stem).
        container: String,
        /// The socket tried.
        path: PathBuf,
        /// What `connect` said.
        source: io::Error,
    },
    /// The manager did not answer within the call's timeout.
    TimedOut {
        /// The container.
        container: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The manager refused the request.
    Refused {
        /// The container.
        container: String,
        /// Why.
        refusal: Refusal,
    },
    /// The manager closed the connection before answering.
    Closed {
        /// The container.
        container: String,
    },
    /// The manager sent something that is not the protocol, or not the reply
    /// this request expects.
    Protocol {
        /// The container.
        container: String,
        /// What was wrong.
        reason: String,
    },
    /// The update cannot be sent: empty, or larger than [`UPDATE_BYTES_MAX`].
    UpdateSize {
        /// Its length.
        len: usize,
    },
    /// The connection failed mid-exchange.
    Io {
        /// The container.
        container: String,
        /// The system's error.
        source: io::Error,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NoManager {
                container,
                path,
                source,
            } => write!(
                f,
                "no manager for {container} at {} ({source})",
                path.display()
            ),
            ClientError::TimedOut { container, waited } => {
                write!(
                    f,
                    "the manager for {container} did not answer within {waited:?}"
                )
            }
            ClientError::Refused { container, refusal } => {
                write!(f, "the manager for {container} refused: {refusal}")
            }
            ClientError::Closed { container } => write!(
                f,
                "the manager for {container} closed the connection without answering"
            ),
            ClientError::Protocol { container, reason } => {
                write!(
                    f,
                    "the manager for {container} broke the protocol: {reason}"
                )
            }
            ClientError::UpdateSize { len } => write!(
                f,
                "a metadata update of {len} bytes cannot be sent (1 to {UPDATE_BYTES_MAX})"
            ),
            ClientError::Io { container, source } => {
                write!(
                    f,
                    "connection to the manager for {container} failed: {source}"
                )
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::NoManager { source, .. } | ClientError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The container a socket path belongs to: its file stem (`md127.sock` → `md127`).
fn container_of(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// One connection to a manager.
#[derive(Debug)]
pub struct MonClient {
    stream: UnixStream,
    container: String,
    timeout: Duration,
}

impl MonClient {
    /// Connects to the manager socket at `path`; each later call waits at most
    /// `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<MonClient, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::NoManager {
            container: container_of(path),
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::from_stream(stream, path, timeout))
    }

    /// A client on an already connected socket (the claim's liveness probe).
    pub(super) fn from_stream(stream: UnixStream, path: &Path, timeout: Duration) -> MonClient {
        MonClient {
            stream,
            container: container_of(path),
            timeout,
        }
    }

    /// Queues a metadata update (1 to [`UPDATE_BYTES_MAX`] bytes); returns once
    /// the manager acknowledged it as queued, not once it is written: follow
    /// with [`MonClient::ping_monitor`] for that.
    pub fn send_update(&mut self, blob: &[u8]) -> Result<(), ClientError> {
        if blob.is_empty() || blob.len() > UPDATE_BYTES_MAX {
            return Err(ClientError::UpdateSize { len: blob.len() });
        }
        match self.call(&Request::Update(blob.to_vec()))? {
            Reply::Ack => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Returns once the monitor completed a full pass that started after the
    /// ping arrived (everything queued before is applied and written), with the
    /// manager's version string.
    pub fn ping_monitor(&mut self) -> Result<String, ClientError> {
        match self.call(&Request::PingMonitor)? {
            Reply::Version(version) => Ok(version),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Asks the manager to look for changed arrays now; answered at once.
    pub fn ping_manager(&mut self) -> Result<(), ClientError> {
        match self.call(&Request::PingManager)? {
            Reply::Ack => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Sends `request` and reads its reply, within one deadline.
    fn call(&mut self, request: &Request) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let mut wire = Vec::new();
        request.encode(&mut wire);
        self.write_all(&wire, deadline)?;
        let reply = self.read_reply(deadline)?;
        if let Reply::Refused(refusal) = reply {
            return Err(ClientError::Refused {
                container: self.container.clone(),
                refusal,
            });
        }
        Ok(reply)
    }

    fn write_all(&mut self, mut wire: &[u8], deadline: Instant) -> Result<(), ClientError> {
        // Bounded by the deadline: every pass writes at least one byte or fails.
        while !wire.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out());
            }
            self.stream
                .set_write_timeout(Some(left))
                .map_err(|source| self.io(source))?;
            match self.stream.write(wire) {
                Ok(0) => {
                    return Err(ClientError::Closed {
                        container: self.container.clone(),
                    })
                }
                Ok(n) => wire = &wire[n..],
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.classify(error)),
            }
        }
        Ok(())
    }

    fn read_reply(&mut self, deadline: Instant) -> Result<Reply, ClientError> {
        let mut decoder = FrameDecoder::default();
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        // Bounded by the deadline and by the frame size the decoder accepts.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out());
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|source| self.io(source))?;
            let want = decoder.needed().min(READ_CHUNK_BYTES);
            let n = match self.stream.read(&mut chunk[..want]) {
                Ok(0) => {
                    return Err(ClientError::Closed {
                        container: self.container.clone(),
                    })
                }
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(self.classify(error)),
            };
            let frame = decoder
                .push(&chunk[..n])
                .map_err(|error| self.protocol(&error))?;
            if let Some(frame) = frame {
                return Reply::from_frame(frame).map_err(|error| self.protocol(&error));
            }
        }
    }

    fn timed_out(&self) -> ClientError {
        ClientError::TimedOut {
            container: self.container.clone(),
            waited: self.timeout,
        }
    }

    /// A socket error: a timeout, the manager hanging up, or a real failure.
    fn classify(&self, error: io::Error) -> ClientError {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.timed_out(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ClientError::Closed {
                container: self.container.clone(),
            },
            _ => self.io(error),
        }
    }

    fn io(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            container: self.container.clone(),
            source,
        }
    }

    fn protocol(&self, error: &FrameError) -> ClientError {
        ClientError::Protocol {
            container: self.container.clone(),
            reason: error.to_string(),
        }
    }

    fn unexpected(&self, reply: &Reply) -> ClientError {
        ClientError::Protocol {
            container: self.container.clone(),
            reason: format!("unexpected reply {reply:?}"),
        }
    }
}

/// mdadm's `ping_monitor`: returns once the manager's monitor completed a full
/// pass that started after the ping (so metadata updates sent before are
/// written), or fails after `timeout`. Returns the manager's version.
pub fn ping_monitor(path: &Path, timeout: Duration) -> Result<String, ClientError> {
    MonClient::connect(path, timeout)?.ping_monitor()
}

/// mdadm's `ping_manager`: asks the manager at `path` to look for changed
/// arrays now, waiting at most [`CLIENT_TIMEOUT_DEFAULT`] for its answer.
pub fn ping_manager(path: &Path) -> Result<(), ClientError> {
    MonClient::connect(path, CLIENT_TIMEOUT_DEFAULT)?.ping_manager()
}

/// Queues one metadata update with the manager at `path` (acknowledged once
/// queued), waiting at most [`CLIENT_TIMEOUT_DEFAULT`].
pub fn send_update(path: &Path, blob: &[u8]) -> Result<(), ClientError> {
    MonClient::connect(path, CLIENT_TIMEOUT_DEFAULT)?.send_update(blob)
}

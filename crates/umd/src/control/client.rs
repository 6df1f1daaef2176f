//! The control client: one request per connection, or a long-lived watch.
//!
//! `umd ctl`, `umd status` and the metadata manager talk to a running array through
//! these functions. Each opens its own connection, so callers need no state and a
//! server restart between calls is harmless.

use super::proto::{self, Frame, LineFramer, Reply, Request};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use umd_engine::EngineError;

/// How long `get`, `set` and `list` wait for the server. A store may wait on md's
/// configuration lock, but never on another process (R9), so a server silent this long
/// is stuck and `umd status` should move on.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes read from the socket per call.
const READ_CHUNK_BYTES: usize = 4096;

/// Why a control request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused: md's errno and what was wrong. This is md's answer, not a fault.
    Engine(EngineError),
    /// Nobody answers on the socket (no array running, or a stale socket file).
    Connect {
        /// The socket tried.
        path: PathBuf,
        /// What `connect` said.
        source: io::Error,
    },
    /// The connection failed or timed out mid-conversation.
    Io(io::Error),
    /// The server sent something that is not the control protocol.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Engine(e) => write!(f, "{}: {}", e.errno, e.message),
            ClientError::Connect { path, source } => {
                write!(f, "cannot connect to {}: {source}", path.display())
            }
            ClientError::Io(e) => write!(f, "control connection failed: {e}"),
            ClientError::Protocol(m) => write!(f, "control protocol violation: {m}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Engine(e) => Some(e),
            ClientError::Connect { source, .. } | ClientError::Io(source) => Some(source),
            ClientError::Protocol(_) => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// One connection to a control socket.
struct Connection {
    stream: UnixStream,
    framer: LineFramer,
}

impl Connection {
    fn open(path: &Path, timeout: Option<Duration>) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        Ok(Self {
            stream,
            framer: LineFramer::default(),
        })
    }

    fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        Ok(self.stream.write_all(request.encode().as_bytes())?)
    }

    fn recv(&mut self) -> Result<Reply, ClientError> {
        let mut chunk = [0_u8; READ_CHUNK_BYTES];
        loop {
            match self.framer.next_frame() {
                Some(Frame::Line(line)) => {
                    return proto::decode_reply(&line).map_err(|e| ClientError::Protocol(e.0))
                }
                Some(Frame::TooLong) => {
                    return Err(ClientError::Protocol("reply line too long".into()))
                }
                None => {}
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
            self.framer.push(&chunk[..n]);
        }
    }
}

fn unexpected(reply: &Reply) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {reply:?}"))
}

/// Read attribute `attr` (md's sysfs name) of the array served at `path`.
pub fn get(path: &Path, attr: &str) -> Result<String, ClientError> {
    Session::open(path)?.get(attr)
}

/// Write `value` to attribute `attr`; md's refusal comes back as [`ClientError::Engine`].
pub fn set(path: &Path, attr: &str, value: &str) -> Result<(), ClientError> {
    Session::open(path)?.set(attr, value)
}

/// Every attribute name the array serves.
pub fn list(path: &Path) -> Result<Vec<String>, ClientError> {
    Session::open(path)?.list()
}

/// One connection kept open for many requests: the metadata manager reads a
/// few dozen attributes per pass, and a connection each would cost the
/// server a thread each.
pub struct Session {
    connection: Connection,
}

impl Session {
    /// Connect to the control socket at `path`.
    pub fn open(path: &Path) -> Result<Self, ClientError> {
        Ok(Self {
            connection: Connection::open(path, Some(REPLY_TIMEOUT))?,
        })
    }

    fn call(&mut self, request: &Request) -> Result<Option<String>, ClientError> {
        self.connection.send(request)?;
        match self.connection.recv()? {
            Reply::Ok(value) => Ok(value),
            Reply::Err(e) => Err(ClientError::Engine(e)),
            other => Err(unexpected(&other)),
        }
    }

    /// Read attribute `attr`.
    pub fn get(&mut self, attr: &str) -> Result<String, ClientError> {
        let value = self.call(&Request::Get(attr.to_owned()))?;
        value.ok_or_else(|| ClientError::Protocol("get answered without a value".into()))
    }

    /// Write `value` to attribute `attr`.
    pub fn set(&mut self, attr: &str, value: &str) -> Result<(), ClientError> {
        let request = Request::Set {
            attr: attr.to_owned(),
            value: value.to_owned(),
        };
        match self.call(&request)? {
            None => Ok(()),
            Some(_) => Err(ClientError::Protocol("set answered with a value".into())),
        }
    }

    /// Every attribute name the array serves.
    pub fn list(&mut self) -> Result<Vec<String>, ClientError> {
        let names = self.call(&Request::List)?.unwrap_or_default();
        Ok(names
            .split('\n')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// Watch `attrs`: `on_event(attr, value)` runs once per attribute with its current value,
/// then once per change, until it returns `false` (then `Ok`) or the connection fails.
/// Blocks the calling thread without a timeout: changes may be hours apart.
pub fn watch(
    path: &Path,
    attrs: &[String],
    mut on_event: impl FnMut(&str, &str) -> bool,
) -> Result<(), ClientError> {
    let mut connection = Connection::open(path, None)?;
    connection.send(&Request::Watch(attrs.to_vec()))?;
    match connection.recv()? {
        Reply::Ok(None) => {}
        Reply::Err(e) => return Err(ClientError::Engine(e)),
        other => return Err(unexpected(&other)),
    }
    loop {
        match connection.recv()? {
            Reply::Event { attr, value } => {
                if !on_event(&attr, &value) {
                    return Ok(());
                }
            }
            // A member's attributes vanish when it is removed; the other attributes
            // are still worth watching, as a sysfs poller would keep its other files.
            Reply::EventErr { attr, error } => {
                tracing::warn!(attr, error = %error, "watched attribute unreadable");
            }
            other => return Err(unexpected(&other)),
        }
    }
}

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
            let n = match self.stream.read(&mut chunk) {
                // A stop and continue (SIGSTOP, a debugger) interrupts a read
                // that has a timeout even without a handler: the reply is
                // still coming.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
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
///
/// An exchange that failed half way (a timeout, a broken pipe, a garbled
/// reply) leaves a reply of unknown fate on the connection; the next call
/// would read it as its own. So a failed exchange drops the connection, and
/// the next call opens a new one.
pub struct Session {
    path: PathBuf,
    connection: Option<Connection>,
}

impl Session {
    /// Connect to the control socket at `path`.
    pub fn open(path: &Path) -> Result<Self, ClientError> {
        Ok(Self {
            path: path.to_owned(),
            connection: Some(Connection::open(path, Some(REPLY_TIMEOUT))?),
        })
    }

    fn call(&mut self, request: &Request) -> Result<Option<String>, ClientError> {
        let connection = match &mut self.connection {
            Some(c) => c,
            None => self
                .connection
                .insert(Connection::open(&self.path, Some(REPLY_TIMEOUT))?),
        };
        let reply = connection.send(request).and_then(|()| connection.recv());
        match reply {
            Ok(Reply::Ok(value)) => Ok(value),
            Ok(Reply::Err(e)) => Err(ClientError::Engine(e)),
            Ok(other) => {
                self.connection = None;
                Err(unexpected(&other))
            }
            Err(e) => {
                self.connection = None;
                Err(e)
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    /// A session whose exchange broke half way must not read the late reply
    /// as the answer to its next request: it reconnects instead.
    #[test]
    fn a_broken_exchange_reconnects_instead_of_reading_a_stale_reply() {
        let dir = std::env::temp_dir().join(format!("umd-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("control");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            // First connection: read the request, answer garbage, then the
            // real value late (as a reply that outlived its caller would).
            let (first, _) = listener.accept().expect("accept");
            let mut lines = BufReader::new(first.try_clone().expect("clone"));
            let mut line = String::new();
            lines.read_line(&mut line).expect("request");
            let mut w = first;
            w.write_all(b"\x00garbage\n").expect("garbage");
            // The client may have hung up already.
            let _ = w.write_all(proto::encode_ok(Some("stale")).as_bytes());
            // Second connection: a clean answer.
            let (second, _) = listener.accept().expect("accept again");
            let mut lines = BufReader::new(second.try_clone().expect("clone"));
            line.clear();
            lines.read_line(&mut line).expect("request");
            let mut w = second;
            w.write_all(proto::encode_ok(Some("fresh")).as_bytes())
                .expect("answer");
        });
        let mut session = Session::open(&path).expect("open");
        assert!(session.get("array_state").is_err(), "garbage is an error");
        assert_eq!(session.get("array_state").expect("second get"), "fresh");
        server.join().expect("server");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

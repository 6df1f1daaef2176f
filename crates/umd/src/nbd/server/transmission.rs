//! One connection in transmission: its workers, which take turns reading
//! requests (leader/follower), run them and send the replies.
//!
//! Why: no request changes threads, so none costs an extra wake-up; at most
//! `workers_per_connection` requests (or batches of small READs) are in
//! flight; each worker owns one buffer, grown once. Locks: `Connection::reader`
//! (held by the worker whose turn it is to read) above
//! `Connection::reply_writer` (held for one reply or one batch's replies).

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

use tracing::{debug, warn};

use super::super::proto::{Command, ExportInfo, Limits, Request};
use super::super::socket::Stream;
use super::super::BlockExport;
use super::reader::{
    batchable, next_request, take_read_batch, Incoming, RecvBuffer, BATCH_REQUESTS_MAX,
};
use super::reads::{execute_reads, write_read_replies, BatchErrors};
use super::{ensure_len, execute, limits, write_reply, ConnectionError, Shared};

/// Per-connection state shared by its workers.
///
/// Workers take turns as the reader (leader/follower): the one holding
/// `reader` parses the next request and reads its payload into its own
/// buffer (or takes every small READ already received, `reader.rs`),
/// releases the lock, executes and replies. No request is handed from
/// thread to thread, so a request costs no extra wake-up, and at most
/// `workers_per_connection` requests (or batches) are in flight.
struct Connection<'a> {
    export: &'a dyn BlockExport,
    /// The socket's write side. Lock order: lowest; held for one reply's write.
    reply_writer: Mutex<Stream>,
    /// The socket's read side. Lock order: above `reply_writer`; held by one
    /// worker while it reads one request (header and payload), never while
    /// a request executes.
    reader: Mutex<ReadSide<'a>>,
    /// Set when a reply could not be written; the readers then stop.
    broken: AtomicBool,
}

/// What the worker holding [`Connection::reader`] owns.
struct ReadSide<'a> {
    stream: &'a mut Stream,
    /// Received and not yet parsed.
    rbuf: RecvBuffer,
    /// No more requests will be read (end of stream, DISC, error, shutdown).
    done: bool,
    /// Why reading stopped, if it was an error.
    error: Option<ConnectionError>,
}

impl Connection<'_> {
    fn send_reply(&self, cookie: u64, error: u32, payload: &[u8]) -> io::Result<()> {
        let mut writer = self
            .reply_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let written = write_reply(&mut *writer, cookie, error, payload);
        if written.is_err() {
            self.broken.store(true, Ordering::SeqCst);
            // Wake the reader: replies can no longer reach the client.
            let _ = writer.shutdown(Shutdown::Both);
        }
        written
    }

    /// Send the replies of a batch of READs, under one hold of the writer.
    fn send_read_replies(
        &self,
        batch: &[Request],
        errors: &BatchErrors,
        buf: &[u8],
    ) -> io::Result<()> {
        let mut writer = self
            .reply_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let written = write_read_replies(&mut *writer, batch, errors, buf);
        if written.is_err() {
            self.broken.store(true, Ordering::SeqCst);
            let _ = writer.shutdown(Shutdown::Both);
        }
        written
    }
}

/// Serves requests on the chosen `export` until the client leaves, then lets
/// in-flight ones finish.
pub(super) fn transmission(
    shared: &Shared,
    info: &ExportInfo,
    export: &dyn BlockExport,
    stream: &mut Stream,
) -> Result<(), ConnectionError> {
    let workers = shared.config.workers_per_connection;
    assert!(workers >= 1, "config checked at bind");
    let conn = Connection {
        export,
        reply_writer: Mutex::new(stream.try_clone()?),
        reader: Mutex::new(ReadSide {
            stream,
            rbuf: RecvBuffer::new(),
            done: false,
            error: None,
        }),
        broken: AtomicBool::new(false),
    };
    let limits = limits(info, export.read_only(), shared.config.request_bytes_max);
    thread::scope(|scope| {
        let mut started = 0usize;
        for _ in 1..workers {
            let spawned = thread::Builder::new()
                .name("nbd-worker".to_owned())
                .spawn_scoped(scope, || worker(&conn, &limits, &shared.stopping));
            match spawned {
                Ok(_) => started += 1,
                // Fewer workers only means less parallelism: this thread serves too.
                Err(error) => warn!(%error, "nbd: cannot start a worker"),
            }
        }
        debug!(workers = started + 1, "nbd: serving");
        worker(&conn, &limits, &shared.stopping);
    });
    let side = conn
        .reader
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    match side.error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Take a turn as the reader. Leaves in `batch` either one request (a
/// WRITE's payload in `buf`) or a run of small READs; false when the
/// connection is done (the reason is recorded).
fn read_one(
    conn: &Connection<'_>,
    side: &mut ReadSide<'_>,
    limits: &Limits,
    stopping: &AtomicBool,
    (buf, batch): (&mut Vec<u8>, &mut Vec<Request>),
) -> bool {
    batch.clear();
    loop {
        if side.done {
            return false;
        }
        if stopping.load(Ordering::SeqCst) || conn.broken.load(Ordering::SeqCst) {
            side.done = true;
            return false;
        }
        let outcome = match next_request(&mut side.rbuf, side.stream, limits) {
            Ok(Incoming::Eof | Incoming::Disc) => Ok(None),
            Ok(Incoming::Refused(rejection)) => conn
                .send_reply(rejection.cookie, rejection.error, &[])
                .map_err(ConnectionError::from)
                .map(|()| Some(None)),
            Ok(Incoming::Request(request)) => {
                receive_payload(conn, side, limits, &request, buf).map(|()| Some(Some(request)))
            }
            Err(error) => Err(error),
        };
        match outcome {
            // A refused request was answered: read the next one.
            Ok(Some(None)) => {}
            Ok(Some(Some(request))) => {
                batch.push(request);
                if batchable(&request) {
                    take_read_batch(&mut side.rbuf, limits, batch);
                }
                return true;
            }
            Ok(None) => {
                side.done = true;
                return false;
            }
            Err(error) => {
                side.done = true;
                side.error = Some(error);
                return false;
            }
        }
    }
}

/// A WRITE's payload into `buf`, announced to the export while it arrives.
fn receive_payload(
    conn: &Connection<'_>,
    side: &mut ReadSide<'_>,
    limits: &Limits,
    request: &Request,
    buf: &mut Vec<u8>,
) -> Result<(), ConnectionError> {
    if request.command != Command::Write {
        return Ok(());
    }
    let len = request.length as usize;
    assert!(
        request.length <= limits.request_bytes_max,
        "checked by check_request"
    );
    ensure_len(buf, len);
    let (offset, len_bytes) = (request.offset, u64::from(request.length));
    conn.export.write_announce(offset, len_bytes);
    let payload = side.rbuf.read_payload(side.stream, &mut buf[..len]);
    if payload.is_err() {
        conn.export.write_withdraw(offset, len_bytes);
    }
    payload.map_err(ConnectionError::from)
}

/// A worker: reads a request (or a batch of small READs) in its turn, runs
/// it and sends the replies, until the connection is done. Each worker owns
/// one buffer, grown once, and one batch table.
///
/// After a batch of small READs the worker keeps the read side: the next
/// requests have been arriving while it served the batch, and handing the
/// socket to another worker would cost a wake-up per batch and leave each
/// batch smaller (the next reader finds only what trickled in meanwhile).
/// Any other request (a WRITE, a large READ, a FLUSH) hands the read side
/// over before it runs, so those still run side by side.
fn worker(conn: &Connection<'_>, limits: &Limits, stopping: &AtomicBool) {
    let mut buf = Vec::new();
    let mut batch = Vec::with_capacity(BATCH_REQUESTS_MAX);
    let mut errors: BatchErrors = [0; BATCH_REQUESTS_MAX];
    let mut lead = None;
    loop {
        let side =
            lead.get_or_insert_with(|| conn.reader.lock().unwrap_or_else(PoisonError::into_inner));
        if !read_one(conn, side, limits, stopping, (&mut buf, &mut batch)) {
            return;
        }
        let sent = if batchable(&batch[0]) {
            execute_reads(conn.export, &batch, &mut buf, &mut errors);
            conn.send_read_replies(&batch, &errors, &buf)
        } else {
            lead = None;
            let request = batch[0];
            let (error, payload_len) = execute(conn.export, &request, &mut buf);
            conn.send_reply(request.cookie, error, &buf[..payload_len])
        };
        if let Err(error) = sent {
            debug!(%error, "nbd: reply not sent");
            return;
        }
    }
}

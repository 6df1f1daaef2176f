//! The fuzzing path: one client's whole byte stream served on the calling
//! thread, through the same negotiation, request parsing, execution and
//! reply encoding as the threaded server, with no sockets.

use super::{
    batchable, ensure_len, execute, execute_reads, limits, negotiate, next_request,
    take_read_batch, write_read_replies, write_reply, BatchErrors, Incoming, Negotiated,
    RecvBuffer, Registry, BATCH_REQUESTS_MAX,
};
use std::io::{self, Read, Write};

/// A client's byte stream from memory; replies go nowhere.
struct Replay<'a> {
    input: &'a [u8],
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serves `input` as one client's whole byte stream on the calling thread, with
/// the codec and request path the threaded server uses (fuzzing entry point).
/// The client may choose any export in `exports`.
pub(crate) fn serve_sequential(input: &[u8], exports: &Registry, request_bytes_max: u32) {
    let mut stream = Replay { input };
    let snapshot = || exports.snapshot();
    let Ok(Negotiated::Transmission { info, export }) = negotiate(&mut stream, &snapshot) else {
        return;
    };
    let export = &*export;
    export.client_opened();
    let limits = limits(&info, export.read_only(), request_bytes_max);
    let mut buf = Vec::new();
    let mut rbuf = RecvBuffer::new();
    let mut batch = Vec::with_capacity(BATCH_REQUESTS_MAX);
    let mut errors: BatchErrors = [0; BATCH_REQUESTS_MAX];
    // Bounded by the input: every pass consumes at least one request header.
    while let Ok(incoming) = next_request(&mut rbuf, &mut stream, &limits) {
        let request = match incoming {
            Incoming::Eof | Incoming::Disc => break,
            Incoming::Refused(rejection) => {
                let _ = write_reply(&mut stream, rejection.cookie, rejection.error, &[]);
                continue;
            }
            Incoming::Request(request) => request,
        };
        if batchable(&request) {
            batch.clear();
            batch.push(request);
            take_read_batch(&mut rbuf, &limits, &mut batch);
            execute_reads(export, &batch, &mut buf, &mut errors);
            let _ = write_read_replies(&mut stream, &batch, &errors, &buf);
            continue;
        }
        if request.command == super::Command::Write {
            let len = request.length as usize;
            ensure_len(&mut buf, len);
            if rbuf.read_payload(&mut stream, &mut buf[..len]).is_err() {
                break;
            }
        }
        let (error, payload_len) = execute(export, &request, &mut buf);
        let _ = write_reply(&mut stream, request.cookie, error, &buf[..payload_len]);
    }
    export.client_closed();
}

//! A connection's request stream: a receive buffer over the socket, request
//! headers parsed out of it, payloads drained from it, and runs of small
//! READs taken together as one batch.
//!
//! Why: a client at queue depth sends requests back to back, so one `recv`
//! into a buffer brings in many headers at once. The worker whose turn it is
//! to read then takes every small READ already buffered ([`take_read_batch`])
//! and answers them with one call into the export and one vectored write:
//! per request, no system call to read it and no hand-off to another worker.
//! (4 KiB random reads at queue depth 32 spent most of their time switching
//! between workers that each read one header.) Nothing ever waits for a
//! batch to fill: it is what the buffer holds.
//!
//! Limits: the buffer is [`RECV_BUFFER_BYTES`]; a batch has at most
//! [`BATCH_REQUESTS_MAX`] READs of at most [`BATCH_READ_BYTES_MAX`] each and
//! [`BATCH_PAYLOAD_BYTES_MAX`] in all; a refused WRITE's payload is skipped
//! only up to [`super::REJECTED_PAYLOAD_DRAIN_BYTES_MAX`].

use std::io::{self, Read};

use super::super::proto::{self, Command, Limits, Rejection, Request, REQUEST_HEADER_LEN};
use super::{ConnectionError, REJECTED_PAYLOAD_DRAIN_BYTES_MAX};

/// Bytes received at most per `recv`: hundreds of request headers, and the
/// start of a write payload (the rest goes straight into the worker's buffer).
pub(crate) const RECV_BUFFER_BYTES: usize = 64 << 10;

/// Most READs answered together: one vectored reply of twice as many slices
/// stays far below the kernel's `IOV_MAX` (1024).
pub(crate) const BATCH_REQUESTS_MAX: usize = 64;

/// Largest READ that joins a batch. Larger ones are served alone, so the
/// reads of one worker never hold up a batch's replies by much.
pub(crate) const BATCH_READ_BYTES_MAX: u32 = 128 << 10;

/// Payload of one batch at most (the worker's buffer holds it whole).
pub(crate) const BATCH_PAYLOAD_BYTES_MAX: usize = 2 << 20;

const _: () = assert!(RECV_BUFFER_BYTES >= REQUEST_HEADER_LEN);
const _: () = assert!(BATCH_READ_BYTES_MAX as usize <= BATCH_PAYLOAD_BYTES_MAX);

/// One step of the request stream, after header checks and payload skipping.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// The client closed the socket between requests.
    Eof,
    /// `NBD_CMD_DISC`.
    Disc,
    /// Refused; its payload is already skipped, the caller sends the error reply.
    Refused(Rejection),
    /// Valid; a WRITE's payload is still to be read ([`RecvBuffer::read_payload`]).
    Request(Request),
}

/// Bytes received from the socket and not consumed yet: `buf[start..end]`.
pub(crate) struct RecvBuffer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl RecvBuffer {
    pub(crate) fn new() -> Self {
        Self {
            buf: vec![0; RECV_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Have at least `n` bytes buffered, reading as much as the socket has.
    /// False if the stream ended with nothing buffered (a clean close).
    fn fill<R: Read>(&mut self, stream: &mut R, n: usize) -> io::Result<bool> {
        assert!(n <= self.buf.len(), "fill of {n} bytes");
        if self.buffered() >= n {
            return Ok(true);
        }
        self.buf.copy_within(self.start..self.end, 0);
        (self.start, self.end) = (0, self.end - self.start);
        while self.end < n {
            match stream.read(&mut self.buf[self.end..]) {
                Ok(0) if self.end == 0 => return Ok(false),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(k) => self.end += k,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        assert!(self.end <= self.buf.len(), "read past the buffer");
        Ok(true)
    }

    /// A whole request header that is already buffered, if any.
    fn peek_header(&self) -> Option<&[u8; REQUEST_HEADER_LEN]> {
        self.buf[self.start..self.end].first_chunk::<REQUEST_HEADER_LEN>()
    }

    fn consume(&mut self, n: usize) {
        assert!(n <= self.buffered(), "consume past the buffered bytes");
        self.start += n;
    }

    /// Fill `dst` from the buffer, then straight from the socket.
    pub(crate) fn read_payload<R: Read>(
        &mut self,
        stream: &mut R,
        dst: &mut [u8],
    ) -> io::Result<()> {
        let k = self.buffered().min(dst.len());
        dst[..k].copy_from_slice(&self.buf[self.start..self.start + k]);
        self.consume(k);
        stream.read_exact(&mut dst[k..])
    }

    /// Read and discard `len` bytes (a refused WRITE's payload).
    fn skip<R: Read>(&mut self, stream: &mut R, len: u64) -> io::Result<()> {
        let k = (self.buffered() as u64).min(len);
        self.consume(k as usize);
        let rest = len - k;
        let skipped = io::copy(&mut stream.take(rest), &mut io::sink())?;
        if skipped != rest {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// Reads and checks the next request header, skipping a refused WRITE's payload.
pub(crate) fn next_request<R: Read>(
    rbuf: &mut RecvBuffer,
    stream: &mut R,
    limits: &Limits,
) -> Result<Incoming, ConnectionError> {
    if !rbuf.fill(stream, REQUEST_HEADER_LEN)? {
        return Ok(Incoming::Eof);
    }
    let header = *rbuf.peek_header().expect("filled to a whole header");
    rbuf.consume(REQUEST_HEADER_LEN);
    let header = proto::parse_request_header(&header)?;
    match proto::check_request(&header, limits) {
        Ok(request) if request.command == Command::Disc => Ok(Incoming::Disc),
        Ok(request) => Ok(Incoming::Request(request)),
        Err(rejection) => {
            let len = rejection.payload_bytes;
            if len
                > limits
                    .request_bytes_max
                    .max(REJECTED_PAYLOAD_DRAIN_BYTES_MAX)
            {
                return Err(ConnectionError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("refused write payload of {len} bytes is too large to skip"),
                )));
            }
            rbuf.skip(stream, u64::from(len))?;
            Ok(Incoming::Refused(rejection))
        }
    }
}

/// Whether `request` may be answered in a batch of reads.
pub(crate) fn batchable(request: &Request) -> bool {
    request.command == Command::Read && request.length <= BATCH_READ_BYTES_MAX
}

/// `batch` holds one batchable READ: add the batchable READs that follow it
/// and are already buffered, within the batch limits. Stops at the first
/// request that is anything else (it stays buffered for the next reader).
pub(crate) fn take_read_batch(rbuf: &mut RecvBuffer, limits: &Limits, batch: &mut Vec<Request>) {
    assert!(
        batch.len() == 1 && batchable(&batch[0]),
        "a batch starts with one small READ"
    );
    let mut payload: usize = batch[0].length as usize;
    while batch.len() < BATCH_REQUESTS_MAX {
        let Some(header) = rbuf.peek_header() else {
            break;
        };
        let Ok(header) = proto::parse_request_header(header) else {
            break;
        };
        let Ok(request) = proto::check_request(&header, limits) else {
            break;
        };
        if !batchable(&request) || payload + request.length as usize > BATCH_PAYLOAD_BYTES_MAX {
            break;
        }
        rbuf.consume(REQUEST_HEADER_LEN);
        payload += request.length as usize;
        batch.push(request);
    }
    assert!(batch.len() <= BATCH_REQUESTS_MAX, "batch bound");
}

#[cfg(test)]
mod tests {
    use super::super::super::proto::{
        NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_WRITE, NBD_REQUEST_MAGIC,
    };
    use super::*;

    const LIMITS: Limits = Limits {
        size_bytes: 1 << 30,
        request_bytes_max: 32 << 20,
        read_only: false,
    };

    fn header(command: u16, cookie: u64, offset: u64, length: u32) -> [u8; REQUEST_HEADER_LEN] {
        let mut h = [0u8; REQUEST_HEADER_LEN];
        h[0..4].copy_from_slice(&NBD_REQUEST_MAGIC.to_be_bytes());
        h[6..8].copy_from_slice(&command.to_be_bytes());
        h[8..16].copy_from_slice(&cookie.to_be_bytes());
        h[16..24].copy_from_slice(&offset.to_be_bytes());
        h[24..28].copy_from_slice(&length.to_be_bytes());
        h
    }

    /// Reads from `bytes` at most `step` bytes per call, as a socket may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn first(rbuf: &mut RecvBuffer, stream: &mut impl Read) -> Request {
        match next_request(rbuf, stream, &LIMITS) {
            Ok(Incoming::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn buffered_reads_form_one_batch_up_to_the_first_other_request() {
        let mut wire = Vec::new();
        for i in 0..5 {
            wire.extend_from_slice(&header(NBD_CMD_READ, i, i * 4096, 4096));
        }
        wire.extend_from_slice(&header(NBD_CMD_WRITE, 9, 0, 8));
        wire.extend_from_slice(b"payload!");
        wire.extend_from_slice(&header(NBD_CMD_READ, 10, 0, 512));
        let mut stream = Trickle {
            bytes: &wire,
            step: usize::MAX,
        };
        let mut rbuf = RecvBuffer::new();
        let mut batch = vec![first(&mut rbuf, &mut stream)];
        take_read_batch(&mut rbuf, &LIMITS, &mut batch);
        let cookies: Vec<u64> = batch.iter().map(|r| r.cookie).collect();
        assert_eq!(cookies, [0, 1, 2, 3, 4], "the WRITE ends the batch");
        let write = first(&mut rbuf, &mut stream);
        assert_eq!((write.command, write.cookie), (Command::Write, 9));
        let mut payload = [0u8; 8];
        rbuf.read_payload(&mut stream, &mut payload)
            .expect("payload");
        assert_eq!(&payload, b"payload!");
        assert_eq!(first(&mut rbuf, &mut stream).cookie, 10);
        assert!(matches!(
            next_request(&mut rbuf, &mut stream, &LIMITS),
            Ok(Incoming::Eof)
        ));
    }

    #[test]
    fn a_batch_takes_only_what_is_buffered_and_respects_its_bounds() {
        let mut wire = Vec::new();
        for i in 0..(BATCH_REQUESTS_MAX as u64 + 10) {
            wire.extend_from_slice(&header(NBD_CMD_READ, i, 0, 4096));
        }
        // Headers trickle in 40 bytes at a time: the batch never waits for more.
        let mut stream = Trickle {
            bytes: &wire,
            step: 40,
        };
        let mut rbuf = RecvBuffer::new();
        let mut batch = vec![first(&mut rbuf, &mut stream)];
        take_read_batch(&mut rbuf, &LIMITS, &mut batch);
        assert_eq!(batch.len(), 1, "only one whole header was received");
        // All at once: the count bound holds.
        let mut stream = Trickle {
            bytes: &wire,
            step: usize::MAX,
        };
        let mut rbuf = RecvBuffer::new();
        let mut batch = vec![first(&mut rbuf, &mut stream)];
        take_read_batch(&mut rbuf, &LIMITS, &mut batch);
        assert_eq!(batch.len(), BATCH_REQUESTS_MAX);
        // The payload bound: 128 KiB reads, 2 MiB at most.
        let mut wire = Vec::new();
        for i in 0..40 {
            wire.extend_from_slice(&header(NBD_CMD_READ, i, 0, BATCH_READ_BYTES_MAX));
        }
        let mut stream = Trickle {
            bytes: &wire,
            step: usize::MAX,
        };
        let mut rbuf = RecvBuffer::new();
        let mut batch = vec![first(&mut rbuf, &mut stream)];
        take_read_batch(&mut rbuf, &LIMITS, &mut batch);
        let payload: usize = batch.iter().map(|r| r.length as usize).sum();
        assert_eq!(payload, BATCH_PAYLOAD_BYTES_MAX);
    }

    #[test]
    fn refused_and_large_requests_are_not_batched() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&header(NBD_CMD_READ, 1, 0, 4096));
        // Past the export's end: refused, so it stops the batch and is
        // refused by the next reader.
        wire.extend_from_slice(&header(NBD_CMD_READ, 2, 1 << 30, 4096));
        wire.extend_from_slice(&header(NBD_CMD_READ, 3, 0, BATCH_READ_BYTES_MAX + 512));
        wire.extend_from_slice(&header(NBD_CMD_FLUSH, 4, 0, 0));
        let mut stream = Trickle {
            bytes: &wire,
            step: usize::MAX,
        };
        let mut rbuf = RecvBuffer::new();
        let mut batch = vec![first(&mut rbuf, &mut stream)];
        take_read_batch(&mut rbuf, &LIMITS, &mut batch);
        assert_eq!(batch.len(), 1);
        assert!(matches!(
            next_request(&mut rbuf, &mut stream, &LIMITS),
            Ok(Incoming::Refused(r)) if r.cookie == 2
        ));
        let large = first(&mut rbuf, &mut stream);
        assert!(!batchable(&large), "a large READ is served alone");
        assert_eq!(first(&mut rbuf, &mut stream).command, Command::Flush);
    }
}

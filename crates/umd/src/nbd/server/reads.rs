//! Answering a batch of small READs (taken by `reader.rs`): one call into the
//! export for all of them, their payloads back to back in the worker's
//! buffer, and every reply, header and payload, in one vectored write.
//!
//! Nothing here allocates: the per-batch tables are fixed arrays of
//! [`BATCH_REQUESTS_MAX`] entries on the stack, and the buffer is the
//! worker's, grown once.

use std::io::{self, IoSlice, Write};

use tracing::debug;

use super::super::proto::{self, Command, Request, SIMPLE_REPLY_LEN};
use super::super::{BlockExport, ExportError};
use super::ensure_len;
use super::reader::{BATCH_PAYLOAD_BYTES_MAX, BATCH_REQUESTS_MAX};

/// Per request of a batch, its NBD error (0: success).
pub(crate) type BatchErrors = [u32; BATCH_REQUESTS_MAX];

/// Read every request of `batch` through [`BlockExport::read_batch`]; request
/// `i`'s payload lands in `buf` after those of requests `0..i`.
pub(crate) fn execute_reads(
    export: &dyn BlockExport,
    batch: &[Request],
    buf: &mut Vec<u8>,
    errors: &mut BatchErrors,
) {
    let n = batch.len();
    assert!((1..=BATCH_REQUESTS_MAX).contains(&n), "batch of {n} reads");
    assert!(
        batch.iter().all(|r| r.command == Command::Read),
        "a read batch holds READs only"
    );
    let total: usize = batch.iter().map(|r| r.length as usize).sum();
    assert!(total <= BATCH_PAYLOAD_BYTES_MAX, "batch payload bound");
    ensure_len(buf, total);
    let mut reads: [(u64, &mut [u8]); BATCH_REQUESTS_MAX] =
        std::array::from_fn(|_| (0, <&mut [u8]>::default()));
    let mut rest: &mut [u8] = &mut buf[..total];
    for (slot, request) in reads.iter_mut().zip(batch) {
        let (this, after) = std::mem::take(&mut rest).split_at_mut(request.length as usize);
        *slot = (request.offset, this);
        rest = after;
    }
    let mut results: [Result<(), ExportError>; BATCH_REQUESTS_MAX] =
        std::array::from_fn(|_| Ok(()));
    export.read_batch(&mut reads[..n], &mut results[..n]);
    for ((error, result), request) in errors.iter_mut().zip(&results[..n]).zip(batch) {
        *error = match result {
            Ok(()) => 0,
            Err(e) => {
                debug!(offset = request.offset, len = request.length, %e, "nbd: read failed");
                proto::nbd_error_from_errno(e.errno)
            }
        };
    }
}

/// Write the replies of `batch`: each header, then its payload from `buf` if
/// it succeeded, all in as few vectored writes as the socket takes.
pub(crate) fn write_read_replies<W: Write>(
    w: &mut W,
    batch: &[Request],
    errors: &BatchErrors,
    buf: &[u8],
) -> io::Result<()> {
    let mut headers = [[0u8; SIMPLE_REPLY_LEN]; BATCH_REQUESTS_MAX];
    for ((header, request), &error) in headers.iter_mut().zip(batch).zip(errors) {
        *header = proto::encode_simple_reply(request.cookie, error);
    }
    let mut slices = [IoSlice::new(&[]); 2 * BATCH_REQUESTS_MAX];
    let (mut count, mut at) = (0, 0);
    for ((header, request), &error) in headers.iter().zip(batch).zip(errors) {
        let len = request.length as usize;
        slices[count] = IoSlice::new(header);
        count += 1;
        if error == 0 && len > 0 {
            slices[count] = IoSlice::new(&buf[at..at + len]);
            count += 1;
        }
        at += len;
    }
    write_all_vectored(w, &mut slices[..count])
}

/// Write every slice, continuing after short writes.
pub(crate) fn write_all_vectored<W: Write>(
    w: &mut W,
    mut pending: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !pending.is_empty() {
        match w.write_vectored(pending) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut pending, n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

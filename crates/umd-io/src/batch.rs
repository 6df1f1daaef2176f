//! The batch executor: run a set of member reads, writes and data syncs together and
//! return when every one has completed.
//!
//! Why: one array request fans out to several members, and the members must be driven
//! in parallel, not one system call after another. [`Batch::run`] submits a whole plan
//! at once through io_uring ([`crate::uring`]) and falls back to positional system calls
//! (`pread`, `pwrite`, `fdatasync`) where io_uring is unavailable or `UMD_IO=sync` asks
//! for it. Both back ends share the per-operation rules in this file, so they agree on
//! every outcome:
//!
//! - a short read or write is continued from where it stopped;
//! - `EINTR` and `EAGAIN` are retried, at most [`OP_RETRIES_MAX`] times per op;
//! - a read that reaches the end of the member (0 bytes transferred) fails with
//!   `UnexpectedEof` at the offset where the data ran out, instead of looping;
//! - a [`Op::SyncData`] starts only after every write to the same member in the same
//!   batch has completed, so "write, then sync" in one batch makes those writes durable;
//! - an op whose member has no file fails with an [`IoError`] naming the member index;
//!   the other ops still run.
//!
//! Caller's contract (debug-asserted): on one member, no write overlaps another op of the
//! batch, because the ops run in no particular order.
//!
//! Limits: at most [`OPS_PER_BATCH_MAX`] ops per [`Batch::run`]; at most
//! [`crate::uring::QUEUE_DEPTH`] ops in flight. Internal vectors grow to the largest batch
//! seen and are reused, so a steady-state `run` does not allocate (errors excepted).

use std::fmt;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;

use crate::member_file::{IoError, MemberFile};
use crate::uring::Ring;

/// Most ops one [`Batch::run`] accepts. The op index travels in the low 32 bits of an
/// io_uring `user_data` ([`crate::uring::USER_DATA_OP_INDEX_MASK`]); a million ops is far
/// more than one array request or sync step plans, and bounds the executor's memory.
pub const OPS_PER_BATCH_MAX: usize = 1 << 20;

/// How many times one op retries after `EINTR` or `EAGAIN` before it fails with that
/// error. Either means "try again"; a member that keeps saying so is not making progress.
pub const OP_RETRIES_MAX: u32 = 16;

/// Largest transfer one system call or SQE is asked for: Linux's `MAX_RW_COUNT`
/// (`INT_MAX` rounded down to a page). Longer ops continue like short transfers.
pub(crate) const TRANSFER_BYTES_MAX: usize = 0x7fff_f000;

/// Name of the environment variable that selects the back end ("sync" forces positional
/// system calls; anything else, or unset, means io_uring when available).
pub const BACKEND_ENV: &str = "UMD_IO";

/// One member operation. Buffers are borrowed for the whole [`Batch::run`].
#[derive(Debug)]
pub enum Op<'a> {
    /// Fill `buf` from byte `offset_bytes` of member `member`.
    Read {
        /// Index into the `files` slice given to [`Batch::run`].
        member: usize,
        /// Byte offset on the member.
        offset_bytes: u64,
        /// Destination; the whole buffer is filled or the op fails.
        buf: &'a mut [u8],
    },
    /// Write all of `buf` at byte `offset_bytes` of member `member`.
    Write {
        /// Index into the `files` slice given to [`Batch::run`].
        member: usize,
        /// Byte offset on the member.
        offset_bytes: u64,
        /// Source; the whole buffer is written or the op fails.
        buf: &'a [u8],
    },
    /// `fdatasync` member `member`, after this batch's writes to it have completed.
    SyncData {
        /// Index into the `files` slice given to [`Batch::run`].
        member: usize,
    },
}

impl Op<'_> {
    /// The member this op addresses.
    #[must_use]
    pub fn member(&self) -> usize {
        match self {
            Op::Read { member, .. } | Op::Write { member, .. } | Op::SyncData { member } => *member,
        }
    }

    /// Byte offset of the transfer (0 for a sync).
    #[must_use]
    pub fn offset_bytes(&self) -> u64 {
        match self {
            Op::Read { offset_bytes, .. } | Op::Write { offset_bytes, .. } => *offset_bytes,
            Op::SyncData { .. } => 0,
        }
    }

    /// Bytes to transfer (0 for a sync).
    #[must_use]
    pub fn len_bytes(&self) -> usize {
        match self {
            Op::Read { buf, .. } => buf.len(),
            Op::Write { buf, .. } => buf.len(),
            Op::SyncData { .. } => 0,
        }
    }

    /// The name an [`IoError`] carries for this op: "read", "write" or "sync_data".
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::SyncData { .. } => "sync_data",
        }
    }
}

/// Which back end a [`Batch`] should use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// io_uring when the kernel allows it, else positional system calls.
    IoUring,
    /// Positional system calls (`pread`, `pwrite`, `fdatasync`), one op after another.
    Sync,
}

enum Backend {
    IoUring(Box<Ring>),
    Sync,
}

/// The batch executor: one per thread, reused for every batch that thread runs.
pub struct Batch {
    backend: Backend,
    /// Scratch for the overlap check: (member, start, end, is_write) per op.
    extents: Vec<(usize, u64, u64, bool)>,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An executor on io_uring, or on positional system calls when io_uring cannot be set
    /// up here (`ENOSYS`, `EPERM`, no `IORING_OP_READ`...) or when `UMD_IO=sync`.
    #[must_use]
    pub fn new() -> Batch {
        let kind = match std::env::var_os(BACKEND_ENV) {
            Some(value) if value == "sync" => BackendKind::Sync,
            Some(value) if value != "io_uring" && !value.is_empty() => {
                tracing::warn!(?value, "unknown {BACKEND_ENV} value; using io_uring");
                BackendKind::IoUring
            }
            _ => BackendKind::IoUring,
        };
        Self::with_backend(kind)
    }

    /// An executor on the given back end; [`BackendKind::IoUring`] still falls back to
    /// system calls when the ring cannot be set up.
    #[must_use]
    pub fn with_backend(kind: BackendKind) -> Batch {
        let backend = match kind {
            BackendKind::Sync => Backend::Sync,
            BackendKind::IoUring => match Ring::new() {
                Ok(ring) => Backend::IoUring(Box::new(ring)),
                Err(error) => {
                    tracing::warn!(%error, "io_uring unavailable; using pread/pwrite");
                    Backend::Sync
                }
            },
        };
        Batch {
            backend,
            extents: Vec::new(),
        }
    }

    /// "io_uring" or "sync": the back end this executor really uses.
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::IoUring(_) => "io_uring",
            Backend::Sync => "sync",
        }
    }

    /// Run every op; members are indices into `files`. All ops are submitted together
    /// (members driven in parallel) and the call returns when every op has completed.
    ///
    /// `results[i]` receives op `i`'s outcome; an [`IoError`] names the member path (or
    /// "member N (missing)"), the op and the byte offset where it failed. Ops whose
    /// member is `None` or out of range fail without stopping the others.
    ///
    /// # Panics
    ///
    /// If `results.len() != ops.len()`, if there are more than [`OPS_PER_BATCH_MAX`] ops,
    /// or (debug builds) if a write overlaps another op on the same member.
    pub fn run(
        &mut self,
        files: &[Option<&MemberFile>],
        ops: &mut [Op<'_>],
        results: &mut [Result<(), IoError>],
    ) {
        assert_eq!(ops.len(), results.len(), "one result slot per op");
        assert!(
            ops.len() <= OPS_PER_BATCH_MAX,
            "batch of {} ops too large",
            ops.len()
        );
        if cfg!(debug_assertions) {
            self.assert_no_overlap(ops);
        }
        for (op, result) in ops.iter().zip(results.iter_mut()) {
            *result = validate(files, op);
        }
        match &mut self.backend {
            Backend::IoUring(ring) => ring.run(files, ops, results),
            Backend::Sync => run_sync(files, ops, results),
        }
    }

    /// The caller's contract: on one member, no write overlaps any other op. Sorting by
    /// (member, start) makes every earlier extent that overlaps extent `i` one whose end
    /// lies past `i`'s start, so a running maximum of ends finds every conflict.
    fn assert_no_overlap(&mut self, ops: &[Op<'_>]) {
        self.extents.clear();
        for op in ops {
            let len_bytes = op.len_bytes() as u64;
            if len_bytes > 0 {
                let start = op.offset_bytes();
                let end = start.saturating_add(len_bytes);
                self.extents
                    .push((op.member(), start, end, matches!(op, Op::Write { .. })));
            }
        }
        self.extents.sort_unstable();
        let mut member_prev = None;
        let (mut end_max_any, mut end_max_write) = (0_u64, 0_u64);
        for &(member, start, end, is_write) in &self.extents {
            if member_prev != Some(member) {
                member_prev = Some(member);
                (end_max_any, end_max_write) = (0, 0);
            }
            let end_max_conflicting = if is_write { end_max_any } else { end_max_write };
            assert!(
                start >= end_max_conflicting,
                "ops overlap a write on member {member} at byte {start}"
            );
            end_max_any = end_max_any.max(end);
            if is_write {
                end_max_write = end_max_write.max(end);
            }
        }
    }
}

/// The file behind `member`, if the caller supplied one.
pub(crate) fn member_file<'f>(
    files: &[Option<&'f MemberFile>],
    member: usize,
) -> Option<&'f MemberFile> {
    files.get(member).copied().flatten()
}

/// `Ok(())` when `op` can be issued; else the error it completes with unissued.
fn validate(files: &[Option<&MemberFile>], op: &Op<'_>) -> Result<(), IoError> {
    let offset = match op {
        Op::SyncData { .. } => None,
        _ => Some(op.offset_bytes()),
    };
    let Some(file) = member_file(files, op.member()) else {
        return Err(IoError {
            path: PathBuf::from(format!("member {} (missing)", op.member())),
            op: op.name(),
            offset,
            source: io::Error::new(io::ErrorKind::NotFound, "no file for this member"),
        });
    };
    if op
        .offset_bytes()
        .checked_add(op.len_bytes() as u64)
        .is_none()
    {
        return Err(IoError {
            path: file.path().to_path_buf(),
            op: op.name(),
            offset,
            source: io::Error::new(io::ErrorKind::InvalidInput, "extent ends past 2^64"),
        });
    }
    let write = matches!(op, Op::Write { .. });
    let data_op = !matches!(op, Op::SyncData { .. });
    let injected = if data_op {
        file.injected_fault(write, op.offset_bytes(), op.len_bytes() as u64)
    } else {
        file.injected_sync_fault()
    };
    if injected {
        return Err(IoError {
            path: file.path().to_path_buf(),
            op: op.name(),
            offset,
            source: crate::faults::error(),
        });
    }
    Ok(())
}

/// Progress of one op across continued transfers and retries.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpProgress {
    /// Bytes already transferred; the next transfer starts here.
    pub(crate) done_bytes: usize,
    /// `EINTR`/`EAGAIN` retries used, at most [`OP_RETRIES_MAX`].
    pub(crate) retries: u32,
}

/// What happens to an op after one transfer attempt.
#[derive(Debug)]
pub(crate) enum Step {
    /// Issue the op again from its `done_bytes` (short transfer or retryable error).
    Again,
    /// The op is complete, with this outcome.
    Done(Result<(), IoError>),
}

/// The one place that judges a transfer attempt's outcome, for both back ends.
/// `outcome` is the attempt's byte count (ignored for a sync) or its error.
pub(crate) fn advance(
    file: &MemberFile,
    op: &Op<'_>,
    progress: &mut OpProgress,
    outcome: io::Result<usize>,
) -> Step {
    let len_bytes = op.len_bytes();
    assert!(progress.done_bytes < len_bytes || matches!(op, Op::SyncData { .. }));
    let failed = |progress: &OpProgress, source| {
        Step::Done(Err(IoError {
            path: file.path().to_path_buf(),
            op: op.name(),
            offset: match op {
                Op::SyncData { .. } => None,
                _ => Some(op.offset_bytes() + progress.done_bytes as u64),
            },
            source,
        }))
    };
    match outcome {
        Err(error) => {
            let retryable = matches!(
                error.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            );
            if retryable && progress.retries < OP_RETRIES_MAX {
                progress.retries += 1;
                Step::Again
            } else {
                failed(progress, error)
            }
        }
        Ok(_) if matches!(op, Op::SyncData { .. }) => Step::Done(Ok(())),
        Ok(0) => {
            let kind = match op {
                Op::Read { .. } => io::ErrorKind::UnexpectedEof,
                _ => io::ErrorKind::WriteZero,
            };
            failed(
                progress,
                io::Error::new(kind, "member ended before the transfer did"),
            )
        }
        Ok(transferred) => {
            assert!(
                transferred <= len_bytes - progress.done_bytes,
                "transfer overran op"
            );
            progress.done_bytes += transferred;
            if progress.done_bytes == len_bytes {
                Step::Done(Ok(()))
            } else {
                Step::Again
            }
        }
    }
}

/// Whether `op` needs no system call at all: an empty read or write.
pub(crate) fn is_empty_transfer(op: &Op<'_>) -> bool {
    !matches!(op, Op::SyncData { .. }) && op.len_bytes() == 0
}

/// The fallback back end: positional system calls, reads and writes first, then syncs
/// (so a sync covers the batch's writes, as on io_uring).
fn run_sync(
    files: &[Option<&MemberFile>],
    ops: &mut [Op<'_>],
    results: &mut [Result<(), IoError>],
) {
    for syncs in [false, true] {
        for (op, result) in ops.iter_mut().zip(results.iter_mut()) {
            let is_sync = matches!(op, Op::SyncData { .. });
            if is_sync != syncs || result.is_err() || is_empty_transfer(op) {
                continue;
            }
            let file = member_file(files, op.member()).expect("validated in Batch::run");
            *result = run_one_sync(file, op);
        }
    }
}

/// One op to completion. Terminates: every pass transfers at least one byte, uses one of
/// [`OP_RETRIES_MAX`] retries, or finishes.
fn run_one_sync(file: &MemberFile, op: &mut Op<'_>) -> Result<(), IoError> {
    let mut progress = OpProgress::default();
    loop {
        let done = progress.done_bytes;
        let offset = op.offset_bytes() + done as u64;
        let outcome = match op {
            Op::Read { buf, .. } => {
                let end = buf.len().min(done + TRANSFER_BYTES_MAX);
                file.file().read_at(&mut buf[done..end], offset)
            }
            Op::Write { buf, .. } => {
                let end = buf.len().min(done + TRANSFER_BYTES_MAX);
                file.file().write_at(&buf[done..end], offset)
            }
            Op::SyncData { .. } => file.file().sync_data().map(|()| 0),
        };
        match advance(file, op, &mut progress, outcome) {
            Step::Again => {}
            Step::Done(result) => return result,
        }
    }
}

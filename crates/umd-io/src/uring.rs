//! The io_uring back end of [`crate::batch::Batch`]: ring setup, SQE build, CQE reap.
//! This is the only `unsafe` code in umd-io.
//!
//! Why: io_uring lets one system call submit a whole plan's member I/O and wait for any
//! of it, so members are driven in parallel from one thread.
//!
//! Ownership (style R15). Pushing an SQE is `unsafe` because the kernel reads or writes
//! the SQE's buffer, and uses its file descriptor, until the matching CQE is posted. Here
//! the buffers are the caller's, borrowed by [`crate::batch::Batch::run`] for the whole
//! call, and the descriptors belong to `MemberFile`s borrowed for the same call. The
//! invariant that makes this sound: **[`Ring::run`] neither returns nor unwinds while an
//! SQE it pushed has no reaped CQE.** The normal path loops until `in_flight` is 0; a
//! panic inside the loop runs [`InFlightGuard`]'s `Drop`, which waits for every
//! outstanding CQE before the unwind can release the borrows; and when the kernel refuses
//! to let us wait (a broken ring), the process aborts rather than free memory the kernel
//! may still write.
//!
//! Within a run, each op is in exactly one place: the ready queue, in flight (one SQE),
//! parked (a sync waiting for its member's writes) or finished. The executor only forms
//! a reference to an op's buffer when the op is not in flight.
//!
//! `user_data` layout (64 bits), linking a CQE back to its op:
//!
//! | bits  | field   | meaning                                                    |
//! |-------|---------|------------------------------------------------------------|
//! | 0-31  | index   | the op's index in `Batch::run`'s `ops` slice               |
//! | 32-47 | run tag | which `run` pushed it; a CQE from another run is a bug     |
//! | 48-63 | marker  | [`USER_DATA_MARKER`]; anything else did not come from us   |

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types, IoUring, Probe};

use crate::batch::{
    advance, is_empty_transfer, member_file, Op, OpProgress, Step, OPS_PER_BATCH_MAX,
    TRANSFER_BYTES_MAX,
};
use crate::member_file::{IoError, MemberFile};

/// Submission queue entries, and so the most ops in flight at once. 256 keeps several
/// members' queues busy (a wide raid6 stripe is tens of ops) while the ring's memory
/// stays small; bigger batches are fed through as completions free slots.
pub const QUEUE_DEPTH: u32 = 256;

/// Completion queue entries. At least [`QUEUE_DEPTH`], so the completions of every op in
/// flight always fit and the completion queue never overflows.
pub const COMPLETION_QUEUE_ENTRIES: u32 = 2 * QUEUE_DEPTH;
const _: () = assert!(COMPLETION_QUEUE_ENTRIES >= QUEUE_DEPTH);

/// `user_data` bits 0-31: the op index.
pub const USER_DATA_OP_INDEX_MASK: u64 = 0xffff_ffff;
/// `user_data` bits 32-47: the run tag.
pub const USER_DATA_RUN_TAG_SHIFT: u32 = 32;
/// `user_data` bits 48-63: the marker.
pub const USER_DATA_MARKER_SHIFT: u32 = 48;
/// The marker value, "um" in ASCII.
pub const USER_DATA_MARKER: u64 = 0x756d;
const _: () = assert!((OPS_PER_BATCH_MAX as u64 - 1) <= USER_DATA_OP_INDEX_MASK);
// An SQE's length field is 32 bits.
const _: () = assert!(TRANSFER_BYTES_MAX <= u32::MAX as usize);

/// Consecutive transient failures (`EINTR`, `EAGAIN`, `EBUSY`) of one `io_uring_enter`
/// before the ring is declared broken. A signal storm or a moment of memory pressure
/// passes well within this; a ring that fails this often will not recover.
pub const ENTER_RETRIES_MAX: u32 = 1024;

/// Whether `file` takes non-blocking buffered I/O (`RWF_NOWAIT`, which needs
/// the kernel's `FMODE_NOWAIT`). io_uring first tries every op without
/// blocking and completes it inline when it can; on a file without it (tmpfs,
/// for one) every op goes to an io-wq worker thread instead, two thread
/// switches per batch for work the caller could do itself. Probed with a
/// one-byte `preadv2(RWF_NOWAIT)` at offset 0: `EOPNOTSUPP` means no; data
/// or `EAGAIN` (not cached) mean yes; any other error is taken as yes, which
/// keeps io_uring, the default.
pub(crate) fn nowait_supported(file: &std::fs::File) -> bool {
    let mut byte = [0u8; 1];
    let iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // SAFETY: `iov` describes `byte`, a live local buffer of exactly
    // `iov_len` bytes, for the whole call; the descriptor is borrowed from
    // `file`, open for the call's duration; preadv2 writes at most one byte
    // into it and keeps no pointer after returning.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &raw const iov, 1, 0, libc::RWF_NOWAIT) };
    n >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EOPNOTSUPP)
}

/// Pack an op index and run tag into a `user_data` value (layout in the module doc).
fn user_data_encode(index: usize, run_tag: u16) -> u64 {
    let index = index as u64;
    assert!(
        index <= USER_DATA_OP_INDEX_MASK,
        "op index {index} does not fit user_data"
    );
    (USER_DATA_MARKER << USER_DATA_MARKER_SHIFT)
        | (u64::from(run_tag) << USER_DATA_RUN_TAG_SHIFT)
        | index
}

/// The op index in `user_data`, after checking it came from this run.
fn user_data_decode(user_data: u64, run_tag: u16) -> usize {
    assert_eq!(
        user_data >> USER_DATA_MARKER_SHIFT,
        USER_DATA_MARKER,
        "foreign CQE"
    );
    let tag = (user_data >> USER_DATA_RUN_TAG_SHIFT) as u16;
    assert_eq!(tag, run_tag, "CQE from run {tag} reaped in run {run_tag}");
    (user_data & USER_DATA_OP_INDEX_MASK) as usize
}

/// An io_uring and the executor's reusable per-run state.
pub(crate) struct Ring {
    io_uring: IoUring,
    /// Most SQEs in flight: [`QUEUE_DEPTH`] or the kernel's smaller ring.
    depth: u32,
    /// Tag of the current run, in every SQE's `user_data`.
    run_tag: u16,
    /// SQEs pushed whose CQE has not been reaped; at most `depth`; 0 between runs.
    in_flight: u32,
    /// Per op of the current run.
    progress: Vec<OpProgress>,
    /// Ops waiting for an SQE slot, in submission order.
    ready: VecDeque<usize>,
    /// Sync ops waiting for their member's writes to complete.
    parked_syncs: Vec<usize>,
    /// Per member: writes of the current run not yet complete.
    writes_pending: Vec<u32>,
}

impl Ring {
    /// Set up a ring, or say why io_uring cannot be used here (`ENOSYS` on kernels
    /// without it, `EPERM` where it is disabled, `Unsupported` without the opcodes).
    pub(crate) fn new() -> io::Result<Ring> {
        let io_uring = IoUring::builder()
            .setup_cqsize(COMPLETION_QUEUE_ENTRIES)
            .build(QUEUE_DEPTH)?;
        let mut probe = Probe::new();
        io_uring.submitter().register_probe(&mut probe)?;
        for (code, name) in [
            (opcode::Read::CODE, "IORING_OP_READ"),
            (opcode::Write::CODE, "IORING_OP_WRITE"),
            (opcode::Fsync::CODE, "IORING_OP_FSYNC"),
        ] {
            if !probe.is_supported(code) {
                let message = format!("kernel lacks {name}");
                return Err(io::Error::new(io::ErrorKind::Unsupported, message));
            }
        }
        let depth = io_uring.params().sq_entries().min(QUEUE_DEPTH);
        assert!(depth > 0, "kernel gave an empty submission queue");
        assert!(
            io_uring.params().cq_entries() >= depth,
            "completion queue smaller than depth"
        );
        Ok(Ring {
            io_uring,
            depth,
            run_tag: 0,
            in_flight: 0,
            progress: Vec::new(),
            ready: VecDeque::new(),
            parked_syncs: Vec::new(),
            writes_pending: Vec::new(),
        })
    }

    /// Run every op whose `results` slot is `Ok` (the others failed validation) and
    /// return when all have completed. See the module doc for why this is sound.
    pub(crate) fn run(
        &mut self,
        files: &[Option<&MemberFile>],
        ops: &mut [Op<'_>],
        results: &mut [Result<(), IoError>],
    ) {
        assert_eq!(self.in_flight, 0, "a previous run left SQEs in flight");
        assert_eq!(ops.len(), results.len());
        self.run_tag = self.run_tag.wrapping_add(1);
        self.plan(files, ops, results);
        let guard = InFlightGuard { ring: self };
        loop {
            guard.ring.push_ready(files, ops);
            if guard.ring.in_flight == 0 {
                break;
            }
            guard.ring.enter();
            guard.ring.reap(files, ops, results);
        }
        assert!(guard.ring.ready.is_empty(), "ready ops left unsubmitted");
        assert!(guard.ring.parked_syncs.is_empty(), "syncs left parked");
    }

    /// Reset the per-run state and queue every op that needs I/O.
    fn plan(
        &mut self,
        files: &[Option<&MemberFile>],
        ops: &[Op<'_>],
        results: &[Result<(), IoError>],
    ) {
        self.progress.clear();
        self.progress.resize(ops.len(), OpProgress::default());
        self.ready.clear();
        self.parked_syncs.clear();
        self.writes_pending.clear();
        self.writes_pending.resize(files.len(), 0);
        for (index, op) in ops.iter().enumerate() {
            if results[index].is_err() || is_empty_transfer(op) {
                continue;
            }
            match op {
                Op::Read { .. } => self.ready.push_back(index),
                Op::Write { member, .. } => {
                    self.writes_pending[*member] += 1;
                    self.ready.push_back(index);
                }
                Op::SyncData { .. } => self.parked_syncs.push(index),
            }
        }
        let writes_pending = &self.writes_pending;
        let ready = &mut self.ready;
        self.parked_syncs.retain(|&index| {
            let unblocked = writes_pending[ops[index].member()] == 0;
            if unblocked {
                ready.push_back(index);
            }
            !unblocked
        });
    }

    /// Push ready ops until the ring holds `depth` or none are ready. A full
    /// submission queue leaves the op ready for the next pass, after `enter` submits.
    fn push_ready(&mut self, files: &[Option<&MemberFile>], ops: &mut [Op<'_>]) {
        let mut submission = self.io_uring.submission();
        while self.in_flight < self.depth {
            let Some(index) = self.ready.pop_front() else {
                break;
            };
            let op = &mut ops[index];
            let file = member_file(files, op.member()).expect("validated in Batch::run");
            let entry = build_entry(file, op, self.progress[index].done_bytes)
                .user_data(user_data_encode(index, self.run_tag));
            // SAFETY: the entry points into `op`'s buffer at `done_bytes`, for at most
            // the bytes left in it, and names `file`'s descriptor. Both are borrowed by
            // `Batch::run` (`ops: &mut [Op<'_>]`, `files: &[Option<&MemberFile>]`) for
            // the whole of `Ring::run`, which does not return or unwind before this
            // entry's CQE is reaped (`in_flight` is raised right below, and the run loop
            // and `InFlightGuard` wait until it is 0 again). Op `index` was just taken off
            // the ready queue, so it has no other SQE in flight and nothing else touches
            // its buffer until its CQE is reaped.
            if unsafe { submission.push(&entry) }.is_err() {
                self.ready.push_front(index);
                break;
            }
            self.in_flight += 1;
        }
        assert!(
            self.in_flight <= self.depth,
            "more SQEs in flight than the queue depth"
        );
    }

    /// Submit pushed SQEs and wait for at least one completion. Transient failures are
    /// retried up to [`ENTER_RETRIES_MAX`] times; after that the ring is broken.
    fn enter(&mut self) {
        let mut failures = 0_u32;
        loop {
            let Err(error) = self.io_uring.submit_and_wait(1) else {
                return;
            };
            let errno = error.raw_os_error();
            if errno == Some(libc::EBUSY) && !self.io_uring.completion().is_empty() {
                // Completions must be reaped before the kernel takes more submissions.
                return;
            }
            let transient = matches!(errno, Some(libc::EINTR | libc::EAGAIN | libc::EBUSY));
            if !transient || failures >= ENTER_RETRIES_MAX {
                abort_with_ops_in_flight(&error, self.in_flight);
            }
            failures += 1;
        }
    }

    /// Take every available CQE and decide each op's next step: done, or ready again
    /// (short transfer or retry). A finished write may unpark its member's syncs.
    fn reap(
        &mut self,
        files: &[Option<&MemberFile>],
        ops: &[Op<'_>],
        results: &mut [Result<(), IoError>],
    ) {
        let Ring {
            io_uring,
            run_tag,
            in_flight,
            progress,
            ready,
            parked_syncs,
            writes_pending,
            ..
        } = self;
        for cqe in io_uring.completion() {
            assert!(*in_flight > 0, "CQE with nothing in flight");
            *in_flight -= 1;
            let index = user_data_decode(cqe.user_data(), *run_tag);
            let op = &ops[index];
            let file = member_file(files, op.member()).expect("validated in Batch::run");
            let outcome = usize::try_from(cqe.result())
                .map_err(|_| io::Error::from_raw_os_error(-cqe.result()));
            match advance(file, op, &mut progress[index], outcome) {
                Step::Again => ready.push_back(index),
                Step::Done(result) => {
                    results[index] = result;
                    if let Op::Write { member, .. } = *op {
                        writes_pending[member] -= 1;
                        if writes_pending[member] == 0 {
                            parked_syncs.retain(|&sync| {
                                let unblocked = ops[sync].member() == member;
                                if unblocked {
                                    ready.push_back(sync);
                                }
                                !unblocked
                            });
                        }
                    }
                }
            }
        }
    }

    /// Wait for and discard every outstanding CQE. Only for unwinding: their ops'
    /// outcomes no longer matter, but their buffers must not be freed under the kernel.
    fn drain(&mut self) {
        let mut failures = 0_u32;
        while self.in_flight > 0 {
            if let Err(error) = self.io_uring.submit_and_wait(1) {
                let transient = matches!(
                    error.raw_os_error(),
                    Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                );
                if !transient || failures >= ENTER_RETRIES_MAX {
                    abort_with_ops_in_flight(&error, self.in_flight);
                }
                failures += 1;
            }
            for _ in self.io_uring.completion() {
                self.in_flight = self.in_flight.saturating_sub(1);
            }
        }
    }
}

/// Waits for every outstanding CQE if [`Ring::run`] unwinds, so the borrowed buffers
/// outlive the kernel's use of them. On the normal path `in_flight` is already 0.
struct InFlightGuard<'r> {
    ring: &'r mut Ring,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.ring.in_flight > 0 {
            self.ring.drain();
        }
    }
}

/// The ring cannot be waited on while the kernel may still use caller buffers: returning
/// or unwinding would let them be freed under it, so stop the process instead.
fn abort_with_ops_in_flight(error: &io::Error, in_flight: u32) -> ! {
    tracing::error!(%error, in_flight, "io_uring_enter failed with I/O in flight; aborting");
    std::process::abort()
}

/// The SQE for the rest of `op`, from `done_bytes` on, at most [`TRANSFER_BYTES_MAX`].
/// Building it is safe; pushing it is the unsafe step.
fn build_entry(file: &MemberFile, op: &mut Op<'_>, done_bytes: usize) -> squeue::Entry {
    let fd = types::Fd(file.as_raw_fd());
    let offset = op.offset_bytes() + done_bytes as u64;
    match op {
        Op::Read { buf, .. } => {
            let rest = &mut buf[done_bytes..];
            assert!(!rest.is_empty(), "read op with nothing left");
            let len = rest.len().min(TRANSFER_BYTES_MAX) as u32;
            opcode::Read::new(fd, rest.as_mut_ptr(), len)
                .offset(offset)
                .build()
        }
        Op::Write { buf, .. } => {
            let rest = &buf[done_bytes..];
            assert!(!rest.is_empty(), "write op with nothing left");
            let len = rest.len().min(TRANSFER_BYTES_MAX) as u32;
            opcode::Write::new(fd, rest.as_ptr(), len)
                .offset(offset)
                .build()
        }
        Op::SyncData { .. } => opcode::Fsync::new(fd)
            .flags(types::FsyncFlags::DATASYNC)
            .build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_sizes_match_the_kernel_abi() {
        assert_eq!(size_of::<squeue::Entry>(), 64);
        assert_eq!(size_of::<io_uring::cqueue::Entry>(), 16);
    }

    #[test]
    fn user_data_round_trips() {
        for (index, tag) in [
            (0, 0),
            (1, 1),
            (OPS_PER_BATCH_MAX - 1, u16::MAX),
            (12345, 77),
        ] {
            let user_data = user_data_encode(index, tag);
            assert_eq!(user_data >> USER_DATA_MARKER_SHIFT, USER_DATA_MARKER);
            assert_eq!(user_data_decode(user_data, tag), index);
        }
    }

    #[test]
    #[should_panic(expected = "reaped in run")]
    fn user_data_from_another_run_is_refused() {
        user_data_decode(user_data_encode(5, 1), 2);
    }

    #[test]
    #[should_panic(expected = "foreign CQE")]
    fn user_data_without_marker_is_refused() {
        user_data_decode(5, 0);
    }
}

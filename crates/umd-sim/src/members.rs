//! The simulated host's member I/O: the disks of one array, each request's
//! writes completed in a seeded random order, and the power switch.
//!
//! Why a layer of its own: crash points are counted here. Every member
//! write that completes is numbered; a run may ask for the power to fail
//! right after write number `k` (crash-point enumeration does so for every
//! `k` in turn). A batch's writes complete in random order, as a real
//! member queue reorders them, so an ordering rule that holds only because
//! of submission order is found out.

use crate::disk::{DiskError, SimDisk};
use crate::rng::Rng;

/// Why a member I/O did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The power failed (the crash point was reached): stop everything.
    Crash,
    /// One member failed this I/O.
    Member {
        /// Member index.
        member: usize,
        /// What the disk said.
        error: DiskError,
    },
}

/// The member disks and the crash counter.
#[derive(Debug)]
pub struct Members {
    /// Disks by member index.
    pub disks: Vec<SimDisk>,
    rng: Rng,
    /// Member writes completed so far (crash points passed).
    pub writes_done: u64,
    /// Fail the power right after this many member writes completed.
    pub crash_after: Option<u64>,
}

impl Members {
    /// `disks` whose completions are ordered by `rng`.
    #[must_use]
    pub fn new(disks: Vec<SimDisk>, rng: Rng) -> Self {
        Self {
            disks,
            rng,
            writes_done: 0,
            crash_after: None,
        }
    }

    /// Read from one member.
    pub fn read(&mut self, member: usize, offset_bytes: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.disks[member]
            .read(offset_bytes, buf)
            .map_err(|error| Fault::Member { member, error })
    }

    /// Issue `(member, offset, bytes)` writes together; they complete in a
    /// random order. Every write is attempted; the first member failure is
    /// reported after all of them. Reaching the crash point stops at once.
    pub fn write_batch(&mut self, writes: &[(usize, u64, &[u8])]) -> Result<(), Fault> {
        let mut order: Vec<usize> = (0..writes.len()).collect();
        self.rng.shuffle(&mut order);
        let mut failed = None;
        for i in order {
            let (member, offset, bytes) = writes[i];
            match self.disks[member].write(offset, bytes) {
                Ok(()) => {
                    self.writes_done += 1;
                    if self.crash_after == Some(self.writes_done) {
                        return Err(Fault::Crash);
                    }
                }
                Err(error) => {
                    failed.get_or_insert(Fault::Member { member, error });
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// FLUSH one member.
    pub fn flush(&mut self, member: usize) -> Result<(), Fault> {
        self.disks[member]
            .flush()
            .map_err(|error| Fault::Member { member, error })
    }
}

//! Injected member faults, for exercising failure paths on real processes:
//! sectors of a named member that fail to read or write with EIO, as md's
//! `faulty` personality makes them fail.
//!
//! Why an environment variable: the failure paths worth testing run inside
//! `umd run` and `umd mon`, behind real NBD clients; a test sets
//! `UMD_FAULT_INJECT` for the process it starts and the members it names
//! misbehave from their first I/O. Nothing changes when it is unset: every
//! member then has an empty fault list, checked before each op is issued.
//!
//! Syntax: comma-separated `NAME:OP:SECTOR[+SECTORS]`, where `NAME` is the
//! member's file name, `OP` is `read`, `write`, `rw`, `read-fixable`
//! (md's mode of that name: reads fail until one write covers the whole
//! range, as a sector the drive remaps when it is rewritten) or `gone` (the
//! device vanishes when an I/O first touches the range: that op and every
//! later read, write and sync of the member fail), and the range is in
//! 512-byte sectors from the start of the device (one sector if no count).
//! A malformed entry is refused when the process starts, naming it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The environment variable that injects faults.
pub const FAULT_ENV: &str = "UMD_FAULT_INJECT";

/// Most faults one process takes: a bound on the list checked per op.
pub const FAULTS_MAX: usize = 64;

/// Which operations a fault fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// Both.
    ReadWrite,
    /// Reads, until a write covers the whole range.
    ReadFixable,
    /// Everything, syncs included, from the first op that touches the range.
    Gone,
}

/// One injected fault.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The member's file name.
    pub name: String,
    /// Which operations fail.
    pub op: FaultOp,
    /// First failing byte.
    pub start_bytes: u64,
    /// Failing bytes from there.
    pub len_bytes: u64,
    /// A `read-fixable` range was rewritten: it reads again; a `gone`
    /// member's range was touched: it is gone. Shared by every opening of
    /// the member in this process, as the medium is.
    fixed: Arc<AtomicBool>,
}

impl PartialEq for Fault {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, self.start_bytes, self.len_bytes)
            == (&other.name, other.op, other.start_bytes, other.len_bytes)
    }
}

impl Eq for Fault {}

impl Fault {
    /// Whether an op of kind `write` over `[offset, offset + len)` hits this
    /// fault. A write that covers a `read-fixable` range fixes it.
    #[must_use]
    pub fn hits(&self, write: bool, offset: u64, len: u64) -> bool {
        let end = self.start_bytes + self.len_bytes;
        let overlaps = len > 0 && offset < end && self.start_bytes < offset + len;
        match self.op {
            FaultOp::ReadWrite => overlaps,
            FaultOp::Write => write && overlaps,
            FaultOp::Read => !write && overlaps,
            FaultOp::ReadFixable if write => {
                if offset <= self.start_bytes && end <= offset + len {
                    self.fixed.store(true, Ordering::Release);
                }
                false
            }
            FaultOp::ReadFixable => overlaps && !self.fixed.load(Ordering::Acquire),
            FaultOp::Gone => {
                if overlaps {
                    self.fixed.store(true, Ordering::Release);
                }
                self.fixed.load(Ordering::Acquire)
            }
        }
    }

    /// Whether a sync of the member fails: it is gone.
    #[must_use]
    pub fn fails_sync(&self) -> bool {
        self.op == FaultOp::Gone && self.fixed.load(Ordering::Acquire)
    }
}

/// Parse a fault list (module doc syntax).
pub fn parse(spec: &str) -> Result<Vec<Fault>, String> {
    let mut faults = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            format!(
                "{FAULT_ENV}: {entry:?} is not NAME:read|write|rw|read-fixable|gone:SECTOR[+SECTORS]"
            )
        };
        let mut parts = entry.rsplitn(3, ':');
        let (range, op, name) = (parts.next(), parts.next(), parts.next());
        let (Some(range), Some(op), Some(name)) = (range, op, name) else {
            return Err(bad());
        };
        let op = match op {
            "read" => FaultOp::Read,
            "write" => FaultOp::Write,
            "rw" => FaultOp::ReadWrite,
            "read-fixable" => FaultOp::ReadFixable,
            "gone" => FaultOp::Gone,
            _ => return Err(bad()),
        };
        let (start, count) = range.split_once('+').unwrap_or((range, "1"));
        let (Ok(start), Ok(count)) = (start.parse::<u64>(), count.parse::<u64>()) else {
            return Err(bad());
        };
        let (Some(start_bytes), Some(len_bytes)) = (start.checked_mul(512), count.checked_mul(512))
        else {
            return Err(bad());
        };
        if name.is_empty() || count == 0 {
            return Err(bad());
        }
        faults.push(Fault {
            name: name.to_owned(),
            op,
            start_bytes,
            len_bytes,
            fixed: Arc::default(),
        });
    }
    if faults.len() > FAULTS_MAX {
        return Err(format!("{FAULT_ENV}: more than {FAULTS_MAX} faults"));
    }
    Ok(faults)
}

/// The faults this process was started with (parsed once).
pub fn injected() -> Result<&'static [Fault], String> {
    static FAULTS: OnceLock<Result<Vec<Fault>, String>> = OnceLock::new();
    FAULTS
        .get_or_init(|| match std::env::var(FAULT_ENV) {
            Ok(spec) => parse(&spec),
            Err(_) => Ok(Vec::new()),
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// The injected I/O error.
pub(crate) fn error() -> io::Error {
    io::Error::other(format!("injected fault ({FAULT_ENV})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let f = parse("d1.img:write:2048+8, d0.img:rw:0").expect("valid");
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0],
            Fault {
                name: "d1.img".into(),
                op: FaultOp::Write,
                start_bytes: 2048 * 512,
                len_bytes: 8 * 512,
                fixed: Arc::default(),
            }
        );
        assert!(f[0].hits(true, 2048 * 512, 512));
        assert!(f[0].hits(true, 2047 * 512, 1024));
        assert!(!f[0].hits(false, 2048 * 512, 512), "reads are fine");
        assert!(!f[0].hits(true, 2056 * 512, 512), "past the range");
        assert!(f[1].hits(false, 0, 512) && f[1].hits(true, 0, 4096));
    }

    #[test]
    fn read_fixable_reads_again_once_rewritten_whole() {
        let f = parse("d2.img:read-fixable:100+8").expect("valid");
        assert!(f[0].hits(false, 100 * 512, 512), "fails before the write");
        assert!(!f[0].hits(true, 101 * 512, 512), "writes never fail");
        assert!(
            f[0].hits(false, 104 * 512, 4096),
            "a partial write fixes nothing"
        );
        assert!(!f[0].hits(true, 96 * 512, 16 * 512), "a covering write");
        assert!(!f[0].hits(false, 100 * 512, 4096), "reads again");
    }

    #[test]
    fn a_gone_member_fails_everything_once_touched() {
        let f = parse("d3.img:gone:2048+8").expect("valid");
        assert!(!f[0].hits(false, 0, 4096), "the superblock reads before");
        assert!(!f[0].fails_sync(), "syncs work before");
        assert!(f[0].hits(true, 2050 * 512, 512), "the touching op fails");
        assert!(f[0].hits(false, 0, 4096), "then every read");
        assert!(f[0].hits(true, 9000 * 512, 512), "every write");
        assert!(f[0].fails_sync(), "and every sync");
    }

    #[test]
    fn refuses_malformed_entries() {
        for bad in [
            "d1",
            "d1:write",
            "d1:erase:0",
            "d1:read:x",
            ":read:0",
            "d1:read:0+0",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

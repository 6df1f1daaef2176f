//! The error codes md returns from attribute stores and I/O, by name.
//!
//! `umd ctl set` must print what md would (product.md): the engine refuses
//! operations with these codes, the control protocol carries them by name,
//! and the NBD server maps I/O failures onto NBD's own error numbers.

use std::fmt;

/// One of the POSIX error codes md's sysfs stores and I/O paths return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Errno {
    /// Operation not permitted.
    EPERM,
    /// No such file or directory (unknown metadata major, unknown attribute).
    ENOENT,
    /// Interrupted while waiting for the configuration lock.
    EINTR,
    /// I/O error: the array or member cannot do it.
    EIO,
    /// No such device or address (already read-only, no members).
    ENXIO,
    /// Argument list too long (array_size larger than possible).
    E2BIG,
    /// Try again: the metadata manager must acknowledge first (protocol.md §4.3).
    EAGAIN,
    /// Out of memory (stripe cache growth failed).
    ENOMEM,
    /// Permission denied.
    EACCES,
    /// Busy: in use, sync running, writes pending.
    EBUSY,
    /// Already exists.
    EEXIST,
    /// No such device (no personality configuration).
    ENODEV,
    /// Invalid value for this attribute or state.
    EINVAL,
    /// No space: member too small, slot out of range.
    ENOSPC,
    /// Read-only: the array or member is not writable.
    EROFS,
    /// Operation not supported by this level.
    EOPNOTSUPP,
}

impl Errno {
    /// Every code, for codecs and tests.
    pub const ALL: [Errno; 16] = [
        Errno::EPERM,
        Errno::ENOENT,
        Errno::EINTR,
        Errno::EIO,
        Errno::ENXIO,
        Errno::E2BIG,
        Errno::EAGAIN,
        Errno::ENOMEM,
        Errno::EACCES,
        Errno::EBUSY,
        Errno::EEXIST,
        Errno::ENODEV,
        Errno::EINVAL,
        Errno::ENOSPC,
        Errno::EROFS,
        Errno::EOPNOTSUPP,
    ];

    /// The symbolic name, as `umd ctl` prints it (`"EAGAIN"`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::EINTR => "EINTR",
            Errno::EIO => "EIO",
            Errno::ENXIO => "ENXIO",
            Errno::E2BIG => "E2BIG",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::ENODEV => "ENODEV",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSPC => "ENOSPC",
            Errno::EROFS => "EROFS",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
        }
    }

    /// The code with this symbolic name, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The Linux numeric value (x86-64 and every other Linux ABI share these).
    #[must_use]
    pub fn linux_value(self) -> i32 {
        match self {
            Errno::EPERM => 1,
            Errno::ENOENT => 2,
            Errno::EINTR => 4,
            Errno::EIO => 5,
            Errno::ENXIO => 6,
            Errno::E2BIG => 7,
            Errno::EAGAIN => 11,
            Errno::ENOMEM => 12,
            Errno::EACCES => 13,
            Errno::EBUSY => 16,
            Errno::EEXIST => 17,
            Errno::ENODEV => 19,
            Errno::EINVAL => 22,
            Errno::ENOSPC => 28,
            Errno::EROFS => 30,
            Errno::EOPNOTSUPP => 95,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An operation the engine refused: md's code plus what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// The code md would return.
    pub errno: Errno,
    /// What was refused and why, naming the attribute or member.
    pub message: String,
}

impl EngineError {
    /// A refusal with `errno` and a message.
    #[must_use]
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.errno, self.message)
    }
}

impl std::error::Error for EngineError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_values_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for e in Errno::ALL {
            assert_eq!(Errno::from_name(e.name()), Some(e));
            assert!(seen.insert(e.linux_value()), "{e} value repeated");
        }
        assert_eq!(Errno::EAGAIN.linux_value(), 11);
        assert_eq!(Errno::from_name("EWHATEVER"), None);
    }
}

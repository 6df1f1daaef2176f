//! `MemberFile`: one member device (regular file or block device), opened read-only or
//! read-write.
//!
//! Sizes come from seeking to the end, which works for both regular files and
//! block devices without an ioctl. I/O is positional (`pread`/`pwrite`), so one
//! `MemberFile` can serve reads and writes in any order, from the batch executor
//! ([`crate::batch`]) or directly, without a shared file position. Files are opened
//! without `O_DIRECT`: it would impose sector-aligned buffers on every caller, and
//! whether it pays is a question for the benchmarks (style R22).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A failed operation on a member, with where it happened.
#[derive(Debug)]
pub struct IoError {
    /// The member's path.
    pub path: PathBuf,
    /// What was being done ("open", "size", "read", "write", "sync_data").
    pub op: &'static str,
    /// Byte offset of a failed read or write, if any.
    pub offset: Option<u64>,
    /// The system's error.
    pub source: std::io::Error,
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.op)?;
        if let Some(offset) = self.offset {
            write!(f, " at byte {offset}")?;
        }
        write!(f, " failed: {}", self.source)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An open member device.
#[derive(Debug)]
pub struct MemberFile {
    path: PathBuf,
    file: File,
    len_bytes: u64,
    /// Injected faults for this member (`faults.rs`); empty in normal use.
    faults: Vec<crate::faults::Fault>,
    /// The file cannot do non-blocking buffered I/O (no `FMODE_NOWAIT`: tmpfs,
    /// for one), so io_uring hands every op on it to a kernel worker thread.
    punts_to_workers: bool,
}

impl MemberFile {
    /// Open `path` read-only and learn its size.
    pub fn open_read_only(path: &Path) -> Result<Self, IoError> {
        Self::open_with(path, OpenOptions::new().read(true))
    }

    /// Open `path` (a regular file or a block device) for reading and writing and
    /// learn its size. The file must exist: members are never created here.
    pub fn open_read_write(path: &Path) -> Result<Self, IoError> {
        Self::open_with(path, OpenOptions::new().read(true).write(true))
    }

    fn open_with(path: &Path, options: &OpenOptions) -> Result<Self, IoError> {
        let err = |op, source| IoError {
            path: path.to_path_buf(),
            op,
            offset: None,
            source,
        };
        let injected = crate::faults::injected().map_err(|e| {
            err(
                "open",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            )
        })?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let faults = injected
            .iter()
            .filter(|f| name.as_deref() == Some(f.name.as_str()))
            .cloned()
            .collect();
        let mut file = options.open(path).map_err(|e| err("open", e))?;
        let len_bytes = file.seek(SeekFrom::End(0)).map_err(|e| err("size", e))?;
        let punts_to_workers = !crate::uring::nowait_supported(&file);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len_bytes,
            faults,
            punts_to_workers,
        })
    }

    /// Whether an injected fault fails an op over `[offset, offset + len)`.
    #[must_use]
    pub fn injected_fault(&self, write: bool, offset: u64, len: u64) -> bool {
        self.faults.iter().any(|f| f.hits(write, offset, len))
    }

    fn check_fault(&self, write: bool, offset: u64, len: usize) -> Result<(), IoError> {
        if self.injected_fault(write, offset, len as u64) {
            return Err(IoError {
                path: self.path.clone(),
                op: if write { "write" } else { "read" },
                offset: Some(offset),
                source: crate::faults::error(),
            });
        }
        Ok(())
    }

    /// Whether io_uring would hand every buffered op on this file to a kernel
    /// worker thread (the file cannot do non-blocking I/O). For such files a
    /// positional system call in the calling thread does the same work
    /// without two thread switches.
    #[must_use]
    pub fn punts_to_workers(&self) -> bool {
        self.punts_to_workers
    }

    /// Whether `other` is the same file or device (same device and inode),
    /// however it was named or opened.
    #[must_use]
    pub fn same_file(&self, other: &MemberFile) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), other.file.metadata()) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        }
    }

    /// The member's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The member's size in bytes when it was opened (writes past the end of a
    /// regular file do not update it; the layout never issues them).
    #[must_use]
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// Fill `buf` from byte `offset`. Reading past the end is an error (the
    /// layout never asks for it on a healthy member, so it means a truncated
    /// or wrong device).
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.check_fault(false, offset, buf.len())?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| IoError {
                path: self.path.clone(),
                op: "read",
                offset: Some(offset),
                source,
            })
    }

    /// Write all of `buf` at byte `offset`; short writes are continued and
    /// `EINTR` retried by the standard library.
    pub fn write_all_at(&self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.check_fault(true, offset, buf.len())?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|source| IoError {
                path: self.path.clone(),
                op: "write",
                offset: Some(offset),
                source,
            })
    }

    /// Whether an injected fault fails a sync (the member is gone).
    #[must_use]
    pub fn injected_sync_fault(&self) -> bool {
        self.faults.iter().any(crate::faults::Fault::fails_sync)
    }

    /// Make every completed write to this member durable (`fdatasync`).
    pub fn sync_data(&self) -> Result<(), IoError> {
        if self.injected_sync_fault() {
            return Err(IoError {
                path: self.path.clone(),
                op: "sync_data",
                offset: None,
                source: crate::faults::error(),
            });
        }
        self.file.sync_data().map_err(|source| IoError {
            path: self.path.clone(),
            op: "sync_data",
            offset: None,
            source,
        })
    }

    /// The open file, for the batch executor's positional-syscall back end.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl AsFd for MemberFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for MemberFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

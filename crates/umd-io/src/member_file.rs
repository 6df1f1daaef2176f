//! `MemberFile`: one member device (regular file or block device), opened read-only.
//!
//! Sizes come from seeking to the end, which works for both regular files and
//! block devices without an ioctl. Reads are positional (`pread`), so one
//! `MemberFile` can serve reads in any order without shared file position.

use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A failed operation on a member, with where it happened.
#[derive(Debug)]
pub struct IoError {
    /// The member's path.
    pub path: PathBuf,
    /// What was being done ("open", "read", "size").
    pub op: &'static str,
    /// Byte offset of a failed read, if any.
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
}

impl MemberFile {
    /// Open `path` read-only and learn its size.
    pub fn open_read_only(path: &Path) -> Result<Self, IoError> {
        let err = |op, source| IoError {
            path: path.to_path_buf(),
            op,
            offset: None,
            source,
        };
        let mut file = File::open(path).map_err(|e| err("open", e))?;
        let len_bytes = file.seek(SeekFrom::End(0)).map_err(|e| err("size", e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len_bytes,
        })
    }

    /// The member's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The member's size in bytes.
    #[must_use]
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// Fill `buf` from byte `offset`. Reading past the end is an error (the
    /// layout never asks for it on a healthy member, so it means a truncated
    /// or wrong device).
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| IoError {
                path: self.path.clone(),
                op: "read",
                offset: Some(offset),
                source,
            })
    }
}

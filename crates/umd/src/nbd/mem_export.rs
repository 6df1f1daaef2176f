//! An in-memory [`BlockExport`] for tests and fuzzing.
//!
//! It exists so the server can be exercised by real clients without an array;
//! it counts flushes, FUA writes and openers so tests can check the server passes
//! the client's intent through. Not part of the API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use umd_engine::Errno;

use super::{BlockExport, ExportError};

/// A byte vector served as an export.
#[derive(Debug)]
pub struct MemExport {
    /// The export's contents. Lock order: leaf (nothing is locked while held).
    data: RwLock<Vec<u8>>,
    read_only: bool,
    description: String,
    flushes: AtomicU64,
    fua_writes: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
}

impl MemExport {
    /// A zero-filled writable export of `size_bytes`.
    #[must_use]
    pub fn new(size_bytes: u64) -> Self {
        Self::with_contents(vec![0u8; size_bytes as usize], false)
    }

    /// An export serving `data`, read-only if asked.
    #[must_use]
    pub fn with_contents(data: Vec<u8>, read_only: bool) -> Self {
        Self {
            data: RwLock::new(data),
            read_only,
            description: String::new(),
            flushes: AtomicU64::new(0),
            fua_writes: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        }
    }

    /// The same export, described as `text` in export lists.
    #[must_use]
    pub fn described(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// A copy of the contents.
    pub fn snapshot(&self) -> Result<Vec<u8>, ExportError> {
        Ok(self.read_guard()?.clone())
    }

    /// `NBD_CMD_FLUSH` requests seen.
    #[must_use]
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    /// Writes and write-zeroes that carried FUA.
    #[must_use]
    pub fn fua_writes(&self) -> u64 {
        self.fua_writes.load(Ordering::SeqCst)
    }

    /// Clients that finished negotiation.
    #[must_use]
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::SeqCst)
    }

    /// Clients that left after finishing negotiation.
    #[must_use]
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::SeqCst)
    }

    fn read_guard(&self) -> Result<RwLockReadGuard<'_, Vec<u8>>, ExportError> {
        self.data
            .read()
            .map_err(|_| ExportError::new(Errno::EIO, "export lock poisoned"))
    }

    fn write_guard(&self) -> Result<RwLockWriteGuard<'_, Vec<u8>>, ExportError> {
        self.data
            .write()
            .map_err(|_| ExportError::new(Errno::EIO, "export lock poisoned"))
    }

    fn range(len_total: usize, offset: u64, len: u64) -> Result<(usize, usize), ExportError> {
        let start = usize::try_from(offset).ok();
        let end = offset
            .checked_add(len)
            .and_then(|e| usize::try_from(e).ok());
        match (start, end) {
            (Some(start), Some(end)) if end <= len_total => Ok((start, end)),
            _ => Err(ExportError::new(
                Errno::EINVAL,
                format!("range {offset}+{len} past end"),
            )),
        }
    }

    fn count_fua(&self, fua: bool) {
        if fua {
            self.fua_writes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl BlockExport for MemExport {
    fn size_bytes(&self) -> u64 {
        self.read_guard().map_or(0, |data| data.len() as u64)
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn description(&self) -> String {
        self.description.clone()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), ExportError> {
        let data = self.read_guard()?;
        let (start, end) = Self::range(data.len(), offset, buf.len() as u64)?;
        buf.copy_from_slice(&data[start..end]);
        Ok(())
    }

    fn write(&self, offset: u64, src: &[u8], fua: bool) -> Result<(), ExportError> {
        if self.read_only {
            return Err(ExportError::new(Errno::EROFS, "read-only export"));
        }
        let mut data = self.write_guard()?;
        let (start, end) = Self::range(data.len(), offset, src.len() as u64)?;
        data[start..end].copy_from_slice(src);
        self.count_fua(fua);
        Ok(())
    }

    fn flush(&self) -> Result<(), ExportError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn trim(&self, offset: u64, len: u64) -> Result<(), ExportError> {
        self.write_zeroes(offset, len, false)
    }

    fn write_zeroes(&self, offset: u64, len: u64, fua: bool) -> Result<(), ExportError> {
        if self.read_only {
            return Err(ExportError::new(Errno::EROFS, "read-only export"));
        }
        let mut data = self.write_guard()?;
        let (start, end) = Self::range(data.len(), offset, len)?;
        data[start..end].fill(0);
        self.count_fua(fua);
        Ok(())
    }

    fn client_opened(&self) {
        self.opened.fetch_add(1, Ordering::SeqCst);
    }

    fn client_closed(&self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

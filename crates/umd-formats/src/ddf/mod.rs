//! (stub: being implemented)

/// (stub)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ddf {}

impl Ddf {
    /// One normalized view per virtual disk this device belongs to.
    #[must_use]
    pub fn infos(&self) -> Vec<crate::info::MdInfo> {
        todo!()
    }
}

/// Look for DDF metadata on a device of `dev_bytes` bytes.
pub fn probe(
    dev_bytes: u64,
    read: &mut crate::probe::ReadAt<'_>,
) -> Result<Option<Ddf>, crate::probe::ProbeError> {
    let _ = (dev_bytes, read);
    todo!()
}

pub(crate) fn fuzz_entry(_data: &[u8]) {}

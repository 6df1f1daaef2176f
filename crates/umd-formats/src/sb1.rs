//! (stub: being implemented)

/// (stub)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock1 {}

impl Superblock1 {
    /// The normalized view.
    #[must_use]
    pub fn info(&self) -> crate::info::MdInfo {
        todo!()
    }
}

pub(crate) fn fuzz_entry(_data: &[u8]) {}

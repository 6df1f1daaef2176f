//! (stub: being implemented)
pub(crate) fn fuzz_entry(_data: &[u8]) {}

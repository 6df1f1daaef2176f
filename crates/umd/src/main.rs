//! `umd`: Linux md software RAID in userspace.
#![forbid(unsafe_code)]

fn main() {}

//! The only real I/O in umd: opening member files and block devices and reading them.
//!
//! Everything above this crate works on byte offsets and buffers; this crate
//! turns those into system calls and turns failures into [`IoError`]s that
//! name the member and the byte offset (style R4).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(unsafe_code)]

pub mod batch;
pub mod faults;
pub mod host;
pub mod member_file;
#[allow(unsafe_code)]
pub mod uring;

pub use host::{AllowWrite, ArrayHost, HostError, HostParts};
pub use member_file::{IoError, MemberFile};

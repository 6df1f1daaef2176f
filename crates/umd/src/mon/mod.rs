//! `umd mon`: the external metadata manager (mdmon), protocol.md §6.
//!
//! The engine never writes external metadata. It announces what must be
//! recorded (a clean array's first write, a failed member, the end of a
//! resync) through its attributes and waits; this manager records it in the
//! container's metadata, writes it to the disks, and only then acknowledges.
//! `handler.rs` is the interface a metadata format implements; `ddf/` is the
//! DDF implementation.

pub mod ddf;
#[doc(hidden)]
pub mod fuzz;
pub mod handler;

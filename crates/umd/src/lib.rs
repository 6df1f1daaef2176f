//! umd's front ends as a library: the NBD export and the control interface.
//!
//! The binary (`main.rs`) is the command line; these modules are a library
//! so the fuzz targets can reach their parsers (style R21).
#![forbid(unsafe_code)]

mod acceptor;
pub mod control;
pub mod mon;
pub mod nbd;

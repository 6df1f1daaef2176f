//! Where every array sector lives, and the parity that protects it.
//!
//! [`geometry::Geometry`] is a validated description of one array (level,
//! layout, chunk, members and their sizes) and maps a logical array sector to
//! the member(s) and member sector(s) that hold it, for every md level and
//! layout (formats.md §4). [`parity`] computes and checks XOR and RAID6 P/Q in
//! md's GF(2^8) (polynomial 0x11d, generator 2) and rebuilds up to two lost
//! blocks. Both are pure: no I/O. The SIMD kernels in `parity` are the only
//! `unsafe` code here, each with a scalar reference it is tested against.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod geometry;
pub mod map;
pub mod parity;

pub use geometry::{
    Copy, Extent, Geometry, GeometrySpec, LayoutError, Level, StripeLayout, Target,
};

//! The sans-I/O core of umd.
//!
//! Nothing here touches the operating system (style R8): callers feed
//! metadata and bytes in and carry plans out. This part is assembly
//! (which members form one array, in which roles) and read planning (which
//! member ranges to read, and how to rebuild what is missing).
#![forbid(unsafe_code)]

pub mod array;
pub mod assemble;
pub mod attrs;
pub mod bitmap;
pub mod create;
pub mod durability;
pub mod errno;
pub mod member;
pub mod native;
pub mod ppl;
pub mod read;
pub mod reshape;
pub mod resync;
pub mod start;
pub mod state;
pub mod sync_pass;
pub mod time;
pub mod write;

pub use assemble::{assemble, AssembleError, AssembleOptions, Assembly, Candidate};
pub use errno::{EngineError, Errno};
pub use read::{DataLost, MemberMap, MemberRead, ReadPlan, ReadPlanner};
pub use reshape::{ArrayReadPlanner, Reshape};
pub use time::{Duration, Time};

//! The only real I/O in umd: opening member files and block devices and reading them.
#![deny(unsafe_op_in_unsafe_fn)]

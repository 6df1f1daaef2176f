//! The NBD export (placeholder until the server lands).

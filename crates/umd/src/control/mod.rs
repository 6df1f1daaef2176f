//! The control interface (placeholder until the server lands).

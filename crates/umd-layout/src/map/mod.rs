//! Per-level mapping functions (one file per level).

//! The durability ordering rules a host must follow that are not state of
//! the array itself, as functions both hosts call (`umd_io::ArrayHost` and
//! the simulator's host), so the simulator checks the rules that ship.
//!
//! Each rule can be broken on purpose by a cargo feature (`inject-*`),
//! never enabled in normal builds: the simulator must then find a seed that
//! loses acknowledged data (docs/simulation.md records which).

/// A FLUSH is acknowledged only after every member flushed its cache: the
/// writes it covers are then on stable storage (md's `REQ_PREFLUSH`).
#[must_use]
pub const fn flush_syncs_members() -> bool {
    !cfg!(feature = "inject-early-flush-ack")
}

/// Metadata (superblocks, bitmap blocks) is written only after the
/// members flushed the data writes that completed before it: a cleared
/// bitmap bit or a clean superblock must never reach stable storage ahead
/// of the data it vouches for (md writes metadata with `REQ_PREFLUSH`).
/// Without it, a crash can keep the cleared bit and lose the data write on
/// one member, and the resync skips the chunk whose copies now differ.
#[must_use]
pub const fn metadata_preflush() -> bool {
    !cfg!(feature = "inject-early-bitmap-clear")
}

/// A grow's window is synced on every member before any superblock records
/// it as moved: the checkpoint then never points past data that a power
/// loss could still drop, and the old copy of everything above it is
/// intact (`reshape::drive`).
#[must_use]
pub const fn grow_window_synced() -> bool {
    !cfg!(feature = "inject-grow-before-sync")
}

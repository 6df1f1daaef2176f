//! What the simulator's scenario tests share: starting an array from its
//! disks through the real start path, and letting its sync work finish.

use umd_sim::disk::SimDisk;
use umd_sim::host::SimHost;
use umd_sim::rng::Rng;
use umd_sim::world::{self, ArraySpec, Started};

/// Start the array on `disks` (`force`: as `umd run --force`); a refusal or
/// an error fails the test.
#[allow(dead_code)] // not every scenario starts through it
pub(crate) fn running(disks: Vec<SimDisk>, rng: &mut Rng, force: bool) -> Box<SimHost> {
    match world::start(disks, rng, force) {
        Ok(Started::Running(h)) => h,
        Ok(Started::Refused { why, .. } | Started::Torn { why }) => panic!("refused: {why}"),
        Err(e) => panic!("start: {e}"),
    }
}

/// Sync steps and md passes until no sync runs or is wanted.
#[allow(dead_code)] // not every scenario syncs
pub(crate) fn settle(host: &mut SimHost) {
    for _ in 0..10_000 {
        let busy = host.sync_step().expect("sync step");
        host.md_pass().expect("md pass");
        if !busy && !host.syncing() && host.array.sync_request().is_none() {
            return;
        }
    }
    panic!("the sync does not end");
}

/// A native array of `level` over `raid_disks` members of `member_bytes`:
/// 8 KiB chunks, no bitmap, created in sync.
#[allow(dead_code)] // not every scenario builds its own
pub(crate) fn spec(level: i32, raid_disks: u32, member_bytes: usize) -> ArraySpec {
    ArraySpec {
        level,
        raid_disks,
        chunk_kib: 8,
        bitmap_chunk_kib: None,
        assume_clean: true,
        member_bytes,
        external: false,
        v090: false,
        container_spares: 0,
        ppl: false,
    }
}

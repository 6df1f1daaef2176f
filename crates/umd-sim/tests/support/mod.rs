//! What the simulator's scenario tests share: starting an array from its
//! disks through the real start path, and letting its sync work finish.

use umd_sim::disk::SimDisk;
use umd_sim::host::SimHost;
use umd_sim::rng::Rng;
use umd_sim::world::{self, Started};

/// Start the array on `disks` (`force`: as `umd run --force`); a refusal or
/// an error fails the test.
pub(crate) fn running(disks: Vec<SimDisk>, rng: &mut Rng, force: bool) -> Box<SimHost> {
    match world::start(disks, rng, force) {
        Ok(Started::Running(h)) => h,
        Ok(Started::Refused { why, .. }) => panic!("refused: {why}"),
        Err(e) => panic!("start: {e}"),
    }
}

/// Sync steps and md passes until no sync runs or is wanted.
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

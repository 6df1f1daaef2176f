//! Spares on simulated disks, through the engine's own start path: a spare
//! recorded in the superblocks is kept by the next start and rebuilt into a
//! missing role (as md activates the spares mdadm gives it), and a parity
//! array that stopped uncleanly while a member was still recovering does
//! not start unless forced, since above its checkpoint that member is as
//! good as missing (md's write hole).

mod support;

use support::{running, settle};
use umd_sim::disk::{LossMode, SimDisk};
use umd_sim::rng::Rng;
use umd_sim::world::{self, ArraySpec, Started};

const MEMBER_BYTES: usize = 4 << 20;

fn raid5() -> ArraySpec {
    ArraySpec {
        level: 5,
        raid_disks: 3,
        chunk_kib: 8,
        bitmap_chunk_kib: None,
        assume_clean: true,
        member_bytes: MEMBER_BYTES,
        external: false,
        v090: false,
        container_spares: 0,
        ppl: false,
    }
}

fn pattern(seed: u8) -> Vec<u8> {
    (0..64 * 1024).map(|i| (i % 251) as u8 ^ seed).collect()
}

#[test]
fn a_recorded_spare_is_rebuilt_into_a_role_missing_at_the_next_start() {
    let mut rng = Rng::new(3);
    let disks = world::create(&raid5(), &mut rng).expect("create");
    let mut host = running(disks, &mut rng, false);
    let data = pattern(1);
    host.write(0, &data, true).expect("write");
    let spare = host
        .add_spare(SimDisk::new(MEMBER_BYTES), [7; 16])
        .expect("hot spare");
    assert_eq!(host.idle_spares(), 1, "nothing to rebuild: it waits");
    host.shutdown().expect("clean stop");
    let mut disks = std::mem::take(&mut host.io.disks);
    disks[1].vanish();

    let mut host = running(disks, &mut rng, false);
    assert_eq!(host.idle_spares(), 0, "the spare took the missing role");
    settle(&mut host);
    assert_eq!(host.array.degraded(), 0, "rebuilt");
    assert!(host.role_members().contains(&spare));
    assert_eq!(host.read(0, 128).expect("read"), data);
    host.shutdown().expect("clean stop");

    // The rebuilt spare holds member 1's data: the array reads the same
    // without member 0 now.
    let mut disks = std::mem::take(&mut host.io.disks);
    disks[0].vanish();
    let mut host = running(disks, &mut rng, false);
    assert_eq!(host.read(0, 128).expect("read"), data);
}

#[test]
fn a_dirty_parity_array_with_a_member_still_recovering_refuses_unless_forced() {
    let mut rng = Rng::new(5);
    let disks = world::create(&raid5(), &mut rng).expect("create");
    let mut host = running(disks, &mut rng, false);
    host.io.disks[1].vanish();
    // The write finds the member gone and fails it.
    host.write(0, &pattern(2), true).expect("degraded write");
    assert_eq!(host.array.degraded(), 1);
    // The md thread takes the failed member out of its slot; then it goes.
    host.md_pass().expect("md pass");
    assert_eq!(host.remove_failed().len(), 1);
    host.add_spare(SimDisk::new(MEMBER_BYTES), [9; 16])
        .expect("spare");
    // Part of the recovery, its checkpoint recorded.
    for _ in 0..12 {
        host.sync_step().expect("sync step");
        host.md_pass().expect("md pass");
    }
    assert!(host.syncing(), "still recovering");
    // A write in flight at the power loss leaves the array dirty.
    host.write(4096, &pattern(3), false).expect("write");
    let mut disks = std::mem::take(&mut host.io.disks);
    for d in &mut disks {
        d.power_loss(LossMode::KeepAll, &mut rng);
    }
    let Ok(Started::Refused { why, disks }) = world::start(disks, &mut rng, false) else {
        panic!("dirty with a member recovering must not start");
    };
    assert!(why.contains("still recovering"), "{why}");
    let mut host = running(disks, &mut rng, true);
    settle(&mut host);
    assert_eq!(
        host.array.degraded(),
        0,
        "forced: the recovery resumes and ends"
    );
}

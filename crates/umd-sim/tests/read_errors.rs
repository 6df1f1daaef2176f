//! Read errors on simulated disks: a latent sector (reads fail until it is
//! written) is rebuilt from the other members and rewritten, by a
//! foreground read and by a `check` pass alike (data and parity blocks), and
//! the member stays in the array; past `max_read_errors`, or with no
//! redundancy left to rebuild from, the member fails instead, and a read
//! that cannot be served is an error, never made-up data.

mod support;

use support::{running, settle, spec};
use umd_sim::host::SimHost;
use umd_sim::rng::Rng;
use umd_sim::world;

const MEMBER_BYTES: usize = 4 << 20;

fn check(host: &mut SimHost) -> String {
    let now = host.now;
    host.array
        .store("sync_action", "check", now)
        .expect("start a check");
    host.drain();
    settle(host);
    host.array.show("mismatch_cnt").expect("mismatch_cnt")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// An array of `level` holding a pattern over its first 128 KiB, running.
fn filled(level: i32, raid_disks: u32, rng: &mut Rng) -> (Box<SimHost>, Vec<u8>) {
    let disks = world::create(&spec(level, raid_disks, MEMBER_BYTES), rng).expect("create");
    let mut host = running(disks, rng, false);
    let data = pattern(128 * 1024, 5);
    host.write(0, &data, true).expect("write");
    (host, data)
}

fn errors(host: &SimHost, member: usize) -> String {
    host.array
        .show(&format!("dev-{}/errors", host.name(member)))
        .expect("errors")
}

/// Member 1's first chunks (8 KiB) hold, across these layouts, data and
/// (raid5/6) parity: latent sectors in chunks 0, 1 and 2 are met by the
/// check as data, P or Q blocks.
#[test]
fn a_check_rewrites_latent_sectors_and_the_member_stays() {
    for (level, disks) in [(1, 2), (5, 3), (6, 4), (10, 4)] {
        let mut rng = Rng::new(11);
        let (mut host, data) = filled(level, disks, &mut rng);
        let at = host.data_offset(1).expect("role 1");
        let member = host.role_members()[1];
        for chunk in 0..3 {
            host.io.disks[member].add_latent(at + chunk * 16 + 3);
        }
        assert_eq!(check(&mut host), "0", "raid{level}");
        assert_eq!(host.array.degraded(), 0, "raid{level}: the member stays");
        assert_eq!(host.read_errors_rewritten, 3, "raid{level}");
        assert_eq!(
            errors(&host, member),
            "24",
            "raid{level}: three 4 KiB blocks"
        );
        assert_eq!(check(&mut host), "0", "raid{level}: parity agrees");
        assert_eq!(host.read_errors_rewritten, 3, "raid{level}: healed");
        // Without member 0 the array reads from what was rewritten.
        host.shutdown().expect("clean stop");
        let mut disks = std::mem::take(&mut host.io.disks);
        disks[0].vanish();
        let mut host = running(disks, &mut rng, false);
        assert_eq!(host.read(0, 256).expect("read"), data, "raid{level}");
    }
}

#[test]
fn a_foreground_read_rewrites_a_latent_sector() {
    for (level, disks) in [(1, 2), (5, 3), (6, 4), (10, 4)] {
        let mut rng = Rng::new(12);
        let (mut host, data) = filled(level, disks, &mut rng);
        let at = host.data_offset(0).expect("role 0");
        let member = host.role_members()[0];
        // Chunk 1 of role 0: data in every layout here (raid6's chunk 0 of
        // role 0 is Q, which a read does not touch).
        host.io.disks[member].add_latent(at + 16 + 2);
        assert_eq!(host.read(0, 256).expect("read"), data, "raid{level}");
        assert_eq!(host.array.degraded(), 0, "raid{level}: the member stays");
        assert_eq!(host.read_errors_rewritten, 1, "raid{level}");
        assert_ne!(errors(&host, member), "0", "raid{level}: counted");
        assert_eq!(host.read(0, 256).expect("read"), data, "raid{level}");
        assert_eq!(host.read_errors_rewritten, 1, "raid{level}: healed");
    }
}

#[test]
fn past_max_read_errors_the_member_fails() {
    let mut rng = Rng::new(13);
    let (mut host, data) = filled(5, 3, &mut rng);
    let now = host.now;
    host.array
        .store("max_read_errors", "0", now)
        .expect("max_read_errors");
    let at = host.data_offset(1).expect("role 1");
    let member = host.role_members()[1];
    host.io.disks[member].add_latent(at + 3);
    assert_eq!(check(&mut host), "0");
    assert_eq!(host.array.degraded(), 1, "failed, not rewritten");
    assert_eq!(host.read_errors_rewritten, 0);
    assert_eq!(host.read(0, 256).expect("degraded read"), data);
}

/// raid5 with a member gone: a latent sector on another cannot be rebuilt.
/// The read is an error (md's EIO), never made-up data.
#[test]
fn without_redundancy_an_unreadable_block_is_an_error() {
    let mut rng = Rng::new(14);
    let (mut host, data) = filled(5, 3, &mut rng);
    host.shutdown().expect("clean stop");
    let mut disks = std::mem::take(&mut host.io.disks);
    disks[2].vanish();
    let mut host = running(disks, &mut rng, false);
    assert_eq!(host.array.degraded(), 1);
    let at = host.data_offset(0).expect("role 0");
    let member = host.role_members()[0];
    host.io.disks[member].add_latent(at + 2);
    assert!(host.read(0, 16).is_err(), "a block nobody can read");
    assert_eq!(host.read_errors_rewritten, 0);
    // What the other member holds still reads.
    assert_eq!(host.read(16, 16).expect("read"), data[16 * 512..32 * 512]);
}

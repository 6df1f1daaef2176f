//! Growing a raid5 and a raid6 by one member on simulated disks, through
//! the engine's grow driver (the order `umd grow` runs): every member write
//! of the grow is made the power-loss point in turn, the disks lose or tear
//! what their caches held, the grow is resumed from its checkpoint (`umd
//! grow --continue`), and the array must then start with its new size,
//! every byte written before the grow in place and the new space zeroes.
//! (The simulator's seeds draw grows too, with writes before and after.)

mod support;

use support::{running, spec};
use umd_sim::disk::{LossMode, SimDisk};
use umd_sim::members::{Fault, Members};
use umd_sim::reshape::{self, GrowStop};
use umd_sim::rng::Rng;
use umd_sim::world;

const MEMBER_BYTES: usize = 2 << 20;

/// The array, stopped cleanly after its whole first size was written with
/// a pattern; its disks, the members in role order, its size and the data.
fn written(level: i32, raid_disks: u32) -> (Vec<SimDisk>, Vec<usize>, u64, Vec<u8>) {
    let mut rng = Rng::new(7);
    let disks = world::create(&spec(level, raid_disks, MEMBER_BYTES), &mut rng).expect("create");
    let mut host = running(disks, &mut rng, false);
    let bytes = host.array_sectors as usize * 512;
    let data: Vec<u8> = (0..bytes)
        .map(|i| (i % 253) as u8 ^ (i >> 20) as u8)
        .collect();
    for (i, piece) in data.chunks(128 * 1024).enumerate() {
        host.write(i as u64 * 256, piece, true).expect("write");
    }
    let members = host.role_members();
    let sectors = host.array_sectors;
    host.shutdown().expect("clean stop");
    (std::mem::take(&mut host.io.disks), members, sectors, data)
}

/// What became of a grow with a power loss in it.
enum Ended {
    /// The grow ran to its end (the loss came after it, or never).
    Grown,
    /// The power failed and the grow was resumed to its end (or had not
    /// recorded anything yet).
    Resumed,
    /// The loss tore a member's superblock: `umd grow --continue` refuses.
    Torn,
}

/// Grow on `disks`, the power failing after member write `crash_after`;
/// resume after a loss.
fn grow(
    disks: Vec<SimDisk>,
    members: &[usize],
    crash_after: u64,
    seed: u64,
) -> (Vec<SimDisk>, Ended) {
    let mut rng = Rng::new(seed);
    let mut io = Members::new(disks, rng.fork());
    io.crash_after = Some(crash_after);
    let mut growing = None;
    let outcome = reshape::grow(&mut io, members, [9; 16], MEMBER_BYTES, 1, &mut growing);
    let mut disks = std::mem::take(&mut io.disks);
    match outcome {
        Ok(true) => return (disks, Ended::Grown),
        Ok(false) => panic!("the array cannot grow"),
        Err(GrowStop::Fault(Fault::Crash)) => {}
        Err(e) => panic!("grow: {e:?}"),
    }
    let mode = [LossMode::DropAll, LossMode::KeepAll, LossMode::Random][(seed / 2) as usize % 3];
    for d in &mut disks {
        d.power_loss(mode, &mut rng);
    }
    let Some(grow_disks) = growing else {
        return (disks, Ended::Resumed);
    };
    let mut io = Members::new(disks, rng.fork());
    let ended = match reshape::resume(&mut io, &grow_disks, 2) {
        Ok(()) => Ended::Resumed,
        Err(GrowStop::Refused(why)) if why.contains("torn") => Ended::Torn,
        Err(e) => panic!("resume: {e:?}"),
    };
    (std::mem::take(&mut io.disks), ended)
}

/// Start the array on `disks`: it holds `data` at 0 and zeroes after it up
/// to its size, which is `old_sectors` grown by one data member (or
/// unchanged if the power failed before the grow's first superblock was
/// durable).
fn check(disks: Vec<SimDisk>, data: &[u8], old_sectors: u64, data_members: u64) {
    let mut rng = Rng::new(3);
    let mut host = running(disks, &mut rng, false);
    let grown = old_sectors / data_members * (data_members + 1);
    assert!(
        host.array_sectors == old_sectors || host.array_sectors >= grown,
        "size {} neither {old_sectors} nor grown",
        host.array_sectors
    );
    let len = (data.len() / 512) as u64;
    assert!(
        host.read(0, len).expect("read") == data,
        "written data lost"
    );
    if host.array_sectors > len {
        let rest = host.read(len, host.array_sectors - len).expect("read");
        assert!(rest.iter().all(|&b| b == 0), "the new space reads zeroes");
    }
}

fn crash_points(level: i32, raid_disks: u32) {
    let (disks, members, sectors, data) = written(level, raid_disks);
    let data_members = u64::from(raid_disks) - if level == 6 { 2 } else { 1 };
    // Without a crash: the number of member writes the grow makes.
    let mut io = Members::new(disks.clone(), Rng::new(1));
    let mut growing = None;
    let grown = reshape::grow(&mut io, &members, [9; 16], MEMBER_BYTES, 1, &mut growing);
    assert!(grown.expect("grow"), "the array grows");
    let writes = io.writes_done;
    assert!(writes > 20, "a grow of many windows: {writes} writes");
    check(std::mem::take(&mut io.disks), &data, sectors, data_members);
    // Every other write as the crash point keeps the test short.
    let (mut points, mut torn) = (0, 0);
    for k in (1..=writes).step_by(2) {
        let (after, ended) = grow(disks.clone(), &members, k, k);
        points += 1;
        match ended {
            Ended::Grown => panic!("write {k} of {writes} is not a crash point"),
            Ended::Resumed => check(after, &data, sectors, data_members),
            Ended::Torn => torn += 1,
        }
    }
    // Torn superblocks need a torn two-sector write at the loss: rare.
    assert!(
        torn * 10 < points,
        "{torn} of {points} crash points tore a superblock"
    );
}

#[test]
fn raid5_grow_survives_a_power_loss_at_its_member_writes() {
    crash_points(5, 3);
}

#[test]
fn raid6_grow_survives_a_power_loss_at_its_member_writes() {
    crash_points(6, 4);
}

//! The pipelined sync pass under stress, end to end: the sync thread keeps
//! the reads of later windows in flight while it writes earlier ones, so
//! these tests attack what that could break. Foreground writes race a
//! repair that rewrites parity everywhere and then a rebuild, across
//! hundreds of windows (a window
//! whose range lock let a write slip in between its read and its write would
//! leave parity that a `check` finds, or data fio's verify rejects); and a
//! rebuild killed with -9 must leave a checkpoint below which the spare
//! already holds every byte (a checkpoint that covered a window read but not
//! yet written would point at stale bytes), then resume and finish. Last,
//! two dozen rebuilds at full speed, where the reader runs ahead of the
//! writes, under a storm of random writes, then `check`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::fio_load::fio_verify_at_depth;
use support::nbd_data::{copy_in, data_offset_sectors, export_size};
use support::{
    create, examine_field, mdadm_examine, pseudo_random, require_tool, sparse_members, Running,
    TempDir,
};

/// Member size, MiB: with 64 KiB chunks, 512 windows per pass.
const MEMBER_MIB: u64 = 32;
/// Chunk, KiB: small, so a pass has many windows.
const CHUNK_KIB: &str = "64";
/// Sync speed while racing, KiB/s (min and max): a pass over a member then
/// takes about 10 s, longer than fio's writes, which land in the windows
/// synced meanwhile.
const RACE_KIB: &str = "3000";
/// The arrays: raid5 over 4 members, recorded clean whatever they hold.
const RAID5_CLEAN: &[&str] = &[
    "--level",
    "5",
    "--raid-devices",
    "4",
    "--chunk",
    CHUNK_KIB,
    "--assume-clean",
];
/// Rebuilds of one member run back to back under the write storm.
const STORM_REBUILDS: usize = 24;
/// How long a pass may take on a loaded machine.
const PASS_TIMEOUT: Duration = Duration::from_secs(180);

/// fio writing 4 KiB blocks at random over the whole export, then (or with
/// `verify_only`, only) verifying every block it wrote.
fn fio(run: &Running, size_bytes: usize, seed: u32, verify_only: bool) -> Command {
    let size = (size_bytes / (1 << 20) * (1 << 20)).to_string();
    fio_verify_at_depth(run, "race", &size, u64::from(seed), 16, verify_only)
}

fn fio_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().expect("run fio");
    assert!(
        out.status.success(),
        "fio {what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn manage(run: &Running, args: &[&str]) {
    if let Err(e) = run.manage(args) {
        panic!("umd manage {args:?}: {e}");
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// Hold the sync at [`RACE_KIB`] whether or not foreground I/O flows.
fn slow_sync(run: &Running) {
    run.set("sync_speed_max", RACE_KIB).expect("sync_speed_max");
    run.set("sync_speed_min", RACE_KIB).expect("sync_speed_min");
}

/// Wait until `what` holds, or fail with the log.
fn wait_for(run: &Running, what: &str, done: impl Fn(&Running) -> bool) {
    let deadline = Instant::now() + PASS_TIMEOUT;
    while !done(run) {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached; log:\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first number of `sync_completed` ("done / total"), if a sync runs.
fn sync_done(run: &Running) -> Option<u64> {
    run.get("sync_completed").split(" / ").next()?.parse().ok()
}

/// Fill each member with its own pseudo-random bytes.
fn random_members(dir: &Path, n: usize, seed: u64) -> Vec<PathBuf> {
    let members = sparse_members(dir, n, MEMBER_MIB);
    for (i, m) in members.iter().enumerate() {
        let bytes = pseudo_random((MEMBER_MIB << 20) as usize, seed + i as u64);
        std::fs::write(m, bytes).expect("fill member");
    }
    members
}

/// `len` bytes of `member`'s data area from its start.
fn data_area(member: &Path, len: usize) -> Vec<u8> {
    let bytes = std::fs::read(member).expect("read member");
    let at = usize::try_from(data_offset_sectors(member) * 512).expect("small offset");
    bytes[at..at + len].to_vec()
}

/// Zero the 1.2 superblock (4 KiB from the start), so the member comes
/// back as a blank spare.
fn wipe_superblock(member: &Path) {
    use std::os::unix::fs::FileExt as _;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(member)
        .expect("open member");
    file.write_all_at(&[0; 4096], 4096)
        .expect("wipe superblock");
}

/// Wait until the survivors' superblocks record member 1 failed. A removal
/// before that write leaves the member's superblock slot taken and a later
/// `--add` of it refused with EEXIST (a known gap in `umd manage`).
fn wait_failure_recorded(run: &Running, survivor: &Path) {
    wait_for(run, "failure recorded", |_| {
        examine_field(&mdadm_examine(survivor), "Array State")
            .is_some_and(|s| s.starts_with("A.AA"))
    });
}

#[test]
fn foreground_writes_racing_a_repair_and_a_rebuild_leave_every_window_consistent() {
    for tool in ["fio", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("pipeline-race");
    // Random members, recorded clean: the repair rewrites parity in every
    // window (an initial resync would do the same, but starts before its
    // speed can be lowered).
    let all = random_members(dir.path(), 5, 7100);
    let (members, spare) = all.split_at(4);
    create(members, RAID5_CLEAN);
    let run = Running::start(dir.path(), members);
    slow_sync(&run);
    let size = export_size(&run);
    run.set("sync_action", "repair").expect("repair");
    fio_ok(&mut fio(&run, size, 11, false), "during the repair");
    assert_eq!(
        run.get("sync_action"),
        "repair",
        "the repair still runs after the writes"
    );
    wait_for(&run, "repair done", |r| r.get("sync_action") == "idle");
    let repaired: u64 = run.get("mismatch_cnt").parse().expect("mismatch_cnt");
    assert!(repaired > 0, "the random members had parity to repair");
    run.set("sync_speed_min", "1000").expect("speed");
    run.set("sync_speed_max", "2000000").expect("speed");
    run.set("sync_action", "check").expect("check");
    run.wait_idle(PASS_TIMEOUT);
    assert_eq!(run.get("mismatch_cnt"), "0", "check after the raced repair");
    fio_ok(&mut fio(&run, size, 11, true), "verify after the repair");

    // Now a rebuild onto a spare, raced by new writes.
    slow_sync(&run);
    manage(&run, &["--fail", "m1.img"]);
    manage(&run, &["--remove", "m1.img"]);
    manage(&run, &["--add", path_str(&spare[0])]);
    wait_for(&run, "rebuild started", |r| {
        r.get("sync_action") == "recover"
    });
    fio_ok(&mut fio(&run, size, 12, false), "during the rebuild");
    assert_eq!(
        run.get("sync_action"),
        "recover",
        "the rebuild still runs after the writes"
    );
    wait_for(&run, "rebuilt", |r| {
        r.get("degraded") == "0" && r.get("sync_action") == "idle"
    });
    run.set("sync_speed_min", "1000").expect("speed");
    run.set("sync_speed_max", "2000000").expect("speed");
    run.set("sync_action", "check").expect("check");
    run.wait_idle(PASS_TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "check after the raced rebuild"
    );
    fio_ok(&mut fio(&run, size, 12, true), "verify after the rebuild");
    run.stop();
}

#[test]
fn a_rebuild_killed_mid_pass_checkpoints_only_written_windows() {
    for tool in ["nbdcopy", "nbdinfo", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("pipeline-kill");
    // The spare starts with bytes of its own, so a window it never got
    // cannot pass for rebuilt.
    let all = random_members(dir.path(), 5, 7200);
    let (members, spare) = all.split_at(4);
    create(members, RAID5_CLEAN);
    let run = Running::start(dir.path(), members);
    let size = export_size(&run);
    copy_in(&dir, &run, &pseudo_random(size, 7300));
    wait_for(&run, "clean", |r| r.get("array_state") == "clean");
    // m1 keeps what its role must hold: nothing is written after it fails.
    manage(&run, &["--fail", "m1.img"]);
    manage(&run, &["--remove", "m1.img"]);
    run.set("sync_speed_max", RACE_KIB).expect("speed");
    manage(&run, &["--add", path_str(&spare[0])]);
    let total = MEMBER_MIB * 2048;
    let component_kib: usize = run.get("component_size").parse().expect("component_size");
    wait_for(&run, "a third rebuilt", |r| {
        sync_done(r).unwrap_or(0) > total / 3
    });
    run.kill9();

    let text = mdadm_examine(&spare[0]);
    let checkpoint: u64 = examine_field(&text, "Recovery Offset")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint on the spare:\n{text}"));
    assert!(checkpoint > 0, "the checkpoint advanced:\n{text}");
    assert_eq!(
        examine_field(&text, "Device Role").as_deref(),
        Some("Active device 1")
    );
    let len = usize::try_from(checkpoint * 512).expect("small");
    assert!(
        data_area(&spare[0], len) == data_area(&members[1], len),
        "the spare holds every byte below its checkpoint ({checkpoint} sectors)"
    );

    let survivors = [
        members[0].clone(),
        members[2].clone(),
        members[3].clone(),
        spare[0].clone(),
    ];
    let run = Running::start(dir.path(), &survivors);
    wait_for(&run, "rebuilt after the restart", |r| {
        r.get("degraded") == "0" && r.get("sync_action") == "idle"
    });
    run.set("sync_action", "check").expect("check");
    run.wait_idle(PASS_TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "check after the resumed rebuild"
    );
    run.stop();
    let used = component_kib * 1024;
    assert!(
        data_area(&spare[0], used) == data_area(&members[1], used),
        "the resumed rebuild completed the spare"
    );
}

#[test]
fn rebuilds_at_full_speed_under_a_write_storm_leave_parity_consistent() {
    for tool in ["fio", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("pipeline-storm");
    let members = random_members(dir.path(), 4, 7400);
    // md's default 512 KiB chunk: long windows, each a big target for the
    // storm's writes while it waits between its read and its write.
    create(
        &members,
        &["--level", "5", "--raid-devices", "4", "--assume-clean"],
    );
    let run = Running::start(dir.path(), &members);
    // Consistent first, so every later mismatch is a race lost.
    run.set("sync_action", "repair").expect("repair");
    run.wait_idle(PASS_TIMEOUT);
    // Unthrottled: the reader runs ahead and windows wait, read and locked,
    // while the finisher writes earlier ones; writes hit them meanwhile.
    run.set("sync_speed_max", "2000000").expect("speed");
    run.set("sync_speed_min", "2000000").expect("speed");
    support::wait_until_clean(&run);
    let mut storm = support::write_storm(&run, &[]);
    support::wait_until_writing(&run);
    for round in 0..STORM_REBUILDS {
        manage(&run, &["--fail", "m1.img"]);
        wait_failure_recorded(&run, &members[0]);
        manage(&run, &["--remove", "m1.img"]);
        wipe_superblock(&members[1]);
        manage(&run, &["--add", path_str(&members[1])]);
        wait_for(&run, &format!("rebuild {round}"), |r| {
            r.get("degraded") == "0" && r.get("sync_action") == "idle"
        });
    }
    let _ = storm.kill();
    let _ = storm.wait();
    run.set("sync_action", "check").expect("check");
    run.wait_idle(PASS_TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "check after {STORM_REBUILDS} rebuilds under writes"
    );
    run.stop();
}

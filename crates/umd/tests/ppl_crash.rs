//! The write hole, closed: a raid5 with a partial parity log (`umd create
//! --consistency-policy ppl`) is killed (`kill -9`) while writes are in
//! flight, then started again with every member and, from a copy of the
//! same crash, with one member missing.
//!
//! The writes in flight touch only the first data chunk of each stripe
//! (fio's strided zones: 64 KiB written, 64 KiB skipped, on a 3-member
//! raid5 with 64 KiB chunks), so every second data chunk was never written
//! and must read back exactly as it was, even where it must be rebuilt from
//! parity. With every member, the log is replayed instead of a resync and a
//! `check` finds no mismatch. With one missing, the array starts without
//! `--force` (the point of PPL) and the rebuilt chunks are intact.
//!
//! The crash is made the worst it can be: in both copies the parity rows of
//! every stripe the logs name are overwritten with garbage, as if every
//! parity write in flight was lost half done. Only replay makes them right.

#[path = "ppl/crash.rs"]
mod crash;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{pseudo_random, require_tool, run_ok, sparse_members, Running, TempDir};

const MEMBER_MIB: u64 = 32;
const TIMEOUT: Duration = Duration::from_secs(180);

/// Read the whole array through NBD.
fn read_all(run: &Running, dir: &Path, name: &str) -> Vec<u8> {
    let out = dir.join(name);
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&out));
    std::fs::read(&out).expect("read back")
}

/// Every second data chunk (never written in flight) equals `before`.
fn assert_untouched_chunks(got: &[u8], before: &[u8], what: &str) {
    assert_eq!(got.len(), before.len(), "{what}: array size");
    for (i, (g, b)) in got
        .chunks(crash::CHUNK)
        .zip(before.chunks(crash::CHUNK))
        .enumerate()
    {
        if i % 2 == 1 {
            assert!(g == b, "{what}: chunk {i}, not written in flight, changed");
        }
    }
}

/// A `check` pass finds every stripe's parity right.
fn assert_parity_checks_clean(run: &Running) {
    run.set("sync_action", "check").expect("start a check");
    run.wait_idle(TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "parity disagrees after replay"
    );
}

fn copy_members(members: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    members
        .iter()
        .map(|m| {
            let to = dir.join(m.file_name().expect("member name"));
            run_ok(Command::new("cp").arg("--sparse=always").arg(m).arg(&to));
            to
        })
        .collect()
}

#[test]
fn ppl_raid5_survives_kill9_and_a_missing_member() {
    for tool in ["nbdcopy", "fio", "cp"] {
        require_tool(tool);
    }
    let dir = TempDir::new("ppl-crash");
    let members = sparse_members(dir.path(), 3, MEMBER_MIB);
    crash::create_ppl_raid5(&members);
    let run = Running::start(dir.path(), &members);
    assert_eq!(run.get("consistency_policy"), "ppl");
    run.wait_idle(TIMEOUT);
    let size: usize = run
        .get("array_size")
        .parse::<usize>()
        .map_or(0, |k| k * 1024);
    let size = if size > 0 {
        size
    } else {
        let out = run_ok(Command::new("nbdinfo").arg("--size").arg(run.uri()));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("size")
    };
    let before = pseudo_random(size, 11);
    let src = dir.path().join("before.bin");
    std::fs::write(&src, &before).expect("write source");
    run_ok(Command::new("nbdcopy").arg(&src).arg(run.uri()));
    crash::crash_mid_write(run, size);

    // The same crash, started with the last member missing: no --force.
    let copy_dir = TempDir::new("ppl-crash-degraded");
    let copies = copy_members(&members, copy_dir.path());
    assert!(
        crash::lose_logged_parity(&copies) > 0,
        "the crash left no log entries"
    );
    crash::lose_logged_parity(&members);
    let degraded = Running::start(copy_dir.path(), &copies[..2]);
    assert_eq!(degraded.get("degraded"), "1");
    let got = read_all(&degraded, copy_dir.path(), "degraded.bin");
    assert_untouched_chunks(&got, &before, "degraded after replay");
    degraded.stop();

    // Every member: the log replaces the resync, and parity checks clean.
    let run = Running::start(dir.path(), &members);
    let log = run.log_text();
    assert!(
        log.contains("entries replayed, 0 mismatches") && !log.contains(" 0 entries replayed"),
        "no log was replayed:\n{log}"
    );
    assert_eq!(
        run.get("resync_start"),
        "none",
        "replay leaves nothing to resync"
    );
    assert_parity_checks_clean(&run);
    let got = read_all(&run, dir.path(), "after.bin");
    assert_untouched_chunks(&got, &before, "after replay");
    run.stop();
}

/// A spare added to a running PPL raid5 is logged onto like the others: a
/// stripe whose parity lands on it is written (before, the write failed
/// with EIO, the new member having no log), and the next start, dirty from
/// a kill, replays its log too.
#[test]
fn a_spare_added_to_a_running_ppl_raid5_takes_its_log() {
    for tool in ["nbdcopy", "cmp"] {
        require_tool(tool);
    }
    let dir = TempDir::new("ppl-spare");
    let mut members = sparse_members(dir.path(), 4, MEMBER_MIB);
    let spare = members.pop().expect("four files");
    crash::create_ppl_raid5(&members);
    let run = Running::start(dir.path(), &members);
    run.wait_idle(TIMEOUT);
    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let failed = name(&members[1]).expect("member name");
    run.manage(&["--fail", &failed]).expect("fail a member");
    run.manage(&["--remove", &failed]).expect("remove it");
    run.manage(&["--add", spare.to_str().expect("utf-8 path")])
        .expect("add a spare");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while run.get("degraded") != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the spare was not rebuilt"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let size = 8 << 20;
    let data = pseudo_random(size, 23);
    let src = dir.path().join("data.bin");
    std::fs::write(&src, &data).expect("write source");
    // Every stripe of 8 MiB: a third of them have their parity on the spare.
    run_ok(
        Command::new("nbdcopy")
            .arg(&src)
            .arg(run.uri())
            .arg("--flush"),
    );
    let got = read_all(&run, dir.path(), "back.bin");
    assert!(got[..size] == data[..], "the data read back differs");
    run.stop();
    // Killed mid-write, its log on the spare must be replayed at the start.
    let members = vec![members[0].clone(), spare, members[2].clone()];
    let run = Running::start(dir.path(), &members);
    crash::crash_mid_write(run, size);
    let run = Running::start(dir.path(), &members);
    let log = run.log_text();
    assert!(
        log.contains("entries replayed, 0 mismatches"),
        "the logs were not replayed cleanly:\n{log}"
    );
    assert_parity_checks_clean(&run);
    run.stop();
}

//! Stripe gathering end to end: several clients stream writes smaller than a
//! raid5 stripe side by side, at queue depth, through `umd run`'s NBD export.
//!
//! What must hold: every byte reads back as written (fio's crc32c check of
//! each job's own region, then a whole-export nbdcopy round trip over
//! several connections), a `check` finds `mismatch_cnt` 0 (every gathered
//! stripe got the parity of all of its data), and after a clean stop the
//! members hold exactly the data written. The log's counters show that
//! pieces did meet in full stripes, so the test exercises the mechanism
//! rather than the ordinary path.

mod support;

use std::fs;
use std::process::Command;
use std::time::Duration;
use support::{cat, create, pseudo_random, require_tool, run_ok, sparse_members, Running, TempDir};

const MEMBER_MIB: u64 = 16;
/// 64 KiB chunks on 4 members: a 192 KiB stripe, so 64, 96, 128 and 160 KiB
/// requests all leave stripes partly written for their neighbours.
const CHUNK_KIB: &str = "64";
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// One fio run, four jobs streaming sequential writes of different sizes into
/// their own regions (aligned and unaligned to stripes), each with 8 requests
/// in flight; one job also sends FLUSHes. Each job then verifies its region.
fn fio_adjacent_streams(run: &Running) {
    let mut args = vec![
        "--ioengine=nbd".to_string(),
        format!("--uri={}", run.uri()),
        "--iodepth=8".into(),
        "--rw=write".into(),
        "--verify=crc32c".into(),
        "--do_verify=1".into(),
        "--verify_fatal=1".into(),
        "--verify_state_save=0".into(),
    ];
    // (block size, offset, size): sizes are whole blocks.
    let jobs = [
        ("128k", "0", "6m"),
        ("96k", "6m", "6m"),
        ("160k", "12m", "5m"),
        ("64k", "17440k", "6m"),
    ];
    for (i, (bs, offset, size)) in jobs.iter().enumerate() {
        args.push(format!("--name=stream{i}"));
        args.push(format!("--bs={bs}"));
        args.push(format!("--offset={offset}"));
        args.push(format!("--size={size}"));
        if i == 1 {
            args.push("--fsync=3".into());
        }
    }
    run_ok(Command::new("fio").args(&args));
}

/// The gathered-flush counters the host logs when it stops.
fn gathered_full_stripes(log: &str) -> u64 {
    let counters = log
        .lines()
        .find_map(|l| l.split("gather_flushes=[").nth(1))
        .unwrap_or_else(|| panic!("no gathering counters in the log:\n{log}"));
    let first = counters.split([',', ']']).next().unwrap_or_default();
    first.trim().parse().expect("a count")
}

#[test]
fn adjacent_partial_stripes_from_concurrent_clients() {
    for tool in ["fio", "nbdcopy"] {
        require_tool(tool);
    }
    let dir = TempDir::new("gather");
    let members = sparse_members(dir.path(), 4, MEMBER_MIB);
    create(
        &members,
        &[
            "--level",
            "5",
            "--raid-devices",
            "4",
            "--chunk",
            CHUNK_KIB,
            "--assume-clean",
        ],
    );
    let run = Running::start_with_env(dir.path(), &members, &[], &[("UMD_LOG", "info")]);
    fio_adjacent_streams(&run);

    // The whole export, written and read back over 4 connections of 256 KiB
    // requests (a stripe and a third each).
    let size_out = run_ok(Command::new("nbdinfo").arg("--size").arg(run.uri()));
    let size: usize = String::from_utf8_lossy(&size_out.stdout)
        .trim()
        .parse()
        .expect("nbdinfo --size prints a number");
    let data = pseudo_random(size, 0x6a7e);
    let src = dir.path().join("data.bin");
    let back = dir.path().join("back.bin");
    fs::write(&src, &data).expect("write source");
    run_ok(
        Command::new("nbdcopy")
            .args(["--connections=4", "--request-size=262144"])
            .arg(&src)
            .arg(run.uri()),
    );
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&back));
    assert!(
        fs::read(&back).expect("read back") == data,
        "data read back through NBD differs from what was written"
    );

    run.set("sync_action", "check").expect("start a check");
    run.wait_idle(CHECK_TIMEOUT);
    assert_eq!(run.get("mismatch_cnt"), "0", "a stripe's parity is wrong");
    let log_path = run.log.clone();
    run.stop();
    assert!(
        cat(&members) == data,
        "umd cat after a clean stop differs from the data written"
    );
    let log = fs::read_to_string(&log_path).expect("read the log");
    assert!(
        gathered_full_stripes(&log) > 0,
        "no pieces met in a full stripe: the test did not exercise gathering\n{log}"
    );
}

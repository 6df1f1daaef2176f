//! Unclean stops: `kill -9` while writes are in flight, then run again.
//!
//! What must hold (md's promises): the superblocks say the array was dirty,
//! umd resyncs it (with an internal bitmap, only the chunks whose bits were
//! set), afterwards a `check` finds `mismatch_cnt` 0, and every write that
//! was acknowledged after a FLUSH or with FUA reads back intact.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;
use support::{
    create, examine_field, mdadm_examine, pseudo_random, require_tool, run_ok, sparse_members,
    Running, TempDir,
};

const MEMBER_MIB: u64 = 32;
const RESYNC_TIMEOUT: Duration = Duration::from_secs(180);

fn check_clean_parity(run: &Running) {
    run.set("sync_action", "check").expect("start a check");
    run.wait_idle(RESYNC_TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "parity or copies disagree after resync"
    );
}

fn crash_case(level: &str, disks: usize, bitmap: bool) {
    for tool in ["nbdcopy", "qemu-io", "fio", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new(&format!("crash-{level}-{bitmap}"));
    let members = sparse_members(dir.path(), disks, MEMBER_MIB);
    let disks_s = disks.to_string();
    let mut opts = vec![
        "--level",
        level,
        "--raid-devices",
        &disks_s,
        "--chunk",
        "64",
    ];
    if bitmap {
        opts.extend_from_slice(&["--bitmap", "internal"]);
    }
    create(&members, &opts);
    let run = Running::start(dir.path(), &members);
    run.wait_idle(RESYNC_TIMEOUT);
    // Acknowledged data: nbdcopy flushes before it exits successfully.
    let size: usize = run.get("array_size").parse::<usize>().map_or_else(
        |_| {
            let out = run_ok(Command::new("nbdinfo").arg("--size").arg(run.uri()));
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("size")
        },
        |kib| kib * 1024,
    );
    let half = size / 2;
    let data = pseudo_random(half, 7);
    let src = dir.path().join("first-half.bin");
    std::fs::write(&src, &data).expect("write source");
    run_ok(Command::new("nbdcopy").arg(&src).arg(run.uri()));
    // A FUA write in the second half, then a storm of unflushed writes there.
    let qemu_uri = run.uri();
    let fua_at = half + 65536;
    run_ok(Command::new("qemu-io").args([
        "-f",
        "raw",
        &qemu_uri,
        "-c",
        &format!("write -F -P 0xc3 {fua_at} 65536"),
    ]));
    let mut storm = Command::new("fio")
        .args([
            "--name=storm",
            "--ioengine=nbd",
            &format!("--uri={}", run.uri()),
            "--rw=randwrite",
            "--bs=4k",
            "--iodepth=32",
            &format!("--offset={}", half + (1 << 20)),
            &format!("--size={}", size - half - (1 << 20)),
            "--time_based",
            "--runtime=30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fio");
    std::thread::sleep(Duration::from_millis(1500));
    run.kill9();
    let _ = storm.kill();
    let _ = storm.wait();

    // The superblocks must say the array was in use.
    let text = mdadm_examine(&members[0]);
    let state = examine_field(&text, "State").unwrap_or_default();
    assert!(
        state.starts_with("active"),
        "State after kill -9 is {state:?}:\n{text}"
    );
    if bitmap {
        let x = run_ok(Command::new("mdadm").arg("-X").arg(&members[0]));
        let x = String::from_utf8_lossy(&x.stdout);
        let dirty = x
            .lines()
            .find_map(|l| l.split("Bitmap : ").nth(1))
            .and_then(|r| r.split(" bits (chunks), ").nth(1))
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        assert!(
            dirty.is_some_and(|d| d > 0),
            "no dirty bits after kill -9:\n{x}"
        );
    }

    let run = Running::start(dir.path(), &members);
    run.wait_idle(RESYNC_TIMEOUT);
    if bitmap {
        assert!(
            run.log_text().contains("dirty bitmap chunks"),
            "resync did not use the bitmap:\n{}",
            run.log_text()
        );
    }
    check_clean_parity(&run);
    let back = dir.path().join("back.bin");
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&back));
    let got = std::fs::read(&back).expect("read back");
    assert!(
        got[..half] == data[..],
        "flushed data changed across kill -9"
    );
    assert!(
        got[fua_at..fua_at + 65536].iter().all(|&b| b == 0xc3),
        "a FUA write was lost across kill -9"
    );
    run.stop();
    let text = mdadm_examine(&members[0]);
    let state = examine_field(&text, "State").unwrap_or_default();
    assert!(
        state.starts_with("clean"),
        "State after a clean stop is {state:?}"
    );
}

#[test]
fn raid5_kill9_resyncs_everything() {
    crash_case("5", 4, false);
}

#[test]
fn raid5_kill9_with_bitmap_resyncs_dirty_chunks() {
    crash_case("5", 4, true);
}

#[test]
fn raid1_kill9_with_bitmap() {
    crash_case("1", 2, true);
}

#[test]
fn raid6_kill9() {
    crash_case("6", 5, false);
}

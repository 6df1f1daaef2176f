//! Unclean stops: `kill -9` while writes are in flight, then run again.
//!
//! What must hold (md's promises): the superblocks say the array was dirty,
//! umd resyncs it (with an internal bitmap, only the chunks whose bits were
//! set), afterwards a `check` finds `mismatch_cnt` 0, and every write that
//! was acknowledged after a FLUSH or with FUA reads back intact.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{
    create, examine_field, mdadm_examine, pseudo_random, require_tool, run_ok, sparse_members,
    wait_until_writing, write_storm, Running, TempDir,
};

const MEMBER_MIB: u64 = 32;
const RESYNC_TIMEOUT: Duration = Duration::from_secs(180);
/// Where a 1.2 member's bitmap starts: superblock at 8 sectors, bitmap 8
/// sectors after it (mdadm's placement, formats.md §3.1).
const BITMAP_AREA_1_2: usize = 16 * 512;

fn check_clean_parity(run: &Running) {
    run.set("sync_action", "check").expect("start a check");
    run.wait_idle(RESYNC_TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "parity or copies disagree after resync"
    );
}

/// (bits, dirty bits) of a 1.2 member's bitmap, as the host's mdadm reads it.
fn bitmap_bits(dir: &TempDir, member: &std::path::Path) -> (u64, u64) {
    // mdadm -X reads a regular file as a bitmap file: hand it the area.
    let image = std::fs::read(member).expect("read member");
    let area = dir.path().join("bitmap.bin");
    std::fs::write(&area, &image[BITMAP_AREA_1_2..BITMAP_AREA_1_2 + (64 << 10)])
        .expect("write bitmap area");
    let x = run_ok(Command::new("mdadm").arg("-X").arg(&area));
    let x = String::from_utf8_lossy(&x.stdout);
    // "          Bitmap : 31 bits (chunks), 4 dirty (12.9%)"
    let line = x
        .lines()
        .find_map(|l| l.split("Bitmap : ").nth(1))
        .unwrap_or_else(|| panic!("no Bitmap line in mdadm -X:\n{x}"));
    let mut words = line.split_whitespace();
    let total = words.next().and_then(|n| n.parse().ok());
    let dirty = words.nth(2).and_then(|n| n.parse().ok());
    match (total, dirty) {
        (Some(t), Some(d)) => (t, d),
        _ => panic!("cannot read the bit counts in {line:?}"),
    }
}

fn crash_case(level: &str, disks: usize, bitmap: bool) {
    for tool in ["nbdcopy", "qemu-io", "fio", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new(&format!("crash-{level}-{bitmap}"));
    let members = sparse_members(dir.path(), disks, MEMBER_MIB);
    let disks_s = disks.to_string();
    let mut opts = vec!["--level", level, "--raid-devices", &disks_s];
    if level != "1" {
        opts.extend_from_slice(&["--chunk", "64"]);
    }
    if bitmap {
        // Small bitmap chunks, so a crash leaves only some of them dirty.
        opts.extend_from_slice(&["--bitmap", "internal", "--bitmap-chunk", "1024"]);
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
    if bitmap {
        // md clears bits lazily, after the chunks stayed idle for up to two
        // daemon_sleep periods (5 s each): wait for the first half to clear.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while bitmap_bits(&dir, &members[0]).1 > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "bitmap bits never cleared"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // A FUA write in the second half, then a storm of unflushed writes there.
    let qemu_uri = run.uri();
    let fua_at = half + 65536;
    run_ok(Command::new("qemu-io").args([
        "-f",
        "raw",
        &qemu_uri,
        "-c",
        &format!("write -f -P 0xc3 {fua_at} 65536"),
    ]));
    let mut storm = write_storm(
        &run,
        &[
            format!("--offset={}", half + (1 << 20)),
            format!("--size={}", size - half - (1 << 20)),
        ],
    );
    // Kill only once the writes are flowing: the array must be dirty.
    wait_until_writing(&run);
    std::thread::sleep(Duration::from_millis(500));
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
        let (total, dirty) = bitmap_bits(&dir, &members[0]);
        assert!(
            dirty > 0 && dirty < total,
            "after kill -9 expected some but not all of {total} bits dirty, found {dirty}"
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

/// Two dirty bitmap chunks apart from each other (two resync ranges whose
/// bits share one bitmap block): the resync clears both, and the block is
/// written once with both bits cleared, not twice in one batch.
#[test]
fn two_dirty_chunks_in_one_bitmap_block_resync_and_clear() {
    for tool in ["qemu-io", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("crash-two-chunks");
    let members = sparse_members(dir.path(), 2, MEMBER_MIB);
    create(
        &members,
        &[
            "--level",
            "1",
            "--raid-devices",
            "2",
            "--assume-clean",
            "--bitmap",
            "internal",
            "--bitmap-chunk",
            "1024",
        ],
    );
    let run = Running::start(dir.path(), &members);
    // Chunks 1 and 5 of 1 MiB, acknowledged and flushed; the bits clear
    // lazily, seconds later, so they are still set when the process dies.
    let uri = run.uri();
    for (at, pattern) in [(1u64 << 20, 0x5a), (5 << 20, 0xa5)] {
        run_ok(Command::new("qemu-io").args([
            "-f",
            "raw",
            &uri,
            "-c",
            &format!("write -P {pattern} {at} 4096"),
            "-c",
            "flush",
        ]));
    }
    run.kill9();
    assert_eq!(bitmap_bits(&dir, &members[0]).1, 2, "two dirty chunks");
    let run = Running::start(dir.path(), &members);
    run.wait_idle(Duration::from_secs(30));
    assert!(
        run.log_text().contains("2 dirty bitmap chunks"),
        "resync of the two chunks:\n{}",
        run.log_text()
    );
    check_clean_parity(&run);
    let uri = run.uri();
    for (at, pattern) in [(1u64 << 20, 0x5a), (5 << 20, 0xa5)] {
        run_ok(Command::new("qemu-io").args([
            "-f",
            "raw",
            "-r",
            &uri,
            "-c",
            &format!("read -P {pattern} {at} 4096"),
        ]));
    }
    run.stop();
    assert_eq!(bitmap_bits(&dir, &members[0]).1, 0, "both bits cleared");
}

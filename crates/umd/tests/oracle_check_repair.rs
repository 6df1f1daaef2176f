//! The kernel as the judge of umd's raid6 check and repair: on a raid6 with
//! blocks corrupted behind umd's back (one data block, one P block, and one
//! stripe with two wrong members), Linux's `check` counts the same
//! `mismatch_cnt` as umd's `check`; after umd's `repair` Linux's `check`
//! finds 0 and Linux reads the same bytes as `umd cat`. One VM boot.

#[path = "oracle/locate.rs"]
mod locate;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::raid6::{corrupt_block, data_offset_sectors, written_raid6};
use support::{cat, run_ok, sha256_hex, Running, TempDir};

const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
/// Sectors per 64 KiB chunk.
const CHUNK_SECTORS: u64 = 128;

/// Runs in the guest: check each set with md, print the counts and set B's hash.
const GUEST: &str = r#"set -eu
set -- $MDVM_DISKS
a="$1 $2 $3 $4 $5"
shift 5
b="$1 $2 $3 $4 $5"
check() {
    echo check > /sys/block/$1/md/sync_action
    while [ "$(cat /sys/block/$1/md/sync_action)" != idle ]; do sleep 1; done
    echo "$2 mismatch_cnt $(cat /sys/block/$1/md/mismatch_cnt)"
}
mdadm --assemble /dev/md0 --run $a >/dev/null 2>&1
check md0 A
mdadm --stop /dev/md0 >/dev/null 2>&1
mdadm --assemble /dev/md1 --run $b >/dev/null 2>&1
check md1 B
echo "B sha256 $(sha256sum /dev/md1 | cut -d' ' -f1)"
mdadm --stop /dev/md1 >/dev/null 2>&1
"#;

fn umd_action(members: &[PathBuf], dir: &Path, action: &str) -> String {
    let run = Running::start(dir, members);
    run.set("sync_action", action).expect("sync_action");
    run.wait_idle(SYNC_TIMEOUT);
    let count = run.get("mismatch_cnt");
    run.stop();
    count
}

fn guest_value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).map(str::trim))
        .unwrap_or_else(|| panic!("no {key:?} in the guest output:\n{out}"))
}

#[test]
fn linux_agrees_with_umds_raid6_check_and_repair() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_check_repair") else {
        return;
    };
    let dir = TempDir::new("oracle-checkrepair");
    let a_dir = dir.path().join("a");
    let b_dir = dir.path().join("b");
    fs::create_dir_all(&a_dir).expect("dir a");
    fs::create_dir_all(&b_dir).expect("dir b");
    let a = written_raid6(&a_dir, 12, 0x0c4e);
    let offset = data_offset_sectors(&a[0]);
    // Left-symmetric raid6 on 5: stripe 0 data on member 2; stripe 3 P on
    // member 1; stripe 6 data on member 0 and Q on member 4 (two wrong).
    corrupt_block(&a[2], offset, 16);
    corrupt_block(&a[1], offset, 3 * CHUNK_SECTORS + 40);
    corrupt_block(&a[0], offset, 6 * CHUNK_SECTORS + 8);
    corrupt_block(&a[4], offset, 6 * CHUNK_SECTORS + 8);
    let b: Vec<PathBuf> = a
        .iter()
        .map(|m| {
            let to = b_dir.join(m.file_name().expect("name"));
            fs::copy(m, &to).expect("copy member");
            to
        })
        .collect();
    let umd_check = umd_action(&a, &a_dir, "check");
    assert_eq!(umd_check, "24", "three differing 4 KiB blocks");
    assert_eq!(umd_action(&b, &b_dir, "repair"), umd_check);
    let umd_content = sha256_hex(&cat(&b));

    let script = dir.path().join("guest.sh");
    fs::write(&script, GUEST).expect("guest script");
    let accel = std::env::var("UMD_ORACLE_ACCEL").unwrap_or_else(|_| "tcg".to_string());
    let out = run_ok(
        Command::new(&md_vm)
            .arg("--quiet")
            .args(["--accel", &accel, "--timeout", "600", "--script"])
            .arg(&script)
            .arg("--")
            .args(&a)
            .args(&b),
    );
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        guest_value(&out, "A mismatch_cnt"),
        umd_check,
        "Linux counts the corrupted set as umd does"
    );
    assert_eq!(
        guest_value(&out, "B mismatch_cnt"),
        "0",
        "Linux finds umd's repair clean"
    );
    assert_eq!(
        guest_value(&out, "B sha256"),
        umd_content,
        "Linux reads the repaired array as umd does"
    );
}

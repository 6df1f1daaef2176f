//! Kernel cross-check of the partial parity log (md's PPL), both directions.
//!
//! (a) mdadm makes a raid5 with `--consistency-policy=ppl` in the VM and the
//! kernel fills it; `umd run` shows `consistency_policy` `ppl`, writes more
//! at offsets that are not chunk aligned (partial-stripe writes, so umd logs
//! partial parity), and stops cleanly. (b) `umd create --consistency-policy
//! ppl` makes one and umd fills it. (c) umd is killed (`kill -9`) while
//! writes are in flight on a PPL array, and the parity of every logged
//! stripe is then clobbered (the worst crash); (d) is a copy of (c) without
//! its last member.
//!
//! One VM boot then judges them all: the kernel must assemble (a) and (b)
//! with `consistency_policy` `ppl`, no resync, the sha256 of the data
//! written, and `check` must find `mismatch_cnt` 0. For (c) the kernel must
//! replay umd's log (no resync left: `resync_start` none) and check clean;
//! for (d) it must start degraded and, in both, every chunk that was not
//! written in flight must read back as before.
//!
//! The other direction (`umd_replays_the_kernels_log`): the kernel loses
//! power (`mdvm-crash`) while writing a PPL raid5; umd replays the kernel's
//! MULTIPLE_PPLS log, with every member (no resync, `check` clean) and with
//! one missing (starts without `--force`), and untouched chunks are intact.
//!
//! Environment as `oracle_write.rs`: `UMD_ORACLE`, `UMD_SKIP_ORACLE=1`,
//! `UMD_ORACLE_ACCEL`.

#[allow(dead_code)] // only the single boot is used here
#[path = "oracle_write/boot.rs"]
mod boot;
#[path = "ppl/crash.rs"]
mod crash;
#[allow(dead_code)] // only the oracle lookup is used here
#[path = "oracle/locate.rs"]
mod locate;
mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{pseudo_random, run_ok, sha256_hex, sparse_members, Running};

const MEMBER_MIB: u64 = 16;
const TIMEOUT: Duration = Duration::from_secs(180);
/// umd's writes to (a): (byte offset, length, pattern byte), none chunk aligned.
const UMD_WRITES: [(usize, usize, u8); 3] = [
    (3584, 9216, 0x5a),
    (1_000_448, 300_032, 0xa5),
    (65_024, 1024, 0x33),
];

fn members(dir: &Path, tag: &str, n: usize) -> Vec<PathBuf> {
    let d = dir.join(tag);
    fs::create_dir_all(&d).expect("member dir");
    sparse_members(&d, n, MEMBER_MIB)
}

fn array_bytes(run: &Running) -> usize {
    let out = run_ok(Command::new("nbdinfo").arg("--size").arg(run.uri()));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("size")
}

fn fill(run: &Running, dir: &Path, data: &[u8]) {
    let src = dir.join("fill.bin");
    fs::write(&src, data).expect("write source");
    run_ok(Command::new("nbdcopy").arg(&src).arg(run.uri()));
}

/// sha256 of every second chunk, as the guest's `odd_chunks` computes it.
fn odd_chunks_hash(data: &[u8]) -> String {
    let odd: Vec<u8> = data
        .chunks(crash::CHUNK)
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .flat_map(|(_, c)| c.iter().copied())
        .collect();
    sha256_hex(&odd)
}

fn vm(md_vm: &Path, script: &Path, dir: &Path, disks: &[PathBuf]) -> String {
    fs::write(dir.join("plan.txt"), "").expect("plan file");
    let (out, secs) = boot::boot(md_vm, script, dir, disks, &|| Ok(())).expect("md-vm boot");
    eprintln!("oracle_ppl: boot of {} took {secs:.0} s", script.display());
    out
}

#[test]
fn kernel_and_umd_share_the_partial_parity_log() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_ppl") else {
        return;
    };
    for tool in ["mdadm", "nbdcopy", "nbdinfo", "qemu-io", "fio", "cp"] {
        support::require_tool(tool);
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_ppl");
    let work =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("oracle-ppl-{}", std::process::id()));
    fs::create_dir_all(&work).expect("work dir");

    // (a) Linux makes and fills; umd writes more.
    let made_a = members(&work, "a", 3);
    let data_disk = work.join("a/data.img");
    let linux_data = pseudo_random((2 * MEMBER_MIB as usize) << 20, 0x7070_6c61);
    fs::write(&data_disk, &linux_data).expect("data disk");
    let mut disks = made_a.clone();
    disks.push(data_disk);
    let out = vm(
        &md_vm,
        &scripts.join("linux_make.sh"),
        &work.join("a"),
        &disks,
    );
    assert!(
        out.contains("policy ppl"),
        "mdadm did not make a PPL array:\n{out}"
    );
    let run = Running::start(&work.join("a"), &made_a);
    assert_eq!(run.get("consistency_policy"), "ppl");
    let size_a = array_bytes(&run);
    let mut expect_a = linux_data[..size_a].to_vec();
    for (at, len, byte) in UMD_WRITES {
        run_ok(Command::new("qemu-io").args([
            "-f",
            "raw",
            &run.uri(),
            "-c",
            &format!("write -P {byte} {at} {len}"),
        ]));
        expect_a[at..at + len].fill(byte);
    }
    run.stop();

    // (b) umd makes and fills.
    let made_b = members(&work, "b", 3);
    crash::create_ppl_raid5(&made_b);
    let run = Running::start(&work.join("b"), &made_b);
    run.wait_idle(TIMEOUT);
    let data_b = pseudo_random(array_bytes(&run), 0x7070_6c62);
    fill(&run, &work.join("b"), &data_b);
    run.stop();

    // (c) umd killed while writing the first chunk of every stripe.
    let made_c = members(&work, "c", 3);
    crash::create_ppl_raid5(&made_c);
    let run = Running::start(&work.join("c"), &made_c);
    run.wait_idle(TIMEOUT);
    let size_c = array_bytes(&run);
    let data_c = pseudo_random(size_c, 0x7070_6c63);
    fill(&run, &work.join("c"), &data_c);
    crash::crash_mid_write(run, size_c);
    assert!(
        crash::lose_logged_parity(&made_c) > 0,
        "the crash left no log entries"
    );
    // (d) the same crash without the last member.
    let d_dir = work.join("d");
    fs::create_dir_all(&d_dir).expect("d dir");
    let made_d: Vec<PathBuf> = made_c[..2]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let to = d_dir.join(format!("d{i}.img"));
            run_ok(Command::new("cp").arg("--sparse=always").arg(m).arg(&to));
            to
        })
        .collect();

    let mut disks: Vec<PathBuf> = made_a.clone();
    disks.extend(made_b.iter().cloned());
    disks.extend(made_c.iter().cloned());
    disks.extend(made_d.iter().cloned());
    let out = vm(&md_vm, &scripts.join("verify.sh"), &work, &disks);
    let mut seen: HashMap<String, String> = HashMap::new();
    for line in out.lines() {
        let mut words = line.splitn(3, ' ');
        if let (Some(name), Some(key), Some(value)) = (words.next(), words.next(), words.next()) {
            seen.insert(format!("{name} {key}"), value.trim().to_owned());
        }
    }
    let get = |k: &str| {
        seen.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("no {k:?} in the guest output:\n{out}"))
    };
    for name in ["a", "b", "c", "d"] {
        assert_eq!(get(&format!("{name} policy")), "ppl", "{name}:\n{out}");
    }
    for name in ["a", "b", "c"] {
        assert_eq!(get(&format!("{name} degraded")), "0", "{name}:\n{out}");
        assert_eq!(
            get(&format!("{name} resync_start")),
            "none",
            "{name} needs a resync:\n{out}"
        );
        assert_eq!(
            get(&format!("{name} mismatch_cnt")),
            "0",
            "{name} parity:\n{out}"
        );
    }
    assert_eq!(get("a sha256"), sha256_hex(&expect_a), "a: data:\n{out}");
    assert_eq!(get("b sha256"), sha256_hex(&data_b), "b: data:\n{out}");
    let untouched = odd_chunks_hash(&data_c);
    assert_eq!(
        get("c odd"),
        untouched,
        "c: chunks not written in flight:\n{out}"
    );
    assert_eq!(get("d degraded"), "1", "d:\n{out}");
    assert_eq!(
        get("d odd"),
        untouched,
        "d: chunks not written in flight, rebuilt:\n{out}"
    );
    let _ = fs::remove_dir_all(&work);
}

/// The other direction: Linux loses power while writing a PPL raid5; umd
/// replays the kernel's log (a MULTIPLE_PPLS ring) instead of resyncing,
/// with every member (then `check` finds no mismatch) and with one missing
/// (it starts without `--force`); chunks not written in flight are intact.
#[test]
fn umd_replays_the_kernels_log() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_ppl") else {
        return;
    };
    for tool in ["mdadm", "nbdcopy", "cp"] {
        support::require_tool(tool);
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_ppl");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oracle-ppl-linux-{}", std::process::id()));
    fs::create_dir_all(&work).expect("work dir");
    let made = members(&work, "l", 3);
    let data_disk = work.join("l/data.img");
    let data = pseudo_random((2 * MEMBER_MIB as usize) << 20, 0x7070_6c64);
    fs::write(&data_disk, &data).expect("data disk");
    let mut disks = made.clone();
    disks.push(data_disk);
    let out = vm(
        &md_vm,
        &scripts.join("linux_crash.sh"),
        &work.join("l"),
        &disks,
    );
    let size: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("size "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no size in the guest output:\n{out}"));
    assert!(
        out.contains("array_state active"),
        "the kernel was not writing:\n{out}"
    );
    let before = &data[..size];
    // Without the last member first (on copies), then with all.
    let d_dir = work.join("ld");
    fs::create_dir_all(&d_dir).expect("dir");
    let copies: Vec<PathBuf> = made[..2]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let to = d_dir.join(format!("m{i}.img"));
            run_ok(Command::new("cp").arg("--sparse=always").arg(m).arg(&to));
            to
        })
        .collect();
    let degraded = Running::start(&d_dir, &copies);
    assert_eq!(degraded.get("degraded"), "1");
    let got = read_all(&degraded, &d_dir);
    assert_eq!(
        odd_chunks_hash(&got),
        odd_chunks_hash(before),
        "degraded: untouched chunks"
    );
    degraded.stop();
    let run = Running::start(&work.join("l"), &made);
    let log = run.log_text();
    assert!(
        log.contains("entries replayed, 0 mismatches") && !log.contains(" 0 entries replayed"),
        "the kernel's log was not replayed:\n{log}"
    );
    assert_eq!(
        run.get("resync_start"),
        "none",
        "replay leaves nothing to resync"
    );
    run.set("sync_action", "check").expect("check");
    run.wait_idle(TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "parity after replaying the kernel's log"
    );
    let got = read_all(&run, &work.join("l"));
    assert_eq!(
        odd_chunks_hash(&got),
        odd_chunks_hash(before),
        "untouched chunks"
    );
    run.stop();
    let _ = fs::remove_dir_all(&work);
}

fn read_all(run: &Running, dir: &Path) -> Vec<u8> {
    let out = dir.join("back.bin");
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&out));
    fs::read(&out).expect("read back")
}

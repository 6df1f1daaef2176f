//! `umd run` end to end with real NBD clients: every level, healthy and
//! degraded, written and read back through nbdcopy, qemu-io and fio, then
//! stopped cleanly and checked with the host's mdadm and `umd cat`.
//!
//! The references are the data the test wrote (compared byte for byte after
//! a read through NBD and again offline through `umd cat`), fio's own
//! crc32c verification, and mdadm's reading of the superblocks afterwards.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::{
    cat, create, examine_field, mdadm_examine, pseudo_random, require_tool, run_ok, Running,
    TempDir,
};

/// Member size for the level matrix.
const MEMBER_MIB: u64 = 24;

fn nbd_size(run: &Running) -> u64 {
    let out = run_ok(Command::new("nbdinfo").arg("--size").arg(run.uri()));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("nbdinfo --size prints a number")
}

/// Write `data` over the whole export with nbdcopy, read it back, compare.
fn copy_in_and_out(dir: &TempDir, run: &Running, data: &[u8]) {
    let src = dir.path().join("data.bin");
    let back = dir.path().join("back.bin");
    fs::write(&src, data).expect("write source");
    run_ok(Command::new("nbdcopy").arg(&src).arg(run.uri()));
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&back));
    let got = fs::read(&back).expect("read back");
    assert!(
        got == data,
        "data read back through NBD differs from what was written"
    );
    let _ = fs::remove_file(&src);
    let _ = fs::remove_file(&back);
}

fn fio_verify(run: &Running, size: u64, jobs: u32) {
    // Each job owns its own region, so verification is unambiguous.
    let size_mib = ((size >> 20) / u64::from(jobs)).clamp(1, 16);
    run_ok(Command::new("fio").args([
        "--name=verify",
        "--ioengine=nbd",
        &format!("--uri={}", run.uri()),
        "--rw=randwrite",
        "--bs=4k,64k",
        "--bsrange=4k-128k",
        "--iodepth=16",
        &format!("--numjobs={jobs}"),
        &format!("--size={size_mib}M"),
        "--verify=crc32c",
        "--verify_state_save=0",
        "--verify_fatal=1",
        "--do_verify=1",
        &format!("--offset_increment={size_mib}M"),
        "--group_reporting",
    ]));
}

struct Case {
    level: &'static str,
    disks: usize,
    extra: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        level: "linear",
        disks: 3,
        extra: &[],
    },
    Case {
        level: "0",
        disks: 3,
        extra: &["--chunk", "64"],
    },
    Case {
        level: "1",
        disks: 2,
        extra: &[],
    },
    Case {
        level: "4",
        disks: 4,
        extra: &["--chunk", "64"],
    },
    Case {
        level: "5",
        disks: 4,
        extra: &["--chunk", "64"],
    },
    Case {
        level: "5",
        disks: 3,
        extra: &[
            "--chunk",
            "16",
            "--layout",
            "left-asymmetric",
            "--metadata",
            "1.0",
        ],
    },
    Case {
        level: "6",
        disks: 5,
        extra: &["--chunk", "32"],
    },
    Case {
        level: "6",
        disks: 4,
        extra: &["--chunk", "64", "--metadata", "0.90"],
    },
    Case {
        level: "10",
        disks: 4,
        extra: &["--chunk", "64"],
    },
    Case {
        level: "10",
        disks: 3,
        extra: &["--chunk", "64", "--layout", "f2", "--metadata", "1.1"],
    },
];

fn redundant(level: &str) -> bool {
    !matches!(level, "linear" | "0")
}

fn run_case(case: &Case, degraded: bool) {
    let dir = TempDir::new(&format!("nbd-{}-{}", case.level, case.disks));
    let members = support::sparse_members(dir.path(), case.disks, MEMBER_MIB);
    let mut opts = vec!["--level", case.level, "--raid-devices"];
    let disks = case.disks.to_string();
    opts.push(&disks);
    opts.extend_from_slice(case.extra);
    if degraded {
        // Fresh zeroed members are in sync; without this the array would be
        // dirty and degraded, which umd (like md) refuses to start.
        opts.push("--assume-clean");
    }
    create(&members, &opts);
    // Degraded: the array runs without its second member.
    let running_members: Vec<PathBuf> = if degraded {
        members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, p)| p.clone())
            .collect()
    } else {
        members.clone()
    };
    let run = Running::start(dir.path(), &running_members);
    let size = nbd_size(&run);
    assert!(size > 0 && size.is_multiple_of(512), "export size {size}");
    fio_verify(&run, size, 2);
    let data = pseudo_random(size as usize, size ^ case.disks as u64);
    copy_in_and_out(&dir, &run, &data);
    // qemu-io: an unaligned-to-stripe small write with FUA, read back.
    let qemu_uri = format!("nbd+unix:///?socket={}", run.nbd.display());
    run_ok(Command::new("qemu-io").args([
        "-f",
        "raw",
        &qemu_uri,
        "-c",
        "write -f -P 0x5a 12288 4096",
        "-c",
        "read -P 0x5a 12288 4096",
    ]));
    let mut expected = data.clone();
    expected[12288..16384].fill(0x5a);
    if redundant(case.level) && !degraded {
        run.wait_idle(Duration::from_secs(120));
    }
    run.stop();
    // Offline: the members hold exactly what was written.
    let offline = cat(&running_members);
    assert!(
        offline == expected,
        "umd cat after a clean stop differs from the data written"
    );
    for m in &running_members {
        let text = mdadm_examine(m);
        let state = examine_field(&text, "State").unwrap_or_default();
        assert!(
            state.starts_with("clean"),
            "{}: mdadm says State {state:?} after a clean stop:\n{text}",
            m.display()
        );
    }
}

#[test]
fn every_level_through_real_clients() {
    for tool in ["nbdinfo", "nbdcopy", "qemu-io", "fio", "mdadm"] {
        require_tool(tool);
    }
    for case in CASES {
        run_case(case, false);
    }
}

#[test]
fn degraded_arrays_through_real_clients() {
    for tool in ["nbdinfo", "nbdcopy", "qemu-io", "fio", "mdadm"] {
        require_tool(tool);
    }
    for case in CASES.iter().filter(|c| redundant(c.level)) {
        run_case(case, true);
    }
}

/// md's `start_dirty_degraded` rule: a raid5 that never finished its resync
/// and has a member missing is refused, naming the problem, unless forced.
#[test]
fn dirty_degraded_raid5_needs_force() {
    let dir = TempDir::new("dirty-degraded");
    let members = support::sparse_members(dir.path(), 3, 16);
    create(
        &members,
        &["--level", "5", "--raid-devices", "3", "--chunk", "64"],
    );
    let out = support::umd()
        .env("UMD_RUN_DIR", dir.path())
        .arg("run")
        .args(&members[..2])
        .output()
        .expect("umd run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a dirty degraded raid5 must not start"
    );
    assert!(
        err.contains("dirty and degraded") && err.contains("--force"),
        "{err}"
    );
    let run = Running::start_with(dir.path(), &members[..2], &["--force"]);
    assert_eq!(run.get("degraded"), "1");
    run.stop();
}

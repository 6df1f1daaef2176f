//! Kernel cross-check, write direction: arrays `umd` creates and writes are assembled,
//! checked and hashed by the Linux md driver and mdadm; arrays mdadm creates and the kernel
//! writes are written again by `umd`, then judged by the kernel once more.
//!
//! Test 1 (umd writes, Linux checks): for a matrix covering every level (linear, 0, 1, 4, 5,
//! 6, 10 near/far/offset), every metadata version (0.90, 1.0, 1.1, 1.2), internal bitmaps,
//! chunk sizes 4 KiB to 512 KiB and several layouts, `umd create` makes the array (most with
//! umd's own initial resync), `umd run` serves it, nbdcopy fills all of it with pseudo-random
//! bytes, and SIGTERM stops it. Degraded cases: created with `missing`, run with a member
//! left out (the kernel is then given every member and must not use the stale one), and run
//! with a member left out that the kernel re-adds through the write-intent bitmap. The host's
//! mdadm records every member's `Events` and `State` (which must be clean).
//!
//! Test 2 (Linux writes, umd writes more, Linux checks): a VM boot has mdadm create raid1,
//! raid5, raid6 and raid10 arrays (1.2, one 0.90, one with a bitmap) and the kernel fill them
//! with data A. On the host `umd run` overwrites the second half, from an offset that is not
//! chunk aligned, with data B through qemu-io; `umd cat` must then read A-then-B.
//!
//! Then a few VM boots take every array of both tests: `mdadm --examine` of each member
//! before assembly must show the events and state the host saw, `mdadm --assemble --run`
//! must start it without a resync (sync_action idle, resync_start none) and with the expected
//! number of missing members, `check` must find mismatch_cnt 0, and the sha256 of `/dev/mdX`
//! must be the data written. After the kernel stops it, the roles its superblock records as
//! active ("Array State") must be those umd recorded after running the same members.
//!
//! The kernel and mdadm are the reference here. Without the harness or its dependencies this
//! test fails, naming what is missing; it skips only when `UMD_SKIP_ORACLE=1` is set.
//!
//! Environment: `UMD_ORACLE` (directory holding `md-vm`), `UMD_SKIP_ORACLE=1` (skip),
//! `UMD_ORACLE_ACCEL` (md-vm `--accel`, default `tcg`), `UMD_ORACLE_KEEP` (keep the images
//! and VM output even on success).

#[path = "oracle_write/boot.rs"]
mod boot;
#[allow(dead_code)] // the parser of the read-direction test; only part of it is used here
#[path = "oracle/locate.rs"]
mod locate;
mod support;
#[path = "oracle_write/verify.rs"]
mod verify;
#[path = "oracle/vm.rs"]
mod vm;

use boot::{boot, parallel, restore_snapshot, snapshot};
use std::fmt::Write as _;
use std::fs;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{cat, examine_field, mdadm_examine, pseudo_random, run_ok, sha256_hex, Running};
use verify::{parse_verify_output, Verified};
use vm::{parse_vm_output, VmArray};

/// One MiB, the unit of member sizes.
const MIB: u64 = 1 << 20;
/// Disks per boot: from the 44th on, qemu refuses the PCI address md-vm gives a disk.
const MAX_VM_DISKS: usize = 42;
/// How long umd's initial resync of a few MiB may take.
const RESYNC_TIMEOUT: Duration = Duration::from_secs(120);
/// The role created as `missing` in the `missing` cases.
const MISSING_ROLE: usize = 1;
/// Seed of the data disk mdadm's arrays are filled from (data A).
const LINUX_DATA_SEED: u64 = 0x6c69_6e75_7841;
/// `oracle/batch.sh` gives array IDX the data disk's bytes from `IDX * LINUX_DATA_STRIDE_BYTES`.
const LINUX_DATA_STRIDE_BYTES: u64 = 4096;
/// Test 2 overwrites from this far before the middle of the array, so the overwrite starts
/// inside a chunk and the first stripe written is a read-modify-write of kernel parity.
const OVERWRITE_BEFORE_MIDDLE_BYTES: u64 = 7 * 512;

/// Test 1: arrays umd creates and writes.
///
/// Columns: name, `--level`, `--layout` ("-": umd's default), `--chunk` KiB ("-": none),
/// `--metadata`, bitmap ("bm": internal), member size MiB, `--raid-devices`, mode:
/// `resync` (umd's initial resync), `clean` (`--assume-clean`), `missing` (role
/// [`MISSING_ROLE`] created `missing`), `leftout` (resynced, then run and written without the
/// last member; the kernel gets every member), `readd` (as `leftout`, but the kernel gets the
/// last member through `mdadm --re-add` after assembly).
const UMD_MATRIX: &str = "
lin-12        linear -                 -   1.2  -  4 2 resync
lin-090       linear -                 -   0.90 -  4 2 resync
r0-12         0      -                 64  1.2  -  4 3 resync
r0-11         0      -                 16  1.1  -  4 2 resync
r1-12-bm      1      -                 -   1.2  bm 4 2 resync
r1-090        1      -                 -   0.90 -  4 2 resync
r1-10-bm      1      -                 -   1.0  bm 4 2 resync
r4-12         4      -                 64  1.2  -  4 3 clean
r4-090-bm     4      -                 16  0.90 bm 4 3 resync
r5-ls-12-bm   5      left-symmetric    64  1.2  bm 4 4 resync
r5-la-090     5      left-asymmetric   16  0.90 -  4 3 resync
r5-rs-11      5      right-symmetric   4   1.1  -  4 3 resync
r5-pf-10-bm   5      parity-first      512 1.0  bm 8 3 resync
r6-ls-12-bm   6      left-symmetric    64  1.2  bm 4 4 resync
r6-ra-11      6      right-asymmetric  16  1.1  -  4 4 resync
r6-pl-10      6      parity-last       64  1.0  -  4 4 resync
r6-090-miss   6      -                 64  0.90 -  4 4 missing
r10-n2-12-bm  10     n2                64  1.2  bm 4 2 resync
r10-f2-10     10     f2                64  1.0  -  4 4 resync
r10-o2-11-bm  10     o2                16  1.1  bm 4 3 resync
r10-n3-090    10     n3                4   0.90 -  4 3 resync
r5-12-leftout 5      -                 64  1.2  -  4 3 leftout
r1-12-readd   1      -                 -   1.2  bm 4 2 readd
";

/// Test 2: arrays mdadm creates and the kernel writes (plan lines of `oracle/batch.sh`:
/// IDX, level, layout, chunk KiB, metadata, bitmap, members), all members [`LINUX_MEMBER_MIB`].
const LINUX_PLAN: &str = "\
0 1 - - 1.2 none 2
1 5 left-symmetric 64 1.2 none 3
2 6 - 64 1.2 none 4
3 10 n2 64 1.2 none 4
4 5 - 16 0.90 none 3
5 1 - - 1.2 internal 2
";
/// Member size of Test 2's arrays.
const LINUX_MEMBER_MIB: u64 = 4;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Resync,
    AssumeClean,
    Missing,
    LeftOut,
    ReAdd,
}

/// One array of Test 1, as `umd create` is asked to make it.
struct UmdCase {
    name: String,
    level: String,
    layout: Option<String>,
    chunk_kib: Option<u32>,
    meta: String,
    bitmap: bool,
    member_mib: u64,
    raid_devices: usize,
    mode: Mode,
}

fn umd_cases() -> Vec<UmdCase> {
    UMD_MATRIX
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            let [name, level, layout, chunk, meta, bitmap, mib, n, mode] = w[..] else {
                panic!("matrix line has not 9 columns: {line}");
            };
            UmdCase {
                name: name.to_string(),
                level: level.to_string(),
                layout: (layout != "-").then(|| layout.to_string()),
                chunk_kib: (chunk != "-").then(|| chunk.parse().expect("chunk is a number")),
                meta: meta.to_string(),
                bitmap: bitmap == "bm",
                member_mib: mib.parse().expect("size is a number"),
                raid_devices: n.parse().expect("raid devices is a number"),
                mode: match mode {
                    "resync" => Mode::Resync,
                    "clean" => Mode::AssumeClean,
                    "missing" => Mode::Missing,
                    "leftout" => Mode::LeftOut,
                    "readd" => Mode::ReAdd,
                    _ => panic!("unknown mode in: {line}"),
                },
            }
        })
        .collect()
}

/// `mdadm --examine` fields of one member as the host read them.
#[derive(Clone, Debug)]
struct HostExamine {
    events: Option<String>,
    state: Option<String>,
    /// 1.x only: which roles the superblock records as active ("AA.").
    array_state: Option<String>,
}

/// One array for the kernel to judge, with everything the host knows it must find.
struct ToVerify {
    name: String,
    /// Who wrote it: "umd" (Test 1) or "linux+umd" (Test 2).
    origin: &'static str,
    level: String,
    /// Members given to `mdadm --assemble`.
    assemble: Vec<PathBuf>,
    /// Members re-added after assembly.
    readd: Vec<PathBuf>,
    size_bytes: u64,
    sha256: String,
    /// Host `mdadm --examine` per member, assemble then readd order.
    host: Vec<HostExamine>,
    /// `degraded` right after assembly, for levels with redundancy.
    degraded: Option<u64>,
    /// Problems the host already found while preparing it.
    problems: Vec<String>,
}

impl ToVerify {
    fn disks(&self) -> impl Iterator<Item = &PathBuf> {
        self.assemble.iter().chain(&self.readd)
    }
}

fn has_redundancy(level: &str) -> bool {
    matches!(level, "1" | "4" | "5" | "6" | "10")
}

/// A seed per name, so every array holds different bytes.
fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Runs `f`, turning a panic of a support helper into this array's error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            Err(format!("{what}: {msg}"))
        }
    }
}

/// Where two byte strings first differ, for a readable failure.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    format!(
        "{} bytes where {} expected; {}",
        got.len(),
        want.len(),
        at.map_or_else(
            || "no byte differs in the common length".to_string(),
            |o| format!("first difference at byte {o} (array sector {})", o / 512)
        )
    )
}

fn nbd_size(running: &Running) -> Result<u64, String> {
    let out = run_ok(Command::new("nbdinfo").arg("--size").arg(running.uri()));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("nbdinfo --size: {e}"))
}

/// Host `mdadm --examine` of `members`; adds a problem for every member not clean.
fn host_examine(members: &[PathBuf], problems: &mut Vec<String>) -> Vec<HostExamine> {
    members
        .iter()
        .map(|m| {
            let text = mdadm_examine(m);
            let h = HostExamine {
                events: examine_field(&text, "Events"),
                state: examine_field(&text, "State"),
                array_state: examine_field(&text, "Array State"),
            };
            if h.state.as_deref() != Some("clean") {
                problems.push(format!(
                    "host mdadm --examine {}: State {:?} after umd's clean stop (Events {:?})",
                    m.display(),
                    h.state,
                    h.events
                ));
            }
            h
        })
        .collect()
}

fn umd_create_args(c: &UmdCase) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "create".into(),
        "--level".into(),
        c.level.clone(),
        "--raid-devices".into(),
        c.raid_devices.to_string(),
        "--metadata".into(),
        c.meta.clone(),
        "--bitmap".into(),
        if c.bitmap { "internal" } else { "none" }.into(),
    ];
    if let Some(k) = c.chunk_kib {
        args.extend(["--chunk".into(), k.to_string()]);
    }
    if let Some(l) = &c.layout {
        args.extend(["--layout".into(), l.clone()]);
    }
    if c.mode == Mode::AssumeClean {
        args.push("--assume-clean".into());
    }
    args
}

/// Test 1, host side of one array: create, resync, write everything, stop cleanly.
fn umd_writes(c: &UmdCase, work: &Path) -> Result<ToVerify, String> {
    let dir = work.join(&c.name);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut args = umd_create_args(c);
    let mut present = Vec::new();
    for role in 0..c.raid_devices {
        if c.mode == Mode::Missing && role == MISSING_ROLE {
            args.push("missing".into());
            continue;
        }
        let p = dir.join(format!("r{role}.img"));
        let f = fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        f.set_len(c.member_mib * MIB)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        args.push(p.display().to_string());
        present.push(p);
    }
    let out = support::umd()
        .args(&args)
        .output()
        .map_err(|e| format!("run umd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "umd {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut running = Running::start(&dir, &present);
    running.wait_idle(RESYNC_TIMEOUT);
    let stale = matches!(c.mode, Mode::LeftOut | Mode::ReAdd);
    let mut run_members = present.clone();
    if stale {
        // The array was healthy and clean; now a member goes away.
        running.stop();
        run_members.pop();
        running = Running::start(&dir, &run_members);
    }
    let size_bytes = nbd_size(&running)?;
    let data = pseudo_random(
        usize::try_from(size_bytes).expect("array fits in memory"),
        seed_of(&c.name),
    );
    let data_path = dir.join("data.bin");
    fs::write(&data_path, &data).map_err(|e| format!("{}: {e}", data_path.display()))?;
    run_ok(Command::new("nbdcopy").arg(&data_path).arg(running.uri()));
    running.stop();
    let _ = fs::remove_file(&data_path);
    let mut problems = Vec::new();
    let back = cat(&run_members);
    if back != data {
        problems.push(format!(
            "umd cat after the write: {}",
            first_difference(&back, &data)
        ));
    }
    let (assemble, readd) = match c.mode {
        Mode::ReAdd => (run_members.clone(), present[present.len() - 1..].to_vec()),
        _ => (present.clone(), Vec::new()),
    };
    let order: Vec<PathBuf> = assemble.iter().chain(&readd).cloned().collect();
    let host = host_examine(&order, &mut problems);
    let degraded = has_redundancy(&c.level).then_some(u64::from(
        c.mode != Mode::Resync && c.mode != Mode::AssumeClean,
    ));
    Ok(ToVerify {
        name: c.name.clone(),
        origin: "umd",
        level: c.level.clone(),
        assemble,
        readd,
        size_bytes,
        sha256: sha256_hex(&data),
        host,
        degraded,
        problems,
    })
}

/// Test 2, host side of one array the kernel wrote: overwrite the second half with umd.
fn umd_overwrites(
    name: &str,
    level: &str,
    members: &[PathBuf],
    vm: &VmArray,
    source: &[u8],
    idx: usize,
    work: &Path,
) -> Result<ToVerify, String> {
    if let Some(e) = &vm.create_failed {
        return Err(format!("mdadm --create failed in the VM: {e}"));
    }
    let (Some(size_bytes), Some(kernel_sha)) = (vm.size_bytes, vm.sha256.as_deref()) else {
        return Err("the VM reported no size or sha256".to_string());
    };
    let size = usize::try_from(size_bytes).expect("array fits in memory");
    let start = usize::try_from(idx as u64 * LINUX_DATA_STRIDE_BYTES).expect("fits");
    let a = source
        .get(start..start + size)
        .ok_or("data disk shorter than the array")?;
    if sha256_hex(a) != kernel_sha {
        return Err(format!(
            "the kernel's sha256 {kernel_sha} after writing data A is not that of data A"
        ));
    }
    let dir = work.join(name);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let running = Running::start(&dir, members);
    let mut problems = Vec::new();
    let action = running.get("sync_action");
    if action != "idle" {
        problems.push(format!(
            "umd run on the kernel's clean array: sync_action {action}"
        ));
    }
    running.wait_idle(RESYNC_TIMEOUT);
    let served = nbd_size(&running)?;
    if served != size_bytes {
        problems.push(format!(
            "umd serves {served} bytes, the kernel's array has {size_bytes}"
        ));
    }
    let offset = size_bytes / 2 - OVERWRITE_BEFORE_MIDDLE_BYTES;
    let b = pseudo_random(
        usize::try_from(size_bytes - offset).expect("fits"),
        seed_of(name),
    );
    let b_path = dir.join("data-b.bin");
    fs::write(&b_path, &b).map_err(|e| format!("{}: {e}", b_path.display()))?;
    let cmd = format!("write -s {} {offset} {}", b_path.display(), b.len());
    let out = run_ok(
        Command::new("qemu-io")
            .args(["-f", "raw", "-c", &cmd])
            .arg(running.uri()),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    if said.contains("failed") || said.contains("error") {
        problems.push(format!("qemu-io {cmd}: {}", said.trim()));
    }
    running.stop();
    let _ = fs::remove_file(&b_path);
    let mut expected = a[..usize::try_from(offset).expect("fits")].to_vec();
    expected.extend_from_slice(&b);
    let back = cat(members);
    if back != expected {
        problems.push(format!(
            "umd cat after overwriting from byte {offset}: {}",
            first_difference(&back, &expected)
        ));
    }
    let host = host_examine(members, &mut problems);
    Ok(ToVerify {
        name: name.to_string(),
        origin: "linux+umd",
        level: level.to_string(),
        assemble: members.to_vec(),
        readd: Vec::new(),
        size_bytes,
        sha256: sha256_hex(&expected),
        host,
        degraded: has_redundancy(level).then_some(0),
        problems,
    })
}

/// Test 2's first half: mdadm creates the arrays in a VM and the kernel writes data A.
struct LinuxArrays {
    /// (name, level, members) per plan line.
    arrays: Vec<(String, String, Vec<PathBuf>)>,
    source: Vec<u8>,
    out: Result<(String, f64), String>,
}

fn linux_creates(md_vm: &Path, oracle_tests: &Path, work: &Path) -> LinuxArrays {
    let dir = work.join("linux");
    fs::create_dir_all(&dir).expect("work dir");
    fs::write(dir.join("plan.txt"), LINUX_PLAN).expect("write plan");
    let mut arrays = Vec::new();
    let mut disks = Vec::new();
    let mut largest_bytes = 0;
    for line in LINUX_PLAN.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let [idx, level, layout, _chunk, meta, bitmap, n] = w[..] else {
            panic!("bad plan line {line}");
        };
        let n: usize = n.parse().expect("member count");
        let name = format!(
            "L{idx}-r{level}{}-{meta}{}",
            if layout == "-" {
                String::new()
            } else {
                format!("-{layout}")
            },
            if bitmap == "internal" { "-bm" } else { "" }
        );
        let members: Vec<PathBuf> = (0..n)
            .map(|k| {
                let p = dir.join(format!("{name}-r{k}.img"));
                let f = fs::File::create(&p).expect("create member");
                f.set_len(LINUX_MEMBER_MIB * MIB).expect("size member");
                p
            })
            .collect();
        largest_bytes = largest_bytes.max(n as u64 * LINUX_MEMBER_MIB * MIB);
        disks.extend(members.iter().cloned());
        arrays.push((name, level.to_string(), members));
    }
    let source_len = arrays.len() as u64 * LINUX_DATA_STRIDE_BYTES + largest_bytes;
    let source = pseudo_random(
        usize::try_from(source_len.next_multiple_of(MIB)).expect("fits"),
        LINUX_DATA_SEED,
    );
    let source_path = dir.join("zz-data-a.img");
    fs::write(&source_path, &source).expect("write data disk");
    disks.push(source_path);
    let members: Vec<PathBuf> = disks[..disks.len() - 1].to_vec();
    let restore = || {
        for p in &members {
            let f = fs::OpenOptions::new()
                .write(true)
                .open(p)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            f.set_len(0)
                .and_then(|()| f.set_len(LINUX_MEMBER_MIB * MIB))
                .map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    };
    let out = boot(
        md_vm,
        &oracle_tests.join("oracle/batch.sh"),
        &dir,
        &disks,
        &restore,
    );
    LinuxArrays {
        arrays,
        source,
        out,
    }
}

/// Groups the arrays into boots of at most [`MAX_VM_DISKS`] disks, in order.
fn pack(arrays: &[ToVerify]) -> Vec<Vec<usize>> {
    let mut boots: Vec<Vec<usize>> = Vec::new();
    let mut disks = MAX_VM_DISKS;
    for (i, a) in arrays.iter().enumerate() {
        let n = a.disks().count();
        assert!(n <= MAX_VM_DISKS, "{} has {n} disks", a.name);
        if disks + n > MAX_VM_DISKS {
            boots.push(Vec::new());
            disks = 0;
        }
        disks += n;
        boots.last_mut().expect("a boot").push(i);
    }
    boots
}

/// One verify boot: the kernel examines, assembles, checks and hashes `which` arrays.
fn verify_boot(
    md_vm: &Path,
    script: &Path,
    dir: &Path,
    arrays: &[ToVerify],
    which: &[usize],
) -> Result<(std::collections::BTreeMap<usize, Verified>, f64), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut plan = String::new();
    let mut disks = Vec::new();
    for (idx, &i) in which.iter().enumerate() {
        let a = &arrays[i];
        let _ = writeln!(
            plan,
            "{idx} {} {} {}",
            u8::from(has_redundancy(&a.level)),
            a.assemble.len(),
            a.readd.len()
        );
        disks.extend(a.disks().cloned());
    }
    fs::write(dir.join("plan.txt"), plan).map_err(|e| format!("plan: {e}"))?;
    let pristine = dir.join("pristine");
    snapshot(&disks, &pristine)?;
    let (out, secs) = boot(md_vm, script, dir, &disks, &|| {
        restore_snapshot(&disks, &pristine)
    })?;
    let _ = fs::remove_dir_all(&pristine);
    Ok((parse_verify_output(&out), secs))
}

/// The kernel's verdict on one array against what the host knows; returns the report line
/// and every problem found.
fn judge(a: &ToVerify, v: &Verified) -> (String, Vec<String>) {
    let mut p: Vec<String> = a.problems.clone();
    for (k, (disk, h)) in a.disks().zip(&a.host).enumerate() {
        let Some(text) = v.examine.get(&k) else {
            p.push(format!("member {k}: no mdadm --examine from the VM"));
            continue;
        };
        let events = examine_field(text, "Events");
        let state = examine_field(text, "State");
        if events != h.events || state != h.state {
            p.push(format!(
                "member {k} ({}): VM mdadm --examine Events {events:?} State {state:?}, \
                 host saw Events {:?} State {:?}",
                disk.display(),
                h.events,
                h.state
            ));
        }
    }
    if let Some(e) = &v.assemble_failed {
        p.push(format!("mdadm --assemble failed: {e}"));
        return (
            format!("{:<16} {:<10} ASSEMBLE FAILED", a.name, a.origin),
            p,
        );
    }
    let after = |k: &str| v.after.get(k).map_or("<none>", String::as_str);
    // Levels without redundancy have no sync_action attribute at all ("?").
    let idle = if has_redundancy(&a.level) {
        "idle"
    } else {
        "?"
    };
    if after("sync_action") != idle || after("resync_start") != "none" {
        p.push(format!(
            "not clean after assembly: sync_action={} resync_start={} array_state={}\n{}",
            after("sync_action"),
            after("resync_start"),
            after("array_state"),
            v.mdstat.trim_end()
        ));
    }
    if let Some(d) = a.degraded {
        if after("degraded") != d.to_string() {
            p.push(format!(
                "degraded={} after assembly, expected {d}\n{}",
                after("degraded"),
                v.mdstat.trim_end()
            ));
        }
    }
    if !a.readd.is_empty() {
        if let Some(e) = &v.readd_failed {
            p.push(format!("mdadm --re-add failed: {e}"));
        } else if v.readd.get("degraded").map(String::as_str) != Some("0") {
            p.push(format!("after --re-add: {:?}", v.readd));
        }
    }
    let mismatch = v.check.get("mismatch_cnt").cloned();
    if has_redundancy(&a.level) && mismatch.as_deref() != Some("0") {
        p.push(format!("check: {:?}", v.check));
    }
    if v.size_bytes != Some(a.size_bytes) {
        p.push(format!(
            "kernel array size {:?}, umd served {}",
            v.size_bytes, a.size_bytes
        ));
    }
    let hash_ok = v.sha256.as_deref() == Some(a.sha256.as_str());
    if !hash_ok {
        p.push(format!(
            "kernel sha256 {:?}, data written {}",
            v.sha256, a.sha256
        ));
    }
    // After running the same members, the kernel's own superblock says which roles are
    // active; umd's must say the same (a re-add legitimately changes it).
    if a.readd.is_empty() {
        let kernel = v
            .examine_after
            .as_deref()
            .and_then(|t| examine_field(t, "Array State"));
        let umd = a.host.first().and_then(|h| h.array_state.clone());
        if kernel != umd {
            p.push(format!(
                "member 0 Array State after umd's run {umd:?}, after the kernel's run of the \
                 same members {kernel:?}"
            ));
        }
    }
    if v.stop_failed {
        p.push("mdadm --stop failed".to_string());
    }
    let line = format!(
        "{:<16} {:<10} {:>9} B  events {}  after-assembly {}/{}  degraded {}  mismatch {}  hash {}  {}",
        a.name,
        a.origin,
        a.size_bytes,
        a.host
            .iter()
            .map(|h| h.events.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(","),
        after("sync_action"),
        after("resync_start"),
        after("degraded"),
        mismatch.as_deref().unwrap_or("-"),
        if hash_ok { "ok" } else { "BAD" },
        if p.is_empty() { "ok" } else { "PROBLEM" }
    );
    (line, p)
}

#[test]
fn kernel_accepts_what_umd_writes() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_write") else {
        return;
    };
    for tool in ["mdadm", "nbdcopy", "nbdinfo", "qemu-io", "cp"] {
        support::require_tool(tool);
    }
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let work =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("oracle-write-{}", std::process::id()));
    let t0 = Instant::now();

    // Phase 1, at once: the kernel creates and writes Test 2's arrays; umd does Test 1's.
    let cases = umd_cases();
    let (linux, umd_made) = std::thread::scope(|s| {
        let linux = s.spawn(|| linux_creates(&md_vm, &tests, &work));
        let umd_made = parallel(&cases, |c| {
            guarded(&c.name, || umd_writes(c, &work.join("umd")))
        });
        (linux.join().expect("linux boot thread"), umd_made)
    });
    eprintln!(
        "oracle_write: phase 1 (umd writes; kernel writes) done at {:.0} s",
        t0.elapsed().as_secs_f64()
    );

    let mut failures = Vec::new();
    let mut arrays = Vec::new();
    for (c, r) in cases.iter().zip(umd_made) {
        match r {
            Ok(a) => arrays.push(a),
            Err(e) => failures.push(format!("{} (umd side): {e}", c.name)),
        }
    }

    // Phase 2: umd overwrites the second half of the kernel's arrays.
    match &linux.out {
        Ok((out, secs)) => {
            eprintln!("oracle_write: the kernel created its arrays in {secs:.1} s");
            let vm = parse_vm_output(out);
            let jobs: Vec<usize> = (0..linux.arrays.len()).collect();
            let done = parallel(&jobs, |&i| {
                let (name, level, members) = &linux.arrays[i];
                let v = vm.get(&i).cloned().unwrap_or_default();
                guarded(name, || {
                    umd_overwrites(
                        name,
                        level,
                        members,
                        &v,
                        &linux.source,
                        i,
                        &work.join("linux"),
                    )
                })
            });
            for ((name, _, _), r) in linux.arrays.iter().zip(done) {
                match r {
                    Ok(a) => arrays.push(a),
                    Err(e) => failures.push(format!("{name} (kernel then umd): {e}")),
                }
            }
        }
        Err(e) => failures.push(format!("the kernel's create boot: {e}")),
    }
    eprintln!(
        "oracle_write: phase 2 (umd overwrites) done at {:.0} s",
        t0.elapsed().as_secs_f64()
    );

    // Phase 3: the kernel judges everything.
    let script = tests.join("oracle_write/verify.sh");
    let boots = pack(&arrays);
    let verdicts = parallel(
        &boots.iter().enumerate().collect::<Vec<_>>(),
        |(b, which)| {
            verify_boot(
                &md_vm,
                &script,
                &work.join(format!("verify{b}")),
                &arrays,
                which,
            )
        },
    );
    eprintln!(
        "oracle_write: phase 3 (kernel verifies) done at {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    eprintln!("oracle_write: array / origin / bytes / results");
    for (b, (which, verdict)) in boots.iter().zip(verdicts).enumerate() {
        match verdict {
            Ok((found, secs)) => {
                eprintln!(
                    "oracle_write: verify boot {b} ({} arrays) ran in {secs:.1} s",
                    which.len()
                );
                for (idx, &i) in which.iter().enumerate() {
                    let a = &arrays[i];
                    let (line, problems) = judge(a, &found.get(&idx).cloned().unwrap_or_default());
                    eprintln!("  {line}");
                    failures.extend(
                        problems
                            .into_iter()
                            .map(|p| format!("{} ({}): {p}", a.name, a.origin)),
                    );
                }
            }
            Err(e) => failures.push(format!("verify boot {b}: {e}")),
        }
    }
    eprintln!("oracle_write: total {:.0} s", t0.elapsed().as_secs_f64());
    if failures.is_empty() && std::env::var_os("UMD_ORACLE_KEEP").is_none() {
        let _ = fs::remove_dir_all(&work);
    } else {
        eprintln!(
            "oracle_write: images and VM output kept in {}",
            work.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) where the kernel and umd disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

//! Kernel cross-check: arrays made by mdadm and the Linux md driver, read back by `umd`.
//!
//! A few VM boots (the `md-vm` harness: the distribution kernel with md, plus mdadm, under
//! qemu) create a matrix of arrays on sparse member images: every level, every raid5/raid6
//! algorithm mdadm accepts, raid10 near/far/offset, chunk sizes 4 KiB to 512 KiB, metadata
//! 0.90/1.0/1.1/1.2, members of unequal size and internal bitmaps. The guest fills each array
//! with host-made pseudo-random bytes and prints the sha256 of the whole `/dev/mdX` and
//! `mdadm --examine` of every member. On the host, `umd cat` must reproduce every hash from
//! the members given in a shuffled order, and again with members left out where the level has
//! redundancy; `umd examine --json` must agree with mdadm's text on identity, geometry,
//! offsets, sizes, events and roles.
//!
//! The kernel and mdadm are the reference here: nothing umd says is checked against umd.
//! Without the harness or its dependencies this test fails, naming what is missing; it skips
//! only when `UMD_SKIP_ORACLE=1` is set.
//!
//! mdadm 4.2 refuses some combinations, so they are not in the matrix: raid6
//! `parity-last-6` ("layout not understood"), raid0 with 0.90 metadata ("0.90 metadata does not
//! support layouts for RAID0", whatever the layout), internal bitmaps on linear. raid5's
//! `ddf-*` names are aliases mdadm maps to md layouts 0-2; raid6's are layouts 8-10.
//!
//! Environment: `UMD_ORACLE` (directory holding `md-vm`), `UMD_SKIP_ORACLE=1` (skip),
//! `UMD_ORACLE_ACCEL` (md-vm `--accel`, default `tcg`), `UMD_ORACLE_KEEP` (keep the images,
//! plan and VM output even on success), `UMD_ORACLE_VERBOSE` (print every field compared).

#[path = "oracle/examine.rs"]
mod examine;
#[path = "oracle/locate.rs"]
mod locate;
#[path = "oracle/vm.rs"]
mod vm;

use examine::{compare_examine, parse_examine};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use vm::{parse_vm_output, VmArray};

/// One MiB, the unit of member sizes in the matrix.
const MIB: u64 = 1 << 20;
/// Array `IDX` of a batch receives the data disk's bytes from `IDX * DATA_STRIDE_BYTES` on, so
/// no two arrays hold the same content (must match `oracle/batch.sh`).
const DATA_STRIDE_BYTES: u64 = 4096;
/// Seed of the pseudo-random data disk.
const DATA_SEED: u64 = 0x756d_645f_6f72_6163;
/// Kill a VM that runs longer than this (a healthy batch takes well under a minute).
const VM_TIMEOUT_SECS: u32 = 180;
/// `oracle/batch.sh` exit status when some array could not be created or stopped.
const GUEST_SOME_ARRAY_FAILED: i32 = 1;
/// VMs (and host workers) running at once: the machine has two cores.
const PARALLEL: usize = 2;

/// The matrix: one array per line, grouped into VM boots by the first column.
///
/// Columns: boot, name, mdadm `--level`, `--layout` ("-": mdadm's default), `--chunk` in KiB
/// ("-": none), `--metadata`, bitmap ("bm": `--bitmap=internal`), member sizes in MiB in role
/// order. At most [`MAX_VM_MEMBERS`] members per boot.
const MATRIX: &str = "
1 r5-la       5      left-asymmetric    64  1.2  -  4,4,4,4
1 r5-ra       5      right-asymmetric   16  1.1  -  4,4,4,4
1 r5-ls-uneq  5      left-symmetric     512 1.0  bm 8,10,12
1 r5-rs       5      right-symmetric    4   0.90 -  4,4,4,4,4
1 r5-pf       5      parity-first       64  1.2  bm 4,4,4
1 r5-pl       5      parity-last        16  1.2  -  4,4,4,4
1 r5-ddf-zr   5      ddf-zero-restart   64  1.2  -  4,4,4
1 r4          4      -                  64  1.2  -  4,4,4,4
1 r4-090      4      -                  4   0.90 bm 4,4,4
1 lin-12      linear -                  -   1.2  -  4,6,8
1 lin-090     linear -                  -   0.90 -  4,8
1 lin-10      linear -                  -   1.0  -  6,4
2 r0-zones    0      -                  64  1.2  -  4,6,6,8
2 r0-alt      0      alternate          16  1.1  -  4,6,6
2 r0-onezone  0      -                  512 1.0  -  8,8
2 r1-2        1      -                  -   1.2  bm 4,4
2 r1-3-090    1      -                  -   0.90 bm 4,4,4
2 r1-uneq-10  1      -                  -   1.0  bm 4,6
2 r1-uneq-11  1      -                  -   1.1  -  6,4
2 r6-la       6      left-asymmetric    64  1.2  -  4,4,4,4,4
2 r6-ra       6      right-asymmetric   16  1.1  -  4,4,4,4
2 r6-ls       6      left-symmetric     512 1.0  bm 4,4,4,4,4
2 r6-rs       6      right-symmetric    4   0.90 bm 4,4,4,4,4
2 r6-ddf-nr   6      ddf-N-restart      16  1.2  -  4,4,4,4,4
3 r6-pf       6      parity-first       64  1.2  -  4,4,4,4
3 r6-pl       6      parity-last        16  1.2  -  4,4,4,4,4
3 r6-la6      6      left-asymmetric-6  64  1.2  -  4,4,4,4,4
3 r6-ra6      6      right-asymmetric-6 16  1.1  -  4,4,4,4,4
3 r6-ls6      6      left-symmetric-6   4   1.2  bm 4,4,4,4,4
3 r6-rs6      6      right-symmetric-6  64  1.0  -  4,4,4,4,4
3 r6-pf6      6      parity-first-6     16  0.90 -  4,4,4,4
3 r6-ddf-zr   6      ddf-zero-restart   64  1.2  -  4,4,4,4
3 r6-ddf-nc   6      ddf-N-continue     64  0.90 -  4,4,4,4,4
4 r10-n2x2    10     n2                 64  1.2  bm 4,4
4 r10-n2x4    10     n2                 16  1.0  -  4,4,4,4
4 r10-n2x5    10     n2                 64  1.2  -  4,4,4,4,4
4 r10-n3      10     n3                 4   1.2  -  4,4,4
4 r10-f2x3    10     f2                 64  1.1  -  4,4,4
4 r10-f2x4    10     f2                 4   0.90 bm 4,4,4,4
4 r10-f2x5    10     f2                 16  1.2  -  4,4,4,4,4
4 r10-f3      10     f3                 16  1.2  -  4,4,4,4
4 r10-o2x3    10     o2                 512 1.2  -  8,8,8
4 r10-o2x4    10     o2                 16  1.0  bm 4,4,4,4
4 r10-o3      10     o3                 64  0.90 -  4,4,4,4,4
";

/// md-vm attaches at most this many disks: from the 44th on, the PCI address it gives a disk
/// is refused by qemu 10 ("Property 'virtio-blk-pci.addr' doesn't take value '20'").
const MAX_VM_DISKS: usize = 43;
/// Members per boot: every boot also attaches the data disk.
const MAX_VM_MEMBERS: usize = MAX_VM_DISKS - 1;

/// One array of the matrix, as mdadm is asked to create it.
struct Case {
    /// Short unique name for the report.
    name: String,
    /// mdadm `--level`.
    level: String,
    /// mdadm `--layout`, if any.
    layout: Option<String>,
    /// mdadm `--chunk` in KiB, if any.
    chunk_kib: Option<u32>,
    /// mdadm `--metadata`.
    meta: String,
    /// `--bitmap=internal`.
    bitmap: bool,
    /// Member image sizes in MiB, in creation (role) order.
    sizes_mib: Vec<u64>,
}

/// The matrix grouped by boot, in boot order.
fn batches() -> Vec<Vec<Case>> {
    let mut out: Vec<Vec<Case>> = Vec::new();
    for line in MATRIX.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let [boot, name, level, layout, chunk, meta, bitmap, sizes] = w[..] else {
            panic!("matrix line has not 8 columns: {line}");
        };
        let boot: usize = boot.parse().expect("matrix boot column is a number");
        let dash = |v: &str| (v != "-").then(|| v.to_string());
        let case = Case {
            name: name.to_string(),
            level: level.to_string(),
            layout: dash(layout),
            chunk_kib: dash(chunk).map(|c| c.parse().expect("matrix chunk column is a number")),
            meta: meta.to_string(),
            bitmap: bitmap == "bm",
            sizes_mib: sizes
                .split(',')
                .map(|s| s.parse().expect("matrix size is a number"))
                .collect(),
        };
        assert!(
            boot >= 1 && boot <= out.len() + 1,
            "matrix boots must be listed in order"
        );
        if boot > out.len() {
            out.push(Vec::new());
        }
        out[boot - 1].push(case);
    }
    for (b, cases) in out.iter().enumerate() {
        let members: usize = cases.iter().map(|c| c.sizes_mib.len()).sum();
        assert!(
            members <= MAX_VM_MEMBERS,
            "boot {} has {members} members",
            b + 1
        );
    }
    out
}

/// splitmix64: a tiny, well-mixed generator, so the data needs no dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough index below `n` (n > 0) for shuffling.
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        usize::try_from(self.next_u64() % n as u64).expect("result is below a usize")
    }
}

/// The pseudo-random bytes copied onto the arrays.
fn data_bytes(len: u64) -> Vec<u8> {
    let mut rng = SplitMix64(DATA_SEED);
    let len = usize::try_from(len).expect("data disk fits in memory");
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// How one batch was laid out on the host.
struct BatchFiles {
    dir: PathBuf,
    /// Member image paths per array, in creation (role) order.
    members: Vec<Vec<PathBuf>>,
    data: PathBuf,
}

/// Creates the sparse members, the plan file for `oracle/batch.sh` and the data disk.
fn prepare_batch(dir: &Path, cases: &[Case], data: &[u8]) -> Result<BatchFiles, String> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut plan = String::new();
    let mut members = Vec::new();
    let mut disk = 0usize;
    for (idx, c) in cases.iter().enumerate() {
        let _ = writeln!(
            plan,
            "{idx} {} {} {} {} {} {}",
            c.level,
            c.layout.as_deref().unwrap_or("-"),
            c.chunk_kib
                .map_or_else(|| "-".to_string(), |k| k.to_string()),
            c.meta,
            if c.bitmap { "internal" } else { "none" },
            c.sizes_mib.len()
        );
        let mut paths = Vec::new();
        for &size in &c.sizes_mib {
            let path = dir.join(format!("d{disk:02}-{}.img", c.name));
            let f = fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            f.set_len(size * MIB)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            paths.push(path);
            disk += 1;
        }
        members.push(paths);
    }
    let plan_path = dir.join("plan.txt");
    fs::write(&plan_path, plan).map_err(|e| format!("{}: {e}", plan_path.display()))?;
    let data_path = dir.join("zz-data.img");
    fs::write(&data_path, data).map_err(|e| format!("{}: {e}", data_path.display()))?;
    Ok(BatchFiles {
        dir: dir.to_path_buf(),
        members,
        data: data_path,
    })
}

/// Boots of one batch before giving up: under software emulation on a
/// loaded host the guest kernel occasionally stalls at boot (RCU stall, no
/// script output), which the timeout turns into exit 124; such a boot is
/// retried on freshly zeroed members. Failures of the script itself are not.
const VM_ATTEMPTS_MAX: u32 = 3;

/// md-vm's exit statuses for "the VM, not the script, failed" (its README).
const VM_TIMED_OUT: i32 = 124;
const VM_FAILED: i32 = 125;

/// Boots one batch, retrying a boot that hung; returns the guest's output and
/// the wall time in seconds of the boot that completed.
fn run_batch(md_vm: &Path, script: &Path, files: &BatchFiles) -> Result<(String, f64), String> {
    let mut attempt = 1;
    loop {
        match boot_batch(md_vm, script, files) {
            Err((code, e))
                if matches!(code, Some(VM_TIMED_OUT | VM_FAILED)) && attempt < VM_ATTEMPTS_MAX =>
            {
                eprintln!(
                    "oracle: boot attempt {attempt} failed ({e}); retrying on zeroed members"
                );
                zero_members(files)?;
                attempt += 1;
            }
            other => return other.map_err(|(_, e)| e),
        }
    }
}

/// Zero every member image again (same size), so a retried boot starts from
/// the state the first one did.
fn zero_members(files: &BatchFiles) -> Result<(), String> {
    for path in files.members.iter().flatten() {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let len = f
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        f.set_len(0)
            .and_then(|()| f.set_len(len))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// One boot of one batch; on failure also returns md-vm's exit status.
fn boot_batch(
    md_vm: &Path,
    script: &Path,
    files: &BatchFiles,
) -> Result<(String, f64), (Option<i32>, String)> {
    let start = Instant::now();
    let accel = std::env::var("UMD_ORACLE_ACCEL").unwrap_or_else(|_| "tcg".to_string());
    let mut cmd = Command::new(md_vm);
    cmd.arg("--quiet")
        .args(["--accel", &accel])
        .args(["--timeout", &VM_TIMEOUT_SECS.to_string()])
        .arg("--script")
        .arg(script)
        .arg("--add")
        .arg(files.dir.join("plan.txt"))
        .arg("--console")
        .arg(files.dir.join("console.log"))
        .arg("--");
    cmd.args(files.members.iter().flatten()).arg(&files.data);
    let out = cmd
        .output()
        .map_err(|e| (None, format!("cannot run {}: {e}", md_vm.display())))?;
    let secs = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = files.dir.join("vm-output.txt");
    fs::write(&log, &stdout).map_err(|e| (None, format!("{}: {e}", log.display())))?;
    // 1 is the guest script saying some array failed; those failures are in the output and
    // reported per array. Anything else (124 timeout, 125 VM failure) loses the whole batch.
    if !matches!(out.status.code(), Some(0 | GUEST_SOME_ARRAY_FAILED)) {
        return Err((
            out.status.code(),
            format!(
                "md-vm exited with {} after {secs:.1} s (output in {}): {}",
                out.status,
                log.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok((stdout, secs))
}

/// `umd cat` on `members`: its whole stdout, or umd's error line.
fn umd_cat(members: &[PathBuf]) -> Result<Vec<u8>, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_umd"))
        .arg("cat")
        .args(members)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run umd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "umd cat exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// Checks `umd cat` output against the bytes the kernel hashed. The caller has checked that
/// `expected` hashes to the kernel's sha256, so byte equality here is hash equality (and much
/// cheaper than hashing every run in a debug build); on a difference, says where.
fn same_as_kernel(out: &[u8], expected: &[u8]) -> Result<(), String> {
    if out == expected {
        return Ok(());
    }
    let first = out.iter().zip(expected).position(|(a, b)| a != b);
    let at = first.map_or_else(
        || "no byte differs in the common length".to_string(),
        |o| format!("first difference at byte {o} (array sector {})", o / 512),
    );
    Err(format!(
        "{} bytes (sha256 {}) where the kernel has {} bytes: {at}",
        out.len(),
        sha256_hex(out),
        expected.len()
    ))
}

/// `umd examine --json` on `members`, parsed.
fn umd_examine(members: &[PathBuf]) -> Result<serde_json::Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_umd"))
        .args(["examine", "--json"])
        .args(members)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run umd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "umd examine exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("umd examine --json: bad JSON: {e}"))
}

/// A member order that is never the creation order (for two or more members), so assembly
/// must go by the recorded roles.
fn shuffled(members: &[PathBuf], seed: u64) -> Vec<PathBuf> {
    let mut v = members.to_vec();
    let mut rng = SplitMix64(seed);
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
    if v.len() > 1 && v == members {
        v.reverse();
    }
    v
}

/// Which members to leave out for degraded reads: one for every redundant level, and also two
/// for raid6. Removal positions rotate with the array index so every role gets its turn.
fn degraded_sets(level: &str, n: usize, idx: usize) -> Vec<Vec<usize>> {
    match level {
        "1" | "4" | "5" | "10" => vec![vec![idx % n]],
        "6" => vec![vec![idx % n], vec![(idx + 1) % n, (idx + 3) % n]],
        _ => Vec::new(),
    }
}

/// Everything checked for one array.
struct ArrayReport {
    line: String,
    mismatches: Vec<String>,
    /// Every examine field compared, for `UMD_ORACLE_VERBOSE=1`.
    details: Vec<String>,
}

/// Runs every host-side check of one array against the VM's results.
fn check_array(
    batch: usize,
    idx: usize,
    c: &Case,
    paths: &[PathBuf],
    vm: &VmArray,
    data: &[u8],
) -> ArrayReport {
    let label = format!("{} (batch {}, md{idx})", c.name, batch + 1);
    let mut mismatches = Vec::new();
    let mut details = Vec::new();
    let mut miss = |m: String| mismatches.push(format!("{label}: {m}"));
    if let Some(err) = &vm.create_failed {
        miss(format!("mdadm --create failed in the VM: {err}"));
        return ArrayReport {
            line: format!("{:<14} mdadm refused", c.name),
            mismatches,
            details: Vec::new(),
        };
    }
    if vm.stop_failed {
        miss("mdadm --stop failed in the VM, so the superblocks may not be final".to_string());
    }
    let (Some(size), Some(vm_hash)) = (vm.size_bytes, vm.sha256.as_deref()) else {
        miss("the VM printed no size or sha256".to_string());
        return ArrayReport {
            line: format!("{:<14} no VM result", c.name),
            mismatches,
            details: Vec::new(),
        };
    };
    // The VM must have stored exactly the bytes we gave it, else the oracle itself is broken.
    let start = usize::try_from(idx as u64 * DATA_STRIDE_BYTES).expect("small offset");
    let end = start + usize::try_from(size).expect("array fits in memory");
    let expected = data.get(start..end).unwrap_or_default();
    if sha256_hex(expected) != vm_hash {
        miss(format!(
            "VM hash {vm_hash} is not the hash of the {size} bytes written"
        ));
    }

    let seed = (batch as u64) << 32 | idx as u64;
    let hash = match umd_cat(&shuffled(paths, seed)).and_then(|o| same_as_kernel(&o, expected)) {
        Ok(()) => "yes".to_string(),
        Err(e) => {
            miss(format!("umd cat (all members, shuffled): {e}"));
            "NO".to_string()
        }
    };

    let mut degraded = Vec::new();
    for (k, leave_out) in degraded_sets(&c.level, paths.len(), idx)
        .into_iter()
        .enumerate()
    {
        let kept: Vec<PathBuf> = paths
            .iter()
            .enumerate()
            .filter(|(i, _)| !leave_out.contains(i))
            .map(|(_, p)| p.clone())
            .collect();
        let run = umd_cat(&shuffled(&kept, seed ^ (k as u64 + 1) << 48));
        match run.and_then(|o| same_as_kernel(&o, expected)) {
            Ok(()) => degraded.push(format!("-{leave_out:?} yes")),
            Err(e) => {
                miss(format!("umd cat without members {leave_out:?}: {e}"));
                degraded.push(format!("-{leave_out:?} NO"));
            }
        }
    }

    let (compared, examine_status) = match umd_examine(paths) {
        Ok(json) => examine_fields(c, paths, vm, &json, &mut miss, &mut details),
        Err(e) => {
            miss(e);
            (0, "ERR".to_string())
        }
    };
    let geometry = format!(
        "{}/{}/{}{}",
        c.level,
        c.layout.as_deref().unwrap_or("-"),
        c.meta,
        if c.bitmap { "+bm" } else { "" }
    );
    let line = format!(
        "{:<14} {geometry:<30} {:>9} hash {hash:<3} degraded {:<18} examine {examine_status} \
         ({compared} fields)",
        c.name,
        size,
        if degraded.is_empty() {
            "n/a".to_string()
        } else {
            degraded.join(",")
        }
    );
    ArrayReport {
        line,
        mismatches,
        details,
    }
}

/// Compares `umd examine --json` with the VM's `mdadm --examine` for every member; returns
/// the number of fields compared and a short status.
fn examine_fields(
    c: &Case,
    paths: &[PathBuf],
    vm: &VmArray,
    json: &serde_json::Value,
    miss: &mut impl FnMut(String),
    details: &mut Vec<String>,
) -> (usize, String) {
    let Some(entries) = json.as_array() else {
        miss("umd examine --json: not a JSON array".to_string());
        return (0, "ERR".to_string());
    };
    if entries.len() != paths.len() {
        miss(format!(
            "umd examine --json: {} entries for {} members",
            entries.len(),
            paths.len()
        ));
    }
    let mut compared = 0;
    let mut bad = 0;
    for (k, (path, entry)) in paths.iter().zip(entries).enumerate() {
        let Some(text) = vm.examine.get(&k) else {
            miss(format!("member {k}: no mdadm --examine output from the VM"));
            bad += 1;
            continue;
        };
        let device = entry.get("device").and_then(serde_json::Value::as_str);
        if device != path.to_str() {
            miss(format!(
                "member {k}: umd names it {device:?}, expected {}",
                path.display()
            ));
        }
        let infos = entry.get("infos").and_then(serde_json::Value::as_array);
        let Some([info]) = infos.map(Vec::as_slice) else {
            miss(format!(
                "member {k}: expected exactly one MdInfo, umd gave {infos:?}"
            ));
            bad += 1;
            continue;
        };
        let image_sectors = fs::metadata(path).map_or(0, |m| m.len() / 512);
        let mdadm = parse_examine(text);
        let size_mib = c.sizes_mib.get(k).copied().unwrap_or_default();
        for check in compare_examine(&mdadm, info, vm, image_sectors) {
            compared += 1;
            let verdict = if check.ok { "ok" } else { "MISMATCH" };
            details.push(format!(
                "{} member {k}: {:<34} mdadm/kernel {:<40} umd {:<40} {verdict}",
                c.name, check.field, check.reference, check.umd
            ));
            if !check.ok {
                bad += 1;
                miss(format!(
                    "member {k} ({size_mib} MiB) field {}: mdadm/kernel {}, umd {}",
                    check.field, check.reference, check.umd
                ));
            }
        }
    }
    (
        compared,
        if bad == 0 {
            "ok".to_string()
        } else {
            format!("{bad} BAD")
        },
    )
}

/// Boots every batch, at most [`PARALLEL`] at once; returns per batch the output and seconds.
fn run_all_batches(
    md_vm: &Path,
    script: &Path,
    files: &[BatchFiles],
) -> Vec<Result<(String, f64), String>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new((0..files.len()).map(|_| None).collect::<Vec<_>>());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let b = next.fetch_add(1, Ordering::SeqCst);
                let Some(f) = files.get(b) else { break };
                let r = run_batch(md_vm, script, f);
                results.lock().expect("no worker panics holding the lock")[b] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("batch never ran".to_string())))
        .collect()
}

#[test]
fn umd_matches_kernel_md_and_mdadm() {
    let Some(md_vm) = locate::oracle_or_skip("oracle") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/batch.sh");
    let work =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("oracle-{}", std::process::id()));
    let batches = batches();
    let data_len = batches
        .iter()
        .flat_map(|b| b.iter().enumerate())
        .map(|(i, c)| i as u64 * DATA_STRIDE_BYTES + c.sizes_mib.iter().sum::<u64>() * MIB)
        .max()
        .unwrap_or(MIB)
        .next_multiple_of(MIB);
    let data = data_bytes(data_len);

    let files: Vec<BatchFiles> = batches
        .iter()
        .enumerate()
        .map(|(b, cases)| prepare_batch(&work.join(format!("batch{}", b + 1)), cases, &data))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("preparing images: {e}"));
    let boots = run_all_batches(&md_vm, &script, &files);

    let mut mismatches = Vec::new();
    let mut jobs = Vec::new();
    for (b, boot) in boots.iter().enumerate() {
        match boot {
            Ok((out, secs)) => {
                eprintln!("oracle: batch {} booted and ran in {secs:.1} s", b + 1);
                let arrays = parse_vm_output(out);
                for idx in 0..batches[b].len() {
                    jobs.push((b, idx, arrays.get(&idx).cloned().unwrap_or_default()));
                }
            }
            Err(e) => mismatches.push(format!("batch {}: {e}", b + 1)),
        }
    }

    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::SeqCst);
                let Some((b, idx, vm)) = jobs.get(j) else {
                    break;
                };
                let r = check_array(
                    *b,
                    *idx,
                    &batches[*b][*idx],
                    &files[*b].members[*idx],
                    vm,
                    &data,
                );
                reports
                    .lock()
                    .expect("no worker panics holding the lock")
                    .push((j, r));
            });
        }
    });
    let mut reports = reports.into_inner().expect("no worker panicked");
    reports.sort_by_key(|(j, _)| *j);
    eprintln!("oracle: array / level/layout/metadata / bytes / results");
    for (_, r) in &reports {
        eprintln!("  {}", r.line);
        mismatches.extend(r.mismatches.iter().cloned());
    }
    if std::env::var_os("UMD_ORACLE_VERBOSE").is_some() {
        for (_, r) in &reports {
            for d in &r.details {
                eprintln!("  {d}");
            }
        }
    }
    if mismatches.is_empty() && std::env::var_os("UMD_ORACLE_KEEP").is_none() {
        let _ = fs::remove_dir_all(&work);
    } else {
        eprintln!(
            "oracle: images, plan and VM output kept in {}",
            work.display()
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) between umd and the kernel/mdadm:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

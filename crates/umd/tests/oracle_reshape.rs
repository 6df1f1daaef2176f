//! Kernel cross-check for reshapes, both directions.
//!
//! Boot 1 (`oracle_reshape/linux_mid_reshape.sh`): mdadm creates raid5 and
//! raid6 arrays, the kernel fills them, then grows each by one member with
//! its speed held low and is stopped half way, so every superblock records
//! `reshape_position` (md's data-offset method, no backup file). On the
//! host, `umd cat` must read each of these mid-reshape arrays back to the
//! kernel's hash (members in shuffled order, and raid6 with one member left
//! out), then `umd grow --continue` finishes Linux's reshape.
//!
//! Meanwhile umd creates, fills and reshapes arrays of its own: a raid5
//! 3 -> 4 grown in one go, a raid6 4 -> 5 killed with SIGKILL at three
//! points and resumed, a raid5 3 -> 4 that also changes chunk (64 -> 128
//! KiB) and layout, a raid6 whose chunk shrinks (64 -> 32 KiB), and a raid1
//! whose empty third slot is removed on the running array (`raid_disks` 3
//! -> 2), and a raid5 3 -> 4 killed mid-grow and left for Linux to finish.
//!
//! Boot 2 (`oracle_write/verify.sh`): the kernel assembles all of them,
//! must not start a resync (it resumes the reshape umd was killed in), `check` must find mismatch_cnt 0, the sha256 of
//! `/dev/mdX` must be the data written followed by zeros (md zero-fills
//! the space a grow adds), and mdadm must record the new member count.
//!
//! Environment: as `oracle_write.rs` (`UMD_ORACLE`, `UMD_SKIP_ORACLE=1`,
//! `UMD_ORACLE_ACCEL`, `UMD_ORACLE_KEEP`).

#[allow(dead_code)] // shared with oracle_write.rs; its worker pool is not used here
#[path = "oracle_write/boot.rs"]
mod boot;
#[allow(dead_code)] // the parser of the read-direction test; only part of it is used here
#[path = "oracle/locate.rs"]
mod locate;
#[allow(dead_code)] // shared with reshape.rs; its random kill points are not used here
mod reshape_support;
mod support;
#[path = "oracle_write/verify.rs"]
mod verify;

use reshape_support::{filled_array, grow_killed, grow_ok};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{examine_field, mdadm_examine, pseudo_random, sha256_hex, sparse_members, umd};
use verify::parse_verify_output;

/// Member size of every array here, MiB.
const MEMBER_MIB: u64 = 24;
/// Linux's cases: index, level, chunk KiB, members before the grow.
const LINUX_CASES: [(usize, u32, u32, usize); 2] = [(0, 5, 64, 3), (1, 6, 64, 4)];

/// One array for the kernel to judge at the end.
struct Judged {
    name: String,
    members: Vec<PathBuf>,
    raid_devices: usize,
    size_bytes: u64,
    sha256: String,
    /// `mdadm --examine` fields the kernel must leave as expected.
    fields: &'static [(&'static str, &'static str)],
    /// The superblocks still record a reshape: the kernel resumes it.
    reshaping: bool,
}

fn cat_result(members: &[PathBuf]) -> Result<Vec<u8>, String> {
    let out = umd()
        .arg("cat")
        .args(members)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(out.stdout)
}

fn zero_extended_hash(data: &[u8], len: u64) -> String {
    let mut v = data.to_vec();
    v.resize(len as usize, 0);
    sha256_hex(&v)
}

/// Boot 1 and the host's reading and finishing of Linux's reshapes.
fn linux_reshapes(md_vm: &Path, work: &Path, problems: &mut Vec<String>) -> Vec<Judged> {
    let dir = work.join("linux");
    fs::create_dir_all(&dir).expect("work dir");
    let mut plan = String::new();
    let mut disks = Vec::new();
    let mut sets = Vec::new();
    for (idx, level, chunk, n) in LINUX_CASES {
        writeln!(plan, "{idx} {level} {chunk} {n} grow").expect("string");
        let set_dir = dir.join(format!("a{idx}"));
        fs::create_dir_all(&set_dir).expect("set dir");
        let members = sparse_members(&set_dir, n + 1, MEMBER_MIB);
        disks.extend(members.iter().cloned());
        sets.push(members);
    }
    fs::write(dir.join("plan.txt"), plan).expect("plan");
    let src = dir.join("src.img");
    let data = pseudo_random(((3 * MEMBER_MIB) << 20) as usize + 8192, 0x7265_7368);
    fs::write(&src, &data).expect("data disk");
    disks.push(src);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_reshape/linux_mid_reshape.sh");
    let saved = dir.join("snapshot");
    boot::snapshot(&disks, &saved).unwrap_or_else(|e| panic!("{e}"));
    let (out, secs) = boot::boot(md_vm, &script, &dir, &disks, &|| {
        boot::restore_snapshot(&disks, &saved)
    })
    .unwrap_or_else(|e| panic!("boot 1: {e}"));
    eprintln!("oracle_reshape: boot 1 took {secs:.0} s");
    let mut reported: BTreeMap<usize, (u64, String)> = BTreeMap::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[..] {
            ["@@size", idx, size] => {
                let idx = idx.parse().expect("index");
                reported.entry(idx).or_default().0 = size.parse().expect("size");
            }
            ["@@sha256", idx, hash] => {
                reported.entry(idx.parse().expect("index")).or_default().1 = hash.to_string();
            }
            ["@@failed", ..] => problems.push(format!("boot 1: {line}")),
            _ => {}
        }
    }
    let mut judged = Vec::new();
    for ((idx, level, _, n), members) in LINUX_CASES.into_iter().zip(sets) {
        let name = format!("linux raid{level} {n}->{}", n + 1);
        let Some((size, vm_hash)) = reported.get(&idx).cloned() else {
            problems.push(format!("{name}: the VM reported nothing"));
            continue;
        };
        let written = &data[idx * 4096..][..size as usize];
        if sha256_hex(written) != vm_hash {
            problems.push(format!("{name}: the VM's hash is not the data written"));
        }
        let text = mdadm_examine(&members[0]);
        let Some(pos) = examine_field(&text, "Reshape pos'n") else {
            problems.push(format!(
                "{name}: the kernel finished before it was stopped:\n{text}"
            ));
            continue;
        };
        eprintln!("oracle_reshape: {name}: stopped at reshape position {pos}");
        // Mid-reshape, members in reverse order.
        let reversed: Vec<PathBuf> = members.iter().rev().cloned().collect();
        match cat_result(&reversed) {
            Ok(b) if sha256_hex(&b) == vm_hash => {}
            Ok(b) => problems.push(format!(
                "{name}: umd cat mid-reshape reads {} bytes, wrong",
                b.len()
            )),
            Err(e) => problems.push(format!("{name}: umd cat mid-reshape: {e}")),
        }
        if level == 6 {
            // degraded: one old member left out
            match cat_result(&members[1..]) {
                Ok(b) if sha256_hex(&b) == vm_hash => {}
                Ok(_) => problems.push(format!("{name}: degraded mid-reshape read is wrong")),
                Err(e) => problems.push(format!("{name}: degraded mid-reshape read: {e}")),
            }
        }
        grow_ok(&["--continue"], &members);
        let new_len =
            size / (n as u64 - u64::from(level - 4)) * (n as u64 + 1 - u64::from(level - 4));
        match cat_result(&members) {
            Ok(b)
                if b.len() as u64 == new_len
                    && sha256_hex(&b) == zero_extended_hash(written, new_len) => {}
            Ok(b) => problems.push(format!(
                "{name}: after umd finished it, {} bytes read wrong",
                b.len()
            )),
            Err(e) => problems.push(format!("{name}: after umd finished it: {e}")),
        }
        judged.push(Judged {
            name,
            members,
            raid_devices: n + 1,
            size_bytes: new_len,
            sha256: zero_extended_hash(written, new_len),
            fields: &[],
            reshaping: false,
        });
    }
    judged
}

/// One reshape umd does on an array it made.
struct UmdCase {
    name: &'static str,
    level: u32,
    /// Members before the reshape.
    members: usize,
    /// Members added.
    add: usize,
    /// Extra `umd grow` arguments (shape changes).
    extra: &'static [&'static str],
    /// Kill the grow at a few checkpoints before letting it finish.
    kills: bool,
    /// Kill the grow once and leave the rest of the reshape to Linux.
    linux_finishes: bool,
    /// What mdadm must read from the superblocks afterwards.
    fields: &'static [(&'static str, &'static str)],
}

const UMD_CASES: [UmdCase; 5] = [
    UmdCase {
        name: "umd raid5 3->4",
        level: 5,
        members: 3,
        add: 1,
        extra: &[],
        kills: false,
        linux_finishes: false,
        fields: &[],
    },
    UmdCase {
        name: "umd raid6 4->5, killed 3x",
        level: 6,
        members: 4,
        add: 1,
        extra: &[],
        kills: true,
        linux_finishes: false,
        fields: &[],
    },
    UmdCase {
        name: "umd raid5 3->4, chunk 64K->128K, right-asymmetric",
        level: 5,
        members: 3,
        add: 1,
        extra: &["--chunk", "128", "--layout", "right-asymmetric"],
        kills: false,
        linux_finishes: false,
        fields: &[("Chunk Size", "128K"), ("Layout", "right-asymmetric")],
    },
    UmdCase {
        name: "umd raid6 chunk 64K->32K",
        level: 6,
        members: 4,
        add: 0,
        extra: &["--chunk", "32"],
        kills: false,
        linux_finishes: false,
        fields: &[("Chunk Size", "32K")],
    },
    UmdCase {
        name: "umd raid5 3->4, killed, finished by Linux",
        level: 5,
        members: 3,
        add: 1,
        extra: &[],
        kills: false,
        linux_finishes: true,
        fields: &[],
    },
];

/// umd's own reshapes (`UMD_CASES`) on arrays it created and filled.
fn umd_grows(work: &Path) -> Vec<Judged> {
    let mut judged = Vec::new();
    for (i, c) in UMD_CASES.iter().enumerate() {
        let dir = work.join(format!("umd-{i}"));
        fs::create_dir_all(&dir).expect("dir");
        let members = sparse_members(&dir, c.members + c.add, MEMBER_MIB);
        let (old, add) = members.split_at(c.members);
        let level_s = c.level.to_string();
        let n_s = c.members.to_string();
        let data = filled_array(
            &dir,
            old,
            &["--level", &level_s, "--raid-devices", &n_s, "--chunk", "64"],
            100 + i as u64,
        );
        let new_s = members.len().to_string();
        let mut start = vec!["--window-kib", "512", "--raid-devices", &new_s];
        for a in add {
            start.push("--add");
            start.push(a.to_str().expect("utf-8 path"));
        }
        start.extend_from_slice(c.extra);
        if c.linux_finishes {
            assert!(
                grow_killed(&start, old, 3, Duration::from_micros(700)),
                "{}: killed",
                c.name
            );
        } else if c.kills {
            assert!(
                grow_killed(&start, old, 1, Duration::from_micros(500)),
                "{}: killed",
                c.name
            );
            for k in [2, 9] {
                grow_killed(
                    &["--continue", "--window-kib", "512"],
                    &members,
                    k,
                    Duration::from_micros(1500),
                );
            }
            grow_ok(&["--continue"], &members);
        } else {
            grow_ok(&start, old);
        }
        let parity = if c.level == 6 { 2 } else { 1 };
        let len = data.len() as u64 / (c.members - parity) as u64 * (members.len() - parity) as u64;
        judged.push(Judged {
            name: c.name.to_string(),
            raid_devices: members.len(),
            members,
            size_bytes: len,
            sha256: zero_extended_hash(&data, len),
            fields: c.fields,
            reshaping: c.linux_finishes,
        });
    }
    judged.push(raid1_shrunk(&work.join("umd-raid1")));
    judged
}

/// raid1 with three slots, the third empty, shrunk to two slots by
/// `umd grow --raid-devices 2` on the running array.
fn raid1_shrunk(dir: &Path) -> Judged {
    fs::create_dir_all(dir).expect("dir");
    let members = sparse_members(dir, 2, MEMBER_MIB);
    let mut with_missing = members.clone();
    with_missing.push(PathBuf::from("missing"));
    support::create(
        &with_missing,
        &["--assume-clean", "--level", "1", "--raid-devices", "3"],
    );
    let run = support::Running::start(dir, &members);
    let size = support::run_ok(
        std::process::Command::new("nbdinfo")
            .arg("--size")
            .arg(run.uri()),
    );
    let size: usize = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .expect("size");
    let data = pseudo_random(size, 11);
    let src = dir.join("data.bin");
    fs::write(&src, &data).expect("data file");
    support::run_ok(
        std::process::Command::new("nbdcopy")
            .arg(&src)
            .arg(run.uri()),
    );
    let out = umd()
        .env("UMD_RUN_DIR", &run.run_dir)
        .args(["grow", "--control"])
        .arg(&run.control)
        .args(["--raid-devices", "2"])
        .output()
        .expect("umd grow");
    assert!(
        out.status.success(),
        "raid1 shrink: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run.stop().success(), "umd run stops cleanly");
    Judged {
        name: "umd raid1 3 slots -> 2".to_string(),
        members,
        raid_devices: 2,
        size_bytes: size as u64,
        sha256: sha256_hex(&data),
        fields: &[],
        reshaping: false,
    }
}

#[test]
fn linux_and_umd_reshapes_cross_check() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_reshape") else {
        return;
    };
    for tool in ["mdadm", "nbdcopy", "nbdinfo"] {
        support::require_tool(tool);
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oracle-reshape-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let mut problems = Vec::new();
    let (linux, umd_made) = std::thread::scope(|s| {
        let umd_made = s.spawn(|| umd_grows(&work));
        let mut p = Vec::new();
        let linux = linux_reshapes(&md_vm, &work, &mut p);
        ((linux, p), umd_made.join().expect("umd grows"))
    });
    let (linux, p) = linux;
    problems.extend(p);
    let all: Vec<Judged> = linux.into_iter().chain(umd_made).collect();

    // Boot 2: the kernel judges every grown array.
    let dir = work.join("verify");
    fs::create_dir_all(&dir).expect("verify dir");
    let mut plan = String::new();
    let mut disks = Vec::new();
    for (i, j) in all.iter().enumerate() {
        writeln!(plan, "{i} 1 {} 0", j.members.len()).expect("string");
        disks.extend(j.members.iter().cloned());
    }
    fs::write(dir.join("plan.txt"), plan).expect("plan");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_write/verify.sh");
    let saved = dir.join("snapshot");
    boot::snapshot(&disks, &saved).unwrap_or_else(|e| panic!("{e}"));
    let (out, secs) = boot::boot(&md_vm, &script, &dir, &disks, &|| {
        boot::restore_snapshot(&disks, &saved)
    })
    .unwrap_or_else(|e| panic!("boot 2: {e}"));
    eprintln!("oracle_reshape: boot 2 took {secs:.0} s");
    let verified = parse_verify_output(&out);
    for (i, j) in all.iter().enumerate() {
        let Some(v) = verified.get(&i) else {
            problems.push(format!("{}: the kernel reported nothing", j.name));
            continue;
        };
        if let Some(e) = &v.assemble_failed {
            problems.push(format!("{}: mdadm --assemble failed: {e}", j.name));
            continue;
        }
        let after = |k: &str| v.after.get(k).map_or("?", String::as_str);
        let mismatch = v.check.get("mismatch_cnt").map_or("?", String::as_str);
        let devices = v
            .examine_after
            .as_deref()
            .and_then(|t| examine_field(t, "Raid Devices"));
        let line =
            format!(
            "{}: sync_action={} mismatch_cnt={mismatch} size={:?} hash {} raid_devices={devices:?}",
            j.name,
            after("sync_action"),
            v.size_bytes,
            if v.sha256.as_deref() == Some(&j.sha256) { "ok" } else { "BAD" },
        );
        eprintln!("oracle_reshape: {line}");
        // Linux resumes a reshape umd left; nothing else may start a sync.
        let started = after("sync_action");
        let ok = (started == "idle" || (j.reshaping && started == "reshape"))
            && mismatch == "0"
            && v.size_bytes == Some(j.size_bytes)
            && v.sha256.as_deref() == Some(&j.sha256)
            && devices.as_deref() == Some(j.raid_devices.to_string().as_str());
        if !ok {
            problems.push(line);
        }
        let text = v.examine_after.as_deref().unwrap_or_default();
        for (key, want) in j.fields {
            let got = examine_field(text, key);
            if got.as_deref() != Some(*want) {
                problems.push(format!("{}: {key} is {got:?}, not {want}", j.name));
            }
        }
    }
    if problems.is_empty() && std::env::var_os("UMD_ORACLE_KEEP").is_none() {
        let _ = fs::remove_dir_all(&work);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

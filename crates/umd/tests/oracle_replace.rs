//! Kernel cross-check for hot replace, Linux to umd (the other direction,
//! umd's replacements assembled and finished by Linux, is in
//! `oracle_rebuild.rs`).
//!
//! One boot (`oracle_replace/linux_mid_replace.sh`): mdadm creates a raid1,
//! a raid5 and a raid6, the kernel fills them, then `mdadm --replace` copies
//! member 1 of each onto a spare with the speed held low, and the arrays are
//! stopped half way, so the spare's superblock says "Replacement device 1"
//! with a checkpoint. On the host, `umd cat` reads each array back to the
//! kernel's hash with the replacement present, then `umd run` resumes the
//! copy: the array never reports itself degraded, the spare ends in sync in
//! role 1, what NBD serves is the kernel's data, `check` finds mismatch_cnt
//! 0, and the host's mdadm reads the spare as "Active device 1" afterwards.
//!
//! Environment: as `oracle_write.rs` (`UMD_ORACLE`, `UMD_SKIP_ORACLE=1`,
//! `UMD_ORACLE_ACCEL`, `UMD_ORACLE_KEEP`).

#[allow(dead_code)] // shared with oracle_write.rs; its worker pool is not used here
#[path = "oracle_write/boot.rs"]
mod boot;
#[allow(dead_code)] // the parser of the read-direction test; only the locator is used here
#[path = "oracle/locate.rs"]
mod locate;
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{
    cat, examine_field, mdadm_examine, pseudo_random, run_ok, sha256_hex, sparse_members, Running,
};

/// Member size of every array here, MiB.
const MEMBER_MIB: u64 = 12;
/// The cases: index, level, members (member 1 is replaced).
const CASES: [(usize, u32, usize); 3] = [(0, 1, 2), (1, 5, 3), (2, 6, 4)];
/// How long umd may take to finish a copy.
const TIMEOUT: Duration = Duration::from_secs(120);

/// umd's side of one case: `members` as Linux left them, the spare last.
fn resume_in_umd(dir: &Path, members: &[PathBuf], vm_hash: &str) -> Result<(), String> {
    let spare = members.last().ok_or("no members")?;
    let spare_name = spare
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or("spare name")?;
    let role = examine_field(&mdadm_examine(spare), "Device Role").unwrap_or_default();
    if role != "Replacement device 1" {
        return Err(format!("Linux left the spare as {role:?}, not mid-replace"));
    }
    let offline = sha256_hex(&cat(members));
    if offline != vm_hash {
        return Err("umd cat mid-replace reads other data than the kernel wrote".to_owned());
    }
    let run = Running::start(dir, members);
    let state = format!("dev-{spare_name}/state");
    let deadline = Instant::now() + TIMEOUT;
    while run.get(&state) != "in_sync" {
        if run.get("degraded") != "0" {
            return Err(format!(
                "degraded while the copy resumed: {}",
                run.get(&state)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("the copy does not finish: {}", run.get(&state)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    run.wait_idle(TIMEOUT);
    if run.get(&format!("dev-{spare_name}/slot")) != "1" {
        return Err("the replacement does not hold role 1".to_owned());
    }
    let online = dir.join("online.bin");
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&online));
    let served = sha256_hex(&fs::read(&online).map_err(|e| e.to_string())?);
    if served != vm_hash {
        return Err("after the copy, NBD serves other data than the kernel wrote".to_owned());
    }
    run.set("sync_action", "check")?;
    run.wait_idle(TIMEOUT);
    let mismatches = run.get("mismatch_cnt");
    if mismatches != "0" {
        return Err(format!("check after the copy: mismatch_cnt {mismatches}"));
    }
    run.stop();
    let role = examine_field(&mdadm_examine(spare), "Device Role").unwrap_or_default();
    if role != "Active device 1" {
        return Err(format!(
            "after umd finished, mdadm reads the spare as {role:?}"
        ));
    }
    Ok(())
}

#[test]
fn linux_replacements_stopped_halfway_finish_in_umd() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_replace") else {
        return;
    };
    for tool in ["mdadm", "nbdcopy"] {
        support::require_tool(tool);
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oracle-replace-{}", std::process::id()));
    let dir = work.join("linux");
    fs::create_dir_all(&dir).expect("work dir");
    let mut plan = String::new();
    let mut disks = Vec::new();
    let mut sets = Vec::new();
    for (idx, level, n) in CASES {
        writeln!(plan, "{idx} {level} {n}").expect("string");
        let set_dir = dir.join(format!("a{idx}"));
        fs::create_dir_all(&set_dir).expect("set dir");
        let members = sparse_members(&set_dir, n + 1, MEMBER_MIB);
        disks.extend(members.iter().cloned());
        sets.push(members);
    }
    fs::write(dir.join("plan.txt"), plan).expect("plan");
    let src = dir.join("src.img");
    let data = pseudo_random(((3 * MEMBER_MIB) << 20) as usize + 16384, 0x7265_706c);
    fs::write(&src, &data).expect("data disk");
    disks.push(src);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_replace/linux_mid_replace.sh");
    let saved = dir.join("snapshot");
    boot::snapshot(&disks, &saved).unwrap_or_else(|e| panic!("{e}"));
    let (out, secs) = boot::boot(&md_vm, &script, &dir, &disks, &|| {
        boot::restore_snapshot(&disks, &saved)
    })
    .unwrap_or_else(|e| panic!("boot: {e}"));
    eprintln!("oracle_replace: the boot took {secs:.0} s");
    let mut problems = Vec::new();
    let mut hashes: BTreeMap<usize, String> = BTreeMap::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[..] {
            ["@@sha256", idx, hash] => {
                hashes.insert(idx.parse().expect("index"), hash.to_string());
            }
            ["@@failed", ..] => problems.push(format!("in the VM: {line}")),
            ["@@progress", ..] => eprintln!("oracle_replace: {line}"),
            _ => {}
        }
    }
    for ((idx, level, n), members) in CASES.into_iter().zip(&sets) {
        let name = format!("linux raid{level} over {n}, member 1 replaced");
        let Some(vm_hash) = hashes.get(&idx) else {
            problems.push(format!("{name}: the VM reported nothing"));
            continue;
        };
        if let Err(e) = resume_in_umd(&dir.join(format!("a{idx}")), members, vm_hash) {
            problems.push(format!("{name}: {e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if std::env::var_os("UMD_ORACLE_KEEP").is_none() {
        let _ = fs::remove_dir_all(&work);
    }
}

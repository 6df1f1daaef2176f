//! Kernel cross-check of the redundancy lifecycle: arrays that lost members
//! while `umd run` served them, left degraded or rebuilt onto spares that
//! `umd manage --add` gave them, are assembled by the Linux md driver with
//! mdadm in one VM boot. For each, the kernel must assemble it with the
//! expected number of missing members and no resync, `check` must find
//! mismatch_cnt 0, the sha256 of `/dev/mdX` must be what umd served last,
//! the spares must carry the lost members' roles, and the roles the kernel
//! records after running it ("Array State") must be the expected ones.
//!
//! The host side: `umd create` (1.2 and 0.90, some with an internal bitmap), `umd
//! run`, spares added, data A written, members failed with `umd manage
//! --fail`, data B written over the whole array while degraded (and while
//! the rebuild runs), rebuild awaited, SIGTERM. Two raid5s (1.2 and 0.90)
//! get their failed member back, removed and added again: re-added through
//! the bitmap. Members of a raid5 and a raid6 are hot-replaced
//! (`umd manage --replace`) while data is written: the kernel assembles the
//! replacement in the old member's role. A raid5 stopped halfway through a
//! replacement is assembled by the kernel, which finishes the copy itself
//! from umd's checkpoint.
//!
//! Without the harness this test fails, naming what is missing; it skips
//! only when `UMD_SKIP_ORACLE=1` is set.

#[path = "oracle_write/boot.rs"]
#[allow(dead_code)] // the pool and snapshots serve the larger write-direction test
mod boot;
#[allow(dead_code)] // the parser of the read-direction test; only the locator is used here
#[path = "oracle/locate.rs"]
mod locate;
mod support;
#[path = "oracle_write/verify.rs"]
mod verify;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::nbd_data::export_size;
use support::{
    create, examine_field, mdadm_examine, pseudo_random, run_ok, sha256_hex, sparse_members,
    Running,
};
use verify::{parse_verify_output, Verified};

/// Member size, MiB: small, the VM hashes every array.
const MEMBER_MIB: u64 = 12;
/// How long a rebuild may take on the host.
const REBUILD_TIMEOUT: Duration = Duration::from_secs(120);

/// One array: `level` over `active` members, members m1..=m`lost` failed,
/// rebuilt onto as many spares or left degraded.
struct Case {
    level: &'static str,
    active: usize,
    lost: usize,
    rebuilt: bool,
    bitmap: bool,
    /// Native metadata version (`umd create --metadata`).
    metadata: &'static str,
}

const CASES: [Case; 7] = [
    Case {
        level: "5",
        active: 4,
        lost: 1,
        rebuilt: false,
        bitmap: true,
        metadata: "1.2",
    },
    Case {
        level: "5",
        active: 3,
        lost: 1,
        rebuilt: true,
        bitmap: true,
        metadata: "1.2",
    },
    Case {
        level: "6",
        active: 5,
        lost: 2,
        rebuilt: true,
        bitmap: false,
        metadata: "1.2",
    },
    Case {
        level: "1",
        active: 2,
        lost: 1,
        rebuilt: true,
        bitmap: true,
        metadata: "1.2",
    },
    Case {
        level: "10",
        active: 4,
        lost: 1,
        rebuilt: true,
        bitmap: false,
        metadata: "1.2",
    },
    Case {
        level: "5",
        active: 3,
        lost: 1,
        rebuilt: true,
        bitmap: true,
        metadata: "0.90",
    },
    Case {
        level: "1",
        active: 2,
        lost: 1,
        rebuilt: true,
        bitmap: false,
        metadata: "0.90",
    },
];

/// What the host left for the kernel.
struct Left {
    name: String,
    /// Members the kernel assembles (survivors, then spares).
    disks: Vec<PathBuf>,
    /// sha256 of the array's content as umd served it last.
    sha256: String,
    /// Expected `degraded` after assembly.
    degraded: usize,
    /// Expected "Array State" prefix.
    roles: String,
    /// Spares (indices into `disks`) and the role each must hold.
    spare_roles: Vec<(usize, usize)>,
    /// 0.90 metadata: roles are read from mdadm's descriptor table.
    v090: bool,
    /// How mdadm names the spares' roles before assembly ("Active device"
    /// or, for a replacement umd left halfway, "Replacement device").
    spare_role_word: &'static str,
    /// The kernel goes on with a sync at assembly (a replacement to finish).
    sync_at_assembly: bool,
}

/// The roles mdadm reads in `text`, one character per slot as 1.x's
/// "Array State" (0.90: from the descriptor table).
fn array_state(text: &str, v090: bool, slots: usize) -> String {
    if v090 {
        support::roles_090(text, slots as u32)
    } else {
        examine_field(text, "Array State").unwrap_or_default()
    }
}

/// The role mdadm reads for the device whose examine is `text`, as 1.x's
/// "Device Role" prints it.
fn device_role(text: &str, v090: bool) -> String {
    if v090 {
        match support::examine_this_090(text) {
            Some((slot, state)) if state == "active sync" => format!("Active device {slot}"),
            other => format!("{other:?}"),
        }
    } else {
        examine_field(text, "Device Role").unwrap_or_default()
    }
}

fn manage(run: &Running, args: &[&str]) -> Result<(), String> {
    run.manage(args)
        .map_err(|e| format!("umd manage {args:?}: {e}"))
}

fn nbd_write(run: &Running, file: &Path, data: &[u8]) {
    std::fs::write(file, data).expect("data file");
    run_ok(Command::new("nbdcopy").arg(file).arg(run.uri()));
}

fn nbd_sha(run: &Running, file: &Path) -> String {
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(file));
    sha256_hex(&std::fs::read(file).expect("read back"))
}

fn settle(run: &Running, degraded: usize) -> Result<(), String> {
    let deadline = Instant::now() + REBUILD_TIMEOUT;
    while run.get("degraded") != degraded.to_string() || run.get("sync_action") != "idle" {
        if Instant::now() > deadline {
            return Err(format!(
                "degraded {} sync {} after {REBUILD_TIMEOUT:?}",
                run.get("degraded"),
                run.get("sync_action")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The host side of one case (module doc).
fn host_side(i: usize, c: &Case, work: &Path) -> Result<Left, String> {
    let name = format!(
        "r{}-{}{}-{}",
        c.level,
        c.active,
        if c.rebuilt { "-rebuilt" } else { "" },
        c.metadata
    );
    let dir = work.join(&name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let spares_n = if c.rebuilt { c.lost } else { 0 };
    let all = sparse_members(&dir, c.active + spares_n, MEMBER_MIB);
    let (members, spares) = all.split_at(c.active);
    let n = c.active.to_string();
    let mut opts = vec!["--level", c.level, "--raid-devices", &n, "--assume-clean"];
    opts.extend(["--metadata", c.metadata]);
    if c.level != "1" {
        opts.extend(["--chunk", "64"]);
    }
    if c.bitmap {
        opts.extend(["--bitmap", "internal"]);
    }
    create(members, &opts);
    let run = Running::start(&dir, members);
    let data_file = dir.join("data.bin");
    let export = export_size(&run);
    nbd_write(&run, &data_file, &pseudo_random(export, 10 + i as u64));
    for s in spares {
        manage(&run, &["--add", s.to_str().ok_or("path")?])?;
    }
    for k in 1..=c.lost {
        manage(&run, &["--fail", &format!("m{k}.img")])?;
    }
    nbd_write(&run, &data_file, &pseudo_random(export, 20 + i as u64));
    let degraded = if c.rebuilt { 0 } else { c.lost };
    settle(&run, degraded)?;
    if c.rebuilt {
        run.set("sync_action", "check")?;
        settle(&run, 0)?;
        let m = run.get("mismatch_cnt");
        if m != "0" {
            return Err(format!("umd's own check: mismatch_cnt {m}"));
        }
    }
    let sha256 = nbd_sha(&run, &dir.join("online.bin"));
    run.stop();
    let mut disks: Vec<PathBuf> = vec![members[0].clone()];
    disks.extend(members[c.lost + 1..].iter().cloned());
    let spare_roles = (0..spares.len())
        .map(|s| (disks.len() + s, s + 1))
        .collect();
    disks.extend(spares.iter().cloned());
    let roles: String = (0..c.active)
        .map(|r| {
            if !c.rebuilt && (1..=c.lost).contains(&r) {
                '.'
            } else {
                'A'
            }
        })
        .collect();
    let v090 = c.metadata == "0.90";
    let host = array_state(&mdadm_examine(&disks[0]), v090, c.active);
    if !host.starts_with(&roles) {
        return Err(format!("host mdadm reads {host}, expected {roles}"));
    }
    Ok(Left {
        name,
        disks,
        sha256,
        degraded,
        roles,
        spare_roles,
        v090,
        spare_role_word: "Active device",
        sync_at_assembly: false,
    })
}

/// Member 1 of `level` over `active` members hot-replaced while data is
/// written; `finish`: the copy completes and m1 leaves, else umd stops
/// halfway (the kernel finishes it).
fn host_replace(
    i: usize,
    work: &Path,
    (level, active): (&str, usize),
    finish: bool,
) -> Result<Left, String> {
    let name = format!(
        "r{level}-{active}-replaced{}",
        if finish { "" } else { "-halfway" }
    );
    let dir = work.join(&name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let all = sparse_members(&dir, active + 1, MEMBER_MIB);
    let (members, spare) = (&all[..active], &all[active]);
    let n = active.to_string();
    let mut opts = vec!["--level", level, "--raid-devices", &n, "--assume-clean"];
    opts.extend(["--chunk", "64", "--bitmap", "internal"]);
    create(members, &opts);
    let run = Running::start(&dir, members);
    let data_file = dir.join("data.bin");
    let export = export_size(&run);
    nbd_write(&run, &data_file, &pseudo_random(export, 50 + i as u64));
    run.set("sync_speed_max", "1000")?;
    manage(
        &run,
        &[
            "--replace",
            "m1.img",
            "--with",
            spare.to_str().ok_or("path")?,
        ],
    )?;
    // Written while the copy runs: the replacement must get it too.
    nbd_write(&run, &data_file, &pseudo_random(export / 2, 60 + i as u64));
    let deadline = Instant::now() + REBUILD_TIMEOUT;
    let spare_name = spare
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or("spare name")?;
    if finish {
        run.set("sync_speed_max", "system")?;
        while run
            .get("dev-m1.img/state")
            .split(',')
            .all(|w| w != "faulty")
            && run.get("dev-m1.img/slot") != "none"
        {
            if Instant::now() > deadline {
                return Err("the replacement does not finish".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        settle(&run, 0)?;
        manage(&run, &["--remove", "m1.img"])?;
    } else {
        while run
            .get("sync_completed")
            .split(" / ")
            .next()
            .unwrap_or("none")
            == "none"
            || run
                .get(&format!("dev-{spare_name}/recovery_start"))
                .parse::<u64>()
                .unwrap_or(0)
                == 0
        {
            if Instant::now() > deadline {
                return Err("the copy does not advance".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let sha256 = nbd_sha(&run, &dir.join("online.bin"));
    run.stop();
    // Survivors in role order with the replacement (halfway: m1 too).
    let mut disks: Vec<PathBuf> = vec![members[0].clone()];
    if !finish {
        disks.push(members[1].clone());
    }
    disks.extend(members[2..].iter().cloned());
    disks.push(spare.clone());
    let host = examine_field(&mdadm_examine(spare), "Device Role").unwrap_or_default();
    let expected = if finish {
        "Active device 1"
    } else {
        "Replacement device 1"
    };
    if host != expected {
        return Err(format!(
            "host mdadm reads the spare as {host:?}, expected {expected}"
        ));
    }
    Ok(Left {
        name,
        spare_roles: vec![(disks.len() - 1, 1)],
        disks,
        sha256,
        degraded: 0,
        roles: "A".repeat(active),
        v090: false,
        spare_role_word: if finish {
            "Active device"
        } else {
            "Replacement device"
        },
        sync_at_assembly: !finish,
    })
}

/// A raid5 member failed, removed, and added back while the array kept
/// writing: re-added through the bitmap into its own slot.
fn host_re_add(i: usize, work: &Path, metadata: &str) -> Result<Left, String> {
    let name = format!("r5-3-re-added-{metadata}");
    let dir = work.join(&name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let members = sparse_members(&dir, 3, MEMBER_MIB);
    let opts = [
        "--metadata",
        metadata,
        "--level",
        "5",
        "--raid-devices",
        "3",
        "--assume-clean",
        "--chunk",
        "64",
        "--bitmap",
        "internal",
        "--bitmap-chunk",
        "64",
    ];
    create(&members, &opts);
    let run = Running::start(&dir, &members);
    let data_file = dir.join("data.bin");
    let export = export_size(&run);
    nbd_write(&run, &data_file, &pseudo_random(export / 4, 30 + i as u64));
    manage(&run, &["--fail", "m1.img"])?;
    manage(&run, &["--remove", "m1.img"])?;
    nbd_write(&run, &data_file, &pseudo_random(export / 2, 40 + i as u64));
    manage(&run, &["--add", members[1].to_str().ok_or("path")?])?;
    settle(&run, 0)?;
    if run.get("dev-m1.img/slot") != "1" {
        return Err("m1 did not take its own slot back".to_owned());
    }
    if !run.log_text().contains("recovery of ") {
        return Err("no bitmap-based recovery".to_owned());
    }
    let sha256 = nbd_sha(&run, &dir.join("online.bin"));
    run.stop();
    Ok(Left {
        name,
        disks: members,
        sha256,
        degraded: 0,
        roles: "AAA".to_owned(),
        spare_roles: vec![(1, 1)],
        v090: metadata == "0.90",
        spare_role_word: "Active device",
        sync_at_assembly: false,
    })
}

/// The kernel's verdict on one array; every problem found.
fn judge(a: &Left, v: &Verified) -> Vec<String> {
    let mut p = Vec::new();
    if let Some(e) = &v.assemble_failed {
        return vec![format!("mdadm --assemble failed: {e}")];
    }
    let degraded = v.after.get("degraded").map(String::as_str);
    if degraded != Some(&a.degraded.to_string()) {
        p.push(format!("degraded {degraded:?}, expected {}", a.degraded));
    }
    if !a.sync_at_assembly && v.after.get("sync_action").map(String::as_str) != Some("idle") {
        p.push(format!(
            "a sync started at assembly: {:?}\n{}",
            v.after, v.mdstat
        ));
    }
    if v.check.get("mismatch_cnt").map(String::as_str) != Some("0") {
        p.push(format!("check: {:?}", v.check));
    }
    if v.sha256.as_deref() != Some(a.sha256.as_str()) {
        p.push(format!("sha256 {:?}, umd served {}", v.sha256, a.sha256));
    }
    for &(k, role) in &a.spare_roles {
        let text = v.examine.get(&k).cloned().unwrap_or_default();
        let got = device_role(&text, a.v090);
        if got != format!("{} {role}", a.spare_role_word) {
            p.push(format!("spare {k}: role {got:?}, expected {role}"));
        }
    }
    let after = v.examine_after.as_deref().unwrap_or_default();
    let state = array_state(after, a.v090, a.roles.len());
    if !state.starts_with(&a.roles) {
        p.push(format!(
            "the kernel records {state:?}, expected {}",
            a.roles
        ));
    }
    p
}

#[test]
fn kernel_assembles_degraded_and_rebuilt_arrays_umd_leaves() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_rebuild") else {
        return;
    };
    for tool in ["mdadm", "nbdcopy", "nbdinfo", "cp"] {
        support::require_tool(tool);
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oracle-rebuild-{}", std::process::id()));
    let mut left = Vec::new();
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        match host_side(i, c, &work) {
            Ok(a) => left.push(a),
            Err(e) => failures.push(format!("raid{} (umd side): {e}", c.level)),
        }
    }
    for (k, metadata) in ["1.2", "0.90"].into_iter().enumerate() {
        match host_re_add(CASES.len() + k, &work, metadata) {
            Ok(a) => left.push(a),
            Err(e) => failures.push(format!("raid5 {metadata} re-add (umd side): {e}")),
        }
    }
    // 40 disks in all: the VM takes 43 (beyond, its bridge addressing fails).
    let replaced = [(("5", 3), true), (("6", 5), true), (("5", 3), false)];
    for (k, (shape, finish)) in replaced.into_iter().enumerate() {
        match host_replace(CASES.len() + 2 + k, &work, shape, finish) {
            Ok(a) => left.push(a),
            Err(e) => failures.push(format!("raid{} replace (umd side): {e}", shape.0)),
        }
    }
    let mut plan = String::new();
    let mut disks = Vec::new();
    for (idx, a) in left.iter().enumerate() {
        let _ = writeln!(plan, "{idx} 1 {} 0", a.disks.len());
        disks.extend(a.disks.iter().cloned());
    }
    let vm_dir = work.join("vm");
    std::fs::create_dir_all(&vm_dir).expect("vm dir");
    std::fs::write(vm_dir.join("plan.txt"), plan).expect("plan");
    let pristine = vm_dir.join("pristine");
    boot::snapshot(&disks, &pristine).expect("snapshot");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_write/verify.sh");
    let (out, secs) = boot::boot(&md_vm, &script, &vm_dir, &disks, &|| {
        boot::restore_snapshot(&disks, &pristine)
    })
    .unwrap_or_else(|e| panic!("verify boot: {e}"));
    eprintln!(
        "oracle_rebuild: {} arrays judged in one boot of {secs:.1} s",
        left.len()
    );
    let verdicts = parse_verify_output(&out);
    for (idx, a) in left.iter().enumerate() {
        let v = verdicts.get(&idx).cloned().unwrap_or_default();
        for problem in judge(a, &v) {
            failures.push(format!("{}: {problem}", a.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if std::env::var_os("UMD_ORACLE_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
}

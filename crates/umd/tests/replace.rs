//! Hot replace end to end (md's `want_replacement`, `umd manage
//! --replace`): fio writes with `verify=crc32c` through NBD while a working
//! member is copied onto a spare, throttled so that the copy and the writes
//! overlap. The array must never report itself degraded on the way; once
//! the copy is whole the old member is failed, fio verifies every block
//! again (now read from the replacement), `check` finds no mismatch, and
//! the host's mdadm reads the spare as active in the old member's role.
//! Without the replacement getting every write its role gets, fio's second
//! verify or the check fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::fio_load::{finish, fio_verify};
use support::{
    create, examine_field, mdadm_examine, require_tool, run_ok, sparse_members, Running, TempDir,
};

/// Member size, MiB.
const MEMBER_MIB: u64 = 32;
/// Bytes fio writes (at the array's start).
const FIO_BYTES: &str = "16M";
/// How long a replacement of these small members may take.
const TIMEOUT: Duration = Duration::from_secs(120);

fn fio(run: &Running, verify_only: bool) -> Command {
    fio_verify(run, "replace", FIO_BYTES, 4321, verify_only)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// How the spare is named to `umd manage`.
#[derive(Clone, Copy)]
enum Spare {
    /// `--add` first, then `--replace` picks it.
    Added,
    /// `--replace DEV --with FILE` adds it.
    With,
}

/// `level` over `active` members: member 1 is replaced under load.
fn replace_under_load(level: &str, active: usize, spare_given: Spare) {
    for tool in ["fio", "mdadm", "nbdcopy"] {
        require_tool(tool);
    }
    let dir = TempDir::new(&format!("replace-{level}"));
    let all = sparse_members(dir.path(), active + 1, MEMBER_MIB);
    let (members, spare) = (&all[..active], &all[active]);
    let n = active.to_string();
    let mut opts = vec!["--level", level, "--raid-devices", &n, "--assume-clean"];
    if level != "1" {
        opts.extend(["--chunk", "64"]);
    }
    opts.extend(["--bitmap", "internal"]);
    create(members, &opts);
    let run = Running::start(dir.path(), members);
    // Slow enough that fio's writes land while the copy runs.
    run.set("sync_speed_max", "2000").expect("speed limit");
    let load = fio(&run, false).spawn().expect("spawn fio");
    std::thread::sleep(Duration::from_millis(300));
    let spare_name = spare.file_name().expect("a file").to_string_lossy();
    let asked = match spare_given {
        Spare::Added => {
            run.manage(&["--add", path_str(spare)]).expect("--add");
            assert_eq!(
                run.get(&format!("dev-{spare_name}/slot")),
                "none",
                "no free slot"
            );
            run.manage(&["--replace", "m1.img"])
        }
        Spare::With => run.manage(&["--replace", "m1.img", "--with", path_str(spare)]),
    };
    asked.unwrap_or_else(|e| panic!("umd manage --replace: {e}"));
    assert!(
        run.get(&format!("dev-{spare_name}/state"))
            .contains("replacement"),
        "{}",
        run.log_text()
    );
    assert_eq!(run.get(&format!("dev-{spare_name}/slot")), "1");
    // Redundancy is never lost while the copy runs.
    let deadline = Instant::now() + TIMEOUT;
    let mut samples = 0;
    loop {
        assert_eq!(run.get("degraded"), "0", "raid{level} degraded mid-replace");
        samples += 1;
        if run.get(&format!("dev-{spare_name}/state")) == "in_sync" {
            break;
        }
        if samples == 20 {
            // Let the copy finish once fio has written through it a while.
            run.set("sync_speed_max", "system").expect("lift the limit");
        }
        assert!(
            Instant::now() < deadline,
            "not replaced; log:\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    finish(load, "write and verify while a member is replaced");
    run.wait_idle(TIMEOUT);
    assert!(
        run.get("dev-m1.img/state").contains("faulty") || {
            // The md thread may already have removed it from its slot; then
            // only `remove` is left, which must succeed.
            run.get("dev-m1.img/slot") == "none"
        }
    );
    run.manage(&["--remove", "m1.img"])
        .expect("the replaced member leaves");
    assert_eq!(run.get("degraded"), "0");
    finish(
        fio(&run, true).spawn().expect("fio"),
        "verify after the replacement",
    );
    run.set("sync_action", "check").expect("check");
    run.wait_idle(TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "raid{level}: check after replace"
    );
    let online = dir.path().join("online.bin");
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&online));
    run.stop();
    // The spare holds role 1 on disk, in every survivor's roster.
    let survivors: Vec<PathBuf> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, m)| m.clone())
        .chain([spare.clone()])
        .collect();
    let active_state = "A".repeat(active);
    for m in &survivors {
        let text = mdadm_examine(m);
        let state = examine_field(&text, "Array State").unwrap_or_default();
        assert!(
            state.starts_with(&active_state),
            "{}: {state}\n{text}",
            m.display()
        );
    }
    let text = mdadm_examine(spare);
    assert_eq!(
        examine_field(&text, "Device Role").as_deref(),
        Some("Active device 1"),
        "{text}"
    );
    // Neither a replacement nor recovering any more (md's feature bits).
    let features = examine_field(&text, "Feature Map").unwrap_or_default();
    let bits = u32::from_str_radix(features.trim_start_matches("0x"), 16).expect("hex");
    assert_eq!(bits & 0x12, 0, "feature map {features}\n{text}");
    assert!(
        support::cat(&survivors) == std::fs::read(&online).expect("online copy"),
        "raid{level}: what the survivors hold offline"
    );
}

#[test]
fn raid1_member_is_replaced_under_load() {
    replace_under_load("1", 2, Spare::Added);
}

#[test]
fn raid5_member_is_replaced_under_load() {
    replace_under_load("5", 4, Spare::With);
}

#[test]
fn raid6_member_is_replaced_under_load() {
    replace_under_load("6", 5, Spare::Added);
}

#[test]
fn raid10_member_is_replaced_under_load() {
    replace_under_load("10", 4, Spare::With);
}

#[test]
fn a_replacement_nobody_can_make_is_refused_clearly() {
    require_tool("mdadm");
    let dir = TempDir::new("replace-refused");
    let members = sparse_members(dir.path(), 2, MEMBER_MIB);
    create(
        &members,
        &["--level", "0", "--raid-devices", "2", "--chunk", "64"],
    );
    let run = Running::start(dir.path(), &members);
    let err = run
        .manage(&["--replace", "m0.img"])
        .expect_err("raid0 has nothing to copy through");
    assert!(err.contains("no redundancy"), "{err}");
    let err = run
        .manage(&["--replace", "nosuch.img"])
        .expect_err("not a member");
    assert!(err.contains("not a member"), "{err}");
    run.stop();
}

/// `Recovery Offset : N sectors` as the host's mdadm reads it, `None` when
/// there is none (or no superblock yet).
fn recorded_recovery_offset(member: &Path) -> Option<u64> {
    let out = Command::new("mdadm")
        .arg("--examine")
        .arg(member)
        .output()
        .ok()?;
    examine_field(&String::from_utf8_lossy(&out.stdout), "Recovery Offset")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `--replace member --with spare`, slowed down, until the copy's first
/// checkpoint is on the spare as mdadm reads it.
fn copy_under_way(run: &Running, member: &str, spare: &Path) {
    run.set("sync_speed_max", "4000").expect("speed limit");
    run.manage(&["--replace", member, "--with", path_str(spare)])
        .expect("--replace");
    let deadline = Instant::now() + TIMEOUT;
    while recorded_recovery_offset(spare).unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "no checkpoint reaches the replacement"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_replacement_stopped_midway_resumes_from_its_checkpoint() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("replace-resume");
    let members = sparse_members(dir.path(), 4, 64);
    let (active, spare) = (&members[..3], &members[3]);
    create(
        active,
        &[
            "--level",
            "5",
            "--raid-devices",
            "3",
            "--chunk",
            "64",
            "--assume-clean",
        ],
    );
    let data = support::pseudo_random(16 << 20, 17);
    std::fs::write(dir.path().join("data.bin"), &data).expect("data");
    let run = Running::start(dir.path(), active);
    run_ok(
        Command::new("nbdcopy")
            .arg(dir.path().join("data.bin"))
            .arg(run.uri()),
    );
    copy_under_way(&run, "m1.img", spare);
    run.stop();
    // mdadm, as a second opinion, reads a replacement of role 1 part done.
    let text = mdadm_examine(spare);
    assert_eq!(
        examine_field(&text, "Device Role").as_deref(),
        Some("Replacement device 1"),
        "{text}"
    );
    let checkpoint = recorded_recovery_offset(spare).expect("a checkpoint");
    assert_eq!(
        examine_field(&mdadm_examine(&members[1]), "Device Role").as_deref(),
        Some("Active device 1"),
        "the member being replaced still serves"
    );

    let run = Running::start_with_env(dir.path(), &members, &[], &[("UMD_LOG", "info")]);
    // Still copying, or (a fast machine) done already: never a plain spare.
    let state = run.get("dev-m3.img/state");
    assert!(
        state.contains("replacement") || state == "in_sync",
        "{state}"
    );
    let deadline = Instant::now() + TIMEOUT;
    while run.get("dev-m3.img/state") != "in_sync" {
        assert_eq!(run.get("degraded"), "0");
        assert!(
            Instant::now() < deadline,
            "not replaced; log:\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run.wait_idle(TIMEOUT);
    // Where the copy resumed, as the sync thread logged it.
    let log = run.log_text();
    let resumed_at: u64 = log
        .lines()
        .find(|l| l.contains("sync started") && l.contains("Recover"))
        .and_then(|l| {
            l.split("start=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no recovery logged:\n{log}"));
    assert!(
        resumed_at >= checkpoint,
        "resumed at {resumed_at}, below the checkpoint {checkpoint}"
    );
    run.set("sync_action", "check").expect("check");
    run.wait_idle(TIMEOUT);
    assert_eq!(run.get("mismatch_cnt"), "0");
    run.stop();
    let text = mdadm_examine(spare);
    assert_eq!(
        examine_field(&text, "Device Role").as_deref(),
        Some("Active device 1"),
        "the resumed replacement's own superblock\n{text}"
    );
    assert_eq!(
        recorded_recovery_offset(spare),
        None,
        "in sync: no checkpoint"
    );
    let survivors = [members[0].clone(), members[2].clone(), members[3].clone()];
    let offline = support::cat(&survivors);
    assert!(
        offline[..data.len()] == data[..],
        "the survivors hold the data"
    );
}

#[test]
fn a_replacement_killed_midway_copies_again_and_loses_nothing() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("replace-kill9");
    let members = sparse_members(dir.path(), 3, 64);
    let (active, spare) = (&members[..2], &members[2]);
    create(
        active,
        &[
            "--level",
            "1",
            "--raid-devices",
            "2",
            "--bitmap",
            "internal",
        ],
    );
    let run = Running::start(dir.path(), active);
    copy_under_way(&run, "m0.img", spare);
    // Written while the copy runs, flushed, then the process dies dirty.
    let data = support::pseudo_random(8 << 20, 23);
    std::fs::write(dir.path().join("data.bin"), &data).expect("data");
    run_ok(
        Command::new("nbdcopy")
            .arg(dir.path().join("data.bin"))
            .arg(run.uri()),
    );
    run.kill9();
    let run = Running::start(dir.path(), &members);
    let deadline = Instant::now() + TIMEOUT;
    let state = run.get("dev-m2.img/state");
    assert!(
        state.contains("replacement") || state == "in_sync",
        "{state}"
    );
    while run.get("dev-m2.img/state") != "in_sync" {
        assert_eq!(run.get("degraded"), "0");
        assert!(
            Instant::now() < deadline,
            "not replaced; log:\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run.wait_idle(TIMEOUT);
    run.stop();
    // The replacement alone holds every byte written.
    let alone = support::cat(std::slice::from_ref(spare));
    assert!(
        alone[..data.len()] == data[..],
        "the replacement holds the data"
    );
}

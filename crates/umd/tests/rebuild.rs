//! Losing members under load and rebuilding onto spares, end to end: fio
//! writes with `verify=crc32c` through NBD while members are failed (with
//! `umd manage --fail`, or by an injected write error) and the spares that
//! `umd manage --add` gave the array are activated and rebuilt as the
//! writes go on. fio then verifies every block it wrote, verifies them
//! again after the rebuild (reads now served by the rebuilt members),
//! `check` finds no mismatch, and the host's mdadm reads every member's
//! superblock as in sync in its slot. raid1, raid4, raid5 and raid10 lose
//! one member; raid6 loses two. A rebuild killed with -9 resumes from its
//! checkpoint; a member that comes back is re-added through the bitmap and
//! only the dirty chunks are recovered.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::fio_load::{finish, fio_verify};
use support::nbd_data::data_offset_sectors;
use support::{
    create, examine_field, mdadm_examine, pseudo_random, require_tool, run_ok, sparse_members,
    Running, TempDir,
};

/// How a member is lost.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// `umd manage --fail`.
    Manage,
    /// An injected write error in the region fio writes.
    Injected,
    /// Every read and write of the member's data area fails, as if it
    /// vanished once the array was assembled.
    Vanished,
}

/// Member size, MiB.
const MEMBER_MIB: u64 = 48;
/// Bytes fio writes (at the array's start).
const FIO_BYTES: &str = "24M";
/// How long a rebuild of these small members may take.
const REBUILD_TIMEOUT: Duration = Duration::from_secs(120);

fn fio(run: &Running, verify_only: bool) -> Command {
    fio_verify(run, "rebuild", FIO_BYTES, 1234, verify_only)
}

fn manage(run: &Running, args: &[&str]) {
    if let Err(e) = run.manage(args) {
        panic!("umd manage {args:?}: {e}");
    }
}

/// Wait until no member is missing and no sync runs.
fn wait_rebuilt(run: &Running) {
    let deadline = Instant::now() + REBUILD_TIMEOUT;
    while run.get("degraded") != "0" || run.get("sync_action") != "idle" {
        assert!(
            Instant::now() < deadline,
            "not rebuilt: degraded {}, sync {}; log:\n{}",
            run.get("degraded"),
            run.get("sync_action"),
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One case: `level` over `active` members plus one spare per lost member.
fn lose_and_rebuild(level: &str, active: usize, losses: &[Loss]) {
    for tool in ["fio", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new(&format!("rebuild-{level}"));
    let all = sparse_members(dir.path(), active + losses.len(), MEMBER_MIB);
    let (members, spares) = all.split_at(active);
    let n = active.to_string();
    let mut opts = vec!["--level", level, "--raid-devices", &n, "--assume-clean"];
    if level != "1" {
        opts.extend(["--chunk", "64"]);
    }
    opts.extend(["--bitmap", "internal"]);
    create(members, &opts);
    // Injected losses: m1, m2, ... fail a write 64 KiB into their data.
    let mut faults = Vec::new();
    for (i, loss) in losses.iter().enumerate() {
        match loss {
            Loss::Injected => {
                let at = data_offset_sectors(&members[i + 1]) + 128;
                faults.push(format!("m{}.img:write:{at}+8", i + 1));
            }
            Loss::Vanished => {
                // Up to 1 MiB before the end, where assembly probes for
                // 1.0 and DDF metadata.
                let at = data_offset_sectors(&members[i + 1]);
                let len = MEMBER_MIB * 2048 - at - 2048;
                faults.push(format!("m{}.img:rw:{at}+{len}", i + 1));
            }
            Loss::Manage => {}
        }
    }
    let fault = faults.join(",");
    let run = Running::start_with_env(dir.path(), members, &[], &[("UMD_FAULT_INJECT", &fault)]);
    for spare in spares {
        manage(&run, &["--add", path_str(spare)]);
    }
    let load = fio(&run, false)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fio");
    std::thread::sleep(Duration::from_millis(300));
    for (i, loss) in losses.iter().enumerate() {
        if matches!(loss, Loss::Manage) {
            manage(&run, &["--fail", &format!("m{}.img", i + 1)]);
        }
    }
    finish(load, "write and verify while members fail and rebuild");
    wait_rebuilt(&run);
    for (i, spare) in spares.iter().enumerate() {
        let name = spare.file_name().expect("a file").to_string_lossy();
        assert_eq!(run.get(&format!("dev-{name}/state")), "in_sync");
        let failed = format!("dev-m{}.img/state", i + 1);
        let state = run.ctl(&["get", &failed]);
        let text = String::from_utf8_lossy(&state.stdout);
        assert!(
            !state.status.success() || text.contains("faulty"),
            "{failed}: {text}"
        );
    }
    finish(
        fio(&run, true)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fio"),
        "verify after the rebuild",
    );
    run.set("sync_action", "check").expect("check");
    run.wait_idle(REBUILD_TIMEOUT);
    assert_eq!(
        run.get("mismatch_cnt"),
        "0",
        "raid{level}: check after rebuild"
    );
    let online = nbd_bytes(&dir, &run);
    run.stop();
    check_roles(level, members, spares, losses.len());
    let offline: Vec<PathBuf> = members[losses.len() + 1..]
        .iter()
        .chain([&members[0]])
        .chain(spares)
        .cloned()
        .collect();
    assert!(
        support::cat(&offline) == online,
        "raid{level}: offline content"
    );
}

fn nbd_bytes(dir: &TempDir, run: &Running) -> Vec<u8> {
    let out = dir.path().join("online.bin");
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&out));
    std::fs::read(&out).expect("read back")
}

/// Every slot active in the survivors' and the spares' superblocks; the
/// spares hold the lost members' roles.
fn check_roles(level: &str, members: &[PathBuf], spares: &[PathBuf], lost: usize) {
    let active = "A".repeat(members.len());
    for m in members[lost + 1..]
        .iter()
        .chain([&members[0]])
        .chain(spares)
    {
        let text = mdadm_examine(m);
        let state = examine_field(&text, "Array State").unwrap_or_default();
        assert!(
            state.starts_with(&active),
            "raid{level} {}: {state}\n{text}",
            m.display()
        );
    }
    for (i, spare) in spares.iter().enumerate() {
        let text = mdadm_examine(spare);
        let role = examine_field(&text, "Device Role").unwrap_or_default();
        assert_eq!(
            role,
            format!("Active device {}", i + 1),
            "raid{level}\n{text}"
        );
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn raid1_member_failed_by_manage_is_rebuilt_onto_a_spare() {
    lose_and_rebuild("1", 2, &[Loss::Manage]);
}

#[test]
fn raid4_member_failed_by_a_write_error_is_rebuilt_onto_a_spare() {
    lose_and_rebuild("4", 3, &[Loss::Injected]);
}

#[test]
fn raid5_member_failed_by_manage_is_rebuilt_onto_a_spare() {
    lose_and_rebuild("5", 4, &[Loss::Manage]);
}

#[test]
fn raid5_member_that_vanishes_is_rebuilt_onto_a_spare() {
    lose_and_rebuild("5", 3, &[Loss::Vanished]);
}

#[test]
fn raid10_member_failed_by_a_write_error_is_rebuilt_onto_a_spare() {
    lose_and_rebuild("10", 4, &[Loss::Injected]);
}

#[test]
fn raid6_two_members_failed_are_rebuilt_onto_two_spares() {
    lose_and_rebuild("6", 5, &[Loss::Manage, Loss::Injected]);
}

/// The first number of `sync_completed` ("done / total"), if a sync runs.
fn sync_done(run: &Running) -> Option<u64> {
    run.get("sync_completed").split(" / ").next()?.parse().ok()
}

/// `Recovery Offset : N sectors` as the host's mdadm reads it.
fn recovery_offset(member: &Path) -> Option<u64> {
    recovery_offset_in(&mdadm_examine(member))
}

fn recovery_offset_in(examine: &str) -> Option<u64> {
    examine_field(examine, "Recovery Offset")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// [`recovery_offset`] while the array runs: `None` also when the spare has
/// no superblock yet (mdadm then fails), instead of a panic.
fn recorded_recovery_offset(member: &Path) -> Option<u64> {
    let out = Command::new("mdadm")
        .arg("--examine")
        .arg(member)
        .output()
        .ok()?;
    recovery_offset_in(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn a_rebuild_resumes_from_its_checkpoint_after_kill_9() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("rebuild-resume");
    let members = sparse_members(dir.path(), 3, 768);
    create(
        &members[..2],
        &["--level", "1", "--raid-devices", "2", "--assume-clean"],
    );
    let data = pseudo_random(8 << 20, 91);
    std::fs::write(dir.path().join("data.bin"), &data).expect("data");
    // m1 never comes: the array runs degraded and gets m2 as a spare.
    let run = Running::start(dir.path(), &members[..1]);
    run_ok(
        Command::new("nbdcopy")
            .arg(dir.path().join("data.bin"))
            .arg(run.uri()),
    );
    // Clean first, so the restart has a recovery to resume and no resync.
    let deadline = Instant::now() + REBUILD_TIMEOUT;
    while run.get("array_state") != "clean" {
        assert!(Instant::now() < deadline, "the array does not go clean");
        std::thread::sleep(Duration::from_millis(20));
    }
    manage(&run, &["--add", path_str(&members[2])]);
    while sync_done(&run).unwrap_or(0) < 200_000 {
        assert!(Instant::now() < deadline, "the rebuild does not advance");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The checkpoint the engine asked for reaches the spare with the md
    // thread's next superblock write, after a flush that can take seconds on
    // a loaded machine: kill only once it is there, as mdadm sees it.
    while recorded_recovery_offset(&members[2]).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no checkpoint reaches the spare");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill9();
    let checkpoint = recovery_offset(&members[2]).expect("a checkpoint on the spare");
    assert!(checkpoint > 0, "the checkpoint advanced");
    let role = examine_field(&mdadm_examine(&members[2]), "Device Role");
    assert_eq!(role.as_deref(), Some("Active device 1"));

    let both = [members[0].clone(), members[2].clone()];
    let run = Running::start(dir.path(), &both);
    let deadline = Instant::now() + REBUILD_TIMEOUT;
    let resumed_at = loop {
        if let Some(done) = sync_done(&run) {
            break done;
        }
        assert!(Instant::now() < deadline, "the rebuild does not resume");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        resumed_at >= checkpoint,
        "resumed at {resumed_at}, below the checkpoint {checkpoint}"
    );
    wait_rebuilt(&run);
    run.stop();
    assert_eq!(recovery_offset(&members[2]), None, "in sync: no checkpoint");
    let alone = support::cat(&members[2..]);
    assert!(alone[..data.len()] == data[..], "the spare holds the data");
}

/// `X` of the log's "recovery of N dirty bitmap chunks (X of Y sectors)".
fn bitmap_recovery_sectors(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().find(|l| l.contains("recovery of "))?;
    let inner = line.split_once('(')?.1.split_once(" sectors)")?.0;
    let (done, total) = inner.split_once(" of ")?;
    Some((done.parse().ok()?, total.parse().ok()?))
}

#[test]
fn a_member_that_comes_back_is_re_added_through_the_bitmap() {
    for tool in ["nbdcopy", "qemu-io", "mdadm"] {
        require_tool(tool);
    }
    for metadata in ["1.2", "0.90"] {
        re_added_through_the_bitmap(metadata);
    }
}

/// A raid1 with `metadata` superblocks and an internal bitmap loses m1 by
/// hand; it comes back after a write and only the dirty chunks are
/// recovered (md's re-add, 0.90 too).
fn re_added_through_the_bitmap(metadata: &str) {
    let dir = TempDir::new(&format!("rebuild-readd-{metadata}"));
    let members = sparse_members(dir.path(), 2, 64);
    create(
        &members,
        &[
            "--metadata",
            metadata,
            "--level",
            "1",
            "--raid-devices",
            "2",
            "--assume-clean",
            "--bitmap",
            "internal",
            "--bitmap-chunk",
            "64",
        ],
    );
    let run = Running::start(dir.path(), &members);
    let before = pseudo_random(8 << 20, 92);
    support::nbd_data::copy_in(&dir, &run, &before);
    manage(&run, &["--fail", "m1.img"]);
    manage(&run, &["--remove", "m1.img"]);
    // Written while m1 is away: 1 MiB at 4 MiB.
    let while_away = pseudo_random(1 << 20, 93);
    let away = dir.path().join("away.bin");
    std::fs::write(&away, &while_away).expect("data");
    run_ok(
        Command::new("qemu-io")
            .args(["-f", "raw", "-c"])
            .arg(format!("write -s {} {} 1M", away.display(), 4 << 20))
            .arg(run.uri()),
    );
    manage(&run, &["--add", path_str(&members[1])]);
    wait_rebuilt(&run);
    assert_eq!(
        run.get("dev-m1.img/slot"),
        "1",
        "{metadata}: back in its own slot"
    );
    run.set("sync_action", "check").expect("check");
    run.wait_idle(REBUILD_TIMEOUT);
    assert_eq!(run.get("mismatch_cnt"), "0");
    let online = nbd_bytes(&dir, &run);
    let log = run.log_text();
    run.stop();
    let (recovered, total) = bitmap_recovery_sectors(&log)
        .unwrap_or_else(|| panic!("{metadata}: no bitmap-based recovery in the log:\n{log}"));
    eprintln!("re-add {metadata}: recovered {recovered} of {total} sectors");
    // At most the chunks written since the last bitmap clearing: the 8 MiB
    // before (bits clear lazily) and the 1 MiB while away, not the whole.
    assert!(
        recovered <= (9 << 20) / 512 && recovered < total / 4,
        "{metadata}: recovered {recovered} of {total} sectors"
    );
    assert!(
        online[4 << 20..5 << 20] == while_away[..],
        "the write while away"
    );
    assert!(
        support::cat(&members[1..]) == online,
        "m1 alone holds the array"
    );
}

#[test]
fn member_state_writes_are_recorded_in_the_superblocks() {
    require_tool("mdadm");
    let dir = TempDir::new("rebuild-state");
    let members = sparse_members(dir.path(), 3, 16);
    create(
        &members,
        &["--level", "1", "--raid-devices", "3", "--assume-clean"],
    );
    let run = Running::start(dir.path(), &members);
    let flags = |m: &Path| examine_field(&mdadm_examine(m), "Flags").unwrap_or_default();
    // The md thread writes the superblocks right after the store; give it
    // a bounded moment on a loaded machine.
    let recorded = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = flags(&members[2]);
            if seen == want || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    run.set("dev-m2.img/state", "writemostly")
        .expect("writemostly");
    assert_eq!(recorded("write-mostly"), "write-mostly", "recorded");
    run.set("dev-m2.img/state", "-writemostly")
        .expect("-writemostly");
    assert_eq!(recorded(""), "", "and cleared");
    let busy = run.set("dev-m1.img/state", "remove").unwrap_err();
    assert!(busy.contains("EBUSY"), "an active member stays: {busy}");
    manage(&run, &["--fail", "m1.img"]);
    manage(&run, &["--remove", "m1.img"]);
    // Recorded by the md thread, as md does it, after the store returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let state = examine_field(&mdadm_examine(&members[0]), "Array State").unwrap_or_default();
        if state.starts_with("A.A") || Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(state.starts_with("A.A"), "the removal recorded: {state}");
    run.stop();
}

/// `--fail`, `--remove` and `--add` of the same file in quick succession:
/// the removed member's superblock index is free for the add at once (md
/// records a device it no longer has as faulty), not only once the md
/// thread has written the failure; the file comes back as a spare and is
/// rebuilt.
#[test]
fn a_member_failed_removed_and_added_back_at_once_is_rebuilt() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("rebuild-fail-add");
    let members = sparse_members(dir.path(), 3, 16);
    create(
        &members,
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
    let run = Running::start(dir.path(), &members);
    let src = dir.path().join("data.bin");
    let size = support::nbd_data::export_size(&run);
    std::fs::write(&src, pseudo_random(size, 17)).expect("source");
    run_ok(Command::new("nbdcopy").arg(&src).arg(run.uri()));
    for _ in 0..3 {
        manage(&run, &["--fail", "m1.img"]);
        manage(&run, &["--remove", "m1.img"]);
        manage(&run, &["--add", path_str(&members[1])]);
        wait_rebuilt(&run);
    }
    run.set("sync_action", "check").expect("check");
    run.wait_idle(REBUILD_TIMEOUT);
    assert_eq!(run.get("mismatch_cnt"), "0");
    assert!(
        nbd_bytes(&dir, &run) == std::fs::read(&src).expect("source"),
        "the data after three rebuilds"
    );
    run.stop();
    let state = examine_field(&mdadm_examine(&members[1]), "Array State");
    assert_eq!(state.as_deref().map(|s| &s[..3]), Some("AAA"));
}

#[test]
fn a_spare_given_at_start_is_rebuilt_into_the_missing_role() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("rebuild-spare-at-start");
    let members = sparse_members(dir.path(), 3, MEMBER_MIB);
    create(
        &members[..2],
        &["--level", "1", "--raid-devices", "2", "--assume-clean"],
    );
    let data = pseudo_random(4 << 20, 17);
    std::fs::write(dir.path().join("data.bin"), &data).expect("data");
    // A hot spare joins the whole array and waits.
    let run = Running::start(dir.path(), &members[..2]);
    manage(&run, &["--add", path_str(&members[2])]);
    run_ok(
        Command::new("nbdcopy")
            .arg(dir.path().join("data.bin"))
            .arg(run.uri()),
    );
    assert_eq!(run.get("degraded"), "0");
    run.stop();
    let role = examine_field(&mdadm_examine(&members[2]), "Device Role");
    assert_eq!(role.as_deref(), Some("spare"), "recorded as a spare");

    // m1 is gone at the next start: the spare takes its role and is rebuilt.
    let started = [members[0].clone(), members[2].clone()];
    let run = Running::start(dir.path(), &started);
    wait_rebuilt(&run);
    run.stop();
    let role = examine_field(&mdadm_examine(&members[2]), "Device Role");
    assert_eq!(role.as_deref(), Some("Active device 1"));
    let alone = support::cat(&members[2..]);
    assert!(alone[..data.len()] == data[..], "the spare holds the data");
}

/// 0.90 arrays take spares too: a raid5 (with an internal bitmap) and a
/// raid1 lose a member, get a blank disk with `umd manage --add`, rebuild
/// it, and every member's descriptor table then reads, to the host's
/// mdadm, as md writes it: all slots active and in sync, the spare in the
/// lost member's slot. The rebuilt set starts again with nothing missing
/// and reads what was written.
#[test]
fn a_090_member_is_rebuilt_onto_a_spare() {
    for tool in ["mdadm", "nbdcopy"] {
        require_tool(tool);
    }
    for (level, bitmap) in [("5", true), ("1", false)] {
        let dir = TempDir::new(&format!("rebuild-090-{level}"));
        let all = sparse_members(dir.path(), 4, 16);
        let (members, spare) = all.split_at(3);
        let mut opts = vec!["--metadata", "0.90", "--level", level];
        opts.extend(["--raid-devices", "3", "--assume-clean"]);
        if bitmap {
            opts.extend(["--bitmap", "internal"]);
        }
        create(members, &opts);
        let run = Running::start(dir.path(), members);
        let data = pseudo_random(support::nbd_data::export_size(&run), 90);
        support::nbd_data::copy_in(&dir, &run, &data);
        manage(&run, &["--fail", "m1.img"]);
        manage(&run, &["--remove", "m1.img"]);
        manage(&run, &["--add", path_str(&spare[0])]);
        wait_rebuilt(&run);
        run.set("sync_action", "check").expect("check");
        wait_rebuilt(&run);
        assert_eq!(run.get("mismatch_cnt"), "0", "raid{level}");
        assert!(nbd_bytes(&dir, &run) == data, "raid{level}: data differs");
        run.stop();
        let set = [members[0].clone(), spare[0].clone(), members[2].clone()];
        for m in &set {
            let text = mdadm_examine(m);
            assert_eq!(
                support::roles_090(&text, 3),
                "AAA",
                "raid{level} {}:\n{text}",
                m.display()
            );
        }
        let text = mdadm_examine(&spare[0]);
        assert_eq!(
            support::examine_this_090(&text),
            Some((1, "active sync".to_owned())),
            "raid{level}: the spare holds slot 1\n{text}"
        );
        let run = Running::start(dir.path(), &set);
        assert_eq!(run.get("degraded"), "0", "raid{level}");
        assert_eq!(run.get("sync_action"), "idle", "raid{level}: no resync");
        assert!(nbd_bytes(&dir, &run) == data, "raid{level}: data differs");
        run.stop();
    }
}

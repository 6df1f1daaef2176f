//! `umd grow` on native arrays: a raid1 `raid_disks` change reaches the
//! superblocks (as the host's mdadm reads them) and survives a restart;
//! shrinking onto a held slot is refused.

mod support;

use support::{
    create, examine_field, mdadm_examine, require_tool, sparse_members, umd, Running, TempDir,
};

fn grow(run: &Running, args: &[&str]) -> std::process::Output {
    umd()
        .env("UMD_RUN_DIR", &run.run_dir)
        .args(["grow", "--control"])
        .arg(&run.control)
        .args(args)
        .output()
        .expect("umd grow")
}

#[test]
fn raid1_raid_disks_change_is_recorded_and_survives_a_restart() {
    require_tool("mdadm");
    let dir = TempDir::new("grow-raid1");
    let members = sparse_members(dir.path(), 2, 16);
    create(&members, &["--level", "1", "--raid-devices", "2"]);
    let run = Running::start(dir.path(), &members);
    // As md, a raid_disks change waits for no sync: it is refused (EBUSY)
    // while the initial resync runs.
    run.wait_idle(std::time::Duration::from_secs(60));
    let out = grow(&run, &["--raid-devices", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run.get("raid_disks"), "3");
    assert_eq!(run.get("degraded"), "1");
    run.stop();
    let text = mdadm_examine(&members[0]);
    assert_eq!(
        examine_field(&text, "Raid Devices").as_deref(),
        Some("3"),
        "{text}"
    );
    let run = Running::start(dir.path(), &members);
    assert_eq!(run.get("raid_disks"), "3");
    assert_eq!(run.get("degraded"), "1");
    // Slot 1 is held: shrinking to one slot is refused; back to two is fine.
    let refused = grow(&run, &["--raid-devices", "1"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("EBUSY"));
    let out = grow(&run, &["--raid-devices", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run.stop();
    let text = mdadm_examine(&members[1]);
    assert_eq!(
        examine_field(&text, "Raid Devices").as_deref(),
        Some("2"),
        "{text}"
    );
    assert!(
        examine_field(&text, "State").is_some_and(|s| s.starts_with("clean")),
        "{text}"
    );
}

/// A raid_disks change while a sync runs is refused as md refuses it
/// (EBUSY), and the message says which sync is running and what to do.
#[test]
fn a_raid_disks_change_during_a_sync_is_refused_with_the_reason() {
    let dir = TempDir::new("grow-busy");
    let members = sparse_members(dir.path(), 2, 16);
    create(
        &members,
        &["--level", "1", "--raid-devices", "2", "--assume-clean"],
    );
    let run = Running::start(dir.path(), &members);
    // A check at 1 MiB/s over 16 MiB: running for the whole test.
    run.set("sync_speed_max", "1024").expect("speed limit");
    run.set("sync_speed_min", "1024").expect("speed limit");
    run.set("sync_action", "check").expect("check");
    let out = grow(&run, &["--raid-devices", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(
        stderr.contains("EBUSY")
            && stderr.contains("check is running")
            && stderr.contains("umd wait"),
        "{stderr}"
    );
    assert_eq!(run.get("raid_disks"), "2", "nothing changed");
    run.stop();
}

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

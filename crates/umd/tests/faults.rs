//! Member I/O errors on a running array, injected with `UMD_FAULT_INJECT`
//! (sectors of one member that fail with EIO): a read error is rebuilt
//! from redundancy and rewritten on the member (md's fix_read_error), which
//! stays in the array unless the rewrite does not hold, it fails reads
//! past `max_read_errors`, or the rewrite itself fails; a write error fails
//! the member and the write lands on the others, and so does a superblock
//! or bitmap write error; the superblocks record every failure, as the
//! host's mdadm reads them. Real NBD clients
//! throughout.

mod support;

use support::nbd_data::{copy_in, copy_out, data_offset_sectors, export_size};
use support::{
    create, examine_field, mdadm_examine, pseudo_random, require_tool, sparse_members, Running,
    TempDir,
};

#[test]
fn raid5_persistent_read_error_fails_the_member_and_data_is_rebuilt() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("fault-read");
    let members = raid5_of_three(&dir, 24);
    let run = Running::start(dir.path(), &members);
    let size = export_size(&run);
    let data = pseudo_random(size, 55);
    copy_in(&dir, &run, &data);
    run.stop();
    // Reads of m1's data area fail from the first sector on, rewritten or not.
    let at = data_offset_sectors(&members[1]);
    let fault = format!("m1.img:read:{at}+64");
    let run = Running::start_with_env(dir.path(), &members, &[], &[("UMD_FAULT_INJECT", &fault)]);
    assert!(
        copy_out(&dir, &run) == data,
        "data read back through a failing member differs"
    );
    assert_eq!(run.get("degraded"), "1");
    assert!(run.get("dev-m1.img/state").contains("faulty"));
    run.stop();
    let text = mdadm_examine(&members[0]);
    let state = examine_field(&text, "Array State").unwrap_or_default();
    assert!(
        state.starts_with("A.A"),
        "the failure is recorded: {state}\n{text}"
    );
}

#[test]
fn raid1_write_error_fails_the_member_and_the_write_lands() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("fault-write");
    let members = sparse_members(dir.path(), 2, 16);
    create(
        &members,
        &["--level", "1", "--raid-devices", "2", "--assume-clean"],
    );
    let at = data_offset_sectors(&members[0]);
    let fault = format!("m0.img:write:{}+8", at + 1024);
    let run = Running::start_with_env(dir.path(), &members, &[], &[("UMD_FAULT_INJECT", &fault)]);
    let size = export_size(&run);
    let data = pseudo_random(size, 66);
    copy_in(&dir, &run, &data);
    assert_eq!(run.get("degraded"), "1");
    assert!(run.get("dev-m0.img/state").contains("faulty"));
    assert!(
        copy_out(&dir, &run) == data,
        "the survivor holds every write"
    );
    run.stop();
    let text = mdadm_examine(&members[1]);
    let state = examine_field(&text, "Array State").unwrap_or_default();
    assert!(
        state.starts_with(".A"),
        "m0 recorded failed: {state}\n{text}"
    );
    assert!(
        support::cat(&members) == data,
        "offline read of the survivor"
    );
}

/// An array of `level` over 3 members (64 KiB chunks) holding
/// pseudo-random data, stopped; returns the members and the data.
fn filled(dir: &TempDir, level: &str, seed: u64) -> (Vec<std::path::PathBuf>, Vec<u8>) {
    let members = sparse_members(dir.path(), 3, 16);
    let mut opts = vec!["--level", level, "--raid-devices", "3", "--assume-clean"];
    if level != "1" {
        opts.extend(["--chunk", "64"]);
    }
    create(&members, &opts);
    let run = Running::start(dir.path(), &members);
    let data = pseudo_random(export_size(&run), seed);
    copy_in(dir, &run, &data);
    run.stop();
    (members, data)
}

/// After a stop: the superblocks record all three members in sync, and
/// offline, where each member is read directly, the array reads `data`
/// (a rewrite holds the right bytes).
fn all_in_sync_and_whole(members: &[std::path::PathBuf], data: &[u8], level: &str) {
    let state = examine_field(&mdadm_examine(&members[0]), "Array State");
    assert_eq!(
        state.as_deref().map(|s| &s[..3]),
        Some("AAA"),
        "raid{level}"
    );
    assert!(support::cat(members) == data, "raid{level}: offline read");
}

/// The member the array reads from at chunks 0 and 3: m1 holds data there
/// in raid5's left-symmetric layout over 3 members; raid1 reads the first
/// mirror.
fn read_member(level: &str) -> &'static str {
    if level == "1" {
        "m0"
    } else {
        "m1"
    }
}

/// Member sectors of chunks 0 and 3 (64 KiB), 8 sectors in (all members of
/// these arrays have the same data offset).
fn fault_sectors(members: &[std::path::PathBuf]) -> [u64; 2] {
    let at = data_offset_sectors(&members[1]);
    [at + 8, at + 3 * 128 + 8]
}

#[test]
fn read_errors_are_repaired_and_the_member_stays() {
    for tool in ["nbdcopy", "nbdinfo", "mdadm"] {
        require_tool(tool);
    }
    for level in ["1", "5"] {
        let dir = TempDir::new(&format!("fault-fix-{level}"));
        let (members, data) = filled(&dir, level, 77);
        let [a, b] = fault_sectors(&members);
        let m = read_member(level);
        let fault = format!("{m}.img:read-fixable:{a}+8,{m}.img:read-fixable:{b}+8");
        let env = [("UMD_FAULT_INJECT", fault.as_str())];
        let run = Running::start_with_env(dir.path(), &members, &[], &env);
        assert!(copy_out(&dir, &run) == data, "raid{level}: data differs");
        assert_eq!(run.get("degraded"), "0", "raid{level}");
        assert_eq!(
            run.get(&format!("dev-{m}.img/state")),
            "in_sync",
            "raid{level}"
        );
        let errors: u64 = run
            .get(&format!("dev-{m}.img/errors"))
            .parse()
            .expect("a number");
        assert!(
            errors >= 16,
            "raid{level}: two repairs of 8+ sectors, {errors}"
        );
        assert!(
            run.log_text().contains("read error corrected"),
            "raid{level}: the repair is logged"
        );
        run.stop();
        all_in_sync_and_whole(&members, &data, level);
    }
}

/// md's scrub: a `check` that meets blocks a member cannot read rebuilds
/// them from the others and rewrites them, data and parity alike, and the
/// member stays; a second check finds nothing to read badly or to count.
#[test]
fn a_check_rewrites_unreadable_blocks_and_the_member_stays() {
    for tool in ["nbdcopy", "nbdinfo", "mdadm"] {
        require_tool(tool);
    }
    for level in ["1", "5", "10"] {
        let dir = TempDir::new(&format!("fault-scrub-{level}"));
        let (members, data) = filled(&dir, level, 80);
        // m1's chunks 0 and 1: in raid5's left-symmetric layout over 3
        // members a data block, then the parity block of stripe 1.
        let at = data_offset_sectors(&members[1]);
        let (a, b) = (at + 8, at + 128 + 24);
        let fault = format!("m1.img:read-fixable:{a}+3,m1.img:read-fixable:{b}+8");
        let env = [("UMD_FAULT_INJECT", fault.as_str())];
        let run = Running::start_with_env(dir.path(), &members, &[], &env);
        run.set("sync_action", "check").expect("start a check");
        run.wait_idle(std::time::Duration::from_secs(120));
        assert_eq!(run.get("mismatch_cnt"), "0", "raid{level}");
        assert_eq!(run.get("degraded"), "0", "raid{level}");
        assert_eq!(run.get("dev-m1.img/state"), "in_sync", "raid{level}");
        let errors = run.get("dev-m1.img/errors");
        // Each unreadable range lies in one 4 KiB sync block.
        assert_eq!(errors, "16", "raid{level}: two blocks rewritten");
        assert!(
            run.log_text().contains("sync read error corrected"),
            "raid{level}: the rewrite is logged"
        );
        run.set("sync_action", "check").expect("check again");
        run.wait_idle(std::time::Duration::from_secs(120));
        assert_eq!(run.get("mismatch_cnt"), "0", "raid{level}");
        assert_eq!(run.get("dev-m1.img/errors"), errors, "raid{level}: healed");
        assert!(copy_out(&dir, &run) == data, "raid{level}: data differs");
        run.stop();
        all_in_sync_and_whole(&members, &data, level);
    }
}

#[test]
fn read_errors_past_max_read_errors_fail_the_member() {
    for tool in ["nbdcopy", "nbdinfo", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("fault-max");
    let (members, data) = filled(&dir, "5", 78);
    let [a, b] = fault_sectors(&members);
    let fault = format!("m1.img:read-fixable:{a}+8,m1.img:read-fixable:{b}+8");
    let env = [("UMD_FAULT_INJECT", fault.as_str())];
    let run = Running::start_with_env(dir.path(), &members, &[], &env);
    run.set("max_read_errors", "1").expect("max_read_errors");
    assert!(copy_out(&dir, &run) == data, "data differs");
    assert_eq!(run.get("degraded"), "1");
    assert!(run.get("dev-m1.img/state").contains("faulty"));
    let errors: u64 = run.get("dev-m1.img/errors").parse().expect("a number");
    assert!(errors >= 8, "the first error was repaired: {errors}");
    run.stop();
    let state = examine_field(&mdadm_examine(&members[0]), "Array State");
    assert_eq!(state.as_deref().map(|s| &s[..3]), Some("A.A"));
}

#[test]
fn a_read_error_whose_rewrite_fails_fails_the_member() {
    for tool in ["nbdcopy", "nbdinfo", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("fault-rw");
    let (members, data) = filled(&dir, "1", 79);
    let [a, _] = fault_sectors(&members);
    let fault = format!("m0.img:rw:{a}+8");
    let env = [("UMD_FAULT_INJECT", fault.as_str())];
    let run = Running::start_with_env(dir.path(), &members, &[], &env);
    assert!(copy_out(&dir, &run) == data, "data differs");
    assert_eq!(run.get("degraded"), "1");
    assert!(run.get("dev-m0.img/state").contains("faulty"));
    assert_eq!(run.get("dev-m0.img/errors"), "0", "nothing was corrected");
    run.stop();
    let state = examine_field(&mdadm_examine(&members[1]), "Array State");
    assert_eq!(state.as_deref().map(|s| &s[..3]), Some(".AA"));
}

/// A member that vanishes mid-write (every later read, write and sync of
/// it fails) is failed, and FLUSH goes on succeeding on the members left:
/// md flushes its working members, so a dead disk must not turn every
/// flush of a degraded array into an error.
#[test]
fn a_vanished_member_is_failed_and_flushes_still_succeed() {
    for tool in ["nbdcopy", "nbdinfo", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("fault-gone");
    let members = raid5_of_three(&dir, 16);
    let at = data_offset_sectors(&members[1]);
    let fault = format!("m1.img:gone:{at}+8");
    let env = [("UMD_FAULT_INJECT", fault.as_str())];
    let run = Running::start_with_env(dir.path(), &members, &[], &env);
    let data = pseudo_random(export_size(&run), 91);
    let src = dir.path().join("data.bin");
    std::fs::write(&src, &data).expect("source");
    // nbdcopy --flush fails unless the export's FLUSH succeeds.
    support::run_ok(
        std::process::Command::new("nbdcopy")
            .arg("--flush")
            .arg(&src)
            .arg(run.uri()),
    );
    assert_eq!(run.get("degraded"), "1");
    assert!(run.get("dev-m1.img/state").contains("faulty"));
    assert!(
        copy_out(&dir, &run) == data,
        "the survivors hold every write"
    );
    run.stop();
    let state = examine_field(&mdadm_examine(&members[0]), "Array State");
    assert_eq!(state.as_deref().map(|s| &s[..3]), Some("A.A"));
}

/// A member whose superblock cannot be written (the dirty record at the
/// first write) is failed, as md fails a member whose superblock write
/// errored; the write that waited for the record lands on the others, and
/// the others' superblocks record the failure.
#[test]
fn a_failed_superblock_write_fails_the_member_and_the_write_lands() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("fault-sb");
    let members = raid5_of_three(&dir, 16);
    // 1.2: the superblock is the 4 KiB at sector 8.
    let env = [("UMD_FAULT_INJECT", "m2.img:write:8")];
    let run = Running::start_with_env(dir.path(), &members, &[], &env);
    let data = pseudo_random(export_size(&run), 93);
    copy_in(&dir, &run, &data);
    assert_eq!(run.get("degraded"), "1");
    assert!(run.get("dev-m2.img/state").contains("faulty"));
    assert!(
        copy_out(&dir, &run) == data,
        "the survivors hold every write"
    );
    run.stop();
    let state = examine_field(&mdadm_examine(&members[0]), "Array State");
    assert_eq!(state.as_deref().map(|s| &s[..3]), Some("AA."));
    assert!(
        support::cat(&members) == data,
        "offline read of the survivors"
    );
}

/// A member whose bitmap cannot be written is failed; the writes whose
/// bits it was to record succeed on the others (an error on one disk's
/// bitmap must not fail the user's writes on a redundant array).
#[test]
fn a_failed_bitmap_write_fails_the_member_and_writes_succeed() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("fault-bitmap");
    let members = sparse_members(dir.path(), 2, 16);
    create(
        &members,
        &[
            "--level",
            "1",
            "--raid-devices",
            "2",
            "--bitmap",
            "internal",
            "--assume-clean",
        ],
    );
    let text = mdadm_examine(&members[1]);
    let bitmap = examine_field(&text, "Internal Bitmap").expect("an internal bitmap");
    // "8 sectors from superblock": the superblock is at sector 8.
    let offset: u64 = bitmap
        .split_whitespace()
        .next()
        .and_then(|n| n.trim_start_matches('+').parse().ok())
        .unwrap_or_else(|| panic!("bitmap offset in {bitmap:?}"));
    let fault = format!("m1.img:write:{}+8", 8 + offset);
    let env = [("UMD_FAULT_INJECT", fault.as_str())];
    let run = Running::start_with_env(dir.path(), &members, &[], &env);
    let data = pseudo_random(export_size(&run), 94);
    copy_in(&dir, &run, &data);
    assert_eq!(run.get("degraded"), "1");
    assert!(run.get("dev-m1.img/state").contains("faulty"));
    assert!(
        copy_out(&dir, &run) == data,
        "the survivor holds every write"
    );
    run.stop();
    let state = examine_field(&mdadm_examine(&members[0]), "Array State");
    assert_eq!(state.as_deref().map(|s| &s[..2]), Some("A."));
}

/// A new raid5 over 3 members of `mib` MiB (64 KiB chunks, assumed clean).
fn raid5_of_three(dir: &TempDir, mib: u64) -> Vec<std::path::PathBuf> {
    let members = sparse_members(dir.path(), 3, mib);
    let level = ["--level", "5", "--raid-devices", "3"];
    create(
        &members,
        &[&level[..], &["--chunk", "64", "--assume-clean"]].concat(),
    );
    members
}

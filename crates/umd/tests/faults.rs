//! Member I/O errors on a running array, injected with `UMD_FAULT_INJECT`
//! (sectors of one member that fail with EIO): a read error fails the
//! member and the data is rebuilt from redundancy; a write error fails the
//! member and the write lands on the others; the superblocks record the
//! failure, as the host's mdadm reads them. Real NBD clients throughout.

mod support;

use std::process::Command;
use support::{
    create, examine_field, mdadm_examine, pseudo_random, require_tool, run_ok, sparse_members,
    Running, TempDir,
};

/// md 1.2's data offset for these small members (mdadm's choice).
fn data_offset_sectors(member: &std::path::Path) -> u64 {
    let text = mdadm_examine(member);
    examine_field(&text, "Data Offset")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no data offset:\n{text}"))
}

fn export_size(run: &Running) -> usize {
    let out = run_ok(Command::new("nbdinfo").arg("--size").arg(run.uri()));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("nbdinfo prints the size")
}

fn copy_in(dir: &TempDir, run: &Running, data: &[u8]) {
    let src = dir.path().join("data.bin");
    std::fs::write(&src, data).expect("source");
    run_ok(Command::new("nbdcopy").arg(&src).arg(run.uri()));
}

fn copy_out(dir: &TempDir, run: &Running) -> Vec<u8> {
    let back = dir.path().join("back.bin");
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&back));
    std::fs::read(&back).expect("read back")
}

#[test]
fn raid5_read_error_fails_the_member_and_data_is_rebuilt() {
    for tool in ["nbdcopy", "mdadm"] {
        require_tool(tool);
    }
    let dir = TempDir::new("fault-read");
    let members = sparse_members(dir.path(), 3, 24);
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
    let size = export_size(&run);
    let data = pseudo_random(size, 55);
    copy_in(&dir, &run, &data);
    run.stop();
    // Reads of m1's data area fail from the first sector on.
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

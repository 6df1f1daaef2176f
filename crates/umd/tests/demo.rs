//! `umd demo` works from a bare checkout, and what it writes is real md:
//! Debian's `mdadm --examine` reads its members as a clean raid5 and sees the
//! failed member the way umd recorded it.

use std::process::Command;

#[test]
fn demo_members_are_md_members_mdadm_reads() {
    let dir = std::env::temp_dir().join(format!("umd-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_umd"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .output()
        .expect("run umd demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("every read matched"), "{stdout}");

    let examine = Command::new("mdadm")
        .arg("--examine")
        .arg(dir.join("member0.img"))
        .output();
    let examine = match examine {
        Ok(o) => o,
        Err(e) => panic!("mdadm is needed as the second opinion on what umd writes: {e}"),
    };
    let text = String::from_utf8_lossy(&examine.stdout);
    assert!(
        examine.status.success(),
        "mdadm --examine refused our superblock: {text}"
    );
    for want in [
        "Version : 1.2",
        "Raid Level : raid5",
        "Raid Devices : 4",
        "Layout : left-symmetric",
        "Chunk Size : 64K",
        "State : clean",
        "Checksum : ",
        "- correct",
        "Events : 2",
        "Array State : A.AA",
    ] {
        assert!(
            text.contains(want),
            "mdadm --examine lacks {want:?}:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

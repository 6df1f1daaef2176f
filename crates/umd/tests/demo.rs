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
        "Internal Bitmap : 8 sectors from superblock",
        "Array State : AA.A",
    ] {
        assert!(
            text.contains(want),
            "mdadm --examine lacks {want:?}:\n{text}"
        );
    }
    // The failed member was left behind: its events are older than the rest.
    let events = |m: &str| {
        let out = Command::new("mdadm")
            .arg("--examine")
            .arg(dir.join(m))
            .output()
            .expect("mdadm");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("Events : ").map(str::to_string))
            .and_then(|e| e.parse::<u64>().ok())
            .expect("Events line")
    };
    assert!(
        events("member2.img") < events("member0.img"),
        "the failed member must not carry the survivors' events"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

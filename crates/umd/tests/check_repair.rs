//! raid6 check and repair that locate the wrong member, end to end: a block
//! of one member file is corrupted behind umd's back (between runs), `check`
//! names that member without changing anything, `repair` rewrites only that
//! block, and afterwards every member is byte for byte what it was before
//! the corruption (on an array umd made and on mdadm's raid6 images).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::raid6::{corrupt_block, data_offset_sectors, written_raid6};
use support::{cat, require_tool, sha256_hex, testdata, unpack, Running, TempDir};

const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
const SECTOR: u64 = 512;
/// md's mismatch unit: one 4 KiB block, 8 sectors.
const BLOCK_SECTORS: u64 = 8;

/// The bytes of `member` from its data offset on.
fn data_region(member: &Path, offset_sectors: u64) -> Vec<u8> {
    let bytes = fs::read(member).expect("read member");
    bytes[(offset_sectors * SECTOR) as usize..].to_vec()
}

/// The data regions of every member.
fn data_regions(members: &[PathBuf], offsets: &[u64]) -> Vec<Vec<u8>> {
    members
        .iter()
        .zip(offsets)
        .map(|(m, &o)| data_region(m, o))
        .collect()
}

fn dev(member: &Path) -> String {
    let name = member.file_name().expect("file name").to_string_lossy();
    format!("dev-{name}")
}

/// Run `action` to the end; returns `mismatch_cnt`.
fn run_action(run: &Running, action: &str) -> u64 {
    run.set("sync_action", action)
        .unwrap_or_else(|e| panic!("sync_action {action}: {e}"));
    run.wait_idle(SYNC_TIMEOUT);
    let count = run.get("mismatch_cnt");
    count
        .parse()
        .unwrap_or_else(|_| panic!("mismatch_cnt {count:?}"))
}

/// Check, then repair, on a running array whose `corrupted` members each
/// hold one wrong block: both name exactly those members, check changes
/// nothing, repair restores `pristine` (data regions) byte for byte.
fn check_then_repair(
    dir: &Path,
    members: &[PathBuf],
    corrupted: &[&Path],
    offsets: &[u64],
    pristine: &[Vec<u8>],
) {
    let before: Vec<Vec<u8>> = data_regions(members, offsets);
    let run = Running::start(dir, members);
    run.wait_idle(SYNC_TIMEOUT);
    let expected = corrupted.len() as u64 * BLOCK_SECTORS;
    assert_eq!(run_action(&run, "check"), expected, "check counts as md");
    for m in members {
        let want = if corrupted.contains(&m.as_path()) {
            BLOCK_SECTORS
        } else {
            0
        };
        let got = run.get(&format!("{}/mismatches_located", dev(m)));
        assert_eq!(got, want.to_string(), "check located on {}", m.display());
    }
    let after_check: Vec<Vec<u8>> = data_regions(members, offsets);
    assert!(after_check == before, "check changed a member");
    assert_eq!(run_action(&run, "repair"), expected, "repair counts as md");
    for m in corrupted {
        let got = run.get(&format!("{}/mismatches_located", dev(m)));
        assert_eq!(
            got,
            BLOCK_SECTORS.to_string(),
            "repair located on {}",
            m.display()
        );
    }
    assert_eq!(run_action(&run, "check"), 0, "clean after repair");
    let log = run.log_text();
    run.stop();
    for m in corrupted {
        let name = m.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            log.lines()
                .any(|l| l.contains("mismatch located") && l.contains(&name)),
            "no log line naming {name}:\n{log}"
        );
    }
    for ((m, &o), want) in members.iter().zip(offsets).zip(pristine) {
        assert!(
            data_region(m, o) == *want,
            "{} differs from its state before the corruption",
            m.display()
        );
    }
}

#[test]
fn raid6_repair_rewrites_only_the_corrupted_member() {
    require_tool("nbdcopy");
    require_tool("mdadm");
    let dir = TempDir::new("checkrepair-umd");
    let members = written_raid6(dir.path(), 8, 0x6b6);
    let content = sha256_hex(&cat(&members));
    let offsets: Vec<u64> = members.iter().map(|m| data_offset_sectors(m)).collect();
    let pristine: Vec<Vec<u8>> = data_regions(&members, &offsets);
    // Left-symmetric raid6 on 5 members: stripe 0 has data on member 2,
    // stripe 3 has P on member 1 (128-sector chunks, all inside the data).
    corrupt_block(&members[2], offsets[2], 16);
    corrupt_block(&members[1], offsets[1], 3 * 128 + 40);
    assert_ne!(
        sha256_hex(&cat(&members)),
        content,
        "the corruption is visible"
    );
    check_then_repair(
        dir.path(),
        &members,
        &[members[1].as_path(), members[2].as_path()],
        &offsets,
        &pristine,
    );
    assert_eq!(
        sha256_hex(&cat(&members)),
        content,
        "the array reads as written"
    );
}

#[test]
fn raid6_repair_on_mdadm_images() {
    require_tool("mdadm");
    let Some(data) = testdata() else {
        return;
    };
    let dir = TempDir::new("checkrepair-real");
    let members: Vec<PathBuf> = (1..=4)
        .map(|i| {
            unpack(
                &data,
                &format!("dissect.volume/md/md-raid6-{i}.bin.gz"),
                dir.path(),
            )
        })
        .collect();
    let offsets: Vec<u64> = members.iter().map(|m| data_offset_sectors(m)).collect();
    let original: Vec<Vec<u8>> = data_regions(&members, &offsets);
    let content = cat(&members);
    // mdadm left the initial resync unfinished: let umd finish it first.
    let run = Running::start(dir.path(), &members);
    run.wait_idle(SYNC_TIMEOUT);
    run.stop();
    assert!(
        cat(&members) == content,
        "the resync kept the array's content"
    );
    let pristine: Vec<Vec<u8>> = data_regions(&members, &offsets);
    assert!(
        pristine == original,
        "mdadm's members were already consistent where written"
    );
    // Two blocks in different stripes of two members (512 KiB chunks).
    corrupt_block(&members[1], offsets[1], 16);
    corrupt_block(&members[3], offsets[3], 2 * 1024 + 64);
    check_then_repair(
        dir.path(),
        &members,
        &[members[1].as_path(), members[3].as_path()],
        &offsets,
        &pristine,
    );
    assert!(
        cat(&members) == content,
        "the array reads as mdadm wrote it"
    );
}

/// md resyncs and repairs a raid6 with one member missing: the parity that
/// is left is made to agree with the data. Here a data block is corrupted
/// behind umd's back, the array runs without one member, `check` counts the
/// block, `repair` fixes the parity and a second `check` is clean; what the
/// array reads does not change (the corrupted block is now its data, as md
/// would leave it: without the missing member nothing can say otherwise).
#[test]
fn degraded_raid6_repair_makes_the_parity_left_agree() {
    require_tool("nbdcopy");
    require_tool("mdadm");
    let dir = TempDir::new("checkrepair-degraded");
    let members = written_raid6(dir.path(), 8, 0x6b7);
    let offsets: Vec<u64> = members.iter().map(|m| data_offset_sectors(m)).collect();
    // Stripe 0 has data on member 2 (as above); member 0 stays out.
    corrupt_block(&members[2], offsets[2], 16);
    let degraded = &members[1..];
    let content = cat(degraded);
    let run = Running::start(dir.path(), degraded);
    run.wait_idle(SYNC_TIMEOUT);
    assert_eq!(run.get("degraded"), "1");
    assert_eq!(
        run_action(&run, "check"),
        BLOCK_SECTORS,
        "check counts the block"
    );
    assert_eq!(run_action(&run, "repair"), BLOCK_SECTORS);
    assert_eq!(run_action(&run, "check"), 0, "clean after repair");
    run.stop();
    assert!(
        cat(degraded) == content,
        "the repair changed what the array reads"
    );
}

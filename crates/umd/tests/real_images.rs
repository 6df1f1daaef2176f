//! `umd cat` and `umd examine` on every real image set made by mdadm on Linux.
//!
//! The images and their data pattern are documented in the test data's
//! README: array block k (4 KiB) holds the 16-bit little-endian value k + 1
//! repeated, for the first 512 blocks (3072 for DDF raid0), zero after. Every
//! set must read back as that pattern whole, with each single member left
//! out (redundant levels), and with each pair left out (raid6).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{testdata, unpack};

const BLOCK_BYTES: usize = 4096;

/// A scratch directory unique to this test process and name.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("umd-real-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn umd(args: &[&str], members: &[&PathBuf]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_umd"))
        .args(args)
        .args(members)
        .output()
        .expect("run umd")
}

/// The documented pattern for an array of `len` bytes with `blocks` written.
fn pattern(len: usize, blocks: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for k in 0..blocks.min(len / BLOCK_BYTES) {
        let word = ((k + 1) as u16).to_le_bytes();
        for pair in v[k * BLOCK_BYTES..(k + 1) * BLOCK_BYTES].chunks_exact_mut(2) {
            pair.copy_from_slice(&word);
        }
    }
    v
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    if a.len() != b.len() {
        return format!("length {} vs expected {}", a.len(), b.len());
    }
    let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
    format!("first difference at byte {at} (block {})", at / BLOCK_BYTES)
}

struct Set {
    files: &'static [&'static str],
    array_bytes: usize,
    blocks: usize,
    /// Members that may be missing at once.
    redundancy: usize,
    subarray: Option<&'static str>,
    /// Indices (into `files`) whose loss together must be refused; empty =
    /// the first `redundancy + 1` members.
    fatal: &'static [usize],
}

const MIB: usize = 1 << 20;

fn md(files: &'static [&'static str], array_mib: usize, redundancy: usize) -> Set {
    Set {
        files,
        array_bytes: array_mib * MIB,
        blocks: 512,
        redundancy,
        subarray: None,
        fatal: &[],
    }
}

/// `umd ARGS MEMBERS` succeeds and prints exactly `want`.
fn assert_reads(what: &str, args: &[&str], members: &[&PathBuf], want: &[u8]) {
    let out = umd(args, members);
    assert!(
        out.status.success(),
        "{what}: umd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == want,
        "{what}: {}",
        first_difference(&out.stdout, want)
    );
}

fn check_set(data: &Path, label: &str, set: &Set) {
    let dir = scratch(label);
    let members: Vec<PathBuf> = set.files.iter().map(|f| unpack(data, f, &dir)).collect();
    let want = pattern(set.array_bytes, set.blocks);
    let mut args = vec!["cat"];
    if let Some(s) = set.subarray {
        args.extend(["--subarray", s]);
    }
    // Every member, in reverse order: roles come from the metadata.
    let all: Vec<&PathBuf> = members.iter().rev().collect();
    assert_reads(&format!("{label} (all members)"), &args, &all, &want);
    let n = members.len();
    let without = |lost: &[usize]| -> Vec<&PathBuf> {
        (0..n)
            .filter(|i| !lost.contains(i))
            .map(|i| &members[i])
            .collect()
    };
    if set.redundancy >= 1 {
        for a in 0..n {
            assert_reads(
                &format!("{label} without member {a}"),
                &args,
                &without(&[a]),
                &want,
            );
        }
    }
    if set.redundancy >= 2 {
        for a in 0..n {
            for b in a + 1..n {
                let some = without(&[a, b]);
                assert_reads(
                    &format!("{label} without members {a},{b}"),
                    &args,
                    &some,
                    &want,
                );
            }
        }
    }
    // One more missing member than the level survives: refused, not garbage.
    let fatal: Vec<usize> = if set.fatal.is_empty() {
        (0..=set.redundancy).collect()
    } else {
        set.fatal.to_vec()
    };
    if fatal.len() < n {
        let out = umd(&args, &without(&fatal));
        assert!(
            !out.status.success(),
            "{label}: reading with too few members must fail"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("too few members") || err.contains("cannot be read"),
            "{label}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! set_test {
    ($name:ident, $set:expr) => {
        #[test]
        fn $name() {
            if let Some(data) = testdata() {
                check_set(&data, stringify!($name), &$set);
            }
        }
    };
}

set_test!(
    md_linear,
    md(
        &[
            "dissect.volume/md/md-linear-1.bin.gz",
            "dissect.volume/md/md-linear-2.bin.gz"
        ],
        2,
        0
    )
);
set_test!(
    md_raid0,
    md(
        &[
            "dissect.volume/md/md-raid0-1.bin.gz",
            "dissect.volume/md/md-raid0-2.bin.gz",
            "dissect.volume/md/md-raid0-3.bin.gz"
        ],
        5,
        0
    )
);
set_test!(
    md_raid1,
    md(
        &[
            "dissect.volume/md/md-raid1-1.bin.gz",
            "dissect.volume/md/md-raid1-2.bin.gz"
        ],
        2,
        1
    )
);
set_test!(
    md_raid4,
    md(
        &[
            "dissect.volume/md/md-raid4-1.bin.gz",
            "dissect.volume/md/md-raid4-2.bin.gz",
            "dissect.volume/md/md-raid4-3.bin.gz"
        ],
        4,
        1
    )
);
set_test!(
    md_raid5,
    md(
        &[
            "dissect.volume/md/md-raid5-1.bin.gz",
            "dissect.volume/md/md-raid5-2.bin.gz",
            "dissect.volume/md/md-raid5-3.bin.gz"
        ],
        4,
        1
    )
);
set_test!(
    md_raid6,
    md(
        &[
            "dissect.volume/md/md-raid6-1.bin.gz",
            "dissect.volume/md/md-raid6-2.bin.gz",
            "dissect.volume/md/md-raid6-3.bin.gz",
            "dissect.volume/md/md-raid6-4.bin.gz"
        ],
        4,
        2
    )
);
set_test!(
    md_raid10,
    md(
        &[
            "dissect.volume/md/md-raid10-1.bin.gz",
            "dissect.volume/md/md-raid10-2.bin.gz"
        ],
        2,
        1
    )
);
set_test!(
    md_090_raid1,
    Set {
        files: &[
            "dissect.volume/md/md-90-raid1-1.bin.gz",
            "dissect.volume/md/md-90-raid1-2.bin.gz"
        ],
        array_bytes: 3008 * 1024,
        blocks: 512,
        redundancy: 1,
        subarray: None,
        fatal: &[]
    }
);
set_test!(
    ddf_raid0,
    Set {
        files: &[
            "dissect.volume/ddf/ddf-raid0-1.bin.gz",
            "dissect.volume/ddf/ddf-raid0-2.bin.gz",
            "dissect.volume/ddf/ddf-raid0-3.bin.gz"
        ],
        array_bytes: 12 * MIB,
        blocks: 3072,
        redundancy: 0,
        subarray: None,
        fatal: &[]
    }
);
set_test!(
    ddf_raid1,
    Set {
        files: &[
            "dissect.volume/ddf/ddf-raid1-1.bin.gz",
            "dissect.volume/ddf/ddf-raid1-2.bin.gz"
        ],
        array_bytes: 4 * MIB,
        blocks: 512,
        redundancy: 1,
        subarray: None,
        fatal: &[]
    }
);
set_test!(
    ddf_raid4,
    Set {
        files: &[
            "dissect.volume/ddf/ddf-raid4-1.bin.gz",
            "dissect.volume/ddf/ddf-raid4-2.bin.gz"
        ],
        array_bytes: 4 * MIB,
        blocks: 512,
        redundancy: 1,
        subarray: None,
        fatal: &[]
    }
);
set_test!(
    ddf_raid5,
    Set {
        files: &[
            "dissect.volume/ddf/ddf-raid5-1.bin.gz",
            "dissect.volume/ddf/ddf-raid5-2.bin.gz",
            "dissect.volume/ddf/ddf-raid5-3.bin.gz"
        ],
        array_bytes: 8 * MIB,
        blocks: 512,
        redundancy: 1,
        subarray: None,
        fatal: &[]
    }
);
set_test!(
    ddf_raid6,
    Set {
        files: &[
            "dissect.volume/ddf/ddf-raid6-1.bin.gz",
            "dissect.volume/ddf/ddf-raid6-2.bin.gz",
            "dissect.volume/ddf/ddf-raid6-3.bin.gz",
            "dissect.volume/ddf/ddf-raid6-4.bin.gz"
        ],
        array_bytes: 8 * MIB,
        blocks: 512,
        redundancy: 2,
        subarray: None,
        fatal: &[]
    }
);
set_test!(
    ddf_raid10,
    Set {
        files: &[
            "dissect.volume/ddf/ddf-raid10-1.bin.gz",
            "dissect.volume/ddf/ddf-raid10-2.bin.gz",
            "dissect.volume/ddf/ddf-raid10-3.bin.gz",
            "dissect.volume/ddf/ddf-raid10-4.bin.gz"
        ],
        array_bytes: 8 * MIB,
        blocks: 512,
        redundancy: 1,
        subarray: None,
        fatal: &[1, 3]
    }
);
set_test!(
    ddf_container_raid0,
    Set {
        files: &[
            "dissect.volume/ddf/ddf-raid0-raid1-1.bin.gz",
            "dissect.volume/ddf/ddf-raid0-raid1-2.bin.gz"
        ],
        array_bytes: 4 * MIB,
        blocks: 512,
        redundancy: 0,
        subarray: Some("ddf-raid0"),
        fatal: &[]
    }
);
set_test!(
    ddf_container_raid1,
    Set {
        files: &[
            "dissect.volume/ddf/ddf-raid0-raid1-1.bin.gz",
            "dissect.volume/ddf/ddf-raid0-raid1-2.bin.gz"
        ],
        array_bytes: 2 * MIB,
        blocks: 512,
        redundancy: 1,
        subarray: Some("ddf-raid1"),
        fatal: &[]
    }
);

#[test]
fn members_of_different_arrays_are_refused_by_name() {
    let Some(data) = testdata() else { return };
    let dir = scratch("mixed");
    let a = unpack(&data, "dissect.volume/md/md-raid1-1.bin.gz", &dir);
    let b = unpack(&data, "dissect.volume/md/md-raid5-1.bin.gz", &dir);
    let out = umd(&["cat"], &[&a, &b]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("md-raid5-1.bin") && err.contains("belongs to array"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line on failure: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn examine_json_reports_what_mdadm_wrote() {
    let Some(data) = testdata() else { return };
    let dir = scratch("examine");
    let m = unpack(&data, "dissect.volume/md/md-raid5-3.bin.gz", &dir);
    let out = umd(&["examine", "--json"], &[&m]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let info = &v[0]["infos"][0];
    // Facts from the test data README: raid5 ls, 3 members, 512 KiB chunk,
    // data_offset 4096, events 20, the third member has dev_number 3 and role 2.
    assert_eq!(info["format"], "1.2");
    assert_eq!(info["array"]["level"], 5);
    assert_eq!(info["array"]["layout"], 2);
    assert_eq!(info["array"]["chunk_sectors"], 1024);
    assert_eq!(info["array"]["raid_disks"], 3);
    assert_eq!(info["array"]["events"], 20);
    assert_eq!(info["device"]["data_offset_sectors"], 4096);
    assert_eq!(info["device"]["dev_id"], 3);
    assert_eq!(info["device"]["slot"]["role"], 2);
    let text = umd(&["examine"], &[&m]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Raid Level : raid5") && text.contains("Layout : left-symmetric"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_with_no_metadata_is_named_in_the_error() {
    let dir = scratch("nometa");
    let f = dir.join("zeros.img");
    std::fs::write(&f, vec![0u8; 1 << 20]).expect("write");
    let out = umd(&["examine"], &[&f]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zeros.img") && err.contains("no md superblock"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

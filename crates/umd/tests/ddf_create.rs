//! `umd create --metadata ddf`, judged by the host's mdadm.
//!
//! Containers with raid0, raid1, raid4, raid5, raid6 and raid10 virtual disks,
//! and a container holding two (raid1 then raid5 in the space left), are
//! created on sparse files; `mdadm --examine` must read every member cleanly
//! and report the level, sizes, offsets and states mdadm itself would have
//! written (`--examine --scan` must list the container and every member
//! array); `umd examine` and `umd cat --subarray` must read them too.
//! Refusals name the member at fault.

mod ddf_support;
mod support;

use std::path::PathBuf;
use std::process::Command;

use ddf_support::{field, mdadm_examine_ok, pd_count, pd_row};
use support::{sparse_members, umd, umd_ok, TempDir};

/// Member size: mdadm needs more than its 32 MiB metadata region.
const MEMBER_MIB: u64 = 64;
/// KiB each 64 MiB member offers for data (64 MiB less the 32 MiB region).
const FREE_KIB: u64 = 32 * 1024;

/// `n` sparse members in a new subdirectory `name` of `dir`.
fn members_in(dir: &TempDir, name: &str, n: usize, mib: u64) -> Vec<PathBuf> {
    let sub = dir.path().join(name);
    std::fs::create_dir_all(&sub).expect("subdirectory");
    sparse_members(&sub, n, mib)
}

fn create(members: &[PathBuf], opts: &[&str]) -> String {
    let mut args: Vec<String> = vec!["create".into(), "--metadata".into(), "ddf".into()];
    args.extend(opts.iter().map(|s| (*s).to_string()));
    args.extend(members.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    String::from_utf8_lossy(&umd_ok(&refs).stdout).into_owned()
}

fn create_err(members: &[PathBuf], opts: &[&str]) -> String {
    let out = umd()
        .args(["create", "--metadata", "ddf"])
        .args(opts)
        .args(members)
        .output()
        .expect("run umd");
    assert!(!out.status.success(), "umd create {opts:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One case: level, members, extra options, then what mdadm must print:
/// "Raid Level", "Device Size" and "Array Size" (KiB), "init state".
struct Case {
    level: &'static str,
    n: usize,
    opts: &'static [&'static str],
    raid_level: &'static str,
    device_kib: u64,
    array_kib: u64,
    init: &'static str,
}

const CASES: &[Case] = &[
    Case {
        level: "1",
        n: 2,
        opts: &[],
        raid_level: "RAID1",
        device_kib: FREE_KIB,
        array_kib: FREE_KIB,
        init: "Not Initialised",
    },
    Case {
        level: "5",
        n: 3,
        opts: &[],
        raid_level: "RAID5",
        device_kib: FREE_KIB,
        array_kib: 2 * FREE_KIB,
        init: "Not Initialised",
    },
    Case {
        level: "6",
        n: 4,
        opts: &["--chunk", "64"],
        raid_level: "RAID6",
        device_kib: FREE_KIB,
        array_kib: 2 * FREE_KIB,
        init: "Not Initialised",
    },
    Case {
        level: "0",
        n: 3,
        opts: &[],
        raid_level: "RAID0",
        device_kib: FREE_KIB,
        array_kib: 3 * FREE_KIB,
        init: "Fully Initialised",
    },
    Case {
        level: "10",
        n: 4,
        opts: &["--assume-clean"],
        raid_level: "RAID1",
        device_kib: FREE_KIB,
        array_kib: 2 * FREE_KIB,
        init: "Fully Initialised",
    },
    Case {
        level: "10",
        n: 3,
        opts: &[],
        raid_level: "RAID1E",
        device_kib: FREE_KIB,
        // md's raid10 size (1.5 members' worth), which the kernel serves;
        // mdadm's own formula would record one member's worth.
        array_kib: FREE_KIB * 3 / 2,
        init: "Not Initialised",
    },
    Case {
        level: "4",
        n: 3,
        opts: &["--size", "10000"],
        raid_level: "RAID4",
        // --size rounded down to the 512 KiB chunk.
        device_kib: 9728,
        array_kib: 2 * 9728,
        init: "Not Initialised",
    },
];

#[test]
fn every_level_reads_back_in_mdadm() {
    for case in CASES {
        let tag = format!("raid{}x{}", case.level, case.n);
        let dir = TempDir::new(&format!("ddf-create-{tag}"));
        let members = sparse_members(dir.path(), case.n, MEMBER_MIB);
        let mut opts = vec!["--level", case.level, "--raid-devices"];
        let n = case.n.to_string();
        opts.push(&n);
        opts.extend(["--name", "vol"]);
        opts.extend(case.opts);
        create(&members, &opts);
        let mut refnums = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let text = mdadm_examine_ok(m);
            let get = |k: &str| field(&text, k).unwrap_or_else(|| panic!("{tag} m{i}: no {k}"));
            assert_eq!(get("Virtual Disks"), "1", "{tag}");
            assert_eq!(get("Raid Level[0]"), case.raid_level, "{tag}");
            assert_eq!(get("Device Size[0]"), case.device_kib.to_string(), "{tag}");
            assert_eq!(get("Array Size[0]"), case.array_kib.to_string(), "{tag}");
            assert_eq!(get("state[0]"), "Optimal, Consistent", "{tag}");
            assert_eq!(get("init state[0]"), case.init, "{tag}");
            assert_eq!(get("Name[0]"), "vol", "{tag}");
            assert_eq!(get("Redundant hdr"), "yes", "{tag}");
            assert_eq!(
                get("Seq"),
                "00000003",
                "{tag}: container write, then the VD"
            );
            assert_eq!(pd_count(&text), case.n, "{tag}");
            if case.raid_level == "RAID1" && case.n == 4 {
                assert_eq!(get("Secondary Level[0]"), "Spanned", "{tag}");
                assert_eq!(
                    get("Secondary Position[0]"),
                    format!("{} of 2", i / 2),
                    "{tag}"
                );
            }
            let rows: Vec<String> = text
                .lines()
                .filter(|l| l.trim_end().ends_with("active/Online"))
                .map(str::to_string)
                .collect();
            assert_eq!(rows.len(), case.n, "{tag}: every member active and online");
            if i == 0 {
                refnums = rows
                    .iter()
                    .map(|r| r.split_whitespace().nth(1).expect("refnum").to_string())
                    .collect();
            }
        }
        assert_eq!(refnums.len(), case.n);
        // umd reads the same array back, whole.
        let mut args = vec!["cat".to_string(), "--subarray".into(), "vol".into()];
        args.extend(members.iter().map(|p| p.display().to_string()));
        let out = umd_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            out.stdout.len() as u64,
            case.array_kib * 1024,
            "{tag}: umd cat size"
        );
    }
}

#[test]
fn two_virtual_disks_share_a_container() {
    let dir = TempDir::new("ddf-create-two");
    let members = sparse_members(dir.path(), 3, MEMBER_MIB);
    let out = create(&members, &["--level", "container", "--raid-devices", "3"]);
    assert!(out.contains("container created"), "{out}");
    let text = mdadm_examine_ok(&members[0]);
    assert_eq!(field(&text, "Virtual Disks").as_deref(), Some("0"));
    assert_eq!(
        pd_row(&text, refnum_of(&text, 0)).as_deref(),
        Some("Global-Spare/Online")
    );

    create(
        &members[..2],
        &[
            "--level",
            "1",
            "--raid-devices",
            "2",
            "--size",
            "8192",
            "--name",
            "r1",
        ],
    );
    create(
        &members,
        &["--level", "5", "--raid-devices", "3", "--name", "r5"],
    );
    for (i, m) in members.iter().enumerate() {
        let text = mdadm_examine_ok(m);
        let get = |k: &str| field(&text, k).unwrap_or_else(|| panic!("m{i}: no {k}"));
        assert_eq!(get("Virtual Disks"), "2", "m{i}");
        assert_eq!(get("Name[0]"), "r1");
        assert_eq!(get("Name[1]"), "r5");
        // raid1 uses the first 8 MiB of m0 and m1; raid5 follows it there and
        // starts at 0 on m2, which raid1 does not use (first fit).
        if i < 2 {
            assert_eq!(get("Raid Devices[0]"), "2 (0@0K 1@0K)", "m{i}");
            assert_eq!(get("Device Size[0]"), "8192");
        }
        assert_eq!(get("Raid Devices[1]"), "3 (0@8192K 1@8192K 2@0K)", "m{i}");
        assert_eq!(get("Device Size[1]"), (FREE_KIB - 8192).to_string());
        assert_eq!(get("Array Size[1]"), (2 * (FREE_KIB - 8192)).to_string());
        assert_eq!(get("Seq"), "00000004", "m{i}");
    }
    // mdadm lists the container and both member arrays.
    let scan = Command::new("mdadm")
        .args(["--examine", "--scan", "--config=/dev/null"])
        .arg(&members[0])
        .output()
        .expect("mdadm");
    let scan = String::from_utf8_lossy(&scan.stdout);
    assert!(scan.contains("ARRAY metadata=ddf"), "{scan}");
    assert!(
        scan.contains("/dev/md/r1 container=") && scan.contains("member=0"),
        "{scan}"
    );
    assert!(
        scan.contains("/dev/md/r5 container=") && scan.contains("member=1"),
        "{scan}"
    );
    // umd reads both.
    let paths: Vec<String> = members.iter().map(|p| p.display().to_string()).collect();
    let r1 = umd_ok(&["cat", "--subarray", "r1", &paths[0], &paths[1]]);
    assert_eq!(r1.stdout.len(), 8 << 20);
    let r5 = umd_ok(&["cat", "--subarray", "1", &paths[0], &paths[1], &paths[2]]);
    assert_eq!(r5.stdout.len() as u64, 2 * (FREE_KIB - 8192) * 1024);
    let ex = umd_ok(&["examine", &paths[2]]);
    let ex = String::from_utf8_lossy(&ex.stdout);
    assert!(ex.contains("r5") && !ex.contains("Name : r1"), "{ex}");

    // A third VD of the same name is refused; a full container has no room.
    let err = create_err(
        &members,
        &["--level", "5", "--raid-devices", "3", "--name", "r5"],
    );
    assert!(
        err.contains("already has a virtual disk called \"r5\""),
        "{err}"
    );
    let err = create_err(
        &members,
        &["--level", "5", "--raid-devices", "3", "--name", "r6"],
    );
    assert!(err.contains("no space"), "{err}");
}

/// The refnum in row `n` of mdadm's physical disk table.
fn refnum_of(text: &str, n: usize) -> u32 {
    let table = text.split(" Physical Disks :").nth(1).expect("table");
    let row = table.lines().nth(2 + n).expect("row");
    u32::from_str_radix(row.split_whitespace().nth(1).expect("refnum"), 16).expect("hex")
}

#[test]
fn existing_metadata_is_refused_without_force() {
    let dir = TempDir::new("ddf-create-refuse");
    let members = sparse_members(dir.path(), 2, MEMBER_MIB);
    let paths: Vec<String> = members.iter().map(|p| p.display().to_string()).collect();
    umd_ok(&[
        "create",
        "--level",
        "1",
        "--raid-devices",
        "2",
        &paths[0],
        &paths[1],
    ]);
    let err = create_err(&members, &["--level", "1", "--raid-devices", "2"]);
    assert!(
        err.contains(&paths[0]) && err.contains("md 1.2 superblock") && err.contains("--force"),
        "{err}"
    );
    create(
        &members,
        &[
            "--level",
            "1",
            "--raid-devices",
            "2",
            "--force",
            "--name",
            "m",
        ],
    );
    // The md superblock was erased: the members read as DDF only.
    for m in &members {
        let text = mdadm_examine_ok(m);
        assert_eq!(field(&text, "Magic").as_deref(), Some("de11de11"), "{text}");
        let ex = umd_ok(&["examine", &m.display().to_string()]);
        assert!(String::from_utf8_lossy(&ex.stdout).contains("de11de11"));
    }
    // One member in the container, one bare: refused, naming the member
    // whose metadata would be overwritten.
    let bare = members_in(&dir, "bare", 1, MEMBER_MIB).remove(0);
    let err = create_err(&[bare.clone(), members[0].clone()], &["-l", "1", "-n", "2"]);
    assert!(err.contains(&paths[0]) && err.contains("--force"), "{err}");
    // Too small for DDF.
    let small = members_in(&dir, "small", 2, 32);
    let err = create_err(&small, &["-l", "1", "-n", "2"]);
    assert!(err.contains("too small") && err.contains("m0.img"), "{err}");
    // An empty container over a container needs --force too.
    let err = create_err(&members, &["-l", "container", "-n", "2"]);
    assert!(
        err.contains("DDF container metadata") && err.contains("--force"),
        "{err}"
    );
    // Shapes DDF cannot describe.
    let four = members_in(&dir, "four", 4, MEMBER_MIB);
    let err = create_err(&four, &["-l", "1", "-n", "4"]);
    assert!(err.contains("two or three"), "{err}");
    let err = create_err(
        &four[..3],
        &["-l", "5", "-n", "3", "--layout", "right-symmetric"],
    );
    assert!(err.contains("cannot describe"), "{err}");
}

#[test]
fn a_seed_makes_identifiers_reproducible() {
    let dir = TempDir::new("ddf-create-seed");
    let a = members_in(&dir, "a", 2, MEMBER_MIB);
    let b = members_in(&dir, "b", 2, MEMBER_MIB);
    let c = members_in(&dir, "c", 2, MEMBER_MIB);
    for (set, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        create(set, &["-l", "1", "-n", "2", "--random-seed", seed]);
    }
    let refs = |set: &[PathBuf]| {
        let text = mdadm_examine_ok(&set[0]);
        (refnum_of(&text, 0), refnum_of(&text, 1))
    };
    assert_eq!(refs(&a), refs(&b));
    assert_ne!(refs(&a), refs(&c));
}

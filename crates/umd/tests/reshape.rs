//! `umd grow` on stopped raid5/raid6 arrays: growing by added members keeps
//! every byte (the new space reads as zeros, as md leaves it), the
//! superblocks say what mdadm expects of a finished reshape, and a grow
//! killed with SIGKILL at early, late and random points, then resumed, loses
//! nothing; at every kill point the half-reshaped array reads right too.
//! Arrays with no room before their data are refused, naming the room.
//! Linux's verdict on these arrays is in `oracle_reshape.rs`.

mod reshape_support;
mod support;

use reshape_support::{filled_array, grow_killed, grow_ok, Rng};
use std::time::Duration;
use support::{
    cat, examine_field, mdadm_examine, require_tool, run_ok, sparse_members, umd, Running, TempDir,
};

fn grown(data: &[u8], len: usize) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(len, 0);
    v
}

/// A filled raid5 of three 16 MiB members (64 KiB chunks) and a fourth,
/// blank, to add: the members (added one last) and the data.
fn raid5_and_one_more(dir: &TempDir, seed: u64) -> (Vec<std::path::PathBuf>, Vec<u8>) {
    require_tool("mdadm");
    require_tool("nbdcopy");
    let members = sparse_members(dir.path(), 4, 16);
    let data = filled_array(
        dir.path(),
        &members[..3],
        &["--level", "5", "--raid-devices", "3", "--chunk", "64"],
        seed,
    );
    (members, data)
}

#[test]
fn raid5_grows_by_one_member_and_keeps_every_byte() {
    let dir = TempDir::new("reshape-r5");
    let (members, data) = raid5_and_one_more(&dir, 51);
    let (old, add) = members.split_at(3);
    let before = mdadm_examine(&old[0]);
    let offset_before = examine_field(&before, "Data Offset").expect("data offset");
    let mut args = vec!["--raid-devices", "4", "--add"];
    let add_path = add[0].to_str().expect("utf-8 path");
    args.push(add_path);
    grow_ok(&args, old);
    let back = cat(&members);
    assert_eq!(
        back.len(),
        data.len() / 2 * 3,
        "four members hold 3/2 as much"
    );
    assert!(back == grown(&data, back.len()), "grown array reads wrong");
    for m in &members {
        let text = mdadm_examine(m);
        assert_eq!(
            examine_field(&text, "Raid Devices").as_deref(),
            Some("4"),
            "{text}"
        );
        assert_eq!(
            examine_field(&text, "Feature Map").as_deref(),
            Some("0x0"),
            "{text}"
        );
        assert_ne!(
            examine_field(&text, "Data Offset"),
            Some(offset_before.clone()),
            "{text}"
        );
    }
    // umd run serves the grown array with the same content.
    let run = Running::start(dir.path(), &members);
    let out = dir.path().join("back.bin");
    run_ok(
        std::process::Command::new("nbdcopy")
            .arg(run.uri())
            .arg(&out),
    );
    assert!(run.stop().success());
    assert!(
        std::fs::read(&out).expect("read back") == back,
        "umd run reads what umd cat reads"
    );
}

#[test]
fn raid6_grow_killed_at_many_points_resumes_without_loss() {
    require_tool("nbdcopy");
    let dir = TempDir::new("reshape-r6-kill");
    let members = sparse_members(dir.path(), 6, 16);
    let (old, add) = members.split_at(4);
    let data = filled_array(
        dir.path(),
        old,
        &["--level", "6", "--raid-devices", "4", "--chunk", "32"],
        62,
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("kill points from seed {seed}");
    let mut rng = Rng(seed);
    let add: Vec<&str> = add
        .iter()
        .map(|p| p.to_str().expect("utf-8 path"))
        .collect();
    let start = [
        "--window-kib",
        "256",
        "--raid-devices",
        "6",
        "--add",
        add[0],
        "--add",
        add[1],
    ];
    // Killed right after the superblocks said "reshape at 0": the first
    // window may be half written.
    assert!(grow_killed(
        &start,
        &members[..4],
        0,
        Duration::from_micros(300)
    ));
    // Mid-reshape the array is not served; the refusal says how to finish.
    let out = umd().arg("run").args(&members).output().expect("umd run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reshape is in progress") && err.contains("--continue"),
        "{err}"
    );
    let resume = ["--continue", "--window-kib", "256"];
    // Early, random and late checkpoints, with a random delay so the kill
    // lands anywhere in the next window (or its superblock round).
    let mut killed = 1;
    for checkpoints in [
        1,
        2,
        5 + rng.below(10) as usize,
        20 + rng.below(20) as usize,
        60,
    ] {
        let delay = Duration::from_micros(rng.below(4000));
        let was_killed = grow_killed(&resume, &members, checkpoints, delay);
        // The half-reshaped array reads the same data, through both shapes.
        let back = cat(&members);
        assert!(
            back == grown(&data, back.len())[..back.len()],
            "after a kill at checkpoint {checkpoints} + {delay:?}, the array reads wrong"
        );
        killed += usize::from(was_killed);
        if !was_killed {
            break;
        }
    }
    assert!(killed >= 3, "the grow was killed only {killed} times");
    grow_ok(&resume, &members);
    let back = cat(&members);
    assert_eq!(
        back.len(),
        data.len() * 2,
        "six raid6 members hold twice four's data"
    );
    assert!(
        back == grown(&data, back.len()),
        "the resumed grow lost data"
    );
    // Resuming a finished grow has nothing left to do.
    let out = umd()
        .arg("grow")
        .arg("--continue")
        .args(&members)
        .output()
        .expect("umd grow");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
}

#[test]
fn grow_without_room_before_the_data_is_refused() {
    let dir = TempDir::new("reshape-room");
    let members = sparse_members(dir.path(), 4, 8);
    support::create(
        &members[..3],
        &[
            "--assume-clean",
            "--level",
            "5",
            "--raid-devices",
            "3",
            "--metadata",
            "1.0",
        ],
    );
    let out = umd()
        .args(["grow", "--raid-devices", "4", "--add"])
        .arg(&members[3])
        .args(&members[..3])
        .output()
        .expect("umd grow");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no room before it"), "{err}");
    // Nothing was written to the device that was to be added.
    let added = std::fs::read(&members[3]).expect("read");
    assert!(added.iter().all(|&b| b == 0));
}

#[test]
fn chunk_and_layout_changes_keep_every_byte() {
    // raid5: 64 KiB -> 128 KiB chunks and a new layout, while adding a member.
    let dir = TempDir::new("reshape-chunk");
    let (members, data) = raid5_and_one_more(&dir, 73);
    let (old, add) = members.split_at(3);
    let add_path = add[0].to_str().expect("utf-8 path");
    grow_ok(
        &[
            "--raid-devices",
            "4",
            "--add",
            add_path,
            "--chunk",
            "128",
            "--layout",
            "right-asymmetric",
            "--window-kib",
            "512",
        ],
        old,
    );
    let back = cat(&members);
    assert_eq!(back.len(), data.len() / 2 * 3);
    assert!(
        back == grown(&data, back.len()),
        "raid5 reads wrong after the reshape"
    );
    let text = mdadm_examine(&members[0]);
    assert_eq!(
        examine_field(&text, "Chunk Size").as_deref(),
        Some("128K"),
        "{text}"
    );
    assert_eq!(
        examine_field(&text, "Layout").as_deref(),
        Some("right-asymmetric"),
        "{text}"
    );

    // raid6, same members: 64 KiB -> 32 KiB chunks only.
    let dir = TempDir::new("reshape-chunk6");
    let members = sparse_members(dir.path(), 4, 16);
    let data = filled_array(
        dir.path(),
        &members,
        &["--level", "6", "--raid-devices", "4", "--chunk", "64"],
        74,
    );
    grow_ok(&["--chunk", "32"], &members);
    let back = cat(&members);
    assert!(back == data, "raid6 reads wrong after the chunk change");
    let text = mdadm_examine(&members[0]);
    assert_eq!(
        examine_field(&text, "Chunk Size").as_deref(),
        Some("32K"),
        "{text}"
    );
}

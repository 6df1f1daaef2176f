//! Linux as referee for external metadata: DDF containers that mdadm made in
//! the VM (a raid1 and a raid5 volume each) are run by `umd run` with its
//! `umd mon` and written through NBD. One container is stopped cleanly, the
//! other killed with SIGKILL while dirty. Back in the VM, mdadm must read
//! the first as consistent and the second as not consistent, the kernel
//! must assemble both under mdmon (resyncing the second), its `check` must
//! find no mismatch, and every volume must hold exactly what umd wrote.

#[allow(dead_code)] // the pool of workers is for oracle_write
#[path = "oracle_write/boot.rs"]
mod boot;
#[path = "oracle/locate.rs"]
mod locate;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{pseudo_random, require_tool, run_ok, sha256_hex, Running};

/// Member size: DDF keeps its metadata in the last 32 MiB.
const DISK_MIB: u64 = 64;
/// The volumes mdadm creates in each container (create.sh), with their sizes.
const VOLUMES: [(&str, u64); 2] = [("r1", 8 << 20), ("r5", 16 << 20)];

/// One md-vm boot on `disks`; the guest's output, or a failure message.
fn vm(md_vm: &Path, script: &Path, work: &Path, disks: &[PathBuf]) -> String {
    let snap = work.join(format!(
        "snapshot-{}",
        script
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    ));
    boot::snapshot(disks, &snap).expect("snapshot");
    fs::write(work.join("plan.txt"), "").expect("plan file");
    let restore = || boot::restore_snapshot(disks, &snap);
    let (out, secs) = boot::boot(md_vm, script, work, disks, &restore)
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    eprintln!("oracle_external: {} took {secs:.1} s", script.display());
    out
}

/// The VD states `mdadm --examine` shows on the host, by volume name.
fn host_vd_states(disk: &Path) -> BTreeMap<String, String> {
    let out = run_ok(Command::new("mdadm").arg("--examine").arg(disk));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names = BTreeMap::new();
    let mut states = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if let Some(i) = key.strip_prefix("Name[") {
            names.insert(i.to_owned(), value.trim().to_owned());
        } else if let Some(i) = key.strip_prefix("state[") {
            states.insert(i.to_owned(), value.trim().to_owned());
        }
    }
    names
        .into_iter()
        .filter_map(|(i, name)| states.get(&i).map(|s| (name, s.clone())))
        .collect()
}

/// Serve one container with umd (its own manager), write every volume
/// through NBD; returns the running array and the hash of each volume.
fn write_container(
    dir: &Path,
    disks: &[PathBuf],
    tag: &str,
) -> (Running, BTreeMap<String, String>) {
    let run = Running::start(dir, disks);
    let mut hashes = BTreeMap::new();
    for (i, (volume, bytes)) in VOLUMES.iter().enumerate() {
        let name = format!("{volume}{tag}");
        let ctl = |args: &[&str]| {
            run_ok(
                support::umd()
                    .arg("ctl")
                    .arg("--control")
                    .arg(&run.control)
                    .args(args),
            )
        };
        if tag == "b" {
            // Keep it dirty until the kill: no safe-mode clean mark.
            ctl(&["set", &format!("{i}/safe_mode_delay"), "60"]);
        }
        let data = pseudo_random(*bytes as usize, 0xddf0 + i as u64);
        let src = dir.join(format!("{name}.bin"));
        fs::write(&src, &data).expect("source data");
        let uri = format!("nbd+unix:///{name}?socket={}", run.nbd.display());
        run_ok(Command::new("nbdcopy").arg(&src).arg(&uri));
        hashes.insert(name, sha256_hex(&data));
    }
    (run, hashes)
}

#[test]
fn linux_reads_ddf_containers_that_umd_ran() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_external") else {
        return;
    };
    for tool in ["mdadm", "nbdcopy", "cp"] {
        require_tool(tool);
    }
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_external");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oracle-external-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).expect("work dir");
    let disks: Vec<PathBuf> = (0..6).map(|i| work.join(format!("d{i}.img"))).collect();
    for d in &disks {
        fs::File::create(d)
            .and_then(|f| f.set_len(DISK_MIB << 20))
            .expect("disk file");
    }
    let made = vm(&md_vm, &tests.join("create.sh"), &work, &disks);
    assert!(
        made.contains("created"),
        "mdadm could not make the containers:\n{made}"
    );

    // Container a: written, stopped cleanly.
    let dir_a = work.join("a");
    fs::create_dir_all(&dir_a).expect("dir a");
    let (run_a, mut want) = write_container(&dir_a, &disks[..3], "a");
    run_a.stop();
    for (name, state) in host_vd_states(&disks[0]) {
        assert!(
            state.contains("Consistent") && !state.contains("Not Consistent"),
            "{name} after a clean stop: {state}"
        );
    }
    // Container b: written, killed while dirty.
    let dir_b = work.join("b");
    fs::create_dir_all(&dir_b).expect("dir b");
    let (run_b, hashes_b) = write_container(&dir_b, &disks[3..], "b");
    run_b.kill9();
    want.extend(hashes_b);
    let host_b = host_vd_states(&disks[3]);
    assert_eq!(host_b.len(), VOLUMES.len(), "{host_b:?}");
    for (name, state) in &host_b {
        assert!(
            state.contains("Not Consistent"),
            "{name} after kill -9: {state}"
        );
    }

    let out = vm(&md_vm, &tests.join("verify.sh"), &work, &disks);
    assert!(out.contains("verified"), "verify script failed:\n{out}");
    assert!(out.contains("mdmon running"), "no mdmon in the VM:\n{out}");
    let mut problems = Vec::new();
    let examined = out
        .lines()
        .filter(|l| l.starts_with("examine ") && l.contains("state["))
        .count();
    assert_eq!(examined, 2 * VOLUMES.len(), "VD states missing:\n{out}");
    for line in out.lines().filter(|l| l.starts_with("examine ")) {
        let dirty = line.contains("Not Consistent");
        let b_disk = line.starts_with("examine /dev/vdd");
        if line.contains("state[") && dirty != b_disk {
            problems.push(format!("kernel's mdadm reads: {line}"));
        }
    }
    for (name, hash) in &want {
        let volume = out
            .lines()
            .find(|l| l.starts_with(&format!("volume {name} ")))
            .unwrap_or_else(|| panic!("no result for {name}:\n{out}"));
        let fields: BTreeMap<&str, &str> = volume
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        if fields.get("sha256") != Some(&hash.as_str()) {
            problems.push(format!("{name}: the kernel reads other data: {volume}"));
        }
        if fields.get("mismatch_cnt") != Some(&"0") {
            problems.push(format!("{name}: check found mismatches: {volume}"));
        }
    }
    for name in ["r1a", "r5a"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("assembled {name} ")))
            .unwrap_or("");
        if !line.contains("state=read-auto") || !line.contains("resync_start=none") {
            problems.push(format!("{name} not assembled clean: {line}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nguest output:\n{out}",
        problems.join("\n")
    );
    let _ = fs::remove_dir_all(&work);
}

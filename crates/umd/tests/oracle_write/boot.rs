//! Running md-vm for the write-direction test: locating the harness, one boot with retries
//! of hung VMs, snapshots of the disks for those retries, and a small worker pool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Where md-vm sits relative to this crate when `UMD_ORACLE` is not set.
/// Kill a VM that runs longer than this (a healthy boot takes about a minute).
const VM_TIMEOUT_SECS: u32 = 300;
/// Boots before giving up: a guest kernel that stalls at boot under software emulation
/// ends in exit 124; such a boot is retried on the images as they were before it.
const VM_ATTEMPTS_MAX: u32 = 3;
/// md-vm's exit statuses for "the VM, not the script, failed" (its README).
const VM_TIMED_OUT: i32 = 124;
const VM_FAILED: i32 = 125;
/// Host workers running at once: the machine has two cores.
const PARALLEL: usize = 2;
/// One md-vm boot, retried when the VM (not the script) failed; `restore` puts the disks back
/// as they were before the first attempt. Returns the guest output and the wall seconds.
pub(crate) fn boot(
    md_vm: &Path,
    script: &Path,
    dir: &Path,
    disks: &[PathBuf],
    restore: &dyn Fn() -> Result<(), String>,
) -> Result<(String, f64), String> {
    let accel = std::env::var("UMD_ORACLE_ACCEL").unwrap_or_else(|_| "tcg".to_string());
    for attempt in 1..=VM_ATTEMPTS_MAX {
        let start = Instant::now();
        let out = Command::new(md_vm)
            .arg("--quiet")
            .args(["--accel", &accel])
            .args(["--timeout", &VM_TIMEOUT_SECS.to_string()])
            .arg("--script")
            .arg(script)
            .arg("--add")
            .arg(dir.join("plan.txt"))
            .arg("--console")
            .arg(dir.join("console.log"))
            .arg("--")
            .args(disks)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", md_vm.display()))?;
        let secs = start.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let log = dir.join("vm-output.txt");
        fs::write(&log, &stdout).map_err(|e| format!("{}: {e}", log.display()))?;
        let code = out.status.code();
        if matches!(code, Some(0 | 1)) {
            return Ok((stdout, secs));
        }
        let err = format!(
            "md-vm exited with {} after {secs:.1} s (output in {}): {}",
            out.status,
            log.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if !matches!(code, Some(VM_TIMED_OUT | VM_FAILED)) || attempt == VM_ATTEMPTS_MAX {
            return Err(err);
        }
        eprintln!("oracle_write: boot attempt {attempt} failed ({err}); retrying");
        restore()?;
    }
    unreachable!("the last attempt returns")
}

/// Runs `jobs` on [`PARALLEL`] threads; results in job order.
pub(crate) fn parallel<J: Sync, R: Send>(jobs: &[J], f: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(j) else { break };
                let r = f(job);
                results.lock().expect("no poisoned lock").push((j, r));
            });
        }
    });
    let mut results = results.into_inner().expect("no poisoned lock");
    results.sort_by_key(|(j, _)| *j);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Copies the disks of a verify boot aside, so a retried boot starts from them again.
pub(crate) fn snapshot(disks: &[PathBuf], to: &Path) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for (i, d) in disks.iter().enumerate() {
        let dst = to.join(format!("{i}.img"));
        let st = Command::new("cp")
            .arg("--sparse=always")
            .arg(d)
            .arg(&dst)
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if !st.success() {
            return Err(format!("cp {} {}: {st}", d.display(), dst.display()));
        }
    }
    Ok(())
}

pub(crate) fn restore_snapshot(disks: &[PathBuf], from: &Path) -> Result<(), String> {
    for (i, d) in disks.iter().enumerate() {
        let src = from.join(format!("{i}.img"));
        let st = Command::new("cp")
            .arg("--sparse=always")
            .arg(&src)
            .arg(d)
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if !st.success() {
            return Err(format!("cp {} {}: {st}", src.display(), d.display()));
        }
    }
    Ok(())
}

//! Finding the kernel oracle (`md-vm`) for the oracle tests, or saying why not.
//!
//! Shared by `oracle.rs` and `oracle_write.rs`. The tests fail loudly when the
//! harness or its dependencies are missing; they skip only when
//! `UMD_SKIP_ORACLE=1` says so (style R19).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where md-vm sits relative to this crate when `UMD_ORACLE` is not set.
const DEFAULT_ORACLE_DIR: &str = "../../../shared/oracle";

/// The md-vm script, or `None` when `UMD_SKIP_ORACLE=1`; panics naming what
/// is missing otherwise.
pub(crate) fn oracle_or_skip(test: &str) -> Option<PathBuf> {
    if std::env::var("UMD_SKIP_ORACLE").as_deref() == Ok("1") {
        eprintln!("{test}: skipped because UMD_SKIP_ORACLE=1");
        return None;
    }
    match locate_oracle() {
        Ok(p) => Some(p),
        Err(e) => panic!("kernel oracle unavailable: {e}\n(set UMD_SKIP_ORACLE=1 to skip)"),
    }
}

/// The md-vm script path, or the reasons the oracle cannot run.
fn locate_oracle() -> Result<PathBuf, String> {
    let dir = std::env::var_os("UMD_ORACLE").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ORACLE_DIR),
        PathBuf::from,
    );
    let md_vm = dir.join("md-vm");
    if !md_vm.is_file() {
        return Err(format!(
            "{} not found (set UMD_ORACLE to its directory)",
            md_vm.display()
        ));
    }
    // md-vm checks qemu, the kernel, busybox-static and mdadm itself and names what is missing.
    let out = Command::new(&md_vm)
        .args(["--quiet", "--build-only"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", md_vm.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --build-only failed: {}",
            md_vm.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(md_vm)
}

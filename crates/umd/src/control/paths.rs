//! Where control sockets live: one per running array, `<run dir>/<array name>.ctl`.
//!
//! A fixed, per-user place lets `umd ctl` and `umd status` find running arrays without
//! being told, as /sys/block/md* does for the kernel. The directory is private (0700):
//! the socket's own mode and the server's peer check are further fences.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::PathBuf;

/// Environment variable overriding the run directory (tests, several instances).
pub const RUN_DIR_ENV: &str = "UMD_RUN_DIR";

/// The run directory when umd runs as root, beside mdadm's /run/mdadm.
pub const ROOT_RUN_DIR: &str = "/run/umd";

/// File name suffix of a control socket.
pub const CONTROL_SUFFIX: &str = "ctl";

/// Permissions of the run directory: owner only.
const RUN_DIR_MODE: u32 = 0o700;

/// The run directory: `$UMD_RUN_DIR` if set, else `/run/umd` for root, else
/// `$XDG_RUNTIME_DIR/umd`, else `/tmp/umd-<uid>`. Does not create it.
#[must_use]
pub fn run_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(RUN_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        return PathBuf::from(ROOT_RUN_DIR);
    }
    // XDG says a relative value must be ignored.
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
    {
        return dir.join("umd");
    }
    std::env::temp_dir().join(format!("umd-{}", euid.as_raw()))
}

/// Create the run directory (mode 0700) if missing and return it.
pub fn create_run_dir() -> io::Result<PathBuf> {
    let dir = run_dir();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(RUN_DIR_MODE)
        .create(&dir)?;
    Ok(dir)
}

/// The control socket path of array `array_name`. A `/` in the name (md names may be
/// `host:name`, never paths) is replaced so the socket stays inside the run directory.
#[must_use]
pub fn default_control_path(array_name: &str) -> PathBuf {
    let safe: String = array_name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    run_dir().join(format!("{safe}.{CONTROL_SUFFIX}"))
}

/// Every control socket in the run directory, sorted; empty if there is no directory.
#[must_use]
pub fn list_control_sockets() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(run_dir()) else {
        return Vec::new();
    };
    let mut sockets: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == CONTROL_SUFFIX))
        .collect();
    sockets.sort();
    sockets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_run_dir() {
        let path = default_control_path("../etc/x");
        assert_eq!(path.parent(), Some(run_dir().as_path()));
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some(".._etc_x.ctl")
        );
    }
}

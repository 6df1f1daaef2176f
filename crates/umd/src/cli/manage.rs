//! `umd manage`: fail, remove or add members of a running array, as
//! `mdadm --manage` does, through the array's control socket.
//!
//! Why a verb of its own: each action is one md attribute store, but the
//! order and the waiting are mdadm's. `--fail` writes `faulty` to the
//! member's `state`; `--remove` writes `remove`, which md refuses (EBUSY)
//! until its md thread has taken a failed member out of its slot, so it is
//! retried for a bounded time while the member is faulty; `--add` writes
//! the file's absolute path to `new_dev` (the server opens it), after which
//! the array activates the spare and rebuilds onto it by itself.

use super::ctl::choose_socket;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use umd::control::client::{ClientError, Session};
use umd::control::paths;
use umd_engine::Errno;

/// How long `--remove` waits for a failed member to leave its slot.
const REMOVE_WAIT: Duration = Duration::from_secs(5);
/// Pause between `--remove` attempts.
const REMOVE_RETRY: Duration = Duration::from_millis(50);

/// Arguments of `umd manage`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("action").required(true)
    .args(["fail", "remove", "add"])))]
pub(crate) struct ManageArgs {
    /// The array: its control socket, or an array name in the run
    /// directory; by default the only array running.
    array: Option<PathBuf>,
    /// Mark a member failed (its name as in `dev-NAME`, or its path).
    #[arg(long, value_name = "DEV")]
    fail: Option<PathBuf>,
    /// Take a failed or spare member out of the array.
    #[arg(long, value_name = "DEV")]
    remove: Option<PathBuf>,
    /// Add a device or image file as a spare (rebuilt onto when a slot is free).
    #[arg(long, value_name = "FILE")]
    add: Option<PathBuf>,
}

#[allow(clippy::needless_pass_by_value)] // clap hands each verb its arguments by value
pub(crate) fn run(args: ManageArgs) -> Result<ExitCode, String> {
    let path = socket_path(args.array.as_deref())?;
    let mut session = Session::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dev) = &args.fail {
        let name = member_name(&mut session, dev)?;
        store(&mut session, &format!("dev-{name}/state"), "faulty")?;
        eprintln!("umd manage: set {name} faulty");
    }
    if let Some(dev) = &args.remove {
        let name = member_name(&mut session, dev)?;
        remove(&mut session, &name)?;
        eprintln!("umd manage: removed {name}");
    }
    if let Some(file) = &args.add {
        let absolute =
            std::fs::canonicalize(file).map_err(|e| format!("--add {}: {e}", file.display()))?;
        let value = absolute
            .to_str()
            .ok_or_else(|| format!("--add {}: not a UTF-8 path", absolute.display()))?;
        store(&mut session, "new_dev", value)?;
        eprintln!("umd manage: added {}", absolute.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The control socket for `array` (module doc).
fn socket_path(array: Option<&Path>) -> Result<PathBuf, String> {
    match array {
        None => choose_socket(&paths::list_control_sockets(), &paths::run_dir()),
        Some(p) if p.exists() => Ok(p.to_path_buf()),
        Some(p) => {
            let named = paths::default_control_path(&p.to_string_lossy());
            if named.exists() {
                Ok(named)
            } else {
                Err(format!(
                    "{}: no such control socket, nor an array of that name in {}",
                    p.display(),
                    paths::run_dir().display()
                ))
            }
        }
    }
}

/// The member's name in `dev-NAME`: `dev` itself, or its file name; it
/// must be a member of the array.
fn member_name(session: &mut Session, dev: &Path) -> Result<String, String> {
    let name = dev
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: not a member name", dev.display()))?;
    match session.get(&format!("dev-{name}/state")) {
        Ok(_) => Ok(name),
        Err(ClientError::Engine(e)) if e.errno == Errno::ENOENT => {
            Err(format!("{name}: not a member of this array"))
        }
        Err(e) => Err(format!("dev-{name}/state: {e}")),
    }
}

fn store(session: &mut Session, attr: &str, value: &str) -> Result<(), String> {
    session
        .set(attr, value)
        .map_err(|e| format!("{attr} <- {value}: {e}"))
}

/// `remove`, retried while md still holds the failed member in its slot.
fn remove(session: &mut Session, name: &str) -> Result<(), String> {
    let attr = format!("dev-{name}/state");
    let deadline = Instant::now() + REMOVE_WAIT;
    loop {
        match session.set(&attr, "remove") {
            Ok(()) => return Ok(()),
            Err(ClientError::Engine(e)) if e.errno == Errno::EBUSY => {
                let state = session.get(&attr).unwrap_or_default();
                if !state.split(',').any(|w| w == "faulty") {
                    return Err(format!(
                        "{name}: EBUSY: an active member ({state}); fail it first with --fail"
                    ));
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{name}: EBUSY: still in its slot after {REMOVE_WAIT:?}"
                    ));
                }
                std::thread::sleep(REMOVE_RETRY);
            }
            Err(e) => return Err(format!("{attr} <- remove: {e}")),
        }
    }
}

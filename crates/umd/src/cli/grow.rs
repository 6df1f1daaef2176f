//! `umd grow`: change a running array's shape or stripe cache, as
//! `mdadm --grow` does, including mdadm's dance with the metadata manager.
//!
//! Why the dance: on an externally managed array a change that needs the
//! array dirty fails with EAGAIN until the manager has recorded the dirty
//! state (the founding rule, protocol.md §4.3). mdadm's `subarray_set_num`
//! therefore sets `safe_mode_delay` to 0 (so the array cannot drift back to
//! clean between attempts), writes, and on EAGAIN pings the manager (which
//! returns once the manager has acknowledged) and retries exactly once, then
//! restores the delay. umd does the same.
//!
//! Given member files instead of a running array, `umd grow` reshapes the
//! stopped array itself (`reshape.rs`).
//!
//! `raid_disks` of an externally managed array is refused: DDF metadata has
//! no record of a reshape, and mdadm refuses it for DDF too.

use super::ctl::choose_socket;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use umd::control::client::{ClientError, Session};
use umd::control::paths;
use umd::mon::socket::{client as mon_client, MonFiles};
use umd_engine::Errno;

/// How long the manager's ping may take (mdadm's client timeout).
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Arguments of `umd grow`.
#[derive(Debug, clap::Args)]
pub(crate) struct GrowArgs {
    /// The array's control socket; by default the only one in the run directory.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// For a container: the subarray to change, by index.
    #[arg(long)]
    subarray: Option<u32>,
    /// New number of slots: raid1 on a running array (an added slot starts
    /// empty, a removed slot must be empty); raid4/5/6 given as MEMBER...
    /// (with one --add per new slot).
    #[arg(long, value_name = "N")]
    raid_devices: Option<u32>,
    /// New `stripe_cache_size` (raid4/5/6), in stripes.
    #[arg(long, value_name = "N")]
    stripe_cache_size: Option<u32>,
    /// A blank device to add to a stopped raid4/5/6 array given as
    /// MEMBER... (repeat for several).
    #[arg(long, value_name = "FILE")]
    add: Vec<PathBuf>,
    /// Resume the reshape recorded on MEMBER... (every member, added ones too).
    #[arg(long = "continue")]
    resume: bool,
    /// New chunk size for a stopped raid4/5/6 given as MEMBER..., KiB.
    #[arg(long, value_name = "KIB")]
    chunk: Option<u32>,
    /// New layout for a stopped raid4/5/6 given as MEMBER... (names as
    /// `umd create --layout`).
    #[arg(long, value_name = "NAME")]
    layout: Option<String>,
    /// Largest window moved between two checkpoints, KiB (default 8192).
    #[arg(long, value_name = "KIB")]
    window_kib: Option<u64>,
    /// A stopped array's members: reshape them here instead of asking a
    /// running array.
    #[arg(value_name = "MEMBER")]
    members: Vec<PathBuf>,
}

#[allow(clippy::needless_pass_by_value)] // clap hands each verb its arguments by value
pub(crate) fn run(args: GrowArgs) -> Result<ExitCode, String> {
    if !args.members.is_empty() {
        return super::reshape::run(&super::reshape::OfflineGrow {
            members: &args.members,
            add: &args.add,
            raid_devices: args.raid_devices,
            window_kib: args.window_kib,
            chunk_kib: args.chunk,
            layout: args.layout.as_deref(),
        });
    }
    if args.resume || !args.add.is_empty() || args.chunk.is_some() || args.layout.is_some() {
        return Err(
            "--continue, --add, --chunk and --layout take the array's members: umd grow [--add FILE]... \
             MEMBER..."
                .to_string(),
        );
    }
    let path = match &args.control {
        Some(path) => path.clone(),
        None => choose_socket(&paths::list_control_sockets(), &paths::run_dir())?,
    };
    let mut session = Session::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let container = session.get("level").is_ok_and(|l| l == "container");
    let prefix = match (container, args.subarray) {
        (true, Some(n)) => format!("{n}/"),
        (true, None) => {
            return Err(format!(
                "{}: a container: choose --subarray",
                path.display()
            ))
        }
        (false, Some(_)) => return Err(format!("{}: --subarray: not a container", path.display())),
        (false, None) => String::new(),
    };
    let version = get(&mut session, &format!("{prefix}metadata_version"))?;
    let manager = external_container(&version);
    let mut changes = Vec::new();
    if let Some(n) = args.raid_devices {
        if manager.is_some() {
            return Err(format!(
                "{prefix}raid_disks: {version}: the metadata cannot record a reshape \
                 (mdadm refuses this for DDF too)"
            ));
        }
        changes.push(("raid_disks", n));
    }
    if let Some(n) = args.stripe_cache_size {
        changes.push(("stripe_cache_size", n));
    }
    if changes.is_empty() {
        return Err("nothing to change: give --raid-devices or --stripe-cache-size".to_owned());
    }
    for (attr, n) in changes {
        let attr = format!("{prefix}{attr}");
        let before = get(&mut session, &attr)?;
        match &manager {
            Some(container) => set_external(&mut session, &prefix, &attr, n, container)?,
            None => {
                set(&mut session, &attr, n).map_err(|e| explain_busy(&mut session, &prefix, e))?;
            }
        }
        eprintln!("umd grow: {attr}: {before} -> {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// md refuses a geometry change while a sync runs (EBUSY); say which sync,
/// how far it is, and what to do, rather than the bare errno.
fn explain_busy(session: &mut Session, prefix: &str, error: String) -> String {
    if !error.contains("EBUSY") {
        return error;
    }
    let action = session
        .get(&format!("{prefix}sync_action"))
        .unwrap_or_default();
    if matches!(action.as_str(), "" | "idle" | "frozen") {
        return error;
    }
    let done = session
        .get(&format!("{prefix}sync_completed"))
        .unwrap_or_default();
    format!(
        "{error}: a {action} is running ({done} sectors done); \
         wait for it to finish (`umd wait`) and run this again"
    )
}

/// The container whose manager owns `metadata_version`, if external.
fn external_container(version: &str) -> Option<String> {
    let rest = version.strip_prefix("external:")?;
    let rest = rest.strip_prefix('/').or_else(|| rest.strip_prefix('-'))?;
    rest.split('/').next().map(str::to_owned)
}

fn get(session: &mut Session, attr: &str) -> Result<String, String> {
    session.get(attr).map_err(|e| format!("{attr}: {e}"))
}

fn set(session: &mut Session, attr: &str, n: u32) -> Result<(), String> {
    session
        .set(attr, &n.to_string())
        .map_err(|e| format!("{attr}: {e}"))
}

/// mdadm's `subarray_set_num` (module doc).
fn set_external(
    session: &mut Session,
    prefix: &str,
    attr: &str,
    n: u32,
    container: &str,
) -> Result<(), String> {
    let delay_attr = format!("{prefix}safe_mode_delay");
    let delay = get(session, &delay_attr)?;
    session
        .set(&delay_attr, "0")
        .map_err(|e| format!("{delay_attr}: {e}"))?;
    let mut result = session.set(attr, &n.to_string());
    if matches!(&result, Err(ClientError::Engine(e)) if e.errno == Errno::EAGAIN) {
        eprintln!("umd grow: {attr}: EAGAIN: waiting for the metadata manager of {container}");
        let socket = MonFiles::socket_path_in(&MonFiles::default_dir(), container);
        result = match ping(&socket) {
            Ok(()) => session.set(attr, &n.to_string()),
            Err(e) => {
                restore(session, &delay_attr, &delay);
                return Err(format!("{attr}: EAGAIN, and {e}"));
            }
        };
    }
    restore(session, &delay_attr, &delay);
    result.map_err(|e| format!("{attr}: {e}"))
}

fn ping(socket: &Path) -> Result<(), String> {
    mon_client::ping_monitor(socket, PING_TIMEOUT)
        .map(|_| ())
        .map_err(|e| format!("no answer from the metadata manager: {e}"))
}

fn restore(session: &mut Session, delay_attr: &str, delay: &str) {
    if let Err(e) = session.set(delay_attr, delay) {
        eprintln!("umd grow: {delay_attr}: could not restore {delay}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_versions_name_their_container() {
        assert_eq!(
            external_container("external:/ddf-1234/0").as_deref(),
            Some("ddf-1234")
        );
        assert_eq!(
            external_container("external:-ddf-1234/1").as_deref(),
            Some("ddf-1234")
        );
        assert_eq!(external_container("external:ddf"), None);
        assert_eq!(external_container("1.2"), None);
    }
}

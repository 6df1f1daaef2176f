//! `umd mon`: run the external metadata manager for a container that
//! `umd run` serves (mdmon, protocol.md §6).
//!
//! It claims the container's manager socket and pid file in the run
//! directory (refusing if another manager answers there, unless
//! `--takeover`: then it replaces the files first, tells the old manager to
//! go, and waits until it has), finds the container's disks through the
//! control socket (`dev-NAME/block`), loads their metadata, and runs the
//! monitor loop until every subarray has stopped, the engine has gone away,
//! or a signal asks it to stop. SIGTERM and SIGINT make every array clean
//! first (as mdmon does at shutdown), except after a takeover: then the new
//! manager owns the arrays and this one leaves at once.

use nix::sys::signal::{kill, Signal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Weak};
use std::time::Duration;
use umd::control::client::Session;
use umd::mon::disks::Disks;
use umd::mon::load_handler;
use umd::mon::monitor::{MonShared, Monitor, Stop};
use umd::mon::socket::{
    wait_gone, MonConfig, MonFiles, MonHandle, MonServer, PassTimedOut, PingTarget,
    TAKEOVER_WAIT_DEFAULT,
};
use umd_engine::{EngineError, Errno};

/// Arguments of `umd mon`.
#[derive(Debug, clap::Args)]
pub(crate) struct MonArgs {
    /// The container's control socket, as `umd run` printed it.
    #[arg(long, value_name = "PATH")]
    control: PathBuf,
    /// Replace the manager already running for this container (mdmon
    /// --takeover): the arrays stay managed throughout.
    #[arg(long)]
    takeover: bool,
}

/// The manager socket's view of the monitor.
struct Pings(Arc<MonShared>);

impl PingTarget for Pings {
    fn update(&self, blob: Vec<u8>) -> Result<(), EngineError> {
        Err(EngineError::new(
            Errno::EOPNOTSUPP,
            format!("metadata update of {} bytes: not supported", blob.len()),
        ))
    }

    fn ping_manager(&self) {
        self.0.kick();
    }

    fn wait_monitor_pass(&self, timeout: Duration) -> Result<(), PassTimedOut> {
        if self.0.wait_pass(timeout) {
            Ok(())
        } else {
            Err(PassTimedOut)
        }
    }
}

#[allow(clippy::needless_pass_by_value)] // clap hands each verb its arguments by value
pub(crate) fn run(args: MonArgs) -> Result<ExitCode, String> {
    let at = args.control.display().to_string();
    let mut session = Session::open(&args.control).map_err(|e| format!("{at}: {e}"))?;
    let version = session
        .get("metadata_version")
        .map_err(|e| format!("{at}: metadata_version: {e}"))?;
    let level = session.get("level").unwrap_or_default();
    let Some(format) = version.strip_prefix("external:") else {
        return Err(format!(
            "{at}: metadata_version is {version:?}: not externally managed metadata"
        ));
    };
    if level != "container" || format.starts_with('/') || format.starts_with('-') {
        return Err(format!(
            "{at}: not a container (level {level:?}, metadata_version {version:?})"
        ));
    }
    let mut list = Vec::new();
    for attr in session.list().map_err(|e| format!("{at}: {e}"))? {
        let Some(name) = attr
            .strip_prefix("dev-")
            .and_then(|a| a.strip_suffix("/block"))
        else {
            continue;
        };
        let path = session
            .get(&attr)
            .map_err(|e| format!("{at}: {attr}: {e}"))?;
        list.push((name.to_owned(), PathBuf::from(path)));
    }
    let container = container_name(&mut session)?;
    drop(session);
    let shared = Arc::new(MonShared::default());
    let handle = claim(&container, args.takeover, &shared)?;
    spawn_signal_thread(shared.clone(), Arc::downgrade(&handle))?;
    // Loaded only now: after a takeover, the old manager has written its
    // last metadata and is gone.
    // A disk given to the container while no manager ran holds no DDF yet:
    // it is offered to the handler at the first pass, as a new disk.
    list.retain(|(_, path)| holds_ddf(path));
    let disks = Disks::open(&list)?;
    let handler = load_handler(format, &disks)?;
    let monitor = Monitor::new(&args.control, handler, disks, shared)?;
    eprintln!(
        "umd mon: managing {container} at {at} ({format}, {} disks)",
        list.len()
    );
    let outcome = monitor.run();
    drop(handle);
    outcome?;
    eprintln!("umd mon: {container}: done");
    Ok(ExitCode::SUCCESS)
}

/// Whether the device at `path` carries DDF metadata (unreadable counts as
/// yes: loading it then names the error).
fn holds_ddf(path: &std::path::Path) -> bool {
    let Ok(file) = umd_io::MemberFile::open_read_only(path) else {
        return true;
    };
    let mut read =
        |offset: u64, buf: &mut [u8]| file.read_exact_at(offset, buf).map_err(|e| e.source);
    !matches!(
        umd_formats::ddf::probe(file.len_bytes(), &mut read),
        Ok(None)
    )
}

/// The container's name: what its subarrays' `metadata_version` says after
/// `external:/` (or `external:-`).
pub(crate) fn container_name(session: &mut Session) -> Result<String, String> {
    let subarrays = session.get("subarrays").map_err(|e| e.to_string())?;
    let first = subarrays
        .split_whitespace()
        .next()
        .ok_or("the container serves no subarray")?;
    let version = session
        .get(&format!("{first}/metadata_version"))
        .map_err(|e| e.to_string())?;
    version
        .strip_prefix("external:")
        .and_then(|v| v.get(1..))
        .and_then(|v| v.split('/').next())
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("subarray {first}: metadata_version {version:?} names no container"))
}

/// Claim the manager socket and pid file; with `takeover`, make the old
/// manager leave and wait until it has (protocol.md §6.6).
fn claim(
    container: &str,
    takeover: bool,
    shared: &Arc<MonShared>,
) -> Result<Arc<MonHandle>, String> {
    let dir = MonFiles::default_dir();
    let claimed = MonFiles::claim(&dir, container, takeover).map_err(|e| e.to_string())?;
    let pings = Arc::new(Pings(shared.clone()));
    let handle = MonServer::new(claimed.files, pings, MonConfig::default())
        .and_then(MonServer::spawn)
        .map_err(|e| format!("manager socket: {e}"))?;
    if let Some(old) = claimed.previous.filter(|p| *p != nix::unistd::getpid()) {
        eprintln!("umd mon: {container}: taking over from pid {old}");
        let _ = kill(old, Signal::SIGTERM);
        if let Err(e) = wait_gone(old, TAKEOVER_WAIT_DEFAULT) {
            eprintln!("umd mon: {container}: {e}; going on");
        }
    }
    Ok(Arc::new(handle))
}

/// SIGTERM/SIGINT: make the arrays clean, then exit (mdmon's shutdown); or,
/// once another manager took over, leave at once.
fn spawn_signal_thread(shared: Arc<MonShared>, handle: Weak<MonHandle>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("signal handler: {e}"))?;
    std::thread::Builder::new()
        .name("umd-mon-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                let replaced = handle.upgrade().is_some_and(|h| h.taken_over());
                shared.request_stop(if replaced { Stop::Now } else { Stop::WhenClean });
            }
        })
        .map(|_| ())
        .map_err(|e| format!("signal thread: {e}"))
}

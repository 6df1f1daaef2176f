//! `umd mon`: run the external metadata manager for a container that
//! `umd run` serves (mdmon, protocol.md §6).
//!
//! It finds the container's disks through the control socket
//! (`dev-NAME/block`), loads their metadata, and runs the monitor loop
//! until every subarray has stopped, the engine has gone away, or a signal
//! asks it to stop: SIGTERM and SIGINT make every array clean first (as
//! mdmon does at shutdown).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use umd::control::client::Session;
use umd::mon::disks::Disks;
use umd::mon::load_handler;
use umd::mon::monitor::{MonShared, Monitor, Stop};

/// Arguments of `umd mon`.
#[derive(Debug, clap::Args)]
pub(crate) struct MonArgs {
    /// The container's control socket, as `umd run` printed it.
    #[arg(long, value_name = "PATH")]
    control: PathBuf,
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
    drop(session);
    let disks = Disks::open(&list)?;
    let handler = load_handler(format, &disks)?;
    let shared = Arc::new(MonShared::default());
    spawn_signal_thread(shared.clone())?;
    let monitor = Monitor::new(&args.control, handler, disks, shared)?;
    eprintln!("umd mon: managing {at} ({format}, {} disks)", list.len());
    monitor.run()?;
    eprintln!("umd mon: {at}: done");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM/SIGINT: make the arrays clean, then exit (mdmon's shutdown).
fn spawn_signal_thread(shared: Arc<MonShared>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("signal handler: {e}"))?;
    std::thread::Builder::new()
        .name("umd-mon-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                shared.request_stop(Stop::WhenClean);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("signal thread: {e}"))
}

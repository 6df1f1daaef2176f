//! `umd sync ARRAY ACTION [--wait]` and `umd wait [ARRAY]`: start a sync
//! action (md's `echo ACTION > sync_action`) and follow a long operation to
//! its end with a progress bar, then print what it found.
//!
//! The bar reads the same attributes as `umd status` and `umd detail`
//! (`umd::control::progress`), polled at [`POLL_INTERVAL`]; it draws on
//! stderr only when that is a terminal, so scripts see just the result
//! lines on stdout: `mismatch_cnt N`, and for each member the raid6
//! syndromes located wrong blocks on, `dev-NAME/mismatches_located N`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use umd::control::client;
use umd::control::progress::Progress;

/// How often the bar re-reads the array.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Arguments of `umd sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    /// The array: its control socket, or its name in the run directory.
    array: String,
    /// md's `sync_action` word: check, repair, resync, recover, idle, frozen.
    action: String,
    /// Follow the action to its end with a progress bar, then print the result.
    #[arg(long)]
    wait: bool,
}

/// Arguments of `umd wait`.
#[derive(Debug, clap::Args)]
pub(crate) struct WaitArgs {
    /// The array: its control socket, or its name in the run directory; by
    /// default the only array running.
    array: Option<String>,
}

/// Run `umd sync`.
pub(crate) fn run_sync(args: &SyncArgs) -> Result<ExitCode, String> {
    let path = super::detail::resolve(Some(&args.array))?;
    client::set(&path, "sync_action", &args.action).map_err(|e| format!("sync_action: {e}"))?;
    if args.wait {
        follow(&path)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `umd wait`.
pub(crate) fn run_wait(args: &WaitArgs) -> Result<ExitCode, String> {
    let path = super::detail::resolve(args.array.as_deref())?;
    follow(&path)?;
    Ok(ExitCode::SUCCESS)
}

fn get(path: &Path, attr: &str) -> Result<String, String> {
    client::get(path, attr)
        .map(|v| v.trim().to_owned())
        .map_err(|e| format!("{attr}: {e}"))
}

/// Show a bar until `sync_action` is idle, then print the result lines.
fn follow(path: &Path) -> Result<(), String> {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {percent:>3}% {msg}")
            .map_err(|e| format!("progress bar template: {e}"))?
            .progress_chars("=>."),
    );
    loop {
        let action = get(path, "sync_action")?;
        if matches!(action.as_str(), "idle" | "frozen") {
            break;
        }
        let progress = Progress::read(
            &action,
            client::get(path, "curr_resync").ok().as_deref(),
            &get(path, "sync_completed")?,
            get(path, "sync_speed").ok().and_then(|s| s.parse().ok()),
        );
        bar.set_prefix(action);
        if let Some(p) = progress {
            bar.set_length(p.total_sectors / 2);
            bar.set_position(p.done_sectors / 2);
            let speed = p
                .speed_kib
                .map_or_else(String::new, |s| format!("{s}K/sec"));
            let finish = p
                .finish_text()
                .map_or_else(String::new, |f| format!(" finish={f}"));
            bar.set_message(format!(
                "({}/{} KiB) {speed}{finish}",
                p.done_sectors / 2,
                p.total_sectors / 2
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    bar.finish_and_clear();
    print_result(path)
}

fn print_result(path: &Path) -> Result<(), String> {
    let mut lines = vec![format!("mismatch_cnt {}", get(path, "mismatch_cnt")?)];
    let names = client::list(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for attr in names.iter().filter(|n| n.ends_with("/mismatches_located")) {
        let value = get(path, attr)?;
        if value != "0" {
            lines.push(format!("{attr} {value}"));
        }
    }
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{line}").map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    Ok(())
}

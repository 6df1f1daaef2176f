//! `umd status`: a /proc/mdstat-style summary of every array running under this user.
//!
//! Finds arrays by their control sockets in the run directory and renders them with
//! `umd::control::mdstat`, so the text matches what md users already read.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use umd::control::mdstat::{self, ArrayReport};
use umd::control::{client, paths};

/// Arguments of `umd status`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct StatusArgs {
    /// Print JSON (`{"personalities": [...], "arrays": [...]}`) instead of text.
    #[arg(long)]
    json: bool,
}

/// Run `umd status`; a socket that does not answer is a stale entry, not a failure.
pub(crate) fn run(args: StatusArgs) -> Result<ExitCode, String> {
    let reports: Vec<ArrayReport> = paths::list_control_sockets()
        .iter()
        .map(|path| report(path))
        .collect();
    let text = if args.json {
        let value = serde_json::json!({
            "personalities": mdstat::PERSONALITIES,
            "arrays": reports,
        });
        let mut text = serde_json::to_string_pretty(&value)
            .map_err(|e| format!("cannot encode status as JSON: {e}"))?;
        text.push('\n');
        text
    } else {
        mdstat::render(&reports)
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// One array's status, or why its socket is stale.
fn report(path: &Path) -> ArrayReport {
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let read = client::list(path)
        .and_then(|names| mdstat::read_array(&name, &names, |attr| client::get(path, attr)));
    match read {
        Ok(status) => ArrayReport::Running(status),
        Err(e) => ArrayReport::Stale {
            name,
            error: e.to_string(),
        },
    }
}

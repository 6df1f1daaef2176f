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
        .flat_map(|path| report(path))
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

/// The status of the array served at `path`, or of a container and each of
/// its subarrays (named `<container>/<index>`), or why the socket is stale.
fn report(path: &Path) -> Vec<ArrayReport> {
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let names = match client::list(path) {
        Ok(names) => names,
        Err(e) => return vec![stale(name, &e)],
    };
    let mut reports = vec![one(&name, &names, path, "")];
    let container = client::get(path, "level").is_ok_and(|l| l == "container");
    if container {
        let subarrays = client::get(path, "subarrays").unwrap_or_default();
        for index in subarrays.split_whitespace() {
            let prefix = format!("{index}/");
            let sub_names: Vec<String> = names
                .iter()
                .filter_map(|n| n.strip_prefix(&prefix))
                .map(str::to_owned)
                .collect();
            reports.push(one(&format!("{name}/{index}"), &sub_names, path, &prefix));
        }
    }
    reports
}

/// One array's status through `prefix` (empty for a plain array).
fn one(name: &str, names: &[String], path: &Path, prefix: &str) -> ArrayReport {
    let read = mdstat::read_array(name, names, |attr| {
        client::get(path, &format!("{prefix}{attr}"))
    });
    match read {
        Ok(status) => ArrayReport::Running(status),
        Err(e) => stale(name.to_owned(), &e),
    }
}

fn stale(name: String, error: &client::ClientError) -> ArrayReport {
    ArrayReport::Stale {
        name,
        error: error.to_string(),
    }
}

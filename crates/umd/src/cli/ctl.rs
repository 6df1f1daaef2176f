//! `umd ctl`: read, write, list and watch a running array's md attributes.
//!
//! The command-line face of the control interface, shaped like writing to
//! /sys/block/mdX/md/ATTR: a refused write prints md's errno by name and exits 1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use umd::control::{client, paths, ClientError};

/// Arguments of `umd ctl`.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {
    /// The array's control socket; by default the only one in the run directory.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    #[command(subcommand)]
    op: CtlOp,
}

#[derive(Debug, clap::Subcommand)]
enum CtlOp {
    /// Print one attribute's value (md's sysfs name: array_state, dev-sdb/state, ...).
    Get {
        /// Attribute name.
        attr: String,
    },
    /// Write one attribute, as `echo VALUE > /sys/block/mdX/md/ATTR` would.
    Set {
        /// Attribute name.
        attr: String,
        /// Value to store (md's words may start with '-': `-blocked`).
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print `ATTR VALUE` for each attribute now and on every change, until interrupted.
    Watch {
        /// Attribute names.
        #[arg(required = true)]
        attrs: Vec<String>,
    },
    /// Print every attribute name.
    List,
}

/// Run `umd ctl`; `Err` is one line naming the attribute and md's errno.
pub(crate) fn run(args: CtlArgs) -> Result<ExitCode, String> {
    let path = match args.control {
        Some(path) => path,
        None => choose_socket(&paths::list_control_sockets(), &paths::run_dir())?,
    };
    match args.op {
        CtlOp::Get { attr } => {
            let value = client::get(&path, &attr).map_err(|e| describe(&attr, &e))?;
            print_lines(&[value])?;
        }
        CtlOp::Set { attr, value } => {
            client::set(&path, &attr, &value).map_err(|e| describe(&attr, &e))?;
        }
        CtlOp::List => {
            let names = client::list(&path).map_err(|e| describe(&path.display(), &e))?;
            print_lines(&names)?;
        }
        CtlOp::Watch { attrs } => {
            let mut stdout = std::io::stdout().lock();
            let mut failed = None;
            let result = client::watch(&path, &attrs, |attr, value| {
                // One line per event, so a value spanning lines is joined with spaces.
                let value = value.trim_end().replace('\n', " ");
                match writeln!(stdout, "{attr} {value}").and_then(|()| stdout.flush()) {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            });
            result.map_err(|e| describe(&attrs.join(" "), &e))?;
            if let Some(e) = failed {
                return Err(format!("cannot write to stdout: {e}"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The one socket to use when none was named, or an error listing the choices.
pub(crate) fn choose_socket(sockets: &[PathBuf], run_dir: &Path) -> Result<PathBuf, String> {
    match sockets {
        [only] => Ok(only.clone()),
        [] => Err(format!(
            "no running array: no control socket in {}",
            run_dir.display()
        )),
        several => {
            let names: Vec<String> = several.iter().map(|p| p.display().to_string()).collect();
            Err(format!(
                "several arrays are running; choose one with --control: {}",
                names.join(", ")
            ))
        }
    }
}

/// `ATTR: ERRNO: message` for md's refusals, `ATTR: what failed` otherwise.
fn describe(what: &dyn std::fmt::Display, error: &ClientError) -> String {
    format!("{what}: {error}")
}

fn print_lines(lines: &[String]) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        let line = line.strip_suffix('\n').unwrap_or(line);
        writeln!(stdout, "{line}").map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use umd_engine::{EngineError, Errno};

    #[test]
    fn refusals_name_the_attribute_and_errno() {
        let error = ClientError::Engine(EngineError::new(Errno::EAGAIN, "manager must ack"));
        assert_eq!(
            describe(&"stripe_cache_size", &error),
            "stripe_cache_size: EAGAIN: manager must ack"
        );
    }

    #[test]
    fn socket_choice_needs_exactly_one() {
        let dir = Path::new("/run/umd");
        assert!(choose_socket(&[], dir).is_err_and(|e| e.contains("/run/umd")));
        let two = [dir.join("a.ctl"), dir.join("b.ctl")];
        let error = choose_socket(&two, dir).expect_err("two sockets are ambiguous");
        assert!(
            error.contains("a.ctl") && error.contains("b.ctl"),
            "{error}"
        );
        assert_eq!(choose_socket(&two[..1], dir), Ok(dir.join("a.ctl")));
    }
}

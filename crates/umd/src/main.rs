//! `umd`: Linux md software RAID in userspace.
//!
//! The binary is a thin front end: each verb lives in its own file under
//! `cli/`, parses nothing itself (clap does) and prints one line on stderr
//! naming the member or attribute at fault when it fails (product.md).
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// Where log verbosity comes from (`UMD_LOG=debug`, `UMD_LOG=umd_io=trace`,
/// tracing's filter syntax); warnings and errors are shown by default.
const LOG_ENV: &str = "UMD_LOG";

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("umd: {e}");
            ExitCode::FAILURE
        }
    }
}

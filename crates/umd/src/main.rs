//! `umd`: Linux md software RAID in userspace.
//!
//! The binary is a thin front end: each verb lives in its own file under
//! `cli/`, parses nothing itself (clap does) and prints one line on stderr
//! naming the member or attribute at fault when it fails (product.md).
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("umd: {e}");
            ExitCode::FAILURE
        }
    }
}

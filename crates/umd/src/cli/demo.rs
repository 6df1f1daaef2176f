//! `umd demo`: a self-contained demonstration on temporary files (filled in below).

use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(_dir: Option<&Path>) -> Result<ExitCode, String> {
    Err("demo: not built yet".into())
}

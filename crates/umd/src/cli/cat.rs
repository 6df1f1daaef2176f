//! `umd cat`: assemble read-only in-process and stream the array's logical content to stdout.
//!
//! Reads go through the engine's read planner: a member that fails a read
//! is dropped (with one warning) and the same range is planned again from
//! the others, so unreadable members degrade the array instead of stopping
//! the copy, up to the level's redundancy. An array in the middle of a
//! reshape is read through both of its shapes, split at the position.

use super::members::{candidates, open_and_probe, Opened};
use super::Raid0LayoutArg;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use umd_engine::{assemble, AssembleOptions, Assembly, ReadPlan};

/// Logical sectors asked of the planner at a time: large requests, few calls.
const PLAN_SECTORS_MAX: u64 = 8192;
/// Output buffer: large writes to stdout.
const OUTPUT_BUFFER_BYTES: usize = 4 << 20;

pub(crate) fn run(
    members: &[PathBuf],
    subarray: Option<&str>,
    raid0_layout: Option<Raid0LayoutArg>,
) -> Result<ExitCode, String> {
    let opened = members
        .iter()
        .map(|p| open_and_probe(p))
        .collect::<Result<Vec<_>, _>>()?;
    let candidates = candidates(&opened, subarray)?;
    let options = AssembleOptions {
        raid0_layout: raid0_layout.map(Into::into),
    };
    let assembly = assemble(&candidates, &options).map_err(|e| e.to_string())?;
    for w in &assembly.warnings {
        eprintln!("umd: warning: {w}");
    }
    let missing = assembly.missing_roles();
    if !missing.is_empty() {
        eprintln!(
            "umd: reading {} degraded: roles {missing:?} missing",
            assembly.geometry.level()
        );
    }
    let stdout = io::stdout().lock();
    let mut out = io::BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, stdout);
    match stream(&assembly, &opened, &mut out).and_then(|_| out.flush().map_err(Into::into)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(StreamError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        Err(StreamError::Output(e)) => Err(format!("writing to stdout: {e}")),
        Err(StreamError::Lost(e)) => Err(e),
    }
}

/// Why streaming stopped.
pub(crate) enum StreamError {
    /// Writing the output failed.
    Output(io::Error),
    /// Some data cannot be read from the members left.
    Lost(String),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Output(e) => write!(f, "writing output: {e}"),
            Self::Lost(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        Self::Output(e)
    }
}

/// Write the whole array to `out`; returns the members that failed a read
/// along the way (and were rebuilt around).
pub(crate) fn stream(
    assembly: &Assembly,
    opened: &[Opened],
    out: &mut impl Write,
) -> Result<Vec<String>, StreamError> {
    let mut planner = assembly.read_planner();
    let file_of = |role: u32| {
        let member = assembly.members[role as usize]
            .as_ref()
            .expect("plans read present roles");
        &opened[member.index]
    };
    let mut plan = ReadPlan::default();
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    let mut failed_members = Vec::new();
    let mut sector = 0;
    while sector < planner.array_sectors() {
        planner
            .plan(sector, PLAN_SECTORS_MAX, &mut plan)
            .map_err(|e| StreamError::Lost(e.to_string()))?;
        let len = plan.len_sectors as usize * 512;
        if buffers.len() < plan.buffers {
            buffers.resize_with(plan.buffers, Vec::new);
        }
        for b in &mut buffers[..plan.buffers] {
            b.resize(len, 0);
        }
        let mut failed = None;
        for r in &plan.reads {
            let opened = file_of(r.role);
            let buf = &mut buffers[r.buffer][..];
            if let Err(e) = opened.file.read_exact_at(r.device_sector * 512, buf) {
                eprintln!(
                    "umd: warning: {e}; continuing without {}",
                    opened.path.display()
                );
                failed = Some(r.role);
                break;
            }
        }
        if let Some(role) = failed {
            planner.mark_failed(role);
            failed_members.push(file_of(role).path.display().to_string());
            continue;
        }
        let mut refs: Vec<&mut [u8]> = buffers[..plan.buffers]
            .iter_mut()
            .map(Vec::as_mut_slice)
            .collect();
        planner.finish(&plan, &mut refs);
        out.write_all(&buffers[0])?;
        sector += plan.len_sectors;
    }
    Ok(failed_members)
}

//! `umd detail`: one array in the shape of `mdadm --detail`, from its
//! attributes.
//!
//! People compare this with what mdadm prints for a kernel array, so the
//! field names, their right-aligned layout, the `State :` words and the
//! member table follow mdadm's `Detail.c`. What md cannot say through sysfs
//! and mdadm reads from the superblock (`Events`) comes from umd's `events`
//! query. Beyond mdadm, a running operation also shows its speed and the
//! time it still needs, and raid6 members show the blocks the last check
//! or repair located on them. Reading and rendering are separate so the
//! renderer is pure.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use umd::control::mdstat::{self, ArrayStatus, MemberStatus};
use umd::control::progress::Progress;
use umd::control::{client, paths, ClientError};

/// Arguments of `umd detail`.
#[derive(Debug, clap::Args)]
pub(crate) struct DetailArgs {
    /// The array: its control socket, or its name in the run directory; by
    /// default the only array running.
    array: Option<String>,
}

/// Run `umd detail`.
pub(crate) fn run(args: &DetailArgs) -> Result<ExitCode, String> {
    let path = resolve(args.array.as_deref())?;
    let detail = read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::stdout()
        .lock()
        .write_all(render(&detail).as_bytes())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The control socket of `array` (a path, or a name in the run directory),
/// or the only one running.
pub(crate) fn resolve(array: Option<&str>) -> Result<PathBuf, String> {
    let sockets = paths::list_control_sockets();
    let Some(array) = array else {
        return super::ctl::choose_socket(&sockets, &paths::run_dir());
    };
    let as_path = Path::new(array);
    if as_path.exists() {
        return Ok(as_path.to_path_buf());
    }
    sockets
        .into_iter()
        .find(|s| s.file_stem().is_some_and(|n| n == array))
        .ok_or_else(|| {
            format!(
                "{array}: no such array (no control socket of that name in {})",
                paths::run_dir().display()
            )
        })
}

/// Read everything `umd detail` shows from the socket at `path`.
pub(crate) fn read(path: &Path) -> Result<ArrayDetail, ClientError> {
    let names = client::list(path)?;
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let status = mdstat::read_array(&name, &names, |attr| client::get(path, attr))?;
    let number = |attr: &str| {
        client::get(path, attr)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    };
    let located = status
        .members
        .iter()
        .filter_map(|m| {
            let n: u64 = number(&format!("dev-{}/mismatches_located", m.name))?;
            (n > 0).then(|| (m.name.clone(), n))
        })
        .collect();
    Ok(ArrayDetail {
        events: number("events"),
        mismatch_cnt: number("mismatch_cnt"),
        located,
        status,
    })
}

/// What `umd detail` shows beyond the `/proc/mdstat` reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArrayDetail {
    /// The mdstat reading (level, sizes, members, sync).
    pub(crate) status: ArrayStatus,
    /// The superblock event count (`events`), for native metadata.
    pub(crate) events: Option<u64>,
    /// `mismatch_cnt`.
    pub(crate) mismatch_cnt: Option<u64>,
    /// `dev-NAME/mismatches_located` per member name, where served and non-zero.
    pub(crate) located: Vec<(String, u64)>,
}

/// Width of mdadm's right-aligned field names (`    Raid Devices : 4`).
const LABEL_WIDTH: usize = 18;

fn field(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{label:>LABEL_WIDTH$} : {value}");
}

/// mdadm's `N (X.YY MiB Z.ZZ MB)` for a size in KiB.
fn size_text(kib: u64) -> String {
    let mib_hundredths = kib * 100 / 1024;
    let mb_hundredths = kib * 1024 / 10_000;
    format!(
        "{kib} ({}.{:02} MiB {}.{:02} MB)",
        mib_hundredths / 100,
        mib_hundredths % 100,
        mb_hundredths / 100,
        mb_hundredths % 100
    )
}

/// mdadm's label for a running operation.
fn status_label(action: &str) -> &'static str {
    match action {
        "recover" => "Rebuild Status",
        "reshape" => "Reshape Status",
        "check" => "Check Status",
        _ => "Resync Status",
    }
}

/// mdadm's `State :` suffix for a running operation.
fn state_suffix(action: &str) -> &'static str {
    match action {
        "recover" => ", recovering",
        "reshape" => ", reshaping",
        "check" => ", checking",
        _ => ", resyncing",
    }
}

/// The whole text, headed by the array's name.
#[must_use]
pub(crate) fn render(detail: &ArrayDetail) -> String {
    let a = &detail.status;
    let mut out = format!("{}:\n", a.name);
    field(&mut out, "Version", &a.metadata_version);
    field(&mut out, "Raid Level", &a.level);
    if let Some(kib) = a.array_size_kib.or_else(|| md_array_size_kib(a)) {
        field(&mut out, "Array Size", size_text(kib));
    }
    if a.level != "raid0" && a.level != "linear" {
        field(&mut out, "Used Dev Size", size_text(a.component_size_kib));
    }
    field(&mut out, "Raid Devices", a.raid_disks);
    field(&mut out, "Total Devices", a.members.len());
    let progress = a.progress();
    let clean = matches!(
        a.array_state.as_str(),
        "clean" | "active-idle" | "readonly" | "read-auto"
    );
    let mut state = String::from(if clean { "clean" } else { "active" });
    if a.degraded > 0 {
        state.push_str(", degraded");
    }
    if let Some(p) = &progress {
        state.push_str(state_suffix(&p.action));
    }
    field(&mut out, "State", state);
    render_counts(&mut out, a);
    if let Some(p) = &progress {
        render_progress(&mut out, p);
    }
    if let Some(events) = detail.events {
        field(&mut out, "Events", events);
    }
    if let Some(count) = detail.mismatch_cnt {
        field(&mut out, "Mismatch Count", count);
    }
    render_members(&mut out, detail);
    out
}

fn md_array_size_kib(a: &ArrayStatus) -> Option<u64> {
    let disks = u64::from(a.raid_disks);
    let data = match a.level.as_str() {
        "raid1" => 1,
        "raid4" | "raid5" => disks.checked_sub(1)?,
        "raid6" => disks.checked_sub(2)?,
        _ => return None,
    };
    Some(a.component_size_kib * data)
}

fn render_counts(out: &mut String, a: &ArrayStatus) {
    let has = |m: &MemberStatus, flag: &str| m.state.split(',').any(|f| f == flag);
    let failed = a.members.iter().filter(|m| has(m, "faulty")).count();
    let active = a
        .members
        .iter()
        .filter(|m| m.slot.is_some() && has(m, "in_sync") && !has(m, "faulty"))
        .count();
    let spare = a
        .members
        .iter()
        .filter(|m| !has(m, "faulty") && !has(m, "in_sync"))
        .count();
    field(out, "Active Devices", active);
    field(out, "Working Devices", a.members.len() - failed);
    field(out, "Failed Devices", failed);
    field(out, "Spare Devices", spare);
    if let Some(name) = umd_layout_name(a) {
        field(out, "Layout", name);
    }
    if a.chunk_size_bytes > 0 {
        field(out, "Chunk Size", format!("{}K", a.chunk_size_bytes / 1024));
    }
}

fn umd_layout_name(a: &ArrayStatus) -> Option<String> {
    let level = a.level.strip_prefix("raid")?.parse::<i32>().ok()?;
    super::names::layout_name(level, a.layout)
}

fn render_progress(out: &mut String, p: &Progress) {
    let per_milli = p.per_milli();
    field(
        out,
        status_label(&p.action),
        format!(
            "{}% complete ({}/{} KiB)",
            per_milli / 10,
            p.done_sectors / 2,
            p.total_sectors / 2
        ),
    );
    if let Some(speed) = p.speed_kib {
        field(out, "Sync Speed", format!("{speed}K/sec"));
    }
    if let Some(finish) = p.finish_text() {
        field(out, "Finish", finish);
    }
}

fn render_members(out: &mut String, detail: &ArrayDetail) {
    let _ = writeln!(out, "\n    Number   Major   Minor   RaidDevice State");
    for (number, m) in detail.status.members.iter().enumerate() {
        let has = |flag: &str| m.state.split(',').any(|f| f == flag);
        let state = if has("faulty") {
            "faulty"
        } else if m.slot.is_none() {
            "spare"
        } else if has("in_sync") {
            "active sync"
        } else {
            "spare rebuilding"
        };
        let role = m.slot.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let _ = write!(
            out,
            "    {number:>6}       -       -   {role:>10}      {state:<16} {}",
            m.name
        );
        if let Some((_, n)) = detail.located.iter().find(|(name, _)| *name == m.name) {
            let _ = write!(out, "   ({n} sectors located wrong)");
        }
        out.push('\n');
    }
}

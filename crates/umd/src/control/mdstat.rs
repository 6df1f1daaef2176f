//! `/proc/mdstat` for umd: read arrays' attributes and render md's status text.
//!
//! People and scripts know md's status format by heart, so `umd status` reproduces the
//! kernel's `md_seq_show`, each personality's `status` and `status_resync` output from
//! the attributes a running array serves. Reading (through any `get` function) and
//! rendering (pure) are separate so the renderer is tested against fixed values.
//!
//! Where an attribute cannot say what the kernel knows, the nearest honest value is shown:
//! the bitmap's in-memory page count is not an attribute, so pages are computed from the
//! bitmap chunk size and shown as none allocated; `finish=`/`speed=` appear only when the
//! array serves `sync_speed`.

use super::progress::Progress;
use super::ClientError;
use serde::Serialize;
use std::fmt::Write as _;

/// The personalities umd implements, in the order `Personalities :` lists them.
pub const PERSONALITIES: [&str; 7] = [
    "linear", "raid0", "raid1", "raid10", "raid6", "raid5", "raid4",
];

/// Bitmap counters per in-memory page: 4096-byte pages of 16-bit counters
/// (md-bitmap.c `PAGE_COUNTER_RATIO`).
const BITMAP_COUNTERS_PER_PAGE: u64 = 4096 * 8 / 16;

/// Width of md's progress bar in steps; each step is 5% (md's `per_milli / 50`).
const PROGRESS_STEPS: u64 = 20;

/// One member of an array, from its `dev-NAME/` attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    /// Device name without `dev-` (`sdb`).
    pub name: String,
    /// `slot`, `None` for `none` (spare or removed).
    pub slot: Option<u32>,
    /// `state`: md's comma list (`in_sync`, `faulty,blocked`, `spare`).
    pub state: String,
    /// `size` in KiB, if served.
    pub size_kib: Option<u64>,
}

impl MemberStatus {
    fn has(&self, flag: &str) -> bool {
        self.state.split(',').any(|f| f == flag)
    }
}

/// A running array's status, from its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayStatus {
    /// The array's name (its control socket's name).
    pub name: String,
    /// `array_state`.
    pub array_state: String,
    /// `level` (`raid5`).
    pub level: String,
    /// `raid_disks`.
    pub raid_disks: u32,
    /// `chunk_size` in bytes.
    pub chunk_size_bytes: u64,
    /// `layout`.
    pub layout: u32,
    /// `component_size` in KiB.
    pub component_size_kib: u64,
    /// `array_size` in KiB when the array serves a number (md shows `default` otherwise).
    pub array_size_kib: Option<u64>,
    /// `metadata_version` (`1.2`, `0.90`, `external:ddf`, `none`).
    pub metadata_version: String,
    /// `degraded`.
    pub degraded: u32,
    /// `sync_action` (`idle`, `resync`, `recover`, `check`, `repair`, `reshape`, `frozen`).
    pub sync_action: String,
    /// `sync_completed` (`none`, `delayed` or `done / total` in sectors).
    pub sync_completed: String,
    /// `sync_speed` in KiB/s, when served as a number.
    pub sync_speed_kib: Option<u64>,
    /// `curr_resync` (the live position, `done / total`), when served.
    pub curr_resync: Option<String>,
    /// `bitmap/chunksize` in bytes, when the array has a bitmap.
    pub bitmap_chunk_bytes: Option<u64>,
    /// Members, ordered by slot, then slotless members by name.
    pub members: Vec<MemberStatus>,
}

/// What `umd status` knows about one control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
// One value per array in a status listing: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum ArrayReport {
    /// The array answered.
    Running(ArrayStatus),
    /// Nobody answered on the socket, or the answers made no sense.
    Stale {
        /// The socket's array name.
        name: String,
        /// Why.
        error: String,
    },
}

/// Read `get(attr) -> value` into an [`ArrayStatus`]. `names` is the array's attribute
/// list, used to find members (`dev-*/slot`). Refused optional attributes are left out;
/// transport failures and a refused `level` or `array_state` are errors.
pub fn read_array(
    name: &str,
    names: &[String],
    get: impl Fn(&str) -> Result<String, ClientError>,
) -> Result<ArrayStatus, ClientError> {
    let optional = |attr: &str| match get(attr) {
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(ClientError::Engine(_)) => Ok(None),
        Err(e) => Err(e),
    };
    let number = |attr: &str| -> Result<Option<u64>, ClientError> {
        Ok(optional(attr)?.and_then(|v| v.split(' ').next()?.parse().ok()))
    };
    let mut members = Vec::new();
    for slot_attr in names
        .iter()
        .filter(|n| n.starts_with("dev-") && n.ends_with("/slot"))
    {
        let dir = &slot_attr[..slot_attr.len() - "/slot".len()];
        members.push(MemberStatus {
            name: dir["dev-".len()..].to_owned(),
            slot: optional(slot_attr)?.and_then(|s| s.parse().ok()),
            state: optional(&format!("{dir}/state"))?.unwrap_or_default(),
            size_kib: number(&format!("{dir}/size"))?,
        });
    }
    members.sort_by(|a, b| {
        (a.slot.is_none(), a.slot, &a.name).cmp(&(b.slot.is_none(), b.slot, &b.name))
    });
    let bitmap_chunk_bytes = match optional("bitmap/location")?.as_deref() {
        Some("none") => None,
        _ => number("bitmap/chunksize")?.filter(|&c| c > 0),
    };
    Ok(ArrayStatus {
        name: name.to_owned(),
        array_state: get("array_state")?.trim().to_owned(),
        level: get("level")?.trim().to_owned(),
        raid_disks: number("raid_disks")?.unwrap_or(0) as u32,
        chunk_size_bytes: number("chunk_size")?.unwrap_or(0),
        layout: number("layout")?.unwrap_or(0) as u32,
        component_size_kib: number("component_size")?.unwrap_or(0),
        array_size_kib: number("array_size")?,
        metadata_version: optional("metadata_version")?.unwrap_or_else(|| "none".into()),
        degraded: number("degraded")?.unwrap_or(0) as u32,
        sync_action: optional("sync_action")?.unwrap_or_else(|| "idle".into()),
        sync_completed: optional("sync_completed")?.unwrap_or_else(|| "none".into()),
        sync_speed_kib: number("sync_speed")?,
        curr_resync: optional("curr_resync")?,
        bitmap_chunk_bytes,
        members,
    })
}

/// The whole status text, as `/proc/mdstat` prints it.
#[must_use]
pub fn render(reports: &[ArrayReport]) -> String {
    let mut out = String::from("Personalities : ");
    for p in PERSONALITIES {
        let _ = write!(out, "[{p}] ");
    }
    out.push('\n');
    for report in reports {
        match report {
            ArrayReport::Running(array) => render_array(&mut out, array),
            ArrayReport::Stale { name, error } => {
                let _ = writeln!(out, "{name} : stale control socket ({error})");
            }
        }
    }
    out.push_str("unused devices: <none>\n");
    out
}

fn is_running(array: &ArrayStatus) -> bool {
    !matches!(array.array_state.as_str(), "inactive" | "clear" | "")
}

/// md_seq_show's block for one array.
fn render_array(out: &mut String, array: &ArrayStatus) {
    let running = is_running(array);
    let _ = write!(
        out,
        "{} : {}",
        array.name,
        if running { "active" } else { "inactive" }
    );
    match array.array_state.as_str() {
        "readonly" => out.push_str(" (read-only)"),
        "read-auto" => out.push_str(" (auto-read-only)"),
        _ => {}
    }
    if running {
        let _ = write!(out, " {}", array.level);
    }
    render_members(out, array);
    if !array.members.is_empty() {
        let blocks = if running {
            array_size_kib(array)
        } else {
            array.members.iter().filter_map(|m| m.size_kib).sum()
        };
        let _ = write!(out, "\n      {blocks} blocks");
    }
    match array.metadata_version.as_str() {
        "0.90" => {}
        "none" => out.push_str(" super non-persistent"),
        v => {
            let _ = write!(out, " super {v}");
        }
    }
    if !running {
        out.push_str("\n       \n");
        return;
    }
    render_personality(out, array);
    out.push_str("\n      ");
    if let Some(progress) = resync_line(array) {
        out.push_str(&progress);
        out.push_str("\n      ");
    }
    if let Some(bitmap) = bitmap_line(array) {
        out.push_str(&bitmap);
        out.push('\n');
    }
    out.push('\n');
}

/// ` sdb[0] sdc[1](F)`: md prints each member's name, number and flags.
fn render_members(out: &mut String, array: &ArrayStatus) {
    // Slotless members have no role number; md shows desc_nr, which for them is past
    // every slot, so number them after raid_disks in order.
    let mut next_spare = array
        .members
        .iter()
        .filter_map(|m| m.slot)
        .map(|s| s + 1)
        .max()
        .unwrap_or(0)
        .max(array.raid_disks);
    for member in &array.members {
        let number = member.slot.unwrap_or_else(|| {
            next_spare += 1;
            next_spare - 1
        });
        let _ = write!(out, " {}[{number}]", member.name);
        if member.has("write_mostly") {
            out.push_str("(W)");
        }
        if member.has("journal") {
            out.push_str("(J)");
        }
        if member.has("faulty") {
            out.push_str("(F)");
            continue;
        }
        if member.slot.is_none() {
            out.push_str("(S)");
        }
        if member.has("replacement") {
            out.push_str("(R)");
        }
    }
}

fn level_number(level: &str) -> Option<u32> {
    level.strip_prefix("raid")?.parse().ok()
}

/// raid10's copies from its layout: (near, far, offset).
fn raid10_copies(layout: u32) -> (u64, u64, bool) {
    let near = u64::from(layout & 0xff);
    let far = u64::from((layout >> 8) & 0xff);
    (near.max(1), far.max(1), layout & 0x1_0000 != 0)
}

/// The array's size in KiB: `array_size` if served, else what each level's `size` gives.
fn array_size_kib(array: &ArrayStatus) -> u64 {
    if let Some(kib) = array.array_size_kib {
        return kib;
    }
    let component = array.component_size_kib;
    let disks = u64::from(array.raid_disks);
    let chunk_kib = array.chunk_size_bytes / 1024;
    match array.level.as_str() {
        "raid1" => component,
        "raid4" | "raid5" => component * disks.saturating_sub(1),
        "raid6" => component * disks.saturating_sub(2),
        "raid10" => {
            let (near, far, _) = raid10_copies(array.layout);
            let chunk = chunk_kib.max(1);
            component / chunk / far * disks / near * chunk
        }
        // raid0 and linear use whole members, each rounded down to the chunk.
        _ => array
            .members
            .iter()
            .filter_map(|m| m.size_kib)
            .map(|s| s.checked_div(chunk_kib).map_or(s, |n| n * chunk_kib))
            .sum(),
    }
}

/// Each personality's `status` text after the block count.
fn render_personality(out: &mut String, array: &ArrayStatus) {
    let chunk_kib = array.chunk_size_bytes / 1024;
    match array.level.as_str() {
        "linear" => {
            let _ = write!(out, " {chunk_kib}k rounding");
        }
        "raid0" => {
            let _ = write!(out, " {chunk_kib}k chunks");
        }
        "raid1" => render_slots(out, array),
        "raid10" => {
            let (near, far, offset) = raid10_copies(array.layout);
            if near < u64::from(array.raid_disks) {
                let _ = write!(out, " {chunk_kib}K chunks");
            }
            if near > 1 {
                let _ = write!(out, " {near} near-copies");
            }
            if far > 1 {
                let kind = if offset { "offset" } else { "far" };
                let _ = write!(out, " {far} {kind}-copies");
            }
            render_slots(out, array);
        }
        level => {
            if let Some(n) = level_number(level).filter(|n| (4..=6).contains(n)) {
                let _ = write!(
                    out,
                    " level {n}, {chunk_kib}k chunk, algorithm {}",
                    array.layout
                );
                render_slots(out, array);
            }
        }
    }
}

/// ` [3/2] [UU_]`: slots, working slots, and which slots hold an in-sync member.
fn render_slots(out: &mut String, array: &ArrayStatus) {
    let working = array.raid_disks.saturating_sub(array.degraded);
    let _ = write!(out, " [{}/{working}] [", array.raid_disks);
    for slot in 0..array.raid_disks {
        let up = array
            .members
            .iter()
            .any(|m| m.slot == Some(slot) && m.has("in_sync") && !m.has("faulty"));
        out.push(if up { 'U' } else { '_' });
    }
    out.push(']');
}

impl ArrayStatus {
    /// The running operation's progress, if any.
    #[must_use]
    pub fn progress(&self) -> Option<Progress> {
        Progress::read(
            &self.sync_action,
            self.curr_resync.as_deref(),
            &self.sync_completed,
            self.sync_speed_kib,
        )
    }
}

/// status_resync's line, or `None` when no sync runs.
fn resync_line(array: &ArrayStatus) -> Option<String> {
    if array.sync_completed == "delayed" {
        return Some("\tresync=DELAYED".into());
    }
    let label = match array.sync_action.as_str() {
        "resync" | "repair" => "resync",
        "check" => "check",
        "recover" => "recovery",
        "reshape" => "reshape",
        _ => return None,
    };
    let progress = array.progress()?;
    let (done, total) = (progress.done_sectors, progress.total_sectors);
    let per_milli = progress.per_milli();
    let filled = per_milli / 50;
    let mut line = String::from("[");
    line.push_str(&"=".repeat(filled as usize));
    line.push('>');
    line.push_str(&".".repeat((PROGRESS_STEPS - filled) as usize));
    let _ = write!(
        line,
        "]  {label} ={:>3}.{}% ({}/{})",
        per_milli / 10,
        per_milli % 10,
        done / 2,
        total / 2
    );
    if let (Some(finish), Some(speed)) = (progress.finish_text(), progress.speed_kib) {
        let _ = write!(line, " finish={finish} speed={speed}K/sec");
    }
    Some(line)
}

/// md_bitmap_status's line, or `None` without a bitmap.
fn bitmap_line(array: &ArrayStatus) -> Option<String> {
    let chunk_bytes = array.bitmap_chunk_bytes?;
    // raid10's bitmap covers the array; the others' covers one member.
    let covered_kib = if array.level == "raid10" {
        array_size_kib(array)
    } else {
        array.component_size_kib
    };
    let chunks = (covered_kib * 1024).div_ceil(chunk_bytes);
    let pages = chunks.div_ceil(BITMAP_COUNTERS_PER_PAGE);
    let (chunk, unit) = if chunk_bytes >= 1024 {
        (chunk_bytes / 1024, "KB")
    } else {
        (chunk_bytes, "B")
    };
    Some(format!(
        "bitmap: 0/{pages} pages [0KB], {chunk}{unit} chunk"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar_has_md_width() {
        let mut array = raid1();
        array.sync_action = "resync".into();
        array.sync_completed = "0 / 100".into();
        assert_eq!(
            resync_line(&array).as_deref(),
            Some("[>....................]  resync =  0.0% (0/50)")
        );
        array.sync_completed = "100 / 100".into();
        assert_eq!(
            resync_line(&array).as_deref(),
            Some("[====================>]  resync =100.0% (50/50)")
        );
        array.sync_action = "idle".into();
        assert_eq!(resync_line(&array), None);
    }

    fn raid1() -> ArrayStatus {
        ArrayStatus {
            name: "md1".into(),
            array_state: "clean".into(),
            level: "raid1".into(),
            raid_disks: 2,
            chunk_size_bytes: 0,
            layout: 0,
            component_size_kib: 1_048_512,
            array_size_kib: None,
            metadata_version: "0.90".into(),
            degraded: 0,
            sync_action: "idle".into(),
            sync_completed: "none".into(),
            sync_speed_kib: None,
            curr_resync: None,
            bitmap_chunk_bytes: None,
            members: Vec::new(),
        }
    }
}

//! Reads mdadm 4.2's `--examine` text and compares it, field by field, with one `MdInfo` from
//! `umd examine --json`.
//!
//! mdadm prints names and human units (layout names, "64K", KiB for 0.90 sizes); this file
//! turns them back into md's numbers (formats.md §4: layout values, §1.3/§2.2: units) so the
//! comparison is with what mdadm decoded from the same bytes, not with umd's own formatting.
//! Where mdadm prints nothing (0.90 offsets), the reference is the spec formula (§1.1).

use crate::vm::VmArray;
use serde_json::Value;
use std::collections::BTreeMap;

/// 1.x feature bit: a write-intent bitmap offset is recorded (formats.md §2.4, BITMAP_OFFSET).
const FEATURE_BITMAP_OFFSET: u64 = 0x1;
/// 1.x feature bit: raid0 layout is recorded (formats.md §2.4, RAID0_LAYOUT).
const FEATURE_RAID0_LAYOUT: u64 = 0x1000;
/// 0.90 superblock placement: size rounded down to this many sectors, then one such step
/// back (formats.md §1.1, `MD_NEW_SIZE_SECTORS`).
const SB0_RESERVED_SECTORS: u64 = 128;
/// 0.90 bitmap position: this many sectors after the superblock start (formats.md §3.1).
const SB0_BITMAP_AFTER_SUPER_SECTORS: u64 = 8;
/// raid10 layout: far copies sit in bits 8-15 (formats.md §4.6).
const RAID10_FAR_SHIFT: u32 = 8;
/// raid10 layout: the far copies are "offset" copies (formats.md §4.6).
const RAID10_OFFSET_FLAG: u32 = 0x1_0000;

/// mdadm's raid5/raid6 layout names and md's numbers (formats.md §4.4, §4.5).
const PARITY_LAYOUTS: &[(&str, u32)] = &[
    ("left-asymmetric", 0),
    ("right-asymmetric", 1),
    ("left-symmetric", 2),
    ("right-symmetric", 3),
    ("parity-first", 4),
    ("parity-last", 5),
    ("ddf-zero-restart", 8),
    ("ddf-N-restart", 9),
    ("ddf-N-continue", 10),
    ("left-asymmetric-6", 16),
    ("right-asymmetric-6", 17),
    ("left-symmetric-6", 18),
    ("right-symmetric-6", 19),
    ("parity-first-6", 20),
];

/// mdadm's raid0 layout names (formats.md §4.2).
const RAID0_LAYOUTS: &[(&str, u32)] = &[("original", 1), ("alternate", 2)];

/// One member's `mdadm --examine`, as "Key : value" pairs plus the 0.90 `this` row.
#[derive(Debug, Default)]
pub(crate) struct Examine {
    fields: BTreeMap<String, String>,
    /// 0.90 only: (descriptor number, raid disk, state words) of this device.
    this_row: Option<(String, String, String)>,
}

impl Examine {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// First word of a value ("2048 sectors" -> "2048").
    fn first(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.split_whitespace().next())
    }

    fn number(&self, key: &str) -> Option<u64> {
        self.first(key).and_then(|v| v.parse().ok())
    }

    fn is_v090(&self) -> bool {
        self.get("Version").is_some_and(|v| v.starts_with("0.90"))
    }
}

/// Splits mdadm's text into fields; keys are trimmed ("Data Offset").
pub(crate) fn parse_examine(text: &str) -> Examine {
    let mut ex = Examine::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"this") && words.len() >= 6 {
            // this  NUMBER  MAJOR  MINOR  RAIDDEVICE  STATE...  [DEV]
            let state = words[5..].iter().filter(|w| !w.starts_with('/')).copied();
            let state = state.collect::<Vec<_>>().join(" ");
            ex.this_row = Some((words[1].to_string(), words[4].to_string(), state));
            continue;
        }
        if let Some((k, v)) = line.split_once(" : ") {
            ex.fields.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    ex
}

/// One compared field.
pub(crate) struct FieldCheck {
    /// Field name for the report.
    pub(crate) field: &'static str,
    /// What mdadm (or the kernel, or the spec formula for 0.90) says.
    pub(crate) reference: String,
    /// What umd says.
    pub(crate) umd: String,
    /// They agree.
    pub(crate) ok: bool,
}

/// A JSON value in the same text form as the reference (strings bare, `null` for none).
fn show(v: Option<&Value>) -> String {
    match v {
        None => "<missing>".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn md_level(name: &str) -> Option<i64> {
    match name {
        "linear" => Some(-1),
        "raid0" => Some(0),
        "raid1" => Some(1),
        "raid4" => Some(4),
        "raid5" => Some(5),
        "raid6" => Some(6),
        "raid10" => Some(10),
        _ => None,
    }
}

/// md's layout number for mdadm's layout text at `level`.
fn md_layout(level: i64, text: &str) -> Option<u32> {
    let lookup = |table: &[(&str, u32)]| table.iter().find(|(n, _)| *n == text).map(|(_, v)| *v);
    match level {
        0 => lookup(RAID0_LAYOUTS),
        4..=6 => lookup(PARITY_LAYOUTS),
        10 => {
            // "near=2", "far=2", "offset=2", or several joined by ", "
            let (mut near, mut far, mut offset) = (1u32, 1u32, false);
            for part in text.split(',') {
                let (k, v) = part.trim().split_once('=')?;
                let v: u32 = v.parse().ok()?;
                match k {
                    "near" => near = v,
                    "far" => far = v,
                    "offset" => {
                        far = v;
                        offset = true;
                    }
                    _ => return None,
                }
            }
            Some(near | far << RAID10_FAR_SHIFT | if offset { RAID10_OFFSET_FLAG } else { 0 })
        }
        _ => None,
    }
}

/// "64K" -> sectors.
fn kib_text_to_sectors(text: &str) -> Option<u64> {
    text.strip_suffix('K')?.parse::<u64>().ok().map(|k| k * 2)
}

/// umd's device UUID (16 numbers) in mdadm's text form.
fn device_uuid_text(v: Option<&Value>) -> String {
    let Some(bytes) = v.and_then(Value::as_array) else {
        return show(v);
    };
    let mut s = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push(':');
        }
        s.push_str(
            &b.as_u64()
                .map_or_else(|| "??".to_string(), |b| format!("{b:02x}")),
        );
    }
    s
}

/// umd's own slot, in the reference's wording ("active 2", "spare", ...).
fn slot_text(info: &Value) -> String {
    let slot = info.pointer("/device/slot");
    match slot.and_then(|s| s.get("state")).and_then(Value::as_str) {
        Some("active") => {
            let role = show(slot.and_then(|s| s.get("role")));
            match slot.and_then(|s| s.get("recovery_offset_sectors")) {
                Some(Value::Null) | None => format!("active {role}"),
                Some(r) => format!("active {role} recovering at {r}"),
            }
        }
        Some(state) => state.to_string(),
        None => show(slot),
    }
}

/// Collects field checks in order.
struct Checks<'a> {
    info: &'a Value,
    out: Vec<FieldCheck>,
}

impl Checks<'_> {
    fn text(&mut self, field: &'static str, reference: impl Into<String>, umd: String) {
        let reference = reference.into();
        let ok = reference == umd;
        self.out.push(FieldCheck {
            field,
            reference,
            umd,
            ok,
        });
    }

    fn at(&mut self, field: &'static str, reference: &dyn std::fmt::Display, pointer: &str) {
        let umd = show(self.info.pointer(pointer));
        self.text(field, reference.to_string(), umd);
    }
}

/// Every field mdadm and the kernel let us check for this member.
pub(crate) fn compare_examine(
    ex: &Examine,
    info: &Value,
    vm: &VmArray,
    image_sectors: u64,
) -> Vec<FieldCheck> {
    let mut c = Checks {
        info,
        out: Vec::new(),
    };
    let v090 = ex.is_v090();
    let version = ex.get("Version").unwrap_or("<none>");
    c.at("format", &if v090 { "0.90" } else { version }, "/format");
    let uuid_key = if v090 { "UUID" } else { "Array UUID" };
    c.at(
        "uuid",
        &ex.first(uuid_key).unwrap_or("<none>"),
        "/array/uuid",
    );
    if !v090 {
        c.at("name", &ex.first("Name").unwrap_or("<none>"), "/array/name");
    }
    let level_text = ex.get("Raid Level").unwrap_or("<none>");
    let level = md_level(level_text);
    c.at(
        "level",
        &level.map_or_else(|| level_text.to_string(), |l| l.to_string()),
        "/array/level",
    );
    c.at(
        "raid_disks",
        &ex.get("Raid Devices").unwrap_or("<none>"),
        "/array/raid_disks",
    );
    compare_geometry(&mut c, ex, vm, level.unwrap_or(i64::MIN));
    compare_placement(&mut c, ex, level.unwrap_or(i64::MIN), image_sectors);
    c.at(
        "events",
        &ex.get("Events").unwrap_or("<none>"),
        "/array/events",
    );
    let clean = ex.first("State").map(|s| (s == "clean").to_string());
    c.at(
        "clean",
        &clean.unwrap_or_else(|| "<none>".to_string()),
        "/array/clean",
    );
    compare_role(&mut c, ex);
    c.out
}

/// Layout and chunk: mdadm's text where it prints them, and the kernel's sysfs reading.
fn compare_geometry(c: &mut Checks<'_>, ex: &Examine, vm: &VmArray, level: i64) {
    if let Some(text) = ex.get("Layout") {
        let reference = md_layout(level, text).map_or_else(|| text.to_string(), |l| l.to_string());
        c.at("layout", &reference, "/array/layout");
    }
    if matches!(level, 4 | 5 | 6 | 10) {
        if let Some(l) = vm.sysfs_layout {
            c.at("layout (kernel)", &l, "/array/layout");
        }
    }
    if let Some(text) = ex.get("Chunk Size").or_else(|| ex.get("Rounding")) {
        let reference =
            kib_text_to_sectors(text).map_or_else(|| text.to_string(), |s| s.to_string());
        c.at("chunk_sectors", &reference, "/array/chunk_sectors");
    }
    if let Some(bytes) = vm.sysfs_chunk_bytes {
        c.at(
            "chunk_sectors (kernel)",
            &(bytes / 512),
            "/array/chunk_sectors",
        );
    }
}

/// Offsets and sizes: 1.x from mdadm's lines, 0.90 from the spec's fixed placement.
fn compare_placement(c: &mut Checks<'_>, ex: &Examine, level: i64, image_sectors: u64) {
    let redundant = level >= 1;
    if ex.is_v090() {
        let sb = (image_sectors & !(SB0_RESERVED_SECTORS - 1)) - SB0_RESERVED_SECTORS;
        c.at("data_offset (0.90: 0)", &0, "/device/data_offset_sectors");
        c.at(
            "super_offset (0.90 formula)",
            &sb,
            "/device/super_offset_sectors",
        );
        c.at("data_sectors (0.90 formula)", &sb, "/device/data_sectors");
        if redundant {
            if let Some(kib) = ex.number("Used Dev Size") {
                c.at("component_sectors", &(kib * 2), "/array/component_sectors");
            }
        }
        // 0.90 prints no offset: the bitmap follows the superblock by 4 KiB (formats.md §3.1)
        let bitmap_ref = if ex.get("Internal Bitmap").is_some() {
            (sb + SB0_BITMAP_AFTER_SUPER_SECTORS).to_string()
        } else {
            "null".to_string()
        };
        let umd_bitmap = bitmap_text(c.info);
        c.text("bitmap sector (0.90 formula)", bitmap_ref, umd_bitmap);
        return;
    }
    let data_offset = ex.number("Data Offset").unwrap_or(0);
    c.at("data_offset", &data_offset, "/device/data_offset_sectors");
    let super_offset = ex.number("Super Offset");
    c.at(
        "super_offset",
        &show_opt(super_offset),
        "/device/super_offset_sectors",
    );
    let avail = ex.number("Avail Dev Size");
    c.at(
        "data_sectors (Avail Dev Size)",
        &show_opt(avail),
        "/device/data_sectors",
    );
    if redundant {
        // mdadm prints "Used Dev Size" only when it differs from the available size.
        let used = ex.number("Used Dev Size").or(avail);
        c.at(
            "component_sectors (Used Dev Size)",
            &show_opt(used),
            "/array/component_sectors",
        );
    }
    let umd_uuid = device_uuid_text(c.info.pointer("/device/device_uuid"));
    c.text(
        "device_uuid",
        ex.get("Device UUID").unwrap_or("<none>"),
        umd_uuid,
    );
    let features = ex
        .get("Feature Map")
        .and_then(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16).ok());
    let features = features.unwrap_or(0);
    let bitmap_sector = ex.get("Internal Bitmap").and_then(|t| {
        let rel: i64 = t.split_whitespace().next()?.parse().ok()?;
        super_offset?.checked_add_signed(rel)
    });
    let bitmap_ref = match (features & FEATURE_BITMAP_OFFSET != 0, bitmap_sector) {
        (false, _) => "null".to_string(),
        (true, Some(s)) => s.to_string(),
        (true, None) => "<unparsed>".to_string(),
    };
    let umd_bitmap = bitmap_text(c.info);
    c.text("bitmap sector", bitmap_ref, umd_bitmap);
    if level == 0 {
        let recorded = features & FEATURE_RAID0_LAYOUT != 0;
        c.at(
            "raid0_layout_recorded",
            &recorded,
            "/array/raid0_layout_recorded",
        );
    }
}

/// umd's bitmap sector, or "null" when it reports none.
fn bitmap_text(info: &Value) -> String {
    match info.pointer("/array/bitmap") {
        Some(Value::Null) => "null".to_string(),
        Some(b) => show(b.get("sector")),
        None => "<missing>".to_string(),
    }
}

fn show_opt(v: Option<u64>) -> String {
    v.map_or_else(|| "<none>".to_string(), |v| v.to_string())
}

/// The device's own role: 1.x "Device Role", 0.90 the `this` row (and its descriptor number).
fn compare_role(c: &mut Checks<'_>, ex: &Examine) {
    let umd_slot = slot_text(c.info);
    if let Some((number, raid_disk, state)) = &ex.this_row {
        let reference = if state.contains("active") {
            format!("active {raid_disk}")
        } else {
            state.clone()
        };
        c.text("role (this row)", reference, umd_slot);
        c.at("dev_id (this row)", &number, "/device/dev_id");
        return;
    }
    let role = ex.get("Device Role").unwrap_or("<none>");
    let reference = match role.strip_prefix("Active device ") {
        Some(n) => format!("active {n}"),
        None => role.to_lowercase(),
    };
    c.text("role", reference, umd_slot);
}

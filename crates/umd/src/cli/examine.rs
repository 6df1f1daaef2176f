//! `umd examine`: print each member's metadata, as text like `mdadm --examine` or as JSON.
//!
//! Every member is examined even when an earlier one fails; the exit status
//! is non-zero if any failed, and each failure is one line naming the member.

use super::members::open_and_probe;
use super::names::{human_sectors, layout_name, level_name};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use umd_formats::info::{ArrayUuid, MdInfo, SlotState};
use umd_formats::probe::Metadata;

#[derive(Serialize)]
struct JsonMember {
    device: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    infos: Vec<MdInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ppl: Option<JsonPpl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The partial parity log area of a 1.x member (formats.md §2.11).
#[derive(Serialize)]
struct JsonPpl {
    /// Signed sectors from the superblock.
    offset_sectors: i16,
    size_sectors: u16,
    /// MULTIPLE_PPLS: the area is a ring of logs.
    multiple: bool,
}

fn ppl_of(metadata: &Metadata) -> Option<JsonPpl> {
    let Metadata::V1(sb) = metadata else {
        return None;
    };
    let (_, _, multiple) = sb.ppl_area()?;
    Some(JsonPpl {
        offset_sectors: sb.ppl_offset(),
        size_sectors: sb.ppl_size(),
        multiple,
    })
}

pub(crate) fn run(members: &[PathBuf], json: bool) -> Result<ExitCode, String> {
    let mut failed = false;
    let mut out = Vec::new();
    let mut text = String::new();
    for path in members {
        let device = path.display().to_string();
        match open_and_probe(path) {
            Ok(opened) => {
                let infos = opened.metadata.infos();
                if !json {
                    text.push_str(&render_text(&device, &opened.metadata, &infos));
                }
                out.push(JsonMember {
                    device,
                    infos,
                    ppl: ppl_of(&opened.metadata),
                    error: None,
                });
            }
            Err(e) => {
                failed = true;
                eprintln!("umd: {e}");
                out.push(JsonMember {
                    device,
                    infos: Vec::new(),
                    ppl: None,
                    error: Some(e),
                });
            }
        }
    }
    if json {
        let s = serde_json::to_string_pretty(&out).map_err(|e| format!("JSON output: {e}"))?;
        println!("{s}");
    } else {
        print!("{text}");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn render_text(device: &str, metadata: &Metadata, infos: &[MdInfo]) -> String {
    let mut s = format!("{device}:\n");
    render_format_header(&mut s, metadata);
    if infos.is_empty() {
        s.push_str("       (container metadata; this device is in no array)\n");
    }
    for info in infos {
        render_info(&mut s, info);
    }
    s
}

/// The fields only one format has, before the common ones.
fn render_format_header(s: &mut String, metadata: &Metadata) {
    match metadata {
        Metadata::V0_90(sb) => {
            row(s, "Magic", "a92b4efc");
            let order = if sb.big_endian {
                "big-endian"
            } else {
                "little-endian"
            };
            row(s, "Byte Order", order);
            row(s, "Preferred Minor", sb.md_minor);
            row(s, "Working Devices", sb.working_disks);
            row(s, "Failed Devices", sb.failed_disks);
            row(s, "Spare Devices", sb.spare_disks);
            row(s, "Checksum", "correct");
        }
        Metadata::V1(sb) => {
            row(s, "Magic", "a92b4efc");
            row(s, "Feature Map", format!("{:#x}", sb.feature_map));
            row(s, "Device UUID", ArrayUuid(sb.device_uuid));
            row(s, "Checksum", "correct");
            if sb.ppl_area().is_some() {
                row(
                    s,
                    "PPL",
                    format!(
                        "{} sectors at offset {} sectors from superblock",
                        sb.ppl_size(),
                        sb.ppl_offset()
                    ),
                );
            }
            if sb.bblog_size > 0 {
                row(
                    s,
                    "Bad Block Log",
                    format!("{} sectors at offset {}", sb.bblog_size, sb.bblog_offset),
                );
            }
        }
        Metadata::Ddf(ddf) => {
            row(s, "Magic", "de11de11");
            row(s, "Container GUID", hex(&ddf.container_guid()));
            let revision = ddf.header().revision();
            row(
                s,
                "Revision",
                String::from_utf8_lossy(&revision).trim_end_matches('\0'),
            );
            row(s, "Seq", format!("{:08x}", ddf.header().seq()));
            row(s, "Physical Disks", ddf.phys_disks().len());
            row(s, "Virtual Disks", ddf.virt_disks().len());
            for note in ddf.notes() {
                row(s, "Note", note);
            }
            row(s, "CRCs", "correct");
        }
        _ => {}
    }
    s.push('\n');
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn row(s: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(s, "{label:>16} : {value}");
}

fn render_info(s: &mut String, info: &MdInfo) {
    let a = &info.array;
    let d = &info.device;
    row(s, "Version", info.format);
    row(s, "Array UUID", a.uuid);
    if !a.name.is_empty() {
        row(s, "Name", &a.name);
    }
    row(s, "Raid Level", level_name(a.level));
    row(s, "Raid Devices", a.raid_disks);
    s.push('\n');
    row(s, "Avail Dev Size", human_sectors(d.data_sectors));
    if a.component_sectors > 0 {
        row(s, "Used Dev Size", human_sectors(a.component_sectors));
    }
    if let Some(array) = a.array_sectors {
        row(s, "Array Size", human_sectors(array));
    }
    row(
        s,
        "Data Offset",
        format!("{} sectors", d.data_offset_sectors),
    );
    row(
        s,
        "Super Offset",
        format!("{} sectors", d.super_offset_sectors),
    );
    let state = if a.clean { "clean" } else { "active" };
    row(s, "State", state);
    if a.resync_offset_sectors != u64::MAX {
        row(
            s,
            "Resync Offset",
            format!("{} sectors", a.resync_offset_sectors),
        );
    }
    if let Some(b) = &a.bitmap {
        row(s, "Internal Bitmap", format!("at sector {}", b.sector));
    }
    if let Some(r) = &a.reshape {
        row(
            s,
            "Reshape pos'n",
            format!("{} sectors", r.position_sectors),
        );
        row(s, "Delta Devices", r.delta_disks);
    }
    row(s, "Events", a.events);
    if let Some(name) = layout_name(a.level, a.layout) {
        row(s, "Layout", name);
    }
    if a.chunk_sectors > 0 {
        row(s, "Chunk Size", format!("{}K", a.chunk_sectors / 2));
    }
    s.push('\n');
    row(s, "Device Role", role_text(d.slot));
    row(s, "Array State", array_state(info));
    s.push('\n');
}

fn role_text(slot: SlotState) -> String {
    match slot {
        SlotState::Active {
            role,
            recovery_offset_sectors: None,
        } => format!("Active device {role}"),
        SlotState::Active {
            role,
            recovery_offset_sectors: Some(r),
        } => {
            format!("Active device {role} (recovering, valid below sector {r})")
        }
        SlotState::Spare => "spare".into(),
        SlotState::Faulty => "faulty".into(),
        SlotState::Journal => "Journal".into(),
    }
}

/// mdadm's one-letter-per-role summary: 'A' active, '.' missing or failed,
/// as this superblock sees the array.
fn array_state(info: &MdInfo) -> String {
    let n = info.array.raid_disks as usize;
    let mut roles = vec!['.'; n];
    for e in &info.array.roster {
        if let SlotState::Active { role, .. } = e.slot {
            if let Some(c) = roles.get_mut(role as usize) {
                *c = 'A';
            }
        }
    }
    let roles: String = roles.into_iter().collect();
    format!("{roles} ('A' == active, '.' == missing)")
}

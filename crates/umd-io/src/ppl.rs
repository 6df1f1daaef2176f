//! Starting a PPL raid5: replay each member's partial parity log after a
//! dirty shutdown, then reset every log, as md does when it starts the
//! array (formats.md §2.11; the ranges are planned by `umd_engine::ppl`).
//!
//! Why before the array runs: until parity matches the data of every stripe
//! that was being written, a missing member would be rebuilt from wrong
//! parity. Replay needs no resync: each logged entry names exactly the rows
//! that may be torn, and the rest of the array was not being written.
//!
//! What is trusted: a member's newest unit (md's walk from the area start),
//! only if its header checksum and signature match; an entry only if its
//! partial parity matches its checksum, and only when every data chunk it
//! modified is present and in sync. Anything else is counted as a mismatch
//! and reported, naming the member and byte offset; the caller then keeps
//! the array dirty so the usual resync runs where it can.

use crate::host::PplArea;
use crate::member_file::MemberFile;
use umd_engine::ppl::plan_replay;
use umd_formats::ppl::{crc32c, scan, PplHeader, PPL_HEADER_BYTES};
use umd_layout::geometry::Geometry;

/// One present member of the array, as replay needs it.
pub struct PplMember<'a> {
    /// Its role (data slot).
    pub role: u32,
    /// Its name, for messages.
    pub name: &'a str,
    /// The open member.
    pub file: &'a MemberFile,
    /// Device sector where its data starts.
    pub data_offset_sectors: u64,
    /// Whether all its data is in sync (not recovering).
    pub in_sync: bool,
    /// Its PPL area.
    pub area: PplArea,
}

/// What a start did with the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Entries replayed.
    pub entries: usize,
    /// Headers or entries that could not be trusted (md's mismatch count).
    pub mismatches: usize,
    /// One line per mismatch or skipped entry, naming member and offset.
    pub notes: Vec<String>,
}

/// Replay the logs (when `dirty`), then zero every member's area and write
/// an empty header, as md does on start. Errors are I/O failures, naming the
/// member and offset.
pub fn replay_and_reset(
    geometry: &Geometry,
    members: &[PplMember<'_>],
    signature: u32,
    dirty: bool,
) -> Result<Replayed, String> {
    let mut out = Replayed::default();
    for m in members {
        if dirty {
            replay_member(geometry, members, m, signature, &mut out)?;
        }
    }
    for m in members {
        reset(m, signature)?;
    }
    Ok(out)
}

fn io_error(m: &PplMember<'_>, e: impl std::fmt::Display) -> String {
    format!("{}: partial parity log: {e}", m.name)
}

/// Replay the newest unit of `log`'s area.
fn replay_member(
    geometry: &Geometry,
    members: &[PplMember<'_>],
    log: &PplMember<'_>,
    signature: u32,
    out: &mut Replayed,
) -> Result<(), String> {
    let base = log.area.sector * 512;
    let found = scan(log.area.sectors * 512, signature, |at, buf| {
        log.file.read_exact_at(base + at, buf)
    })
    .map_err(|e| io_error(log, e))?;
    let Some(header) = found.header else {
        out.mismatches += 1;
        let why = found.stopped.map_or_else(
            || "the area is too small for a header".to_owned(),
            |e| e.at_device_offset(base).to_string(),
        );
        out.notes.push(format!("{}: no valid log: {why}", log.name));
        return Ok(());
    };
    let mut pp_at = base + found.offset_bytes + PPL_HEADER_BYTES as u64;
    for (i, e) in header.entries.iter().enumerate() {
        let here = pp_at;
        pp_at += u64::from(e.pp_size);
        let mut pp = vec![0u8; e.pp_size as usize];
        log.file
            .read_exact_at(here, &mut pp)
            .map_err(|err| io_error(log, err))?;
        let entry_at = base + found.offset_bytes + 536 + 24 * i as u64;
        if crc32c(&pp) != e.checksum {
            out.mismatches += 1;
            out.notes.push(format!(
                "{}: PPL entry {i} at byte {entry_at}: partial parity at byte {here} does not match its checksum",
                log.name
            ));
            continue;
        }
        let plan = match plan_replay(geometry, e, log.role) {
            Ok(p) => p,
            Err(why) => {
                out.mismatches += 1;
                out.notes.push(format!(
                    "{}: PPL entry {i} at byte {entry_at}: {why}",
                    log.name
                ));
                continue;
            }
        };
        let source = |role: u32| members.iter().find(|m| m.role == role && m.in_sync);
        if plan.data.iter().any(|d| source(d.at.role).is_none()) {
            out.notes.push(format!(
                "{}: PPL entry {i} at byte {entry_at}: a modified chunk's member is missing; its stripe is not replayed",
                log.name
            ));
            continue;
        }
        let mut data = Vec::with_capacity(plan.data.len());
        for d in &plan.data {
            let m = source(d.at.role).ok_or("checked above")?;
            let mut buf = vec![0u8; d.rows as usize * 512];
            m.file
                .read_exact_at((m.data_offset_sectors + d.at.dev_sector) * 512, &mut buf)
                .map_err(|err| io_error(m, err))?;
            data.push(buf);
        }
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = vec![0u8; plan.rows as usize * 512];
        plan.parity(plan.has_pp.then_some(&pp[..]), &refs, &mut parity);
        log.file
            .write_all_at(
                (log.data_offset_sectors + plan.parity.dev_sector) * 512,
                &parity,
            )
            .map_err(|err| io_error(log, err))?;
        out.entries += 1;
    }
    log.file.sync_data().map_err(|e| io_error(log, e))
}

/// Zero the area and write an empty header at its start (md's start).
fn reset(m: &PplMember<'_>, signature: u32) -> Result<(), String> {
    let bytes = m.area.sectors as usize * 512;
    if bytes < PPL_HEADER_BYTES {
        return Err(format!(
            "{}: the PPL area ({} sectors) is smaller than a header",
            m.name, m.area.sectors
        ));
    }
    let mut area = vec![0u8; bytes];
    PplHeader::empty(signature)
        .write_to(&mut area)
        .map_err(|e| io_error(m, e))?;
    m.file
        .write_all_at(m.area.sector * 512, &area)
        .and_then(|()| m.file.sync_data())
        .map_err(|e| io_error(m, e))
}

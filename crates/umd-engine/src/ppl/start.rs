//! Starting a PPL raid5: find every member's log area, replay the logs
//! after a dirty shutdown, then reset every log, as md does when it starts
//! the array (formats.md §2.11). The member I/O is the caller's
//! ([`PplDisks`]): the real start reads and writes files, the simulator
//! its simulated disks, and both run this one copy of the rules.
//!
//! Why before the array runs: until parity matches the data of every stripe
//! that was being written, a missing member would be rebuilt from wrong
//! parity. Replay needs no resync: each logged entry names exactly the rows
//! that may be torn, and the rest of the array was not being written. It
//! also decides whether the array starts clean (md marks it clean when
//! every logged entry replayed and nothing was untrustworthy), which the
//! engine's configuration needs before it exists.
//!
//! What is trusted: a member's newest unit (md's walk from the area start),
//! only if its header checksum and signature match; an entry only if its
//! partial parity matches its checksum, and only when every data chunk it
//! modified is present and in sync there (a recovering member counts below
//! its checkpoint, as md counts it). Anything else is counted as a mismatch
//! and reported, naming the member and byte offset; the array then stays
//! dirty so the usual resync runs where it can.

use super::{plan_replay, ReplayData};
use crate::assemble::{ActiveMember, Assembly};
use umd_formats::ppl::{crc32c, scan, signature, PplHeader, PPL_HEADER_BYTES};
use umd_formats::probe::Metadata;
use umd_layout::geometry::{Geometry, Level};

/// Where a member's PPL area is: absolute device sector and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PplArea {
    /// Absolute device sector of the area's first header.
    pub sector: u64,
    /// Sectors in the area.
    pub sectors: u64,
}

impl PplArea {
    /// The area a member's metadata announces (1.x with PPL), if any.
    #[must_use]
    pub fn of(metadata: &Metadata) -> Option<Self> {
        match metadata {
            Metadata::V1(sb) => sb
                .ppl_area()
                .map(|(sector, sectors, _)| Self { sector, sectors }),
            _ => None,
        }
    }
}

/// The members' I/O, by the caller's member index. Errors are messages
/// (the caller's I/O error, shown after the member's name).
pub trait PplDisks {
    /// Read `buf.len()` bytes at byte `offset` of `member`.
    fn read(&mut self, member: usize, offset: u64, buf: &mut [u8]) -> Result<(), String>;
    /// Write `bytes` at byte `offset` of `member`.
    fn write(&mut self, member: usize, offset: u64, bytes: &[u8]) -> Result<(), String>;
    /// Make every write to `member` so far durable.
    fn sync(&mut self, member: usize) -> Result<(), String>;
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

/// The logs of a started PPL array, ready for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PplStart {
    /// The header signature (CRC-32C of the array UUID).
    pub signature: u32,
    /// Each member's area, by the caller's member index.
    pub areas: Vec<Option<PplArea>>,
    /// Whether the array was dirty, so the logs were replayed.
    pub replayed_dirty: bool,
    /// What the replay did.
    pub replayed: Replayed,
}

/// One present member of the array, as replay needs it.
struct LogMember<'a> {
    role: u32,
    member: &'a ActiveMember,
    area: PplArea,
}

/// For a PPL raid5 (`areas`, by the caller's member index, from
/// [`PplArea::of`]): replay the logs when the assembly is dirty, reset them,
/// and mark the assembly clean when replay made every logged stripe
/// consistent, as md does; md's write-hole warning is dropped, the logs
/// having closed it. `Ok(None)` for arrays without PPL. Errors name the
/// member and what was wrong.
pub fn open_logs(
    assembly: &mut Assembly,
    areas: Vec<Option<PplArea>>,
    disks: &mut impl PplDisks,
) -> Result<Option<PplStart>, String> {
    let area = |index: usize| areas.get(index).copied().flatten();
    let present: Vec<(u32, &ActiveMember)> = assembly
        .members
        .iter()
        .enumerate()
        .filter_map(|(role, m)| m.as_ref().map(|m| (role as u32, m)))
        .collect();
    if present.iter().all(|(_, m)| area(m.index).is_none()) {
        return Ok(None);
    }
    if assembly.geometry.level() != Level::Raid5 {
        return Err(format!(
            "{}: a partial parity log on a level other than raid5",
            assembly.name
        ));
    }
    // A unit holds up to a chunk of partial parity after its header.
    let chunk_bytes = u64::from(assembly.geometry.chunk_sectors()) * 512;
    let mut members = Vec::with_capacity(present.len());
    for &(role, m) in &present {
        let area = area(m.index)
            .ok_or_else(|| format!("{}: PPL array member without a PPL area", m.name))?;
        if area.sectors * 512 < chunk_bytes + PPL_HEADER_BYTES as u64 {
            return Err(format!(
                "{}: its PPL area ({} sectors) cannot hold a chunk ({chunk_bytes} bytes) of \
                 partial parity; umd logs a stripe's partial parity in one unit",
                m.name, area.sectors
            ));
        }
        members.push(LogMember {
            role,
            member: m,
            area,
        });
    }
    let signature = signature(&assembly.uuid.0);
    let dirty = !assembly.clean;
    let mut replayed = Replayed::default();
    if dirty {
        for log in &members {
            replay_member(
                &assembly.geometry,
                &members,
                log,
                signature,
                disks,
                &mut replayed,
            )?;
        }
    }
    for m in &members {
        reset(m, signature, disks)?;
    }
    assembly.warnings.retain(|w| !w.contains("write hole"));
    if dirty && replayed.entries > 0 && replayed.mismatches == 0 {
        assembly.clean = true;
    }
    Ok(Some(PplStart {
        signature,
        areas,
        replayed_dirty: dirty,
        replayed,
    }))
}

#[cfg(test)]
mod tests;

fn io_error(m: &LogMember<'_>, e: impl std::fmt::Display) -> String {
    format!("{}: partial parity log: {e}", m.member.name)
}

/// Replay the newest unit of `log`'s area.
fn replay_member(
    geometry: &Geometry,
    members: &[LogMember<'_>],
    log: &LogMember<'_>,
    signature: u32,
    disks: &mut impl PplDisks,
    out: &mut Replayed,
) -> Result<(), String> {
    let base = log.area.sector * 512;
    let index = log.member.index;
    let found = scan(log.area.sectors * 512, signature, |at, buf| {
        disks
            .read(index, base + at, buf)
            .map_err(std::io::Error::other)
    })
    .map_err(|e| io_error(log, e))?;
    let Some(header) = found.header else {
        out.mismatches += 1;
        let why = found.stopped.map_or_else(
            || "the area is too small for a header".to_owned(),
            |e| e.at_device_offset(base).to_string(),
        );
        out.notes
            .push(format!("{}: no valid log: {why}", log.member.name));
        return Ok(());
    };
    let mut pp_at = base + found.offset_bytes + PPL_HEADER_BYTES as u64;
    for (i, e) in header.entries.iter().enumerate() {
        let here = pp_at;
        pp_at += u64::from(e.pp_size);
        let mut pp = vec![0u8; e.pp_size as usize];
        disks
            .read(index, here, &mut pp)
            .map_err(|err| io_error(log, err))?;
        let entry_at = base + found.offset_bytes + 536 + 24 * i as u64;
        let name = &log.member.name;
        if crc32c(&pp) != e.checksum {
            out.mismatches += 1;
            out.notes.push(format!(
                "{name}: PPL entry {i} at byte {entry_at}: partial parity at byte {here} does not match its checksum"
            ));
            continue;
        }
        let plan = match plan_replay(geometry, e, log.role) {
            Ok(p) => p,
            Err(why) => {
                out.mismatches += 1;
                out.notes
                    .push(format!("{name}: PPL entry {i} at byte {entry_at}: {why}"));
                continue;
            }
        };
        // A chunk is read from its member if the member is in sync, or
        // still recovering but already past the chunk's rows (md reads a
        // recovering member below its checkpoint too).
        let source = |d: &ReplayData| {
            members.iter().find(|m| {
                m.role == d.at.role
                    && m.member
                        .recovery_offset_sectors
                        .is_none_or(|r| d.at.dev_sector + d.rows <= r)
            })
        };
        if plan.data.iter().any(|d| source(d).is_none()) {
            out.notes.push(format!(
                "{name}: PPL entry {i} at byte {entry_at}: a modified chunk's member is missing; its stripe is not replayed"
            ));
            continue;
        }
        let mut data = Vec::with_capacity(plan.data.len());
        for d in &plan.data {
            let m = source(d).ok_or("checked above")?;
            let mut buf = vec![0u8; d.rows as usize * 512];
            let at = (m.member.data_offset_sectors + d.at.dev_sector) * 512;
            disks
                .read(m.member.index, at, &mut buf)
                .map_err(|err| io_error(m, err))?;
            data.push(buf);
        }
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = vec![0u8; plan.rows as usize * 512];
        plan.parity(plan.has_pp.then_some(&pp[..]), &refs, &mut parity);
        let at = (log.member.data_offset_sectors + plan.parity.dev_sector) * 512;
        disks
            .write(index, at, &parity)
            .map_err(|err| io_error(log, err))?;
        out.entries += 1;
    }
    disks.sync(index).map_err(|e| io_error(log, e))
}

/// Zero the area and write an empty header at its start (md's start).
fn reset(m: &LogMember<'_>, signature: u32, disks: &mut impl PplDisks) -> Result<(), String> {
    let bytes = m.area.sectors as usize * 512;
    let mut area = vec![0u8; bytes];
    PplHeader::empty(signature)
        .write_to(&mut area)
        .map_err(|e| io_error(m, e))?;
    disks
        .write(m.member.index, m.area.sector * 512, &area)
        .and_then(|()| disks.sync(m.member.index))
        .map_err(|e| io_error(m, e))
}

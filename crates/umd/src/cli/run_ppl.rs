//! `umd run` on a raid5 with a partial parity log (md's PPL): find every
//! member's log area, replay the logs after a dirty shutdown and reset them,
//! before the array runs; then the host logs every stripe write.
//!
//! Why here and not in the host: replay decides whether the array starts
//! clean (md marks it clean when every logged entry replayed and nothing was
//! untrustworthy), which the engine's configuration needs before it exists.

use super::members::Opened;
use umd_engine::Assembly;
use umd_formats::ppl::{signature, PPL_HEADER_BYTES};
use umd_formats::probe::Metadata;
use umd_io::host::PplArea;
use umd_io::ppl::{replay_and_reset, PplMember};
use umd_layout::geometry::Level;

/// The logs of a PPL array, ready for the host.
pub(crate) struct PplStart {
    /// The header signature (CRC-32C of the array UUID).
    pub(crate) signature: u32,
    /// Each member's area, by member index.
    pub(crate) areas: Vec<Option<PplArea>>,
}

/// The PPL area of every opened member, if the array is a PPL raid5.
fn areas(opened: &[Opened]) -> Vec<Option<PplArea>> {
    opened
        .iter()
        .map(|o| match &o.metadata {
            Metadata::V1(sb) => sb
                .ppl_area()
                .map(|(sector, sectors, _)| PplArea { sector, sectors }),
            _ => None,
        })
        .collect()
}

/// For a PPL raid5: replay (when dirty) and reset the logs; when replay
/// made every logged stripe consistent, mark the assembly clean, as md
/// does. `None` for arrays without PPL.
pub(crate) fn start(
    opened: &[Opened],
    assembly: &mut Assembly,
) -> Result<Option<PplStart>, String> {
    let areas = areas(opened);
    let present: Vec<_> = assembly
        .members
        .iter()
        .enumerate()
        .filter_map(|(role, m)| m.as_ref().map(|m| (role as u32, m)))
        .collect();
    if present.iter().all(|(_, m)| areas[m.index].is_none()) {
        return Ok(None);
    }
    if assembly.geometry.level() != Level::Raid5 {
        return Err(format!(
            "{}: a partial parity log on a level other than raid5",
            assembly.name
        ));
    }
    let mut members = Vec::with_capacity(present.len());
    for (role, m) in &present {
        let area = areas[m.index]
            .ok_or_else(|| format!("{}: PPL array member without a PPL area", m.name))?;
        // A unit holds up to a chunk of partial parity after its header.
        let chunk_bytes = u64::from(assembly.geometry.chunk_sectors()) * 512;
        if area.sectors * 512 < chunk_bytes + PPL_HEADER_BYTES as u64 {
            return Err(format!(
                "{}: its PPL area ({} sectors) cannot hold a chunk ({chunk_bytes} bytes) of \
                 partial parity; umd logs a stripe's partial parity in one unit",
                m.name, area.sectors
            ));
        }
        members.push(PplMember {
            role: *role,
            name: &m.name,
            file: &opened[m.index].file,
            data_offset_sectors: m.data_offset_sectors,
            in_sync: m.recovery_offset_sectors.is_none(),
            area,
        });
    }
    let signature = signature(&assembly.uuid.0);
    let dirty = !assembly.clean;
    let replayed = replay_and_reset(&assembly.geometry, &members, signature, dirty)?;
    for note in &replayed.notes {
        eprintln!("umd: warning: {note}");
    }
    // Assembly warns of md's write hole on a dirty degraded raid5; the logs
    // just closed it.
    assembly.warnings.retain(|w| !w.contains("write hole"));
    if dirty {
        eprintln!(
            "umd: {}: partial parity log: {} entries replayed, {} mismatches",
            assembly.name, replayed.entries, replayed.mismatches
        );
        if replayed.entries > 0 && replayed.mismatches == 0 {
            assembly.clean = true;
        }
    }
    Ok(Some(PplStart { signature, areas }))
}

//! `umd run` on a raid5 with a partial parity log (md's PPL): the logs are
//! replayed after a dirty shutdown and reset before the array runs
//! (`umd_engine::ppl::start`, on the opened member files); then the host
//! logs every stripe write.

use super::members::Opened;
use umd_engine::ppl::start::{open_logs, PplArea, PplDisks, PplStart};
use umd_engine::Assembly;

/// The opened members' files, by member index.
struct Files<'a>(&'a [Opened]);

impl Files<'_> {
    fn file(&self, member: usize) -> Result<&umd_io::MemberFile, String> {
        self.0
            .get(member)
            .map(|o| &o.file)
            .ok_or_else(|| format!("no member {member}"))
    }
}

impl PplDisks for Files<'_> {
    fn read(&mut self, member: usize, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let file = self.file(member)?;
        file.read_exact_at(offset, buf).map_err(|e| e.to_string())
    }

    fn write(&mut self, member: usize, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let file = self.file(member)?;
        file.write_all_at(offset, bytes).map_err(|e| e.to_string())
    }

    fn sync(&mut self, member: usize) -> Result<(), String> {
        self.file(member)?.sync_data().map_err(|e| e.to_string())
    }
}

/// For a PPL raid5: replay (when dirty) and reset the logs, reporting what
/// replay did; the assembly is marked clean when replay made every logged
/// stripe consistent, as md does. `None` for arrays without PPL.
pub(crate) fn start(
    opened: &[Opened],
    assembly: &mut Assembly,
) -> Result<Option<PplStart>, String> {
    let areas = opened.iter().map(|o| PplArea::of(&o.metadata)).collect();
    let Some(logs) = open_logs(assembly, areas, &mut Files(opened))? else {
        return Ok(None);
    };
    for note in &logs.replayed.notes {
        eprintln!("umd: warning: {note}");
    }
    if logs.replayed_dirty {
        eprintln!(
            "umd: {}: partial parity log: {} entries replayed, {} mismatches",
            assembly.name, logs.replayed.entries, logs.replayed.mismatches
        );
    }
    Ok(Some(logs))
}

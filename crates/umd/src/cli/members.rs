//! Opening members and reading their metadata: shared by every verb that takes MEMBER...

use std::path::{Path, PathBuf};
use umd_engine::Candidate;
use umd_formats::info::ArrayUuid;
use umd_formats::probe::{probe, Metadata};
use umd_io::MemberFile;

/// An opened member and what its metadata says.
pub(crate) struct Opened {
    pub(crate) path: PathBuf,
    pub(crate) file: MemberFile,
    pub(crate) metadata: Metadata,
}

/// Open `path` and probe it; the error is one line naming the member.
pub(crate) fn open_and_probe(path: &Path) -> Result<Opened, String> {
    let file = MemberFile::open_read_only(path).map_err(|e| e.to_string())?;
    probe_opened(path, file)
}

/// Choose one array from members that may hold several (a DDF container),
/// and turn each member into an assembly candidate for it.
/// Open `path` read-write (for `umd run`) and read its metadata.
pub(crate) fn open_and_probe_rw(path: &Path) -> Result<Opened, String> {
    let file = MemberFile::open_read_write(path).map_err(|e| e.to_string())?;
    probe_opened(path, file)
}

fn probe_opened(path: &Path, file: MemberFile) -> Result<Opened, String> {
    let mut read =
        |offset: u64, buf: &mut [u8]| file.read_exact_at(offset, buf).map_err(|e| e.source);
    let metadata =
        probe(file.len_bytes(), &mut read).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Opened {
        path: path.to_path_buf(),
        file,
        metadata,
    })
}

pub(crate) fn candidates(
    opened: &[Opened],
    subarray: Option<&str>,
) -> Result<Vec<Candidate>, String> {
    let per_member: Vec<_> = opened.iter().map(|o| o.metadata.infos()).collect();
    // Arrays in order of first appearance, with their names.
    let mut arrays: Vec<(ArrayUuid, String)> = Vec::new();
    for info in per_member.iter().flatten() {
        if !arrays.iter().any(|(u, _)| *u == info.array.uuid) {
            arrays.push((info.array.uuid, info.array.name.clone()));
        }
    }
    let several_in_one = per_member.iter().any(|infos| infos.len() > 1);
    let chosen: Option<ArrayUuid> = match subarray {
        Some(want) => Some(pick(&arrays, want)?),
        None if several_in_one => {
            let list: Vec<String> = arrays
                .iter()
                .enumerate()
                .map(|(i, (_, n))| format!("{i}: {n}"))
                .collect();
            return Err(format!(
                "the members hold several arrays ({}); choose one with --subarray",
                list.join(", ")
            ));
        }
        None => None,
    };
    let mut out = Vec::new();
    for (index, (o, infos)) in opened.iter().zip(per_member).enumerate() {
        let info = match chosen {
            Some(uuid) => infos.into_iter().find(|i| i.array.uuid == uuid),
            None => infos.into_iter().next(),
        };
        let Some(info) = info else {
            return Err(format!(
                "{}: not a member of the chosen array",
                o.path.display()
            ));
        };
        out.push(Candidate {
            index,
            name: o.path.display().to_string(),
            info,
        });
    }
    Ok(out)
}

fn pick(arrays: &[(ArrayUuid, String)], want: &str) -> Result<ArrayUuid, String> {
    if let Some((uuid, _)) = arrays.iter().find(|(_, name)| name == want) {
        return Ok(*uuid);
    }
    if let Some((uuid, _)) = want.parse::<usize>().ok().and_then(|i| arrays.get(i)) {
        return Ok(*uuid);
    }
    if let Some((uuid, _)) = arrays.iter().find(|(uuid, _)| uuid.to_string() == want) {
        return Ok(*uuid);
    }
    Err(format!("no array {want:?} on these members"))
}

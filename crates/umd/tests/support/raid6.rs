//! raid6 arrays for the check and repair tests: one made and written by
//! umd, and blocks of its member files corrupted behind its back.

use super::{create, examine_field, mdadm_examine, pseudo_random, run_ok, sparse_members, Running};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes of md's mismatch unit, one 4 KiB block.
pub(crate) const BLOCK_BYTES: usize = 4096;

/// A left-symmetric raid6 on 5 members of 16 MiB, 64 KiB chunks, made by
/// `umd create` in `dir` and filled through NBD with `mib` MiB of
/// pseudo-random bytes from `seed`; stopped cleanly.
pub(crate) fn written_raid6(dir: &Path, mib: usize, seed: u64) -> Vec<PathBuf> {
    let members = sparse_members(dir, 5, 16);
    create(
        &members,
        &[
            "--level",
            "6",
            "--raid-devices",
            "5",
            "--chunk",
            "64",
            "--assume-clean",
        ],
    );
    let image = dir.join("data.bin");
    fs::write(&image, pseudo_random(mib << 20, seed)).expect("write image");
    let run = Running::start(dir, &members);
    run_ok(Command::new("nbdcopy").arg(&image).arg(run.uri()));
    run.stop();
    members
}

/// `Data Offset : 2048 sectors` from the host's mdadm.
pub(crate) fn data_offset_sectors(member: &Path) -> u64 {
    let text = mdadm_examine(member);
    examine_field(&text, "Data Offset")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no Data Offset for {}:\n{text}", member.display()))
}

/// Change every byte of the 4 KiB block at member sector `sector` (past the
/// data offset) of `member`.
pub(crate) fn corrupt_block(member: &Path, offset_sectors: u64, sector: u64) {
    let mut bytes = fs::read(member).expect("read member");
    let at = usize::try_from((offset_sectors + sector) * 512).expect("offset fits");
    for b in &mut bytes[at..at + BLOCK_BYTES] {
        *b = b.wrapping_add(0x3d);
    }
    fs::write(member, bytes).expect("write member");
}

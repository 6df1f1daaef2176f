//! Moving test data through a running array's NBD export with real
//! clients (nbdcopy, nbdinfo), and where md put the data on a member.

use super::{examine_field, mdadm_examine, run_ok, Running, TempDir};
use std::path::Path;
use std::process::Command;

/// The data offset of an md 1.x member, as the host's mdadm reads it.
pub(crate) fn data_offset_sectors(member: &Path) -> u64 {
    let text = mdadm_examine(member);
    examine_field(&text, "Data Offset")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no data offset:\n{text}"))
}

/// The export's size in bytes, as nbdinfo reads it.
pub(crate) fn export_size(run: &Running) -> usize {
    let out = run_ok(Command::new("nbdinfo").arg("--size").arg(run.uri()));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("nbdinfo prints the size")
}

/// Write `data` at the export's start with nbdcopy.
pub(crate) fn copy_in(dir: &TempDir, run: &Running, data: &[u8]) {
    let src = dir.path().join("data.bin");
    std::fs::write(&src, data).expect("source");
    run_ok(Command::new("nbdcopy").arg(&src).arg(run.uri()));
}

/// The export's whole content, read with nbdcopy.
pub(crate) fn copy_out(dir: &TempDir, run: &Running) -> Vec<u8> {
    let back = dir.path().join("back.bin");
    run_ok(Command::new("nbdcopy").arg(run.uri()).arg(&back));
    std::fs::read(&back).expect("read back")
}

//! The crash of the PPL tests. `crash_mid_write` kills `umd run` (`kill -9`)
//! while fio writes only the first data chunk of each stripe (strided
//! zones: 64 KiB written, 64 KiB skipped, on a 3-member raid5 with 64 KiB
//! chunks), so every second data chunk was never written in flight.
//!
//! `lose_logged_parity` then makes it the worst it can be: the parity rows of
//! every stripe a member's log names are overwritten with garbage, as if
//! every parity write in flight was lost half done. Only replay makes them
//! right again. The array must be dirty (a crash mid-write). Arrays are 3-member raid5 1.2 made by `umd create` with
//! 64 KiB chunks (member i holds role i).

use super::support::{
    create, examine_field, mdadm_examine, wait_until_clean, wait_until_writing, write_storm,
    Running,
};
use std::path::PathBuf;
use std::time::Duration;
use umd_formats::ppl::{PplHeader, PPL_HEADER_BYTES};

/// The PPL area of a 1.2 member created by umd: superblock at sector 8,
/// area 8 sectors after it.
const PPL_AREA_BYTE: u64 = 16 * 512;
/// Sectors per chunk.
const CHUNK_SECTORS: u64 = 128;

/// Overwrite, on each member, the parity rows of every entry of its log
/// (member i holds role i: `umd create` order). Returns the entries hit.
pub(crate) fn lose_logged_parity(members: &[PathBuf]) -> usize {
    use std::os::unix::fs::FileExt;
    let mut hit = 0;
    for m in members {
        let text = mdadm_examine(m);
        // A clean array's log is stale by design (nothing was in flight):
        // only a dirty one models a crash.
        let state = examine_field(&text, "State").unwrap_or_default();
        assert!(
            state.starts_with("active"),
            "the array is not dirty: {state:?}"
        );
        let data_offset: u64 = examine_field(&text, "Data Offset")
            .and_then(|v| v.split_whitespace().next().map(str::to_owned))
            .and_then(|v| v.parse().ok())
            .expect("data offset");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(m)
            .expect("open");
        let mut head = vec![0u8; PPL_HEADER_BYTES];
        file.read_exact_at(&mut head, PPL_AREA_BYTE)
            .expect("read log");
        let Ok(header) = PplHeader::parse(&head) else {
            continue;
        };
        for e in &header.entries {
            let data_disks = 2;
            let rows = if e.pp_size > 0 {
                u64::from(e.pp_size) / 512
            } else {
                u64::from(e.data_size) / 512 / data_disks
            };
            let stripe = e.data_sector / (CHUNK_SECTORS * data_disks);
            let row = e.data_sector % CHUNK_SECTORS;
            let at = (data_offset + stripe * CHUNK_SECTORS + row) * 512;
            file.write_all_at(&vec![0x5a; rows as usize * 512], at)
                .expect("clobber parity");
            hit += 1;
        }
    }
    hit
}

/// Bytes of a chunk of the PPL test arrays.
pub(crate) const CHUNK: usize = 64 * 1024;

/// `umd create` a 3-member PPL raid5 with 64 KiB chunks on `members`.
pub(crate) fn create_ppl_raid5(members: &[PathBuf]) {
    create(
        members,
        &[
            "--level",
            "5",
            "--raid-devices",
            "3",
            "--chunk",
            "64",
            "--consistency-policy",
            "ppl",
        ],
    );
}

/// Once the array is clean, write the first data chunk of every stripe of
/// its `size` bytes with fio and `kill -9` `umd run` while that goes on.
pub(crate) fn crash_mid_write(run: Running, size: usize) {
    wait_until_clean(&run);
    let mut storm = write_storm(
        &run,
        &[
            "--zonemode=strided".to_owned(),
            format!("--zonerange={CHUNK}"),
            format!("--zonesize={CHUNK}"),
            format!("--zoneskip={CHUNK}"),
            format!("--size={size}"),
        ],
    );
    wait_until_writing(&run);
    std::thread::sleep(Duration::from_millis(800));
    run.kill9();
    let _ = storm.kill();
    let _ = storm.wait();
}

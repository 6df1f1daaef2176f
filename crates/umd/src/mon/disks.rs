//! The container's disks as the manager holds them: opened once at start,
//! read to load the metadata, written when the metadata changes.
//!
//! Why the manager writes the disks itself: with external metadata the
//! engine never writes metadata (protocol.md §5), and mdmon writes its
//! metadata straight to the member devices. Each write is made durable
//! (`fdatasync`) before [`Disks::write`] returns, because the caller
//! acknowledges the engine right after: an acknowledged dirty mark that a
//! power cut could lose would defeat the resync it exists for.
//!
//! [`write_metadata`] is the write policy on its own, over any
//! [`MetadataSink`], so the simulator runs the same policy on its disks.

use umd_engine::durability;
use umd_engine::native::MetadataWrite;
use umd_io::MemberFile;

/// A container disk the manager has open.
pub struct Disk {
    /// `dev-NAME` in the engine's attributes.
    pub name: String,
    /// Where it is (what `new_dev` is given when it becomes a spare).
    pub path: std::path::PathBuf,
    /// The open device.
    pub file: MemberFile,
}

/// Every disk of the container, in the engine's order.
pub struct Disks {
    disks: Vec<Disk>,
}

impl Disks {
    /// Open each `(name, path)` read-write.
    pub fn open(list: &[(String, std::path::PathBuf)]) -> Result<Self, String> {
        let mut disks = Vec::with_capacity(list.len());
        for (name, path) in list {
            let file = MemberFile::open_read_write(path).map_err(|e| format!("{name}: {e}"))?;
            disks.push(Disk {
                name: name.clone(),
                path: path.clone(),
                file,
            });
        }
        Ok(Self { disks })
    }

    /// A disk given to the container while the manager runs; it takes the
    /// next index (the handler's numbering, `MetadataHandler::add_disk`).
    pub fn add(&mut self, disk: Disk) {
        self.disks.push(disk);
    }

    /// The disks, in order.
    #[must_use]
    pub fn list(&self) -> &[Disk] {
        &self.disks
    }

    /// Write the metadata to the disks ([`write_metadata`]).
    pub fn write(&self, writes: &[MetadataWrite]) -> Result<(), String> {
        write_metadata(&mut FileSink(&self.disks), writes)
    }
}

/// The disks as [`write_metadata`] writes them.
struct FileSink<'a>(&'a [Disk]);

impl MetadataSink for FileSink<'_> {
    fn disks(&self) -> usize {
        self.0.len()
    }

    fn name(&self, disk: usize) -> String {
        self.0[disk].name.clone()
    }

    fn write(&mut self, disk: usize, offset_bytes: u64, bytes: &[u8]) -> Result<(), String> {
        self.0[disk]
            .file
            .write_all_at(offset_bytes, bytes)
            .map_err(|e| e.to_string())
    }

    fn sync(&mut self, disk: usize) -> Result<(), String> {
        self.0[disk].file.sync_data().map_err(|e| e.to_string())
    }
}

/// Where a manager's metadata blocks go: the container's disks by index.
/// The real manager writes files; the simulator its simulated disks, with
/// the same policy ([`write_metadata`]).
pub trait MetadataSink {
    /// Disks in the container.
    fn disks(&self) -> usize;
    /// A disk's name, for messages.
    fn name(&self, disk: usize) -> String;
    /// Write one block.
    fn write(&mut self, disk: usize, offset_bytes: u64, bytes: &[u8]) -> Result<(), String>;
    /// Make what was written to `disk` durable.
    fn sync(&mut self, disk: usize) -> Result<(), String>;
}

/// Make each disk about to be written durable first (the engine's data
/// writes that completed before this record: a clean mark or a resync
/// checkpoint must never reach stable storage ahead of the data it vouches
/// for, `umd_engine::durability::metadata_preflush`, as md writes its own
/// metadata with a preflush), then write the blocks phase by phase
/// (`member` = disk index), making each disk written in a phase durable
/// before the next phase starts (DDF's open, write, close of each copy,
/// `Ddf::write_update`). A disk whose write or sync fails is skipped from
/// then on (it has failed; its metadata is stale and the others record it
/// so), and the rest are still written: a failed disk must not keep the
/// dirty mark off the working ones, since the handler hands each change out
/// once. Fails (the caller must acknowledge nothing) only if no disk holds
/// the metadata durably.
pub fn write_metadata(sink: &mut dyn MetadataSink, writes: &[MetadataWrite]) -> Result<(), String> {
    let n = sink.disks();
    let mut touched = vec![false; n];
    let mut failed: Vec<Option<String>> = vec![None; n];
    if let Some(w) = writes.iter().find(|w| w.member >= n) {
        return Err(format!("metadata write for disk {} of {n}", w.member));
    }
    if durability::metadata_preflush() {
        for (disk, failure) in failed.iter_mut().enumerate() {
            if writes.iter().any(|w| w.member == disk) {
                if let Err(e) = sink.sync(disk) {
                    *failure = Some(format!("{}: {e}", sink.name(disk)));
                }
            }
        }
    }
    let phases = writes.iter().map(|w| w.phase).max().map_or(0, |p| p + 1);
    for phase in 0..phases {
        let mut written = vec![false; n];
        for w in writes.iter().filter(|w| w.phase == phase) {
            assert!(
                w.bytes.len() % 512 == 0,
                "metadata writes are whole sectors"
            );
            if failed[w.member].is_some() {
                continue;
            }
            touched[w.member] = true;
            written[w.member] = true;
            if let Err(e) = sink.write(w.member, w.offset_bytes, &w.bytes) {
                failed[w.member] = Some(format!("{}: {e}", sink.name(w.member)));
            }
        }
        for disk in 0..n {
            if !written[disk] || failed[disk].is_some() {
                continue;
            }
            if let Err(e) = sink.sync(disk) {
                failed[disk] = Some(format!("{}: {e}", sink.name(disk)));
            }
        }
    }
    let durable = (0..n)
        .filter(|&d| touched[d] && failed[d].is_none())
        .count();
    let failures: Vec<String> = failed.into_iter().flatten().collect();
    if durable == 0 && !failures.is_empty() {
        return Err(failures.join("; "));
    }
    for f in &failures {
        tracing::warn!(error = %f, "metadata not written to a failed disk");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Disks that log what happens to them; `failing` fail every I/O.
    struct Log {
        failing: Vec<usize>,
        ops: Vec<String>,
    }

    impl MetadataSink for Log {
        fn disks(&self) -> usize {
            3
        }
        fn name(&self, disk: usize) -> String {
            format!("d{disk}")
        }
        fn write(&mut self, disk: usize, offset_bytes: u64, _: &[u8]) -> Result<(), String> {
            self.ops.push(format!("write d{disk} {offset_bytes}"));
            if self.failing.contains(&disk) {
                return Err("gone".into());
            }
            Ok(())
        }
        fn sync(&mut self, disk: usize) -> Result<(), String> {
            self.ops.push(format!("sync d{disk}"));
            if self.failing.contains(&disk) {
                return Err("gone".into());
            }
            Ok(())
        }
    }

    fn block(member: usize, offset_bytes: u64) -> MetadataWrite {
        MetadataWrite {
            member,
            offset_bytes,
            bytes: vec![0; 512],
            phase: 0,
        }
    }

    #[test]
    fn each_disk_is_flushed_written_and_flushed_again() {
        let mut log = Log {
            failing: Vec::new(),
            ops: Vec::new(),
        };
        write_metadata(&mut log, &[block(0, 0), block(2, 512)]).expect("written");
        assert_eq!(
            log.ops,
            [
                "sync d0",
                "sync d2",
                "write d0 0",
                "write d2 512",
                "sync d0",
                "sync d2"
            ]
        );
    }

    #[test]
    fn a_failed_disk_does_not_keep_the_metadata_off_the_others() {
        // Found by the simulator: the first failed disk ended the write, so
        // the dirty mark reached no disk, and the handler, which hands each
        // change out once, never wrote it again before acknowledging.
        let mut log = Log {
            failing: vec![0],
            ops: Vec::new(),
        };
        write_metadata(&mut log, &[block(0, 0), block(0, 512), block(1, 0)]).expect("written");
        assert_eq!(log.ops, ["sync d0", "sync d1", "write d1 0", "sync d1"]);
        log.failing = vec![0, 1];
        log.ops.clear();
        assert!(write_metadata(&mut log, &[block(0, 0), block(1, 0)]).is_err());
    }
}

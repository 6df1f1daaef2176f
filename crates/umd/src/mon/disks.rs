//! The container's disks as the manager holds them: opened once at start,
//! read to load the metadata, written when the metadata changes.
//!
//! Why the manager writes the disks itself: with external metadata the
//! engine never writes metadata (protocol.md §5), and mdmon writes its
//! metadata straight to the member devices. Each write is made durable
//! (`fdatasync`) before [`Disks::write`] returns, because the caller
//! acknowledges the engine right after: an acknowledged dirty mark that a
//! power cut could lose would defeat the resync it exists for.

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

    /// The disks, in order.
    #[must_use]
    pub fn list(&self) -> &[Disk] {
        &self.disks
    }

    /// Write every block (`member` = disk index), then make each written
    /// disk durable. A failure names the disk and offset; the caller must
    /// not acknowledge anything the failed write was to record.
    pub fn write(&self, writes: &[MetadataWrite]) -> Result<(), String> {
        let mut touched = vec![false; self.disks.len()];
        for w in writes {
            let disk = self.disks.get(w.member).ok_or_else(|| {
                format!(
                    "metadata write for disk {} of {}",
                    w.member,
                    self.disks.len()
                )
            })?;
            assert!(
                w.bytes.len() % 512 == 0,
                "metadata writes are whole sectors"
            );
            disk.file
                .write_all_at(w.offset_bytes, &w.bytes)
                .map_err(|e| format!("{}: {e}", disk.name))?;
            touched[w.member] = true;
        }
        for (disk, _) in self.disks.iter().zip(&touched).filter(|(_, t)| **t) {
            disk.file
                .sync_data()
                .map_err(|e| format!("{}: {e}", disk.name))?;
        }
        Ok(())
    }
}

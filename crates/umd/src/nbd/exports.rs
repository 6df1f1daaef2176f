//! The named exports one NBD server offers, and what negotiation tells clients
//! about each.
//!
//! One process may host several arrays (a DDF container holds several virtual
//! disks), all behind one listener. The registry maps names to exports; the
//! server takes a [`Snapshot`] of it for every negotiation option, so an export
//! added or withdrawn while a client negotiates is seen by that client's next
//! option. Withdrawing only removes the name: a connection that already chose the
//! export holds its own `Arc` and keeps being served by it.
//!
//! Invariants: names are unique, at most [`NBD_STRING_BYTES_MAX`] bytes and free
//! of NUL; there are at most [`EXPORTS_MAX`] exports; every export's block sizes
//! passed [`export_info`] when it was added. The default export (what the empty
//! name selects) is the first name ever registered and stays that name even while
//! withdrawn, so a client asking for "the default" never silently gets another
//! array.

use std::io;
use std::sync::Arc;

use tracing::warn;

use super::proto::{
    ExportInfo, ExportSet, EXPORTS_MAX, NBD_DESCRIPTION_BYTES_MAX, NBD_FLAG_CAN_MULTI_CONN,
    NBD_FLAG_HAS_FLAGS, NBD_FLAG_READ_ONLY, NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA,
    NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES, NBD_STRING_BYTES_MAX,
};
use super::BlockExport;

/// Largest `NBD_INFO_BLOCK_SIZE` minimum the protocol allows (64 KiB).
const BLOCK_SIZE_MIN_LIMIT: u32 = 64 << 10;

/// One registered export.
struct Entry {
    name: String,
    export: Arc<dyn BlockExport>,
}

/// The exports a server offers, by name, in the order they were added.
pub(super) struct Registry {
    entries: Vec<Entry>,
    /// The name the empty name selects: the first ever added.
    default_name: Option<String>,
    /// The server's request limit, advertised as every export's maximum block.
    request_bytes_max: u32,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .field("default_name", &self.default_name)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry for a server whose requests are at most `request_bytes_max`.
    pub(super) fn new(request_bytes_max: u32) -> Self {
        Self {
            entries: Vec::new(),
            default_name: None,
            request_bytes_max,
        }
    }

    /// Offers `export` as `name`. Refuses a bad or duplicate name, a full registry,
    /// or block sizes the protocol cannot carry.
    pub(super) fn add(&mut self, name: String, export: Arc<dyn BlockExport>) -> io::Result<()> {
        if name.len() > NBD_STRING_BYTES_MAX || name.contains('\0') {
            return Err(invalid(format!(
                "export name {name:?} must be at most {NBD_STRING_BYTES_MAX} bytes without NUL"
            )));
        }
        if self.entries.iter().any(|e| e.name == name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("an export named {name:?} is already served"),
            ));
        }
        if self.entries.len() >= EXPORTS_MAX {
            return Err(invalid(format!(
                "cannot serve {name:?}: at most {EXPORTS_MAX} exports"
            )));
        }
        export_info(&name, &*export, self.request_bytes_max)?;
        self.default_name.get_or_insert_with(|| name.clone());
        self.entries.push(Entry { name, export });
        assert!(self.entries.len() <= EXPORTS_MAX, "export count is bounded");
        Ok(())
    }

    /// Stops offering `name`; returns its export, which connections that chose it
    /// keep using. `None` if no export has that name.
    pub(super) fn withdraw(&mut self, name: &str) -> Option<Arc<dyn BlockExport>> {
        let index = self.entries.iter().position(|e| e.name == name)?;
        let entry = self.entries.remove(index);
        assert!(
            self.entries.iter().all(|e| e.name != name),
            "names are unique"
        );
        Some(entry.export)
    }

    /// The names offered, in listing order.
    pub(super) fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// What a negotiation option may choose from right now. An export whose
    /// block sizes became invalid since it was added is left out (and logged).
    pub(super) fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot {
            infos: Vec::with_capacity(self.entries.len()),
            exports: Vec::with_capacity(self.entries.len()),
            default_name: self.default_name.clone().unwrap_or_default(),
        };
        for entry in &self.entries {
            match export_info(&entry.name, &*entry.export, self.request_bytes_max) {
                Ok(info) => {
                    snapshot.infos.push(info);
                    snapshot.exports.push(Arc::clone(&entry.export));
                }
                Err(error) => warn!(name = %entry.name, %error, "nbd: export not offered"),
            }
        }
        assert_eq!(snapshot.infos.len(), snapshot.exports.len(), "paired");
        snapshot
    }
}

/// The exports offered at one moment, with what negotiation says about each.
pub(super) struct Snapshot {
    infos: Vec<ExportInfo>,
    /// `exports[i]` is the export `infos[i]` describes.
    exports: Vec<Arc<dyn BlockExport>>,
    default_name: String,
}

impl Snapshot {
    /// The codec's view of this snapshot.
    pub(super) fn set(&self) -> ExportSet<'_> {
        ExportSet {
            exports: &self.infos,
            default_name: &self.default_name,
        }
    }

    /// The export at `index` of [`Snapshot::set`], as negotiation chose it.
    pub(super) fn take(mut self, index: usize) -> (ExportInfo, Arc<dyn BlockExport>) {
        assert!(index < self.infos.len(), "the codec chose from this set");
        let export = self.exports.swap_remove(index);
        let info = self.infos.swap_remove(index);
        (info, export)
    }
}

/// What negotiation advertises for `export` under `name`, checked against the
/// protocol's block size rules.
pub(super) fn export_info(
    name: &str,
    export: &dyn BlockExport,
    request_bytes_max: u32,
) -> io::Result<ExportInfo> {
    let min = export.block_size_min();
    let preferred = export.block_size_preferred();
    let max = request_bytes_max;
    if !min.is_power_of_two() || min > BLOCK_SIZE_MIN_LIMIT {
        return Err(invalid(format!(
            "{name:?}: block_size_min {min} must be a power of two up to 64 KiB"
        )));
    }
    if !preferred.is_power_of_two() || preferred < min {
        return Err(invalid(format!(
            "{name:?}: block_size_preferred {preferred} must be a power of two >= {min}"
        )));
    }
    if max < preferred || !max.is_multiple_of(min) {
        return Err(invalid(format!(
            "{name:?}: request_bytes_max {max} must be a multiple of {min} >= {preferred}"
        )));
    }
    // Every export advertises CAN_MULTI_CONN: a FLUSH on any connection to an
    // export makes durable the writes completed on all of its connections.
    let mut flags = NBD_FLAG_HAS_FLAGS
        | NBD_FLAG_SEND_FLUSH
        | NBD_FLAG_SEND_FUA
        | NBD_FLAG_SEND_TRIM
        | NBD_FLAG_SEND_WRITE_ZEROES
        | NBD_FLAG_CAN_MULTI_CONN;
    if export.read_only() {
        flags |= NBD_FLAG_READ_ONLY;
    }
    Ok(ExportInfo {
        name: name.to_owned(),
        description: bounded_description(export.description()),
        size_bytes: export.size_bytes(),
        transmission_flags: flags,
        block_size_min: min,
        block_size_preferred: preferred,
        block_size_max: max,
    })
}

/// Cuts a description to [`NBD_DESCRIPTION_BYTES_MAX`] at a character boundary.
fn bounded_description(mut text: String) -> String {
    if text.len() > NBD_DESCRIPTION_BYTES_MAX {
        let mut end = NBD_DESCRIPTION_BYTES_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    assert!(text.len() <= NBD_DESCRIPTION_BYTES_MAX, "cut to the bound");
    text
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nbd::mem_export::MemExport;

    fn mem(bytes: u64) -> Arc<dyn BlockExport> {
        Arc::new(MemExport::new(bytes))
    }

    #[test]
    fn names_are_unique_bounded_and_the_first_is_the_default() {
        let mut registry = Registry::new(1 << 20);
        registry.add("md0".into(), mem(1 << 20)).expect("first");
        registry.add("md1".into(), mem(2 << 20)).expect("second");
        let dup = registry.add("md0".into(), mem(1 << 20)).expect_err("dup");
        assert_eq!(dup.kind(), io::ErrorKind::AlreadyExists);
        assert!(registry.add("a\0b".into(), mem(1 << 20)).is_err());
        assert!(registry
            .add("x".repeat(NBD_STRING_BYTES_MAX + 1), mem(1 << 20))
            .is_err());
        let snapshot = registry.snapshot();
        assert_eq!(snapshot.set().find(b""), Some(0));
        assert_eq!(snapshot.set().find(b"md1"), Some(1));
        assert_eq!(snapshot.take(1).0.size_bytes, 2 << 20);
    }

    #[test]
    fn a_withdrawn_default_leaves_the_empty_name_unknown() {
        let mut registry = Registry::new(1 << 20);
        registry.add("md0".into(), mem(1 << 20)).expect("first");
        registry.add("md1".into(), mem(1 << 20)).expect("second");
        assert!(registry.withdraw("md0").is_some());
        assert!(registry.withdraw("md0").is_none(), "already gone");
        let snapshot = registry.snapshot();
        assert_eq!(snapshot.set().find(b""), None);
        assert_eq!(snapshot.set().find(b"md0"), None);
        assert_eq!(snapshot.set().find(b"md1"), Some(0));
        registry.add("md0".into(), mem(1 << 20)).expect("back");
        assert_eq!(registry.snapshot().set().find(b""), Some(1));
        assert_eq!(registry.names(), ["md1", "md0"]);
    }

    #[test]
    fn the_export_count_is_bounded() {
        let mut registry = Registry::new(1 << 20);
        for i in 0..EXPORTS_MAX {
            registry.add(format!("e{i}"), mem(4096)).expect("within");
        }
        assert!(registry.add("one-more".into(), mem(4096)).is_err());
    }

    #[test]
    fn descriptions_are_cut_at_a_character_boundary() {
        let long = "é".repeat(NBD_DESCRIPTION_BYTES_MAX);
        let cut = bounded_description(long);
        assert!(cut.len() <= NBD_DESCRIPTION_BYTES_MAX);
        assert!(cut.len() >= NBD_DESCRIPTION_BYTES_MAX - 1);
        assert_eq!(bounded_description("md0".into()), "md0");
    }
}

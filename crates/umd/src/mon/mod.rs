//! `umd mon`: the external metadata manager (mdmon), protocol.md §6.
//!
//! The engine never writes external metadata. It announces what must be
//! recorded (a clean array's first write, a failed member, the end of a
//! resync) through its attributes and waits; this manager records it in the
//! container's metadata, writes it to the disks, and only then acknowledges.
//!
//! Files: `handler.rs` is the interface a metadata format implements, `ddf/`
//! the DDF implementation; `decide.rs` the per-subarray decisions of one
//! pass (pure); `spare_plan.rs` when a subarray takes spares and how they
//! are placed (pure); `monitor.rs` the loop that observes, records, writes and
//! acknowledges; `disks.rs` the container's disks as the manager writes them;
//! `socket/` how tools reach a running manager (mdmon's control socket).

pub mod ddf;
pub mod decide;
pub mod disks;
#[doc(hidden)]
pub mod fuzz;
pub mod handler;
pub mod monitor;
pub mod socket;
pub mod spare_plan;

use disks::Disks;
use handler::MetadataHandler;

/// Load the metadata handler for `format` (`metadata_version`
/// `external:<format>`) from the container's disks.
pub fn load_handler(format: &str, disks: &Disks) -> Result<Box<dyn MetadataHandler>, String> {
    match format {
        "ddf" => {
            let devices = disks.list().iter().map(|d| {
                let read = |offset: u64, buf: &mut [u8]| {
                    d.file.read_exact_at(offset, buf).map_err(|e| e.source)
                };
                (d.file.len_bytes(), read)
            });
            let handler = ddf::DdfHandler::load(devices).map_err(|e| match e {
                ddf::LoadError::Probe { disk, error } => {
                    format!("{}: {error}", disks.list()[disk].name)
                }
                ddf::LoadError::NotDdf { disk } => {
                    format!("{}: no DDF metadata", disks.list()[disk].name)
                }
                other => format!("DDF container: {other}"),
            })?;
            Ok(Box::new(handler))
        }
        _ => Err(format!(
            "external:{format}: no metadata handler for this format"
        )),
    }
}

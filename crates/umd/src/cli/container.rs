//! Running a container's subarrays (DDF) for `umd run`: assemble every
//! virtual disk the members hold and start each as an externally managed
//! array, as mdadm assembles a container and its member arrays through sysfs
//! (protocol.md §7.1).
//!
//! Why the engine starts them the way it does: the engine never writes
//! external metadata, so it cannot know whether the metadata manager has
//! recorded anything. Redundant subarrays therefore start `readonly`
//! (`resync_start` taken from the metadata); the manager (`umd mon`) then
//! moves each to `read-auto` when its metadata says clean, or to `active`
//! when a resync is needed. raid0 and linear start read-write: they never go
//! dirty, and the manager does not watch them.
//!
//! Names: the container is `ddf-<first 8 hex digits of its UUID>`; subarray
//! `N` (the virtual disk's index in the VD table, as mdadm numbers them) has
//! `metadata_version` `external:/<container>/N`; each member is named after
//! its file, the same name in every subarray it serves, so the manager can
//! carry a failure from one subarray to the others (protocol.md §8.25).

use super::members::Opened;
use super::run::member_names;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use umd_engine::array::{Array, MetadataKind, Ro};
use umd_engine::start::array_config;
use umd_engine::{assemble, AssembleOptions, Candidate, Errno};
use umd_formats::info::ArrayUuid;
use umd_formats::probe::Metadata;
use umd_io::{AllowWrite, ArrayHost, HostParts, MemberFile};

/// One disk of the container.
#[derive(Debug, Clone)]
pub(crate) struct ContainerDisk {
    /// `dev-NAME` name.
    pub(crate) name: String,
    /// Where it is.
    pub(crate) path: PathBuf,
    /// Its size.
    pub(crate) size_bytes: u64,
}

/// One running subarray.
pub(crate) struct RunningSubarray {
    /// mdadm's subarray index (the VD's index in the VD table).
    pub(crate) index: u32,
    /// NBD export name: the VD's name, or its index when it has none.
    pub(crate) export: String,
    /// The running array.
    pub(crate) host: Arc<ArrayHost>,
}

/// A container whose subarrays run in this process.
pub(crate) struct RunningContainer {
    /// `ddf-XXXXXXXX`.
    pub(crate) name: String,
    /// The format name (`metadata_version` `external:<format>`).
    pub(crate) format: &'static str,
    /// Every disk given, in argument order.
    pub(crate) disks: Vec<ContainerDisk>,
    /// The subarrays started, by index.
    pub(crate) subarrays: Vec<RunningSubarray>,
}

/// Whether `opened` holds DDF metadata (a container to run with [`open_container`]).
pub(crate) fn is_container(opened: &[Opened]) -> bool {
    opened
        .iter()
        .any(|o| matches!(o.metadata, Metadata::Ddf(_)))
}

/// Assemble and start every subarray of the container on `members` (or
/// only `only`, by index or name).
pub(crate) fn open_container(
    opened: &[Opened],
    only: Option<&str>,
    force: bool,
    allow_write: AllowWrite,
) -> Result<RunningContainer, String> {
    let container_uuid = common_container(opened)?;
    let name = container_name(&container_uuid);
    let paths: Vec<PathBuf> = opened.iter().map(|o| o.path.clone()).collect();
    let names = member_names(&paths);
    let disks: Vec<ContainerDisk> = opened
        .iter()
        .zip(&names)
        .map(|(o, n)| ContainerDisk {
            name: n.clone(),
            path: o.path.clone(),
            size_bytes: o.file.len_bytes(),
        })
        .collect();
    let vds = subarrays_of(opened);
    if vds.is_empty() {
        return Err(format!(
            "{name}: the container holds no arrays (create one with umd create --metadata ddf)"
        ));
    }
    let mut subarrays = Vec::new();
    for vd in vds {
        if only.is_some_and(|w| w != vd.index.to_string() && w != vd.name) {
            continue;
        }
        let host = start_subarray(opened, &names, &name, &vd, force, allow_write)?;
        let export = if vd.name.is_empty()
            || subarrays
                .iter()
                .any(|s: &RunningSubarray| s.export == vd.name)
        {
            vd.index.to_string()
        } else {
            vd.name.clone()
        };
        subarrays.push(RunningSubarray {
            index: vd.index,
            export,
            host,
        });
    }
    if subarrays.is_empty() {
        return Err(format!(
            "{name}: no subarray {:?} in the container",
            only.unwrap_or_default()
        ));
    }
    Ok(RunningContainer {
        name,
        format: "ddf",
        disks,
        subarrays,
    })
}

/// Every member must carry DDF metadata of one container.
fn common_container(opened: &[Opened]) -> Result<ArrayUuid, String> {
    let mut found: Option<(ArrayUuid, &Opened)> = None;
    for o in opened {
        let Metadata::Ddf(ddf) = &o.metadata else {
            return Err(format!(
                "{}: not DDF metadata, while other members are a DDF container",
                o.path.display()
            ));
        };
        let uuid = ddf.container_uuid();
        match &found {
            None => found = Some((uuid, o)),
            Some((first, other)) if *first != uuid => {
                return Err(format!(
                    "{}: belongs to DDF container {uuid}, not {first} like {}",
                    o.path.display(),
                    other.path.display()
                ))
            }
            Some(_) => {}
        }
    }
    found
        .map(|(u, _)| u)
        .ok_or_else(|| "no members given".to_owned())
}

/// `ddf-` and the first 8 hex digits of the container UUID.
fn container_name(uuid: &ArrayUuid) -> String {
    let hex: String = uuid
        .to_string()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    format!("ddf-{hex}")
}

/// A virtual disk as the freshest member's tables describe it.
struct VdEntry {
    index: u32,
    name: String,
    uuid: ArrayUuid,
}

/// The container's virtual disks that at least one given member serves, in
/// VD-table order, read from the member with the newest header.
fn subarrays_of(opened: &[Opened]) -> Vec<VdEntry> {
    let freshest = opened
        .iter()
        .filter_map(|o| match &o.metadata {
            Metadata::Ddf(ddf) => Some(ddf),
            _ => None,
        })
        .max_by_key(|ddf| ddf.header().seq());
    let Some(ddf) = freshest else {
        return Vec::new();
    };
    ddf.virt_disks()
        .iter()
        .map(|vd| VdEntry {
            index: vd.index,
            name: vd.name(),
            uuid: ddf.vd_uuid(vd),
        })
        .filter(|vd| {
            opened
                .iter()
                .any(|o| o.metadata.infos().iter().any(|i| i.array.uuid == vd.uuid))
        })
        .collect()
}

/// Assemble one virtual disk from the members that serve it and start it.
fn start_subarray(
    opened: &[Opened],
    names: &[String],
    container: &str,
    vd: &VdEntry,
    force: bool,
    allow_write: AllowWrite,
) -> Result<Arc<ArrayHost>, String> {
    let label = format!("{container}/{}", vd.index);
    let mut cands = Vec::new();
    let mut sub_names = Vec::new();
    let mut files = Vec::new();
    for (disk, o) in opened.iter().enumerate() {
        let Some(info) = o
            .metadata
            .infos()
            .into_iter()
            .find(|i| i.array.uuid == vd.uuid)
        else {
            continue;
        };
        cands.push(Candidate {
            index: cands.len(),
            name: o.path.display().to_string(),
            info,
        });
        sub_names.push(names[disk].clone());
        files.push(Some(
            MemberFile::open_read_write(&o.path).map_err(|e| format!("{label}: {e}"))?,
        ));
    }
    let assembly =
        assemble(&cands, &AssembleOptions::default()).map_err(|e| format!("{label}: {e}"))?;
    let parity = assembly.geometry.level().parity_members() > 0;
    let degraded = assembly.members.iter().any(Option::is_none);
    if !assembly.clean && parity && degraded && !force {
        return Err(format!(
            "{label}: the array is dirty and degraded (missing roles {:?}): stripes being \
             written when it stopped may rebuild wrong data; add the missing member, or start \
             it anyway with --force",
            assembly.missing_roles()
        ));
    }
    for w in &assembly.warnings {
        eprintln!("umd: {label}: warning: {w}");
    }
    let fresh = cands
        .iter()
        .find(|c| c.info.array.events == assembly.events)
        .ok_or_else(|| format!("{label}: no member carries the freshest events"))?;
    let metadata = MetadataKind::External {
        name: format!("/{container}/{}", vd.index),
    };
    let config = array_config(&assembly, fresh, &sub_names, metadata, None);
    let redundant = matches!(config.level, 1 | 4 | 5 | 6 | 10);
    let role_members = assembly.role_members();
    let parts = HostParts {
        files,
        member_names: sub_names,
        role_members,
        geometry: assembly.geometry.clone(),
        member_map: assembly.member_map(),
        array_sectors: assembly.array_sectors,
        array: Array::new(config),
        native: None,
        start: if redundant {
            Ro::ReadOnly
        } else {
            Ro::ReadWrite
        },
        allow_write,
    };
    ArrayHost::start(parts).map_err(|e| format!("{label}: start: {e}"))
}

/// `inactive` is retried while a subarray is briefly busy (mdadm --stop:
/// 25 tries 200 ms apart).
const STOP_TRIES: u32 = 25;
/// Pause between `inactive` tries.
const STOP_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How long a stop waits for the metadata manager to record each subarray
/// clean; it writes `clear` once it has (protocol.md §8.20).
const MANAGER_STOP_WAIT: Duration = Duration::from_secs(10);
/// Poll interval while waiting for the manager.
const MANAGER_POLL: Duration = Duration::from_millis(50);

/// Stop every subarray as `mdadm --stop` does on an external array: write
/// `inactive` (the engine marks itself clean and stops), give the manager
/// time to record the clean state and write `clear`, then release the
/// members. NBD clients must be gone already.
pub(crate) fn stop_container(container: &RunningContainer) -> Result<(), String> {
    let mut errors = Vec::new();
    for s in &container.subarrays {
        let label = format!("{}/{}", container.name, s.index);
        let mut tries = 0;
        loop {
            match s.host.set("array_state", "inactive") {
                Ok(()) => break,
                Err(e) if e.errno == Errno::EBUSY && tries + 1 < STOP_TRIES => {
                    tries += 1;
                    std::thread::sleep(STOP_RETRY_PAUSE);
                }
                Err(e) => {
                    errors.push(format!("{label}: stop: {e}"));
                    break;
                }
            }
        }
    }
    let deadline = Instant::now() + MANAGER_STOP_WAIT;
    let mut unrecorded = Vec::new();
    for s in &container.subarrays {
        loop {
            let state = s.host.get("array_state").unwrap_or_default();
            if state == "clear" {
                break;
            }
            if Instant::now() >= deadline {
                unrecorded.push(s.index.to_string());
                break;
            }
            std::thread::sleep(MANAGER_POLL);
        }
    }
    if !unrecorded.is_empty() {
        eprintln!(
            "umd: {}: no metadata manager recorded the stop of subarray(s) {}; \
             any that were written will resync at their next start",
            container.name,
            unrecorded.join(", ")
        );
    }
    for s in &container.subarrays {
        if let Err(e) = s.host.shutdown() {
            errors.push(format!("{}/{}: {e}", container.name, s.index));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

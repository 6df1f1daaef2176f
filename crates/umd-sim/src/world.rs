//! Making an array on simulated disks, and starting it from whatever the
//! disks hold, through the same start path as `umd run`: superblocks
//! probed by `umd_formats` from the disks' bytes, `umd_engine::assemble`,
//! md's dirty-degraded refusal, the native metadata and internal bitmap
//! loaded, the engine configured (`umd_engine::start`).
//!
//! Why here: after every simulated crash the array must come back exactly
//! as it would from real members, so nothing of the crashed host's memory
//! is carried over: only the disks are.

use crate::disk::SimDisk;
use crate::host::{HostParts, SimHost};
use crate::manager::SimManager;
use crate::members::Members;
use crate::ppl;
use crate::rng::Rng;
use umd_engine::array::{Array, MetadataKind, Ro};
use umd_engine::assemble::Assembly;
use umd_engine::create::ddf::{plan_ddf_create, DdfCreateSpec, DdfMember};
use umd_engine::create::{plan_create, CreateSpec, MemberWrite};
use umd_engine::native::NativeMetadata;
use umd_engine::ppl::start::{open_logs, PplArea, PplStart};
use umd_engine::{assemble, start, AssembleError, AssembleOptions, Candidate};
use umd_formats::ddf::{Ddf, PD_STATE_FAILED, PD_STATE_MISSING};
use umd_formats::info::{RosterEntry, SlotState};
use umd_formats::probe::{probe, Metadata, ProbeError};

/// The shape of a simulated array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArraySpec {
    /// md level (1, 5, 6).
    pub level: i32,
    /// Members.
    pub raid_disks: u32,
    /// Chunk in KiB (parity levels).
    pub chunk_kib: u32,
    /// An internal write-intent bitmap, with this chunk in KiB.
    pub bitmap_chunk_kib: Option<u32>,
    /// Created in sync (no initial resync).
    pub assume_clean: bool,
    /// Bytes per member.
    pub member_bytes: usize,
    /// A DDF container subarray managed by the simulated `umd mon`
    /// (external metadata), else native superblocks.
    pub external: bool,
    /// Native superblocks 0.90 (at the end of each member, descriptor
    /// tables) instead of 1.2.
    pub v090: bool,
    /// External metadata: disks of the container beyond the subarray's
    /// members, global spares the manager activates into a slot that
    /// lost its member (`umd create -l container` on every disk, then the
    /// subarray on the first `raid_disks`).
    pub container_spares: u32,
    /// A partial parity log (md's `consistency_policy` `ppl`; native 1.2
    /// raid5 without a bitmap): a dirty and degraded start replays it
    /// instead of being refused.
    pub ppl: bool,
}

/// What DDF keeps at the end of every member for its metadata (the data
/// area of an external array is what is left before it).
pub const DDF_RESERVED_BYTES: usize = 32 << 20;

/// The subarray's `metadata_version` tail (`external:/<container>/<index>`).
const SUBARRAY: &str = "/ddf-sim/0";

/// Member names (`dev-NAME`), by member index.
#[must_use]
pub fn member_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("sim{i}")).collect()
}

/// Disks holding a new array, as `umd create` writes it (durably).
pub fn create(spec: &ArraySpec, rng: &mut Rng) -> Result<Vec<SimDisk>, String> {
    if spec.external {
        return create_ddf(spec, rng);
    }
    let n = spec.raid_disks as usize;
    let uuid = rng.uuid();
    let device_uuids = (0..n)
        .map(|i| {
            let mut u = uuid;
            u[15] ^= i as u8 + 1;
            u
        })
        .collect();
    let plan = plan_create(&CreateSpec {
        level: spec.level,
        raid_disks: spec.raid_disks,
        chunk_kib: (spec.level != 1).then_some(spec.chunk_kib),
        layout: None,
        metadata: if spec.v090 { "0.90" } else { "1.2" }.into(),
        bitmap: spec.bitmap_chunk_kib.is_some(),
        bitmap_chunk_kib: spec.bitmap_chunk_kib,
        ppl: spec.ppl,
        name: "sim".into(),
        assume_clean: spec.assume_clean,
        member_bytes: vec![Some(spec.member_bytes as u64); n],
        member_names: member_names(n),
        uuid,
        device_uuids,
        ctime_seconds: 1_700_000_000,
    })
    .map_err(|e| format!("create: {e}"))?;
    written(spec, &plan.members)
}

/// New disks holding `writes` (per member), durably.
fn written(spec: &ArraySpec, members: &[Vec<MemberWrite>]) -> Result<Vec<SimDisk>, String> {
    let mut disks: Vec<SimDisk> = (0..members.len())
        .map(|_| SimDisk::new(spec.member_bytes))
        .collect();
    apply(&mut disks, members)?;
    Ok(disks)
}

/// `writes` (per member) onto `disks`, durably.
fn apply(disks: &mut [SimDisk], members: &[Vec<MemberWrite>]) -> Result<(), String> {
    for (disk, writes) in disks.iter_mut().zip(members) {
        for w in writes {
            disk.write(w.offset_bytes, &w.bytes)
                .map_err(|e| format!("create: {e}"))?;
        }
        disk.flush().map_err(|e| format!("create: {e}"))?;
    }
    Ok(())
}

/// Disks holding a new DDF container with one virtual disk over the first
/// `raid_disks` members, as `umd create --metadata ddf` writes it (durably):
/// in one step when the container has no spares, else the container over
/// every disk first and the virtual disk in it, as `umd create -l container`
/// and then `umd create -l N` on the members make it.
fn create_ddf(spec: &ArraySpec, rng: &mut Rng) -> Result<Vec<SimDisk>, String> {
    let n = spec.raid_disks as usize;
    let total = n + spec.container_spares as usize;
    let names = member_names(total);
    let member = |name: &String, container: Option<Ddf>| DdfMember {
        name: name.clone(),
        dev_bytes: spec.member_bytes as u64,
        container,
        stale_superblocks: Vec::new(),
    };
    let ddf_spec = |level: Option<i32>, members: Vec<DdfMember>, seed: u64| DdfCreateSpec {
        level,
        raid_disks: members.len() as u32,
        chunk_kib: level.filter(|&l| l != 1).map(|_| spec.chunk_kib),
        layout: None,
        size_kib: None,
        name: level.map(|_| "sim".into()),
        assume_clean: spec.assume_clean,
        members,
        seed,
        now_unix_s: 1_700_000_000,
        hostname: "sim".into(),
    };
    let create =
        |s: &DdfCreateSpec| plan_ddf_create(s).map_err(|e| format!("create: {}", e.message));
    let seed = rng.next_u64();
    if total == n {
        let members = names.iter().map(|name| member(name, None)).collect();
        return written(
            spec,
            &create(&ddf_spec(Some(spec.level), members, seed))?.members,
        );
    }
    let bare = names.iter().map(|name| member(name, None)).collect();
    let mut disks = written(spec, &create(&ddf_spec(None, bare, seed))?.members)?;
    let mut members = Vec::with_capacity(n);
    for (name, disk) in names.iter().zip(&disks) {
        let mut read = |offset: u64, buf: &mut [u8]| {
            disk.read(offset, buf)
                .map_err(|e| std::io::Error::other(e.to_string()))
        };
        match probe(disk.len_bytes(), &mut read) {
            Ok(Metadata::Ddf(ddf)) => members.push(member(name, Some(*ddf))),
            other => return Err(format!("create: {name} holds no container: {other:?}")),
        }
        if members.len() == n {
            break;
        }
    }
    let vd = create(&ddf_spec(Some(spec.level), members, seed.rotate_left(17)))?;
    apply(&mut disks, &vd.members)?;
    Ok(disks)
}

/// What starting the disks gave.
pub enum Started {
    /// The array runs.
    Running(Box<SimHost>),
    /// md's rule refused it (dirty and degraded parity array); the disks back.
    Refused {
        /// Why.
        why: String,
        /// The disks, untouched.
        disks: Vec<SimDisk>,
    },
    /// Too few members to assemble, and a power loss tore a member's
    /// superblock (it does not parse): a member lost beside a role already
    /// missing or rebuilding, the double fault md does not survive either.
    Torn {
        /// The assembly's refusal and the torn disks.
        why: String,
    },
}

/// The disks offered to assembly, their metadata, and the disks whose
/// metadata is there but does not parse (a superblock write the power loss
/// tore: its checksum fails).
struct Probed {
    cands: Vec<Candidate>,
    metadata: Vec<Option<Metadata>>,
    torn: Vec<usize>,
}

/// Probe every present disk; disks that hold no readable metadata or that
/// are left out are not offered.
fn candidates(disks: &[SimDisk], names: &[String]) -> Probed {
    let mut cands = Vec::new();
    let mut metadata = vec![None; disks.len()];
    let mut torn = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        if !d.is_present() {
            continue;
        }
        let mut read = |offset: u64, buf: &mut [u8]| {
            d.read(offset, buf)
                .map_err(|e| std::io::Error::other(e.to_string()))
        };
        let m = match probe(d.len_bytes(), &mut read) {
            Ok(m) => m,
            Err(ProbeError::Format(_)) => {
                torn.push(i);
                continue;
            }
            Err(_) => continue,
        };
        if let Some(info) = m.infos().into_iter().next() {
            cands.push(Candidate {
                index: i,
                name: names[i].clone(),
                info,
            });
            metadata[i] = Some(m);
        }
    }
    Probed {
        cands,
        metadata,
        torn,
    }
}

/// Start the array the disks hold. A member assembly calls stale is left
/// out, as mdadm leaves out-of-date members out of an assembly.
pub fn start(mut disks: Vec<SimDisk>, rng: &mut Rng, force: bool) -> Result<Started, String> {
    let names = member_names(disks.len());
    let Probed {
        mut cands,
        mut metadata,
        torn,
    } = candidates(&disks, &names);
    if std::env::var_os("UMD_SIM_TRACE").is_some() {
        for c in &cands {
            let a = &c.info.array;
            eprintln!(
                "start: member {} events {} clean {} resync {:#x} roster {:?}",
                c.index, a.events, a.clean, a.resync_offset_sectors, a.roster
            );
        }
    }
    let external = metadata
        .iter()
        .flatten()
        .any(|m| matches!(m, Metadata::Ddf(_)));
    let mut assembly = loop {
        match assemble(&cands, &AssembleOptions::default()) {
            Ok(a) => break a,
            Err(AssembleError::Stale { member, .. }) => {
                let at = cands
                    .iter()
                    .position(|c| c.name == member)
                    .ok_or("stale member not offered")?;
                metadata[cands[at].index] = None;
                cands.remove(at);
            }
            Err(e @ AssembleError::TooFewMembers { .. }) if !torn.is_empty() => {
                let torn: Vec<&str> = torn.iter().map(|&i| names[i].as_str()).collect();
                let why = format!("assemble: {e}; superblock torn on {}", torn.join(", "));
                return Ok(Started::Torn { why });
            }
            Err(e) => return Err(format!("assemble: {e}")),
        }
    };
    if std::env::var_os("UMD_SIM_TRACE").is_some() {
        eprintln!(
            "start: events {} clean {} missing roles {:?} warnings {:?}",
            assembly.events,
            assembly.clean,
            assembly.missing_roles(),
            assembly.warnings
        );
    }
    // A PPL raid5 replays its logs first (as `umd run`): a dirty and
    // degraded one then starts, its logged stripes made consistent.
    let areas = metadata
        .iter()
        .map(|m| m.as_ref().and_then(PplArea::of))
        .collect();
    let logs = open_logs(&mut assembly, areas, &mut ppl::Disks(&mut disks))?;
    if std::env::var_os("UMD_SIM_TRACE").is_some() {
        if let Some(l) = &logs {
            eprintln!("start: ppl dirty {} {:?}", l.replayed_dirty, l.replayed);
        }
    }
    let refusal = start::dirty_degraded_refusal(&assembly).filter(|_| !force && logs.is_none());
    if let Some(why) = refusal {
        return Ok(Started::Refused { why, disks });
    }
    let fresh = cands
        .iter()
        .find(|c| c.info.array.events == assembly.events)
        .ok_or("no member carries the freshest events")?;
    if external {
        // The manager is given the container's disks the assembly kept (as
        // `umd mon` is given the disks of the container `umd run` started):
        // a member left out is recorded failed and missing by the
        // manager's first pass, and its metadata is never written again.
        // Were it written, it would look current at the next start, stale
        // data and all (as with native superblocks, `members_in_array`).
        let ddf_disks: Vec<usize> = assembly.members.iter().flatten().map(|m| m.index).collect();
        let config = start::array_config(
            &assembly,
            fresh,
            &names,
            MetadataKind::External {
                name: SUBARRAY.into(),
            },
            None,
        );
        let spares = container_spares(&disks, &ddf_disks, &metadata);
        let array = Array::new(config);
        return start_external(disks, &ddf_disks, &spares, names, &assembly, array, rng);
    }
    let metadata = start::members_in_array(&assembly, &cands, metadata);
    let mut native = NativeMetadata::load(metadata).map_err(|e| format!("superblocks: {e}"))?;
    let bitmap = start::load_bitmap(&assembly, &native, &mut |member, offset, buf| {
        disks[member].read(offset, buf).map_err(|e| e.to_string())
    })?;
    let bitmap_config = bitmap.as_ref().map(|b| start::bitmap_config(b, fresh));
    if let Some(b) = bitmap {
        native
            .attach_bitmap(b)
            .map_err(|e| format!("bitmap: {e}"))?;
    }
    let version = assembly.format.to_string();
    let config = start::array_config(
        &assembly,
        fresh,
        &names,
        MetadataKind::Native { version },
        bitmap_config,
    );
    let keeper = Keeper::Native(Box::new(native));
    run_host(
        disks,
        names,
        &assembly,
        Array::new(config),
        (keeper, logs),
        rng,
    )
}

/// Who keeps the metadata of a started array.
enum Keeper {
    /// Native superblocks, written by the host.
    Native(Box<NativeMetadata>),
    /// The external metadata manager.
    Manager(SimManager),
}

/// Hand the assembled array to a simulated host and start it.
fn run_host(
    disks: Vec<SimDisk>,
    names: Vec<String>,
    assembly: &Assembly,
    array: Array,
    (keeper, ppl): (Keeper, Option<PplStart>),
    rng: &mut Rng,
) -> Result<Started, String> {
    let role_members = assembly.role_members();
    let (native, manager, start) = match keeper {
        Keeper::Native(n) => (Some(*n), None, Ro::ReadWrite),
        Keeper::Manager(m) => (None, Some(m), Ro::ReadOnly),
    };
    let parts = HostParts {
        members: Members::new(disks, rng.fork()),
        names,
        role_members,
        geometry: assembly.geometry.clone(),
        member_map: assembly.member_map(),
        array_sectors: assembly.array_sectors,
        array,
        native,
        start,
        manager,
        ppl,
    };
    SimHost::start(parts, rng.fork())
        .map(|h| Started::Running(Box::new(h)))
        .map_err(|e| format!("start: {e:?}"))
}

/// Start a DDF subarray as `umd run` does (`cli/container.rs`
/// `start_subarray`: external metadata, no native superblocks, redundant
/// levels start read-only), with the manager loaded from the container's
/// disks as `umd mon` loads it; its first pass runs as the array starts.
fn start_external(
    disks: Vec<SimDisk>,
    ddf_disks: &[usize],
    spares: &[usize],
    names: Vec<String>,
    assembly: &Assembly,
    array: Array,
    rng: &mut Rng,
) -> Result<Started, String> {
    let engine_members = array
        .members()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let devices = ddf_disks
        .iter()
        .chain(spares)
        .map(|&i| {
            let disk = &disks[i];
            let read = move |offset: u64, buf: &mut [u8]| {
                disk.read(offset, buf)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            };
            (i, disk.len_bytes(), read)
        })
        .collect();
    let manager = SimManager::load(devices, 0, engine_members, spares)?;
    let keeper = (Keeper::Manager(manager), None);
    run_host(disks, names, assembly, array, keeper, rng)
}

/// The container's global spares among the disks the assembly did not take:
/// present disks whose DDF metadata belongs to the members' container and
/// which the members' freshest metadata lists as spares, neither failed nor
/// missing (as `umd mon` is given every disk of the container; a disk that
/// was a member and left is not a spare, and its metadata is never written
/// again).
fn container_spares(
    disks: &[SimDisk],
    members: &[usize],
    metadata: &[Option<Metadata>],
) -> Vec<usize> {
    let fresh = members
        .iter()
        .filter_map(|&m| match &metadata[m] {
            Some(Metadata::Ddf(d)) => Some(d),
            _ => None,
        })
        .max_by_key(|d| d.header().seq());
    let Some(fresh) = fresh else {
        return Vec::new();
    };
    let listed_spare = |refnum: u32| {
        fresh.phys_disks().iter().any(|pd| {
            pd.refnum == refnum
                && pd.is_spare()
                && pd.state & (PD_STATE_FAILED | PD_STATE_MISSING) == 0
        })
    };
    (0..disks.len())
        .filter(|i| !members.contains(i) && disks[*i].is_present())
        .filter(|&i| {
            let disk = &disks[i];
            let mut read = |offset: u64, buf: &mut [u8]| {
                disk.read(offset, buf)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            };
            match probe(disk.len_bytes(), &mut read) {
                Ok(Metadata::Ddf(d)) => {
                    d.container_guid() == fresh.container_guid()
                        && listed_spare(d.disk_data().refnum)
                }
                _ => false,
            }
        })
        .collect()
}

/// Every present disk holding a role carries a valid superblock, and
/// they agree: one array, the same events, the same clean state and roster.
pub fn check_metadata_agrees(disks: &[SimDisk], role_members: &[usize]) -> Result<(), String> {
    let names = member_names(disks.len());
    let cands = candidates(disks, &names).cands;
    let mut first: Option<&Candidate> = None;
    // A disk that is gone cannot be read; assembly will find it missing.
    for &m in role_members.iter().filter(|&&m| disks[m].is_present()) {
        let c = cands
            .iter()
            .find(|c| c.index == m)
            .ok_or_else(|| format!("member {m} holds a role but its superblock does not parse"))?;
        let Some(f) = first else {
            first = Some(c);
            continue;
        };
        let (a, b) = (&f.info.array, &c.info.array);
        if a.uuid != b.uuid
            || a.events != b.events
            || a.resync_offset_sectors != b.resync_offset_sectors
            || in_array(&a.roster) != in_array(&b.roster)
        {
            return Err(format!(
                "superblocks disagree: member {} events {} resync {:#x} roster {:?}, member {} events {} resync {:#x} roster {:?}",
                f.index, a.events, a.resync_offset_sectors, a.roster, m, b.events, b.resync_offset_sectors, b.roster
            ));
        }
    }
    Ok(())
}

/// The roster entries of devices in the array. A device recorded faulty
/// and one a superblock does not list at all are equally out: md sizes
/// each 1.x roster by that superblock's own `max_dev`, so a member caught
/// up from an older superblock may not list a device the others record
/// faulty (a replacement whose own superblock a power loss dropped).
fn in_array(roster: &[RosterEntry]) -> Vec<&RosterEntry> {
    roster
        .iter()
        .filter(|r| r.slot != SlotState::Faulty)
        .collect()
}

/// Whether the freshest superblock among the present disks records member
/// `member` (created as device number `member`) as faulty.
#[must_use]
pub fn recorded_faulty(disks: &[SimDisk], member: usize) -> bool {
    let cands = candidates(disks, &member_names(disks.len())).cands;
    // Its own identity (native: the device number; DDF: its refnum), read
    // from its media even while it is gone.
    let media = disks[member].media();
    let mut read = |offset: u64, buf: &mut [u8]| {
        let at = offset as usize;
        buf.copy_from_slice(&media[at..at + buf.len()]);
        Ok(())
    };
    let Some(own) = probe(media.len() as u64, &mut read)
        .ok()
        .and_then(|m| m.infos().into_iter().next())
    else {
        return false;
    };
    cands
        .iter()
        .max_by_key(|c| c.info.array.events)
        .is_some_and(|c| {
            c.info
                .array
                .roster
                .iter()
                .any(|r| r.dev_id == own.device.dev_id && r.slot == SlotState::Faulty)
        })
}

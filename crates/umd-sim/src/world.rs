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
use crate::members::Members;
use crate::rng::Rng;
use umd_engine::array::{Array, MetadataKind};
use umd_engine::create::{plan_create, CreateSpec};
use umd_engine::native::NativeMetadata;
use umd_engine::{assemble, start, AssembleError, AssembleOptions, Candidate};
use umd_formats::info::SlotState;
use umd_formats::probe::{probe, Metadata};

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
}

/// Member names (`dev-NAME`), by member index.
#[must_use]
pub fn member_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("sim{i}")).collect()
}

/// Disks holding a new array, as `umd create` writes it (durably).
pub fn create(spec: &ArraySpec, rng: &mut Rng) -> Result<Vec<SimDisk>, String> {
    let n = spec.raid_disks as usize;
    let mut uuid = [0u8; 16];
    for b in &mut uuid {
        *b = rng.below(256) as u8;
    }
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
        metadata: "1.2".into(),
        bitmap: spec.bitmap_chunk_kib.is_some(),
        bitmap_chunk_kib: spec.bitmap_chunk_kib,
        ppl: false,
        name: "sim".into(),
        assume_clean: spec.assume_clean,
        member_bytes: vec![Some(spec.member_bytes as u64); n],
        member_names: member_names(n),
        uuid,
        device_uuids,
        ctime_seconds: 1_700_000_000,
    })
    .map_err(|e| format!("create: {e}"))?;
    let mut disks = vec![SimDisk::new(spec.member_bytes); n];
    for (disk, writes) in disks.iter_mut().zip(&plan.members) {
        for w in writes {
            disk.write(w.offset_bytes, &w.bytes)
                .map_err(|e| format!("create: {e}"))?;
        }
        disk.flush().map_err(|e| format!("create: {e}"))?;
    }
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
}

/// Probe every present disk; disks that hold no readable metadata or that
/// are left out are not offered.
fn candidates(disks: &[SimDisk], names: &[String]) -> (Vec<Candidate>, Vec<Option<Metadata>>) {
    let mut cands = Vec::new();
    let mut metadata = vec![None; disks.len()];
    for (i, d) in disks.iter().enumerate() {
        if !d.is_present() {
            continue;
        }
        let mut read = |offset: u64, buf: &mut [u8]| {
            d.read(offset, buf)
                .map_err(|e| std::io::Error::other(e.to_string()))
        };
        let Ok(m) = probe(d.len_bytes(), &mut read) else {
            continue;
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
    (cands, metadata)
}

/// Start the array the disks hold. A member assembly calls stale is left
/// out, as mdadm leaves out-of-date members out of an assembly.
pub fn start(disks: Vec<SimDisk>, rng: &mut Rng, force: bool) -> Result<Started, String> {
    let names = member_names(disks.len());
    let (mut cands, mut metadata) = candidates(&disks, &names);
    let assembly = loop {
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
            Err(e) => return Err(format!("assemble: {e}")),
        }
    };
    if let Some(why) = start::dirty_degraded_refusal(&assembly).filter(|_| !force) {
        return Ok(Started::Refused { why, disks });
    }
    let fresh = cands
        .iter()
        .find(|c| c.info.array.events == assembly.events)
        .ok_or("no member carries the freshest events")?;
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
    let role_members = assembly
        .members
        .iter()
        .map(|m| m.as_ref().map(|m| m.index))
        .collect();
    let parts = HostParts {
        members: Members::new(disks, rng.fork()),
        names,
        role_members,
        geometry: assembly.geometry.clone(),
        member_map: assembly.member_map(),
        array_sectors: assembly.array_sectors,
        array: Array::new(config),
        native,
    };
    SimHost::start(parts, rng.fork())
        .map(|h| Started::Running(Box::new(h)))
        .map_err(|e| format!("start: {e:?}"))
}

/// Every present disk holding a role carries a valid superblock, and
/// they agree: one array, the same events, the same clean state and roster.
pub fn check_metadata_agrees(disks: &[SimDisk], role_members: &[usize]) -> Result<(), String> {
    let names = member_names(disks.len());
    let (cands, _) = candidates(disks, &names);
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
            || a.roster != b.roster
        {
            return Err(format!(
                "superblocks disagree: member {} events {} resync {:#x} roster {:?}, member {} events {} resync {:#x} roster {:?}",
                f.index, a.events, a.resync_offset_sectors, a.roster, m, b.events, b.resync_offset_sectors, b.roster
            ));
        }
    }
    Ok(())
}

/// Whether the freshest superblock among the present disks records member
/// `member` (created as device number `member`) as faulty.
#[must_use]
pub fn recorded_faulty(disks: &[SimDisk], member: usize) -> bool {
    let (cands, _) = candidates(disks, &member_names(disks.len()));
    cands
        .iter()
        .max_by_key(|c| c.info.array.events)
        .is_some_and(|c| {
            c.info
                .array
                .roster
                .iter()
                .any(|r| r.dev_id as usize == member && r.slot == SlotState::Faulty)
        })
}

//! Assembly: decide which members form one array, in which roles, from their metadata alone.
//!
//! This is the decision half of md's assembly (mdadm's `Assemble.c` plus the
//! kernel's `analyze_sbs`), pure so that every refusal can be tested. The rules:
//!
//! - Members are recognised by array UUID and by the role the freshest
//!   metadata gives their permanent identity (`dev_id`), never by argument
//!   order (formats.md §8 pitfall 1).
//! - The freshest member is the non-spare with the highest `events`; its
//!   roster decides every role. A member whose events lag by more than one
//!   is stale and the set is refused, naming it (the kernel accepts a lag of
//!   one: a clean transition may decrease events, formats.md §2.7). A DDF
//!   member the freshest tables list online in its role is current
//!   whatever its own header's sequence number.
//! - A member the freshest roster marks faulty or spare holds no data and is
//!   left out with a warning, as md does.
//! - The set must keep enough members for the level's redundancy.
//! - A raid4/5/6 reshape in progress (1.x metadata, same level) assembles
//!   with both shapes (`reshape.rs`): each member's new data offset is its
//!   own `data_offset + new_offset`.

use crate::read::MemberMap;
use crate::reshape::{ArrayReadPlanner, Reshape};
use std::fmt;
use umd_formats::info::{ArrayUuid, MdInfo, MetadataFormat, SlotState};
use umd_layout::geometry::{Geometry, GeometrySpec, LayoutError, Level, Raid0Layout};

/// One device offered for assembly: the caller's index for it, a name for
/// messages, and what its metadata says about the array being assembled.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The caller's handle for this device (index into its list of files).
    pub index: usize,
    /// How to name the device in messages (its path).
    pub name: String,
    /// Its metadata, normalized.
    pub info: MdInfo,
}

/// Choices the metadata cannot make.
#[derive(Debug, Clone, Default)]
pub struct AssembleOptions {
    /// raid0 layout for multi-zone arrays whose metadata does not record it
    /// (0.90, old 1.x); md's `raid0.default_layout`.
    pub raid0_layout: Option<Raid0Layout>,
}

/// A member that holds data in the assembled array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveMember {
    /// The caller's index of the device.
    pub index: usize,
    /// Its name, for messages.
    pub name: String,
    /// Device sector where data starts.
    pub data_offset_sectors: u64,
    /// Valid only below this many sectors past the data offset (a rebuild
    /// was in progress); `None` = valid everywhere.
    pub recovery_offset_sectors: Option<u64>,
    /// Device sector where the new shape's data starts during a reshape
    /// (`data_offset + new_offset`); equal to `data_offset_sectors` otherwise.
    pub new_data_offset_sectors: u64,
}

/// A device the array keeps as a spare (md formats: its own superblock and
/// the freshest roster both say spare). The engine activates it into a
/// missing role as md does once the array runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpareMember {
    /// The caller's index of the device.
    pub index: usize,
    /// Its name, for messages.
    pub name: String,
    /// Device sector where data would start.
    pub data_offset_sectors: u64,
    /// Sectors usable for data from there.
    pub data_sectors: u64,
}

/// A set of members that form one array.
#[derive(Debug, Clone)]
pub struct Assembly {
    /// Array UUID.
    pub uuid: ArrayUuid,
    /// Metadata format of the members.
    pub format: MetadataFormat,
    /// Array name from the metadata.
    pub name: String,
    /// The validated shape.
    pub geometry: Geometry,
    /// Array length in sectors (the format's own record where it has one, e.g. DDF).
    pub array_sectors: u64,
    /// `members[role]`: the device holding that role, or `None` if missing.
    pub members: Vec<Option<ActiveMember>>,
    /// `replacements[role]`: the device being filled as that role's
    /// replacement (md's hot replace, resumed from its checkpoint), if any.
    pub replacements: Vec<Option<ActiveMember>>,
    /// Spares offered with the members.
    pub spares: Vec<SpareMember>,
    /// The freshest events count.
    pub events: u64,
    /// The metadata says the array was shut down cleanly and is in sync.
    pub clean: bool,
    /// Things the user should know that do not stop assembly.
    pub warnings: Vec<String>,
    /// A reshape in progress: `geometry` is then its new shape.
    pub reshape: Option<Reshape>,
}

impl Assembly {
    /// Roles with no member.
    #[must_use]
    pub fn missing_roles(&self) -> Vec<u32> {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_none())
            .map(|(r, _)| r as u32)
            .collect()
    }

    /// The caller's device index by role, then by replacement id
    /// ([`MemberMap::replacement_of`]): what a host maps planned I/O with.
    #[must_use]
    pub fn role_members(&self) -> Vec<Option<usize>> {
        self.members
            .iter()
            .chain(&self.replacements)
            .map(|m| m.as_ref().map(|m| m.index))
            .collect()
    }

    /// The per-role view the read planner needs (the old shape's offsets
    /// during a reshape).
    #[must_use]
    pub fn member_map(&self) -> MemberMap {
        let mut map = MemberMap::new(
            self.members
                .iter()
                .map(|m| {
                    m.as_ref()
                        .map(|m| (m.data_offset_sectors, m.recovery_offset_sectors))
                })
                .collect(),
        );
        for (role, r) in self.replacements.iter().enumerate() {
            if let Some(r) = r {
                let id = map.replacement_of(role as u32);
                map.set_role(id, (r.data_offset_sectors, r.recovery_offset_sectors));
            }
        }
        map
    }

    /// The per-role view of the new shape during a reshape: roles at their
    /// new data offsets.
    #[must_use]
    pub fn new_member_map(&self) -> MemberMap {
        MemberMap::new(
            self.members
                .iter()
                .map(|m| {
                    m.as_ref()
                        .map(|m| (m.new_data_offset_sectors, m.recovery_offset_sectors))
                })
                .collect(),
        )
    }

    /// A read planner for the whole array, through both shapes if a
    /// reshape is in progress.
    #[must_use]
    pub fn read_planner(&self) -> ArrayReadPlanner {
        match &self.reshape {
            None => ArrayReadPlanner::single(crate::read::ReadPlanner::new(
                self.geometry.clone(),
                self.member_map(),
                self.array_sectors,
            )),
            Some(r) => {
                let mut old = self.member_map();
                for role in r.old.raid_disks()..r.new.raid_disks() {
                    old.mark_missing(role);
                }
                ArrayReadPlanner::reshaping(r.clone(), old, self.new_member_map())
            }
        }
    }
}

/// Why a set of devices does not form one readable array.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssembleError {
    /// No device was offered.
    NoMembers,
    /// Devices belong to different arrays.
    MixedArrays {
        /// A device of the first array, and its UUID.
        first: (String, ArrayUuid),
        /// A device of another array, and its UUID.
        other: (String, ArrayUuid),
    },
    /// Devices disagree on the array's shape although they share a UUID.
    Inconsistent {
        /// The device that disagrees with the freshest one.
        member: String,
        /// Which field differs.
        field: &'static str,
    },
    /// A member's metadata is older than the array's.
    Stale {
        /// The stale device.
        member: String,
        /// Its events.
        events: u64,
        /// The freshest events.
        array_events: u64,
    },
    /// Two devices claim the same role.
    DuplicateRole {
        /// The role.
        role: u32,
        /// The two devices.
        members: (String, String),
    },
    /// Too many roles are missing for the level.
    TooFewMembers {
        /// The level.
        level: Level,
        /// Roles with no usable member.
        missing: Vec<u32>,
        /// Why that is too many.
        why: &'static str,
    },
    /// The metadata describes a shape umd cannot map.
    Geometry(LayoutError),
    /// A state umd does not read yet.
    Unsupported(String),
}

impl fmt::Display for AssembleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMembers => write!(f, "no members given"),
            Self::MixedArrays { first, other } => write!(
                f,
                "{} belongs to array {} but {} belongs to array {}: not one array",
                other.0, other.1, first.0, first.1
            ),
            Self::Inconsistent { member, field } => {
                write!(f, "{member}: {field} differs from the freshest member's")
            }
            Self::Stale {
                member,
                events,
                array_events,
            } => write!(
                f,
                "{member}: stale metadata (events {events}, array is at {array_events}); \
                 leave it out to read the array degraded"
            ),
            Self::DuplicateRole { role, members } => {
                write!(f, "{} and {} both claim role {role}", members.0, members.1)
            }
            Self::TooFewMembers {
                level,
                missing,
                why,
            } => {
                write!(
                    f,
                    "too few members for {level}: roles {missing:?} missing ({why})"
                )
            }
            Self::Geometry(e) => write!(f, "{e}"),
            Self::Unsupported(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for AssembleError {}

/// Decide how `candidates` form one array.
pub fn assemble(
    candidates: &[Candidate],
    options: &AssembleOptions,
) -> Result<Assembly, AssembleError> {
    let first = candidates.first().ok_or(AssembleError::NoMembers)?;
    check_one_array(candidates)?;
    let fresh = freshest(candidates).unwrap_or(first);
    let array = &fresh.info.array;
    check_consistent(candidates, fresh)?;
    check_reshape_agrees(candidates, fresh)?;
    let mut warnings = Vec::new();
    let (members, mut replacements, spares) = assign_roles(candidates, fresh, &mut warnings)?;
    if array.reshape.is_some() {
        for r in replacements.iter_mut().filter_map(Option::take) {
            warnings.push(format!(
                "{}: a replacement during a reshape, not used (add it again once the reshape is done)",
                r.name
            ));
        }
    }
    let level = Level::from_md(array.level).ok_or(AssembleError::Geometry(
        LayoutError::UnsupportedLevel(array.level),
    ))?;
    let geometry = build_geometry(level, fresh, &members, candidates, options)?;
    check_redundancy(&geometry, &members)?;
    let reshape = match &array.reshape {
        None => None,
        Some(_) => Some(build_reshape(fresh, &geometry)?),
    };
    let shaped_sectors = reshape
        .as_ref()
        .map_or(geometry.array_sectors(), Reshape::array_sectors);
    // A recorded length (DDF's array_blocks) is not what md serves: mdadm
    // assembles DDF arrays without setting array_size, so the kernel serves
    // the personality's own size. They differ only where mdadm's formula
    // undercounts (RAID1E over an odd number of members); say so.
    let array_sectors = shaped_sectors;
    if let Some(recorded) = array.array_sectors.filter(|&a| a != array_sectors) {
        warnings.push(format!(
            "the metadata records {recorded} sectors but the layout holds {array_sectors}; \
             serving {array_sectors}, as md does"
        ));
    }
    let clean = array.clean && array.resync_offset_sectors == u64::MAX;
    if !clean {
        // Writes in flight at an unclean stop may have reached the role but
        // not its replacement, or the other way round, below the copy's
        // checkpoint; the resync compares the roles only. Copy it all again.
        for r in replacements.iter_mut().flatten() {
            r.recovery_offset_sectors = Some(0);
        }
    }
    if !clean && level.parity_members() > 0 && members.iter().any(Option::is_none) {
        warnings.push(
            "the array was not shut down cleanly and is degraded: stripes being written at the \
             time may read back wrong (md's write hole)"
                .to_string(),
        );
    }
    Ok(Assembly {
        uuid: array.uuid,
        format: fresh.info.format,
        name: array.name.clone(),
        geometry,
        array_sectors,
        members,
        replacements,
        spares,
        events: array.events,
        clean,
        warnings,
        reshape,
    })
}

/// The two shapes of a reshape in progress (formats.md §2.8): the old one
/// from `layout`, `chunksize` and `raid_disks - delta_disks`, the new one
/// from the `new_*` fields and `raid_disks`. Only same-level raid4/5/6
/// reshapes on 1.x metadata are read; anything else is refused by name.
fn build_reshape(fresh: &Candidate, new: &Geometry) -> Result<Reshape, AssembleError> {
    let array = &fresh.info.array;
    let r = array.reshape.expect("called for a reshape");
    let refuse = |why: String| {
        Err(AssembleError::Unsupported(format!(
            "{}: a reshape is in progress (at array sector {}): {why}",
            fresh.name, r.position_sectors
        )))
    };
    if !matches!(fresh.info.format, MetadataFormat::V1 { .. }) {
        return refuse(format!(
            "{} metadata reshapes are not read",
            fresh.info.format
        ));
    }
    if r.new_level != array.level {
        return refuse(format!(
            "a level change ({} to {}) is not read",
            array.level, r.new_level
        ));
    }
    if !matches!(new.level(), Level::Raid4 | Level::Raid5 | Level::Raid6) {
        return refuse(format!("{} reshapes are not read", new.level()));
    }
    let Some(old_disks) = array
        .raid_disks
        .checked_add_signed(-r.delta_disks)
        .filter(|&d| d > 0)
    else {
        return refuse(format!(
            "delta_disks {} does not fit raid_disks {}",
            r.delta_disks, array.raid_disks
        ));
    };
    let spec = |layout, chunk_sectors, raid_disks| GeometrySpec {
        level: array.level,
        layout,
        chunk_sectors,
        raid_disks,
        member_sectors: vec![array.component_sectors; raid_disks as usize],
        component_sectors: array.component_sectors,
        raid0_layout: None,
    };
    let old = Geometry::new(&spec(array.layout, array.chunk_sectors, old_disks))
        .map_err(AssembleError::Geometry)?;
    let new = Geometry::new(&spec(r.new_layout, r.new_chunk_sectors, array.raid_disks))
        .map_err(AssembleError::Geometry)?;
    let reshape = Reshape {
        old,
        new,
        position_sectors: r.position_sectors,
        backwards: r.backwards || r.delta_disks < 0,
    };
    if r.position_sectors > reshape.old.array_sectors().max(reshape.new.array_sectors()) {
        return refuse("the position lies beyond both shapes".to_string());
    }
    Ok(reshape)
}

/// A reshape that ended on some members but not yet on others (a crash
/// between their superblock writes) leaves data offsets that disagree:
/// refuse, and say how to finish it.
fn check_reshape_agrees(candidates: &[Candidate], fresh: &Candidate) -> Result<(), AssembleError> {
    if fresh.info.array.reshape.is_some() {
        return Ok(());
    }
    match candidates.iter().find(|c| {
        c.info.array.reshape.is_some() && c.info.array.events + 1 >= fresh.info.array.events
    }) {
        Some(c) => Err(AssembleError::Unsupported(format!(
            "{}: still records a reshape that {} records as finished; finish it with \
             `umd grow --continue MEMBER...`",
            c.name, fresh.name
        ))),
        None => Ok(()),
    }
}

fn check_one_array(candidates: &[Candidate]) -> Result<(), AssembleError> {
    let first = &candidates[0];
    for c in &candidates[1..] {
        if c.info.array.uuid != first.info.array.uuid {
            return Err(AssembleError::MixedArrays {
                first: (first.name.clone(), first.info.array.uuid),
                other: (c.name.clone(), c.info.array.uuid),
            });
        }
    }
    Ok(())
}

/// The member whose metadata defines the array: the highest events among
/// devices that call themselves data members (spares' events may lag).
fn freshest(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates
        .iter()
        .filter(|c| matches!(c.info.device.slot, SlotState::Active { .. }))
        .max_by_key(|c| c.info.array.events)
}

fn check_consistent(candidates: &[Candidate], fresh: &Candidate) -> Result<(), AssembleError> {
    let a = &fresh.info.array;
    for c in candidates {
        let b = &c.info.array;
        let field = if b.level != a.level {
            "level"
        } else if b.layout != a.layout {
            "layout"
        } else if b.chunk_sectors != a.chunk_sectors {
            "chunk size"
        } else {
            continue;
        };
        // A member whose own metadata is older may describe an older shape;
        // staleness is the better explanation, reported by assign_roles.
        if b.events + 1 >= a.events {
            return Err(AssembleError::Inconsistent {
                member: c.name.clone(),
                field,
            });
        }
    }
    Ok(())
}

/// Members by role, replacements by role, spares.
type Assigned = (
    Vec<Option<ActiveMember>>,
    Vec<Option<ActiveMember>>,
    Vec<SpareMember>,
);

/// Give each candidate the role the freshest roster assigns to its dev_id;
/// md-format spares are kept as spares. A device whose own superblock says
/// it is its role's replacement is one (md's hot replace); with no member
/// left in that role it takes the role, as md moves it there.
fn assign_roles(
    candidates: &[Candidate],
    fresh: &Candidate,
    warnings: &mut Vec<String>,
) -> Result<Assigned, AssembleError> {
    let array = &fresh.info.array;
    let raid_disks = array.raid_disks as usize;
    let mut members: Vec<Option<ActiveMember>> = vec![None; raid_disks];
    let mut replacements: Vec<Option<ActiveMember>> = vec![None; raid_disks];
    let mut spares = Vec::new();
    for c in candidates {
        let dev = &c.info.device;
        let roster_slot = array
            .roster
            .iter()
            .find(|e| e.dev_id == dev.dev_id)
            .map(|e| e.slot);
        let slot = roster_slot.unwrap_or(dev.slot);
        let SlotState::Active {
            role,
            recovery_offset_sectors,
        } = slot
        else {
            // A spare's events do not matter (md compares only the others').
            // DDF spares belong to the container's manager.
            let md_format = c.info.format != MetadataFormat::Ddf;
            if md_format && slot == SlotState::Spare && dev.slot == SlotState::Spare {
                spares.push(SpareMember {
                    index: c.index,
                    name: c.name.clone(),
                    data_offset_sectors: dev.data_offset_sectors,
                    data_sectors: dev.data_sectors,
                });
                continue;
            }
            warnings.push(format!(
                "{}: {} in the array's metadata, not used",
                c.name,
                slot_word(slot)
            ));
            continue;
        };
        if !matches!(dev.slot, SlotState::Active { .. }) {
            warnings.push(format!(
                "{}: its own metadata says {}, not used",
                c.name,
                slot_word(dev.slot)
            ));
            continue;
        }
        // DDF: a disk whose own header lags (its copy of the last metadata
        // writes was lost in a crash) is current if the freshest tables
        // list it online in its role (the manager records a failure before
        // any write goes on without the disk); only a disk they do not
        // list is judged by its events.
        let listed_online = c.info.format == MetadataFormat::Ddf
            && matches!(roster_slot, Some(SlotState::Active { .. }));
        if !listed_online && c.info.array.events + 1 < array.events {
            return Err(AssembleError::Stale {
                member: c.name.clone(),
                events: c.info.array.events,
                array_events: array.events,
            });
        }
        let role_index = role as usize;
        if role_index >= raid_disks {
            warnings.push(format!(
                "{}: role {role} is beyond raid_disks, not used",
                c.name
            ));
            continue;
        }
        // The member's own recovery offset is the authority for its content.
        let recovery = match dev.slot {
            SlotState::Active {
                recovery_offset_sectors: own,
                ..
            } => own.or(recovery_offset_sectors),
            _ => recovery_offset_sectors,
        };
        // A replacement is never taken as whole: at worst it is copied again.
        let (table, recovery) = if dev.replacement {
            (&mut replacements, Some(recovery.unwrap_or(0)))
        } else {
            (&mut members, recovery)
        };
        if let Some(other) = &table[role_index] {
            return Err(AssembleError::DuplicateRole {
                role,
                members: (other.name.clone(), c.name.clone()),
            });
        }
        table[role_index] = Some(ActiveMember {
            index: c.index,
            name: c.name.clone(),
            data_offset_sectors: dev.data_offset_sectors,
            recovery_offset_sectors: recovery,
            new_data_offset_sectors: c
                .info
                .array
                .reshape
                .and_then(|r| {
                    dev.data_offset_sectors
                        .checked_add_signed(r.new_offset_sectors)
                })
                .unwrap_or(dev.data_offset_sectors),
        });
    }
    for (role, (member, replacement)) in members.iter_mut().zip(&mut replacements).enumerate() {
        if member.is_none() {
            if let Some(r) = replacement.take() {
                warnings.push(format!(
                    "{}: the replacement of role {role}, whose member is missing: it takes the role and recovers",
                    r.name
                ));
                *member = Some(r);
            }
        }
    }
    Ok((members, replacements, spares))
}

fn slot_word(slot: SlotState) -> &'static str {
    match slot {
        SlotState::Active { .. } => "active",
        SlotState::Spare => "spare",
        SlotState::Faulty => "faulty",
        SlotState::Journal => "journal",
    }
}

fn build_geometry(
    level: Level,
    fresh: &Candidate,
    members: &[Option<ActiveMember>],
    candidates: &[Candidate],
    options: &AssembleOptions,
) -> Result<Geometry, AssembleError> {
    let array = &fresh.info.array;
    let member_sectors: Vec<u64> = members
        .iter()
        .map(|m| {
            m.as_ref()
                .and_then(|m| candidates.iter().find(|c| c.index == m.index))
                .map_or(0, |c| c.info.device.data_sectors)
        })
        .collect();
    if matches!(level, Level::Linear | Level::Raid0) {
        let missing: Vec<u32> = (0..members.len() as u32)
            .filter(|&r| members[r as usize].is_none())
            .collect();
        if !missing.is_empty() {
            return Err(AssembleError::TooFewMembers {
                level,
                missing,
                why: "this level has no redundancy",
            });
        }
    }
    let raid0_layout = if level == Level::Raid0 && array.raid0_layout_recorded {
        match array.layout {
            1 => Some(Raid0Layout::Original),
            2 => Some(Raid0Layout::AlternateMultizone),
            _ => options.raid0_layout,
        }
    } else {
        options.raid0_layout
    };
    let spec = GeometrySpec {
        level: array.level,
        layout: array.layout,
        chunk_sectors: array.chunk_sectors,
        raid_disks: array.raid_disks,
        member_sectors,
        component_sectors: array.component_sectors,
        raid0_layout,
    };
    Geometry::new(&spec).map_err(AssembleError::Geometry)
}

/// Refuse sets that lose data: parity levels beyond their parity count,
/// mirrors with every copy of some chunk gone.
fn check_redundancy(
    geometry: &Geometry,
    members: &[Option<ActiveMember>],
) -> Result<(), AssembleError> {
    let level = geometry.level();
    let missing: Vec<u32> = (0..members.len() as u32)
        .filter(|&r| members[r as usize].is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let lost = match level {
        Level::Linear | Level::Raid0 => true,
        Level::Raid1 => missing.len() == members.len(),
        Level::Raid4 | Level::Raid5 | Level::Raid6 => {
            missing.len() > level.parity_members() as usize
        }
        Level::Raid10 => raid10_loses_data(geometry, members),
    };
    if lost {
        let why = match level {
            Level::Raid1 | Level::Raid10 => "every copy of some data is missing",
            Level::Linear | Level::Raid0 => "this level has no redundancy",
            _ => "more members missing than the level has parity",
        };
        return Err(AssembleError::TooFewMembers {
            level,
            missing,
            why,
        });
    }
    Ok(())
}

/// raid10's copy placement repeats with a period of at most raid_disks
/// chunks per far section, so checking the first raid_disks x copies chunk
/// rows, and the far sections, covers every pattern of copies.
fn raid10_loses_data(geometry: &Geometry, members: &[Option<ActiveMember>]) -> bool {
    let chunk = u64::from(geometry.chunk_sectors().max(1));
    let rows = u64::from(geometry.raid_disks()) * 8;
    let mut copies = Vec::new();
    let total = geometry.array_sectors();
    let mut sector = 0;
    while sector < total && sector < rows * chunk {
        let extent = geometry.locate(sector, &mut copies);
        if copies.iter().all(|c| members[c.role as usize].is_none()) {
            return true;
        }
        sector += extent.len_sectors.max(1);
    }
    false
}

#[cfg(test)]
mod tests;

//! A grow carried out on member I/O the caller provides ([`GrowIo`]): the
//! superblock rounds that start it, the windows it moves, the checkpoint
//! after each, the superblocks that end it, and the reconciling of members
//! a crash left one superblock write behind.
//!
//! Why here and generic: the order is what makes a grow crash safe (a
//! window's new stripes are on every member and synced before any
//! superblock records the window as moved), and both `umd grow` on member
//! files and the simulator on its disks must follow the same order; the
//! simulator exists to check the order that ships. The decisions stay in
//! [`super::superblocks`] and [`super::copy`]; this only sequences them
//! and performs their I/O through the trait.

use super::copy::{CopyPlanner, Window};
use super::superblocks;
use super::{ArrayReadPlanner, Reshape};
use crate::assemble::{assemble, ActiveMember, AssembleOptions, Assembly, Candidate};
use crate::read::ReadPlan;
use crate::write::{BufRef, WritePlan, WritePlanner};
use std::fmt;
use umd_formats::sb1::Superblock1;

/// Sector size in bytes.
const SECTOR: usize = 512;

/// Member I/O for a grow. Members are the caller's indices: the position
/// of each member's superblock in the slices handed to this module.
pub trait GrowIo {
    /// Why an I/O failed.
    type Error;
    /// Read `buf.len()` bytes of `member` at `offset_bytes`.
    fn read(&mut self, member: usize, offset_bytes: u64, buf: &mut [u8])
        -> Result<(), Self::Error>;
    /// Write `buf` to `member` at `offset_bytes`.
    fn write(&mut self, member: usize, offset_bytes: u64, buf: &[u8]) -> Result<(), Self::Error>;
    /// Make `member`'s completed writes durable.
    fn sync(&mut self, member: usize) -> Result<(), Self::Error>;
}

/// Why a grow step stopped.
#[derive(Debug)]
pub enum GrowError<E> {
    /// A member I/O failed.
    Io(E),
    /// The array or the plan is refused, and why.
    Refused(String),
}

impl<E: fmt::Display> fmt::Display for GrowError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::Refused(why) => f.write_str(why),
        }
    }
}

/// Write `sb` to its place on `member` and make it durable.
pub fn write_superblock<I: GrowIo>(
    io: &mut I,
    member: usize,
    sb: &Superblock1,
) -> Result<(), GrowError<I::Error>> {
    io.write(member, sb.super_offset * 512, &sb.to_bytes())
        .and_then(|()| io.sync(member))
        .map_err(GrowError::Io)
}

/// The member with the highest events.
fn freshest(sbs: &[Superblock1]) -> Option<&Superblock1> {
    sbs.iter()
        .reduce(|b, s| if s.events > b.events { s } else { b })
}

/// Bring every member to the freshest superblock's state (a crash may have
/// stopped a round of superblock writes half way) and write those that
/// changed; `sbs[m]` (member `m`'s) then holds what is on disk.
pub fn reconcile<I: GrowIo>(
    io: &mut I,
    sbs: &mut [Superblock1],
) -> Result<(), GrowError<I::Error>> {
    let Some(fresh) = freshest(sbs).cloned() else {
        return Err(GrowError::Refused("no members given".to_string()));
    };
    for (m, sb) in sbs.iter_mut().enumerate() {
        let target = superblocks::reconcile(sb, &fresh);
        if &target != sb {
            write_superblock(io, m, &target)?;
            *sb = target;
        }
    }
    Ok(())
}

/// The assembly the superblocks `sbs` describe (members named by index).
fn assemble_sbs(sbs: &[Superblock1]) -> Result<Assembly, String> {
    let cands: Vec<Candidate> = sbs
        .iter()
        .enumerate()
        .map(|(index, sb)| Candidate {
            index,
            name: format!("member {index}"),
            info: sb.info(),
        })
        .collect();
    assemble(&cands, &AssembleOptions::default()).map_err(|e| e.to_string())
}

/// Refuse, before anything is written, a reshape from the superblocks `old`
/// to `new` whose new shape holds less than the old one or that the copy
/// planner cannot do safely in windows of `window_max` sectors.
pub fn check_plan(old: &[Superblock1], new: &[Superblock1], window_max: u64) -> Result<(), String> {
    let before = assemble_sbs(old)?;
    let after = assemble_sbs(new)?;
    let reshape = after
        .reshape
        .as_ref()
        .ok_or("the new superblocks record no reshape")?;
    if reshape.array_sectors() < before.array_sectors {
        return Err(format!(
            "the component ({} sectors) is not a whole number of new chunks: the array \
             would lose its last {} sectors during the reshape",
            before.geometry.member_used_sectors(0),
            before.array_sectors - reshape.array_sectors()
        ));
    }
    if reshape.new.array_sectors() < before.array_sectors {
        return Err(format!(
            "the new shape holds {} sectors, less than the array's {}: umd does not shrink arrays",
            reshape.new.array_sectors(),
            before.array_sectors
        ));
    }
    let offsets = |f: fn(&ActiveMember) -> u64| -> Vec<u64> {
        after.members.iter().flatten().map(f).collect()
    };
    let old_offsets = offsets(|m| m.data_offset_sectors);
    CopyPlanner::new(
        reshape,
        &old_offsets[..reshape.old.raid_disks() as usize],
        &offsets(|m| m.new_data_offset_sectors),
        window_max,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Start a grow: the joining devices' superblocks first, then the members'
/// (`new` as [`superblocks::start_reshape`] returned it: members first, in
/// `members` order, then the joining devices). Each is durable before the
/// next is written, so a crash leaves either no reshape recorded or one
/// that every joining device already knows.
pub fn write_start<I: GrowIo>(
    io: &mut I,
    members: &[usize],
    joining: &[usize],
    new: &[Superblock1],
) -> Result<(), GrowError<I::Error>> {
    assert_eq!(
        members.len() + joining.len(),
        new.len(),
        "one superblock each"
    );
    let (members_new, joined_new) = new.split_at(members.len());
    for (&m, sb) in joining.iter().zip(joined_new) {
        write_superblock(io, m, sb)?;
    }
    for (&m, sb) in members.iter().zip(members_new) {
        write_superblock(io, m, sb)?;
    }
    Ok(())
}

/// Copy window after window from the checkpoint `sbs` record, each made
/// durable and then checkpointed in every superblock, then end the
/// reshape. `sbs[m]` is member `m`'s superblock (every member, the added
/// ones too), kept as written. `now` gives superblock times; `progress`
/// hears each checkpoint. Returns the reshape it finished, `None` if none
/// was recorded.
pub fn copy<I: GrowIo>(
    io: &mut I,
    sbs: &mut [Superblock1],
    window_max: u64,
    now: &mut dyn FnMut() -> u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<Reshape>, GrowError<I::Error>> {
    let assembly = assemble_sbs(sbs).map_err(GrowError::Refused)?;
    let Some(reshape) = assembly.reshape.clone() else {
        return Ok(None);
    };
    if let Some(role) = assembly.missing_roles().first() {
        return Err(GrowError::Refused(format!(
            "role {role} has no member: umd reshapes only complete arrays"
        )));
    }
    let by_role = |f: fn(&ActiveMember) -> u64| -> Vec<u64> {
        assembly.members.iter().flatten().map(f).collect()
    };
    let old_offsets = by_role(|m| m.data_offset_sectors);
    let new_offsets = by_role(|m| m.new_data_offset_sectors);
    let planner = CopyPlanner::new(
        &reshape,
        &old_offsets[..reshape.old.raid_disks() as usize],
        &new_offsets,
        window_max,
    )
    .map_err(|e| GrowError::Refused(format!("{}: {e}", assembly.name)))?;
    let mut mover = WindowMover::new(&assembly).expect("a reshape is recorded");
    let mut position = reshape.position_sectors;
    let mut events = assembly.events;
    while let Some(w) = planner.next_window(position) {
        mover.move_window(io, &w)?;
        events += 1;
        let t = now();
        for (m, sb) in sbs.iter_mut().enumerate() {
            superblocks::checkpoint(sb, w.end, events, t);
            write_superblock(io, m, sb)?;
        }
        position = w.end;
        progress(position, planner.end());
    }
    events += 1;
    let t = now();
    for (m, sb) in sbs.iter_mut().enumerate() {
        superblocks::finish(sb, events, t);
        write_superblock(io, m, sb)?;
    }
    Ok(Some(reshape))
}

/// The planners and buffers that move windows, reused from one to the next.
struct WindowMover<'a> {
    assembly: &'a Assembly,
    reader: ArrayReadPlanner,
    writer: WritePlanner,
    read_plan: ReadPlan,
    parts: Vec<Vec<u8>>,
    write_plan: WritePlan,
    data: Vec<u8>,
    scratch: Vec<u8>,
}

impl<'a> WindowMover<'a> {
    /// For the reshape `assembly` records.
    fn new(assembly: &'a Assembly) -> Option<Self> {
        let reshape = assembly.reshape.as_ref()?;
        Some(Self {
            assembly,
            reader: assembly.read_planner(),
            writer: WritePlanner::new(
                reshape.new.clone(),
                assembly.new_member_map(),
                reshape.new.array_sectors(),
            ),
            read_plan: ReadPlan::default(),
            parts: Vec::new(),
            write_plan: WritePlan::default(),
            data: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// The caller's member index holding `role`.
    fn member(&self, role: u32) -> usize {
        self.assembly.members[role as usize]
            .as_ref()
            .expect("the reshape runs on complete arrays")
            .index
    }

    /// Move `w`: read through the old shape, write through the new one as
    /// full stripes, sync every member. After this returns, its new stripes
    /// are durable on every member; nothing at or above `w.start` was
    /// touched in the old shape (the copy plan's rule).
    fn move_window<I: GrowIo>(
        &mut self,
        io: &mut I,
        w: &Window,
    ) -> Result<(), GrowError<I::Error>> {
        self.data.clear();
        self.data.resize((w.end - w.start) as usize * SECTOR, 0);
        let mut at = w.start;
        while at < w.read_end {
            at += self.read_piece(io, at, w)?;
        }
        self.writer
            .plan(w.start, w.end - w.start, 0, &mut self.write_plan)
            .map_err(|e| GrowError::Refused(e.to_string()))?;
        self.scratch.clear();
        self.scratch.resize(self.write_plan.scratch_bytes, 0);
        for r in &self.write_plan.reads {
            let BufRef::Scratch { offset_bytes } = r.buf else {
                unreachable!("write plans read into scratch")
            };
            let n = r.len_sectors as usize * SECTOR;
            let member = self.member(r.role);
            let buf = &mut self.scratch[offset_bytes..][..n];
            io.read(member, r.device_sector * 512, buf)
                .map_err(GrowError::Io)?;
        }
        self.writer
            .compute(&self.write_plan, &self.data, &mut self.scratch);
        for wr in &self.write_plan.writes {
            let n = wr.len_sectors as usize * SECTOR;
            let bytes = match wr.buf {
                BufRef::Data { offset_bytes } => &self.data[offset_bytes..][..n],
                BufRef::Scratch { offset_bytes } => &self.scratch[offset_bytes..][..n],
            };
            io.write(self.member(wr.role), wr.device_sector * 512, bytes)
                .map_err(GrowError::Io)?;
        }
        if crate::durability::grow_window_synced() {
            for m in self.assembly.members.iter().flatten() {
                io.sync(m.index).map_err(GrowError::Io)?;
            }
        }
        Ok(())
    }

    /// Read the old data of `w` from `at` (as far as one plan goes) into
    /// the window buffer; returns the sectors read.
    fn read_piece<I: GrowIo>(
        &mut self,
        io: &mut I,
        at: u64,
        w: &Window,
    ) -> Result<u64, GrowError<I::Error>> {
        self.reader
            .plan(at, w.read_end - at, &mut self.read_plan)
            .map_err(|e| GrowError::Refused(e.to_string()))?;
        let plan = &self.read_plan;
        let len = plan.len_sectors as usize * SECTOR;
        if self.parts.len() < plan.buffers {
            self.parts.resize_with(plan.buffers, Vec::new);
        }
        for p in &mut self.parts[..plan.buffers] {
            p.resize(len, 0);
        }
        for r in &plan.reads {
            let member = self.member(r.role);
            io.read(member, r.device_sector * 512, &mut self.parts[r.buffer])
                .map_err(GrowError::Io)?;
        }
        let mut refs: Vec<&mut [u8]> = self.parts[..plan.buffers]
            .iter_mut()
            .map(Vec::as_mut_slice)
            .collect();
        self.reader.finish(plan, &mut refs);
        let off = (at - w.start) as usize * SECTOR;
        self.data[off..off + len].copy_from_slice(&self.parts[0][..len]);
        Ok(plan.len_sectors)
    }
}

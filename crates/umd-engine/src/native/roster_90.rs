//! The roster in 0.90 superblocks: md's `super_90_sync` rebuilds the whole
//! descriptor table from the array's devices on every update, and a member
//! added to a running 0.90 array gets a spare superblock of its own (md's
//! hot add, as mdadm `--add` writes it).
//!
//! Why rebuild rather than edit: 0.90 numbers its descriptors by role. A
//! device in sync in slot `r` is descriptor `r`; every other device (a
//! spare, one still recovering, a failed one still attached) takes the next
//! number from `raid_disks` up, in the array's device order; a slot with no
//! device is written "removed, faulty". A spare that finishes its recovery
//! therefore changes number, and so may every spare after it. Linux takes
//! each device's role from the descriptor its own `this_disk.number` names,
//! so every member's table and `this_disk` must be rewritten together.
//!
//! 0.90 has no recovery checkpoint: a member still recovering is written as
//! a spare (state 0), as md writes it, and a restart recovers it from the
//! start. A device whose 0.90 superblock says it was in sync in a slot of
//! this array, recently enough for the bitmap to cover what it missed, is
//! re-added into that slot (md's re-add, as `super_90_validate` accepts
//! it); any other joins as a new spare (full recovery).

use super::{inval, MemberSb, NativeMetadata, NewMember, RosterEntry};
use crate::errno::{EngineError, Errno};
use crate::member::MemberHealth;
use umd_formats::sb0::{self, Disk0, Superblock0, MD_SB_DISKS};
use umd_formats::SECTOR_BYTES;

/// md's `MD_DISK_WRITEMOSTLY` descriptor bit.
const DISK_WRITE_MOSTLY: u32 = 1 << 9;

/// The descriptor counts `super_90_sync` writes beside the table.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    nr: u32,
    active: u32,
    working: u32,
    failed: u32,
    spare: u32,
}

impl NativeMetadata {
    /// md's `super_90_sync` over `roster` (every device the array has, in
    /// its order): each present 0.90 member's descriptor table, counts and
    /// `this_disk` rebuilt (module doc). An empty roster changes nothing.
    pub(super) fn record_roster_90(&mut self, roster: &[RosterEntry]) {
        let Some(raid_disks) = self.members.iter().flatten().find_map(|m| match m {
            MemberSb::V0 { sb, .. } => Some(sb.raid_disks),
            MemberSb::V1(_) => None,
        }) else {
            return;
        };
        if roster.is_empty() {
            return;
        }
        let mut table = [Disk0::default(); MD_SB_DISKS];
        let mut own: Vec<(usize, Disk0)> = Vec::with_capacity(roster.len());
        let mut counts = Counts::default();
        let mut next_spare = raid_disks;
        for e in roster {
            let Some(Some(MemberSb::V0 { sb, .. })) = self.members.get(e.member) else {
                continue;
            };
            let faulty =
                e.health == MemberHealth::Faulty || self.faulty.get(e.member) == Some(&true);
            let slot = e
                .slot
                .filter(|_| !faulty && e.health == MemberHealth::InSync);
            let number = slot.unwrap_or(next_spare);
            if slot.is_none() {
                next_spare += 1;
            }
            if number as usize >= MD_SB_DISKS {
                // 0.90 holds 27 devices; add_spare refuses a 28th.
                continue;
            }
            let mut state = match (faulty, slot) {
                (true, _) => sb0::DISK_FAULTY,
                (false, Some(_)) => sb0::DISK_ACTIVE | sb0::DISK_SYNC,
                (false, None) => 0,
            };
            if e.write_mostly {
                state |= DISK_WRITE_MOSTLY;
            }
            let d = Disk0 {
                number,
                major: sb.this_disk.major,
                minor: sb.this_disk.minor,
                raid_disk: slot.unwrap_or(number),
                state,
            };
            counts.nr += 1;
            match (faulty, slot) {
                (true, _) => counts.failed += 1,
                (false, Some(_)) => {
                    counts.active += 1;
                    counts.working += 1;
                }
                (false, None) => {
                    counts.spare += 1;
                    counts.working += 1;
                }
            }
            table[number as usize] = d;
            own.push((e.member, d));
        }
        for (i, d) in table.iter_mut().enumerate().take(raid_disks as usize) {
            if d.state == 0 && d.number == 0 {
                let i = i as u32;
                *d = Disk0 {
                    number: i,
                    major: 0,
                    minor: 0,
                    raid_disk: i,
                    state: sb0::DISK_REMOVED | sb0::DISK_FAULTY,
                };
                counts.failed += 1;
            }
        }
        for (m, member) in self.members.iter_mut().enumerate() {
            let Some(MemberSb::V0 { sb, .. }) = member.as_mut() else {
                continue;
            };
            *sb.disks = table;
            sb.nr_disks = counts.nr;
            sb.active_disks = counts.active;
            sb.working_disks = counts.working;
            sb.failed_disks = counts.failed;
            sb.spare_disks = counts.spare;
            if let Some((_, d)) = own.iter().find(|(o, _)| *o == m) {
                sb.this_disk = *d;
            }
        }
    }

    /// The superblock a new or returning 0.90 member is checked against
    /// or copies: the first present 0.90 member that has not failed.
    fn template_90(&self) -> Option<&Superblock0> {
        self.members
            .iter()
            .enumerate()
            .find_map(|(m, sb)| match sb {
                Some(MemberSb::V0 { sb, .. }) if !self.faulty[m] => Some(sb.as_ref()),
                _ => None,
            })
    }

    /// md's re-add test for a 0.90 device being added whose superblock is
    /// `sb`: it names this array (UUID, level, layout, chunk), its own
    /// descriptor was in sync in a data slot, and its events are no older
    /// than the bitmap's `events_cleared` nor newer than the array's.
    /// Returns that slot; `None`: an ordinary spare.
    #[must_use]
    pub fn re_add_role_90(&self, sb: &Superblock0) -> Option<u32> {
        let bitmap = self.bitmap.as_ref()?;
        let template = self.template_90()?;
        let same = sb.uuid() == template.uuid()
            && sb.level == template.level
            && sb.layout == template.layout
            && sb.chunk_size == template.chunk_size;
        let own = sb.disks.get(sb.this_disk.number as usize)?;
        let in_sync = own.state & sb0::DISK_SYNC != 0 && own.state & sb0::DISK_FAULTY == 0;
        let window = bitmap.events_cleared() <= sb.events && sb.events <= self.events;
        let role = own.raid_disk;
        (same && in_sync && window && role < template.raid_disks).then_some(role)
    }

    /// Take a re-added 0.90 member's own superblock back as member
    /// `member` (after [`NativeMetadata::re_add_role_90`] accepted it),
    /// where it lies on the device; the next update rewrites its table
    /// with the array's (md writes one table, from its devices, to every
    /// member).
    pub(super) fn re_add_90(
        &mut self,
        member: usize,
        sb: Superblock0,
        offset_bytes: u64,
    ) -> Result<(), EngineError> {
        self.check_free(member)?;
        self.place_sb(
            member,
            MemberSb::V0 {
                sb: Box::new(sb),
                offset_bytes,
            },
        );
        Ok(())
    }

    /// md's hot add for 0.90: member `member` (a device of `dev_bytes`)
    /// joins as a spare. Its superblock is the first working member's with
    /// its own `this_disk` (a free number from `raid_disks` up, state 0),
    /// at the end of the device where 0.90 keeps it; the data starts at 0.
    /// Every table gets it with the next update's roster.
    pub(super) fn add_spare_90(
        &mut self,
        member: usize,
        dev_bytes: u64,
    ) -> Result<NewMember, EngineError> {
        let template = self
            .template_90()
            .ok_or_else(|| inval("no working member to copy the superblock from".to_owned()))?;
        let dev_sectors = dev_bytes / SECTOR_BYTES;
        let super_offset = sb0::super_offset_sectors(dev_sectors)
            .ok_or_else(|| inval(format!("new member of {dev_sectors} sectors is too small")))?;
        let needed = u64::from(template.size) * 2;
        if super_offset < needed {
            return Err(EngineError::new(
                Errno::ENOSPC,
                format!(
                    "new member of {dev_sectors} sectors: the array needs {needed} before \
                     its 0.90 superblock"
                ),
            ));
        }
        let used: Vec<u32> = self
            .members
            .iter()
            .flatten()
            .filter_map(|m| match m {
                MemberSb::V0 { sb, .. } => Some(sb.this_disk.number),
                MemberSb::V1(_) => None,
            })
            .collect();
        let number = (template.raid_disks..MD_SB_DISKS as u32)
            .find(|n| !used.contains(n))
            .ok_or_else(|| {
                EngineError::new(
                    Errno::ENOSPC,
                    format!("a 0.90 superblock holds {MD_SB_DISKS} devices"),
                )
            })?;
        let mut sb: Superblock0 = template.clone();
        sb.this_disk = Disk0 {
            number,
            major: 0,
            minor: 0,
            raid_disk: number,
            state: 0,
        };
        sb.found_at_sector = Some(super_offset);
        self.place_sb(
            member,
            MemberSb::V0 {
                sb: Box::new(sb),
                offset_bytes: super_offset * SECTOR_BYTES,
            },
        );
        Ok(NewMember {
            data_offset_sectors: 0,
            size_sectors: super_offset,
        })
    }
}

#[cfg(test)]
mod tests;

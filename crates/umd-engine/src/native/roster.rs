//! The roster in native 1.x superblocks while the array runs: a member
//! added as a spare gets a superblock of its own (md's hot add, as mdadm
//! `--add` writes it), and every update records each member's role and a
//! recovering member's checkpoint (md's `super_1_sync` over its devices).
//!
//! Why: Linux trusts the roster of the freshest superblock. A spare that
//! is not in it is not part of the array; a recovering member whose role
//! is written without `recovery_offset` would be taken as in sync; one
//! whose checkpoint is never written would start again from 0. md writes
//! role = slot for every slotted, non-faulty device, `MD_DISK_ROLE_SPARE`
//! for the others, and `MD_FEATURE_RECOVERY_OFFSET` + `recovery_offset` on
//! a device that has a slot but is not in sync.
//!
//! 0.90 superblocks keep their roster in a descriptor table that md
//! renumbers on every update: `roster_90.rs`.

use super::{inval, MemberSb, NativeMetadata};
use crate::array::Array;
use crate::errno::{EngineError, Errno};
use crate::member::{MemberFlags, MemberHealth};
use umd_formats::sb1::{self, Superblock1};
use umd_formats::SECTOR_BYTES;

/// md's `WriteMostly1` bit of 1.x `devflags`.
const DEVFLAG_WRITE_MOSTLY: u8 = 1;

/// One member's place in the array, as the engine holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterEntry {
    /// The caller's member index.
    pub member: usize,
    /// md's `raid_disk`: the slot it fills, `None` for a spare.
    pub slot: Option<u32>,
    /// Its health (a recovering member records its checkpoint).
    pub health: MemberHealth,
    /// md's `WriteMostly`, recorded in `devflags`.
    pub write_mostly: bool,
    /// md's `corrected_errors`, recorded as `cnt_corrected_read` (never
    /// below what the superblock already holds).
    pub corrected_errors: u64,
    /// md's `Replacement`: the slot's replacement, recorded in its own
    /// superblock as `MD_FEATURE_REPLACEMENT` (its role is the slot's).
    pub replacement: bool,
}

/// Every member `array` has, as the superblocks record them; `index_of`
/// gives the host's member index for a name (a member it does not know is
/// left out). Both hosts build the roster they hand to
/// [`NativeMetadata::record_roster`] here.
pub fn roster_of(
    array: &Array,
    mut index_of: impl FnMut(&str) -> Option<usize>,
) -> Vec<RosterEntry> {
    array
        .members()
        .iter()
        .filter_map(|m| {
            Some(RosterEntry {
                member: index_of(m.name())?,
                slot: m.slot(),
                health: m.health(),
                write_mostly: m.flags().contains(MemberFlags::WRITE_MOSTLY),
                corrected_errors: m.corrected_errors(),
                replacement: m.is_replacement(),
            })
        })
        .collect()
}

/// Where a new member's data lies, for the engine's member table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewMember {
    /// Data offset, sectors (the template's, as mdadm keeps it per array).
    pub data_offset_sectors: u64,
    /// Usable data sectors on the new member.
    pub size_sectors: u64,
}

impl NativeMetadata {
    /// md's hot add for 1.x: member `member` (a device of `dev_bytes`)
    /// joins as a spare with device UUID `device_uuid`. Its superblock is
    /// the template member's with a fresh `dev_number` (md's choice: the
    /// first from `raid_disks` that no present member uses), this device's
    /// placement and no bad-block log; every superblock's roster gets the
    /// spare. Written with the next update.
    pub fn add_spare(
        &mut self,
        member: usize,
        dev_bytes: u64,
        device_uuid: [u8; 16],
    ) -> Result<NewMember, EngineError> {
        self.check_free(member)?;
        if self.version == "0.90" {
            return self.add_spare_90(member, dev_bytes);
        }
        let template = self.template()?;
        let dev_sectors = dev_bytes / SECTOR_BYTES;
        let mut sb = template.clone();
        let super_offset = sb1::super_offset_sectors(sb.minor(), dev_sectors)
            .ok_or_else(|| inval(format!("new member of {dev_sectors} sectors is too small")))?;
        // The bitmap sits at a fixed distance from the superblock; on 1.0
        // the data must end before the bitmap area or the superblock.
        let below = if sb.feature_map & sb1::FEATURE_BITMAP_OFFSET != 0 {
            i64::from(sb.bitmap_offset.min(0))
        } else {
            0
        };
        let data_end = if sb.minor() == 0 {
            i64::try_from(super_offset).unwrap_or(i64::MAX) + below
        } else {
            i64::try_from(dev_sectors).unwrap_or(i64::MAX)
        };
        let needed = sb.data_offset + sb.size;
        if data_end < i64::try_from(needed).unwrap_or(i64::MAX) {
            return Err(EngineError::new(
                Errno::ENOSPC,
                format!(
                    "new member of {dev_sectors} sectors: the array needs {needed} with its data offset"
                ),
            ));
        }
        sb.super_offset = super_offset;
        sb.data_size = u64::try_from(data_end).unwrap_or(0) - sb.data_offset;
        sb.dev_number = self.free_dev_number(sb.raid_disks);
        sb.device_uuid = device_uuid;
        sb.devflags = 0;
        sb.cnt_corrected_read = 0;
        sb.bblog_shift = 0;
        sb.bblog_size = 0;
        sb.bblog_offset = 0;
        sb.recovery_offset = 0;
        sb.feature_map &= !sb1::FEATURE_RECOVERY_OFFSET;
        let dev = sb.dev_number as usize;
        self.place(member, sb);
        for other in self.members.iter_mut().flatten() {
            if let MemberSb::V1(sb) = other {
                set_role(sb, dev, sb1::ROLE_SPARE);
            }
        }
        let MemberSb::V1(added) = self.members[member].as_ref().expect("just added") else {
            unreachable!("the template is 1.x");
        };
        assert!(added.data_size >= added.size, "room for the component");
        Ok(NewMember {
            data_offset_sectors: added.data_offset,
            size_sectors: added.data_size,
        })
    }

    /// md's re-add test for a device being added whose superblock is
    /// `sb`: it names this array, its own role is a data slot, and its
    /// events are no older than the bitmap's `events_cleared` (every write
    /// it missed still has its bit set) nor newer than the array's. Returns
    /// that role; `None` means an ordinary spare (full recovery).
    #[must_use]
    pub fn re_add_role(&self, sb: &Superblock1) -> Option<u32> {
        let template = self.template().ok()?;
        let bitmap = self.bitmap.as_ref()?;
        let same = sb.set_uuid == template.set_uuid
            && sb.level == template.level
            && sb.layout == template.layout
            && sb.chunksize == template.chunksize;
        let role = u32::from(sb.role());
        let window = bitmap.events_cleared() <= sb.events && sb.events <= self.events;
        (same && window && role < template.raid_disks).then_some(role)
    }

    /// Take a re-added member's own superblock back as member `member`
    /// (after [`NativeMetadata::re_add_role`] accepted it); the next update
    /// rewrites it with the array's events and roster. Its roster is the
    /// array's from now on: the one it brought back is as old as it is, and
    /// would still list members that failed while it was out (md writes one
    /// roster, from its device list, to every member).
    ///
    /// It keeps its `dev_number` unless another member took it meanwhile (a
    /// spare added while this one was out of the array's metadata); then it
    /// gets a free one, as md's `bind_rdev_to_array` does. Two members with
    /// one number would both claim that number's role at the next assembly.
    pub fn re_add(&mut self, member: usize, mut sb: Superblock1) -> Result<(), EngineError> {
        self.check_free(member)?;
        sb.dev_roles.clone_from(&self.template()?.dev_roles);
        let taken = self.members.iter().enumerate().any(|(m, other)| {
            m != member && matches!(other, Some(MemberSb::V1(o)) if o.dev_number == sb.dev_number)
        });
        if taken {
            sb.dev_number = self.free_dev_number(sb.raid_disks);
        }
        self.place(member, sb);
        Ok(())
    }

    /// Member index `member` may take a superblock: none yet, or one that
    /// failed (a removed member's index is reused when it comes back).
    pub(super) fn check_free(&self, member: usize) -> Result<(), EngineError> {
        let taken = self.members.get(member).is_some_and(Option::is_some);
        let failed = self.faulty.get(member).copied().unwrap_or(false);
        if taken && !failed {
            return Err(EngineError::new(
                Errno::EEXIST,
                format!("member {member} already has a superblock"),
            ));
        }
        Ok(())
    }

    /// Put `sb` in as member `member`, working.
    fn place(&mut self, member: usize, sb: Superblock1) {
        self.place_sb(member, MemberSb::V1(Box::new(sb)));
    }

    /// Put `sb` (either kind) in as member `member`, working, with its
    /// place in the internal bitmap if the array has one.
    pub(super) fn place_sb(&mut self, member: usize, sb: MemberSb) {
        if self.members.len() <= member {
            self.members.resize(member + 1, None);
            self.faulty.resize(member + 1, false);
        }
        self.members[member] = Some(sb);
        self.faulty[member] = false;
        assert!(self.members[member].is_some(), "placed");
        if let Some(at) = self.bitmap_offset_bytes(member) {
            if let Some(bitmap) = self.bitmap.as_mut() {
                bitmap.add_member(member, at);
            }
        }
    }

    /// Undo [`NativeMetadata::add_spare`] for `member` (the engine refused
    /// it): its superblock is forgotten and its roster entry is faulty.
    pub fn forget_spare(&mut self, member: usize) {
        if let Some(Some(MemberSb::V0 { .. })) = self.members.get(member) {
            // 0.90 tables are rebuilt from the roster at every update.
            self.members[member] = None;
            if let Some(bitmap) = self.bitmap.as_mut() {
                bitmap.remove_member(member);
            }
            return;
        }
        let Some(Some(MemberSb::V1(sb))) = self.members.get(member) else {
            return;
        };
        let dev = sb.dev_number as usize;
        self.members[member] = None;
        for sb in self.members.iter_mut().flatten() {
            if let MemberSb::V1(sb) = sb {
                set_role(sb, dev, sb1::ROLE_FAULTY);
            }
        }
        if let Some(bitmap) = self.bitmap.as_mut() {
            bitmap.remove_member(member);
        }
    }

    /// Record every member's role (and a recovering member's checkpoint)
    /// in the 1.x superblocks, as md's `super_1_sync` does before writing
    /// (0.90: `NativeMetadata::record_roster_90`).
    /// Faulty members keep what `mark_faulty` wrote. `roster` is every
    /// member the array has: one with a superblock that is not in it was
    /// removed, and is recorded faulty as md records a device it no longer
    /// has (its index may then take a superblock again: re-add or a new
    /// spare). An empty roster is an array without members (cleared), not
    /// one whose members were all removed: nothing is marked.
    pub fn record_roster(&mut self, roster: &[RosterEntry]) {
        let removed: Vec<usize> = (0..self.members.len())
            .filter(|&m| {
                !roster.is_empty()
                    && self.members[m].is_some()
                    && !roster.iter().any(|e| e.member == m)
            })
            .collect();
        for m in removed {
            self.mark_faulty(m);
        }
        for entry in roster {
            let faulty = self.faulty.get(entry.member).copied().unwrap_or(true);
            let Some(Some(MemberSb::V1(own))) = self.members.get_mut(entry.member) else {
                continue;
            };
            if faulty || entry.health == MemberHealth::Faulty {
                continue;
            }
            if entry.write_mostly {
                own.devflags |= DEVFLAG_WRITE_MOSTLY;
            } else {
                own.devflags &= !DEVFLAG_WRITE_MOSTLY;
            }
            // The engine counts from 0 each run; what an earlier run (or
            // the kernel) recorded is never lowered.
            let corrected = u32::try_from(entry.corrected_errors).unwrap_or(u32::MAX);
            own.cnt_corrected_read = own.cnt_corrected_read.max(corrected);
            let role = entry.slot.map_or(sb1::ROLE_SPARE, |s| {
                u16::try_from(s).unwrap_or(sb1::ROLE_SPARE)
            });
            if entry.replacement && entry.slot.is_some() {
                own.feature_map |= sb1::FEATURE_REPLACEMENT;
            } else {
                own.feature_map &= !sb1::FEATURE_REPLACEMENT;
            }
            if let (
                Some(_),
                MemberHealth::OutOfSync {
                    recovery_offset_sectors,
                },
            ) = (entry.slot, entry.health)
            {
                own.feature_map |= sb1::FEATURE_RECOVERY_OFFSET;
                own.recovery_offset = recovery_offset_sectors;
            } else {
                own.feature_map &= !sb1::FEATURE_RECOVERY_OFFSET;
                own.recovery_offset = 0;
            }
            let dev = own.dev_number as usize;
            for sb in self.members.iter_mut().flatten() {
                if let MemberSb::V1(sb) = sb {
                    set_role(sb, dev, role);
                }
            }
        }
        self.record_roster_90(roster);
    }

    /// The superblock a new member copies: the first present 1.x member
    /// that has not failed.
    fn template(&self) -> Result<&Superblock1, EngineError> {
        let mut v0 = false;
        for (m, sb) in self.members.iter().enumerate() {
            match sb {
                Some(MemberSb::V1(sb)) if !self.faulty[m] => return Ok(sb),
                Some(MemberSb::V0 { .. }) => v0 = true,
                _ => {}
            }
        }
        Err(EngineError::new(
            Errno::EOPNOTSUPP,
            if v0 {
                "a 0.90 array has no 1.x superblock to copy".to_owned()
            } else {
                "no working member to copy the superblock from".to_owned()
            },
        ))
    }

    /// md's `bind_rdev_to_array` choice of `desc_nr`: from `raid_disks`
    /// up, the first number no present member carries.
    fn free_dev_number(&self, raid_disks: u32) -> u32 {
        let used: Vec<u32> = self
            .members
            .iter()
            .flatten()
            .filter_map(|m| match m {
                MemberSb::V1(sb) => Some(sb.dev_number),
                MemberSb::V0 { .. } => None,
            })
            .collect();
        let mut n = raid_disks;
        while used.contains(&n) {
            n += 1;
        }
        assert!(!used.contains(&n), "a free dev_number");
        n
    }
}

/// Set `dev`'s role in `sb`'s roster, growing `max_dev` (new entries are
/// faulty, as md fills the roles of devices it does not have).
fn set_role(sb: &mut Superblock1, dev: usize, role: u16) {
    if sb.dev_roles.len() <= dev {
        sb.dev_roles.resize(dev + 1, sb1::ROLE_FAULTY);
    }
    sb.dev_roles[dev] = role;
    assert_eq!(sb.dev_roles[dev], role, "the role is recorded");
}

#[cfg(test)]
pub(in crate::native) mod tests {
    use super::*;
    use crate::native::tests::member as real;
    use crate::native::SuperblockUpdate;

    fn v1(out: &[crate::native::MetadataWrite], member: usize) -> Superblock1 {
        let w = out.iter().find(|w| w.member == member).expect("written");
        Superblock1::parse(&w.bytes, w.offset_bytes / SECTOR_BYTES, u64::MAX).expect("parses")
    }

    /// A clean update with nothing failed.
    pub(in crate::native) fn update() -> SuperblockUpdate {
        SuperblockUpdate {
            clean: true,
            resync_offset_sectors: u64::MAX,
            faulty_members: Vec::new(),
            utime_seconds: 1,
            raid_disks: None,
        }
    }

    /// The roster of raid5-1 and raid5-2 (slots 0 and 1, in sync) and `other`.
    fn with_working(other: RosterEntry) -> Vec<RosterEntry> {
        let working = |member: usize| RosterEntry {
            member,
            slot: Some(member as u32),
            health: MemberHealth::InSync,
            write_mostly: false,
            corrected_errors: 0,
            replacement: false,
        };
        vec![working(0), working(1), other]
    }

    #[test]
    fn a_member_removed_before_its_failure_was_written_is_recorded_faulty() {
        let metas = vec![Some(real("raid5-1")), Some(real("raid5-2")), None];
        let mut md = NativeMetadata::load(metas).expect("load");
        md.add_spare(3, 64 << 20, [7; 16]).expect("room");
        // Member 1 failed and was removed before any superblock said so.
        let roster = with_working(RosterEntry {
            member: 3,
            slot: None,
            health: MemberHealth::InSync,
            write_mostly: false,
            corrected_errors: 0,
            replacement: false,
        });
        md.record_roster(&[roster[0], roster[2]]);
        let mut out = Vec::new();
        md.update(&update(), &mut out);
        assert!(out.iter().all(|w| w.member != 1), "not written as current");
        let dev = v1(&out, 0);
        let umd_formats::probe::Metadata::V1(removed_sb) = real("raid5-2") else {
            panic!("raid5-2 is 1.x");
        };
        assert_eq!(
            dev.dev_roles[removed_sb.dev_number as usize],
            sb1::ROLE_FAULTY
        );
        // While it is out, the spare fails and is removed too.
        md.record_roster(&[roster[0]]);
        // Its index takes a superblock again (a re-add of the same file),
        // and its copy of the roster is the array's, not the stale one it
        // brought back (which still lists the spare).
        md.re_add(1, removed_sb)
            .expect("the removed member's index is free");
        md.record_roster(&with_working(roster[2])[..2]);
        let mut out = Vec::new();
        md.update(&update(), &mut out);
        let (kept, back) = (v1(&out, 0), v1(&out, 1));
        assert_eq!(back.dev_roles, kept.dev_roles, "one roster on every member");
        assert_eq!(back.dev_roles[3], sb1::ROLE_FAULTY, "the spare is gone");
    }

    #[test]
    fn a_re_added_member_whose_number_was_taken_gets_a_free_one() {
        let metas = vec![Some(real("raid5-1")), Some(real("raid5-2")), None, None];
        let mut md = NativeMetadata::load(metas).expect("load");
        md.add_spare(2, 64 << 20, [7; 16]).expect("room");
        let mut out = Vec::new();
        md.update(&update(), &mut out);
        let old = v1(&out, 2);
        assert_eq!(old.dev_number, 3);
        // It leaves the array's metadata; a new spare takes its number.
        md.forget_spare(2);
        md.add_spare(3, 64 << 20, [8; 16]).expect("room");
        md.re_add(2, old).expect("its index is free");
        let mut out = Vec::new();
        md.update(&update(), &mut out);
        let (back, new) = (v1(&out, 2), v1(&out, 3));
        assert_eq!(new.dev_number, 3);
        assert_ne!(back.dev_number, new.dev_number, "one number, one member");
    }

    #[test]
    fn a_spare_gets_a_superblock_and_a_roster_entry_then_a_checkpoint() {
        let metas = vec![Some(real("raid5-1")), Some(real("raid5-2")), None];
        let mut md = NativeMetadata::load(metas).expect("load");
        let new = md.add_spare(3, 64 << 20, [7; 16]).expect("room");
        let mut out = Vec::new();
        md.update(&update(), &mut out);
        let spare = v1(&out, 3);
        let old = v1(&out, 0);
        assert_eq!(spare.set_uuid, old.set_uuid, "same array");
        assert_eq!(spare.device_uuid, [7; 16]);
        assert_eq!(spare.dev_number, 3, "from raid_disks up");
        assert_eq!(new.data_offset_sectors, old.data_offset);
        assert_eq!(old.dev_roles[3], sb1::ROLE_SPARE, "the old roster knows it");
        assert_eq!(spare.role(), sb1::ROLE_SPARE);
        assert_eq!(spare.events, old.events);

        // Slot 2's replacement, half copied: role 2 with a checkpoint and
        // the replacement bit (md's super_1_sync).
        let recovering = MemberHealth::OutOfSync {
            recovery_offset_sectors: 4096,
        };
        md.record_roster(&with_working(RosterEntry {
            member: 3,
            slot: Some(2),
            health: recovering,
            write_mostly: true,
            corrected_errors: 8,
            replacement: true,
        }));
        let mut out = Vec::new();
        md.update(&update(), &mut out);
        let spare = v1(&out, 3);
        assert_eq!(v1(&out, 1).dev_roles[3], 2);
        assert_ne!(spare.feature_map & sb1::FEATURE_RECOVERY_OFFSET, 0);
        assert_eq!(spare.recovery_offset, 4096);
        assert_eq!(spare.cnt_corrected_read, 8);
        assert_eq!(spare.devflags & DEVFLAG_WRITE_MOSTLY, DEVFLAG_WRITE_MOSTLY);
        assert_ne!(spare.feature_map & sb1::FEATURE_REPLACEMENT, 0);
        assert_eq!(
            v1(&out, 1).feature_map & sb1::FEATURE_REPLACEMENT,
            0,
            "its own only"
        );

        md.record_roster(&with_working(RosterEntry {
            member: 3,
            slot: Some(2),
            health: MemberHealth::InSync,
            write_mostly: false,
            corrected_errors: 0,
            replacement: false,
        }));
        let mut out = Vec::new();
        md.update(&update(), &mut out);
        let spare = v1(&out, 3);
        assert_eq!(
            spare.feature_map & sb1::FEATURE_RECOVERY_OFFSET,
            0,
            "in sync"
        );
        assert_eq!(
            spare.feature_map & sb1::FEATURE_REPLACEMENT,
            0,
            "holds its slot"
        );
        assert_eq!(spare.role(), 2);
        assert_eq!(spare.cnt_corrected_read, 8, "a count is never lowered");
        assert_eq!(spare.devflags & DEVFLAG_WRITE_MOSTLY, 0);
    }

    #[test]
    fn small_devices_are_refused() {
        let metas = vec![Some(real("raid5-1")), Some(real("raid5-2"))];
        let mut md = NativeMetadata::load(metas).expect("load");
        let e = md.add_spare(2, 1 << 20, [1; 16]).unwrap_err();
        assert_eq!(e.errno, Errno::ENOSPC, "{e}");
        assert_eq!(
            md.add_spare(0, 64 << 20, [1; 16]).unwrap_err().errno,
            Errno::EEXIST
        );
        let mut md = NativeMetadata::load(vec![Some(real("90-raid1-1"))]).expect("load");
        let e = md.add_spare(1, 1 << 20, [1; 16]).unwrap_err();
        assert_eq!(e.errno, Errno::ENOSPC, "{e}");
    }
}

//! Spares and recovery bookkeeping: a member joining a running array (md's
//! hot add, `new_dev`), a spare taking a free slot (the add half of md's
//! `remove_and_add_spares`), and a recovering member's progress.
//!
//! Why here: these are the transitions of the member table that recovery
//! hangs on, and the host must learn each at once (its role map decides
//! where writes go), so each one emits an event.
//!
//! | from | trigger | to |
//! |---|---|---|
//! | (absent) | `add_member` | spare: no slot, not in sync |
//! | spare | a free slot, native array, not frozen (md thread); or a `slot` store (manager) | recovering from 0 (`MemberActivated`) |
//! | recovering | recovery progress refreshed | recovering from a later checkpoint |
//! | recovering | recovery completed | in sync (`MemberInSync`) |
//!
//! External arrays never activate spares by themselves: the manager picks
//! the spare, records it in its metadata, writes `slot` and then `recover`
//! (protocol.md §6.4), and the engine must not race it.

use crate::array::{Array, ArrayEvent, MemberConfig, MetadataKind, Ro};
use crate::errno::{EngineError, Errno};
use crate::member::{Member, MemberFlags, MemberHealth};
use crate::state::SbFlags;

/// Most members an array holds, slotted or spare: md's 1.x limit of
/// device roles (`MD_MAX_DEVS` is larger; 1920 role slots fit a 4 KiB
/// superblock), bounding the member table (style R7).
pub const MEMBERS_MAX: usize = 1920;

impl Array {
    /// md's hot add: `config` joins as a spare (its slot and sync state are
    /// ignored). On a running native array with a free slot it is activated
    /// at once and recovery starts.
    pub fn add_member(&mut self, config: MemberConfig) -> Result<(), EngineError> {
        if self.members.iter().any(|m| m.name == config.name) {
            return Err(EngineError::new(
                Errno::EEXIST,
                format!("dev-{}: already a member", config.name),
            ));
        }
        if self.members.len() >= MEMBERS_MAX {
            return Err(EngineError::new(
                Errno::ENOSPC,
                format!("dev-{}: the array has {MEMBERS_MAX} members", config.name),
            ));
        }
        // A size of 0 is not set yet (external: the manager sets it next).
        let sized = config.size_sectors != 0;
        if self.state.running.is_some() && sized && config.size_sectors < self.component_sectors {
            return Err(EngineError::new(
                Errno::ENOSPC,
                format!(
                    "dev-{}: {} sectors, the array needs {}",
                    config.name, config.size_sectors, self.component_sectors
                ),
            ));
        }
        let name = config.name.clone();
        self.members.push(Member {
            name: config.name,
            slot: None,
            data_offset_sectors: config.data_offset_sectors,
            size_sectors: config.size_sectors,
            health: MemberHealth::OutOfSync {
                recovery_offset_sectors: 0,
            },
            flags: MemberFlags::default(),
            errors: 0,
            read_errors: crate::member::ReadErrors::default(),
            bad_blocks: Vec::new(),
        });
        self.recovery_needed = true;
        // Native: the spare's superblock and every roster record it.
        let native = matches!(self.metadata, MetadataKind::Native { .. });
        if native && self.state.running == Some(Ro::ReadWrite) {
            self.state.sb_flags.insert(SbFlags::DEVS);
        }
        self.notify(&format!("dev-{name}/state"));
        self.md_check_recovery();
        assert!(self
            .members
            .iter()
            .any(|m| m.name == name && !m.is_in_sync()));
        Ok(())
    }

    /// md's re-add: `config` was the member in `slot` and the write-intent
    /// bitmap covers every write it missed (the host checked its events
    /// against the bitmap). It joins and, with `slot` free on a running
    /// array, takes it back at once; the recovery then covers only the
    /// bitmap's dirty chunks. Returns whether it took the slot (if not, it
    /// stays an ordinary spare).
    pub fn re_add_member(&mut self, config: MemberConfig, slot: u32) -> Result<bool, EngineError> {
        let name = config.name.clone();
        let free = slot < self.raid_disks
            && !self.members.iter().any(|m| m.slot == Some(slot))
            && self.state.running == Some(Ro::ReadWrite)
            && self.sync.running.is_none();
        if !free {
            self.add_member(config)?;
            return Ok(false);
        }
        // Taken before add_member's own activation could give it another slot.
        let frozen = std::mem::replace(&mut self.sync.frozen, true);
        let added = self.add_member(config);
        self.sync.frozen = frozen;
        added?;
        let i = self
            .members
            .iter()
            .position(|m| m.name == name)
            .expect("just added");
        self.take_slot(i, slot);
        self.members[i]
            .flags
            .set(MemberFlags::BITMAP_RECOVERY, true);
        self.md_check_recovery();
        assert_eq!(self.members[i].slot, Some(slot), "back in its slot");
        Ok(true)
    }

    /// Whether the recovery due only needs the bitmap's dirty chunks: every
    /// recovering member was re-added into its own slot.
    #[must_use]
    pub fn recovery_is_bitmap_based(&self) -> bool {
        let mut recovering = self
            .members
            .iter()
            .filter(|m| m.slot.is_some() && !m.is_in_sync() && !m.is_faulty())
            .peekable();
        recovering.peek().is_some()
            && recovering.all(|m| m.flags.contains(MemberFlags::BITMAP_RECOVERY))
    }

    /// Native arrays: give free slots to spares (md's `remove_and_add_spares`).
    pub(crate) fn activate_spares(&mut self) {
        let native = matches!(self.metadata, MetadataKind::Native { .. });
        let quiet = self.sync.running.is_none() && !self.sync.frozen && !self.state.broken;
        if !native || !quiet || self.state.running != Some(Ro::ReadWrite) || !self.is_redundant() {
            return;
        }
        for slot in 0..self.raid_disks {
            if self.members.iter().any(|m| m.slot == Some(slot)) {
                continue;
            }
            let Some(i) = self.idle_spare() else {
                return;
            };
            self.take_slot(i, slot);
        }
        self.activate_replacements();
    }

    /// A spare that can take a slot: none of its own, not failed, large
    /// enough.
    pub(crate) fn idle_spare(&self) -> Option<usize> {
        self.members.iter().position(|m| {
            m.slot.is_none() && !m.is_faulty() && m.size_sectors >= self.component_sectors
        })
    }

    /// Member `i` (a spare) fills `slot` (as its replacement if flagged so)
    /// and starts recovering into it.
    pub(crate) fn take_slot(&mut self, i: usize, slot: u32) {
        assert!(self.members[i].slot.is_none(), "a spare has no slot");
        assert!(
            !self.members[i].is_faulty(),
            "a faulty member takes no slot"
        );
        let m = &mut self.members[i];
        m.slot = Some(slot);
        m.health = MemberHealth::OutOfSync {
            recovery_offset_sectors: 0,
        };
        self.announce_activation(i);
    }

    /// Member `i` just took its slot (a spare, or a replacement taking over
    /// from a member that failed) and recovers from its checkpoint: the
    /// host learns where writes go now, and the superblocks record it.
    pub(crate) fn announce_activation(&mut self, i: usize) {
        let m = &self.members[i];
        let (
            Some(slot),
            MemberHealth::OutOfSync {
                recovery_offset_sectors,
            },
        ) = (m.slot, m.health)
        else {
            unreachable!("an activated member has a slot and recovers")
        };
        let event = ArrayEvent::MemberActivated {
            name: m.name.clone(),
            slot,
            data_offset_sectors: m.data_offset_sectors,
            recovery_offset_sectors,
            replacement: m.is_replacement(),
        };
        let attr = format!("dev-{}/state", m.name);
        self.push_event(event);
        self.notify(&attr);
        if self.state.running == Some(Ro::ReadWrite) {
            self.state.sb_flags.insert(SbFlags::DEVS);
        }
        self.recovery_needed = true;
    }

    /// Recovery reached `done_sectors`: every recovering member holds
    /// current data below it (md's `recovery_offset`, written in the
    /// superblocks so a restarted recovery resumes there).
    pub(crate) fn record_recovery_progress(&mut self, done_sectors: u64) {
        let mut moved = false;
        for m in &mut self.members {
            if let (
                Some(_),
                MemberHealth::OutOfSync {
                    recovery_offset_sectors,
                },
            ) = (m.slot, m.health)
            {
                if recovery_offset_sectors < done_sectors {
                    m.health = MemberHealth::OutOfSync {
                        recovery_offset_sectors: done_sectors,
                    };
                    moved = true;
                }
            }
        }
        if moved && self.state.running == Some(Ro::ReadWrite) {
            self.state.sb_flags.insert(SbFlags::DEVS);
        }
    }

    /// Where a recovery must start: the lowest checkpoint of the recovering
    /// members (0 if none recorded).
    #[must_use]
    pub fn recovery_start(&self) -> u64 {
        self.members
            .iter()
            .filter(|m| m.slot.is_some())
            .filter_map(|m| match m.health {
                MemberHealth::OutOfSync {
                    recovery_offset_sectors,
                } => Some(recovery_offset_sectors),
                _ => None,
            })
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::{ArrayConfig, SyncAction, DEFAULT_SAFEMODE_DELAY};
    use crate::time::Time;

    use crate::array::tests::member_config as member;

    /// A running raid5 of 3 slots whose slot 2 is empty.
    fn degraded(metadata: MetadataKind) -> Array {
        let mut a = Array::new(ArrayConfig {
            level: 5,
            raid_disks: 3,
            chunk_sectors: 128,
            layout: 2,
            component_sectors: 4096,
            array_sectors: 8192,
            metadata,
            members: vec![member("sda", Some(0)), member("sdb", Some(1))],
            resync_start: None,
            bitmap: None,
            safe_mode_delay: DEFAULT_SAFEMODE_DELAY,
            stripe_cache_size: 256,
        });
        a.run(Ro::ReadWrite, Time(0)).expect("runs degraded");
        while a.poll_event().is_some() {}
        assert_eq!(a.degraded(), 1);
        a
    }

    fn events(a: &mut Array) -> Vec<ArrayEvent> {
        std::iter::from_fn(|| a.poll_event()).collect()
    }

    #[test]
    fn native_spare_is_activated_recovered_and_in_sync() {
        let mut a = degraded(MetadataKind::Native {
            version: "1.2".to_owned(),
        });
        a.add_member(member("sdc", None)).expect("added");
        let got = events(&mut a);
        assert!(got.contains(&ArrayEvent::MemberActivated {
            name: "sdc".to_owned(),
            slot: 2,
            data_offset_sectors: 2048,
            recovery_offset_sectors: 0,
            replacement: false,
        }));
        assert!(got.contains(&ArrayEvent::StartSync(SyncAction::Recover)));
        assert_eq!(a.sync_request(), Some(SyncAction::Recover));
        assert_eq!(a.show("dev-sdc/slot").ok().as_deref(), Some("2"));
        a.sync_started(SyncAction::Recover, 4096, Time(0));
        a.sync_progress(4096 / 2, Time(1));
        assert_eq!(
            a.show("dev-sdc/recovery_start").ok().as_deref(),
            Some("2048")
        );
        assert_eq!(a.recovery_start(), 2048);
        a.sync_finished(0, true, Time(2));
        let got = events(&mut a);
        assert!(got.contains(&ArrayEvent::MemberInSync {
            name: "sdc".to_owned(),
            slot: 2,
            replaced: None,
        }));
        assert_eq!(a.degraded(), 0);
        assert_eq!(a.show("dev-sdc/state").ok().as_deref(), Some("in_sync"));
    }

    #[test]
    fn a_re_added_member_takes_its_slot_back_for_a_bitmap_recovery() {
        let mut a = degraded(MetadataKind::Native {
            version: "1.2".to_owned(),
        });
        assert!(!a.recovery_is_bitmap_based(), "nothing recovers");
        assert_eq!(a.re_add_member(member("sdc", None), 2), Ok(true));
        assert_eq!(a.show("dev-sdc/slot").ok().as_deref(), Some("2"));
        assert!(a.recovery_is_bitmap_based());
        assert_eq!(a.sync_request(), Some(SyncAction::Recover));
        a.sync_started(SyncAction::Recover, 4096, Time(0));
        a.sync_finished(0, true, Time(1));
        assert_eq!(a.degraded(), 0);
        assert!(!a.members()[2]
            .flags()
            .contains(MemberFlags::BITMAP_RECOVERY));
        // Its slot taken: an ordinary spare.
        assert_eq!(a.re_add_member(member("sdd", None), 2), Ok(false));
        assert_eq!(a.show("dev-sdd/slot").ok().as_deref(), Some("none"));
    }

    #[test]
    fn external_spare_waits_for_the_manager() {
        let mut a = degraded(MetadataKind::External {
            name: "/ddf-1/0".to_owned(),
        });
        a.add_member(member("sdc", None)).expect("added");
        assert!(!events(&mut a)
            .iter()
            .any(|e| matches!(e, ArrayEvent::MemberActivated { .. })));
        assert_eq!(a.show("dev-sdc/slot").ok().as_deref(), Some("none"));
        a.store("sync_action", "frozen", Time(0)).expect("freeze");
        a.store("dev-sdc/slot", "2", Time(0)).expect("slot");
        assert!(events(&mut a)
            .iter()
            .any(|e| matches!(e, ArrayEvent::MemberActivated { slot: 2, .. })));
        assert_eq!(a.sync_request(), None, "frozen: not before recover");
        a.store("sync_action", "recover", Time(0)).expect("recover");
        assert_eq!(a.sync_request(), Some(SyncAction::Recover));
    }

    #[test]
    fn duplicates_and_small_members_are_refused() {
        let mut a = degraded(MetadataKind::Native {
            version: "1.2".to_owned(),
        });
        assert_eq!(
            a.add_member(member("sda", None)).map_err(|e| e.errno),
            Err(Errno::EEXIST)
        );
        let mut small = member("sdd", None);
        small.size_sectors = 100;
        assert_eq!(a.add_member(small).map_err(|e| e.errno), Err(Errno::ENOSPC));
        assert_eq!(a.members().len(), 2);
    }
}

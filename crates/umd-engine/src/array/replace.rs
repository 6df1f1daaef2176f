//! Hot replace (md's `want_replacement`): a member that still works is
//! copied onto a spare while it goes on serving its role, and leaves only
//! once the copy is whole. Unlike fail-then-rebuild, the array never loses
//! redundancy on the way.
//!
//! Why a module of its own: a replacement is the one case of two members in
//! one slot, and every transition of it must keep the host's role map exact,
//! or writes would miss the copy:
//!
//! | from | trigger | to |
//! |---|---|---|
//! | in sync | `dev-NAME/state` `want_replacement` | in sync, wants a replacement |
//! | spare | the slot's member wants one, native array, quiet (md thread) | the slot's replacement, recovering from 0 (`MemberActivated { replacement: true }`) |
//! | replacement | recovery completed | holds the slot, in sync; the member it replaced is faulty (`MemberInSync { replaced }`) |
//! | replacement | the slot's member failed first | holds the slot, recovering from its checkpoint (`MemberActivated { replacement: false }`) |
//!
//! A replacement is never read: until it is whole, its role's member serves
//! reads. Every write of its role is written to it too (the planners' part,
//! `read::MemberMap`), and recovery fills the rest.

use crate::array::{Array, MetadataKind, Ro};
use crate::errno::{EngineError, Errno};
use crate::member::{MemberFlags, MemberHealth};
use crate::state::SbFlags;

impl Array {
    /// `dev-NAME/state` `want_replacement` on member `i`: md accepts it on
    /// a member in a slot of a level with redundancy. With a spare at hand
    /// (native metadata), the replacement starts at once.
    pub(crate) fn want_replacement(&mut self, i: usize) -> Result<(), EngineError> {
        let m = &self.members[i];
        let refuse = |why: &str| {
            Err(EngineError::new(
                Errno::EINVAL,
                format!("dev-{}/state: want_replacement: {why}", m.name),
            ))
        };
        if m.slot.is_none() || m.is_replacement() {
            return refuse("the member holds no slot of its own");
        }
        if !matches!(self.level, 1 | 4 | 5 | 6 | 10) {
            return refuse("the level has no redundancy to copy through");
        }
        if matches!(&self.metadata, MetadataKind::Native { version } if version == "0.90") {
            return refuse("0.90 superblocks cannot record a replacement; use 1.x metadata");
        }
        if self.reshape_position.is_some() {
            return refuse("a reshape is in progress");
        }
        if self.ppl {
            return refuse("a partial parity log keeps no replacement (md refuses it too)");
        }
        self.members[i]
            .flags
            .set(MemberFlags::WANT_REPLACEMENT, true);
        self.recovery_needed = true;
        self.md_check_recovery();
        Ok(())
    }

    /// The replacement of `slot`, if it has one.
    pub(crate) fn replacement_in(&self, slot: u32) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.slot == Some(slot) && m.is_replacement())
    }

    /// The member holding `slot` itself: not its replacement, and not a
    /// failed member that has yet to leave the slot.
    pub(crate) fn holder_of(&self, slot: u32) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.slot == Some(slot) && !m.is_replacement() && !m.is_faulty())
    }

    /// Native arrays: give each slot whose member wants a replacement a
    /// spare as its replacement (md's `remove_and_add_spares`, which offers
    /// spares to the level's hot add, which prefers a wanted replacement
    /// to nothing). Called after the free slots were filled.
    pub(crate) fn activate_replacements(&mut self) {
        for slot in 0..self.raid_disks {
            let wanted = self.holder_of(slot).is_some_and(|h| {
                let m = &self.members[h];
                m.flags.contains(MemberFlags::WANT_REPLACEMENT) && m.is_in_sync()
            });
            if !wanted || self.replacement_in(slot).is_some() {
                continue;
            }
            let Some(i) = self.idle_spare() else {
                return;
            };
            self.members[i].flags.set(MemberFlags::REPLACEMENT, true);
            self.take_slot(i, slot);
            assert_eq!(self.replacement_in(slot), Some(i));
        }
    }

    /// Recovery completed for the replacement `i`: it holds its slot from
    /// now on, and the member it replaced is failed (md marks it faulty;
    /// the md thread removes it). Returns that member's name.
    pub(crate) fn replacement_done(&mut self, i: usize) -> Option<String> {
        let slot = self.members[i].slot.expect("a replacement has a slot");
        assert!(self.members[i].is_replacement());
        let old = self.holder_of(slot);
        self.members[i].flags.set(MemberFlags::REPLACEMENT, false);
        self.members[i].health = MemberHealth::InSync;
        let old = old?;
        let m = &mut self.members[old];
        m.health = MemberHealth::Faulty;
        m.flags.set(MemberFlags::WANT_REPLACEMENT, false);
        let name = m.name.clone();
        self.notify(&format!("dev-{name}/state"));
        if self.state.running == Some(Ro::ReadWrite) {
            self.state.sb_flags.insert(SbFlags::DEVS);
        }
        Some(name)
    }

    /// Member `failed` just failed: if its slot has a replacement, that
    /// takes the slot over and goes on recovering from where it is (md
    /// moves a replacement into the place of a member that fails).
    pub(crate) fn promote_replacement(&mut self, failed: usize) {
        let Some(slot) = self.members[failed].slot else {
            return;
        };
        if self.members[failed].is_replacement() {
            return;
        }
        let Some(i) = self.replacement_in(slot) else {
            return;
        };
        self.members[i].flags.set(MemberFlags::REPLACEMENT, false);
        self.announce_activation(i);
    }
}

#[cfg(test)]
mod tests {
    use crate::array::{
        Array, ArrayConfig, ArrayEvent, MetadataKind, Ro, SyncAction, DEFAULT_SAFEMODE_DELAY,
    };
    use crate::errno::Errno;
    use crate::time::Time;

    use crate::array::tests::member_config as member;

    /// A running, whole raid `level` of 3 slots and metadata `version`.
    fn whole(level: i32, version: &str) -> Array {
        let mut a = Array::new(ArrayConfig {
            level,
            raid_disks: 3,
            chunk_sectors: if level == 1 { 0 } else { 128 },
            layout: if level == 5 { 2 } else { 0 },
            component_sectors: 4096,
            array_sectors: 8192,
            metadata: MetadataKind::Native {
                version: version.to_owned(),
            },
            members: vec![
                member("sda", Some(0)),
                member("sdb", Some(1)),
                member("sdc", Some(2)),
            ],
            resync_start: None,
            bitmap: None,
            safe_mode_delay: DEFAULT_SAFEMODE_DELAY,
            stripe_cache_size: 256,
        });
        a.run(Ro::ReadWrite, Time(0)).expect("runs");
        events(&mut a);
        a
    }

    fn events(a: &mut Array) -> Vec<ArrayEvent> {
        std::iter::from_fn(|| a.poll_event()).collect()
    }

    fn state(a: &Array, name: &str) -> String {
        a.show(&format!("dev-{name}/state")).expect("a member")
    }

    /// sdb wants a replacement and the spare sdd becomes it.
    fn replacing() -> Array {
        let mut a = whole(5, "1.2");
        a.add_member(member("sdd", None)).expect("added");
        assert_eq!(
            a.show("dev-sdd/slot").ok().as_deref(),
            Some("none"),
            "no free slot"
        );
        assert!(events(&mut a)
            .iter()
            .all(|e| !matches!(e, ArrayEvent::MemberActivated { .. })));
        a.store("dev-sdb/state", "want_replacement", Time(0))
            .expect("want_replacement");
        let got = events(&mut a);
        assert!(got.contains(&ArrayEvent::MemberActivated {
            name: "sdd".to_owned(),
            slot: 1,
            data_offset_sectors: 2048,
            recovery_offset_sectors: 0,
            replacement: true,
        }));
        assert_eq!(state(&a, "sdd"), "spare,replacement");
        assert_eq!(state(&a, "sdb"), "in_sync,want_replacement");
        assert_eq!(a.degraded(), 0, "a replacement leaves the array whole");
        assert_eq!(a.sync_request(), Some(SyncAction::Recover));
        a
    }

    #[test]
    fn a_finished_replacement_takes_the_slot_and_fails_the_member() {
        let mut a = replacing();
        a.sync_started(SyncAction::Recover, 4096, Time(0));
        a.sync_progress(1024, Time(1));
        assert_eq!(
            a.show("dev-sdd/recovery_start").ok().as_deref(),
            Some("1024")
        );
        a.sync_finished(0, true, Time(2));
        let got = events(&mut a);
        assert!(got.contains(&ArrayEvent::MemberInSync {
            name: "sdd".to_owned(),
            slot: 1,
            replaced: Some("sdb".to_owned()),
        }));
        assert_eq!(state(&a, "sdd"), "in_sync");
        assert_eq!(a.show("dev-sdd/slot").ok().as_deref(), Some("1"));
        assert!(state(&a, "sdb").starts_with("faulty"));
        assert_eq!(a.degraded(), 0);
        // Out of its slot once the md thread runs; then it can be removed.
        a.handle_timeout(Time(3));
        assert_eq!(a.show("dev-sdb/slot").ok().as_deref(), Some("none"));
        a.store("dev-sdb/state", "remove", Time(3))
            .expect("removed");
        assert_eq!(a.sync_request(), None, "nothing left to recover");
    }

    #[test]
    fn a_member_failing_mid_replacement_hands_its_slot_over() {
        let mut a = replacing();
        a.sync_started(SyncAction::Recover, 4096, Time(0));
        a.sync_progress(2048, Time(1));
        events(&mut a);
        a.store("dev-sdb/state", "faulty", Time(1)).expect("failed");
        let got = events(&mut a);
        let failed = got.iter().position(|e| {
            *e == ArrayEvent::MemberFailed {
                name: "sdb".to_owned(),
            }
        });
        let taken = got.iter().position(|e| {
            *e == ArrayEvent::MemberActivated {
                name: "sdd".to_owned(),
                slot: 1,
                data_offset_sectors: 2048,
                recovery_offset_sectors: 2048,
                replacement: false,
            }
        });
        assert!(failed.is_some() && failed < taken, "{got:?}");
        assert_eq!(state(&a, "sdd"), "spare");
        assert_eq!(
            a.degraded(),
            1,
            "the slot's data is not whole until recovered"
        );
        // The failure stopped the copy; recovery resumes from the checkpoint.
        a.sync_finished(0, false, Time(2));
        a.handle_timeout(Time(3));
        assert_eq!(a.sync_request(), Some(SyncAction::Recover));
        assert_eq!(a.recovery_start(), 2048);
        a.sync_started(SyncAction::Recover, 4096, Time(3));
        a.sync_finished(0, true, Time(4));
        assert!(events(&mut a).contains(&ArrayEvent::MemberInSync {
            name: "sdd".to_owned(),
            slot: 1,
            replaced: None,
        }));
        assert_eq!(a.degraded(), 0);
    }

    #[test]
    fn a_replacement_waits_for_a_spare() {
        let mut a = whole(1, "1.2");
        a.store("dev-sda/state", "want_replacement", Time(0))
            .expect("accepted");
        assert_eq!(a.sync_request(), None, "no spare, nothing to copy onto");
        a.add_member(member("sdd", None)).expect("added");
        assert!(events(&mut a).iter().any(|e| matches!(
            e,
            ArrayEvent::MemberActivated {
                slot: 0,
                replacement: true,
                ..
            }
        )));
    }

    #[test]
    fn what_cannot_be_replaced_is_refused() {
        let errno = |a: &mut Array, name: &str| {
            a.store(&format!("dev-{name}/state"), "want_replacement", Time(0))
                .map_err(|e| e.errno)
        };
        let mut raid0 = whole(0, "1.2");
        assert_eq!(errno(&mut raid0, "sda"), Err(Errno::EINVAL));
        let mut old = whole(5, "0.90");
        assert_eq!(errno(&mut old, "sda"), Err(Errno::EINVAL));
        let mut a = whole(5, "1.2");
        a.add_member(member("sdd", None)).expect("added");
        assert_eq!(
            errno(&mut a, "sdd"),
            Err(Errno::EINVAL),
            "a spare holds no slot"
        );
        assert!(!state(&a, "sda").contains("want_replacement"));
    }
}

//! The `dev-NAME/*` attributes: md's per-member `state`, `slot`, `offset`,
//! `size`, `errors`, `recovery_start` and bad-block lists, shown and stored
//! with md's rules (protocol.md §7, the per-member table).
//!
//! Why apart from `attrs.rs`: member stores are where failure, removal,
//! spare activation and bad-block acknowledgement enter the engine, each
//! with its own md errno rules.

use super::no_attr;
use crate::array::{Array, ArrayEvent};
use crate::errno::{EngineError, Errno};
use crate::member::{parse_u64, MemberFlags, MemberHealth, StateStore};
use crate::state::SbFlags;

impl Array {
    fn member_index(&self, attr: &str, rest: &str) -> Result<(usize, String), EngineError> {
        let (name, field) = rest.rsplit_once('/').ok_or_else(|| no_attr(attr))?;
        let index = self
            .members
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| no_attr(attr))?;
        Ok((index, field.to_owned()))
    }

    pub(super) fn show_member(&self, attr: &str, rest: &str) -> Result<String, EngineError> {
        let (i, field) = self.member_index(attr, rest)?;
        let m = &self.members[i];
        Ok(match field.as_str() {
            "state" => m.show_state(),
            "slot" => m.show_slot(),
            "offset" => m.data_offset_sectors.to_string(),
            "size" => (m.size_sectors / 2).to_string(),
            "errors" => m.errors.to_string(),
            "recovery_start" => m.show_recovery_start(),
            "bad_blocks" => m.show_bad_blocks(true),
            "unacknowledged_bad_blocks" => m.show_bad_blocks(false),
            "mismatches_located" => self.show_mismatches_located(&m.name),
            _ => return Err(no_attr(attr)),
        })
    }

    pub(super) fn store_member(
        &mut self,
        attr: &str,
        rest: &str,
        v: &str,
    ) -> Result<(), EngineError> {
        let (i, field) = self.member_index(attr, rest)?;
        let running = self.state.running.is_some();
        let slotted = self.members[i].slot.is_some();
        match field.as_str() {
            "state" => return self.store_member_state(i, v),
            "slot" => return self.store_member_slot(attr, i, v),
            "offset" => {
                let external_sized = self.is_external() && self.members[i].size_sectors != 0;
                if (running && slotted) || external_sized {
                    return Err(EngineError::new(Errno::EBUSY, format!("{attr}: in use")));
                }
                self.members[i].data_offset_sectors = parse_u64(attr, v)?;
            }
            "size" => {
                let sectors = parse_u64(attr, v)?
                    .checked_mul(2)
                    .ok_or_else(|| EngineError::new(Errno::EINVAL, format!("{attr}: too large")))?;
                if sectors < self.component_sectors {
                    return Err(EngineError::new(
                        Errno::EINVAL,
                        format!("{attr}: below component_size"),
                    ));
                }
                if running && slotted {
                    return Err(EngineError::new(Errno::EBUSY, format!("{attr}: in use")));
                }
                self.members[i].size_sectors = sectors;
            }
            "errors" => self.members[i].errors = parse_u64(attr, v)?,
            "mismatches_located" => {
                return Err(EngineError::new(Errno::EIO, format!("{attr}: read-only")));
            }
            "bad_blocks" | "unacknowledged_bad_blocks" => {
                return self.store_bad_blocks(attr, i, v, field == "bad_blocks");
            }
            "recovery_start" => {
                if running && slotted {
                    return Err(EngineError::new(
                        Errno::EBUSY,
                        format!("{attr}: member active"),
                    ));
                }
                let m = &mut self.members[i];
                if v == "none" {
                    m.health = MemberHealth::InSync;
                } else {
                    let offset = parse_u64(attr, v)?;
                    m.health = MemberHealth::OutOfSync {
                        recovery_offset_sectors: offset,
                    };
                }
            }
            _ => return Err(no_attr(attr)),
        }
        Ok(())
    }

    fn store_member_state(&mut self, i: usize, word: &str) -> Result<(), EngineError> {
        let running = self.state.running.is_some();
        let external = self.is_external();
        let name = self.members[i].name.clone();
        let effect = self.members[i].store_state(word, running, external)?;
        match effect {
            // md writes the superblocks for a flag they record.
            StateStore::Done
                if matches!(word, "writemostly" | "-writemostly")
                    && self.state.running == Some(crate::state::Ro::ReadWrite) =>
            {
                self.state.sb_flags.insert(SbFlags::DEVS);
            }
            StateStore::Done => {}
            StateStore::Fail => {
                if self.md_error(i) {
                    return Err(EngineError::new(
                        Errno::EBUSY,
                        format!("dev-{name}/state: array is broken"),
                    ));
                }
            }
            StateStore::Remove => {
                self.members.remove(i);
                self.update_degraded();
                if running {
                    self.state.sb_flags.insert(SbFlags::DEVS);
                }
                self.push_event(ArrayEvent::MemberRemoved { name });
                return Ok(());
            }
            StateStore::Unblocked => {
                // md: a manager that cannot record bad blocks (no
                // external_bbl) unblocks instead of acknowledging: fail it.
                let m = &self.members[i];
                let bbl = m.flags().contains(MemberFlags::EXTERNAL_BBL);
                if !m.is_faulty() && m.has_unacked_bad_blocks() && !bbl && running {
                    self.md_error(i);
                }
                self.recovery_needed = true;
            }
            StateStore::ReAdd => {
                return Err(EngineError::new(
                    Errno::EBUSY,
                    format!("dev-{name}/state: re-add"),
                ))
            }
            StateStore::WantReplacement => self.want_replacement(i)?,
        }
        self.notify(&format!("dev-{name}/state"));
        Ok(())
    }

    /// `bad_blocks` / `unacknowledged_bad_blocks` <- `sector length`: record
    /// a range; to `bad_blocks` it is acknowledged (md's `badblocks_store`),
    /// which is how an external manager acknowledges a range it recorded.
    fn store_bad_blocks(
        &mut self,
        attr: &str,
        i: usize,
        v: &str,
        acked: bool,
    ) -> Result<(), EngineError> {
        let einval = || {
            EngineError::new(
                Errno::EINVAL,
                format!("{attr}: {v:?} is not 'sector length'"),
            )
        };
        let mut words = v.split_whitespace();
        let (Some(start), Some(len), None) = (words.next(), words.next(), words.next()) else {
            return Err(einval());
        };
        let (Ok(start), Ok(len)) = (start.parse::<u64>(), len.parse::<u64>()) else {
            return Err(einval());
        };
        if len == 0 || start.checked_add(len).is_none() {
            return Err(einval());
        }
        if !self.members[i].set_bad_blocks(start, len, acked) {
            return Err(EngineError::new(
                Errno::ENOSPC,
                format!("{attr}: the list is full"),
            ));
        }
        let name = self.members[i].name.clone();
        self.notify(&format!("dev-{name}/state"));
        self.notify(&format!("dev-{name}/unacknowledged_bad_blocks"));
        Ok(())
    }

    fn store_member_slot(&mut self, attr: &str, i: usize, v: &str) -> Result<(), EngineError> {
        let requested = if v == "none" {
            None
        } else {
            Some(parse_u64(attr, v)?)
        };
        if self.state.running.is_none() {
            let Some(slot) = requested else {
                self.members[i].slot = None;
                return Ok(());
            };
            if slot >= u64::from(self.raid_disks) {
                return Err(EngineError::new(
                    Errno::ENOSPC,
                    format!("{attr}: beyond raid_disks"),
                ));
            }
            // md assumes a member given a slot while inactive is working.
            let m = &mut self.members[i];
            m.slot = Some(slot as u32);
            m.health = MemberHealth::InSync;
            m.flags.set(MemberFlags::WRITE_MOSTLY, false);
            let name = format!("dev-{}/state", m.name);
            self.notify(&name);
            return Ok(());
        }
        match requested {
            None => {
                let m = &self.members[i];
                if m.slot.is_none() {
                    return Err(EngineError::new(Errno::EEXIST, format!("{attr}: no slot")));
                }
                if m.is_in_sync() {
                    return Err(EngineError::new(
                        Errno::EBUSY,
                        format!("{attr}: member working"),
                    ));
                }
                let m = &mut self.members[i];
                m.flags.set(MemberFlags::BLOCKED, false);
                m.slot = None;
                self.update_degraded();
                Ok(())
            }
            Some(slot) => {
                if self.members[i].slot.is_some() || self.sync.running.is_some() {
                    return Err(EngineError::new(Errno::EBUSY, format!("{attr}: busy")));
                }
                if slot >= u64::from(self.raid_disks) {
                    return Err(EngineError::new(
                        Errno::ENOSPC,
                        format!("{attr}: beyond raid_disks"),
                    ));
                }
                let slot = slot as u32;
                if self.members.iter().any(|m| m.slot == Some(slot)) || self.members[i].is_faulty()
                {
                    return Err(EngineError::new(
                        Errno::EBUSY,
                        format!("{attr}: slot in use"),
                    ));
                }
                if self.members[i].size_sectors < self.component_sectors {
                    return Err(EngineError::new(
                        Errno::ENOSPC,
                        format!("{attr}: member smaller than component_size"),
                    ));
                }
                // md: the spare takes the slot; recovery is left to the
                // writer (the manager writes `recover` when it is ready).
                self.take_slot(i, slot);
                Ok(())
            }
        }
    }
}

//! Spares in the simulated host: failed members removed and blank disks
//! added as spares, as `umd manage --remove` and `--add` make the real host
//! do it (`umd-io/src/host/members.rs` `add_member`), and the engine's
//! activations and finished recoveries applied to the role map the
//! planners use (`Shared::apply_membership` there).
//!
//! Why: a spare is where a RAID earns its keep, and where its metadata
//! changes most: a slot changes hands, the spare's superblock appears in
//! every roster, a recovery checkpoint is written as it advances and the
//! array comes back whole. Each of those is a crash point here, and after
//! the crash the array must start again from the disks with the recovery
//! resumed, nothing acknowledged lost and the rosters agreeing.
//!
//! With external metadata the operator gives a blank disk to the container
//! (`umd manage CONTAINER --add`); the manager records it a global spare and
//! activates it (`manager.rs`), as it does the spares made with the
//! container; this file gives the engine the disk the manager chose.

use crate::disk::SimDisk;
use crate::host::{SimHost, Stop};
use umd_engine::array::{ArrayEvent, MemberConfig};
use umd_engine::member::MemberHealth;
use umd_engine::native::{hot_add, own_superblock, roster_of, NewDevice};

impl SimHost {
    /// `umd manage --fail`: member `member` is failed by the operator (its
    /// disk stays as it is, and may be added back).
    pub fn fail_by_hand(&mut self, member: usize) -> Result<(), Stop> {
        self.store_faulty(member)
            .map_err(|e| Stop::Failed(format!("fail {}: {e}", self.names[member])))
    }

    /// `dev-NAME/state` <- `want_replacement`, as `umd manage --replace`
    /// stores it: with a spare waiting, the engine makes it the member's
    /// replacement at once.
    pub fn want_replacement(&mut self, member: usize) -> Result<(), Stop> {
        let name = self.names[member].clone();
        let stored = self
            .array
            .store(&format!("dev-{name}/state"), "want_replacement", self.now);
        self.drain_events();
        stored.map_err(|e| Stop::Failed(format!("replace {name}: {e}")))
    }

    /// md's `remove` of every member the engine failed, as `umd manage
    /// --remove failed` stores it. Returns the members removed; one the
    /// engine still holds (md: blocked, or a sync using it) stays.
    pub fn remove_failed(&mut self) -> Vec<String> {
        let failed: Vec<String> = self
            .array
            .members()
            .iter()
            .filter(|m| m.health() == MemberHealth::Faulty)
            .map(|m| m.name().to_owned())
            .collect();
        let mut removed = Vec::new();
        for name in failed {
            let stored = self
                .array
                .store(&format!("dev-{name}/state"), "remove", self.now);
            self.drain_events();
            if stored.is_ok() {
                removed.push(name);
            }
        }
        removed
    }

    /// md's hot add of a blank `disk`: it joins the world as a new member
    /// and gets a spare superblock (native, see [`SimHost::add_back`]), or
    /// is given to the container, whose manager records it a global spare
    /// (external). Returns the new member's index.
    pub fn add_spare(&mut self, disk: SimDisk, device_uuid: [u8; 16]) -> Result<usize, Stop> {
        let index = self.io.disks.len();
        self.io.disks.push(disk);
        self.names.push(format!("sim{index}"));
        let added = match self.manager.take() {
            // External: the disk goes to the container, through its manager.
            Some(mut manager) => {
                let seed = u64::from_le_bytes(device_uuid[..8].try_into().expect("8 bytes"));
                let added = manager.add_disk(self, index, seed);
                self.manager = Some(manager);
                added.map_err(|e| Stop::Failed(format!("add sim{index} to the container: {e}")))
            }
            None => self.add_back(index, device_uuid).map(|_| ()),
        };
        if let Err(e) = added {
            self.io.disks.pop();
            self.names.pop();
            return Err(e);
        }
        Ok(index)
    }

    /// md's hot add of the disk of member `member`, which is not in the
    /// array (a member removed, or a blank disk just added), through the
    /// engine's `hot_add` as the real host's `add_member` makes it: a bitmap
    /// re-add into its old slot when its own superblock allows, else a
    /// spare. Returns the re-added role, if it was one.
    pub fn add_back(&mut self, member: usize, device_uuid: [u8; 16]) -> Result<Option<u32>, Stop> {
        let name = self.names[member].clone();
        let disk = &self.io.disks[member];
        let dev_bytes = disk.len_bytes();
        let own_sb = own_superblock(dev_bytes, &mut |offset, buf| {
            disk.read(offset, buf)
                .map_err(|e| std::io::Error::other(e.to_string()))
        });
        let names = &self.names;
        let roster = roster_of(&self.array, |n| names.iter().position(|x| x == n));
        let Some(native) = self.native.as_mut() else {
            return Err(Stop::Failed(format!("add {name}: external metadata")));
        };
        let new = NewDevice {
            member,
            name: name.clone(),
            dev_bytes,
            own_sb,
            device_uuid,
        };
        let role = hot_add(native, &mut self.array, &roster, new)
            .map_err(|e| Stop::Failed(format!("add {name}: {e}")))?;
        // A PPL raid5 logs onto it in the area its new superblock announces.
        let area = native.ppl_area(member);
        if let Some(ppl) = self.ppl.as_mut() {
            ppl.set_area(member, area);
        }
        self.drain_events();
        Ok(role)
    }

    /// With external metadata, the manager's `new_dev`: the container disk
    /// of member `member` joins the engine as a spare with no place yet
    /// (the manager sets its offset, size and slot next), as the real
    /// host's `add_member` adds it. Returns its name.
    pub fn add_external_member(&mut self, member: usize) -> Result<String, Stop> {
        let name = self.names[member].clone();
        let added = self
            .array
            .add_member(MemberConfig::spare(name.clone(), 0, 0));
        self.drain_events();
        added.map_err(|e| Stop::Failed(format!("new_dev {name}: {e}")))?;
        Ok(name)
    }

    /// Spares that hold no slot and have not failed; with external
    /// metadata, the container's global spares the manager has not
    /// activated yet.
    #[must_use]
    pub fn idle_spares(&self) -> usize {
        if let Some(manager) = &self.manager {
            return manager.spares_waiting(self);
        }
        self.array
            .members()
            .iter()
            .filter(|m| m.slot().is_none() && m.health() != MemberHealth::Faulty)
            .count()
    }

    /// Members whose role is in use and fully recovered: the redundancy
    /// the array has now (a recovering member adds none yet).
    #[must_use]
    pub fn in_sync_members(&self) -> Vec<usize> {
        (0..self.member_map.role_count())
            .filter(|&r| matches!(self.member_map.role(r as u32), Some((_, None))))
            .filter_map(|r| self.role_members[r])
            .collect()
    }

    /// In-sync members that the disks also say are in sync (native: the
    /// last durable superblock write recorded them so): the redundancy a
    /// power loss keeps. A recovery finished since is not yet on disk.
    #[must_use]
    pub fn recorded_in_sync_members(&self) -> Vec<usize> {
        let native = self.native.is_some();
        self.in_sync_members()
            .into_iter()
            .filter(|&m| !native || self.recorded_in_sync.contains(&self.names[m]))
            .collect()
    }

    /// Apply an activation or a finished recovery to the role map, as the
    /// real host's `apply_membership` does, and plan with it from now on.
    pub(crate) fn apply_membership(&mut self, event: ArrayEvent) {
        match event {
            ArrayEvent::MemberActivated {
                name,
                slot,
                data_offset_sectors,
                recovery_offset_sectors,
                replacement,
            } => {
                let member = self.names.iter().position(|n| *n == name);
                let in_geometry = (slot as usize) < self.member_map.role_count();
                let (Some(member), true) = (member, in_geometry) else {
                    // The real host logs and skips it too.
                    return;
                };
                let shadow = self.member_map.replacement_of(slot);
                if !replacement && self.role_members[shadow as usize] == Some(member) {
                    // The entry stays (the real host's rule): a plan made
                    // before this still finds the member.
                    self.member_map.mark_missing(shadow);
                }
                let role = if replacement { shadow } else { slot };
                self.role_members[role as usize] = Some(member);
                self.member_map
                    .set_role(role, (data_offset_sectors, Some(recovery_offset_sectors)));
            }
            ArrayEvent::MemberInSync {
                slot,
                replaced: Some(_),
                ..
            } => {
                // The replacement is whole and holds the slot from now on.
                let shadow = self.member_map.replacement_of(slot);
                let Some((offset, _)) = self.member_map.role(shadow) else {
                    return;
                };
                self.role_members[slot as usize] = self.role_members[shadow as usize];
                self.member_map.set_role(slot, (offset, None));
                self.member_map.mark_missing(shadow);
                self.replacements_done += 1;
            }
            ArrayEvent::MemberInSync { slot, .. } => {
                let Some((offset, _)) = self.member_map.role(slot) else {
                    return;
                };
                self.member_map.set_role(slot, (offset, None));
                // md clears bits again once no member is missing.
                let whole = self.array.degraded() == 0;
                if let Some(bitmap) = self.bitmap_mut().filter(|_| whole) {
                    bitmap.set_degraded(false);
                }
            }
            other => unreachable!("not a membership event: {other:?}"),
        }
        self.replan();
    }
}

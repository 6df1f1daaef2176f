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
//! Native metadata only: with external metadata the manager activates
//! spares, which the simulated manager does not do yet (docs/simulation.md,
//! known gaps).

use crate::disk::SimDisk;
use crate::host::{SimHost, Stop};
use umd_engine::array::{ArrayEvent, MemberConfig};
use umd_engine::member::MemberHealth;
use umd_engine::native::roster_of;

impl SimHost {
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

    /// md's hot add of a blank `disk` (native 1.x metadata): the roster
    /// records removals first (so a removed member's index is free), the
    /// disk gets a spare superblock like the others' (written with the
    /// next update) and joins the engine, which activates it at once if a
    /// slot is free. Returns the new member's index.
    pub fn add_spare(&mut self, disk: SimDisk, device_uuid: [u8; 16]) -> Result<usize, Stop> {
        let index = self.io.disks.len();
        let name = format!("sim{index}");
        let names = &self.names;
        let roster = roster_of(&self.array, |n| names.iter().position(|x| x == n));
        let Some(native) = self.native.as_mut() else {
            return Err(Stop::Failed("add spare: external metadata".into()));
        };
        native.record_roster(&roster);
        let placed = native
            .add_spare(index, disk.len_bytes(), device_uuid)
            .map_err(|e| Stop::Failed(format!("add spare {name}: {e}")))?;
        let config = MemberConfig {
            name: name.clone(),
            slot: None,
            data_offset_sectors: placed.data_offset_sectors,
            size_sectors: placed.size_sectors,
            in_sync: false,
            faulty: false,
            write_mostly: false,
            recovery_offset_sectors: None,
        };
        // Before the engine call: an activation it makes names the member.
        self.io.disks.push(disk);
        self.names.push(name.clone());
        if let Err(e) = self.array.add_member(config) {
            if let Some(native) = self.native.as_mut() {
                native.forget_spare(index);
            }
            self.io.disks.pop();
            self.names.pop();
            return Err(Stop::Failed(format!("add spare {name}: {e}")));
        }
        self.drain_events();
        Ok(index)
    }

    /// Spares that hold no slot and have not failed.
    #[must_use]
    pub fn idle_spares(&self) -> usize {
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
        (0..self.role_members.len())
            .filter(|&r| matches!(self.member_map.role(r as u32), Some((_, None))))
            .filter_map(|r| self.role_members[r])
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
            } => {
                let member = self.names.iter().position(|n| *n == name);
                let (Some(member), Some(role)) = (member, self.role_members.get_mut(slot as usize))
                else {
                    // The real host logs and skips it too.
                    return;
                };
                *role = Some(member);
                self.member_map
                    .set_role(slot, (data_offset_sectors, Some(recovery_offset_sectors)));
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

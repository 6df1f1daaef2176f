//! The host's member table while the array runs: members added as spares
//! (md's hot add), and the engine's activations and completed recoveries
//! applied to the role map the planners use.
//!
//! Why lock-free tables: every member I/O looks up its file and every plan
//! its role's member. Files and names live in slots that are filled once and
//! never emptied (a removed member's file stays open, unused), so readers
//! take no lock; a role's member is an atomic written under `core` before the
//! member generation moves on, and request contexts rebuild their planners
//! when the generation changes, so no plan uses a role before its member is
//! visible. The table has room for [`SPARE_SLOTS`] members beyond those the
//! array started with: a bound, as every table here has one (style R7).

use super::{Core, Shared};
use crate::member_file::MemberFile;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use umd_engine::array::{ArrayEvent, MemberConfig, MetadataKind};
use umd_engine::native::{hot_add, own_superblock, NewDevice};
use umd_engine::{EngineError, Errno};

/// A role with no member.
pub(crate) const NO_MEMBER: usize = usize::MAX;

/// Members that can be added while the array runs, beyond the initial ones.
pub(crate) const SPARE_SLOTS: usize = 32;

/// The shared tables for `files` and `names` (by member index) and
/// `role_members` (by role, then by replacement id), with room for
/// [`SPARE_SLOTS`] more members.
pub(crate) fn tables(
    files: Vec<Option<MemberFile>>,
    names: Vec<String>,
    role_members: &[Option<usize>],
) -> (
    Vec<OnceLock<MemberFile>>,
    Vec<OnceLock<String>>,
    Vec<AtomicUsize>,
) {
    assert_eq!(files.len(), names.len(), "one name per member");
    let capacity = files.len() + SPARE_SLOTS;
    let file_slots: Vec<OnceLock<MemberFile>> = (0..capacity).map(|_| OnceLock::new()).collect();
    let name_slots: Vec<OnceLock<String>> = (0..capacity).map(|_| OnceLock::new()).collect();
    for (i, (file, name)) in files.into_iter().zip(names).enumerate() {
        if let Some(file) = file {
            let _ = file_slots[i].set(file);
        }
        let _ = name_slots[i].set(name);
    }
    let roles = role_members
        .iter()
        .map(|m| AtomicUsize::new(m.unwrap_or(NO_MEMBER)))
        .collect();
    (file_slots, name_slots, roles)
}

impl Shared {
    /// The open file of member `member`, if any.
    pub(crate) fn file(&self, member: usize) -> Option<&MemberFile> {
        self.files.get(member).and_then(OnceLock::get)
    }

    /// The name of member `member`.
    pub(crate) fn member_name(&self, member: usize) -> Option<&str> {
        self.member_names
            .get(member)
            .and_then(OnceLock::get)
            .map(String::as_str)
    }

    /// The member index named `name`.
    pub(crate) fn member_index(&self, name: &str) -> Option<usize> {
        self.member_names
            .iter()
            .position(|n| n.get().is_some_and(|n| n == name))
    }

    /// The member holding `role` (a replacement's id included), if any.
    pub(crate) fn role_member(&self, role: u32) -> Option<usize> {
        let m = self
            .role_members
            .get(role as usize)?
            .load(Ordering::Acquire);
        (m != NO_MEMBER).then_some(m)
    }

    /// Apply the engine's membership events (activation, end of recovery)
    /// to the role table and the planners' map. Called with `core` held.
    pub(crate) fn apply_membership(&self, core: &mut Core) {
        for event in std::mem::take(&mut core.membership) {
            match event {
                ArrayEvent::MemberActivated {
                    name,
                    slot,
                    data_offset_sectors,
                    recovery_offset_sectors,
                    replacement,
                } => {
                    let in_geometry = (slot as usize) < core.member_map.role_count();
                    let (Some(member), true) = (self.member_index(&name), in_geometry) else {
                        tracing::warn!(member = %name, slot, "activated outside the running geometry; not served");
                        continue;
                    };
                    let shadow = core.member_map.replacement_of(slot);
                    let role = if replacement { shadow } else { slot };
                    if !replacement && self.role_member(shadow) == Some(member) {
                        // A replacement takes over the slot of a member that
                        // failed: no longer written as a copy. Its table
                        // entry stays (entries only ever name a member, so a
                        // plan made before this still finds one).
                        core.member_map.mark_missing(shadow);
                    }
                    self.role_members[role as usize].store(member, Ordering::Release);
                    core.member_map
                        .set_role(role, (data_offset_sectors, Some(recovery_offset_sectors)));
                    core.roles_by_name.retain(|(n, _)| *n != name);
                    core.roles_by_name.push((name, role));
                    core.members_generation += 1;
                    if replacement {
                        tracing::info!(slot, "replacement activated; copying the slot onto it");
                    } else {
                        tracing::info!(slot, "spare activated; recovery follows");
                    }
                }
                ArrayEvent::MemberInSync {
                    name,
                    slot,
                    replaced,
                } => {
                    if let Some(old) = &replaced {
                        self.replacement_in_place(core, &name, slot, old);
                        continue;
                    }
                    let Some(offset) = core.member_map.role(slot).map(|(o, _)| o) else {
                        continue;
                    };
                    core.member_map.set_role(slot, (offset, None));
                    core.members_generation += 1;
                    // md clears bits again once no member is missing.
                    let whole = core.array.degraded() == 0;
                    if let Some(bitmap) = core.bitmap().filter(|_| whole) {
                        bitmap.set_degraded(false);
                    }
                    tracing::info!(member = %name, slot, "member in sync");
                }
                other => unreachable!("not a membership event: {other:?}"),
            }
        }
    }

    /// The replacement `name` of `slot` is whole: it holds the slot from
    /// now on and `old` no longer does (one role-map change, under `core`,
    /// so no plan sees the slot without a member).
    fn replacement_in_place(&self, core: &mut Core, name: &str, slot: u32, old: &str) {
        let shadow = core.member_map.replacement_of(slot);
        let (Some(member), Some((offset, _))) =
            (self.member_index(name), core.member_map.role(shadow))
        else {
            tracing::warn!(member = %name, slot, "a replacement the host does not serve");
            return;
        };
        // The replacement's entry stays, as a failed member's does: a plan
        // made before this still finds the member it names.
        self.role_members[slot as usize].store(member, Ordering::Release);
        core.member_map.set_role(slot, (offset, None));
        core.member_map.mark_missing(shadow);
        core.roles_by_name.retain(|(n, _)| n != name && n != old);
        core.roles_by_name.push((name.to_owned(), slot));
        core.members_generation += 1;
        tracing::info!(member = %name, replaced = %old, slot, "replacement in sync; it holds the slot");
    }

    /// md's hot add (`new_dev`): open `path` and add it. With native 1.x
    /// metadata a device whose superblock says it left this array recently
    /// enough for the bitmap to cover what it missed is re-added into its
    /// old slot (md's re-add: recovery of the dirty chunks only); any other
    /// gets a superblock like the others' (written with the next update,
    /// which records it in every roster) and joins as a spare, activated at
    /// once if a slot is free. For external metadata the manager sets
    /// `offset` and `size` next, then `slot`. Returns the member's name.
    pub(crate) fn add_member(&self, path: &Path) -> Result<String, EngineError> {
        let _config = self
            .config_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let file = MemberFile::open_read_write(path)
            .map_err(|e| EngineError::new(Errno::EINVAL, format!("new_dev: {e}")))?;
        let base = path
            .file_name()
            .map_or_else(|| "member".to_owned(), |n| n.to_string_lossy().into_owned());
        let device_uuid = random_uuid()?;
        let own_sb = own_superblock(file.len_bytes(), &mut |offset, buf| {
            file.read_exact_at(offset, buf)
                .map_err(|e| std::io::Error::other(e.to_string()))
        });
        let mut core = self.core();
        let index = self.index_for(&core, &base, &file)?;
        let external = matches!(core.array.metadata(), MetadataKind::External { .. });
        let roster = super::md_thread::roster(self, &core.array);
        let core_ref = &mut *core;
        let re_add = match core_ref.native.as_mut() {
            Some(native) => {
                let new = NewDevice {
                    member: index,
                    name: base.clone(),
                    dev_bytes: file.len_bytes(),
                    own_sb,
                    device_uuid,
                };
                let re_add = hot_add(native, &mut core_ref.array, &roster, new)?;
                // A PPL raid5 logs onto the new member as onto the others,
                // in the area its new superblock announces.
                if let (Some(ppl), Some(area)) = (self.ppl.get(), native.ppl_area(index)) {
                    ppl.set_area(index, area);
                }
                re_add
            }
            None if external => {
                // The manager sets offset and size next (md: offset before
                // size), then the slot.
                core_ref
                    .array
                    .add_member(MemberConfig::spare(base.clone(), 0, 0))?;
                None
            }
            None => {
                return Err(EngineError::new(
                    Errno::EINVAL,
                    "new_dev: the array has no metadata to record a member in",
                ))
            }
        };
        // A returning member's slot already holds this file and name.
        if self.file(index).is_none() {
            let _ = self.files[index].set(file);
            let _ = self.member_names[index].set(base.clone());
        }
        if let Some(role) = re_add {
            tracing::info!(member = %base, role, "re-added; recovering the bitmap's dirty chunks");
        }
        self.settle(core, true);
        Ok(base)
    }

    /// The member index a device named `base` takes: a free one, or the one
    /// it had if it was removed and is the same file (names and files are
    /// filled once and never emptied, so only the same file may come back
    /// under a name).
    fn index_for(&self, core: &Core, base: &str, file: &MemberFile) -> Result<usize, EngineError> {
        if let Some(old) = self.member_index(base) {
            let still = core.array.members().iter().any(|m| m.name() == base);
            let same = self.file(old).is_some_and(|f| f.same_file(file));
            return match (still, same) {
                (false, true) => Ok(old),
                (true, _) => Err(EngineError::new(
                    Errno::EEXIST,
                    format!("new_dev: {base} is already a member"),
                )),
                (false, false) => Err(EngineError::new(
                    Errno::EBUSY,
                    format!("new_dev: a removed member was named {base}; add this file under another name"),
                )),
            };
        }
        self.files
            .iter()
            .zip(&self.member_names)
            .position(|(f, n)| f.get().is_none() && n.get().is_none())
            .ok_or_else(|| EngineError::new(Errno::ENOSPC, "new_dev: no room for another member"))
    }
}

/// A device UUID for a new member's superblock, as `umd create` draws them.
fn random_uuid() -> Result<[u8; 16], EngineError> {
    use std::io::Read;
    let mut uuid = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut uuid))
        .map_err(|e| EngineError::new(Errno::EIO, format!("new_dev: /dev/urandom: {e}")))?;
    Ok(uuid)
}

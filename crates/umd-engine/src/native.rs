//! md_update_sb for native metadata: the superblock bytes to write to every
//! member when the array's clean state, resync checkpoint or member health
//! changes.
//!
//! Why: md and mdadm trust whichever member has the highest `events`, read
//! the clean flag to decide whether to resync, and read roles to decide who
//! is in the array. Keeping those true while umd runs an array is what
//! makes it interchangeable with the kernel (protocol.md §3.6, formats.md
//! §1.4, §2.7, §3.4).
//!
//! Rules mirrored from md (learned from super_90_sync, super_1_sync,
//! md_update_sb, md_bitmap_update_sb):
//! - `events` goes up by one on every update. md may instead *decrement*
//!   on a pure dirty->clean flip (`can_decrease_events`) to spare rewriting
//!   spares; we never do: always incrementing is what md does whenever the
//!   optimisation does not apply, and every present member is rewritten.
//! - Clean (md's `in_sync`): 1.x `resync_offset` = the resync checkpoint
//!   (all-ones when fully synced); 0.90 `recovery_cp` = the checkpoint,
//!   `cp_events` = events, and `MD_SB_CLEAN` only when fully synced.
//!   Dirty: 1.x `resync_offset` = 0 and 0.90 `recovery_cp` = 0 without
//!   `MD_SB_CLEAN` (md writes 0 whatever the checkpoint, so a crash while
//!   dirty resyncs everything the bitmap does not exclude).
//! - A faulty member gets role 0xfffe (1.x) or descriptor state FAULTY
//!   (0.90) in every other member's superblock, and is no longer written.
//! - With an internal bitmap, its superblock is written first (events,
//!   events_cleared), then the md superblocks: `out` is in that order and
//!   the host must complete the bitmap writes before issuing the others.
//!
//! Deviations, on purpose: fields md would rebuild from its device list
//! (roles of members absent at load, 0.90 descriptor numbering) are kept
//! as loaded; 0.90 superblocks are written little-endian (formats.md §1.2).

use crate::bitmap::WriteIntentBitmap;
use crate::errno::{EngineError, Errno};
use umd_formats::probe::Metadata;
use umd_formats::sb0::{self, Superblock0};
use umd_formats::sb1::{self, Superblock1};
use umd_formats::SECTOR_BYTES;

/// md's `MaxSector`: "no resync needed" in `resync_offset` (formats.md §2.7).
pub const MAX_SECTOR: u64 = u64::MAX;
/// 0.90 `recovery_cp` is a u32; md stores `MaxSector` truncated (formats.md §1.3).
const RECOVERY_CP_MAX_90: u32 = u32::MAX;

/// One metadata write for the host to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataWrite {
    /// The caller's member index (position in the `load` input).
    pub member: usize,
    /// Byte offset on that member's device.
    pub offset_bytes: u64,
    /// The bytes; a whole number of 512-byte sectors.
    pub bytes: Vec<u8>,
    /// Order within one update: a write of a later phase is issued only
    /// once every write of the earlier phases is durable (DDF opens,
    /// writes and closes each header copy in turn). Native superblocks and
    /// bitmaps are one block per member: phase 0.
    pub phase: u8,
}

/// What changed since the last update (md's mddev state at md_update_sb).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperblockUpdate {
    /// md's `in_sync`: no write pending since the last clean mark.
    pub clean: bool,
    /// md's `recovery_cp`: resync addresses below it are in sync;
    /// [`MAX_SECTOR`] = fully in sync. Written only when `clean`.
    pub resync_offset_sectors: u64,
    /// Members (caller's indices) that failed; sticky once given.
    pub faulty_members: Vec<usize>,
    /// Wall-clock seconds since the epoch, md's `utime`.
    pub utime_seconds: u64,
    /// md's `raid_disks` when a raid1 reshape changed it (`None`: unchanged).
    pub raid_disks: Option<u32>,
}

/// One member's superblock as loaded, with where it lives.
#[derive(Debug, Clone)]
enum MemberSb {
    V0 {
        sb: Box<Superblock0>,
        offset_bytes: u64,
    },
    V1(Box<Superblock1>),
}

/// The native md superblocks of one array's members, kept in memory and
/// rewritten on every update.
#[derive(Debug, Clone)]
pub struct NativeMetadata {
    members: Vec<Option<MemberSb>>,
    faulty: Vec<bool>,
    version: &'static str,
    events: u64,
    bitmap: Option<WriteIntentBitmap>,
}

fn inval(message: String) -> EngineError {
    EngineError::new(Errno::EINVAL, message)
}

impl NativeMetadata {
    /// From each member's metadata as found by `umd_formats::probe` (`None`:
    /// member absent). All present members must carry the same kind of
    /// native superblock of the same array; the array's events are the
    /// highest among them (the freshest member defines the array).
    pub fn load(devices: Vec<Option<Metadata>>) -> Result<Self, EngineError> {
        let mut members = Vec::with_capacity(devices.len());
        for (i, device) in devices.into_iter().enumerate() {
            members.push(match device {
                None => None,
                Some(Metadata::V0_90(sb)) => {
                    let at = sb.found_at_sector.ok_or_else(|| {
                        inval(format!("member {i}: 0.90 superblock location unknown"))
                    })?;
                    let offset_bytes = at
                        .checked_mul(SECTOR_BYTES)
                        .ok_or_else(|| inval(format!("member {i}: superblock offset overflows")))?;
                    Some(MemberSb::V0 {
                        sb: Box::new(sb),
                        offset_bytes,
                    })
                }
                Some(Metadata::V1(sb)) => Some(MemberSb::V1(Box::new(sb))),
                Some(_) => {
                    return Err(inval(format!("member {i}: not native md metadata")));
                }
            });
        }
        let version = common_version(&members)?;
        let events = members
            .iter()
            .flatten()
            .map(member_events)
            .max()
            .unwrap_or(0);
        let faulty = vec![false; members.len()];
        let mut this = Self {
            members,
            faulty,
            version,
            events,
            bitmap: None,
        };
        this.check_same_array()?;
        this.mark_absent_roles_faulty();
        Ok(this)
    }

    /// md records only the devices it has: when it writes superblocks, every
    /// role held by a device that is not part of the running array is
    /// written as faulty (1.x role 0xfffe; 0.90 descriptor FAULTY), so the
    /// absent member is shown as gone (`A.A`) and is not trusted again
    /// without a re-add. Applied at load; reaches disk with the next update.
    fn mark_absent_roles_faulty(&mut self) {
        let present_v1: Vec<usize> = self
            .members
            .iter()
            .flatten()
            .filter_map(|m| match m {
                MemberSb::V1(sb) => Some(sb.dev_number as usize),
                MemberSb::V0 { .. } => None,
            })
            .collect();
        let present_v0: Vec<usize> = self
            .members
            .iter()
            .flatten()
            .filter_map(|m| match m {
                MemberSb::V0 { sb, .. } => Some(sb.this_disk.number as usize),
                MemberSb::V1(_) => None,
            })
            .collect();
        for member in self.members.iter_mut().flatten() {
            match member {
                MemberSb::V1(sb) => {
                    for (dev, role) in sb.dev_roles.iter_mut().enumerate() {
                        if *role < sb1::ROLE_NON_DATA_MIN && !present_v1.contains(&dev) {
                            *role = sb1::ROLE_FAULTY;
                        }
                    }
                }
                MemberSb::V0 { sb, .. } => {
                    let absent: Vec<usize> = sb
                        .disks
                        .iter()
                        .enumerate()
                        .filter(|(n, d)| {
                            d.state & sb0::DISK_FAULTY == 0
                                && d.state & sb0::DISK_ACTIVE != 0
                                && !present_v0.contains(n)
                        })
                        .map(|(n, _)| n)
                        .collect();
                    for n in absent {
                        fail_descriptor_90(sb, n);
                    }
                }
            }
        }
    }

    /// The array's current `events`.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.events
    }

    /// "0.90", "1.0", "1.1" or "1.2".
    #[must_use]
    pub fn version(&self) -> &str {
        self.version
    }

    /// Byte offset of the internal bitmap area on `member`, if the member is
    /// present and its superblock announces one (formats.md §3.1).
    #[must_use]
    pub fn bitmap_offset_bytes(&self, member: usize) -> Option<u64> {
        match self.members.get(member)?.as_ref()? {
            MemberSb::V0 { sb, offset_bytes } => (sb.state & sb0::STATE_BITMAP_PRESENT != 0)
                .then(|| offset_bytes + sb0::BITMAP_OFFSET_SECTORS * SECTOR_BYTES),
            MemberSb::V1(sb) => {
                if sb.feature_map & sb1::FEATURE_BITMAP_OFFSET == 0 {
                    return None;
                }
                let sectors = i64::try_from(sb.super_offset).ok()?;
                let at = sectors.checked_add(i64::from(sb.bitmap_offset))?;
                u64::try_from(at).ok()?.checked_mul(SECTOR_BYTES)
            }
        }
    }

    /// The partial parity log area on `member`, if the member is present
    /// and its superblock announces one (1.x with PPL).
    #[must_use]
    pub fn ppl_area(&self, member: usize) -> Option<crate::ppl::start::PplArea> {
        match self.members.get(member)?.as_ref()? {
            MemberSb::V0 { .. } => None,
            MemberSb::V1(sb) => sb
                .ppl_area()
                .map(|(sector, sectors, _)| crate::ppl::start::PplArea { sector, sectors }),
        }
    }

    /// The bitmap's byte offset on every member, for `WriteIntentBitmap::new`.
    #[must_use]
    pub fn bitmap_offsets_bytes(&self) -> Vec<Option<u64>> {
        (0..self.members.len())
            .map(|m| self.bitmap_offset_bytes(m))
            .collect()
    }

    /// The array UUID as md places it in the bitmap superblock: 1.x
    /// `set_uuid`; 0.90 the four words' stored bytes (formats.md §1.4).
    #[must_use]
    pub fn bitmap_uuid(&self) -> [u8; 16] {
        let first = self
            .members
            .iter()
            .flatten()
            .next()
            .expect("load keeps one member");
        match first {
            MemberSb::V1(sb) => sb.set_uuid,
            MemberSb::V0 { sb, .. } => {
                let words = [sb.set_uuid0, sb.set_uuid1, sb.set_uuid2, sb.set_uuid3];
                let mut uuid = [0u8; 16];
                for (dst, w) in uuid.chunks_exact_mut(4).zip(words) {
                    let bytes = if sb.big_endian {
                        w.to_be_bytes()
                    } else {
                        w.to_le_bytes()
                    };
                    dst.copy_from_slice(&bytes);
                }
                uuid
            }
        }
    }

    /// Take ownership of the array's internal bitmap so every update keeps
    /// its superblock in step (its UUID must be the array's).
    pub fn attach_bitmap(&mut self, bitmap: WriteIntentBitmap) -> Result<(), EngineError> {
        if bitmap.superblock().uuid != self.bitmap_uuid() {
            return Err(inval("bitmap UUID differs from the array's".to_owned()));
        }
        self.bitmap = Some(bitmap);
        Ok(())
    }

    /// The attached bitmap, if any.
    #[must_use]
    pub fn bitmap(&self) -> Option<&WriteIntentBitmap> {
        self.bitmap.as_ref()
    }

    /// The attached bitmap, for the write path.
    pub fn bitmap_mut(&mut self) -> Option<&mut WriteIntentBitmap> {
        self.bitmap.as_mut()
    }

    /// md_update_sb: bump events, record clean state, utime and faulty
    /// members, and append to `out` the bitmap superblock writes (first) and
    /// then every present, non-faulty member's superblock. Panics if a
    /// faulty index is not a member index (a caller bug).
    pub fn update(&mut self, update: &SuperblockUpdate, out: &mut Vec<MetadataWrite>) {
        let before = out.len();
        self.events = self
            .events
            .checked_add(1)
            .expect("events cannot reach 2^64");
        self.mark_update_faulty(update);
        if let Some(bitmap) = self.bitmap.as_mut() {
            for (m, &f) in self.faulty.iter().enumerate() {
                if f {
                    bitmap.remove_member(m);
                }
            }
            bitmap.update_sb(self.events, out);
        }
        let events = self.events;
        self.write_members(update, events, |_| true, out);
        assert!(out.len() > before || self.members.iter().flatten().count() == 0);
    }

    /// Superblocks behind the array's events, written at those events
    /// without a bump, before the next [`NativeMetadata::update`]; returns
    /// whether there were any. The host makes these writes durable first.
    ///
    /// Why: md accepts a member one event behind (a superblock update the
    /// power cut half way), not two. Left behind, such a member is two
    /// behind if the power fails again during the next update, and the
    /// array no longer assembles without forcing (the simulator met it:
    /// native seed 4955). Brought to the array's events first, it is at
    /// most one behind whatever the next update leaves.
    pub fn catch_up(&mut self, update: &SuperblockUpdate, out: &mut Vec<MetadataWrite>) -> bool {
        let before = out.len();
        self.mark_update_faulty(update);
        let events = self.events;
        let lagging: Vec<bool> = self
            .members
            .iter()
            .map(|m| m.as_ref().is_some_and(|m| member_events(m) < events))
            .collect();
        self.write_members(update, events, |m| lagging[m], out);
        assert!(out[before..]
            .iter()
            .all(|w| lagging[w.member] && !self.faulty[w.member]));
        out.len() > before
    }

    /// Append the superblock write of every present, non-faulty member
    /// `pick` accepts, synced with `update` at `events`.
    fn write_members(
        &mut self,
        update: &SuperblockUpdate,
        events: u64,
        pick: impl Fn(usize) -> bool,
        out: &mut Vec<MetadataWrite>,
    ) {
        for (m, member) in self.members.iter_mut().enumerate() {
            let Some(member) = member.as_mut() else {
                continue;
            };
            if self.faulty[m] || !pick(m) {
                continue;
            }
            out.push(match member {
                MemberSb::V0 { sb, offset_bytes } => {
                    sync_90(sb, update, events);
                    MetadataWrite {
                        member: m,
                        offset_bytes: *offset_bytes,
                        bytes: bytes_90(sb),
                        phase: 0,
                    }
                }
                MemberSb::V1(sb) => {
                    sync_1(sb, update, events);
                    let offset_bytes = sb.super_offset * SECTOR_BYTES;
                    MetadataWrite {
                        member: m,
                        offset_bytes,
                        bytes: bytes_1(sb),
                        phase: 0,
                    }
                }
            });
        }
    }

    /// Record every member `update` names failed (sticky). Panics if one is
    /// not a member index (a caller bug).
    fn mark_update_faulty(&mut self, update: &SuperblockUpdate) {
        for &m in &update.faulty_members {
            assert!(m < self.members.len(), "faulty member {m} out of range");
            self.mark_faulty(m);
        }
    }

    /// Record `m` as faulty in every superblock's view of the array.
    fn mark_faulty(&mut self, m: usize) {
        if self.faulty[m] {
            return;
        }
        self.faulty[m] = true;
        let Some(failed) = self.members[m].as_ref() else {
            return;
        };
        match failed {
            MemberSb::V1(sb) => {
                let dev_number = sb.dev_number as usize;
                for sb in self.members.iter_mut().flatten() {
                    if let MemberSb::V1(sb) = sb {
                        if let Some(role) = sb.dev_roles.get_mut(dev_number) {
                            *role = sb1::ROLE_FAULTY;
                        }
                    }
                }
            }
            MemberSb::V0 { sb, .. } => {
                let number = sb.this_disk.number as usize;
                for sb in self.members.iter_mut().flatten() {
                    if let MemberSb::V0 { sb, .. } = sb {
                        fail_descriptor_90(sb, number);
                    }
                }
            }
        }
    }

    /// Every present member names the same array (UUID, level, layout,
    /// chunk), as the kernel requires when combining members (formats.md §2.6).
    fn check_same_array(&self) -> Result<(), EngineError> {
        let key = |m: &MemberSb| match m {
            MemberSb::V0 { sb, .. } => (sb.uuid().0, sb.level, sb.layout, sb.chunk_size),
            MemberSb::V1(sb) => (sb.set_uuid, sb.level, sb.layout, sb.chunksize),
        };
        let mut present = self.members.iter().flatten();
        let first = present.next().map(key);
        if present.any(|m| Some(key(m)) != first) {
            return Err(inval("members belong to different arrays".to_owned()));
        }
        Ok(())
    }
}

fn member_events(m: &MemberSb) -> u64 {
    match m {
        MemberSb::V0 { sb, .. } => sb.events,
        MemberSb::V1(sb) => sb.events,
    }
}

/// The one metadata version all present members share.
fn common_version(members: &[Option<MemberSb>]) -> Result<&'static str, EngineError> {
    let version_of = |m: &MemberSb| match m {
        MemberSb::V0 { .. } => "0.90",
        MemberSb::V1(sb) => match sb.minor() {
            0 => "1.0",
            1 => "1.1",
            _ => "1.2",
        },
    };
    let mut versions = members.iter().flatten().map(version_of);
    let first = versions
        .next()
        .ok_or_else(|| inval("no member present".to_owned()))?;
    if versions.any(|v| v != first) {
        return Err(inval(
            "members carry different metadata versions".to_owned(),
        ));
    }
    Ok(first)
}

/// super_1_sync's share of an update: events, utime, resync_offset.
fn sync_1(sb: &mut Superblock1, update: &SuperblockUpdate, events: u64) {
    sb.events = events;
    if let Some(n) = update.raid_disks {
        sb.raid_disks = n;
    }
    sb.utime = update.utime_seconds;
    sb.resync_offset = if update.clean {
        update.resync_offset_sectors
    } else {
        0
    };
}

/// super_90_sync's share of an update: events, utime, clean state,
/// recovery checkpoint.
fn sync_90(sb: &mut Superblock0, update: &SuperblockUpdate, events: u64) {
    sb.events = events;
    if let Some(n) = update.raid_disks {
        sb.raid_disks = n;
    }
    sb.utime = u32::try_from(update.utime_seconds).unwrap_or(u32::MAX);
    sb.state &= !sb0::STATE_CLEAN;
    if update.clean {
        sb.recovery_cp = if update.resync_offset_sectors == MAX_SECTOR {
            RECOVERY_CP_MAX_90
        } else {
            // A checkpoint that does not fit is lowered: resyncing more is safe.
            u32::try_from(update.resync_offset_sectors).unwrap_or(RECOVERY_CP_MAX_90 - 1)
        };
        sb.cp_events = events;
        if update.resync_offset_sectors == MAX_SECTOR {
            sb.state |= sb0::STATE_CLEAN;
        }
    } else {
        sb.recovery_cp = 0;
    }
}

/// Descriptor `number` failed: md writes state FAULTY for a failed device
/// and counts it failed instead of active/working.
fn fail_descriptor_90(sb: &mut Superblock0, number: usize) {
    let Some(d) = sb.disks.get_mut(number) else {
        return;
    };
    let was_working = d.state & sb0::DISK_FAULTY == 0 && d.state & sb0::DISK_SYNC != 0;
    d.state = sb0::DISK_FAULTY;
    let d = *d;
    if sb.this_disk.number as usize == number {
        sb.this_disk = d;
    }
    if was_working {
        sb.active_disks = sb.active_disks.saturating_sub(1);
        sb.working_disks = sb.working_disks.saturating_sub(1);
        sb.failed_disks = sb.failed_disks.saturating_add(1);
    }
}

/// Serialise a 0.90 superblock and prove it reads back identically.
fn bytes_90(sb: &Superblock0) -> Vec<u8> {
    let bytes = sb.to_bytes().to_vec();
    let back = Superblock0::parse(&bytes).expect("a serialised superblock parses");
    assert_eq!(back.events, sb.events, "events survive the round trip");
    assert_eq!(back.state, sb.state, "state survives the round trip");
    assert_eq!(
        back.recovery_cp, sb.recovery_cp,
        "recovery_cp survives the round trip"
    );
    bytes
}

/// Serialise a 1.x superblock, padded to whole sectors (the kernel writes
/// `256 + 2 * max_dev` rounded up to the block size, formats.md §2.1), and
/// prove it reads back identically.
fn bytes_1(sb: &Superblock1) -> Vec<u8> {
    let mut bytes = sb.to_bytes();
    let sector = SECTOR_BYTES as usize;
    bytes.resize(bytes.len().div_ceil(sector) * sector, 0);
    // Placement against the device size was checked at load; only the bytes
    // are rechecked here, so the device is taken as large as possible.
    let back = Superblock1::parse(&bytes, sb.super_offset, u64::MAX)
        .expect("a serialised superblock parses");
    assert_eq!(&back, sb, "the superblock survives the round trip");
    bytes
}

mod hot_add;
mod roster;
mod roster_90;
pub use hot_add::{hot_add, own_superblock, NewDevice, OwnSuperblock};
pub use roster::{roster_of, NewMember, RosterEntry};

#[cfg(test)]
pub(crate) mod tests;

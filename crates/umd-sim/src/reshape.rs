//! The grow action (`umd grow --raid-devices N+1 --add NEW`): a raid4/5/6
//! array is stopped cleanly, grown by one blank disk through the engine's
//! grow driver (`umd_engine::reshape::drive`, the steps and order `umd
//! grow` runs on member files), and started again bigger. Every member
//! write of the grow is a crash point like any other; after a power loss
//! mid-grow the reshape is resumed from its checkpoint (`umd grow
//! --continue`), as `umd run` refuses an array mid-reshape, and the array
//! then starts.
//!
//! Why: the grow is crash safe only by its order (a window's new stripes
//! durable on every member before any superblock records the window as
//! moved). Real-process tests kill the process, which never loses a write
//! the kernel accepted; here the power fails, caches drop or tear, and the
//! checker reads every sector afterwards.

use crate::disk::SimDisk;
use crate::members::{Fault, Members};
use umd_engine::reshape::drive::{self, GrowError, GrowIo};
use umd_engine::reshape::superblocks::{self, Joining, Target};
use umd_formats::probe::{probe, Metadata};
use umd_formats::sb1::{Superblock1, FEATURE_RESHAPE_ACTIVE};

/// Largest window, array sectors: small, so a grow has many checkpoints,
/// each a few crash points.
const WINDOW_SECTORS: u64 = 256;
/// Most the data moves down, sectors (as `umd grow`).
const GAP_SECTORS_MAX: u64 = 16384;

/// The disks a grow runs on: the driver's member `i` is disk `disks[i]`.
struct GrowDisks<'a> {
    io: &'a mut Members,
    disks: &'a [usize],
}

impl GrowIo for GrowDisks<'_> {
    type Error = Fault;

    fn read(&mut self, member: usize, offset_bytes: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.io.read(self.disks[member], offset_bytes, buf)
    }

    fn write(&mut self, member: usize, offset_bytes: u64, buf: &[u8]) -> Result<(), Fault> {
        self.io
            .write_batch(&[(self.disks[member], offset_bytes, buf)])
    }

    fn sync(&mut self, member: usize) -> Result<(), Fault> {
        self.io.flush(self.disks[member])
    }
}

/// Why a grow did not end.
#[derive(Debug)]
pub enum GrowStop {
    /// The power failed, or a member I/O failed.
    Fault(Fault),
    /// The grow cannot go on, and why (`umd grow` would exit with it).
    Refused(String),
}

impl From<GrowError<Fault>> for GrowStop {
    fn from(e: GrowError<Fault>) -> Self {
        match e {
            GrowError::Io(f) => Self::Fault(f),
            GrowError::Refused(why) => Self::Refused(why),
        }
    }
}

/// The 1.x superblock on `disk`, if it has a readable one.
fn superblock(disk: &SimDisk) -> Option<Superblock1> {
    if !disk.is_present() {
        return None;
    }
    let mut read = |offset: u64, buf: &mut [u8]| {
        disk.read(offset, buf)
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    match probe(disk.len_bytes(), &mut read) {
        Ok(Metadata::V1(sb)) => Some(sb),
        _ => None,
    }
}

/// Start growing the array on disks `members` (every role's, in role
/// order; the array stopped cleanly) by a blank disk of `member_bytes`,
/// appended to `io.disks`, and carry it to its end. `growing` holds the
/// disks the grow runs on from before its first write until its end (for
/// [`resume`] after a crash). `Ok(false)`: the array cannot grow (`umd
/// grow` would refuse; nothing was written and no disk added).
pub fn grow(
    io: &mut Members,
    members: &[usize],
    device_uuid: [u8; 16],
    member_bytes: usize,
    now_seconds: u64,
    growing: &mut Option<Vec<usize>>,
) -> Result<bool, GrowStop> {
    let sbs: Option<Vec<Superblock1>> = members.iter().map(|&d| superblock(&io.disks[d])).collect();
    let Some(sbs) = sbs else {
        return Ok(false);
    };
    let Some(fresh) = sbs.iter().max_by_key(|s| s.events) else {
        return Ok(false);
    };
    if !matches!(fresh.level, 4..=6) || sbs.iter().any(|s| s.minor() == 0) {
        return Ok(false);
    }
    let gap = superblocks::gap_sectors(&sbs, u64::from(fresh.chunksize), GAP_SECTORS_MAX);
    if gap == 0 {
        return Ok(false);
    }
    let joining = [Joining {
        dev_sectors: member_bytes as u64 / 512,
        device_uuid,
    }];
    let Ok(new) = superblocks::start_reshape(&sbs, &joining, Target::default(), gap, now_seconds)
    else {
        return Ok(false);
    };
    if drive::check_plan(&sbs, &new, WINDOW_SECTORS).is_err() {
        return Ok(false);
    }
    io.disks.push(SimDisk::new(member_bytes));
    let mut disks = members.to_vec();
    disks.push(io.disks.len() - 1);
    *growing = Some(disks.clone());
    let n = members.len();
    let mut g = GrowDisks { io, disks: &disks };
    let old: Vec<usize> = (0..n).collect();
    drive::write_start(&mut g, &old, &[n], &new)?;
    let mut sbs = new;
    copy(&mut g, &mut sbs, now_seconds)?;
    *growing = None;
    Ok(true)
}

/// Resume the grow on `disks` a crash interrupted: bring the superblocks
/// to the freshest, then move the rest of the windows (`umd grow
/// --continue`). Nothing to do if no disk records the reshape (the power
/// failed before its first superblock was durable).
pub fn resume(io: &mut Members, disks: &[usize], now_seconds: u64) -> Result<(), GrowStop> {
    let sbs: Vec<Option<Superblock1>> = disks.iter().map(|&d| superblock(&io.disks[d])).collect();
    let started = sbs
        .iter()
        .flatten()
        .any(|s| s.feature_map & FEATURE_RESHAPE_ACTIVE != 0);
    if !started {
        return Ok(());
    }
    let Some(mut sbs) = sbs.into_iter().collect::<Option<Vec<_>>>() else {
        return Err(GrowStop::Refused(
            "a member's superblock was torn by the power loss: `umd grow --continue` \
             needs every member"
                .to_string(),
        ));
    };
    let mut g = GrowDisks { io, disks };
    drive::reconcile(&mut g, &mut sbs)?;
    copy(&mut g, &mut sbs, now_seconds)
}

/// Every window from the recorded checkpoint, then the end.
fn copy(g: &mut GrowDisks<'_>, sbs: &mut [Superblock1], now_seconds: u64) -> Result<(), GrowStop> {
    drive::copy(g, sbs, WINDOW_SECTORS, &mut || now_seconds, &mut |_, _| {})?;
    Ok(())
}

//! Read-error repair (md's `fix_read_error`): a member read that fails in
//! a redundant array is rebuilt from the other members, rewritten on the
//! failing member and read back, so one bad sector does not cost a member.
//!
//! Why here and not in the engine: it is member I/O in a fixed order under
//! a range lock; the engine only decides (`Array::read_error`: the member
//! is working, the array redundant, the count of read errors within
//! `max_read_errors`) and counts what was repaired
//! (`Array::read_error_corrected`, `dev-NAME/errors`).
//!
//! The order, under the stripes' (parity levels) or the mirror region's
//! range lock, so that no write changes data or parity in between:
//!
//! 1. rebuild the extent from the other members (a planner that treats the
//!    failing role as missing);
//! 2. write it to the failing member where the read failed;
//! 3. read it back and compare.
//!
//! Any failure of steps 2 or 3 fails the member, as md does; a failure of
//! another member in step 1 is reported so the caller fails that one and
//! reads again (the first member's error then recurs and is repaired).

use super::ctx::{member_of, IoCtx};
use super::sync_worker::MIRROR_REGION_SECTORS;
use super::Shared;
use crate::member_file::{IoError, MemberFile};
use umd_engine::array::ReadErrorVerdict;

/// One member extent whose read failed: where it is on the member and
/// which logical sectors it holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct FailedRead {
    /// The role whose member failed the read.
    pub(super) role: u32,
    /// First member sector of the extent.
    pub(super) device_sector: u64,
    /// First logical sector the extent holds.
    pub(super) logical_sector: u64,
    /// Sectors in the extent.
    pub(super) len_sectors: u64,
}

/// What became of a repair attempt.
#[derive(Debug)]
pub(super) enum Repair {
    /// Rewritten and verified: read the extent again.
    Repaired,
    /// Not repairable (threshold, no redundancy, rewrite or verify failed):
    /// fail the member.
    Fail,
    /// Another member failed while rebuilding: fail that one.
    OtherFailed(u32, IoError),
}

/// Try to repair `failed` (module doc order). Allocates its buffers: this
/// is the error path, not the steady state.
pub(super) fn repair(shared: &Shared, ctx: &IoCtx, failed: FailedRead) -> Repair {
    assert!(failed.len_sectors > 0, "an empty failed read");
    let Some(name) = shared
        .role_member(failed.role)
        .and_then(|m| shared.member_name(m))
        .map(str::to_owned)
    else {
        return Repair::Fail;
    };
    if !may_repair(shared, &name) {
        return Repair::Fail;
    }
    let _guard = lock_extent(shared, failed.logical_sector, failed.len_sectors);
    let len = (failed.len_sectors * 512) as usize;
    let mut good = vec![0u8; len];
    if let Err(outcome) = rebuild(shared, ctx, failed, &mut good) {
        return outcome;
    }
    let Some(file) = shared.file(member_of(shared, failed.role)) else {
        return Repair::Fail;
    };
    if let Err(e) = rewrite_verified(file, failed.device_sector * 512, &good) {
        tracing::error!(error = %e, member = %name, "rewriting a read error failed");
        return Repair::Fail;
    }
    corrected(
        shared,
        &name,
        failed.device_sector,
        failed.len_sectors,
        "read error corrected",
    );
    Repair::Repaired
}

/// Count a read error of member `name` (`Array::read_error`); whether it
/// may be repaired. Past `max_read_errors`, or without redundancy, the
/// caller fails the member instead.
pub(super) fn may_repair(shared: &Shared, name: &str) -> bool {
    let now = shared.now();
    let verdict = shared.core().array.read_error(name, now);
    if verdict == ReadErrorVerdict::Fail {
        tracing::error!(member = %name, "read error beyond max_read_errors or not repairable");
    }
    verdict == ReadErrorVerdict::Repair
}

/// Write `good` to `file` at byte `at`, read it back and compare: the
/// rewrite of an unreadable block holds only if it reads back as written.
pub(super) fn rewrite_verified(file: &MemberFile, at: u64, good: &[u8]) -> Result<(), IoError> {
    file.write_all_at(at, good)?;
    let mut back = vec![0u8; good.len()];
    file.read_exact_at(at, &mut back)?;
    if back != good {
        return Err(IoError {
            path: file.path().to_owned(),
            op: "read back",
            offset: Some(at),
            source: std::io::Error::other("reads back different data"),
        });
    }
    Ok(())
}

/// A rewrite held: count it in `dev-NAME/errors` and log `what`.
pub(super) fn corrected(shared: &Shared, name: &str, sector: u64, sectors: u64, what: &str) {
    let mut core = shared.core();
    core.array.read_error_corrected(name, sectors);
    shared.settle(core, false);
    tracing::warn!(member = %name, sector, sectors, "{what}");
}

/// Hold what writes to the extent hold: its stripes on parity levels, its
/// mirror regions otherwise.
fn lock_extent(shared: &Shared, sector: u64, len: u64) -> super::range_lock::RangeGuard<'_> {
    let (first, last) = if shared.is_parity_level() {
        let g = &shared.geometry;
        let data = u64::from(g.raid_disks() - g.level().parity_members());
        let row = u64::from(g.chunk_sectors()) * data;
        (sector / row, (sector + len - 1) / row)
    } else {
        (
            sector / MIRROR_REGION_SECTORS,
            (sector + len - 1) / MIRROR_REGION_SECTORS,
        )
    };
    shared.ranges.lock(first, last)
}

/// Read the extent's logical sectors into `out` without the failing role.
fn rebuild(shared: &Shared, ctx: &IoCtx, failed: FailedRead, out: &mut [u8]) -> Result<(), Repair> {
    let mut planner = ctx.read_planner.clone();
    planner.mark_failed(failed.role);
    let mut plan = ctx.read_plan.clone();
    let mut done = 0u64;
    while done < failed.len_sectors {
        let sector = failed.logical_sector + done;
        if planner
            .plan(sector, failed.len_sectors - done, &mut plan)
            .is_err()
        {
            return Err(Repair::Fail);
        }
        let len = (plan.len_sectors * 512) as usize;
        let start = (done * 512) as usize;
        let mut extra: Vec<Vec<u8>> = (1..plan.buffers).map(|_| vec![0u8; len]).collect();
        let mut bufs: Vec<&mut [u8]> = Vec::with_capacity(plan.buffers);
        bufs.push(&mut out[start..start + len]);
        bufs.extend(extra.iter_mut().map(Vec::as_mut_slice));
        for r in &plan.reads {
            assert_ne!(r.role, failed.role, "the rebuild reads the failing role");
            let Some(file) = shared.file(member_of(shared, r.role)) else {
                return Err(Repair::Fail);
            };
            file.read_exact_at(r.device_sector * 512, bufs[r.buffer])
                .map_err(|e| Repair::OtherFailed(r.role, e))?;
        }
        planner.finish(&plan, &mut bufs);
        done += plan.len_sectors;
    }
    assert_eq!(done, failed.len_sectors, "the whole extent rebuilt");
    Ok(())
}

//! The request path: reads, writes, flushes and zeroing on a running array.
//!
//! Each request borrows an [`IoCtx`], asks the engine's planners what to do
//! and runs the member I/O in batches, so the members work in parallel:
//!
//! * **read**: consecutive direct extents go out as one batch straight into
//!   the caller's buffer (no copy); an extent that must be rebuilt from
//!   parity holds its stripes while it reads and reconstructs.
//! * **write**: `md_write_start` first (wait while the dirty transition is
//!   pending, never holding `core`), then per piece: plan, hold the stripes,
//!   set bitmap bits on disk, read what the plan needs, compute parity, write;
//!   `md_write_end` last. With FUA the members are synced before returning.
//!   A raid4/5 piece that covers part of a stripe first tries stripe
//!   gathering (`gather_write.rs`), which falls back to this path.
//!
//! A member that fails a write is marked faulty in the engine (which
//! records it in the superblocks) and the piece is planned again without
//! it. A member that fails a direct read in a redundant array is repaired
//! first (`read_repair.rs`) and failed only when that is not possible.

use super::ctx::{io_failed, member_of, recycle, IoCtx};
use super::gather_write::{write_gathered, Gathered};
use super::ppl_log::LogFailed;
use super::read_repair::{self, FailedRead, Repair};
use super::sync_worker::MIRROR_REGION_SECTORS;
use super::{drain_events, HostError, Shared};
use crate::batch::Op;
use crate::member_file::IoError;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use umd_engine::Errno;
use umd_layout::geometry::Level;

/// Sectors written per plan: large enough for full-stripe writes on wide
/// arrays, small enough to bound scratch memory per request.
const PIECE_SECTORS_MAX: u64 = 2048;

/// Direct extents gathered into one read batch at most.
pub(super) const READ_OPS_MAX: usize = 256;

/// Zeroes written per step of WRITE_ZEROES.
const ZERO_STEP_BYTES: usize = 1 << 20;

/// Times a piece is planned again after member failures before giving up.
const REPLANS_MAX: usize = 4;

static ZEROES: [u8; ZERO_STEP_BYTES] = [0; ZERO_STEP_BYTES];

pub(super) fn check_range(shared: &Shared, offset: u64, len: u64) -> Result<(), HostError> {
    if !offset.is_multiple_of(512) || !len.is_multiple_of(512) {
        return Err(HostError::new(
            Errno::EINVAL,
            format!("offset {offset} or length {len} is not a multiple of 512 bytes"),
        ));
    }
    let end = offset
        .checked_add(len)
        .ok_or_else(|| HostError::new(Errno::EINVAL, format!("range at {offset} overflows")))?;
    if end > shared.array_sectors * 512 {
        return Err(HostError::new(
            Errno::ENOSPC,
            format!(
                "range {offset}+{len} is past the array's end ({} bytes)",
                shared.array_sectors * 512
            ),
        ));
    }
    Ok(())
}

/// Read `buf.len()` bytes at `offset`.
pub(crate) fn read(shared: &Shared, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
    check_range(shared, offset, buf.len() as u64)?;
    let mut ctx = IoCtx::take(shared);
    if !ctx.array_running {
        ctx.give_back(shared);
        return Err(HostError::new(Errno::EIO, "the array is not running"));
    }
    let result = read_with(shared, &mut ctx, offset / 512, buf);
    ctx.give_back(shared);
    result
}

/// Read logical sectors from `first_sector` into `out`, rebuilding what
/// must be rebuilt and failing members that fail (planning again).
pub(super) fn read_with(
    shared: &Shared,
    ctx: &mut IoCtx,
    first_sector: u64,
    out: &mut [u8],
) -> Result<(), HostError> {
    let total_sectors = (out.len() / 512) as u64;
    let mut done = 0u64;
    let mut replans = 0usize;
    let mut repairs = 0usize;
    while done < total_sectors {
        // Gather direct extents into one batch, straight into `out`.
        let mut ops = recycle(std::mem::take(&mut ctx.ops_store));
        let mut roles: Vec<u32> = recycle(std::mem::take(&mut ctx.roles_store));
        let mut rest: &mut [u8] = &mut out[(done * 512) as usize..];
        let mut gathered = 0u64;
        let mut rebuild_next = false;
        while done + gathered < total_sectors && ops.len() < READ_OPS_MAX {
            let sector = first_sector + done + gathered;
            if let Err(e) =
                ctx.read_planner
                    .plan(sector, total_sectors - done - gathered, &mut ctx.read_plan)
            {
                ctx.ops_store = recycle(ops);
                ctx.roles_store = recycle(roles);
                return Err(HostError::new(Errno::EIO, e.to_string()));
            }
            if ctx.read_plan.buffers != 1 {
                rebuild_next = true;
                break;
            }
            let r = ctx.read_plan.reads[0];
            let len = (ctx.read_plan.len_sectors * 512) as usize;
            let (this, after) = std::mem::take(&mut rest).split_at_mut(len);
            rest = after;
            ops.push(Op::Read {
                member: member_of(shared, r.role),
                offset_bytes: r.device_sector * 512,
                buf: this,
            });
            roles.push(r.role);
            gathered += ctx.read_plan.len_sectors;
        }
        let outcome = ctx.io.run(shared, &mut ops);
        let failed = outcome
            .err()
            .map(|(i, e)| (failed_read(&ops, i, roles[i], first_sector + done), e));
        ctx.ops_store = recycle(ops);
        roles.clear();
        ctx.roles_store = roles;
        if let Some((at, e)) = failed {
            repairs += 1;
            match repair_or_fail(shared, ctx, at, repairs) {
                Repair::Repaired => {}
                Repair::Fail => member_failed(shared, ctx, at.role, &e, &mut replans)?,
                Repair::OtherFailed(role, e) => {
                    member_failed(shared, ctx, role, &e, &mut replans)?;
                }
            }
            continue;
        }
        done += gathered;
        if rebuild_next {
            match read_rebuilt(shared, ctx, first_sector + done, out, done) {
                Ok(len) => done += len,
                Err(Ok((role, e))) => member_failed(shared, ctx, role, &e, &mut replans)?,
                Err(Err(e)) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Where op `i` of a direct read batch starting at logical `first_sector`
/// read from: the batch's extents are consecutive logical sectors.
fn failed_read(ops: &[Op<'_>], i: usize, role: u32, first_sector: u64) -> FailedRead {
    let before: usize = ops[..i].iter().map(Op::len_bytes).sum();
    FailedRead {
        role,
        device_sector: ops[i].offset_bytes() / 512,
        logical_sector: first_sector + (before / 512) as u64,
        len_sectors: (ops[i].len_bytes() / 512) as u64,
    }
}

/// A direct read failed: repair it from redundancy (md's fix_read_error)
/// unless this request already repaired as many extents as one batch
/// holds, which means the repairs do not hold.
fn repair_or_fail(shared: &Shared, ctx: &IoCtx, at: FailedRead, repairs: usize) -> Repair {
    if repairs > READ_OPS_MAX {
        return Repair::Fail;
    }
    read_repair::repair(shared, ctx, at)
}

type RebuildError = Result<(u32, IoError), HostError>;

/// Read one extent that needs reconstruction (planned again here, since the
/// direct-extent loop stopped at it). Returns the sectors delivered.
fn read_rebuilt(
    shared: &Shared,
    ctx: &mut IoCtx,
    sector: u64,
    out: &mut [u8],
    done: u64,
) -> Result<u64, RebuildError> {
    let remaining = (out.len() / 512) as u64 - done;
    ctx.read_planner
        .plan(sector, remaining, &mut ctx.read_plan)
        .map_err(|e| Err(HostError::new(Errno::EIO, e.to_string())))?;
    let plan = &ctx.read_plan;
    let len = (plan.len_sectors * 512) as usize;
    // Hold the stripes: a concurrent write must not change data or parity
    // between our reads, or the rebuilt block would match neither.
    let stripes = stripe_span(shared, sector, plan.len_sectors);
    let _guard = stripes.map(|(a, b)| shared.ranges.lock(a, b));
    while ctx.read_buffers.len() + 1 < plan.buffers {
        ctx.read_buffers.push(Vec::new());
    }
    for b in &mut ctx.read_buffers[..plan.buffers - 1] {
        b.resize(len, 0);
    }
    let start = (done * 512) as usize;
    let (first, others) = (
        &mut out[start..start + len],
        &mut ctx.read_buffers[..plan.buffers - 1],
    );
    let mut bufs: Vec<&mut [u8]> = Vec::with_capacity(plan.buffers);
    bufs.push(first);
    bufs.extend(others.iter_mut().map(|b| &mut b[..len]));
    for r in &plan.reads {
        let file = shared
            .file(member_of(shared, r.role))
            .ok_or_else(|| Err(HostError::new(Errno::EIO, "member file missing")))?;
        file.read_exact_at(r.device_sector * 512, bufs[r.buffer])
            .map_err(|e| Ok((r.role, e)))?;
    }
    ctx.read_planner.finish(plan, &mut bufs);
    Ok(plan.len_sectors)
}

/// Stripes spanned by logical `[sector, sector + len)` on parity levels.
fn stripe_span(shared: &Shared, sector: u64, len: u64) -> Option<(u64, u64)> {
    if !shared.is_parity_level() {
        return None;
    }
    let g = &shared.geometry;
    let data = u64::from(g.raid_disks() - g.level().parity_members());
    let row = u64::from(g.chunk_sectors()) * data;
    Some((sector / row, (sector + len - 1) / row))
}

/// Record a member failure in the engine and make later plans avoid it.
pub(super) fn member_failed(
    shared: &Shared,
    ctx: &mut IoCtx,
    role: u32,
    e: &IoError,
    replans: &mut usize,
) -> Result<(), HostError> {
    *replans += 1;
    if *replans > REPLANS_MAX {
        return Err(io_failed(e));
    }
    tracing::error!(error = %e, role, "member I/O failed; failing the member");
    // The engine's MemberFailed event (applied by `settle`) takes the role
    // out of the shared member map; this context's planners follow here.
    let failed = member_of(shared, role);
    if !fail_member(shared, failed) {
        // md refuses to fail the last working member: the error stands.
        return Err(io_failed(e));
    }
    ctx.refresh(shared);
    // Unless a replacement took the role over (then it is written from now
    // on), the role has no member left.
    if shared.role_member(role) == Some(failed) {
        ctx.read_planner.mark_failed(role);
        ctx.write_planner.mark_failed(role);
    }
    Ok(())
}

/// md_error: mark `member` faulty; whether the engine took it (md refuses
/// to fail the last working member).
pub(super) fn fail_member(shared: &Shared, member: usize) -> bool {
    let name = shared.member_name(member).unwrap_or("?");
    let now = shared.now();
    let mut core = shared.core();
    let result = core
        .array
        .store(&format!("dev-{name}/state"), "faulty", now);
    if result.is_ok() {
        shared.failures_seen.fetch_add(1, Ordering::AcqRel);
    }
    shared.settle(core, true);
    if let Err(refused) = &result {
        tracing::error!(member = %name, %refused, "member not failed");
    }
    result.is_ok()
}

/// md's `md_wait_for_blocked_rdev` timeout: while a write waits on a
/// blocked member, the member's state is notified again this often, so a
/// manager that missed the first notification (or was restarted) sees it.
const BLOCKED_RENOTIFY: std::time::Duration = std::time::Duration::from_secs(5);

/// md_write_start: count the write; wait while the dirty transition is
/// pending or a member is blocked (never holding `core` while waiting).
fn write_start(shared: &Shared) -> Result<(), HostError> {
    let now = shared.now();
    let mut core = shared.core();
    core.array.write_start(now)?;
    let wake = drain_events(&mut core);
    shared.apply_membership(&mut core);
    let notes = std::mem::take(&mut core.notify_queue);
    if wake {
        shared.core_changed.notify_all();
    }
    let waited = wait_writable(shared, core, notes);
    if waited.is_err() {
        write_end(shared);
    }
    waited
}

/// md's hold on a request that failed a member or recorded a bad range
/// (raid1/5's `bio_end_io_list`, kept while `MD_SB_CHANGE_PENDING`): it
/// completes only once the metadata records the change (native: the
/// superblock written; external: the manager's `-blocked` and `active`).
/// Answered before, a crash could bring the member back as current, and
/// the acknowledged data read from the copy that never got it.
pub(crate) fn hold_until_recorded(shared: &Shared) -> Result<(), HostError> {
    let core = shared.core();
    let notes = Vec::new();
    wait_writable(shared, core, notes)
}

/// Wait while writes are blocked (the dirty transition or a failure not
/// yet recorded), delivering `notes` and renotifying blocked members as md
/// does; never holding `core` while delivering. Fails only if the array
/// stopped meanwhile.
fn wait_writable<'a>(
    shared: &'a Shared,
    mut core: MutexGuard<'a, super::Core>,
    mut notes: Vec<String>,
) -> Result<(), HostError> {
    let mut renotify_at = std::time::Instant::now() + BLOCKED_RENOTIFY;
    while core.array.write_blocked() {
        if !notes.is_empty() {
            drop(core);
            shared.deliver_notifications(&std::mem::take(&mut notes));
            core = shared.core();
            continue;
        }
        if core.stopping && core.md_thread_done {
            return Err(HostError::new(
                Errno::EIO,
                "array stopped while the write waited",
            ));
        }
        let left = renotify_at.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            notes.extend(
                core.array
                    .blocked_members()
                    .map(|m| format!("dev-{m}/state")),
            );
            renotify_at += BLOCKED_RENOTIFY;
            continue;
        }
        core = shared.wait(core, Some(left));
    }
    drop(core);
    shared.deliver_notifications(&notes);
    Ok(())
}

/// md_write_end.
fn write_end(shared: &Shared) {
    let now = shared.now();
    let mut core = shared.core();
    core.array.write_end(now);
    shared.settle(core, false);
}

/// Write `data` at byte `offset`. While it runs it is a known neighbour for
/// stripe gathering (adopting the front end's announcement of it, if any;
/// every announcement ends here, whatever the outcome).
pub(crate) fn write(shared: &Shared, offset: u64, data: &[u8], fua: bool) -> Result<(), HostError> {
    let (lo, hi) = super::sector_range(offset, data.len() as u64);
    let stream = shared.ranges.begin_write(lo, hi);
    let result = write_tracked(shared, offset, data, (fua, stream));
    shared.ranges.withdraw_write(lo, hi);
    result
}

/// The write proper; `stream`: it continues a sequential stream.
fn write_tracked(
    shared: &Shared,
    offset: u64,
    data: &[u8],
    (fua, stream): (bool, bool),
) -> Result<(), HostError> {
    check_range(shared, offset, data.len() as u64)?;
    if data.is_empty() {
        return Ok(());
    }
    write_start(shared)?;
    let failures = shared.failures_seen.load(Ordering::Acquire);
    let mut ctx = IoCtx::take(shared);
    let mut result = Ok(());
    let mut done = 0usize;
    while done < data.len() && result.is_ok() {
        let sector = offset / 512 + (done / 512) as u64;
        let len = piece_sectors(shared, sector, ((data.len() - done) / 512) as u64);
        let bytes = (len * 512) as usize;
        let piece = &data[done..done + bytes];
        let tail = done + bytes == data.len();
        // A PPL raid5 logs each stripe's write on its own: no gathering.
        let gathered = if shared.ppl.get().is_some() {
            Ok(Gathered::Ordinary)
        } else {
            write_gathered(shared, &mut ctx, sector, piece, (fua, stream && tail))
        };
        result = match gathered {
            Ok(Gathered::Done) => Ok(()),
            Ok(Gathered::Ordinary) => write_piece(shared, &mut ctx, sector, piece),
            Err(e) => Err(e),
        };
        done += bytes;
    }
    if result.is_ok() && fua {
        result = sync_members(shared, &mut ctx);
    }
    ctx.give_back(shared);
    // A FUA write is held like a FLUSH (see `flush_all`); any write that
    // failed a member is held until the failure is recorded.
    if result.is_ok() && (fua || shared.failures_seen.load(Ordering::Acquire) != failures) {
        result = hold_until_recorded(shared);
    }
    write_end(shared);
    result
}

/// Sectors of the next piece from `sector`. On parity levels a piece is
/// either whole stripes (full-stripe writes) or the part of one stripe at the
/// head or tail of the request, which stripe gathering may complete with a
/// neighbour's piece.
fn piece_sectors(shared: &Shared, sector: u64, remaining: u64) -> u64 {
    assert!(remaining > 0, "a piece of nothing");
    let g = &shared.geometry;
    if !shared.is_parity_level() {
        return remaining.min(PIECE_SECTORS_MAX - sector % PIECE_SECTORS_MAX);
    }
    let data = u64::from(g.raid_disks() - g.level().parity_members());
    let row = u64::from(g.chunk_sectors()) * data;
    let into = sector % row;
    let len = if into != 0 {
        remaining.min(row - into)
    } else if remaining < row {
        remaining
    } else if shared.ppl.get().is_some() {
        // A PPL log unit covers one stripe (one parity member).
        row
    } else {
        (remaining / row * row).min((PIECE_SECTORS_MAX / row).max(1) * row)
    };
    assert!(len > 0 && len <= remaining, "piece inside the request");
    len
}

/// Plan and perform one piece, planning again after member failures.
fn write_piece(
    shared: &Shared,
    ctx: &mut IoCtx,
    sector: u64,
    data: &[u8],
) -> Result<(), HostError> {
    let len = (data.len() / 512) as u64;
    let mut replans = 0usize;
    loop {
        let unsynced_from_stripe = {
            let core = shared.core();
            unsynced_stripe(shared, core.array.sync_position())
        };
        ctx.write_planner
            .plan(sector, len, unsynced_from_stripe, &mut ctx.write_plan)
            .map_err(|e| HostError::new(Errno::EIO, e.to_string()))?;
        let span = ctx.write_plan.stripes;
        let guard = match span {
            Some((a, b)) => Some(shared.ranges.lock(a, b)),
            // Mirrors: a resync window copying this region must not
            // interleave with the write (it could copy old data over new).
            None if shared.geometry.copies() > 1 => Some(shared.ranges.lock(
                sector / MIRROR_REGION_SECTORS,
                (sector + len - 1) / MIRROR_REGION_SECTORS,
            )),
            None => None,
        };
        // The plan was made before the lock: if the members changed since
        // (a spare or a replacement activated), the copy of this region may
        // already have run and the plan may miss the new member. Plan again.
        if guard.is_some() && shared.core().members_generation != ctx.generation {
            drop(guard);
            ctx.refresh(shared);
            continue;
        }
        bitmap_start(shared, sector, len, span)?;
        let plan = std::mem::take(&mut ctx.write_plan);
        ctx.ensure_scratch(plan.scratch_bytes);
        let mut outcome = ctx.run_planned(shared, &plan.reads, false, data);
        // md's PPL: the partial parity is durable before any data or parity
        // write of the stripe; the log slot stays held until they completed.
        let logged = match (&outcome, shared.ppl.get()) {
            (Ok(()), Some(ppl)) => ppl.log(shared, &ctx.write_planner, &plan, &ctx.scratch),
            _ => Ok(None),
        };
        let log_slot = match logged {
            Ok(slot) => slot,
            Err(LogFailed::Member(role, e)) => {
                outcome = Err((role, e));
                None
            }
            Err(LogFailed::Refused(why)) => {
                tracing::error!(sector, len, %why, "write refused: its stripe cannot be logged");
                ctx.write_plan = plan;
                bitmap_end(shared, sector, len, span);
                return Err(HostError::new(Errno::EIO, why));
            }
        };
        let writing = outcome.is_ok();
        if writing {
            ctx.write_planner.compute(&plan, data, &mut ctx.scratch);
            outcome = ctx.run_planned(shared, &plan.writes, true, data);
        }
        drop(log_slot);
        for (i, n) in plan.modes.iter().enumerate() {
            shared.stats.stripe_modes[i].fetch_add(u64::from(*n), Ordering::Relaxed);
        }
        ctx.write_plan = plan;
        bitmap_end(shared, sector, len, span);
        drop(guard);
        match outcome {
            Ok(()) => return Ok(()),
            Err((role, e)) if writing && record_bad_range(shared, role, sector, len, &e) => {
                return Ok(());
            }
            Err((role, e)) => member_failed(shared, ctx, role, &e, &mut replans)?,
        }
    }
}

/// md's bad-block path for a write error: on an external raid1 (where the
/// manager may keep a bad-block list and the member's range is the piece's
/// range), record the piece's range as bad on the member instead of failing
/// it. The other copies hold the data, reads avoid the range from now on,
/// and writes wait until the range is recorded (or the member is failed).
/// Returns whether the range was recorded; if not, the member is failed.
fn record_bad_range(shared: &Shared, role: u32, sector: u64, len: u64, e: &IoError) -> bool {
    if shared.geometry.level() != Level::Raid1 {
        return false;
    }
    let Some(name) = shared.role_member(role).and_then(|m| shared.member_name(m)) else {
        return false;
    };
    let mut core = shared.core();
    if !core.array.is_external() || !core.array.record_bad_block(name, sector, len) {
        return false;
    }
    core.member_map.add_bad(role, sector, len);
    core.members_generation += 1;
    shared.failures_seen.fetch_add(1, Ordering::AcqRel);
    shared.settle(core, true);
    tracing::warn!(error = %e, member = %name, sector, len, "write error recorded as a bad range");
    true
}

/// The first stripe whose parity is not known good, from the engine's
/// resync checkpoint, in the sync planner's units (the one place that
/// relates sync positions to stripes).
fn unsynced_stripe(shared: &Shared, sync_position: u64) -> u64 {
    if sync_position == u64::MAX || !shared.is_parity_level() {
        return u64::MAX;
    }
    shared.sync_units.stripe_of(sync_position)
}

/// The bitmap's sector range for a piece: member sectors of its stripes on
/// parity levels, array sectors otherwise.
fn bitmap_range(shared: &Shared, sector: u64, len: u64, span: Option<(u64, u64)>) -> (u64, u64) {
    match span {
        Some((a, b)) => {
            let chunk = u64::from(shared.geometry.chunk_sectors());
            (a * chunk, (b - a + 1) * chunk)
        }
        None => (sector, len),
    }
}

/// Count the write in the bitmap; make sure every bit it needs is on disk
/// before the data write goes out (md's bitmap_startwrite + unplug).
pub(super) fn bitmap_start(
    shared: &Shared,
    sector: u64,
    len: u64,
    span: Option<(u64, u64)>,
) -> Result<(), HostError> {
    let (b_sector, b_len) = bitmap_range(shared, sector, len, span);
    {
        let mut core = shared.core();
        let Some(bitmap) = core.bitmap() else {
            return Ok(());
        };
        bitmap.start_write(b_sector, b_len);
    }
    flush_bitmap(shared)
}

/// Write every bitmap block whose bits were set in memory but not on disk.
/// Serialised by `bitmap_io` so blocks reach the disk in computed order; a
/// writer whose bits another writer is flushing waits here for it.
pub(crate) fn flush_bitmap(shared: &Shared) -> Result<(), HostError> {
    let mut flushes = shared
        .bitmap_io
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut writes = Vec::new();
    {
        let mut core = shared.core();
        if let Some(bitmap) = core.bitmap() {
            bitmap.flush_set_bits(&mut writes);
        }
    }
    if writes.is_empty() {
        return Ok(());
    }
    super::md_thread::write_metadata(shared, &writes)?;
    *flushes += 1;
    shared.stats.bitmap_flushes.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The write is done: the bitmap may clear its bits once they stay idle.
pub(super) fn bitmap_end(shared: &Shared, sector: u64, len: u64, span: Option<(u64, u64)>) {
    let (b_sector, b_len) = bitmap_range(shared, sector, len, span);
    let now = shared.now();
    let mut core = shared.core();
    if let Some(bitmap) = core.bitmap() {
        bitmap.end_write(b_sector, b_len, now);
    }
}

/// Sync every present member's data to stable storage.
/// FLUSH and FUA: sync the members that hold the array's data, as md
/// flushes its working members (a failed member's writes count for nothing,
/// and a vanished one would fail every flush). A member whose sync fails
/// can't keep what it was given: it is failed as a failed write would fail
/// it, and the rest are synced again; the error stands only when the array
/// can't lose that member.
pub(super) fn sync_members(shared: &Shared, ctx: &mut IoCtx) -> Result<(), HostError> {
    let mut replans = 0;
    let mut working = std::mem::take(&mut ctx.members_store);
    let result = loop {
        ctx.refresh(shared);
        working.clear();
        // Roles, then their replacements: what was written to a replacement
        // below its checkpoint must survive a crash too.
        working.extend(
            (0..shared.geometry.raid_disks() * 2)
                .filter(|&role| ctx.read_planner.members().is_present(role))
                .filter_map(|role| shared.role_member(role).map(|m| (role, m))),
        );
        let Err((member, e)) = ctx.sync_members(shared, working.iter().map(|w| w.1)) else {
            break Ok(());
        };
        let Some(&(role, _)) = working.iter().find(|w| w.1 == member) else {
            break Err(io_failed(&e));
        };
        if let Err(e) = member_failed(shared, ctx, role, &e, &mut replans) {
            break Err(e);
        }
    };
    ctx.members_store = working;
    result
}

/// FLUSH: every completed write is on the members' stable storage. Parked
/// partial-stripe writes are not completed, so need not be; they are sent on
/// their way anyway, as md unplugs its queue on a flush.
///
/// It completes only once no member failure waits to be recorded: a failed
/// member is not flushed (it may be gone), so writes acknowledged before it
/// failed may sit in its cache only, and until the metadata says it failed
/// a crash brings it back as current, those writes lost. (md acknowledges
/// such a flush at once; a member failed by hand, whose disk is healthy,
/// shows the window.)
pub(crate) fn flush_all(shared: &Shared) -> Result<(), HostError> {
    shared.ranges.unplug_all();
    let mut ctx = IoCtx::take(shared);
    let mut result = if umd_engine::durability::flush_syncs_members() {
        sync_members(shared, &mut ctx)
    } else {
        Ok(())
    };
    ctx.give_back(shared);
    if result.is_ok() {
        let core = shared.core();
        // Once the md thread is done, its final superblock write recorded
        // every failure: nothing is left to wait for.
        if !core.md_thread_done {
            result = wait_writable(shared, core, Vec::new());
        }
    }
    result
}

/// WRITE_ZEROES: zeroes through the normal write path (parity stays right).
pub(crate) fn write_zeroes(
    shared: &Shared,
    offset: u64,
    len: u64,
    fua: bool,
) -> Result<(), HostError> {
    check_range(shared, offset, len)?;
    let mut done = 0u64;
    while done < len {
        let step = (len - done).min(ZERO_STEP_BYTES as u64) as usize;
        write(shared, offset + done, &ZEROES[..step], false)?;
        done += step as u64;
    }
    if fua {
        flush_all(shared)?;
    }
    Ok(())
}

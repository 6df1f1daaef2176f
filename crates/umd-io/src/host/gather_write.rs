//! The I/O of one gathered write piece: join the stripe's entry, fold the
//! payload into its parity, wait for the decision, write, leave.
//!
//! Why a file of its own: `gather.rs` is the entries' state machine and has
//! no I/O; `io_path.rs` is the ordinary path. This is the one sequence that
//! ties them (state table in `gather.rs`):
//!
//! 1. the piece must be inside one healthy raid4/5 stripe and not cover it
//!    whole (a full stripe needs no gathering);
//! 2. bitmap bits on disk (md's bitmap_startwrite), before anything joins, so
//!    every write of the stripe, parity included, is covered;
//! 3. join (or create) the entry, fold the payload in, give the accumulator back;
//! 4. the flusher reads what nobody contributed, finishes parity, commits, and
//!    writes its data and parity in one batch; every other participant writes
//!    its data after the commit;
//! 5. leave once parity is written; the piece is acknowledged by its request.
//!
//! Any failure before the commit aborts the entry with nothing written, and
//! every participant writes its piece again the ordinary way, planned
//! without the failed member. A failed write after the commit fails the
//! member, and the pieces affected are written again the ordinary way too.

use super::ctx::{member_of, recycle, IoCtx};
use super::gather::{Decision, FlushReason, Join};
use super::io_path::{bitmap_end, bitmap_start, member_failed};
use super::{HostError, Shared};
use crate::batch::Op;
use crate::member_file::IoError;
use std::sync::atomic::Ordering;
use umd_engine::write::gather::{parity_at, Accumulator, Coverage};
use umd_engine::write::BufRef;
use umd_engine::write::PlannedIo;

/// What became of a gathered piece.
pub(super) enum Gathered {
    /// Written and covered by parity: acknowledged with the request.
    Done,
    /// Not gathered, or gathered and then given up: write it the ordinary way.
    Ordinary,
}

/// Write logical `[sector, ..)` (`data`) through its stripe's gathering
/// entry if it is eligible. `successor`: the piece ends a request that
/// continues a sequential stream, so the stream's next write may complete it.
pub(super) fn write_gathered(
    shared: &Shared,
    ctx: &mut IoCtx,
    sector: u64,
    data: &[u8],
    (fua, successor): (bool, bool),
) -> Result<Gathered, HostError> {
    let len = (data.len() / 512) as u64;
    if !shared.ranges.gathering()
        || !ctx
            .write_planner
            .gather_piece(sector, len, &mut ctx.gather.piece)
        || ctx.gather.piece.hi - ctx.gather.piece.lo == ctx.gather.piece.stripe_sectors
    {
        return Ok(Gathered::Ordinary);
    }
    let stripe = ctx.gather.piece.stripe;
    let span = Some((stripe, stripe));
    bitmap_start(shared, sector, len, span)?;
    let join = shared
        .ranges
        .gather_join(&ctx.gather.piece, ctx.generation, fua, successor);
    let Join::Joined {
        slot,
        mut acc,
        completes,
    } = join
    else {
        bitmap_end(shared, sector, len, span);
        return Ok(Gathered::Ordinary);
    };
    acc.contribute(&ctx.gather.piece, data);
    shared.ranges.gather_folded(slot, acc);
    let decision = if completes {
        Decision::Flush(FlushReason::Full)
    } else {
        shared.ranges.gather_decide(slot)
    };
    let written = match decision {
        Decision::Flush(reason) => flush(shared, ctx, slot, data, reason),
        Decision::Committed => {
            let writes = std::mem::take(&mut ctx.gather.piece.writes);
            let outcome = run_writes(shared, ctx, &writes, data, None);
            ctx.gather.piece.writes = writes;
            Ok(outcome)
        }
        Decision::Aborted => Ok(Err(None)),
    };
    let parity_ok = shared.ranges.gather_leave(slot);
    bitmap_end(shared, sector, len, span);
    settle(shared, ctx, written?, parity_ok)
}

/// Turn a piece's write outcome and its entry's parity outcome into done or
/// "write it again the ordinary way", failing the member that failed.
fn settle(
    shared: &Shared,
    ctx: &mut IoCtx,
    written: Result<(), Option<(u32, IoError)>>,
    parity_ok: Option<bool>,
) -> Result<Gathered, HostError> {
    let mut replans = 0usize;
    match written {
        Ok(()) if parity_ok == Some(true) => return Ok(Gathered::Done),
        Ok(()) | Err(None) => {}
        Err(Some((role, e))) => member_failed(shared, ctx, role, &e, &mut replans)?,
    }
    shared.stats.gather_flushes[ABORTED_INDEX].fetch_add(1, Ordering::Relaxed);
    // Another participant may have failed a member: plan with today's members.
    ctx.refresh(shared);
    Ok(Gathered::Ordinary)
}

/// Index of aborted entries and rewritten pieces in `Stats::gather_flushes`.
pub(crate) const ABORTED_INDEX: usize = 4;

/// The flusher's part. `Ok(Err(None))`: aborted, nothing written;
/// `Ok(Err(Some(..)))`: a write failed after the commit.
fn flush(
    shared: &Shared,
    ctx: &mut IoCtx,
    slot: usize,
    data: &[u8],
    reason: FlushReason,
) -> Result<Result<(), Option<(u32, IoError)>>, HostError> {
    let (mut acc, coverage, generation) = shared.ranges.gather_take(slot);
    shared.stats.gather_flushes[reason.index()].fetch_add(1, Ordering::Relaxed);
    let read = read_gaps(shared, ctx, &coverage, generation);
    match read {
        Ok(true) => {}
        Ok(false) => {
            shared.ranges.gather_abort(slot, acc);
            return Ok(Err(None));
        }
        Err((role, e)) => {
            shared.ranges.gather_abort(slot, acc);
            let mut replans = 0usize;
            member_failed(shared, ctx, role, &e, &mut replans)?;
            return Ok(Err(None));
        }
    }
    acc.fold_gaps(&ctx.gather.flush, &ctx.scratch);
    shared.ranges.gather_commit(slot);
    let parity = ctx
        .gather
        .flush
        .parity
        .expect("a planned flush writes parity");
    let writes = std::mem::take(&mut ctx.gather.piece.writes);
    let outcome = run_writes(shared, ctx, &writes, data, Some((parity, &acc)));
    ctx.gather.piece.writes = writes;
    let parity_failed = matches!(&outcome, Err(Some((role, _))) if *role == parity.role);
    if let Err(Some((role, e))) = &outcome {
        // Failed before the entry says Written, so nobody acknowledges a
        // stripe whose failed member is not recorded yet.
        let mut replans = 0usize;
        if let Err(refused) = member_failed(shared, ctx, *role, e, &mut replans) {
            shared.ranges.gather_written(slot, acc, false);
            return Err(refused);
        }
    }
    shared.ranges.gather_written(slot, acc, !parity_failed);
    Ok(outcome)
}

/// Plan and run the flush's reads into scratch. `Ok(false)`: the members
/// changed since the pieces were planned, so the entry must be given up.
fn read_gaps(
    shared: &Shared,
    ctx: &mut IoCtx,
    coverage: &Coverage,
    generation: u64,
) -> Result<bool, (u32, IoError)> {
    if shared.core().members_generation != generation || ctx.generation != generation {
        return Ok(false);
    }
    let planned = ctx.write_planner.plan_gather_flush(
        coverage,
        &mut ctx.gather.flush_piece,
        &mut ctx.gather.flush,
    );
    if !planned {
        return Ok(false);
    }
    ctx.ensure_scratch(ctx.gather.flush.scratch_bytes);
    let reads = std::mem::take(&mut ctx.gather.flush.reads);
    let outcome = if reads.is_empty() {
        Ok(())
    } else {
        ctx.run_planned(shared, &reads, false, &[])
    };
    ctx.gather.flush.reads = reads;
    outcome.map(|()| true)
}

/// Write `writes` (from `data`) and, for the flusher, the parity write from
/// the accumulator, as one batch.
fn run_writes(
    shared: &Shared,
    ctx: &mut IoCtx,
    writes: &[PlannedIo],
    data: &[u8],
    parity: Option<(PlannedIo, &Accumulator)>,
) -> Result<(), Option<(u32, IoError)>> {
    let mut ops = recycle(std::mem::take(&mut ctx.ops_store));
    for w in writes {
        let BufRef::Data { offset_bytes } = w.buf else {
            unreachable!("a piece writes from its payload")
        };
        ops.push(Op::Write {
            member: member_of(shared, w.role),
            offset_bytes: w.device_sector * 512,
            buf: &data[offset_bytes..][..(w.len_sectors * 512) as usize],
        });
    }
    if let Some((p, acc)) = parity {
        ops.push(Op::Write {
            member: member_of(shared, p.role),
            offset_bytes: p.device_sector * 512,
            buf: &acc.bytes()[parity_at(&p)..][..(p.len_sectors * 512) as usize],
        });
    }
    let outcome = ctx.io.run(shared, &mut ops);
    ctx.ops_store = recycle(ops);
    outcome.map_err(|(i, e)| {
        let role = writes.get(i).map_or_else(
            || parity.expect("op past the writes is parity").0.role,
            |w| w.role,
        );
        Some((role, e))
    })
}

//! Several reads at once: every request's direct extents go to the members
//! as one batch, with one request context, one planning pass and one system
//! call (io_uring) for the lot.
//!
//! Why: a front end at queue depth receives many small reads together (the
//! NBD reader takes every small READ already buffered); served one by one,
//! each costs a context from the pool, a plan and a `pread`, and the worker
//! answers them one at a time. Here they share all of it, and the members
//! see them in parallel.
//!
//! Anything unusual goes through the single-request path
//! ([`super::io_path::read_with`]), which owns every rule for it: a request
//! that needs reconstruction (a missing or recovering member), one that is
//! out of range, and, when any member read of the batch fails, every
//! request of the batch (read again on its own, it fails the member and
//! plans around it). So this file adds no failure handling of its own.

use super::ctx::{member_of, recycle, IoCtx};
use super::io_path::{check_range, read_with, READ_OPS_MAX};
use super::{HostError, Shared};
use crate::batch::Op;
use umd_engine::Errno;

/// Read every `(offset, buf)` of `reads`; `failed(i, error)` is called for
/// each request `i` that could not be read (the others are filled).
pub(crate) fn read_many(
    shared: &Shared,
    reads: &mut [(u64, &mut [u8])],
    failed: &mut dyn FnMut(usize, HostError),
) {
    let mut ctx = IoCtx::take(shared);
    if !ctx.array_running {
        ctx.give_back(shared);
        for i in 0..reads.len() {
            failed(i, HostError::new(Errno::EIO, "the array is not running"));
        }
        return;
    }
    ctx.alone.clear();
    let batched = plan_and_run(shared, &mut ctx, reads, failed);
    if !batched {
        // A member read failed: every request in range is read again on its own.
        ctx.alone.clear();
        let valid = |r: &(u64, &mut [u8])| check_range(shared, r.0, r.1.len() as u64).is_ok();
        ctx.alone
            .extend((0..reads.len()).filter(|&i| valid(&reads[i])));
    }
    let alone = std::mem::take(&mut ctx.alone);
    for &i in &alone {
        let (offset, buf) = &mut reads[i];
        if let Err(e) = read_with(shared, &mut ctx, *offset / 512, buf) {
            failed(i, e);
        }
    }
    ctx.alone = alone;
    ctx.give_back(shared);
}

/// Plan the direct extents of every request into one batch and run it.
/// Requests that are not direct all the way go to `ctx.alone`. Returns
/// false if a member read failed.
fn plan_and_run(
    shared: &Shared,
    ctx: &mut IoCtx,
    reads: &mut [(u64, &mut [u8])],
    failed: &mut dyn FnMut(usize, HostError),
) -> bool {
    let mut ops = recycle(std::mem::take(&mut ctx.ops_store));
    for (i, (offset, buf)) in reads.iter_mut().enumerate() {
        if let Err(e) = check_range(shared, *offset, buf.len() as u64) {
            failed(i, e);
            continue;
        }
        let first_op = ops.len();
        let mut rest: &mut [u8] = buf;
        let mut sector = *offset / 512;
        while !rest.is_empty() {
            let remaining = (rest.len() / 512) as u64;
            let planned = ctx.read_planner.plan(sector, remaining, &mut ctx.read_plan);
            let direct = planned.is_ok() && ctx.read_plan.buffers == 1;
            if !direct || ops.len() == READ_OPS_MAX {
                ops.truncate(first_op);
                ctx.alone.push(i);
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
            sector += ctx.read_plan.len_sectors;
        }
    }
    let outcome = if ops.is_empty() {
        Ok(())
    } else {
        ctx.io.run(shared, &mut ops)
    };
    ctx.ops_store = recycle(ops);
    outcome.is_ok()
}

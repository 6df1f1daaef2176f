//! `IoCtx`: the reusable per-request kit — planners, plans, scratch buffers,
//! an I/O batch — so steady-state requests allocate nothing (style R7).
//!
//! Contexts live in a pool; a request pops one, uses it without any lock
//! held, and pushes it back. The pool grows to the number of requests in
//! flight at once and no further.

use super::scratch::Scratch;
use super::{HostError, Shared};
use crate::batch::{BackendKind, Batch, Op};
use crate::member_file::{IoError, MemberFile};
use umd_engine::read::{MemberMap, ReadPlan, ReadPlanner};
use umd_engine::write::gather::{GatherFlush, GatherPiece};
use umd_engine::write::{BufRef, PlannedIo, WritePlan, WritePlanner};
use umd_engine::Errno;

/// Buffers, planners and an I/O batch for one request at a time.
pub(crate) struct IoCtx {
    /// The member generation the planners were built for.
    pub(crate) generation: u64,
    /// Whether the array was running when this context was taken (read
    /// under the same lock as the generation, so a read takes `core` once).
    pub(crate) array_running: bool,
    pub(crate) read_planner: ReadPlanner,
    pub(crate) write_planner: WritePlanner,
    pub(crate) read_plan: ReadPlan,
    pub(crate) write_plan: WritePlan,
    /// Member I/O: the batches and their reusable bookkeeping.
    pub(crate) io: Executor,
    /// Scratch for parity, old data and reconstruction.
    pub(crate) scratch: Scratch,
    /// Extra read buffers for reconstruction (buffer 1.. of a read plan).
    pub(crate) read_buffers: Vec<Vec<u8>>,
    /// Plans of stripe gathering (`gather_write.rs`).
    pub(crate) gather: GatherKit,
    /// I/O indices in submission order (reused).
    order: Vec<usize>,
    /// Roles of a read batch's ops (reused).
    pub(crate) roles_store: Vec<u32>,
    /// Requests of a multi-request read to be read on their own (reused).
    pub(crate) alone: Vec<usize>,
    /// (role, member) of the members a FLUSH syncs (reused).
    pub(crate) members_store: Vec<(u32, usize)>,
    /// Empty; kept only for its capacity (see [`recycle`]).
    pub(crate) ops_store: Vec<Op<'static>>,
}

/// A gathered piece and an entry's flush, planned (reused per request).
#[derive(Default)]
pub(crate) struct GatherKit {
    pub(crate) piece: GatherPiece,
    /// The flush planner's own layout scratch.
    pub(crate) flush_piece: GatherPiece,
    pub(crate) flush: GatherFlush,
}

/// Runs batches of member ops, choosing the back end per batch.
pub(crate) struct Executor {
    /// io_uring (or its fallback) for batches: members work in parallel.
    ring: Batch,
    /// Positional syscalls for a lone op (with one I/O there is nothing to
    /// overlap, and a direct `pread` beats a ring round trip) and for ops on
    /// members where io_uring would punt every op to its worker threads.
    single: Batch,
    /// Throughput over latency (a sync pass): batches go to the ring even on
    /// files that punt to kernel workers, whose threads then copy the
    /// members in parallel. Reset when the context returns to the pool.
    pub(crate) bulk: bool,
    results: Vec<Result<(), IoError>>,
    /// Empty; kept only for its capacity (see [`recycle`]).
    files_store: Vec<Option<&'static MemberFile>>,
}

impl Executor {
    fn new() -> Self {
        Self {
            ring: Batch::new(),
            single: Batch::with_backend(BackendKind::Sync),
            bulk: false,
            results: Vec::new(),
            files_store: Vec::new(),
        }
    }

    /// Run `ops` against the members; the first failure is returned as
    /// (op index, error).
    pub(crate) fn run(
        &mut self,
        shared: &Shared,
        ops: &mut [Op<'_>],
    ) -> Result<(), (usize, IoError)> {
        // The ring only pays where it can complete ops inline or keep a device
        // busy; on files that punt every op to a kernel thread it adds two
        // thread switches to the same copying.
        let punted = ops.iter().all(|op| {
            shared
                .file(op.member())
                .is_some_and(MemberFile::punts_to_workers)
        });
        let batch = if ops.len() == 1 || (punted && !self.bulk) {
            &mut self.single
        } else {
            &mut self.ring
        };
        let mut files: Vec<Option<&MemberFile>> = recycle(std::mem::take(&mut self.files_store));
        files.extend(shared.files.iter().map(std::sync::OnceLock::get));
        self.results.clear();
        self.results.resize_with(ops.len(), || Ok(()));
        batch.run(&files, ops, &mut self.results);
        self.files_store = recycle(files);
        for (i, r) in self.results.iter_mut().enumerate() {
            if let Err(e) = std::mem::replace(r, Ok(())) {
                return Err((i, e));
            }
        }
        Ok(())
    }
}

impl IoCtx {
    fn build(shared: &Shared, generation: u64, map: &MemberMap) -> Self {
        Self {
            generation,
            array_running: true,
            read_planner: ReadPlanner::new(
                shared.geometry.clone(),
                map.clone(),
                shared.array_sectors,
            ),
            write_planner: WritePlanner::new(
                shared.geometry.clone(),
                map.clone(),
                shared.array_sectors,
            ),
            read_plan: ReadPlan::default(),
            write_plan: WritePlan::default(),
            io: Executor::new(),
            scratch: Scratch::default(),
            read_buffers: Vec::new(),
            gather: GatherKit::default(),
            order: Vec::new(),
            roles_store: Vec::new(),
            alone: Vec::new(),
            members_store: Vec::new(),
            ops_store: Vec::new(),
        }
    }

    /// Take a context whose planners match the current members.
    pub(crate) fn take(shared: &Shared) -> IoCtx {
        let pooled = shared
            .ctx_pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let core = shared.core();
        let generation = core.members_generation;
        let array_running = core.array.ro().is_some();
        let mut ctx = match pooled {
            Some(ctx) if ctx.generation == generation => ctx,
            Some(mut ctx) => {
                let map = core.member_map.clone();
                drop(core);
                ctx.read_planner =
                    ReadPlanner::new(shared.geometry.clone(), map.clone(), shared.array_sectors);
                ctx.write_planner =
                    WritePlanner::new(shared.geometry.clone(), map, shared.array_sectors);
                ctx.generation = generation;
                ctx
            }
            None => {
                let map = core.member_map.clone();
                drop(core);
                IoCtx::build(shared, generation, &map)
            }
        };
        ctx.array_running = array_running;
        ctx
    }

    /// Rebuild the planners if the members changed since they were built
    /// (another request failed a member).
    pub(crate) fn refresh(&mut self, shared: &Shared) {
        let core = shared.core();
        if core.members_generation == self.generation {
            return;
        }
        let (generation, map) = (core.members_generation, core.member_map.clone());
        drop(core);
        self.read_planner =
            ReadPlanner::new(shared.geometry.clone(), map.clone(), shared.array_sectors);
        self.write_planner = WritePlanner::new(shared.geometry.clone(), map, shared.array_sectors);
        self.generation = generation;
    }

    /// Return a context to the pool.
    pub(crate) fn give_back(mut self, shared: &Shared) {
        self.io.bulk = false;
        shared
            .ctx_pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(self);
    }

    /// Grow scratch to at least `bytes` (only while warming up).
    pub(crate) fn ensure_scratch(&mut self, bytes: usize) {
        self.scratch.ensure(bytes);
    }

    /// Run `ios` (all reads or all writes) against the members, with bytes
    /// from `data` or `scratch`. On failure returns the role of the first
    /// member that failed, with its error.
    pub(crate) fn run_planned(
        &mut self,
        shared: &Shared,
        ios: &[PlannedIo],
        write: bool,
        data: &[u8],
    ) -> Result<(), (u32, IoError)> {
        // Reads' scratch ranges of one plan are disjoint (the planner's
        // contract); visiting them by increasing offset lets us split
        // scratch into separate mutable slices without copying. Writes only
        // borrow scratch, and two may share bytes (a role's and its
        // replacement's).
        self.order.clear();
        self.order.extend(0..ios.len());
        self.order.sort_unstable_by_key(|&i| match ios[i].buf {
            BufRef::Data { offset_bytes } => (0, offset_bytes),
            BufRef::Scratch { offset_bytes } => (1, offset_bytes),
        });
        let mut ops = recycle(std::mem::take(&mut self.ops_store));
        if write {
            let scratch: &[u8] = &self.scratch[..];
            for &i in &self.order {
                let io = &ios[i];
                let len = (io.len_sectors * 512) as usize;
                let (from, at) = match io.buf {
                    BufRef::Data { offset_bytes } => (data, offset_bytes),
                    BufRef::Scratch { offset_bytes } => (scratch, offset_bytes),
                };
                ops.push(Op::Write {
                    member: member_of(shared, io.role),
                    offset_bytes: io.device_sector * 512,
                    buf: &from[at..at + len],
                });
            }
            let outcome = self.io.run(shared, &mut ops);
            self.ops_store = recycle(ops);
            return outcome.map_err(|(op_index, e)| (ios[self.order[op_index]].role, e));
        }
        let mut scratch_rest: &mut [u8] = &mut self.scratch[..];
        let mut scratch_base = 0usize;
        for &i in &self.order {
            let io = &ios[i];
            let member = member_of(shared, io.role);
            let offset_bytes = io.device_sector * 512;
            let len = (io.len_sectors * 512) as usize;
            match io.buf {
                BufRef::Data { .. } => unreachable!("the planners read only into scratch"),
                BufRef::Scratch { offset_bytes: at } => {
                    assert!(at >= scratch_base, "scratch ranges overlap in one plan");
                    let rest = std::mem::take(&mut scratch_rest);
                    let (_, tail) = rest.split_at_mut(at - scratch_base);
                    let (this, after) = tail.split_at_mut(len);
                    scratch_rest = after;
                    scratch_base = at + len;
                    ops.push(Op::Read {
                        member,
                        offset_bytes,
                        buf: this,
                    });
                }
            }
        }
        // Field-wise borrow: `ops` holds slices of `self.scratch`.
        let outcome = self.io.run(shared, &mut ops);
        self.ops_store = recycle(ops);
        outcome.map_err(|(op_index, e)| (ios[self.order[op_index]].role, e))
    }
}

impl IoCtx {
    /// Sync the data of every present member among `members` to stable storage.
    pub(crate) fn sync_members(
        &mut self,
        shared: &Shared,
        members: impl Iterator<Item = usize>,
    ) -> Result<(), (usize, IoError)> {
        let mut ops = recycle(std::mem::take(&mut self.ops_store));
        for member in members {
            if shared.file(member).is_some() {
                ops.push(Op::SyncData { member });
            }
        }
        let outcome = self.io.run(shared, &mut ops);
        // The failing op's member, read before the ops are recycled.
        let outcome = outcome.map_err(|(i, e)| (ops[i].member(), e));
        self.ops_store = recycle(ops);
        outcome
    }
}

/// The member index holding `role`. Planners only plan present roles.
pub(crate) fn member_of(shared: &Shared, role: u32) -> usize {
    shared
        .role_member(role)
        .expect("planners only plan roles that have a member")
}

/// Reuse a vector's allocation for another lifetime of the same element
/// type: the vector is emptied first, so no value crosses lifetimes, and
/// in-place collection keeps the capacity because the layouts are identical.
pub(crate) fn recycle<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

/// An I/O failure as the front end reports it.
pub(crate) fn io_failed(e: &IoError) -> HostError {
    HostError::new(Errno::EIO, e.to_string())
}

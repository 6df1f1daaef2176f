//! Read errors in the simulated host: a block a member cannot read is
//! rebuilt from the others, rewritten and read back, as the real host does
//! (`umd-io/src/host/read_repair.rs` for a foreground read,
//! `sync_rewrite.rs` for a sync pass), with the same engine calls
//! (`Array::read_error`, then `Array::read_error_corrected`). Only what
//! cannot be rewritten fails the member.
//!
//! Why the simulator needs it: a latent sector (`--latent`) would otherwise
//! always cost a member, and the paths that heal it (a rebuild from parity
//! that may be stale after a crash, a rewrite into a volatile cache that a
//! power loss drops) would never meet a crash point.

use crate::host::SimHost;
use crate::members::Fault;
use umd_engine::array::ReadErrorVerdict;
use umd_engine::read::MemberRead;
use umd_engine::resync::{SyncPlanner, SyncWindow, SYNC_BLOCK_SECTORS};
use umd_engine::write::BufRef;

impl SimHost {
    /// A direct read of `read` (logical sectors from `sector`) failed with
    /// `fault`: rebuild the extent from the other roles, rewrite it and read
    /// it back. `Err` names the member to fail (or the crash).
    pub(crate) fn repair_read(
        &mut self,
        read: &MemberRead,
        sector: u64,
        fault: Fault,
    ) -> Result<(), Fault> {
        let member = self.member_of(read.role);
        let name = self.names[member].clone();
        if self.array.read_error(&name, self.now) == ReadErrorVerdict::Fail {
            return Err(fault);
        }
        let mut planner = self.read_planner.clone();
        planner.mark_failed(read.role);
        let len = read.len_sectors;
        let mut good = vec![0u8; (len * 512) as usize];
        let mut plan = umd_engine::read::ReadPlan::default();
        let mut done = 0;
        while done < len {
            if planner.plan(sector + done, len - done, &mut plan).is_err() {
                return Err(fault);
            }
            let bytes = (plan.len_sectors * 512) as usize;
            let at = (done * 512) as usize;
            let mut extra = vec![vec![0u8; bytes]; plan.buffers - 1];
            for r in &plan.reads {
                let buf = match r.buffer {
                    0 => &mut good[at..at + bytes],
                    b => &mut extra[b - 1][..],
                };
                self.io
                    .read(self.member_of(r.role), r.device_sector * 512, buf)?;
            }
            let mut bufs: Vec<&mut [u8]> = Vec::with_capacity(plan.buffers);
            bufs.push(&mut good[at..at + bytes]);
            bufs.extend(extra.iter_mut().map(|b| &mut b[..]));
            planner.finish(&plan, &mut bufs);
            done += plan.len_sectors;
        }
        self.rewrite_and_verify(member, read.device_sector, &good)?;
        self.array.read_error_corrected(&name, len);
        self.drain_events();
        self.read_errors_rewritten += 1;
        Ok(())
    }

    /// A read of `role` failed in sync `window`: rewrite each of its 4 KiB
    /// sync blocks that fails to read from the other roles. `Err` names the
    /// member to fail (or the crash). Leaves `self.scratch` undefined: the
    /// caller reads the window again.
    pub(crate) fn rewrite_unreadable(
        &mut self,
        planner: &SyncPlanner,
        window: &SyncWindow,
        role: u32,
    ) -> Result<(), Fault> {
        let member = self.member_of(role);
        let name = self.names[member].clone();
        let mut buf = vec![0u8; (SYNC_BLOCK_SECTORS * 512) as usize];
        for block in window.role_blocks(role) {
            let buf = &mut buf[..(block.len_sectors * 512) as usize];
            let Err(fault) = self.io.read(member, block.device_sector * 512, buf) else {
                continue;
            };
            if fault == Fault::Crash
                || self.array.read_error(&name, self.now) == ReadErrorVerdict::Fail
            {
                return Err(fault);
            }
            self.rewrite_block(planner, role, block.position, block.len_sectors, fault)?;
            self.array.read_error_corrected(&name, block.len_sectors);
            self.drain_events();
            self.read_errors_rewritten += 1;
        }
        Ok(())
    }

    /// Rebuild `role`'s blocks at sync positions `[position, position +
    /// len)` from the other roles and rewrite them.
    fn rewrite_block(
        &mut self,
        planner: &SyncPlanner,
        role: u32,
        position: u64,
        len: u64,
        fault: Fault,
    ) -> Result<(), Fault> {
        let mut window = SyncWindow::default();
        let mut writes = Vec::new();
        let mut done = 0;
        while done < len {
            if !planner.plan_rewrite(role, position + done, len - done, &mut window) {
                return Err(fault);
            }
            self.scratch.clear();
            self.scratch.resize(window.scratch_bytes, 0);
            self.run_reads(&window.reads)?;
            writes.clear();
            let mut scratch = std::mem::take(&mut self.scratch);
            planner.finish_recover(&window, &mut scratch, &mut writes);
            self.scratch = scratch;
            for w in &writes {
                let BufRef::Scratch { offset_bytes } = w.buf else {
                    unreachable!("sync windows use scratch only")
                };
                let good = self.scratch[offset_bytes..][..(w.len_sectors * 512) as usize].to_vec();
                self.rewrite_and_verify(self.member_of(role), w.device_sector, &good)?;
            }
            done += window.len;
        }
        Ok(())
    }

    /// Write `good` to `member` at `device_sector` and read it back.
    fn rewrite_and_verify(
        &mut self,
        member: usize,
        device_sector: u64,
        good: &[u8],
    ) -> Result<(), Fault> {
        let at = device_sector * 512;
        self.io.write_batch(&[(member, at, good)])?;
        let mut back = vec![0u8; good.len()];
        self.io.read(member, at, &mut back)?;
        assert!(
            back == good,
            "a simulated disk reads back what it was written"
        );
        Ok(())
    }
}

//! One window of a reshape, performed: read through the old shape, write
//! through the new one, make it durable. The planners decide every member
//! I/O; this only carries it out on the member files.

use super::super::members::Opened;
use umd_engine::reshape::copy::Window;
use umd_engine::reshape::ArrayReadPlanner;
use umd_engine::write::{BufRef, WritePlan, WritePlanner};
use umd_engine::{Assembly, ReadPlan};

/// Sector size in bytes.
const SECTOR: usize = 512;

/// The planners and buffers that move windows, reused from one to the next.
pub(super) struct WindowMover<'a> {
    assembly: &'a Assembly,
    opened: &'a [Opened],
    reader: ArrayReadPlanner,
    writer: WritePlanner,
    read_plan: ReadPlan,
    parts: Vec<Vec<u8>>,
    write_plan: WritePlan,
    data: Vec<u8>,
    scratch: Vec<u8>,
}

impl<'a> WindowMover<'a> {
    /// For the reshape `assembly` records, on its members `opened`.
    pub(super) fn new(assembly: &'a Assembly, opened: &'a [Opened]) -> Option<Self> {
        let reshape = assembly.reshape.as_ref()?;
        Some(Self {
            assembly,
            opened,
            reader: assembly.read_planner(),
            writer: WritePlanner::new(
                reshape.new.clone(),
                assembly.new_member_map(),
                reshape.new.array_sectors(),
            ),
            read_plan: ReadPlan::default(),
            parts: Vec::new(),
            write_plan: WritePlan::default(),
            data: Vec::new(),
            scratch: Vec::new(),
        })
    }

    fn member(&self, role: u32) -> &'a Opened {
        let m = self.assembly.members[role as usize]
            .as_ref()
            .expect("the reshape runs on complete arrays");
        &self.opened[m.index]
    }

    /// Move `w`: after this returns, its new stripes are on every member
    /// and synced; nothing at or above `w.start` was touched in the old
    /// shape (the copy plan's rule).
    pub(super) fn move_window(&mut self, w: &Window) -> Result<(), String> {
        self.data.clear();
        self.data.resize((w.end - w.start) as usize * SECTOR, 0);
        let mut at = w.start;
        while at < w.read_end {
            at += self.read_piece(at, w)?;
        }
        self.writer
            .plan(w.start, w.end - w.start, 0, &mut self.write_plan)
            .map_err(|e| e.to_string())?;
        self.scratch.clear();
        self.scratch.resize(self.write_plan.scratch_bytes, 0);
        for io in &self.write_plan.reads {
            let BufRef::Scratch { offset_bytes } = io.buf else {
                unreachable!("write plans read into scratch")
            };
            let o = self.member(io.role);
            let n = io.len_sectors as usize * SECTOR;
            o.file
                .read_exact_at(
                    io.device_sector * 512,
                    &mut self.scratch[offset_bytes..][..n],
                )
                .map_err(|e| format!("{}: {e}", o.path.display()))?;
        }
        self.writer
            .compute(&self.write_plan, &self.data, &mut self.scratch);
        for io in &self.write_plan.writes {
            let n = io.len_sectors as usize * SECTOR;
            let bytes = match io.buf {
                BufRef::Data { offset_bytes } => &self.data[offset_bytes..][..n],
                BufRef::Scratch { offset_bytes } => &self.scratch[offset_bytes..][..n],
            };
            let o = self.member(io.role);
            o.file
                .write_all_at(io.device_sector * 512, bytes)
                .map_err(|e| format!("{}: {e}", o.path.display()))?;
        }
        for o in self.opened {
            o.file
                .sync_data()
                .map_err(|e| format!("{}: {e}", o.path.display()))?;
        }
        Ok(())
    }

    /// Read the old data of `w` from `at` (as far as one plan goes) into
    /// the window buffer; returns the sectors read.
    fn read_piece(&mut self, at: u64, w: &Window) -> Result<u64, String> {
        self.reader
            .plan(at, w.read_end - at, &mut self.read_plan)
            .map_err(|e| e.to_string())?;
        let plan = &self.read_plan;
        let len = plan.len_sectors as usize * SECTOR;
        if self.parts.len() < plan.buffers {
            self.parts.resize_with(plan.buffers, Vec::new);
        }
        for p in &mut self.parts[..plan.buffers] {
            p.resize(len, 0);
        }
        for r in &plan.reads {
            let o = self.member(r.role);
            o.file
                .read_exact_at(r.device_sector * 512, &mut self.parts[r.buffer])
                .map_err(|e| format!("{}: {e}", o.path.display()))?;
        }
        let mut refs: Vec<&mut [u8]> = self.parts[..plan.buffers]
            .iter_mut()
            .map(Vec::as_mut_slice)
            .collect();
        self.reader.finish(plan, &mut refs);
        let off = (at - w.start) as usize * SECTOR;
        self.data[off..off + len].copy_from_slice(&self.parts[0][..len]);
        Ok(plan.len_sectors)
    }
}

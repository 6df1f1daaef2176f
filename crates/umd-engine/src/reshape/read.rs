//! Reading an array that may be mid-reshape: one read planner per shape,
//! each request split at the reshape position.

use super::{Reshape, Side};
use crate::read::{DataLost, MemberMap, ReadPlan, ReadPlanner};

/// Plans reads of an assembled array, whether or not a reshape is in
/// progress. Without a reshape it is exactly a [`ReadPlanner`].
#[derive(Debug, Clone)]
pub struct ArrayReadPlanner {
    /// The planner of the current shape (the new one during a reshape).
    new: ReadPlanner,
    /// During a reshape: the old shape's planner and the split.
    old: Option<(ReadPlanner, Reshape)>,
    array_sectors: u64,
}

impl ArrayReadPlanner {
    /// A planner for an array in one shape.
    #[must_use]
    pub fn single(planner: ReadPlanner) -> Self {
        let array_sectors = planner.array_sectors();
        Self {
            new: planner,
            old: None,
            array_sectors,
        }
    }

    /// A planner for an array mid-reshape: `old_members` maps the old
    /// shape's roles to their old data offsets, `new_members` the new
    /// shape's roles to their new data offsets.
    #[must_use]
    pub fn reshaping(reshape: Reshape, old_members: MemberMap, new_members: MemberMap) -> Self {
        let array_sectors = reshape.array_sectors();
        let new = ReadPlanner::new(reshape.new.clone(), new_members, array_sectors);
        let old = ReadPlanner::new(reshape.old.clone(), old_members, array_sectors);
        Self {
            new,
            old: Some((old, reshape)),
            array_sectors,
        }
    }

    /// The array's length in sectors.
    #[must_use]
    pub fn array_sectors(&self) -> u64 {
        self.array_sectors
    }

    /// Stop using `role` in both shapes (its device failed a read).
    pub fn mark_failed(&mut self, role: u32) {
        self.new.mark_failed(role);
        if let Some((old, _)) = &mut self.old {
            old.mark_failed(role);
        }
    }

    /// Plan reading from `sector`, at most `max_sectors`; the plan stops at
    /// the reshape position as well as where the mapping does.
    pub fn plan(
        &mut self,
        sector: u64,
        max_sectors: u64,
        plan: &mut ReadPlan,
    ) -> Result<(), DataLost> {
        match &mut self.old {
            None => self.new.plan(sector, max_sectors, plan),
            Some((old, reshape)) => {
                let len = reshape.same_side_len(sector, max_sectors);
                match reshape.side(sector) {
                    Side::New => self.new.plan(sector, len, plan),
                    Side::Old => old.plan(sector, len, plan),
                }
            }
        }
    }

    /// Complete `plan` (see [`ReadPlanner::finish`]).
    pub fn finish(&self, plan: &ReadPlan, buffers: &mut [&mut [u8]]) {
        // The rebuild recipe travels in the plan; either planner runs it.
        self.new.finish(plan, buffers);
    }
}

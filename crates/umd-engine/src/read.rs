//! Read planning: which member ranges to read for a logical range, and how to
//! rebuild what a missing member held.
//!
//! Sans-I/O (style R8): [`ReadPlanner::plan`] turns "read logical sectors
//! here" into a [`ReadPlan`] of member reads into numbered buffers; the caller
//! performs them and hands the buffers to [`ReadPlanner::finish`], which runs
//! parity reconstruction when a member was missing. Buffer 0 always ends up
//! holding the requested data. When a member read fails, the caller reports
//! it with [`ReadPlanner::mark_failed`] and plans again: the new plan avoids
//! that member, so unreadable members degrade the array instead of failing it.
//!
//! Plans reuse their vectors, so a caller that keeps one `ReadPlan` allocates
//! nothing per request once warmed up (style R7).

use std::fmt;
use umd_layout::geometry::{Copy, Geometry, Level, StripeLayout, Target};
use umd_layout::parity;

/// Where each role's data lives and up to where it is valid.
///
/// A role may also have a replacement (md's hot replace): a second member
/// being filled with the role's data while the first still serves it. It is
/// addressed as the role id `role_count() + role` (see
/// [`Self::replacement_of`]), so a planned I/O names it like any role: reads
/// never use it, writes to its role are written to it too, and recovery fills
/// it from the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMap {
    /// `roles[role]` = `(data_offset_sectors, valid_below_sectors)`, or `None`
    /// when the role has no usable member; the second half holds the
    /// replacements.
    roles: Vec<Option<(u64, Option<u64>)>>,
    /// Bad ranges `(role, first member sector, sectors)`: never read (md's
    /// `is_badblock`); usually empty.
    bad: Vec<(u32, u64, u64)>,
}

impl MemberMap {
    /// A map from per-role `(data_offset, recovery_offset)` pairs, with no
    /// replacements.
    #[must_use]
    pub fn new(mut roles: Vec<Option<(u64, Option<u64>)>>) -> Self {
        roles.resize(roles.len() * 2, None);
        Self {
            roles,
            bad: Vec::new(),
        }
    }

    /// The role id that addresses `role`'s replacement.
    #[must_use]
    pub fn replacement_of(&self, role: u32) -> u32 {
        assert!(
            (role as usize) < self.role_count(),
            "role {role} out of range"
        );
        role + self.role_count() as u32
    }

    /// Member sectors `[start, start + len)` of `role` (from its data
    /// offset) hold no good data: plans read them elsewhere.
    pub fn add_bad(&mut self, role: u32, start_sectors: u64, len_sectors: u64) {
        assert!(len_sectors > 0, "an empty bad range");
        if !self.bad.contains(&(role, start_sectors, len_sectors)) {
            self.bad.push((role, start_sectors, len_sectors));
        }
    }

    /// Stop using `role`: its member failed or left the array.
    pub fn mark_missing(&mut self, role: u32) {
        if let Some(slot) = self.roles.get_mut(role as usize) {
            *slot = None;
        }
    }

    /// `role`'s member from now on: `(data offset, valid below)`; `None`
    /// valid-below means fully in sync. `role` must be within the map (a
    /// replacement's id included).
    pub fn set_role(&mut self, role: u32, member: (u64, Option<u64>)) {
        let slot = self
            .roles
            .get_mut(role as usize)
            .expect("set_role within the array's roles");
        *slot = Some(member);
    }

    /// Whether `role` has a usable member.
    #[must_use]
    pub fn is_present(&self, role: u32) -> bool {
        matches!(self.roles.get(role as usize), Some(Some(_)))
    }

    /// `role`'s `(data_offset_sectors, valid_below_sectors)`, or `None` when
    /// it has no usable member.
    #[must_use]
    pub fn role(&self, role: u32) -> Option<(u64, Option<u64>)> {
        self.roles.get(role as usize).copied().flatten()
    }

    /// Number of roles (replacements not counted).
    #[must_use]
    pub fn role_count(&self) -> usize {
        self.roles.len() / 2
    }

    /// Whether `role` can supply member sectors `[dev_sector, dev_sector + len)`.
    fn usable(&self, role: u32, dev_sector: u64, len_sectors: u64) -> bool {
        let bad = self.bad.iter().any(|&(r, start, len)| {
            r == role && start < dev_sector + len_sectors && dev_sector < start + len
        });
        if bad {
            return false;
        }
        match self.roles.get(role as usize) {
            Some(Some((_, None))) => true,
            Some(Some((_, Some(valid_below)))) => dev_sector + len_sectors <= *valid_below,
            _ => false,
        }
    }

    fn data_offset(&self, role: u32) -> u64 {
        match self.roles.get(role as usize) {
            Some(Some((offset, _))) => *offset,
            _ => unreachable!("data_offset of an unusable role {role}"),
        }
    }
}

/// One member read: `len_sectors` at absolute `device_sector` of `role`'s
/// device, into buffer `buffer` (each buffer is the plan's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRead {
    /// The role whose device to read.
    pub role: u32,
    /// Absolute device sector (data offset included).
    pub device_sector: u64,
    /// Sectors to read.
    pub len_sectors: u64,
    /// Buffer index (0 = the caller's output).
    pub buffer: usize,
}

/// How to turn the buffers into the requested data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Rebuild {
    /// Buffer 0 was read directly.
    #[default]
    Direct,
    /// raid4/5: buffer 0 = XOR of buffers 1..count.
    Xor {
        /// Number of buffers in use, output included.
        count: usize,
    },
    /// raid6: buffers 0..blocks are data slots in Q order, then P, then Q;
    /// `missing` lists the lost ones (one of which is the output).
    Raid6 {
        /// Slot-ordered position of the output data block.
        output_slot: usize,
        /// Number of blocks (q_slot_count + 2).
        blocks: usize,
        /// Lost blocks, sorted.
        missing: [usize; 2],
        /// How many of `missing` are used (1 or 2).
        missing_count: usize,
        /// Slots that hold no data (DDF P/Q positions): zero-filled.
        zero_slots: Vec<usize>,
    },
}

/// The reads for one contiguous run of logical sectors.
#[derive(Debug, Clone, Default)]
pub struct ReadPlan {
    /// Logical sector the plan starts at.
    pub sector: u64,
    /// Logical sectors it covers (every buffer is this long).
    pub len_sectors: u64,
    /// Member reads to perform, any order, in parallel.
    pub reads: Vec<MemberRead>,
    /// Number of buffers the caller must provide.
    pub buffers: usize,
    rebuild: Rebuild,
}

/// A logical range that cannot be read from the members left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLost {
    /// First logical sector affected.
    pub sector: u64,
    /// Roles that would be needed but are unusable.
    pub roles: Vec<u32>,
}

impl fmt::Display for DataLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "array sector {} cannot be read: roles {:?} are missing or unreadable",
            self.sector, self.roles
        )
    }
}

impl std::error::Error for DataLost {}

/// Plans reads of one assembled array.
#[derive(Debug, Clone)]
pub struct ReadPlanner {
    geometry: Geometry,
    members: MemberMap,
    array_sectors: u64,
    copies: Vec<Copy>,
    stripe: StripeLayout,
}

impl ReadPlanner {
    /// A planner for `geometry` over `members`, reading at most `array_sectors`.
    #[must_use]
    pub fn new(geometry: Geometry, members: MemberMap, array_sectors: u64) -> Self {
        assert!(
            array_sectors <= geometry.array_sectors(),
            "array longer than its geometry"
        );
        Self {
            geometry,
            members,
            array_sectors,
            copies: Vec::new(),
            stripe: StripeLayout::default(),
        }
    }

    /// The members this planner plans for.
    #[must_use]
    pub fn members(&self) -> &MemberMap {
        &self.members
    }

    /// The array's length in sectors.
    #[must_use]
    pub fn array_sectors(&self) -> u64 {
        self.array_sectors
    }

    /// Stop using `role` (its device failed a read); later plans avoid it.
    pub fn mark_failed(&mut self, role: u32) {
        if let Some(slot) = self.members.roles.get_mut(role as usize) {
            *slot = None;
        }
    }

    /// Plan reading from logical `sector`, at most `max_sectors`, into `plan`.
    /// The plan may cover fewer sectors (it stops where the mapping does);
    /// call again from `plan.sector + plan.len_sectors` for the rest.
    pub fn plan(
        &mut self,
        sector: u64,
        max_sectors: u64,
        plan: &mut ReadPlan,
    ) -> Result<(), DataLost> {
        assert!(
            sector < self.array_sectors,
            "read at {sector} past the array end"
        );
        assert!(max_sectors > 0, "empty read");
        let extent = self.geometry.locate(sector, &mut self.copies);
        let len = extent
            .len_sectors
            .min(max_sectors)
            .min(self.array_sectors - sector);
        plan.sector = sector;
        plan.len_sectors = len;
        plan.reads.clear();
        plan.rebuild = Rebuild::Direct;
        plan.buffers = 1;
        match extent.target {
            Target::Single(copy) => self.plan_direct(sector, copy, len, plan),
            Target::Mirrored => {
                let copy = self
                    .copies
                    .iter()
                    .copied()
                    .find(|c| self.members.usable(c.role, c.dev_sector, len));
                match copy {
                    Some(copy) => self.plan_direct(sector, copy, len, plan),
                    None => Err(DataLost {
                        sector,
                        roles: self.copies.iter().map(|c| c.role).collect(),
                    }),
                }
            }
            Target::Striped { data, stripe } => self.plan_striped(sector, data, stripe, len, plan),
        }?;
        assert!(
            plan.len_sectors > 0 && !plan.reads.is_empty(),
            "a plan reads something"
        );
        Ok(())
    }

    fn plan_direct(
        &self,
        sector: u64,
        copy: Copy,
        len: u64,
        plan: &mut ReadPlan,
    ) -> Result<(), DataLost> {
        if !self.members.usable(copy.role, copy.dev_sector, len) {
            return Err(DataLost {
                sector,
                roles: vec![copy.role],
            });
        }
        plan.reads.push(MemberRead {
            role: copy.role,
            device_sector: self.members.data_offset(copy.role) + copy.dev_sector,
            len_sectors: len,
            buffer: 0,
        });
        Ok(())
    }

    fn plan_striped(
        &mut self,
        sector: u64,
        data: Copy,
        stripe: u64,
        len: u64,
        plan: &mut ReadPlan,
    ) -> Result<(), DataLost> {
        let dev_sector = data.dev_sector;
        if self.members.usable(data.role, dev_sector, len) {
            return self.plan_direct(sector, data, len, plan);
        }
        self.geometry.stripe_layout(stripe, &mut self.stripe);
        let usable = |role: u32| self.members.usable(role, dev_sector, len);
        if self.geometry.level() == Level::Raid6 {
            return self.plan_raid6(sector, data, len, plan);
        }
        // raid4/5: XOR every other data chunk and P into buffer 0.
        let mut buffer = 1;
        let others = self
            .stripe
            .data_roles
            .iter()
            .copied()
            .filter(|&r| r != data.role);
        for role in others.chain(std::iter::once(self.stripe.p_role)) {
            if !usable(role) {
                return Err(DataLost {
                    sector,
                    roles: vec![data.role, role],
                });
            }
            plan.reads.push(MemberRead {
                role,
                device_sector: self.members.data_offset(role) + dev_sector,
                len_sectors: len,
                buffer,
            });
            buffer += 1;
        }
        plan.buffers = buffer;
        plan.rebuild = Rebuild::Xor { count: buffer };
        Ok(())
    }

    /// raid6: lay the stripe out as its Q slots, P and Q; read what is usable
    /// into slot-numbered buffers; rebuild up to two lost blocks.
    fn plan_raid6(
        &mut self,
        sector: u64,
        data: Copy,
        len: u64,
        plan: &mut ReadPlan,
    ) -> Result<(), DataLost> {
        let layout = &self.stripe;
        let slots = layout.q_slot_count as usize;
        let blocks = slots + 2;
        let q_role = layout.q_role.expect("raid6 stripe has a Q role");
        // Buffer of slot z is z + 1 shifted so that the output is buffer 0:
        // map block index -> buffer index by swapping the output slot with 0.
        let output_slot = layout
            .data_roles
            .iter()
            .position(|&r| r == data.role)
            .map(|j| layout.q_slots[j] as usize)
            .expect("data role belongs to its stripe");
        let buffer_of = |block: usize| match block {
            b if b == output_slot => 0,
            0 => output_slot,
            b => b,
        };
        let mut missing = [0usize; 2];
        let mut missing_count = 0;
        let mut lost_roles = Vec::new();
        let mut zero_slots: Vec<usize> = (0..slots).collect();
        let roles_by_block = layout
            .data_roles
            .iter()
            .zip(&layout.q_slots)
            .map(|(&role, &z)| (z as usize, role))
            .chain([(slots, layout.p_role), (slots + 1, q_role)]);
        for (block, role) in roles_by_block {
            zero_slots.retain(|&z| z != block);
            if self.members.usable(role, data.dev_sector, len) {
                plan.reads.push(MemberRead {
                    role,
                    device_sector: self.members.data_offset(role) + data.dev_sector,
                    len_sectors: len,
                    buffer: buffer_of(block),
                });
            } else {
                lost_roles.push(role);
                if missing_count == 2 {
                    return Err(DataLost {
                        sector,
                        roles: lost_roles,
                    });
                }
                missing[missing_count] = block;
                missing_count += 1;
            }
        }
        missing[..missing_count].sort_unstable();
        assert!(
            missing[..missing_count].contains(&output_slot),
            "the output block is lost"
        );
        plan.buffers = blocks;
        plan.rebuild = Rebuild::Raid6 {
            output_slot,
            blocks,
            missing,
            missing_count,
            zero_slots: zero_slots.into_iter().map(buffer_of).collect(),
        };
        Ok(())
    }

    /// Complete `plan` once its reads are in `buffers` (each
    /// `plan.len_sectors` x 512 bytes, `plan.buffers` of them): afterwards
    /// buffer 0 holds the requested data.
    pub fn finish(&self, plan: &ReadPlan, buffers: &mut [&mut [u8]]) {
        assert!(
            buffers.len() >= plan.buffers,
            "too few buffers for the plan"
        );
        let len_bytes = (plan.len_sectors * 512) as usize;
        assert!(
            buffers[..plan.buffers].iter().all(|b| b.len() == len_bytes),
            "buffer length"
        );
        match &plan.rebuild {
            Rebuild::Direct => {}
            Rebuild::Xor { count } => parity::raid5_recover(&mut buffers[..*count], 0),
            Rebuild::Raid6 {
                output_slot,
                blocks,
                missing,
                missing_count,
                zero_slots,
            } => {
                for &z in zero_slots {
                    buffers[z].fill(0);
                }
                // Put blocks back in slot order: buffer 0 <-> output slot.
                buffers[..*blocks].swap(0, *output_slot);
                parity::raid6_recover(&mut buffers[..*blocks], &missing[..*missing_count]);
                buffers[..*blocks].swap(0, *output_slot);
            }
        }
    }
}

#[cfg(test)]
mod tests;

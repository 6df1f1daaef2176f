//! Writes executed against an in-memory model array read back as written,
//! keep parity equal to the scalar reference and mirrors equal, and never
//! touch a missing role; mode choice on examples.

use super::*;
use crate::read::{ReadPlan, ReadPlanner};
use proptest::prelude::*;
use umd_layout::geometry::{GeometrySpec, Raid0Layout};
use umd_layout::parity::scalar;

const SECTOR: usize = SECTOR_BYTES;

/// An array in memory: member images (data offset included) and the roles map.
pub(crate) struct Model {
    pub(crate) geometry: Geometry,
    pub(crate) members: Vec<Vec<u8>>,
    /// Per role: None = missing, else (data offset, recovery offset); a
    /// test may append one entry per role for replacements (ids
    /// `raid_disks + role`, with their images appended to `members`).
    pub(crate) roles: Vec<Option<(u64, Option<u64>)>>,
}

impl Model {
    pub(crate) fn new(spec: &GeometrySpec, offsets: &[u64]) -> Option<Self> {
        let geometry = Geometry::new(spec).ok()?;
        let n = spec.raid_disks as usize;
        let members = (0..n)
            .map(|r| {
                let used = geometry.member_used_sectors(r as u32) + offsets[r];
                vec![0u8; used as usize * SECTOR]
            })
            .collect();
        let roles = (0..n).map(|r| Some((offsets[r], None))).collect();
        Some(Self {
            geometry,
            members,
            roles,
        })
    }

    pub(crate) fn map(&self) -> MemberMap {
        let n = self.geometry.raid_disks() as usize;
        let mut map = MemberMap::new(self.roles[..n].to_vec());
        for (id, entry) in self.roles.iter().enumerate().skip(n) {
            if let Some(entry) = entry {
                map.set_role(id as u32, *entry);
            }
        }
        map
    }

    fn check_usable(&self, io: &PlannedIo, reading: bool) {
        let entry = self.roles[io.role as usize];
        let (offset, valid_below) = entry.expect("I/O to a missing role");
        assert!(io.device_sector >= offset, "I/O below the data offset");
        if reading {
            if let Some(valid) = valid_below {
                assert!(
                    io.device_sector + io.len_sectors <= offset + valid,
                    "read past recovery"
                );
            }
        }
    }

    /// Read into `scratch` every planned read.
    pub(crate) fn do_reads(&self, reads: &[PlannedIo], scratch: &mut [u8]) {
        for io in reads {
            assert!(
                io.role < self.geometry.raid_disks(),
                "a replacement is never read"
            );
            self.check_usable(io, true);
            let BufRef::Scratch { offset_bytes } = io.buf else {
                panic!("read into data")
            };
            let len = io.len_sectors as usize * SECTOR;
            let at = io.device_sector as usize * SECTOR;
            scratch[offset_bytes..][..len]
                .copy_from_slice(&self.members[io.role as usize][at..][..len]);
        }
    }

    /// Apply every planned write; asserts no two overlap on a member.
    pub(crate) fn do_writes(&mut self, writes: &[PlannedIo], data: &[u8], scratch: &[u8]) {
        let mut spans: Vec<(u32, u64, u64)> = writes
            .iter()
            .map(|w| (w.role, w.device_sector, w.len_sectors))
            .collect();
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(
                pair[0].0 != pair[1].0 || pair[0].1 + pair[0].2 <= pair[1].1,
                "overlapping writes {pair:?}"
            );
        }
        for io in writes {
            self.check_usable(io, false);
            let len = io.len_sectors as usize * SECTOR;
            let src = match io.buf {
                BufRef::Data { offset_bytes } => &data[offset_bytes..][..len],
                BufRef::Scratch { offset_bytes } => &scratch[offset_bytes..][..len],
            };
            let at = io.device_sector as usize * SECTOR;
            self.members[io.role as usize][at..][..len].copy_from_slice(src);
        }
    }

    /// Every logical sector through the read planner.
    pub(crate) fn read_all(&self) -> Vec<u8> {
        let mut planner = ReadPlanner::new(
            self.geometry.clone(),
            self.map(),
            self.geometry.array_sectors(),
        );
        let mut out = Vec::new();
        let mut plan = ReadPlan::default();
        let mut sector = 0;
        while sector < planner.array_sectors() {
            planner
                .plan(sector, 1 << 20, &mut plan)
                .expect("readable within redundancy");
            let len = plan.len_sectors as usize * SECTOR;
            let mut bufs = vec![vec![0xeeu8; len]; plan.buffers];
            for r in &plan.reads {
                let at = r.device_sector as usize * SECTOR;
                bufs[r.buffer].copy_from_slice(&self.members[r.role as usize][at..][..len]);
            }
            let mut refs: Vec<&mut [u8]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
            planner.finish(&plan, &mut refs);
            out.extend_from_slice(&bufs[0]);
            sector += plan.len_sectors;
        }
        out
    }

    /// Parity equals the scalar reference on every stripe; mirrors are equal.
    pub(crate) fn assert_consistent(&self) {
        let g = &self.geometry;
        let off = |r: u32| {
            self.roles[r as usize]
                .expect("consistency needs every role")
                .0
        };
        match g.level() {
            Level::Raid4 | Level::Raid5 | Level::Raid6 => {
                let chunk = u64::from(g.chunk_sectors());
                let mut layout = StripeLayout::default();
                for stripe in 0..g.member_used_sectors(0) / chunk {
                    g.stripe_layout(stripe, &mut layout);
                    let raid6 = layout.q_role.is_some();
                    let slots = if raid6 {
                        layout.q_slot_count as usize
                    } else {
                        layout.data_roles.len()
                    };
                    let len = chunk as usize * SECTOR;
                    let mut blocks = vec![vec![0u8; len]; slots];
                    let at = |r: u32| (off(r) + stripe * chunk) as usize * SECTOR;
                    for (j, &r) in layout.data_roles.iter().enumerate() {
                        let slot = if raid6 { layout.q_slots[j] as usize } else { j };
                        blocks[slot].copy_from_slice(&self.members[r as usize][at(r)..][..len]);
                    }
                    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
                    let (mut p, mut q) = (vec![0u8; len], vec![0u8; len]);
                    scalar::pq_gen(&refs, &mut p, &mut q);
                    let p_role = layout.p_role;
                    assert!(
                        self.members[p_role as usize][at(p_role)..][..len] == p[..],
                        "P of stripe {stripe}"
                    );
                    if let Some(q_role) = layout.q_role {
                        assert!(
                            self.members[q_role as usize][at(q_role)..][..len] == q[..],
                            "Q of stripe {stripe}"
                        );
                    }
                }
            }
            Level::Raid1 | Level::Raid10 => {
                let mut copies = Vec::new();
                let mut sector = 0;
                while sector < g.array_sectors() {
                    let extent = g.locate(sector, &mut copies);
                    let len = extent.len_sectors as usize * SECTOR;
                    let bytes = |c: &Copy| {
                        let at = (off(c.role) + c.dev_sector) as usize * SECTOR;
                        &self.members[c.role as usize][at..][..len]
                    };
                    let first = bytes(&copies[0]);
                    assert!(
                        copies.iter().all(|c| bytes(c) == first),
                        "copies of {sector} differ"
                    );
                    sector += extent.len_sectors;
                }
            }
            Level::Linear | Level::Raid0 => {}
        }
    }
}

pub(crate) fn spec(
    level: i32,
    layout: u32,
    disks: u32,
    chunk: u32,
    sizes: Vec<u64>,
) -> GeometrySpec {
    GeometrySpec {
        level,
        layout,
        chunk_sectors: chunk,
        raid_disks: disks,
        component_sectors: sizes[0],
        member_sectors: sizes,
        raid0_layout: Some(Raid0Layout::Original),
    }
}

/// (level, layout, minimum disks) of every combination formats.md §4 covers.
pub(crate) const SHAPES: &[(i32, u32, u32)] = &[
    (-1, 0, 1),
    (0, 0, 1),
    (1, 0, 1),
    (4, 0, 2),
    (5, 0, 2),
    (5, 1, 2),
    (5, 2, 2),
    (5, 3, 2),
    (5, 4, 2),
    (5, 5, 2),
    (6, 0, 4),
    (6, 1, 4),
    (6, 2, 4),
    (6, 3, 4),
    (6, 4, 4),
    (6, 5, 4),
    (6, 8, 4),
    (6, 9, 4),
    (6, 10, 4),
    (6, 16, 4),
    (6, 17, 4),
    (6, 18, 4),
    (6, 19, 4),
    (6, 20, 4),
    (10, 0x102, 2),
    (10, 0x103, 3),
    (10, 0x201, 2),
    (10, 0x202, 4),
    (10, 0x10201, 2),
    (10, 0x10202, 4),
    (10, 0x20201, 4),
    (10, 0x40201, 4),
];

/// How many roles may be missing with all data still readable.
pub(crate) fn tolerance(g: &Geometry) -> usize {
    match g.level() {
        Level::Raid1 => g.raid_disks() as usize - 1,
        Level::Raid10 => 1,
        level => level.parity_members() as usize,
    }
}

/// Plan, read, compute and write `data` at logical sector `at` through
/// `planner` into `model`.
pub(crate) fn write_once(
    model: &mut Model,
    planner: &WritePlanner,
    at: u64,
    data: &[u8],
    unsynced: u64,
) {
    let mut plan = WritePlan::default();
    let len = (data.len() / SECTOR) as u64;
    planner
        .plan(at, len, unsynced, &mut plan)
        .expect("within redundancy");
    if unsynced == 0 {
        assert_eq!(
            plan.modes[StripeMode::ReadModifyWrite.index()],
            0,
            "rmw on unsynced"
        );
    }
    let mut scratch = vec![0xa5u8; plan.scratch_bytes];
    model.do_reads(&plan.reads, &mut scratch);
    planner.compute(&plan, data, &mut scratch);
    model.do_writes(&plan.writes, data, &scratch);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn writes_read_back_and_keep_redundancy(
        shape in 0..SHAPES.len(),
        extra_disks in 0u32..4,
        chunk_shift in 0u32..2,
        chunks_per_member in 2u64..6,
        sizes_vary in any::<bool>(),
        offsets in proptest::collection::vec(prop_oneof![Just(0u64), Just(8u64)], 8),
        lost in proptest::collection::vec((0u32..8, any::<bool>(), 0u64..64), 0..3),
        unsynced_choice in 0u8..3,
        ops in proptest::collection::vec((any::<u64>(), 1u64..80, any::<u64>()), 1..12),
    ) {
        let (level, layout, min_disks) = SHAPES[shape];
        let disks = min_disks + extra_disks;
        let chunk = 8u32 << chunk_shift;
        let size = u64::from(chunk) * chunks_per_member;
        let sizes: Vec<u64> = (0..u64::from(disks))
            .map(|r| if sizes_vary && level <= 0 { size + (r % 2) * u64::from(chunk) } else { size })
            .collect();
        let chunk = if level == 1 || level == -1 { 0 } else { chunk };
        let Some(mut model) = Model::new(&spec(level, layout, disks, chunk, sizes), &offsets) else {
            return Ok(());
        };
        let mut all_present = true;
        for &(role, recovering, valid) in lost.iter().take(tolerance(&model.geometry)) {
            let role = (role % disks) as usize;
            if let Some((offset, _)) = model.roles[role] {
                all_present = false;
                model.roles[role] = recovering.then_some((offset, Some(valid)));
            }
        }
        let planner = WritePlanner::new(model.geometry.clone(), model.map(), model.geometry.array_sectors());
        let array = model.geometry.array_sectors();
        let mut logical = vec![0u8; array as usize * SECTOR];
        for (i, &(start, len, seed)) in ops.iter().enumerate() {
            let start = start % array;
            let len = len.min(array - start);
            let mut state = seed;
            let data: Vec<u8> = (0..len as usize * SECTOR)
                .map(|_| { state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1); (state >> 33) as u8 })
                .collect();
            let unsynced = match unsynced_choice { 0 => u64::MAX, 1 => 0, _ => i as u64 };
            write_once(&mut model, &planner, start, &data, unsynced);
            logical[start as usize * SECTOR..][..data.len()].copy_from_slice(&data);
        }
        prop_assert!(model.read_all() == logical, "read back differs");
        if all_present {
            model.assert_consistent();
        }
    }
}

fn raid5(disks: u32) -> Model {
    Model::new(&spec(5, 2, disks, 8, vec![64; disks as usize]), &[0; 8]).expect("valid")
}

fn plan_of(model: &Model, sector: u64, len: u64, unsynced: u64) -> WritePlan {
    let planner = WritePlanner::new(
        model.geometry.clone(),
        model.map(),
        model.geometry.array_sectors(),
    );
    let mut plan = WritePlan::default();
    planner
        .plan(sector, len, unsynced, &mut plan)
        .expect("healthy");
    plan
}

#[test]
fn full_stripe_reads_nothing() {
    let model = raid5(5);
    let plan = plan_of(&model, 32, 32, u64::MAX);
    assert!(plan.reads.is_empty());
    assert_eq!(plan.modes[StripeMode::FullStripe.index()], 1);
    assert_eq!(plan.stripes, Some((1, 1)));
    assert_eq!(plan.writes.len(), 5, "four data chunks and P");
}

#[test]
fn one_sector_on_wide_raid5_is_rmw_and_unsynced_is_rcw() {
    let model = raid5(6);
    let plan = plan_of(&model, 3, 1, u64::MAX);
    assert_eq!(plan.modes[StripeMode::ReadModifyWrite.index()], 1);
    assert_eq!(plan.reads.len(), 2, "old data and P, one sector each");
    assert!(plan.reads.iter().all(|r| r.len_sectors == 1));
    let plan = plan_of(&model, 3, 1, 0);
    assert_eq!(plan.modes[StripeMode::ReconstructWrite.index()], 1);
    assert_eq!(plan.reads.len(), 4, "the four untouched data chunks");
}

#[test]
fn rcw_on_unsynced_stripe_fixes_bad_parity() {
    let mut model = raid5(5);
    model.members[4][0] = 0x55; // stripe 0's P (left-symmetric: P on role 4)
    let planner = WritePlanner::new(model.geometry.clone(), model.map(), 256);
    let data = vec![7u8; SECTOR];
    write_once(&mut model, &planner, 0, &data, 0);
    model.assert_consistent();
}

#[test]
fn degraded_write_never_touches_the_missing_role() {
    let mut model = raid5(4);
    model.roles[1] = None;
    let plan = plan_of(&model, 0, 64, u64::MAX);
    assert!(plan.writes.iter().chain(&plan.reads).all(|io| io.role != 1));
    assert!(plan.modes[StripeMode::Degraded.index()] >= 1);
    model.roles[2] = None;
    let planner = WritePlanner::new(model.geometry.clone(), model.map(), 192);
    assert!(planner
        .plan(0, 8, u64::MAX, &mut WritePlan::default())
        .is_err());
}

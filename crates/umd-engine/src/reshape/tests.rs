//! The copy plan is checked the way a crash would check it: members in
//! memory, the old shape filled through the write planner, then every
//! window copied through the read and write planners. Right after a
//! window's writes (the process could die there, before the checkpoint)
//! and again after the checkpoint moved, reading the array through both
//! shapes at the recorded position must give back exactly the data
//! written, with zeros past the old end. At the end the new shape alone
//! reads it all and its parity matches the scalar reference.

use super::copy::{stripe_sectors, CopyPlanner};
use super::*;
use crate::read::{MemberMap, ReadPlan};
use crate::write::tests::spec;
use crate::write::{BufRef, PlannedIo, WritePlan, WritePlanner};
use proptest::prelude::*;

const SECTOR: usize = 512;

fn geometry(level: i32, layout: u32, chunk: u32, disks: u32, component: u64) -> Geometry {
    let sizes = vec![component; disks as usize];
    Geometry::new(&spec(level, layout, disks, chunk, sizes)).expect("valid test geometry")
}

struct Members(Vec<Vec<u8>>);

impl Members {
    fn read(&self, role: u32, sector: u64, buf: &mut [u8]) {
        let at = sector as usize * SECTOR;
        buf.copy_from_slice(&self.0[role as usize][at..][..buf.len()]);
    }

    fn write_plan(&mut self, planner: &WritePlanner, sector: u64, data: &[u8]) {
        let mut plan = WritePlan::default();
        let len = (data.len() / SECTOR) as u64;
        planner
            .plan(sector, len, 0, &mut plan)
            .expect("healthy array");
        let mut scratch = vec![0u8; plan.scratch_bytes];
        for io in &plan.reads {
            let BufRef::Scratch { offset_bytes } = io.buf else {
                panic!("reads land in scratch")
            };
            let n = io.len_sectors as usize * SECTOR;
            self.read(io.role, io.device_sector, &mut scratch[offset_bytes..][..n]);
        }
        planner.compute(&plan, data, &mut scratch);
        for io in &plan.writes {
            self.apply(io, data, &scratch);
        }
    }

    fn apply(&mut self, io: &PlannedIo, data: &[u8], scratch: &[u8]) {
        let n = io.len_sectors as usize * SECTOR;
        let src = match io.buf {
            BufRef::Data { offset_bytes } => &data[offset_bytes..][..n],
            BufRef::Scratch { offset_bytes } => &scratch[offset_bytes..][..n],
        };
        let at = io.device_sector as usize * SECTOR;
        self.0[io.role as usize][at..][..n].copy_from_slice(src);
    }

    fn read_array(&self, planner: &mut ArrayReadPlanner, start: u64, end: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut plan = ReadPlan::default();
        let mut sector = start;
        while sector < end {
            planner
                .plan(sector, end - sector, &mut plan)
                .expect("healthy array");
            let len = plan.len_sectors as usize * SECTOR;
            let mut bufs = vec![vec![0u8; len]; plan.buffers];
            for r in &plan.reads {
                self.read(r.role, r.device_sector, &mut bufs[r.buffer]);
            }
            let mut refs: Vec<&mut [u8]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
            planner.finish(&plan, &mut refs);
            out.extend_from_slice(&bufs[0]);
            sector += plan.len_sectors;
        }
        out
    }
}

fn map(offsets: &[u64], roles: u32) -> MemberMap {
    MemberMap::new(
        (0..roles as usize)
            .map(|r| offsets.get(r).map(|&o| (o, None)))
            .collect(),
    )
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

struct Case {
    level: i32,
    layout: u32,
    old_chunk: u32,
    new_chunk: u32,
    old_disks: u32,
    new_disks: u32,
    component: u64,
    gap: u64,
    max_window: u64,
}

/// Runs the whole reshape of `case`, checking after every step; returns
/// the number of windows.
fn reshape_in_memory(case: &Case) -> Result<usize, copy::CopyError> {
    let old = geometry(
        case.level,
        case.layout,
        case.old_chunk,
        case.old_disks,
        case.component,
    );
    let new = geometry(
        case.level,
        case.layout,
        case.new_chunk,
        case.new_disks,
        case.component,
    );
    let base = case.gap + 8;
    let old_offsets = vec![base; case.old_disks as usize];
    let new_offsets = vec![base - case.gap; case.new_disks as usize];
    let mut members = Members(vec![
        vec![0u8; (base + case.component) as usize * SECTOR];
        case.new_disks as usize
    ]);
    let data = pattern(old.array_sectors() as usize * SECTOR, case.component);
    let old_writer = WritePlanner::new(
        old.clone(),
        map(&old_offsets, case.old_disks),
        old.array_sectors(),
    );
    members.write_plan(&old_writer, 0, &data);
    let mut reshape = Reshape {
        old: old.clone(),
        new: new.clone(),
        position_sectors: 0,
        backwards: false,
    };
    let planner = CopyPlanner::new(&reshape, &old_offsets, &new_offsets, case.max_window)?;
    let new_writer = WritePlanner::new(
        new.clone(),
        map(&new_offsets, case.new_disks),
        new.array_sectors(),
    );
    let mut expected = data.clone();
    expected.resize(new.array_sectors() as usize * SECTOR, 0);
    let visible = reshape.array_sectors();
    let check = |members: &Members, reshape: &Reshape, when: &str| {
        let mut reader = ArrayReadPlanner::reshaping(
            reshape.clone(),
            map(&old_offsets, case.new_disks),
            map(&new_offsets, case.new_disks),
        );
        let got = members.read_array(&mut reader, 0, visible);
        assert!(
            got == expected[..got.len()],
            "{when} at checkpoint {}: the array reads wrong",
            reshape.position_sectors
        );
    };
    let mut windows = 0;
    while let Some(w) = planner.next_window(reshape.position_sectors) {
        assert!(w.end > w.start && w.end % stripe_sectors(&new) == 0 || w.end == planner.end());
        let mut buf = vec![0u8; (w.end - w.start) as usize * SECTOR];
        if w.read_end > w.start {
            let mut reader = ArrayReadPlanner::reshaping(
                reshape.clone(),
                map(&old_offsets, case.new_disks),
                map(&new_offsets, case.new_disks),
            );
            let got = members.read_array(&mut reader, w.start, w.read_end);
            buf[..got.len()].copy_from_slice(&got);
        }
        members.write_plan(&new_writer, w.start, &buf);
        check(&members, &reshape, "before the checkpoint");
        reshape.position_sectors = w.end;
        check(&members, &reshape, "after the checkpoint");
        windows += 1;
    }
    let mut done = ArrayReadPlanner::single(crate::read::ReadPlanner::new(
        new.clone(),
        map(&new_offsets, case.new_disks),
        new.array_sectors(),
    ));
    let all = members.read_array(&mut done, 0, new.array_sectors());
    assert!(all == expected, "the finished array reads wrong");
    Ok(windows)
}

/// A raid5 growing from 3 to 4 members with 64 KiB chunks.
fn raid5_3_to_4(chunks: u64, gap: u64) -> Case {
    Case {
        level: 5,
        layout: 2,
        old_chunk: 128,
        new_chunk: 128,
        old_disks: 3,
        new_disks: 4,
        component: 128 * chunks,
        gap,
        max_window: 1 << 20,
    }
}

#[test]
fn linux_like_raid5_grow_copies_safely() {
    // md's choice for a 3 -> 4 raid5 with 64 KiB chunks: new_offset -384.
    let windows = reshape_in_memory(&raid5_3_to_4(40, 384)).expect("room enough");
    assert!(windows > 1, "the gap limits the first windows");
}

#[test]
fn too_small_a_gap_is_refused_naming_the_room() {
    let err = reshape_in_memory(&raid5_3_to_4(8, 64)).expect_err("a gap below one chunk");
    assert!(err.to_string().contains("needs 128 free sectors"), "{err}");
}

#[test]
fn backward_positions_split_the_other_way() {
    let g = geometry(5, 2, 8, 4, 64);
    let r = Reshape {
        old: g.clone(),
        new: g,
        position_sectors: 96,
        backwards: true,
    };
    assert_eq!(r.side(95), Side::Old);
    assert_eq!(r.side(96), Side::New);
    assert_eq!(r.same_side_len(90, 100), 6);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_window_leaves_the_array_readable(
        raid6 in any::<bool>(),
        layout_pick in 0usize..4,
        old_chunk_log in 3u32..6,
        new_chunk_log in 3u32..6,
        old_extra in 0u32..3,
        add in 0u32..3,
        chunks in 4u64..24,
        gap_chunks in 1u64..4,
        window_stripes in 1u64..6,
    ) {
        let (level, layouts, min) = if raid6 { (6, [0u32, 1, 2, 3], 4) } else { (5, [0u32, 1, 2, 3], 3) };
        let old_chunk = 1u32 << old_chunk_log;
        let new_chunk = 1u32 << new_chunk_log;
        let old_disks = min + old_extra;
        let new_disks = old_disks + add;
        prop_assume!(add > 0 || old_chunk != new_chunk);
        let big = u64::from(old_chunk.max(new_chunk));
        let case = Case {
            level,
            layout: layouts[layout_pick],
            old_chunk,
            new_chunk,
            old_disks,
            new_disks,
            component: big * chunks,
            gap: u64::from(new_chunk) * gap_chunks,
            max_window: window_stripes * u64::from(new_chunk) * u64::from(new_disks),
        };
        match reshape_in_memory(&case) {
            Ok(windows) => prop_assert!(windows >= 1),
            // Without more data members, or with a new chunk, the new
            // shape may outrun the old one somewhere: refused up front.
            Err(copy::CopyError::NoRoom { .. }) => prop_assert!(add == 0 || old_chunk != new_chunk),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Each shape holds different data; reading at `position` must take the
    /// new shape's below it (forward) or at and above it (backward), and
    /// the old shape's elsewhere.
    #[test]
    fn reads_split_at_the_position_in_either_direction(
        raid6 in any::<bool>(),
        backwards in any::<bool>(),
        old_extra in 0u32..3,
        new_extra in 0u32..3,
        chunk_logs in (3u32..6, 3u32..6),
        chunks in 4u64..16,
        position_frac in 0u64..=8,
    ) {
        let (level, min) = if raid6 { (6, 4) } else { (5, 3) };
        let component = 32 * chunks;
        let old = geometry(level, 2, 1 << chunk_logs.0, min + old_extra, component);
        let new = geometry(level, 2, 1 << chunk_logs.1, min + new_extra, component);
        let disks = old.raid_disks().max(new.raid_disks());
        // Old data at 8, new data after it (an upward move, as a shrink does).
        let old_offsets = vec![8; disks as usize];
        let new_offsets = vec![16 + component; disks as usize];
        let mut members = Members(vec![vec![0u8; (16 + 2 * component) as usize * SECTOR]; disks as usize]);
        let a = pattern(old.array_sectors() as usize * SECTOR, 1);
        let b = pattern(new.array_sectors() as usize * SECTOR, 2);
        members.write_plan(&WritePlanner::new(old.clone(), map(&old_offsets, old.raid_disks()), old.array_sectors()), 0, &a);
        members.write_plan(&WritePlanner::new(new.clone(), map(&new_offsets, new.raid_disks()), new.array_sectors()), 0, &b);
        let mut reshape = Reshape { old, new, position_sectors: 0, backwards };
        let len = reshape.array_sectors();
        reshape.position_sectors = len * position_frac / 8;
        let p = reshape.position_sectors as usize * SECTOR;
        let end = len as usize * SECTOR;
        let expected: Vec<u8> = if backwards {
            a[..p].iter().chain(&b[p..end]).copied().collect()
        } else {
            b[..p].iter().chain(&a[p..end]).copied().collect()
        };
        let mut reader = ArrayReadPlanner::reshaping(reshape, map(&old_offsets, disks), map(&new_offsets, disks));
        let got = members.read_array(&mut reader, 0, len);
        prop_assert!(got == expected, "the split read the wrong shape");
    }
}

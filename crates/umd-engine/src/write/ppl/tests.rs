//! A crash between the log and the writes, replayed: the log is built from a
//! real plan, read back through the on-disk header, the plan's writes land
//! torn (each sector of each write independently), one member may be
//! missing at the write or after the crash, and the replay of
//! `crate::ppl` runs as md runs it. Then every sector the write did not
//! touch reads back as before (rebuilt from parity where its member is
//! missing), every written sector on a present member reads old or new, and
//! with every member present parity equals the scalar reference.

use super::super::tests::{spec, Model};
use super::super::{BufRef, WritePlan, WritePlanner};
use super::PplUnit;
use crate::ppl::plan_replay;
use proptest::prelude::*;
use umd_formats::ppl::{PplHeader, PPL_HEADER_BYTES};

const SECTOR: usize = 512;

/// Replay `header` (logged on `log_role`, partial parity in `pp`) on `model`.
fn replay(model: &mut Model, header: &PplHeader, pp: &[u8], log_role: u32) {
    let mut at = 0usize;
    for e in &header.entries {
        let plan = plan_replay(&model.geometry, e, log_role).expect("our own entry replays");
        let pp_len = e.pp_size as usize;
        let entry_pp = &pp[at..at + pp_len];
        at += pp_len;
        let present = |r: u32| model.roles[r as usize].map(|(o, _)| o);
        if plan.data.iter().any(|d| present(d.at.role).is_none()) {
            continue;
        }
        let Some(p_off) = present(plan.parity.role) else {
            continue;
        };
        let data: Vec<Vec<u8>> = plan
            .data
            .iter()
            .map(|d| {
                let off = present(d.at.role).unwrap_or(0);
                let a = (off + d.at.dev_sector) as usize * SECTOR;
                model.members[d.at.role as usize][a..a + d.rows as usize * SECTOR].to_vec()
            })
            .collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut out = vec![0u8; plan.rows as usize * SECTOR];
        plan.parity(plan.has_pp.then_some(entry_pp), &refs, &mut out);
        let a = (p_off + plan.parity.dev_sector) as usize * SECTOR;
        model.members[plan.parity.role as usize][a..a + out.len()].copy_from_slice(&out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn replay_closes_the_write_hole(
        layout in 0u32..6,
        disks in 3u32..7,
        chunk_shift in 0u32..3,
        fill in any::<u64>(),
        (start, len) in (0u64..1000, 1u64..200),
        rmw_allowed in any::<bool>(),
        missing_at_write in proptest::option::of(0u32..7),
        missing_after in proptest::option::of(0u32..7),
        tear in any::<u64>(),
        new_seed in any::<u64>(),
    ) {
        let chunk = 8u32 << chunk_shift;
        let size = u64::from(chunk) * 3;
        let sizes = vec![size; disks as usize];
        let Some(mut model) = Model::new(&spec(5, layout, disks, chunk, sizes), &[8; 8]) else {
            return Ok(());
        };
        let g = model.geometry.clone();
        let array = g.array_sectors();
        // Old content through the planner, so parity starts consistent.
        let old: Vec<u8> = (0..array as usize * SECTOR)
            .map(|i| (fill.wrapping_mul(i as u64 + 1) >> 13) as u8)
            .collect();
        let planner = WritePlanner::new(g.clone(), model.map(), array);
        let mut plan = WritePlan::default();
        let mut scratch = Vec::new();
        let row = u64::from(chunk) * u64::from(disks - 1);
        for s in 0..array / row {
            let data = &old[(s * row) as usize * SECTOR..((s + 1) * row) as usize * SECTOR];
            planner.plan(s * row, row, u64::MAX, &mut plan).expect("healthy");
            scratch.resize(plan.scratch_bytes, 0);
            model.do_reads(&plan.reads, &mut scratch);
            planner.compute(&plan, data, &mut scratch);
            model.do_writes(&plan.writes, data, &scratch);
        }
        // One write inside one stripe, as the host plans PPL writes.
        let sector = start % array;
        let len = len.min(row - sector % row);
        let new: Vec<u8> = (0..len as usize * SECTOR)
            .map(|i| (new_seed.wrapping_mul(i as u64 + 7) >> 17) as u8)
            .collect();
        if let Some(r) = missing_at_write {
            model.roles[(r % disks) as usize] = None;
        }
        let planner = WritePlanner::new(g.clone(), model.map(), array);
        let unsynced = if rmw_allowed { u64::MAX } else { 0 };
        planner.plan(sector, len, unsynced, &mut plan).expect("within redundancy");
        scratch.clear();
        scratch.resize(plan.scratch_bytes, 0);
        model.do_reads(&plan.reads, &mut scratch);
        let mut unit = PplUnit::default();
        planner.partial_parity(&plan, &scratch, &mut unit).expect("loggable");
        unit.seal(0x1234_5678, 1).expect("few entries");
        let header = PplHeader::parse(&unit.bytes[..PPL_HEADER_BYTES]).expect("parses back");
        prop_assert_eq!(&header, &unit.header);
        planner.compute(&plan, &new, &mut scratch);
        // The crash: each sector of each write landed or not.
        let mut bit = 0u32;
        for io in &plan.writes {
            for s in 0..io.len_sectors as usize {
                bit = (bit + 1) % 64;
                if tear >> bit & 1 == 0 {
                    continue;
                }
                let src = match io.buf {
                    BufRef::Data { offset_bytes } => &new[offset_bytes + s * SECTOR..][..SECTOR],
                    BufRef::Scratch { offset_bytes } => &scratch[offset_bytes + s * SECTOR..][..SECTOR],
                };
                let at = (io.device_sector as usize + s) * SECTOR;
                model.members[io.role as usize][at..at + SECTOR].copy_from_slice(src);
            }
        }
        if missing_at_write.is_none() {
            if let Some(r) = missing_after {
                model.roles[(r % disks) as usize] = None;
            }
        }
        if let Some(role) = unit.role {
            if model.roles[role as usize].is_some() {
                replay(&mut model, &header, &unit.bytes[PPL_HEADER_BYTES..], role);
            }
        }
        if model.roles.iter().all(Option::is_some) {
            model.assert_consistent();
        }
        let now = model.read_all();
        let mut copies = Vec::new();
        for s in 0..array {
            let (a, b) = (s as usize * SECTOR, (s as usize + 1) * SECTOR);
            let inside = s >= sector && s < sector + len;
            if !inside {
                prop_assert!(now[a..b] == old[a..b], "untouched sector {} changed", s);
                continue;
            }
            let umd_layout::geometry::Target::Striped { data, .. } = g.locate(s, &mut copies).target else {
                unreachable!("raid5 is striped")
            };
            if model.roles[data.role as usize].is_some() {
                let n = (s - sector) as usize * SECTOR;
                prop_assert!(
                    now[a..b] == old[a..b] || now[a..b] == new[n..n + SECTOR],
                    "written sector {} is neither old nor new", s
                );
            }
        }
    }
}

//! Check counts what a model array's corruption should give and writes
//! nothing; repair and resync make parity equal the scalar reference and
//! mirrors equal, without changing what the array reads.

use super::*;
use crate::write::tests::{spec, tolerance, write_once, Model, SHAPES};
use proptest::prelude::*;

/// Run `mode` over the whole sync range; returns the mismatch count.
fn sync(model: &mut Model, mode: SyncMode, len_max: u64) -> u64 {
    sync_located(model, mode, len_max).0
}

/// Run `mode` over the whole sync range: (mismatched sectors, blocks the
/// raid6 syndromes located).
pub(super) fn sync_located(
    model: &mut Model,
    mode: SyncMode,
    len_max: u64,
) -> (u64, Vec<LocatedMismatch>) {
    let planner = SyncPlanner::new(model.geometry.clone(), model.map());
    let mut window = SyncWindow::default();
    let (mut writes, mut located) = (Vec::new(), Vec::new());
    let mut total = 0;
    let mut position = 0;
    while position < planner.max_position() {
        planner.plan(position, len_max, &mut window);
        let mut scratch = vec![0x5au8; window.scratch_bytes];
        model.do_reads(&window.reads, &mut scratch);
        writes.clear();
        total += planner.finish(&window, mode, &mut scratch, &mut writes, &mut located);
        if mode == SyncMode::Check {
            assert!(writes.is_empty(), "check writes nothing");
        }
        model.do_writes(&writes, &[], &scratch);
        position += window.len;
    }
    (total, located)
}

pub(super) fn fill(members: &mut [Vec<u8>], seed: u64) {
    let mut state = seed | 1;
    for byte in members.iter_mut().flatten() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = (state >> 24) as u8;
    }
}

/// A model of `SHAPES[shape]` with `extra_disks` more members than its
/// minimum, chunks of `8 << chunk_shift` sectors, members of
/// `chunks_per_member` 8 KiB units, filled from `seed`; `None` for shapes
/// without redundancy.
fn redundant_model(
    shape: usize,
    extra_disks: u32,
    chunk_shift: u32,
    chunks_per_member: u64,
    seed: u64,
) -> Option<Model> {
    let (level, layout, min_disks) = SHAPES[shape];
    if level < 1 {
        return None;
    }
    let disks = min_disks + extra_disks;
    let chunk = if level == 1 { 0 } else { 8u32 << chunk_shift };
    let size = 16 * chunks_per_member;
    let members = vec![size; disks as usize];
    let mut model = Model::new(&spec(level, layout, disks, chunk, members), &[8; 8])?;
    if tolerance(&model.geometry) < 1 {
        return None;
    }
    fill(&mut model.members, seed);
    Some(model)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn repair_makes_check_clean(
        shape in 0..SHAPES.len(),
        extra_disks in 0u32..4,
        chunk_shift in 0u32..2,
        chunks_per_member in 2u64..5,
        seed in any::<u64>(),
        len_max in 1u64..40,
        resync in any::<bool>(),
    ) {
        let Some(mut model) = redundant_model(shape, extra_disks, chunk_shift, chunks_per_member, seed) else {
            return Ok(());
        };
        let level = SHAPES[shape].0;
        let before = model.members.clone();
        let data_before = model.read_all();
        let found = sync(&mut model, SyncMode::Check, len_max);
        prop_assert!(model.members == before, "check changed a member");
        prop_assert!(found > 0, "random members are inconsistent");
        let mode = if resync { SyncMode::Resync } else { SyncMode::Repair };
        prop_assert_eq!(sync(&mut model, mode, len_max), found);
        prop_assert_eq!(sync(&mut model, SyncMode::Check, len_max), 0);
        model.assert_consistent();
        if level != 1 && level != 10 {
            prop_assert!(model.read_all() == data_before, "repair changed data");
        }
    }
}

#[test]
fn one_bad_parity_block_counts_eight() {
    let mut model = Model::new(&spec(6, 2, 5, 16, vec![64; 5]), &[0; 8]).expect("valid");
    fill(&mut model.members, 9);
    sync(&mut model, SyncMode::Repair, 64);
    // Stripe 1 of left-symmetric raid6 on 5 roles: P on role 3, Q on role 4.
    model.members[4][(16 + 9) * 512] ^= 1;
    assert_eq!(sync(&mut model, SyncMode::Check, 64), 8);
    assert_eq!(sync(&mut model, SyncMode::Repair, 64), 8);
    assert_eq!(sync(&mut model, SyncMode::Check, 64), 0);
    model.assert_consistent();
}

#[test]
fn raid1_counts_per_differing_copy_and_copies_the_first() {
    let mut model = Model::new(&spec(1, 0, 3, 0, vec![32; 3]), &[0; 8]).expect("valid");
    model.members[1][3 * 512] = 1;
    model.members[2][3 * 512] = 2;
    model.members[2][20 * 512] = 2;
    assert_eq!(sync(&mut model, SyncMode::Check, 32), 24);
    sync(&mut model, SyncMode::Repair, 32);
    assert!(
        model.members.iter().all(|m| m.iter().all(|&b| b == 0)),
        "copy 0 wins"
    );
}

#[test]
fn degraded_window_is_left_alone() {
    let mut model = Model::new(&spec(5, 2, 4, 8, vec![32; 4]), &[0; 8]).expect("valid");
    fill(&mut model.members, 3);
    model.roles[2] = None;
    assert_eq!(sync(&mut model, SyncMode::Repair, 32), 0);
}

#[test]
fn positions_use_md_units() {
    let raid10 = Model::new(&spec(10, 0x102, 4, 8, vec![32; 4]), &[0; 8]).expect("valid");
    let planner = SyncPlanner::new(raid10.geometry.clone(), raid10.map());
    assert_eq!(planner.max_position(), 64, "array sectors");
    let raid5 = Model::new(&spec(5, 2, 4, 8, vec![32; 4]), &[0; 8]).expect("valid");
    let planner = SyncPlanner::new(raid5.geometry.clone(), raid5.map());
    assert_eq!(planner.max_position(), 32, "member sectors");
    assert_eq!(planner.stripe_of(17), 2);
}

/// The member sectors of `role` (absolute, data offset included) that hold
/// array data or parity: every used sector, except raid10 layouts whose
/// copies leave some unmapped.
fn mapped_sectors(model: &Model, role: u32) -> Vec<u64> {
    let offset = model.roles[role as usize].expect("present").0;
    let used = model.geometry.member_used_sectors(role);
    if model.geometry.level() != Level::Raid10 {
        return (offset..offset + used).collect();
    }
    let mut copies = Vec::new();
    let mut mapped = Vec::new();
    let mut sector = 0;
    while sector < model.geometry.array_sectors() {
        let extent = model.geometry.locate(sector, &mut copies);
        for c in copies.iter().filter(|c| c.role == role) {
            mapped.extend((0..extent.len_sectors).map(|i| offset + c.dev_sector + i));
        }
        sector += extent.len_sectors;
    }
    mapped
}

/// Run recovery over the whole range; returns the windows found lost.
fn recover_all(model: &mut Model, len_max: u64) -> usize {
    let planner = SyncPlanner::new(model.geometry.clone(), model.map());
    let mut window = SyncWindow::default();
    let mut writes = Vec::new();
    let mut lost = 0;
    let mut position = 0;
    while position < planner.max_position() {
        planner.plan_recover(position, len_max, &mut window);
        let mut scratch = vec![0xa5u8; window.scratch_bytes];
        model.do_reads(&window.reads, &mut scratch);
        writes.clear();
        planner.finish_recover(&window, &mut scratch, &mut writes);
        lost += usize::from(window.lost());
        model.do_writes(&writes, &[], &scratch);
        position += window.len;
    }
    lost
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Replace up to the level's tolerance of members with garbage, mark
    /// them recovering from 0, recover: every member is byte for byte what it
    /// was, and the array reads the same data.
    #[test]
    fn recovery_rebuilds_replaced_members_exactly(
        shape in 0..SHAPES.len(),
        extra_disks in 0u32..4,
        chunk_shift in 0u32..2,
        chunks_per_member in 2u64..5,
        seed in any::<u64>(),
        len_max in 1u64..40,
        replaced_pick in any::<u64>(),
        two in any::<bool>(),
    ) {
        let Some(mut model) = redundant_model(shape, extra_disks, chunk_shift, chunks_per_member, seed) else {
            return Ok(());
        };
        let disks = model.geometry.raid_disks();
        let tolerance = tolerance(&model.geometry);
        sync(&mut model, SyncMode::Repair, 64);
        let good = model.members.clone();
        let data = model.read_all();
        let count = if two && tolerance >= 2 { 2 } else { 1 };
        let first = (replaced_pick % u64::from(disks)) as usize;
        // raid10 tolerates one loss per mirror set: replace neighbours only
        // where that is still one per set (the second pick is far away).
        let second = (first + disks as usize / 2) % disks as usize;
        let replaced: Vec<usize> = [first, second].into_iter().take(count).collect();
        for &r in &replaced {
            // Garbage over the data area (below the data offset is not the
            // array's: recovery never writes there).
            let offset = model.roles[r].expect("present").0 as usize;
            let used = model.geometry.member_used_sectors(r as u32) as usize;
            let area = &mut model.members[r][offset * 512..(offset + used) * 512];
            let mut garbage = vec![area.to_vec()];
            fill(&mut garbage, seed ^ 0xdead);
            area.copy_from_slice(&garbage[0]);
            model.roles[r] = Some((offset as u64, Some(0)));
        }
        prop_assert_eq!(recover_all(&mut model, len_max), 0, "nothing lost within tolerance");
        for &r in &replaced {
            let offset = model.roles[r].expect("present").0;
            model.roles[r] = Some((offset, None));
        }
        for &r in &replaced {
            for sector in mapped_sectors(&model, r as u32) {
                let at = sector as usize * 512;
                prop_assert!(
                    model.members[r][at..at + 512] == good[r][at..at + 512],
                    "role {} sector {} differs after recovery", r, sector
                );
            }
        }
        prop_assert!(model.read_all() == data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// md's hot replace: a replacement of one role (at another data offset,
    /// already copied below a checkpoint, garbage above) gets every write
    /// of its role, and recovery fills the rest by reading only what it
    /// must; it ends a byte-for-byte copy of the role, whatever the array
    /// wrote before, during and after, and the role itself is unchanged.
    #[test]
    fn a_replacement_ends_a_copy_of_its_role(
        shape in 0..SHAPES.len(),
        extra_disks in 0u32..4,
        chunk_shift in 0u32..2,
        chunks_per_member in 2u64..5,
        seed in any::<u64>(),
        len_max in 1u64..40,
        role_pick in any::<u64>(),
        checkpoint_pick in any::<u64>(),
        writes in proptest::collection::vec((any::<u64>(), 1u64..40, any::<bool>()), 0..8),
    ) {
        let Some(mut model) = redundant_model(shape, extra_disks, chunk_shift, chunks_per_member, seed) else {
            return Ok(());
        };
        sync(&mut model, SyncMode::Repair, 64);
        let n = model.geometry.raid_disks() as usize;
        let role = (role_pick % n as u64) as usize;
        let (offset, _) = model.roles[role].expect("present");
        let used = model.geometry.member_used_sectors(role as u32);
        let checkpoint = checkpoint_pick % (used + 1);
        // The replacement's data starts 8 sectors later than the role's.
        let new_offset = offset + 8;
        let mut image = vec![vec![0u8; (new_offset + used) as usize * 512]];
        fill(&mut image, seed ^ 0xfeed);
        let copied = checkpoint as usize * 512;
        image[0][new_offset as usize * 512..][..copied]
            .copy_from_slice(&model.members[role][offset as usize * 512..][..copied]);
        model.members.resize(2 * n, Vec::new());
        model.members[n + role] = image.pop().expect("one image");
        model.roles.resize(2 * n, None);
        model.roles[n + role] = Some((new_offset, Some(checkpoint)));
        let write = |model: &mut Model, (start, len, seed): (u64, u64, bool)| {
            let planner = crate::write::WritePlanner::new(model.geometry.clone(), model.map(), model.geometry.array_sectors());
            let array = model.geometry.array_sectors();
            let start = start % array;
            let len = len.min(array - start);
            let mut data = vec![vec![0u8; len as usize * 512]];
            fill(&mut data, start ^ u64::from(seed));
            write_once(model, &planner, start, &data[0], u64::MAX);
        };
        let (before, after) = writes.split_at(writes.len() / 2);
        for &w in before {
            write(&mut model, w);
        }
        let data = model.read_all();
        let role_before = model.members[role].clone();
        prop_assert_eq!(recover_all(&mut model, len_max), 0);
        prop_assert!(model.members[role] == role_before, "recovery wrote the replaced role");
        prop_assert!(model.read_all() == data, "recovery changed what the array reads");
        for &w in after {
            write(&mut model, w);
        }
        for sector in mapped_sectors(&model, role as u32) {
            let (from, to) = (sector as usize * 512, (sector - offset + new_offset) as usize * 512);
            prop_assert!(
                model.members[n + role][to..to + 512] == model.members[role][from..from + 512],
                "role {} sector {} differs on its replacement", role, sector
            );
        }
        model.assert_consistent();
    }
}

#[test]
fn recovery_beyond_tolerance_is_lost_and_writes_nothing() {
    let mut model = Model::new(&spec(5, 2, 4, 8, vec![32; 4]), &[0; 8]).expect("valid");
    fill(&mut model.members, 5);
    sync(&mut model, SyncMode::Repair, 32);
    model.roles[1] = None;
    model.roles[2] = Some((0, Some(0)));
    let before = model.members.clone();
    assert_eq!(recover_all(&mut model, 32), 4, "every stripe lost");
    assert!(model.members == before, "nothing written");
}

#[test]
fn recovery_skips_what_is_already_recovered() {
    let mut model = Model::new(&spec(1, 0, 2, 0, vec![32; 2]), &[0; 8]).expect("valid");
    fill(&mut model.members, 11);
    sync(&mut model, SyncMode::Repair, 32);
    let good = model.members.clone();
    // Valid below sector 16: only the upper half is rewritten.
    model.members[1][..16 * 512].fill(0xee);
    model.members[1][16 * 512..].fill(0xee);
    model.roles[1] = Some((0, Some(16)));
    recover_all(&mut model, 32);
    assert!(
        model.members[1][..16 * 512].iter().all(|&b| b == 0xee),
        "below the checkpoint untouched"
    );
    assert_eq!(model.members[1][16 * 512..], good[1][16 * 512..]);
}

/// Rewrite `role`'s blocks over sync positions `[position, position + len)`
/// as a host does after a failed sync read; returns whether it could.
fn rewrite(model: &mut Model, role: u32, position: u64, len: u64) -> bool {
    let planner = SyncPlanner::new(model.geometry.clone(), model.map());
    let mut window = SyncWindow::default();
    let mut writes = Vec::new();
    let mut done = 0;
    while done < len {
        if !planner.plan_rewrite(role, position + done, len - done, &mut window) {
            assert!(window.targets.is_empty() && window.reads.is_empty());
            return false;
        }
        assert!(
            window.reads.iter().all(|r| r.role != role),
            "reads the bad role"
        );
        let mut scratch = vec![0x3cu8; window.scratch_bytes];
        model.do_reads(&window.reads, &mut scratch);
        writes.clear();
        planner.finish_recover(&window, &mut scratch, &mut writes);
        assert!(writes.iter().all(|w| w.role == role), "writes another role");
        model.do_writes(&writes, &[], &scratch);
        done += window.len;
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// A block one member cannot read (here: garbage) is rebuilt from the
    /// others and rewritten, and nothing else changes: every member is byte
    /// for byte what it was before the damage.
    #[test]
    fn rewrite_restores_an_unreadable_extent(
        shape in 0..SHAPES.len(),
        extra_disks in 0u32..4,
        chunk_shift in 0u32..2,
        chunks_per_member in 2u64..5,
        seed in any::<u64>(),
        role_pick in any::<u64>(),
        at_pick in any::<u64>(),
        len in 1u64..24,
    ) {
        let Some(mut model) = redundant_model(shape, extra_disks, chunk_shift, chunks_per_member, seed) else {
            return Ok(());
        };
        let disks = model.geometry.raid_disks();
        sync(&mut model, SyncMode::Repair, 64);
        let good = model.members.clone();
        let role = (role_pick % u64::from(disks)) as u32;
        let max = SyncPlanner::new(model.geometry.clone(), model.map()).max_position();
        let position = at_pick % max;
        let len = len.min(max - position);
        // Damage what the role holds for those positions, as the planner
        // maps them (raid10: positions are array sectors).
        // raid10 roles hold only some positions: rewrite the windows whose
        // reads include the role, as a host would after their reads failed.
        let planner = SyncPlanner::new(model.geometry.clone(), model.map());
        let mut window = SyncWindow::default();
        let mut damaged = Vec::new();
        let mut p = position;
        while p < position + len {
            planner.plan(p, position + len - p, &mut window);
            for r in window.reads.iter().filter(|r| r.role == role) {
                let at = r.device_sector as usize * 512;
                model.members[role as usize][at..at + r.len_sectors as usize * 512].fill(0xee);
                damaged.push((window.position, window.len));
            }
            p += window.len;
        }
        for (p, l) in damaged {
            prop_assert!(rewrite(&mut model, role, p, l));
        }
        prop_assert!(model.members == good, "the rewrite restored something else");
    }
}

#[test]
fn rewrite_is_refused_beyond_tolerance() {
    let mut model = Model::new(&spec(5, 2, 4, 8, vec![32; 4]), &[0; 8]).expect("valid");
    fill(&mut model.members, 5);
    sync(&mut model, SyncMode::Repair, 32);
    model.roles[1] = None;
    let before = model.members.clone();
    assert!(!rewrite(&mut model, 2, 0, 8), "raid5 with a role missing");
    assert!(model.members == before, "nothing written");
    let mut model = Model::new(&spec(6, 2, 5, 8, vec![32; 5]), &[0; 8]).expect("valid");
    fill(&mut model.members, 5);
    sync(&mut model, SyncMode::Repair, 32);
    let good = model.members.clone();
    model.roles[1] = None;
    model.members[2][..8 * 512].fill(0xee);
    assert!(rewrite(&mut model, 2, 0, 8), "raid6 survives two");
    assert_eq!(model.members[2], good[2]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// md resyncs a raid6 with one member missing: the parity that is left
    /// is made to agree with the data (a missing data block is what P says),
    /// without changing what the array reads. Proof that they agree: a
    /// spare rebuilt into the missing role from P and Q, then a full check,
    /// finds nothing.
    #[test]
    fn degraded_raid6_resync_makes_the_parity_left_agree(
        shape in 10usize..24,
        extra_disks in 0u32..3,
        chunk_shift in 0u32..2,
        chunks_per_member in 2u64..5,
        seed in any::<u64>(),
        missing_pick in any::<u64>(),
        len_max in 1u64..40,
        resync in any::<bool>(),
    ) {
        prop_assume!(SHAPES[shape].0 == 6);
        let Some(mut model) = redundant_model(shape, extra_disks, chunk_shift, chunks_per_member, seed) else {
            return Ok(());
        };
        let missing = (missing_pick % u64::from(model.geometry.raid_disks())) as usize;
        let offset = model.roles[missing].expect("present").0;
        model.roles[missing] = None;
        let data = model.read_all();
        let found = sync(&mut model, SyncMode::Check, len_max);
        prop_assert!(found > 0, "random members are inconsistent");
        let mode = if resync { SyncMode::Resync } else { SyncMode::Repair };
        prop_assert_eq!(sync(&mut model, mode, len_max), found);
        prop_assert_eq!(sync(&mut model, SyncMode::Check, len_max), 0);
        prop_assert!(model.read_all() == data, "the resync changed what the array reads");
        model.roles[missing] = Some((offset, Some(0)));
        prop_assert_eq!(recover_all(&mut model, len_max), 0);
        model.roles[missing] = Some((offset, None));
        prop_assert_eq!(sync(&mut model, SyncMode::Check, len_max), 0);
        prop_assert!(model.read_all() == data);
    }
}

#[test]
fn doubly_degraded_raid6_is_left_alone() {
    let mut model = Model::new(&spec(6, 2, 5, 8, vec![32; 5]), &[0; 8]).expect("valid");
    fill(&mut model.members, 3);
    model.roles[1] = None;
    model.roles[3] = None;
    let before = model.members.clone();
    assert_eq!(sync(&mut model, SyncMode::Repair, 32), 0);
    assert!(model.members == before, "nothing written");
}

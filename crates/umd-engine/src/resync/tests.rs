//! Check counts what a model array's corruption should give and writes
//! nothing; repair and resync make parity equal the scalar reference and
//! mirrors equal, without changing what the array reads.

use super::*;
use crate::write::tests::{spec, tolerance, Model, SHAPES};
use proptest::prelude::*;

/// Run `mode` over the whole sync range; returns the mismatch count.
fn sync(model: &mut Model, mode: SyncMode, len_max: u64) -> u64 {
    let planner = SyncPlanner::new(model.geometry.clone(), model.map());
    let mut window = SyncWindow::default();
    let mut writes = Vec::new();
    let mut total = 0;
    let mut position = 0;
    while position < planner.max_position() {
        planner.plan(position, len_max, &mut window);
        let mut scratch = vec![0x5au8; window.scratch_bytes];
        model.do_reads(&window.reads, &mut scratch);
        writes.clear();
        total += planner.finish(&window, mode, &mut scratch, &mut writes);
        if mode == SyncMode::Check {
            assert!(writes.is_empty(), "check writes nothing");
        }
        model.do_writes(&writes, &[], &scratch);
        position += window.len;
    }
    total
}

fn fill(members: &mut [Vec<u8>], seed: u64) {
    let mut state = seed | 1;
    for byte in members.iter_mut().flatten() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = (state >> 24) as u8;
    }
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
        let (level, layout, min_disks) = SHAPES[shape];
        prop_assume!(level >= 1);
        let disks = min_disks + extra_disks;
        let chunk = if level == 1 { 0 } else { 8u32 << chunk_shift };
        let size = 16 * chunks_per_member;
        let Some(mut model) = Model::new(&spec(level, layout, disks, chunk, vec![size; disks as usize]), &[8; 8]) else {
            return Ok(());
        };
        prop_assume!(tolerance(&model.geometry) >= 1);
        fill(&mut model.members, seed);
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

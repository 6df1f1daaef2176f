//! One corrupted member (data, P or Q) of a consistent raid6 is located
//! exactly, for every raid6 layout (md and DDF Q slot orders), and repair
//! restores every member byte for byte; two corrupted members are never
//! pinned on one.

use super::super::tests::{fill, sync_located as sync};
use super::super::*;
use crate::write::tests::{spec, Model, SHAPES};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// A consistent raid6 model with random content.
fn raid6(shape: usize, disks_extra: u32, chunk_shift: u32, chunks: u64, seed: u64) -> Model {
    let raid6_shapes: Vec<_> = SHAPES.iter().filter(|s| s.0 == 6).collect();
    let (level, layout, min_disks) = *raid6_shapes[shape % raid6_shapes.len()];
    let disks = min_disks + disks_extra;
    let chunk = 8u32 << chunk_shift;
    let size = u64::from(chunk) * chunks;
    let mut model = Model::new(
        &spec(level, layout, disks, chunk, vec![size; disks as usize]),
        &[8; 16],
    )
    .expect("valid raid6 geometry");
    fill(&mut model.members, seed);
    sync(&mut model, SyncMode::Resync, 64);
    model.assert_consistent();
    model
}

/// XOR `len` sectors of `role` at sync position `at` with pseudo-random
/// bytes; returns the 4 KiB blocks that changed.
fn corrupt(model: &mut Model, role: u32, at: u64, len: u64, seed: u64) -> BTreeSet<u64> {
    let offset = model.roles[role as usize].expect("present").0;
    let mut state = seed | 1;
    let mut changed = BTreeSet::new();
    for sector in at..at + len {
        let base = ((offset + sector) * SECTOR_BYTES as u64) as usize;
        for byte in &mut model.members[role as usize][base..base + SECTOR_BYTES] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = (state >> 32) as u8;
            *byte ^= x;
            if x != 0 {
                changed.insert(sector / SYNC_BLOCK_SECTORS);
            }
        }
    }
    changed
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]
    #[test]
    fn one_wrong_member_is_located_and_repaired(
        shape in 0usize..16,
        disks_extra in 0u32..4,
        chunk_shift in 0u32..3,
        chunks in 2u64..5,
        seed in any::<u64>(),
        role_pick in any::<u32>(),
        at_pick in any::<u64>(),
        len in 1u64..20,
        len_max_blocks in 1u64..9,
    ) {
        let mut model = raid6(shape, disks_extra, chunk_shift, chunks, seed);
        let disks = model.geometry.raid_disks();
        let max = model.geometry.member_used_sectors(0);
        let role = role_pick % disks;
        let at = at_pick % max;
        let len = len.min(max - at);
        let pristine = model.members.clone();
        let changed = corrupt(&mut model, role, at, len, seed ^ 0x9e37);
        prop_assume!(!changed.is_empty());
        let corrupted = model.members.clone();
        let len_max = len_max_blocks * SYNC_BLOCK_SECTORS;
        let (found, located) = sync(&mut model, SyncMode::Check, len_max);
        prop_assert!(model.members == corrupted, "check changed a member");
        prop_assert_eq!(found, changed.len() as u64 * SYNC_BLOCK_SECTORS);
        prop_assert!(located.iter().all(|l| l.role == role), "misattributed: {:?}", located);
        let blocks: BTreeSet<u64> = located.iter().map(|l| l.position / SYNC_BLOCK_SECTORS).collect();
        prop_assert_eq!(&blocks, &changed);
        let (repaired, again) = sync(&mut model, SyncMode::Repair, len_max);
        prop_assert_eq!(repaired, found);
        prop_assert_eq!(again, located);
        prop_assert!(model.members == pristine, "repair did not restore every member");
    }

    #[test]
    fn two_wrong_members_are_never_pinned_on_one(
        shape in 0usize..16,
        disks_extra in 0u32..4,
        chunk_shift in 0u32..3,
        chunks in 2u64..5,
        seed in any::<u64>(),
        roles in (any::<u32>(), 1u32..100),
        at_pick in any::<u64>(),
        len in 1u64..20,
    ) {
        let mut model = raid6(shape, disks_extra, chunk_shift, chunks, seed);
        let disks = model.geometry.raid_disks();
        let max = model.geometry.member_used_sectors(0);
        let first = roles.0 % disks;
        let second = (first + 1 + roles.1 % (disks - 1)) % disks;
        prop_assert_ne!(first, second);
        let at = at_pick % max;
        let len = len.min(max - at);
        let a = corrupt(&mut model, first, at, len, seed ^ 1);
        let b = corrupt(&mut model, second, at, len, seed ^ 2);
        let both: BTreeSet<u64> = a.intersection(&b).copied().collect();
        let (found, located) = sync(&mut model, SyncMode::Check, 64);
        prop_assert_eq!(found, a.union(&b).count() as u64 * SYNC_BLOCK_SECTORS);
        prop_assert!(
            located.iter().all(|l| !both.contains(&(l.position / SYNC_BLOCK_SECTORS))),
            "a block with two wrong members was pinned on one: {:?}", located
        );
        // md's fallback makes the stripes consistent again.
        sync(&mut model, SyncMode::Repair, 64);
        prop_assert_eq!(sync(&mut model, SyncMode::Check, 64).0, 0);
    }
}

#[test]
fn resync_keeps_md_behaviour_and_locates_nothing() {
    let mut model = raid6(0, 1, 1, 3, 7);
    let changed = corrupt(&mut model, 0, 3, 2, 11);
    assert!(!changed.is_empty());
    let before = model.read_all();
    let (found, located) = sync(&mut model, SyncMode::Resync, 64);
    assert_eq!(found, changed.len() as u64 * SYNC_BLOCK_SECTORS);
    assert!(located.is_empty(), "resync recomputes parity from the data");
    assert_eq!(model.read_all(), before, "resync keeps the data as read");
    model.assert_consistent();
}

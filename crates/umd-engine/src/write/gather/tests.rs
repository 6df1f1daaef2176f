//! Gathering against a simple model: any interleaving of partial-stripe
//! contributions, flushes at any moment and ordinary writes in between leave
//! member contents that read back as a scalar reference of the logical array,
//! with parity equal to the scalar reference on every stripe.

use super::*;
use crate::write::tests::{spec, Model};
use crate::write::{WritePlan, WritePlanner};
use proptest::prelude::*;

const SECTOR: usize = SECTOR_BYTES;

/// One open stripe entry of the model: what the host's entry holds, plus the
/// contributors' data writes, which the host issues only after the flush read.
struct Entry {
    coverage: Coverage,
    acc: Accumulator,
    pending: Vec<(GatherPiece, Vec<u8>)>,
}

struct Harness {
    model: Model,
    planner: WritePlanner,
    open: Vec<Entry>,
    logical: Vec<u8>,
    /// Flushes that needed no reads (full stripes), to show the tests reach them.
    full_flushes: usize,
}

impl Harness {
    fn new(model: Model) -> Self {
        let array = model.geometry.array_sectors();
        let planner = WritePlanner::new(model.geometry.clone(), model.map(), array);
        Self {
            model,
            planner,
            open: Vec::new(),
            logical: vec![0; array as usize * SECTOR],
            full_flushes: 0,
        }
    }

    fn flush(&mut self, index: usize) {
        let mut entry = self.open.swap_remove(index);
        let mut flush = GatherFlush::default();
        let mut scratch_piece = GatherPiece::default();
        assert!(
            self.planner
                .plan_gather_flush(&entry.coverage, &mut scratch_piece, &mut flush),
            "healthy array"
        );
        if flush.reads.is_empty() {
            self.full_flushes += usize::from(entry.coverage.is_full());
        }
        let mut scratch = vec![0x5au8; flush.scratch_bytes];
        // Reads first: no data of the stripe is written before the flush read.
        self.model.do_reads(&flush.reads, &mut scratch);
        entry.acc.fold_gaps(&flush, &scratch);
        for (piece, data) in &entry.pending {
            self.model.do_writes(&piece.writes, data, &[]);
        }
        let parity = flush.parity.expect("parity write");
        self.model.do_writes(&[parity], &[], entry.acc.bytes());
    }

    fn flush_stripes(&mut self, first: u64, last: u64) {
        while let Some(i) = self
            .open
            .iter()
            .position(|e| (first..=last).contains(&e.coverage.stripe()))
        {
            self.flush(i);
        }
    }

    /// A contribution of logical `[sector, sector + len)` (inside one stripe).
    fn contribute(&mut self, sector: u64, data: Vec<u8>) {
        let len = (data.len() / SECTOR) as u64;
        let mut piece = GatherPiece::default();
        assert!(
            self.planner.gather_piece(sector, len, &mut piece),
            "eligible"
        );
        self.logical[sector as usize * SECTOR..][..data.len()].copy_from_slice(&data);
        let at = self
            .open
            .iter()
            .position(|e| e.coverage.stripe() == piece.stripe);
        let index = match at {
            Some(i) if self.open[i].coverage.add(piece.lo, piece.hi) => i,
            other => {
                if let Some(i) = other {
                    // Overlap (or a full entry): the old entry goes out first.
                    self.flush(i);
                }
                let mut coverage = Coverage::new(&piece);
                assert!(
                    coverage.add(piece.lo, piece.hi),
                    "empty coverage takes any piece"
                );
                self.open.push(Entry {
                    coverage,
                    acc: Accumulator::default(),
                    pending: Vec::new(),
                });
                self.open.len() - 1
            }
        };
        let entry = &mut self.open[index];
        entry.acc.contribute(&piece, &data);
        entry.pending.push((piece, data));
        if entry.coverage.is_full() {
            self.flush(index);
        }
    }

    /// An ordinary planned write, after the entries it would meet went out
    /// (the host's stripe lock makes it wait for them the same way).
    fn ordinary(&mut self, sector: u64, data: &[u8]) {
        let len = (data.len() / SECTOR) as u64;
        let mut plan = WritePlan::default();
        self.planner
            .plan(sector, len, u64::MAX, &mut plan)
            .expect("healthy");
        let (a, b) = plan.stripes.expect("parity level");
        self.flush_stripes(a, b);
        let mut scratch = vec![0xa5u8; plan.scratch_bytes];
        self.model.do_reads(&plan.reads, &mut scratch);
        self.planner.compute(&plan, data, &mut scratch);
        self.model.do_writes(&plan.writes, data, &scratch);
        self.logical[sector as usize * SECTOR..][..data.len()].copy_from_slice(data);
    }
}

fn bytes(len_sectors: u64, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len_sectors as usize * SECTOR)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as u8
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn any_interleaving_keeps_data_and_parity(
        level_layout in prop_oneof![Just((4, 0u32)), (Just(5), 0u32..6)],
        disks in 3u32..7,
        chunk_shift in 0u32..2,
        chunks_per_member in 2u64..5,
        offsets in proptest::collection::vec(prop_oneof![Just(0u64), Just(8u64)], 8),
        ops in proptest::collection::vec((0u8..10, any::<u64>(), 1u64..40, any::<u64>()), 1..40),
    ) {
        let (level, layout) = level_layout;
        let chunk = 8u32 << chunk_shift;
        let size = u64::from(chunk) * chunks_per_member;
        let model = Model::new(&spec(level, layout, disks, chunk, vec![size; disks as usize]), &offsets)
            .expect("valid raid4/5 shape");
        let mut h = Harness::new(model);
        let array = h.model.geometry.array_sectors();
        let stripe_sectors = u64::from(chunk) * u64::from(disks - 1);
        for &(kind, start, len, seed) in &ops {
            let start = start % array;
            match kind {
                // Flush one open entry (its deadline passed, a FLUSH, a conflict).
                0 if !h.open.is_empty() => {
                    let i = (seed % h.open.len() as u64) as usize;
                    h.flush(i);
                }
                1 => h.ordinary(start, &bytes(len.min(array - start), seed)),
                // A contribution: a piece up to the end of its stripe.
                _ => {
                    let stripe_end = (start / stripe_sectors + 1) * stripe_sectors;
                    let len = len.min(stripe_end - start);
                    h.contribute(start, bytes(len, seed));
                }
            }
        }
        while !h.open.is_empty() {
            h.flush(0);
        }
        prop_assert!(h.model.read_all() == h.logical, "read back differs");
        h.model.assert_consistent();
    }
}

fn raid5_model() -> Model {
    Model::new(&spec(5, 2, 4, 8, vec![32; 4]), &[0; 8]).expect("valid")
}

#[test]
fn neighbours_completing_a_stripe_read_nothing() {
    let mut h = Harness::new(raid5_model());
    // Stripe 1 is logical sectors 24..48: two pieces, second completes it.
    h.contribute(24, bytes(16, 1));
    assert_eq!(h.open.len(), 1, "the first piece waits");
    h.contribute(40, bytes(8, 2));
    assert!(h.open.is_empty(), "the completing piece flushes");
    assert_eq!(h.full_flushes, 1);
    h.model.assert_consistent();
    assert!(h.model.read_all() == h.logical);
}

#[test]
fn a_lone_partial_piece_reads_only_its_window() {
    let h = Harness::new(raid5_model());
    let mut piece = GatherPiece::default();
    assert!(h.planner.gather_piece(2, 3, &mut piece));
    let mut coverage = Coverage::new(&piece);
    assert!(coverage.add(piece.lo, piece.hi));
    assert_eq!(coverage.window(), (2, 5));
    let mut flush = GatherFlush::default();
    assert!(h
        .planner
        .plan_gather_flush(&coverage, &mut piece, &mut flush));
    assert_eq!(flush.reads.len(), 2, "the other two data chunks, rows 2..5");
    assert!(flush.reads.iter().all(|r| r.len_sectors == 3));
    assert_eq!(flush.parity.map(|p| p.len_sectors), Some(3));
}

#[test]
fn coverage_refuses_overlap_and_sees_neighbours() {
    let h = Harness::new(raid5_model());
    let mut piece = GatherPiece::default();
    assert!(h.planner.gather_piece(0, 8, &mut piece));
    let mut coverage = Coverage::new(&piece);
    assert!(coverage.add(0, 8));
    assert!(!coverage.add(7, 9), "overlaps sector 7");
    assert!(coverage.overlaps_uncovered(7, 9));
    assert!(!coverage.overlaps_uncovered(0, 8));
    assert!(
        !coverage.overlaps_uncovered(30, 40),
        "clipped to the stripe"
    );
    assert!(coverage.add(16, 24));
    assert!(!coverage.is_full());
    assert!(coverage.add(8, 16));
    assert!(coverage.is_full());
    assert_eq!(coverage.window(), (0, 8));
}

#[test]
fn a_degraded_stripe_is_not_gathered() {
    let mut model = raid5_model();
    model.roles[3] = None;
    let h = Harness::new(model);
    assert!(!h.planner.gather_piece(0, 8, &mut GatherPiece::default()));
}

#[test]
fn a_piece_crossing_stripes_is_not_gathered() {
    let h = Harness::new(raid5_model());
    assert!(!h.planner.gather_piece(20, 8, &mut GatherPiece::default()));
}

//! The start's replay on an array `plan_create` made, in memory: a write
//! to one chunk of a stripe is logged, its data lands and its parity does
//! not (the crash), and the start replays the log. A member still
//! recovering is read where it is past its checkpoint (md reads it there
//! too); below the checkpoint its chunk is not there, and the entry is
//! left alone.

use super::{open_logs, PplArea, PplDisks};
use crate::assemble::{assemble, AssembleOptions, Assembly, Candidate};
use crate::create::{plan_create, CreateSpec};
use crate::write::ppl::PplUnit;
use crate::write::{BufRef, WritePlan, WritePlanner};
use umd_formats::ppl::signature;
use umd_formats::probe::probe;

const MEMBER_BYTES: usize = 4 << 20;

struct Mem(Vec<Vec<u8>>);

impl PplDisks for Mem {
    fn read(&mut self, member: usize, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let at = offset as usize;
        buf.copy_from_slice(&self.0[member][at..at + buf.len()]);
        Ok(())
    }

    fn write(&mut self, member: usize, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let at = offset as usize;
        self.0[member][at..at + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self, _member: usize) -> Result<(), String> {
        Ok(())
    }
}

/// A 3-member PPL raid5 with 4 KiB chunks, all zeroes (parity right).
fn created() -> (Mem, Assembly, Vec<Option<PplArea>>) {
    let uuid = [7u8; 16];
    let plan = plan_create(&CreateSpec {
        level: 5,
        raid_disks: 3,
        chunk_kib: Some(4),
        layout: None,
        metadata: "1.2".into(),
        bitmap: false,
        bitmap_chunk_kib: None,
        ppl: true,
        name: "t".into(),
        assume_clean: true,
        member_bytes: vec![Some(MEMBER_BYTES as u64); 3],
        member_names: vec!["a".into(), "b".into(), "c".into()],
        uuid,
        device_uuids: (0..3u8).map(|i| [i + 1; 16]).collect(),
        ctime_seconds: 1_700_000_000,
    })
    .expect("create");
    let mut disks = Mem(vec![vec![0u8; MEMBER_BYTES]; 3]);
    for (m, writes) in plan.members.iter().enumerate() {
        for w in writes {
            let at = w.offset_bytes as usize;
            disks.0[m][at..at + w.bytes.len()].copy_from_slice(&w.bytes);
        }
    }
    let mut areas = Vec::new();
    let mut cands = Vec::new();
    for (index, d) in disks.0.iter().enumerate() {
        let mut read = |offset: u64, buf: &mut [u8]| {
            let at = offset as usize;
            buf.copy_from_slice(&d[at..at + buf.len()]);
            Ok(())
        };
        let metadata = probe(MEMBER_BYTES as u64, &mut read).expect("probe");
        areas.push(PplArea::of(&metadata));
        let info = metadata.infos().remove(0);
        cands.push(Candidate {
            index,
            name: format!("m{index}"),
            info,
        });
    }
    let assembly = assemble(&cands, &AssembleOptions::default()).expect("assemble");
    (disks, assembly, areas)
}

/// Log a write of one chunk (array sectors 8..16: the second data chunk of
/// stripe 0) and land only its data writes. Returns the data role written.
fn torn_write(disks: &mut Mem, assembly: &Assembly, areas: &[Option<PplArea>]) -> u32 {
    let planner = WritePlanner::new(
        assembly.geometry.clone(),
        assembly.member_map(),
        assembly.array_sectors,
    );
    let mut plan = WritePlan::default();
    planner.plan(8, 8, u64::MAX, &mut plan).expect("plan");
    let mut scratch = vec![0u8; plan.scratch_bytes];
    let member = |role: u32| {
        assembly.members[role as usize]
            .as_ref()
            .expect("whole")
            .index
    };
    for r in &plan.reads {
        let BufRef::Scratch { offset_bytes } = r.buf else {
            panic!("reads go to scratch")
        };
        let len = r.len_sectors as usize * 512;
        let at = r.device_sector as usize * 512;
        scratch[offset_bytes..offset_bytes + len]
            .copy_from_slice(&disks.0[member(r.role)][at..at + len]);
    }
    let mut unit = PplUnit::default();
    planner
        .partial_parity(&plan, &scratch, &mut unit)
        .expect("loggable");
    unit.seal(signature(&assembly.uuid.0), 1).expect("seal");
    let log_role = planner.log_role(&plan).expect("parity present");
    let area = areas[member(log_role)].expect("area");
    disks
        .write(member(log_role), area.sector * 512, &unit.bytes)
        .expect("log");
    let new = vec![0xa5u8; 8 * 512];
    planner.compute(&plan, &new, &mut scratch);
    let mut data_role = None;
    for w in &plan.writes {
        let BufRef::Data { offset_bytes } = w.buf else {
            continue; // the parity write is lost in the crash
        };
        let len = w.len_sectors as usize * 512;
        let at = w.device_sector as usize * 512;
        disks.0[member(w.role)][at..at + len]
            .copy_from_slice(&new[offset_bytes..offset_bytes + len]);
        data_role = Some(w.role);
    }
    data_role.expect("one data write")
}

/// Stripe 0's parity rows, and the XOR of its data rows, as bytes.
fn parity_and_xor(disks: &Mem, assembly: &Assembly) -> (Vec<u8>, Vec<u8>) {
    let mut parity = Vec::new();
    let mut xor = vec![0u8; 8 * 512];
    for m in assembly.members.iter().flatten() {
        let at = m.data_offset_sectors as usize * 512;
        let rows = &disks.0[m.index][at..at + 8 * 512];
        // Stripe 0 of left-symmetric raid5 keeps parity on the last role.
        if m.index == 2 {
            parity = rows.to_vec();
        } else {
            xor.iter_mut().zip(rows).for_each(|(x, b)| *x ^= b);
        }
    }
    (parity, xor)
}

#[test]
fn a_torn_stripe_is_replayed_and_the_array_starts_clean() {
    let (mut disks, mut assembly, areas) = created();
    torn_write(&mut disks, &assembly, &areas);
    let (parity, xor) = parity_and_xor(&disks, &assembly);
    assert_ne!(parity, xor, "the crash left parity stale");
    assembly.clean = false;
    let logs = open_logs(&mut assembly, areas, &mut disks)
        .expect("replay")
        .expect("a PPL array");
    assert_eq!((logs.replayed.entries, logs.replayed.mismatches), (1, 0));
    assert!(assembly.clean, "replay made every logged stripe consistent");
    let (parity, xor) = parity_and_xor(&disks, &assembly);
    assert_eq!(parity, xor, "replay rebuilt parity from what landed");
}

#[test]
fn a_recovering_member_counts_past_its_checkpoint_only() {
    for (checkpoint, replayed) in [(64, true), (0, false)] {
        let (mut disks, mut assembly, areas) = created();
        let role = torn_write(&mut disks, &assembly, &areas);
        assembly.clean = false;
        if let Some(m) = assembly.members[role as usize].as_mut() {
            m.recovery_offset_sectors = Some(checkpoint);
        }
        let logs = open_logs(&mut assembly, areas, &mut disks)
            .expect("replay")
            .expect("a PPL array");
        let (parity, xor) = parity_and_xor(&disks, &assembly);
        assert_eq!(
            (logs.replayed.entries == 1, parity == xor),
            (replayed, replayed),
            "checkpoint {checkpoint}: {:?}",
            logs.replayed
        );
        if !replayed {
            assert!(
                logs.replayed.notes.iter().any(|n| n.contains("missing")),
                "{:?}",
                logs.replayed.notes
            );
        }
    }
}

//! Degraded reads return what was written, for every level and every
//! combination of missing members the level survives.
//!
//! Members are built from random logical data: data placed by the layout,
//! parity computed by the scalar reference. Reading back through the
//! planner, with members removed, must give the logical data again.

use super::*;
use umd_layout::geometry::GeometrySpec;
use umd_layout::parity::scalar;

const SECTOR: usize = 512;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Build members for `spec` holding random data; returns member images.
fn build(spec: &GeometrySpec, seed: u64) -> (Geometry, Vec<Vec<u8>>, Vec<u8>) {
    let geometry = Geometry::new(spec).expect("valid test geometry");
    let array = geometry.array_sectors() as usize;
    let mut state = seed;
    let logical: Vec<u8> = (0..array * SECTOR)
        .map(|_| splitmix(&mut state) as u8)
        .collect();
    let member_len = spec
        .component_sectors
        .max(spec.member_sectors.iter().copied().max().unwrap_or(0));
    let mut members = vec![vec![0u8; member_len as usize * SECTOR]; spec.raid_disks as usize];
    let mut copies = Vec::new();
    let mut stripes = std::collections::BTreeSet::new();
    for sector in 0..array as u64 {
        let extent = geometry.locate(sector, &mut copies);
        let src = &logical[sector as usize * SECTOR..][..SECTOR];
        let places: Vec<Copy> = match extent.target {
            Target::Single(c) => vec![c],
            Target::Mirrored => copies.clone(),
            Target::Striped { data, stripe } => {
                stripes.insert((stripe, data.dev_sector));
                vec![data]
            }
        };
        for c in places {
            members[c.role as usize][c.dev_sector as usize * SECTOR..][..SECTOR]
                .copy_from_slice(src);
        }
    }
    let mut layout = StripeLayout::default();
    for (stripe, dev_sector) in stripes {
        geometry.stripe_layout(stripe, &mut layout);
        let at = dev_sector as usize * SECTOR;
        // raid4/5 stripes have no Q order: P is a plain XOR of the data.
        let slot_count = if layout.q_role.is_some() {
            layout.q_slot_count as usize
        } else {
            layout.data_roles.len()
        };
        let mut slots = vec![vec![0u8; SECTOR]; slot_count];
        for (j, &role) in layout.data_roles.iter().enumerate() {
            let slot = if layout.q_role.is_some() {
                layout.q_slots[j] as usize
            } else {
                j
            };
            slots[slot].copy_from_slice(&members[role as usize][at..][..SECTOR]);
        }
        let refs: Vec<&[u8]> = slots.iter().map(Vec::as_slice).collect();
        let mut p = vec![0u8; SECTOR];
        let mut q = vec![0u8; SECTOR];
        scalar::pq_gen(&refs, &mut p, &mut q);
        members[layout.p_role as usize][at..][..SECTOR].copy_from_slice(&p);
        if let Some(q_role) = layout.q_role {
            members[q_role as usize][at..][..SECTOR].copy_from_slice(&q);
        }
    }
    (geometry, members, logical)
}

fn read_all(
    geometry: &Geometry,
    members: &[Vec<u8>],
    missing: &[u32],
) -> Result<Vec<u8>, DataLost> {
    let map = MemberMap::new(
        (0..members.len() as u32)
            .map(|r| (!missing.contains(&r)).then_some((0, None)))
            .collect(),
    );
    let mut planner = ReadPlanner::new(geometry.clone(), map, geometry.array_sectors());
    let mut out = Vec::new();
    let mut plan = ReadPlan::default();
    let mut sector = 0;
    while sector < planner.array_sectors() {
        planner.plan(sector, 1 << 20, &mut plan)?;
        let len = plan.len_sectors as usize * SECTOR;
        let mut bufs = vec![vec![0xeeu8; len]; plan.buffers];
        for r in &plan.reads {
            assert!(!missing.contains(&r.role), "plan reads a missing member");
            let at = r.device_sector as usize * SECTOR;
            bufs[r.buffer].copy_from_slice(&members[r.role as usize][at..][..len]);
        }
        let mut refs: Vec<&mut [u8]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
        planner.finish(&plan, &mut refs);
        out.extend_from_slice(&bufs[0]);
        sector += plan.len_sectors;
    }
    Ok(out)
}

fn spec(level: i32, layout: u32, disks: u32, chunk: u32, component: u64) -> GeometrySpec {
    GeometrySpec {
        level,
        layout,
        chunk_sectors: chunk,
        raid_disks: disks,
        member_sectors: vec![component; disks as usize],
        component_sectors: component,
        raid0_layout: None,
    }
}

fn check_every_loss(spec: &GeometrySpec, tolerated: usize) {
    let (geometry, members, logical) = build(
        spec,
        u64::from(spec.layout) * 7 + u64::from(spec.raid_disks),
    );
    assert!(read_all(&geometry, &members, &[]).expect("healthy read") == logical);
    let n = spec.raid_disks;
    for a in 0..n {
        let got = read_all(&geometry, &members, &[a]);
        assert!(
            got.expect("one missing member") == logical,
            "level {} layout {} missing {a}",
            spec.level,
            spec.layout
        );
        if tolerated >= 2 {
            for b in a + 1..n {
                let got = read_all(&geometry, &members, &[a, b]);
                assert!(
                    got.expect("two missing") == logical,
                    "layout {} missing {a},{b}",
                    spec.layout
                );
            }
        }
    }
}

#[test]
fn raid5_every_algorithm_survives_any_one_loss() {
    for layout in 0..=5 {
        check_every_loss(&spec(5, layout, 4, 8, 64), 1);
    }
    check_every_loss(&spec(4, 0, 3, 16, 64), 1);
}

#[test]
fn raid6_every_algorithm_survives_any_two_losses() {
    for layout in [0, 1, 2, 3, 4, 5, 8, 9, 10, 16, 17, 18, 19, 20] {
        check_every_loss(&spec(6, layout, 6, 8, 48), 2);
    }
}

#[test]
fn raid6_three_losses_are_reported() {
    let (geometry, members, _) = build(&spec(6, 2, 5, 8, 32), 1);
    assert!(read_all(&geometry, &members, &[0, 1, 2]).is_err());
}

#[test]
fn mirrors_read_from_any_surviving_copy() {
    check_every_loss(&spec(1, 0, 3, 0, 40), 2);
    for layout in [0x102, 0x201, 0x10201] {
        check_every_loss(&spec(10, layout, 4, 8, 64), 1);
    }
}

#[test]
fn recovery_offset_limits_a_member() {
    let (geometry, members, logical) = build(&spec(1, 0, 2, 0, 64), 3);
    // Role 0 valid only below sector 16: reads above must come from role 1.
    let map = MemberMap::new(vec![Some((0, Some(16))), Some((0, None))]);
    let mut planner = ReadPlanner::new(geometry, map, 64);
    let mut plan = ReadPlan::default();
    planner.plan(20, 8, &mut plan).expect("role 1 has it");
    assert_eq!(plan.reads[0].role, 1);
    planner.mark_failed(1);
    assert!(planner.plan(20, 8, &mut plan).is_err());
    planner
        .plan(0, 8, &mut plan)
        .expect("role 0 valid below 16");
    assert_eq!(&members[0][..8 * SECTOR], &logical[..8 * SECTOR]);
}

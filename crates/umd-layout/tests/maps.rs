//! Sector maps of every level checked against formats.md §4.
//!
//! Three kinds of evidence, none of which trusts the code under test:
//! - `reference`: a deliberately naive per-sector model written straight from
//!   the formulas of formats.md §4 (different code shape from `src/map`), and
//!   proptests that `Geometry` agrees with it on random geometries and sectors;
//! - bijection: on small random geometries, every logical sector and every
//!   member sector is enumerated and the two directions must match exactly;
//! - fixed facts stated in formats.md (worked examples verified on real images).

use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use umd_layout::geometry::Raid0Layout;
use umd_layout::{Copy, Extent, Geometry, GeometrySpec, LayoutError, Level, StripeLayout, Target};

/// The naive model. Every function recomputes everything from the spec.
// The single-letter names are formats.md's notation (L, C, S, j, p, q, n, d).
#[allow(clippy::many_single_char_names)]
mod reference {
    use super::GeometrySpec;
    use umd_layout::geometry::Raid0Layout;

    fn c(spec: &GeometrySpec) -> u64 {
        u64::from(spec.chunk_sectors)
    }

    /// raid0 zones as (array start, device start, device end, roles).
    pub(super) fn raid0_zones(spec: &GeometrySpec) -> Vec<(u64, u64, u64, Vec<u32>)> {
        let sizes: Vec<u64> = spec
            .member_sectors
            .iter()
            .map(|s| s / c(spec) * c(spec))
            .collect();
        let mut distinct: Vec<u64> = sizes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let mut zones = Vec::new();
        let (mut z_prev, mut array_at) = (0u64, 0u64);
        for z in distinct {
            // zone contains the members whose size is greater than its start
            let roles: Vec<u32> = (0..sizes.len())
                .filter(|&r| sizes[r] > z_prev)
                .map(|r| r as u32)
                .collect();
            zones.push((array_at, z_prev, z, roles.clone()));
            array_at += (z - z_prev) * roles.len() as u64;
            z_prev = z;
        }
        zones
    }

    pub(super) fn raid0_layout(spec: &GeometrySpec) -> Option<Raid0Layout> {
        let zones = raid0_zones(spec);
        if zones.len() == 1 || zones[1].3.len() == 1 {
            Some(Raid0Layout::Original)
        } else {
            spec.raid0_layout
        }
    }

    /// (nc, fc, offset, far_set_size)
    fn r10(spec: &GeometrySpec) -> (u64, u64, bool, u64) {
        let l = spec.layout;
        let nc = u64::from(l & 0xff);
        let fc = u64::from((l >> 8) & 0xff);
        let n = u64::from(spec.raid_disks);
        let fss = match l >> 17 {
            0 => n,
            1 => n / fc,
            _ => nc * fc,
        };
        (nc, fc, l & 0x10000 != 0, fss)
    }

    fn r10_array_chunks(spec: &GeometrySpec) -> u64 {
        let (nc, fc, _, _) = r10(spec);
        let cd = spec.component_sectors / c(spec);
        (cd / fc) * u64::from(spec.raid_disks) / nc
    }

    fn r10_stride(spec: &GeometrySpec) -> u64 {
        let (nc, fc, offset, _) = r10(spec);
        if offset {
            return c(spec);
        }
        let n = u64::from(spec.raid_disks);
        let used = (r10_array_chunks(spec) * nc * fc).div_ceil(n);
        (used / fc) * c(spec)
    }

    fn r10_far_move(spec: &GeometrySpec, prev: u64) -> u64 {
        let (nc, _, _, fss) = r10(spec);
        let n = u64::from(spec.raid_disks);
        let last_start = (n / fss - 1) * fss;
        let last_size = fss + n % fss;
        if n % fss != 0 && prev + nc > last_start {
            last_start + (prev + nc - last_start) % last_size
        } else {
            (prev / fss) * fss + (prev + nc) % fss
        }
    }

    /// Whether the far move sends distinct roles to distinct roles.
    pub(super) fn raid10_far_move_permutes(spec: &GeometrySpec) -> bool {
        let n = u64::from(spec.raid_disks);
        let (_, fc, _, _) = r10(spec);
        let moved: std::collections::HashSet<u64> = (0..n).map(|p| r10_far_move(spec, p)).collect();
        fc == 1 || moved.len() as u64 == n
    }

    /// Whether md's formulas store two chunks at one place (brute force over
    /// every chunk's copies at offset 0).
    pub(super) fn raid10_collides(spec: &GeometrySpec) -> bool {
        let mut seen = std::collections::HashSet::new();
        (0..r10_array_chunks(spec))
            .flat_map(|k| locate(spec, k * c(spec)))
            .any(|loc| !seen.insert(loc))
    }

    pub(super) fn array_sectors(spec: &GeometrySpec) -> u64 {
        let n = u64::from(spec.raid_disks);
        match spec.level {
            -1 => spec
                .member_sectors
                .iter()
                .map(|&s| {
                    if spec.chunk_sectors == 0 {
                        s
                    } else {
                        s / c(spec) * c(spec)
                    }
                })
                .sum(),
            0 => raid0_zones(spec)
                .iter()
                .map(|z| (z.2 - z.1) * z.3.len() as u64)
                .sum(),
            1 => spec.component_sectors,
            4 | 5 => (n - 1) * (spec.component_sectors / c(spec) * c(spec)),
            6 => (n - 2) * (spec.component_sectors / c(spec) * c(spec)),
            10 => r10_array_chunks(spec) * c(spec),
            _ => unreachable!(),
        }
    }

    /// raid4/5: (P disk, data disk of j) for stripe s.
    fn raid5(spec: &GeometrySpec, s: u64, j: u64) -> (u64, u64) {
        let n = u64::from(spec.raid_disks);
        let d = n - 1;
        if spec.level == 4 {
            return (d, j);
        }
        match spec.layout {
            0 => {
                let p = d - s % n;
                (p, if j < p { j } else { j + 1 })
            }
            1 => {
                let p = s % n;
                (p, if j < p { j } else { j + 1 })
            }
            2 => {
                let p = d - s % n;
                (p, (p + 1 + j) % n)
            }
            3 => {
                let p = s % n;
                (p, (p + 1 + j) % n)
            }
            4 => (0, j + 1),
            5 => (d, j),
            _ => unreachable!(),
        }
    }

    /// raid6: (P, Q, data disk of j) for stripe s.
    fn raid6(spec: &GeometrySpec, s: u64, j: u64) -> (u64, u64, u64) {
        let n = u64::from(spec.raid_disks);
        let m = n - 1;
        let asym = |p: u64| {
            if p == n - 1 {
                (p, 0, j + 1)
            } else {
                (p, p + 1, if j < p { j } else { j + 2 })
            }
        };
        match spec.layout {
            0 => asym(n - 1 - s % n),
            1 | 8 => asym(s % n),
            9 => asym(n - 1 - (s + 1) % n),
            2 => {
                let p = n - 1 - s % n;
                (p, (p + 1) % n, (p + 2 + j) % n)
            }
            3 => {
                let p = s % n;
                (p, (p + 1) % n, (p + 2 + j) % n)
            }
            4 => (0, 1, j + 2),
            5 => (n - 2, n - 1, j),
            10 => {
                let p = n - 1 - s % n;
                (p, (p + n - 1) % n, (p + 1 + j) % n)
            }
            16 => {
                let p = (m - 1) - s % m;
                (p, n - 1, if j < p { j } else { j + 1 })
            }
            17 => {
                let p = s % m;
                (p, n - 1, if j < p { j } else { j + 1 })
            }
            18 => {
                let p = (m - 1) - s % m;
                (p, n - 1, (p + 1 + j) % m)
            }
            19 => {
                let p = s % m;
                (p, n - 1, (p + 1 + j) % m)
            }
            20 => (0, n - 1, j + 1),
            _ => unreachable!(),
        }
    }

    /// Data disks of stripe `s` in j order, with P and Q.
    pub(super) fn stripe(spec: &GeometrySpec, s: u64) -> (u64, Option<u64>, Vec<u64>) {
        let n = u64::from(spec.raid_disks);
        if spec.level == 6 {
            let (p, q, _) = raid6(spec, s, 0);
            (
                p,
                Some(q),
                (0..n - 2).map(|j| raid6(spec, s, j).2).collect(),
            )
        } else {
            let (p, _) = raid5(spec, s, 0);
            (p, None, (0..n - 1).map(|j| raid5(spec, s, j).1).collect())
        }
    }

    /// Q slot of each data disk (formats.md §4.5 "Slot order").
    pub(super) fn q_slots(
        spec: &GeometrySpec,
        p: u64,
        q: u64,
    ) -> std::collections::HashMap<u64, u64> {
        let n = u64::from(spec.raid_disks);
        let mut slots = std::collections::HashMap::new();
        if matches!(spec.layout, 8..=10) {
            for disk in 0..n {
                if disk != p && disk != q {
                    slots.insert(disk, disk);
                }
            }
            return slots;
        }
        let mut disk = if q == n - 1 { 0 } else { q + 1 };
        let mut t = 0;
        for _ in 0..n {
            if disk != p && disk != q {
                slots.insert(disk, t);
                t += 1;
            }
            disk = (disk + 1) % n;
        }
        slots
    }

    /// Every (role, device sector) holding logical sector `l`, first copy first.
    pub(super) fn locate(spec: &GeometrySpec, l: u64) -> Vec<(u32, u64)> {
        let n = u64::from(spec.raid_disks);
        match spec.level {
            -1 => {
                let mut rest = l;
                for (r, &s) in spec.member_sectors.iter().enumerate() {
                    let s = if spec.chunk_sectors == 0 {
                        s
                    } else {
                        s / c(spec) * c(spec)
                    };
                    if rest < s {
                        return vec![(r as u32, rest)];
                    }
                    rest -= s;
                }
                unreachable!()
            }
            0 => {
                let layout = raid0_layout(spec).unwrap();
                for (z_start, d_start, d_end, roles) in raid0_zones(spec) {
                    let m = roles.len() as u64;
                    if l >= z_start + (d_end - d_start) * m {
                        continue;
                    }
                    let r = l - z_start;
                    let idx = match layout {
                        Raid0Layout::Original => (l / c(spec)) % m,
                        Raid0Layout::AlternateMultizone => (r / c(spec)) % m,
                    };
                    let s = d_start + (r / (c(spec) * m)) * c(spec) + l % c(spec);
                    return vec![(roles[idx as usize], s)];
                }
                unreachable!()
            }
            1 => (0..spec.raid_disks).map(|r| (r, l)).collect(),
            4..=6 => {
                let d = if spec.level == 6 { n - 2 } else { n - 1 };
                let k = l / c(spec);
                let (s, j) = (k / d, k % d);
                let disk = stripe(spec, s).2[j as usize];
                vec![(disk as u32, s * c(spec) + l % c(spec))]
            }
            10 => {
                let (nc, fc, offset, _) = r10(spec);
                let cc = (l / c(spec)) * nc;
                let mut row = cc / n;
                let dev = cc % n;
                if offset {
                    row *= fc;
                }
                let b = row * c(spec) + l % c(spec);
                let mut out = Vec::new();
                for a in 0..nc {
                    let (mut dev_a, mut b_a) = (dev + a, b);
                    if dev_a >= n {
                        dev_a -= n;
                        b_a += c(spec);
                    }
                    out.push((dev_a as u32, b_a));
                    for f in 1..fc {
                        dev_a = r10_far_move(spec, dev_a);
                        out.push((dev_a as u32, b_a + f * r10_stride(spec)));
                    }
                }
                out
            }
            _ => unreachable!(),
        }
    }
}

const RAID6_LAYOUTS: [u32; 14] = [0, 1, 2, 3, 4, 5, 8, 9, 10, 16, 17, 18, 19, 20];

fn spec(level: i32, layout: u32, chunk: u32, n: u32, component: u64) -> GeometrySpec {
    GeometrySpec {
        level,
        layout,
        chunk_sectors: chunk,
        raid_disks: n,
        member_sectors: Vec::new(),
        component_sectors: component,
        raid0_layout: None,
    }
}

/// Random valid specs of every level. `chunks_max` bounds member sizes in chunks.
fn any_spec(
    chunk_exp: std::ops::RangeInclusive<u32>,
    chunks_max: u64,
) -> BoxedStrategy<GeometrySpec> {
    let chunk = chunk_exp.prop_map(|e| 1u32 << e);
    let sizes = move |n: u32, c: u32| {
        proptest::collection::vec((1..=chunks_max, 0..u64::from(c.max(1))), n as usize).prop_map(
            move |v| {
                v.into_iter()
                    .map(|(k, x)| k * u64::from(c.max(1)) + x)
                    .collect::<Vec<u64>>()
            },
        )
    };
    let comp = move |c: u32| {
        (1..=chunks_max, 0..u64::from(c)).prop_map(move |(k, x)| k * u64::from(c) + x)
    };
    let linear = (2..=16u32, prop_oneof![Just(0u32), chunk.clone()])
        .prop_flat_map(move |(n, c)| (Just(n), Just(c), sizes(n, c)))
        .prop_map(|(n, c, m)| GeometrySpec {
            member_sectors: m,
            ..spec(-1, 0, c, n, 0)
        });
    let raid0_chunk = prop_oneof![chunk.clone(), (1..=64u32).prop_map(|k| 8 * k)];
    let raid0 = (
        2..=16u32,
        raid0_chunk,
        prop_oneof![
            Just(Raid0Layout::Original),
            Just(Raid0Layout::AlternateMultizone)
        ],
    )
        .prop_flat_map(move |(n, c, lay)| (Just(n), Just(c), Just(lay), sizes(n, c)))
        .prop_map(|(n, c, lay, m)| GeometrySpec {
            member_sectors: m,
            raid0_layout: Some(lay),
            ..spec(0, 0, c, n, 0)
        });
    let raid1 = (1..=16u32, 1..=chunks_max * 64).prop_map(|(n, s)| spec(1, 0, 0, n, s));
    let raid4 = (2..=16u32, prop_oneof![Just(0u32), Just(5)], chunk.clone())
        .prop_flat_map(move |(n, l, c)| (Just(n), Just(l), Just(c), comp(c)))
        .prop_map(|(n, l, c, s)| spec(4, l, c, n, s));
    let raid5 = (2..=16u32, 0..=5u32, chunk.clone())
        .prop_flat_map(move |(n, l, c)| (Just(n), Just(l), Just(c), comp(c)))
        .prop_map(|(n, l, c, s)| spec(5, l, c, n, s));
    let raid6 = (
        4..=16u32,
        proptest::sample::select(RAID6_LAYOUTS.to_vec()),
        chunk.clone(),
    )
        .prop_flat_map(move |(n, l, c)| (Just(n), Just(l), Just(c), comp(c)))
        .prop_map(|(n, l, c, s)| spec(6, l, c, n, s));
    let raid10 = (
        2..=16u32,
        1..=4u32,
        1..=4u32,
        any::<bool>(),
        0..=2u32,
        chunk,
    )
        .prop_filter("copies in 2..=n", |&(n, nc, fc, _, _, _)| {
            nc * fc >= 2 && nc * fc <= n
        })
        .prop_flat_map(move |(n, nc, fc, off, sets, c)| {
            let layout = nc | fc << 8 | u32::from(off) << 16 | sets << 17;
            let min = u64::from(fc * c);
            (
                Just(n),
                Just(layout),
                Just(c),
                (0..=chunks_max * u64::from(fc) * u64::from(c)).prop_map(move |x| x + min),
            )
        })
        .prop_map(|(n, l, c, s)| spec(10, l, c, n, s));
    prop_oneof![linear, raid0, raid1, raid4, raid5, raid6, raid10].boxed()
}

/// `Geometry::new` on a generated spec. Only raid10 may be refused: when
/// the component holds no whole array chunk, or when md's formulas (the
/// reference) would put two chunks in one place, which is then checked.
fn build(spec: &GeometrySpec) -> Option<Geometry> {
    let collides = spec.level == 10 && reference::raid10_collides(spec);
    match Geometry::new(spec) {
        Ok(g) => {
            assert!(
                !collides,
                "{spec:?} accepted but md's map puts two chunks in one place"
            );
            Some(g)
        }
        Err(LayoutError::BadLayout {
            level: Level::Raid10,
            ..
        }) if collides || !reference::raid10_far_move_permutes(spec) => None,
        Err(LayoutError::BadMemberSize(_)) if reference::array_sectors(spec) == 0 => None,
        Err(e) => panic!("valid spec {spec:?} refused: {e}"),
    }
}

/// The locations `locate` reports, in its order.
fn locations(extent: &Extent, copies: &[Copy]) -> Vec<(u32, u64)> {
    match extent.target {
        Target::Single(c) | Target::Striped { data: c, .. } => {
            assert!(copies.is_empty(), "copies filled for a single target");
            vec![(c.role, c.dev_sector)]
        }
        Target::Mirrored => copies.iter().map(|c| (c.role, c.dev_sector)).collect(),
    }
}

fn parity_roles(g: &Geometry, stripe: u64) -> Vec<u32> {
    let mut sl = StripeLayout::default();
    g.stripe_layout(stripe, &mut sl);
    let mut v = vec![sl.p_role];
    v.extend(sl.q_role);
    v
}

fn check_against_reference(spec: &GeometrySpec, g: &Geometry, l: u64) {
    let mut copies = Vec::new();
    let extent = g.locate(l, &mut copies);
    let got = locations(&extent, &copies);
    assert_eq!(got, reference::locate(spec, l), "sector {l} of {spec:?}");
    for &(role, dev_sector) in &got {
        assert_eq!(
            g.reverse(Copy { role, dev_sector }),
            Some(l),
            "reverse of {role}/{dev_sector}"
        );
    }
    let c = u64::from(spec.chunk_sectors);
    match spec.level {
        1 => assert_eq!(extent.len_sectors, spec.component_sectors - l),
        -1 => {
            // runs to the end of the member: the next sector is on another role
            let end = l + extent.len_sectors;
            let (role, _) = got[0];
            assert!(end == g.array_sectors() || reference::locate(spec, end)[0].0 != role);
            assert_eq!(reference::locate(spec, end - 1)[0].0, role);
        }
        _ => assert_eq!(extent.len_sectors, c - l % c),
    }
    if let Target::Striped { stripe, .. } = extent.target {
        let d = u64::from(spec.raid_disks - Level::from_md(spec.level).unwrap().parity_members());
        assert_eq!(stripe, l / c / d);
        check_stripe(spec, g, stripe);
    }
}

fn check_stripe(spec: &GeometrySpec, g: &Geometry, stripe: u64) {
    let mut sl = StripeLayout::default();
    g.stripe_layout(stripe, &mut sl);
    let (p, q, data) = reference::stripe(spec, stripe);
    assert_eq!(u64::from(sl.p_role), p);
    assert_eq!(sl.q_role.map(u64::from), q);
    assert_eq!(
        sl.data_roles
            .iter()
            .map(|&r| u64::from(r))
            .collect::<Vec<_>>(),
        data
    );
    if let Some(q) = q {
        let slots = reference::q_slots(spec, p, q);
        let want: Vec<u64> = data.iter().map(|d| slots[d]).collect();
        assert_eq!(
            sl.q_slots.iter().map(|&s| u64::from(s)).collect::<Vec<_>>(),
            want
        );
        let count = if matches!(spec.layout, 8..=10) {
            spec.raid_disks
        } else {
            spec.raid_disks - 2
        };
        assert_eq!(sl.q_slot_count, count);
    } else {
        assert!(sl.q_slots.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn locate_agrees_with_reference(
        spec in any_spec(3..=11, 64),
        picks in proptest::collection::vec(any::<u64>(), 16),
    ) {
        let Some(g) = build(&spec) else { return Ok(()) };
        prop_assert_eq!(g.array_sectors(), reference::array_sectors(&spec));
        if spec.level == 0 {
            prop_assert_eq!(g.raid0_layout(), reference::raid0_layout(&spec));
        }
        let a = g.array_sectors();
        check_against_reference(&spec, &g, 0);
        check_against_reference(&spec, &g, a - 1);
        for p in picks {
            check_against_reference(&spec, &g, p % a);
        }
    }

    #[test]
    fn every_map_is_a_bijection_onto_data(spec in any_spec(3..=5, 6)) {
        let Some(g) = build(&spec) else { return Ok(()) };
        prop_assume!(g.array_sectors() <= 20_000);
        check_bijection(&g);
    }
}

/// Forward: all locations distinct, inside the used range, off parity, and
/// reversible. Backward: every used member sector is data of exactly the
/// logical sector `reverse` names, or parity / unused tail.
fn check_bijection(g: &Geometry) {
    let mut seen: HashMap<(u32, u64), u64> = HashMap::new();
    let mut copies = Vec::new();
    for l in 0..g.array_sectors() {
        let extent = g.locate(l, &mut copies);
        let locs = locations(&extent, &copies);
        assert_eq!(locs.len(), g.copies() as usize);
        let parity = match extent.target {
            Target::Striped { stripe, .. } => parity_roles(g, stripe),
            _ => Vec::new(),
        };
        for (role, s) in locs {
            assert!(
                s < g.member_used_sectors(role),
                "{role}/{s} beyond used range"
            );
            assert!(!parity.contains(&role), "data of {l} on parity role {role}");
            assert_eq!(
                seen.insert((role, s), l),
                None,
                "{role}/{s} holds two sectors"
            );
            assert_eq!(
                g.reverse(Copy {
                    role,
                    dev_sector: s
                }),
                Some(l)
            );
        }
    }
    let mut data_sectors = 0u64;
    let mut unused = 0u64;
    for role in 0..g.raid_disks() {
        let used = g.member_used_sectors(role);
        assert_eq!(
            g.reverse(Copy {
                role,
                dev_sector: used
            }),
            None
        );
        for s in 0..used {
            match g.reverse(Copy {
                role,
                dev_sector: s,
            }) {
                Some(l) => {
                    assert_eq!(seen.get(&(role, s)), Some(&l), "reverse {role}/{s} -> {l}");
                    data_sectors += 1;
                }
                None if g.level().parity_members() > 0 => {
                    let stripe = s / u64::from(g.chunk_sectors());
                    assert!(
                        parity_roles(g, stripe).contains(&role),
                        "{role}/{s} neither"
                    );
                }
                None => {
                    assert_eq!(
                        g.level(),
                        Level::Raid10,
                        "only raid10 leaves unused sectors"
                    );
                    unused += 1;
                }
            }
        }
    }
    assert_eq!(data_sectors, g.array_sectors() * u64::from(g.copies()));
    assert_eq!(data_sectors as usize, seen.len());
    let _ = unused;
}

#[test]
fn raid0_zones_worked_example() {
    // formats.md §4.2: 2048/2048/1024 KiB members.
    let mut s = spec(0, 0, 128, 3, 0);
    s.member_sectors = vec![4096, 4096, 2048];
    // A second zone with two members: the layout must be recorded.
    assert_eq!(Geometry::new(&s), Err(LayoutError::Raid0LayoutUnknown));
    s.raid0_layout = Some(Raid0Layout::Original);
    let g = Geometry::new(&s).unwrap();
    assert_eq!(g.array_sectors(), 3 * 2048 + 2 * 2048);
    let mut copies = Vec::new();
    let zone1_start = 3 * 2048;
    let mut roles = HashSet::new();
    for l in zone1_start..g.array_sectors() {
        let Target::Single(c) = g.locate(l, &mut copies).target else {
            panic!("raid0 is single")
        };
        assert!(c.dev_sector >= 2048, "zone 1 starts at device sector 2048");
        roles.insert(c.role);
    }
    assert_eq!(roles, HashSet::from([0, 1]));
    let Target::Single(c) = g.locate(zone1_start, &mut copies).target else {
        unreachable!()
    };
    assert_eq!(c.dev_sector, 2048);
}

#[test]
fn raid0_orig_and_alt_differ_only_after_zone0() {
    let mut s = spec(0, 0, 8, 3, 0);
    // zone 0: 3 x 8 sectors (3 chunks, odd, so zone 1 starts on an odd chunk)
    s.member_sectors = vec![64, 64, 8];
    s.raid0_layout = None;
    assert_eq!(Geometry::new(&s), Err(LayoutError::Raid0LayoutUnknown));
    s.raid0_layout = Some(Raid0Layout::Original);
    let orig = Geometry::new(&s).unwrap();
    s.raid0_layout = Some(Raid0Layout::AlternateMultizone);
    let alt = Geometry::new(&s).unwrap();
    let mut copies = Vec::new();
    let role = |g: &Geometry, l| match g.locate(l, &mut Vec::new()).target {
        Target::Single(c) => c,
        _ => unreachable!(),
    };
    for l in 0..24 {
        assert_eq!(role(&orig, l), role(&alt, l));
    }
    // zone 1 starts at array chunk 3: ORIG index = 3 mod 2 = 1, ALT index = 0.
    assert_eq!(role(&orig, 24).role, 1);
    assert_eq!(role(&alt, 24).role, 0);
    assert_eq!(role(&orig, 24).dev_sector, 8);
    assert_eq!(role(&alt, 24).dev_sector, 8);
    let _ = orig.locate(24, &mut copies);
    // Single-member second zone: no layout needed, and it is ORIG.
    s.member_sectors = vec![64, 8, 8];
    s.raid0_layout = None;
    assert_eq!(
        Geometry::new(&s).unwrap().raid0_layout(),
        Some(Raid0Layout::Original)
    );
}

#[test]
fn raid10_n2_two_disks_size() {
    // formats.md §4.6: n2 on 2 disks, size 4096, C 1024 -> 4096 sectors.
    let g = Geometry::new(&spec(10, 0x102, 1024, 2, 4096)).unwrap();
    assert_eq!(g.array_sectors(), 4096);
    let mut copies = Vec::new();
    g.locate(1500, &mut copies);
    assert_eq!(
        copies,
        vec![
            Copy {
                role: 0,
                dev_sector: 1500
            },
            Copy {
                role: 1,
                dev_sector: 1500
            }
        ]
    );
}

#[test]
fn raid10_far_size_divides_by_far_copies_first() {
    // formats.md §8 pitfall 8: 5 chunks per device, f2 on 3 disks:
    // floor(5 / 2) x 3 / 1 = 6 chunks, not floor(5 x 3 / 2) = 7.
    let g = Geometry::new(&spec(10, 0x201, 8, 3, 40)).unwrap();
    assert_eq!(g.array_sectors(), 6 * 8);
}

#[test]
fn ddf_raid10_2x2_spanned_is_md_n2_on_4() {
    // formats.md §4.6/§5.1: pairs (0,1) and (2,3) each mirror, spanned.
    let pair_size = 64u64;
    let g = Geometry::new(&spec(10, 0x102, 8, 4, pair_size)).unwrap();
    assert_eq!(g.array_sectors(), 2 * pair_size);
    let mut copies = Vec::new();
    for l in 0..g.array_sectors() {
        g.locate(l, &mut copies);
        let roles: Vec<u32> = copies.iter().map(|c| c.role).collect();
        assert!(
            roles == [0, 1] || roles == [2, 3],
            "copies of {l} are one pair: {roles:?}"
        );
        assert_eq!(copies[0].dev_sector, copies[1].dev_sector);
    }
}

#[test]
fn raid6_asymmetric_slot_example() {
    // formats.md §4.5: n = 5, p = 2, q = 3 (left-asymmetric stripe 2).
    let g = Geometry::new(&spec(6, 0, 8, 5, 64)).unwrap();
    let mut sl = StripeLayout::default();
    g.stripe_layout(2, &mut sl);
    assert_eq!((sl.p_role, sl.q_role), (2, Some(3)));
    assert_eq!(sl.data_roles, vec![0, 1, 4]);
    // disk4 -> slot 0, disk0 -> 1, disk1 -> 2
    assert_eq!(sl.q_slots, vec![1, 2, 0]);
    assert_eq!(sl.q_slot_count, 3);
}

#[test]
fn raid6_ddf_first_stripes() {
    let mut sl = StripeLayout::default();
    // layout 9: first stripe is D D .. D P Q, physical Q slots.
    let g = Geometry::new(&spec(6, 9, 8, 5, 64)).unwrap();
    g.stripe_layout(0, &mut sl);
    assert_eq!(
        (sl.p_role, sl.q_role, sl.data_roles.clone()),
        (3, Some(4), vec![0, 1, 2])
    );
    assert_eq!((sl.q_slots.clone(), sl.q_slot_count), (vec![0, 1, 2], 5));
    // layout 10: Q just before P, in every stripe.
    let g = Geometry::new(&spec(6, 10, 8, 5, 64)).unwrap();
    for stripe in 0..10 {
        g.stripe_layout(stripe, &mut sl);
        assert_eq!(sl.q_role, Some((sl.p_role + 4) % 5));
        assert_eq!(sl.q_slots, sl.data_roles, "DDF slots are physical");
    }
}

#[test]
fn hot_path_does_not_reallocate() {
    let g = Geometry::new(&spec(10, 0x10202, 8, 8, 4096)).unwrap();
    let mut copies = Vec::with_capacity(g.copies() as usize);
    let cap = copies.capacity();
    for l in (0..g.array_sectors()).step_by(7) {
        g.locate(l, &mut copies);
        assert_eq!(copies.capacity(), cap);
    }
    let g = Geometry::new(&spec(6, 2, 8, 8, 4096)).unwrap();
    let mut sl = StripeLayout {
        data_roles: Vec::with_capacity(8),
        q_slots: Vec::with_capacity(8),
        ..StripeLayout::default()
    };
    let ptrs = (sl.data_roles.as_ptr(), sl.q_slots.as_ptr());
    for stripe in 0..100 {
        g.stripe_layout(stripe, &mut sl);
        assert_eq!((sl.data_roles.as_ptr(), sl.q_slots.as_ptr()), ptrs);
    }
}

#[test]
fn refusals() {
    let bad = |s: GeometrySpec| Geometry::new(&s).unwrap_err();
    assert_eq!(bad(spec(7, 0, 8, 3, 64)), LayoutError::UnsupportedLevel(7));
    assert_eq!(bad(spec(5, 2, 12, 3, 64)), LayoutError::BadChunk(12));
    assert_eq!(bad(spec(5, 2, 4, 3, 64)), LayoutError::BadChunk(4));
    assert_eq!(bad(spec(10, 0x102, 24, 4, 64)), LayoutError::BadChunk(24));
    assert!(matches!(
        bad(spec(5, 6, 8, 3, 64)),
        LayoutError::BadLayout { .. }
    ));
    assert!(matches!(
        bad(spec(6, 7, 8, 4, 64)),
        LayoutError::BadLayout { .. }
    ));
    assert!(matches!(
        bad(spec(10, 0x102 | 1 << 19, 8, 4, 64)),
        LayoutError::BadLayout { .. }
    ));
    assert!(matches!(
        bad(spec(10, 0x102 | 3 << 17, 8, 4, 64)),
        LayoutError::BadLayout { .. }
    ));
    assert_eq!(bad(spec(6, 2, 8, 3, 64)), LayoutError::BadDiskCount(3));
    assert_eq!(bad(spec(5, 2, 8, 1, 64)), LayoutError::BadDiskCount(1));
    assert_eq!(bad(spec(10, 0x103, 8, 2, 64)), LayoutError::BadDiskCount(2));
    assert_eq!(bad(spec(10, 0x101, 8, 2, 64)), LayoutError::BadDiskCount(2));
    assert!(matches!(
        bad(spec(5, 2, 8, 3, 7)),
        LayoutError::BadMemberSize(_)
    ));
    let mut s = spec(0, 0, 8, 2, 0);
    s.member_sectors = vec![64];
    assert!(matches!(bad(s.clone()), LayoutError::BadMemberSize(_)));
    s.member_sectors = vec![64, 7];
    assert!(matches!(bad(s.clone()), LayoutError::BadMemberSize(_)));
    s.chunk_sectors = 12;
    s.member_sectors = vec![64, 64];
    assert_eq!(bad(s), LayoutError::BadChunk(12));
    // raid5 rounds the component down to the chunk, as md does.
    assert_eq!(
        Geometry::new(&spec(5, 2, 8, 3, 63))
            .unwrap()
            .array_sectors(),
        2 * 56
    );
}

#[test]
fn raid10_far_set_refusal() {
    // Far sets of 4 on 9 disks with n2 f2: md's move sends roles 3 and 8 to
    // the same role, so two chunks would share sectors.
    let layout = 0x202 | 2 << 17;
    assert!(matches!(
        Geometry::new(&spec(10, layout, 8, 9, 640)),
        Err(LayoutError::BadLayout {
            level: Level::Raid10,
            ..
        })
    ));
    // Sets that divide raid_disks are fine.
    assert!(Geometry::new(&spec(10, layout, 8, 8, 640)).is_ok());
}

//! What a DDF virtual disk's condition is, from the states of its physical
//! disks: mdadm's `get_bvd_state`, `secondary_state` and `get_svd_state`.
//!
//! Why a table of its own: the condition (optimal, partially optimal,
//! degraded, failed) is what `mdadm --examine` and every DDF controller show,
//! so umd must reach the same one mdadm would from the same disk states. A
//! member counts as working only when its physical disk is online and neither
//! failed nor rebuilding. Per basic VD:
//!
//! | level            | all working | fewer working                                       |
//! |------------------|-------------|-----------------------------------------------------|
//! | RAID0, concat    | optimal     | failed                                              |
//! | RAID1            | optimal     | none: failed; 2 or more: partially optimal; else degraded |
//! | RAID1E           | optimal     | a near/offset copy set without a working member: failed; else degraded |
//! | RAID4, RAID5     | optimal     | more than one missing: failed; else degraded        |
//! | RAID6            | optimal     | more than two missing: failed; one: partially optimal; two: degraded |
//!
//! Basic VDs combine pairwise in sequence order: both optimal give optimal;
//! for a striped or spanned secondary level, any failed gives failed, else any
//! degraded gives degraded, else partially optimal (mirrored secondary levels
//! follow mdadm's mirror rule).

use umd_formats::ddf::container::Container;
use umd_formats::ddf::level::{
    self, PRL_CONCAT, PRL_RAID0, PRL_RAID1, PRL_RAID1E, PRL_RAID4, PRL_RAID5, PRL_RAID6,
};
use umd_formats::ddf::{
    VdConfig, PD_STATE_FAILED, PD_STATE_ONLINE, PD_STATE_REBUILDING, VD_STATE_DEGRADED,
    VD_STATE_FAILED, VD_STATE_OPTIMAL, VD_STATE_PART_OPTIMAL,
};

/// PRL "JBOD" (mdadm `DDF_JBOD`): like concat, any lost member fails it.
const PRL_JBOD: u8 = 0x0f;
/// SRL "mirrored" (mdadm `DDF_2MIRRORED`).
const SRL_MIRRORED: u8 = 0x01;
/// An element slot holding no disk (formats.md §5.1: all ones).
pub(super) const NO_REFNUM: u32 = u32::MAX;

/// Whether the physical disk `refnum` holds current data for its members:
/// online, not failed, not rebuilding (mdadm's test in `get_bvd_state` and
/// `container_content_ddf`).
pub(super) fn is_working(c: &Container, refnum: u32) -> bool {
    c.phys_of(refnum).is_some_and(|pd| {
        pd.state & (PD_STATE_ONLINE | PD_STATE_FAILED | PD_STATE_REBUILDING) == PD_STATE_ONLINE
    })
}

/// The positions of `bvd` that hold a disk, in order: mdadm counts the n-th
/// member as the n-th such position (`find_index_in_bvd`).
pub(super) fn member_positions(bvd: &VdConfig) -> impl Iterator<Item = usize> + '_ {
    bvd.phys_refnum
        .iter()
        .enumerate()
        .filter(|&(_, &r)| r != NO_REFNUM)
        .map(|(i, _)| i)
}

/// mdadm's `get_bvd_state`: the condition of one basic VD.
pub(super) fn bvd_state(c: &Container, bvd: &VdConfig) -> u8 {
    let n = usize::from(bvd.prim_elmnt_count);
    let mut avail = vec![false; n];
    for (member, pos) in member_positions(bvd).take(n).enumerate() {
        avail[member] = is_working(c, bvd.phys_refnum[pos]);
    }
    let working = avail.iter().filter(|&&a| a).count();
    assert!(working <= n, "at most one working flag per member");
    if working == n {
        return VD_STATE_OPTIMAL;
    }
    match bvd.prl {
        PRL_RAID0 | PRL_CONCAT | PRL_JBOD => VD_STATE_FAILED,
        PRL_RAID1 if working == 0 => VD_STATE_FAILED,
        PRL_RAID1 if working >= 2 => VD_STATE_PART_OPTIMAL,
        PRL_RAID1E => {
            let layout = level::md_geometry(bvd).map_or(0, |g| g.layout);
            if raid10_enough(layout, &avail) {
                VD_STATE_DEGRADED
            } else {
                VD_STATE_FAILED
            }
        }
        PRL_RAID4 | PRL_RAID5 if working + 1 < n => VD_STATE_FAILED,
        PRL_RAID6 if working + 2 < n => VD_STATE_FAILED,
        PRL_RAID6 if working + 1 == n => VD_STATE_PART_OPTIMAL,
        _ => VD_STATE_DEGRADED,
    }
}

/// mdadm's `enough()` for raid10: every run of `copies` members, starting at
/// each multiple of the near count, must hold a working one.
fn raid10_enough(layout: u32, avail: &[bool]) -> bool {
    let n = avail.len();
    if n == 0 {
        return false;
    }
    let near = (layout & 0xff) as usize;
    let copies = near * ((layout >> 8) & 0xff) as usize;
    let mut first = 0usize;
    // `first` walks the residues mod n in steps of `near`, so it returns to 0
    // after at most n steps.
    for _ in 0..=n {
        let found = (0..copies).any(|k| avail[(first + k) % n]);
        if !found {
            return false;
        }
        first = (first + near) % n;
        if first == 0 {
            return true;
        }
    }
    true
}

/// mdadm's `secondary_state`: two basic VDs' conditions combined.
fn secondary_state(state: u8, other: u8, srl: u8) -> u8 {
    if state == VD_STATE_OPTIMAL && other == VD_STATE_OPTIMAL {
        return VD_STATE_OPTIMAL;
    }
    if srl == SRL_MIRRORED {
        if state == VD_STATE_OPTIMAL || other == VD_STATE_OPTIMAL {
            return VD_STATE_PART_OPTIMAL;
        }
        if state == VD_STATE_FAILED && other == VD_STATE_FAILED {
            return VD_STATE_FAILED;
        }
        return VD_STATE_DEGRADED;
    }
    if state == VD_STATE_FAILED || other == VD_STATE_FAILED {
        return VD_STATE_FAILED;
    }
    if state == VD_STATE_DEGRADED || other == VD_STATE_DEGRADED {
        return VD_STATE_DEGRADED;
    }
    VD_STATE_PART_OPTIMAL
}

/// mdadm's `get_svd_state`: the condition of a whole virtual disk, from its
/// basic VDs in sequence order (`None` when it has none).
pub(super) fn vd_state(c: &Container, bvds: &[&VdConfig]) -> Option<u8> {
    let (first, rest) = bvds.split_first()?;
    let mut state = bvd_state(c, first);
    for b in rest {
        state = secondary_state(state, bvd_state(c, b), first.srl);
    }
    Some(state)
}

/// The sectors a resync covers (mdadm `is_resync_complete`): the component
/// size for mirror and parity levels, data sectors for raid10, none for
/// levels without redundancy.
pub(super) fn sync_size_sectors(
    md_level: i32,
    md_layout: u32,
    raid_disks: u32,
    component: u64,
) -> u64 {
    match md_level {
        1 | 4 | 5 | 6 => component,
        10 => {
            let copies = u64::from((md_layout & 0xff) * ((md_layout >> 8) & 0xff));
            if copies == 0 {
                return 0;
            }
            component.saturating_mul(u64::from(raid_disks)) / copies
        }
        _ => 0,
    }
}

/// Whether every basic VD of a VD with a secondary level is present and
/// alike, as md's raid10 needs (mdadm `check_secondary`).
pub(super) fn secondary_complete(bvds: &[&VdConfig]) -> bool {
    let Some(first) = bvds.first() else {
        return false;
    };
    let count = usize::from(first.sec_elmnt_count);
    bvds.len() == count
        && bvds.iter().enumerate().all(|(i, b)| {
            usize::from(b.sec_elmnt_seq) == i
                && b.prl == first.prl
                && b.srl == first.srl
                && b.prim_elmnt_count == first.prim_elmnt_count
                && b.chunk_shift == first.chunk_shift
                && b.array_blocks == first.array_blocks
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raid10_enough_follows_mdadm() {
        // near 2 over 4: pairs (0,1) and (2,3) each need one.
        assert!(raid10_enough(0x102, &[true, false, false, true]));
        assert!(!raid10_enough(0x102, &[false, false, true, true]));
        // near 2 over 3 (RAID1E adjacent): runs start at 0, 2, 1.
        assert!(raid10_enough(0x102, &[true, false, true]));
        assert!(!raid10_enough(0x102, &[false, false, true]));
        // offset 2: every adjacent pair.
        assert!(raid10_enough(0x201, &[true, false, true, false]));
        assert!(!raid10_enough(0x201, &[true, false, false, true]));
    }

    #[test]
    fn secondary_states_combine_like_mdadm() {
        use VD_STATE_DEGRADED as D;
        use VD_STATE_FAILED as F;
        use VD_STATE_OPTIMAL as O;
        use VD_STATE_PART_OPTIMAL as P;
        let spanned = 0x03;
        assert_eq!(secondary_state(O, O, spanned), O);
        assert_eq!(secondary_state(O, D, spanned), D);
        assert_eq!(secondary_state(F, O, spanned), F);
        assert_eq!(secondary_state(P, O, spanned), P);
        assert_eq!(secondary_state(O, D, SRL_MIRRORED), P);
        assert_eq!(secondary_state(F, F, SRL_MIRRORED), F);
        assert_eq!(secondary_state(F, D, SRL_MIRRORED), D);
    }

    #[test]
    fn sync_size_per_level() {
        assert_eq!(sync_size_sectors(5, 2, 3, 100), 100);
        assert_eq!(sync_size_sectors(10, 0x102, 4, 100), 200);
        assert_eq!(sync_size_sectors(10, 0x201, 3, 100), 150);
        assert_eq!(sync_size_sectors(0, 0, 3, 100), 0);
    }
}

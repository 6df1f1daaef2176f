//! raid4, raid5 and raid6: striping with one or two rotating parity roles.
//!
//! formats.md §4.4 and §4.5. One implementation serves the three levels
//! (style R11): an [`Algorithm`] names where P (and Q) sit in stripe S and on
//! which role data chunk j lands. The device sector `S x C + o` is the same on
//! every role. Also owns the raid6 Q slot order: md's order (walk from the role
//! after Q, skipping P and Q) or DDF's physical order.

use super::{check_chunk_pow2, check_disks};
use crate::geometry::{Copy, Extent, GeometrySpec, LayoutError, Level, StripeLayout, Target};

/// Fewest roles md accepts for raid4 and raid5 (one data, one parity).
const RAID5_DISKS_MIN: u32 = 2;
/// Fewest roles md accepts for raid6.
const RAID6_DISKS_MIN: u32 = 4;

/// md's raid5/6 algorithm numbers (formats.md §4.4/4.5; md `ALGORITHM_*`).
mod algo {
    /// `ALGORITHM_LEFT_ASYMMETRIC`.
    pub(super) const LEFT_ASYMMETRIC: u32 = 0;
    /// `ALGORITHM_RIGHT_ASYMMETRIC`.
    pub(super) const RIGHT_ASYMMETRIC: u32 = 1;
    /// `ALGORITHM_LEFT_SYMMETRIC` (mdadm's default).
    pub(super) const LEFT_SYMMETRIC: u32 = 2;
    /// `ALGORITHM_RIGHT_SYMMETRIC`.
    pub(super) const RIGHT_SYMMETRIC: u32 = 3;
    /// `ALGORITHM_PARITY_0`.
    pub(super) const PARITY_0: u32 = 4;
    /// `ALGORITHM_PARITY_N` (raid4's placement).
    pub(super) const PARITY_N: u32 = 5;
    /// `ALGORITHM_ROTATING_ZERO_RESTART` (DDF raid6, RLQ 1).
    pub(super) const ROTATING_ZERO_RESTART: u32 = 8;
    /// `ALGORITHM_ROTATING_N_RESTART` (DDF raid6, RLQ 2).
    pub(super) const ROTATING_N_RESTART: u32 = 9;
    /// `ALGORITHM_ROTATING_N_CONTINUE` (DDF raid6, RLQ 3).
    pub(super) const ROTATING_N_CONTINUE: u32 = 10;
    /// `ALGORITHM_LEFT_ASYMMETRIC_6`.
    pub(super) const LEFT_ASYMMETRIC_6: u32 = 16;
    /// `ALGORITHM_RIGHT_ASYMMETRIC_6`.
    pub(super) const RIGHT_ASYMMETRIC_6: u32 = 17;
    /// `ALGORITHM_LEFT_SYMMETRIC_6`.
    pub(super) const LEFT_SYMMETRIC_6: u32 = 18;
    /// `ALGORITHM_RIGHT_SYMMETRIC_6`.
    pub(super) const RIGHT_SYMMETRIC_6: u32 = 19;
    /// `ALGORITHM_PARITY_0_6`.
    pub(super) const PARITY_0_6: u32 = 20;
}

/// Where parity goes and how data skips it, one variant per placement rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    /// raid5 P from the left/right, data j or j + 1 (asymmetric).
    R5Asym { left: bool },
    /// raid5 P from the left/right, data starts after P (symmetric).
    R5Sym { left: bool },
    /// raid5 P on role 0.
    R5Parity0,
    /// raid5 P on the last role (also raid4).
    R5ParityN,
    /// raid6 asymmetric: P rotates (left, right, or left shifted by one
    /// stripe for ROTATING_N_RESTART), Q after P, or on 0 when P is last.
    R6Asym { left: bool, shift: u64 },
    /// raid6 symmetric: Q after P, data after Q.
    R6Sym { left: bool },
    /// raid6 P on 0, Q on 1.
    R6Parity0,
    /// raid6 P and Q on the last two roles.
    R6ParityN,
    /// raid6 ROTATING_N_CONTINUE: Q just before P, data after P.
    R6NContinue,
    /// raid6 "_6": raid5 placement on the first n - 1 roles, Q last.
    R6Raid5Q { inner: R5Inner },
}

/// The raid5 placement inside a "_6" layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum R5Inner {
    Asym { left: bool },
    Sym { left: bool },
    Parity0,
}

/// A validated raid4/5/6 map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raid456 {
    algorithm: Algorithm,
    raid_disks: u32,
    /// n - 1 or n - 2.
    data_disks: u32,
    chunk_sectors: u64,
    /// md dev_sectors rounded down to the chunk.
    component_sectors: u64,
    /// Q slots in physical order (layouts 8, 9, 10).
    ddf_q_order: bool,
}

impl Raid456 {
    /// Validate chunk, disks and layout; md rounds the component size down to
    /// the chunk, so do we.
    pub(crate) fn new(level: Level, spec: &GeometrySpec) -> Result<Self, LayoutError> {
        let chunk_sectors = check_chunk_pow2(spec.chunk_sectors)?;
        let bad_layout = LayoutError::BadLayout {
            level,
            layout: spec.layout,
        };
        let (algorithm, ddf_q_order, min) = match level {
            // md ignores the layout of raid4 (always parity last); accept only
            // the values mdadm and md write for it.
            Level::Raid4 => match spec.layout {
                0 | algo::PARITY_N => (Algorithm::R5ParityN, false, RAID5_DISKS_MIN),
                _ => return Err(bad_layout),
            },
            Level::Raid5 => (
                raid5_algorithm(spec.layout).ok_or(bad_layout)?,
                false,
                RAID5_DISKS_MIN,
            ),
            Level::Raid6 => {
                let (a, ddf) = raid6_algorithm(spec.layout).ok_or(bad_layout)?;
                (a, ddf, RAID6_DISKS_MIN)
            }
            _ => unreachable!("Raid456::new is only called for raid4/5/6"),
        };
        let raid_disks = check_disks(spec.raid_disks, min)?;
        let component_sectors = spec.component_sectors - spec.component_sectors % chunk_sectors;
        if component_sectors == 0 {
            return Err(LayoutError::BadMemberSize(
                "component is smaller than a chunk",
            ));
        }
        let data_disks = raid_disks - level.parity_members();
        let map = Self {
            algorithm,
            raid_disks,
            data_disks,
            chunk_sectors,
            component_sectors,
            ddf_q_order,
        };
        map.array_sectors_checked()?;
        Ok(map)
    }

    fn array_sectors_checked(&self) -> Result<u64, LayoutError> {
        self.component_sectors
            .checked_mul(u64::from(self.data_disks))
            .ok_or(LayoutError::BadMemberSize("array size overflows"))
    }

    pub(crate) fn array_sectors(&self) -> u64 {
        self.component_sectors * u64::from(self.data_disks)
    }

    pub(crate) fn component_sectors(&self) -> u64 {
        self.component_sectors
    }

    pub(crate) fn locate(&self, sector: u64) -> Extent {
        let chunk = self.chunk_sectors;
        let in_chunk = sector % chunk;
        let chunk_number = sector / chunk;
        let stripe = chunk_number / u64::from(self.data_disks);
        let j = (chunk_number % u64::from(self.data_disks)) as u32;
        let (p, q) = self.parity_roles(stripe);
        let role = self.data_role(p, j);
        assert!(role != p && Some(role) != q, "data never lands on parity");
        let dev_sector = stripe * chunk + in_chunk;
        assert!(dev_sector < self.component_sectors);
        Extent {
            len_sectors: chunk - in_chunk,
            target: Target::Striped {
                data: Copy { role, dev_sector },
                stripe,
            },
        }
    }

    pub(crate) fn stripe_layout(&self, stripe: u64, out: &mut StripeLayout) {
        let (p, q) = self.parity_roles(stripe);
        out.p_role = p;
        out.q_role = q;
        out.data_roles.clear();
        out.data_roles
            .extend((0..self.data_disks).map(|j| self.data_role(p, j)));
        out.q_slots.clear();
        out.q_slot_count = 0;
        let Some(q) = q else { return };
        let n = self.raid_disks;
        if self.ddf_q_order {
            out.q_slots.extend_from_slice(&out.data_roles);
            out.q_slot_count = n;
        } else {
            // Walk from the role after Q; Q is last in the walk, so a data
            // role's slot is its walk position minus one if P came before it.
            let start = (q + 1) % n;
            let walk = |r: u32| (r + n - start) % n;
            let p_pos = walk(p);
            out.q_slots.extend(
                out.data_roles
                    .iter()
                    .map(|&r| walk(r) - u32::from(p_pos < walk(r))),
            );
            out.q_slot_count = self.data_disks;
        }
        assert_eq!(out.q_slots.len(), out.data_roles.len());
    }

    pub(crate) fn reverse(&self, copy: Copy) -> Option<u64> {
        if copy.dev_sector >= self.component_sectors {
            return None;
        }
        let stripe = copy.dev_sector / self.chunk_sectors;
        let (p, _) = self.parity_roles(stripe);
        let j = (0..self.data_disks).find(|&j| self.data_role(p, j) == copy.role)?;
        let chunk_number = stripe * u64::from(self.data_disks) + u64::from(j);
        Some(chunk_number * self.chunk_sectors + copy.dev_sector % self.chunk_sectors)
    }

    /// P and Q roles of `stripe`.
    fn parity_roles(&self, stripe: u64) -> (u32, Option<u32>) {
        let n = self.raid_disks;
        let rot = |s: u64, m: u32| (s % u64::from(m)) as u32;
        match self.algorithm {
            Algorithm::R5Asym { left } | Algorithm::R5Sym { left } => (
                if left {
                    n - 1 - rot(stripe, n)
                } else {
                    rot(stripe, n)
                },
                None,
            ),
            Algorithm::R5Parity0 => (0, None),
            Algorithm::R5ParityN => (n - 1, None),
            Algorithm::R6Asym { left, shift } => {
                let p = if left {
                    n - 1 - rot(stripe + shift, n)
                } else {
                    rot(stripe, n)
                };
                (p, Some(if p == n - 1 { 0 } else { p + 1 }))
            }
            Algorithm::R6Sym { left } => {
                let p = if left {
                    n - 1 - rot(stripe, n)
                } else {
                    rot(stripe, n)
                };
                (p, Some((p + 1) % n))
            }
            Algorithm::R6Parity0 => (0, Some(1)),
            Algorithm::R6ParityN => (n - 2, Some(n - 1)),
            Algorithm::R6NContinue => {
                let p = n - 1 - rot(stripe, n);
                (p, Some((p + n - 1) % n))
            }
            Algorithm::R6Raid5Q { inner } => {
                let m = n - 1;
                let p = match inner {
                    R5Inner::Asym { left } | R5Inner::Sym { left } => {
                        if left {
                            m - 1 - rot(stripe, m)
                        } else {
                            rot(stripe, m)
                        }
                    }
                    R5Inner::Parity0 => 0,
                };
                (p, Some(n - 1))
            }
        }
    }

    /// Role holding data chunk `j` of a stripe whose P is on role `p` (every
    /// placement rule depends on the stripe only through P).
    fn data_role(&self, p: u32, j: u32) -> u32 {
        let n = self.raid_disks;
        debug_assert!(j < self.data_disks);
        match self.algorithm {
            Algorithm::R5Asym { .. } => j + u32::from(j >= p),
            Algorithm::R5Sym { .. } | Algorithm::R6NContinue => (p + 1 + j) % n,
            Algorithm::R5Parity0 => j + 1,
            Algorithm::R5ParityN | Algorithm::R6ParityN => j,
            Algorithm::R6Asym { .. } => {
                if p == n - 1 {
                    j + 1
                } else if j >= p {
                    j + 2
                } else {
                    j
                }
            }
            Algorithm::R6Sym { .. } => (p + 2 + j) % n,
            Algorithm::R6Parity0 => j + 2,
            Algorithm::R6Raid5Q { inner } => match inner {
                R5Inner::Asym { .. } => j + u32::from(j >= p),
                R5Inner::Sym { .. } => (p + 1 + j) % (n - 1),
                R5Inner::Parity0 => j + 1,
            },
        }
    }
}

/// raid5 algorithms 0-5.
fn raid5_algorithm(layout: u32) -> Option<Algorithm> {
    Some(match layout {
        algo::LEFT_ASYMMETRIC => Algorithm::R5Asym { left: true },
        algo::RIGHT_ASYMMETRIC => Algorithm::R5Asym { left: false },
        algo::LEFT_SYMMETRIC => Algorithm::R5Sym { left: true },
        algo::RIGHT_SYMMETRIC => Algorithm::R5Sym { left: false },
        algo::PARITY_0 => Algorithm::R5Parity0,
        algo::PARITY_N => Algorithm::R5ParityN,
        _ => return None,
    })
}

/// raid6 algorithms 0-5, 8-10, 16-20, and whether Q uses DDF slot order.
fn raid6_algorithm(layout: u32) -> Option<(Algorithm, bool)> {
    Some(match layout {
        algo::LEFT_ASYMMETRIC => (
            Algorithm::R6Asym {
                left: true,
                shift: 0,
            },
            false,
        ),
        algo::RIGHT_ASYMMETRIC => (
            Algorithm::R6Asym {
                left: false,
                shift: 0,
            },
            false,
        ),
        algo::LEFT_SYMMETRIC => (Algorithm::R6Sym { left: true }, false),
        algo::RIGHT_SYMMETRIC => (Algorithm::R6Sym { left: false }, false),
        algo::PARITY_0 => (Algorithm::R6Parity0, false),
        algo::PARITY_N => (Algorithm::R6ParityN, false),
        algo::ROTATING_ZERO_RESTART => (
            Algorithm::R6Asym {
                left: false,
                shift: 0,
            },
            true,
        ),
        algo::ROTATING_N_RESTART => (
            Algorithm::R6Asym {
                left: true,
                shift: 1,
            },
            true,
        ),
        algo::ROTATING_N_CONTINUE => (Algorithm::R6NContinue, true),
        algo::LEFT_ASYMMETRIC_6 => (
            Algorithm::R6Raid5Q {
                inner: R5Inner::Asym { left: true },
            },
            false,
        ),
        algo::RIGHT_ASYMMETRIC_6 => (
            Algorithm::R6Raid5Q {
                inner: R5Inner::Asym { left: false },
            },
            false,
        ),
        algo::LEFT_SYMMETRIC_6 => (
            Algorithm::R6Raid5Q {
                inner: R5Inner::Sym { left: true },
            },
            false,
        ),
        algo::RIGHT_SYMMETRIC_6 => (
            Algorithm::R6Raid5Q {
                inner: R5Inner::Sym { left: false },
            },
            false,
        ),
        algo::PARITY_0_6 => (
            Algorithm::R6Raid5Q {
                inner: R5Inner::Parity0,
            },
            false,
        ),
        _ => return None,
    })
}

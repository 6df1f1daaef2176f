//! `Geometry`: one array's validated shape, and the logical -> member mapping.
//!
//! Built once from a [`GeometrySpec`] (what the superblock says) and checked
//! there against md's rules, so the per-sector mapping never has to validate.
//! Units: all sectors are 512 bytes; member sectors are relative to the
//! member's data_offset (the caller adds it).
//!
//! The mapping functions take caller-owned output buffers (`copies`, `StripeLayout`)
//! so that the engine's hot path allocates nothing per request (style R7).

use crate::map::LevelMap;
use serde::Serialize;
use std::fmt;

/// An md RAID level that umd can map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Level {
    /// Concatenation (md level -1).
    Linear,
    /// Striping, possibly over several zones.
    Raid0,
    /// Mirroring.
    Raid1,
    /// Striping with a dedicated parity member.
    Raid4,
    /// Striping with rotating parity.
    Raid5,
    /// Striping with P and Q parity.
    Raid6,
    /// Near/far/offset copies.
    Raid10,
}

impl Level {
    /// The level for md's numeric level, or `None` for levels umd does not map
    /// (multipath -4, faulty -5, containers).
    #[must_use]
    pub fn from_md(level: i32) -> Option<Self> {
        match level {
            -1 => Some(Self::Linear),
            0 => Some(Self::Raid0),
            1 => Some(Self::Raid1),
            4 => Some(Self::Raid4),
            5 => Some(Self::Raid5),
            6 => Some(Self::Raid6),
            10 => Some(Self::Raid10),
            _ => None,
        }
    }

    /// md's numeric level.
    #[must_use]
    pub fn to_md(self) -> i32 {
        match self {
            Self::Linear => -1,
            Self::Raid0 => 0,
            Self::Raid1 => 1,
            Self::Raid4 => 4,
            Self::Raid5 => 5,
            Self::Raid6 => 6,
            Self::Raid10 => 10,
        }
    }

    /// How many members may be missing with no data lost.
    #[must_use]
    pub fn parity_members(self) -> u32 {
        match self {
            Self::Raid4 | Self::Raid5 => 1,
            Self::Raid6 => 2,
            _ => 0,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Linear => "linear",
            Self::Raid0 => "raid0",
            Self::Raid1 => "raid1",
            Self::Raid4 => "raid4",
            Self::Raid5 => "raid5",
            Self::Raid6 => "raid6",
            Self::Raid10 => "raid10",
        })
    }
}

/// raid0 multi-zone layout (formats.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Raid0Layout {
    /// Value 1: member index from the absolute array sector (pre-3.14 kernels; mdadm default).
    Original,
    /// Value 2: member index from the zone-relative sector (kernels 3.14-5.3).
    AlternateMultizone,
}

/// What the metadata says about an array's shape, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeometrySpec {
    /// md numeric level.
    pub level: i32,
    /// md layout number (formats.md §4; ignored for linear and raid1).
    pub layout: u32,
    /// Chunk in sectors (0 allowed for linear and raid1).
    pub chunk_sectors: u32,
    /// Number of data slots (roles).
    pub raid_disks: u32,
    /// Usable data sectors of each role, indexed by role (length raid_disks).
    /// Used by linear and raid0, whose members may differ in size; for the
    /// other levels only `component_sectors` matters.
    pub member_sectors: Vec<u64>,
    /// Sectors used on every member (md dev_sectors) for raid1/4/5/6/10.
    pub component_sectors: u64,
    /// raid0 layout to use when the array has more than one multi-member zone.
    /// `None` = not recorded: [`Geometry::new`] refuses such arrays, as the
    /// kernel does without `raid0.default_layout`.
    pub raid0_layout: Option<Raid0Layout>,
}

/// Why a [`GeometrySpec`] is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// The level is not one umd can map.
    UnsupportedLevel(i32),
    /// The layout number is not valid for the level.
    BadLayout {
        /// The level.
        level: Level,
        /// The layout number found.
        layout: u32,
    },
    /// Chunk size missing, not a power of two, or too small for the level.
    BadChunk(u32),
    /// raid_disks out of range for the level or layout.
    BadDiskCount(u32),
    /// A multi-zone raid0 whose layout is not recorded.
    Raid0LayoutUnknown,
    /// `member_sectors` has the wrong length or a member is too small.
    BadMemberSize(&'static str),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedLevel(l) => write!(f, "unsupported md level {l}"),
            Self::BadLayout { level, layout } => write!(f, "layout {layout:#x} is not valid for {level}"),
            Self::BadChunk(c) => write!(f, "chunk of {c} sectors is not valid for this level"),
            Self::BadDiskCount(n) => write!(f, "{n} raid disks is not valid for this level/layout"),
            Self::Raid0LayoutUnknown => write!(
                f,
                "raid0 with several multi-member zones and no recorded layout: choose --raid0-layout"
            ),
            Self::BadMemberSize(why) => write!(f, "member sizes: {why}"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// One place a logical sector is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// The member's role (data slot).
    pub role: u32,
    /// Sector on that member, relative to its data offset.
    pub dev_sector: u64,
}

/// Where a run of logical sectors is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// linear, raid0: exactly one place.
    Single(Copy),
    /// raid1, raid10: several copies; the caller's `copies` buffer was filled
    /// with every copy (role and member sector), first copy first.
    Mirrored,
    /// raid4/5/6: the data is at `data`, in stripe `stripe`; call
    /// [`Geometry::stripe_layout`] for the parity members and Q order.
    Striped {
        /// Where the data chunk is.
        data: Copy,
        /// Stripe number S (formats.md §4.4).
        stripe: u64,
    },
}

/// A run of logical sectors that maps contiguously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Sectors from the requested sector that map contiguously (to the end
    /// of the chunk, zone or member). Always >= 1 for an in-range sector.
    pub len_sectors: u64,
    /// Where they are.
    pub target: Target,
}

/// The roles of one raid4/5/6 stripe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StripeLayout {
    /// Role holding P.
    pub p_role: u32,
    /// Role holding Q (raid6 only).
    pub q_role: Option<u32>,
    /// `data_roles[j]` = role holding logical data chunk j of the stripe.
    pub data_roles: Vec<u32>,
    /// `q_slots[j]` = the exponent z of data chunk j in Q = sum g^z . D_z
    /// (formats.md §4.5 slot order: md order or DDF physical order).
    pub q_slots: Vec<u32>,
    /// Number of Q slots (d for md layouts, n for DDF layouts): the length of
    /// the slot-ordered block list that [`crate::parity::pq_gen`] expects.
    pub q_slot_count: u32,
}

/// A validated array shape. Cheap to clone; immutable once built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// The spec it was built from, as given.
    pub(crate) spec: GeometrySpec,
    level: Level,
    array_sectors: u64,
    map: LevelMap,
}

impl Geometry {
    /// Validate `spec` against md's rules for its level and layout.
    ///
    /// Refuses rather than guesses (style R17). Rules: raid0 chunk is a
    /// non-zero multiple of 8 sectors (4 KiB); raid4/5/6/10 chunk is a power of
    /// two >= 8 sectors; linear and raid1 ignore the chunk except that linear
    /// rounds members down to it when non-zero. raid_disks: linear, raid0,
    /// raid1 >= 1; raid4/5 >= 2; raid6 >= 4; raid10 copies in 2..=raid_disks;
    /// all <= 1920. Member sizes: linear and raid0 take `member_sectors`
    /// (length raid_disks), raid0 rounds each down to the chunk; raid4/5/6
    /// round `component_sectors` down to the chunk as md does; raid10 uses
    /// whole chunks of it (formats.md §4.6). A member or component that
    /// rounds to zero is refused. raid0 layouts: one zone, or a second zone
    /// with a single member, uses [`Raid0Layout::Original`]; otherwise
    /// `spec.raid0_layout` must say (`spec.layout` is not consulted for raid0).
    pub fn new(spec: &GeometrySpec) -> Result<Self, LayoutError> {
        let level = Level::from_md(spec.level).ok_or(LayoutError::UnsupportedLevel(spec.level))?;
        let map = LevelMap::new(level, spec)?;
        let array_sectors = map.array_sectors();
        assert!(array_sectors > 0, "every level refuses an empty array");
        Ok(Self {
            spec: spec.clone(),
            level,
            array_sectors,
            map,
        })
    }

    /// The level.
    #[must_use]
    pub fn level(&self) -> Level {
        self.level
    }

    /// Number of data slots (roles).
    #[must_use]
    pub fn raid_disks(&self) -> u32 {
        self.spec.raid_disks
    }

    /// Chunk in sectors (0 where the level has none).
    #[must_use]
    pub fn chunk_sectors(&self) -> u32 {
        match self.level {
            Level::Raid1 => 0,
            _ => self.spec.chunk_sectors,
        }
    }

    /// md layout number.
    #[must_use]
    pub fn layout(&self) -> u32 {
        self.spec.layout
    }

    /// The array's length in sectors.
    #[must_use]
    pub fn array_sectors(&self) -> u64 {
        self.array_sectors
    }

    /// Where logical `sector` (< array_sectors) is stored, and how far that
    /// mapping runs contiguously. For [`Target::Mirrored`], `copies` is cleared
    /// and filled with every copy; otherwise it is left empty.
    ///
    /// Does not allocate once `copies` has capacity for [`Self::copies`].
    pub fn locate(&self, sector: u64, copies: &mut Vec<Copy>) -> Extent {
        assert!(
            sector < self.array_sectors,
            "sector {sector} beyond array of {}",
            self.array_sectors
        );
        let extent = self.map.locate(sector, copies);
        assert!(extent.len_sectors >= 1);
        assert!(
            extent.len_sectors <= self.array_sectors - sector,
            "extent runs past the array"
        );
        extent
    }

    /// The parity roles and data order of raid4/5/6 stripe `stripe`.
    ///
    /// Panics if the level has no parity. Does not allocate once `out`'s
    /// vectors have capacity for raid_disks entries.
    pub fn stripe_layout(&self, stripe: u64, out: &mut StripeLayout) {
        assert!(
            self.level.parity_members() > 0,
            "stripe_layout on {}",
            self.level
        );
        self.map.stripe_layout(stripe, out);
        assert_eq!(
            out.data_roles.len(),
            (self.raid_disks() - self.level.parity_members()) as usize
        );
    }

    /// The logical sector stored at `copy`, or `None` if that member sector
    /// holds parity or lies outside the array (inverse of [`Self::locate`]).
    #[must_use]
    pub fn reverse(&self, copy: Copy) -> Option<u64> {
        if copy.role >= self.raid_disks() {
            return None;
        }
        let sector = self.map.reverse(copy)?;
        assert!(sector < self.array_sectors, "reverse maps inside the array");
        Some(sector)
    }

    /// How many members hold each logical sector: raid_disks for raid1,
    /// near x far copies for raid10, 1 otherwise.
    #[must_use]
    pub fn copies(&self) -> u32 {
        self.map.copies()
    }

    /// Sectors from the start of member `role` (after its data offset) that
    /// the mapping can touch: the member's rounded size for linear and raid0,
    /// the array size for raid1, the rounded component for raid4/5/6, and the
    /// rows actually used by raid10 (never beyond its component).
    #[must_use]
    pub fn member_used_sectors(&self, role: u32) -> u64 {
        assert!(role < self.raid_disks(), "role {role} out of range");
        self.map.member_used_sectors(role)
    }

    /// For raid0, the layout in force after md's selection rule
    /// (formats.md §4.2); `None` for other levels.
    #[must_use]
    pub fn raid0_layout(&self) -> Option<Raid0Layout> {
        self.map.raid0_layout()
    }
}

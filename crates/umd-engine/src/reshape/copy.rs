//! Planning the moves of a forward reshape with the data-offset method.
//!
//! A reshape copies the array, window by window from sector 0, out of the
//! old shape (at the old data offsets) into the new shape (at the new data
//! offsets, lower than the old ones). A window is whole new stripes
//! starting at the checkpoint `P` that the superblocks record. The host
//! reads the window through the old shape, writes it through the new one,
//! makes it durable, and only then records the window's end as the new
//! checkpoint. If the process dies in between, the next run starts again at
//! `P` and must find the old copy of every sector at or above `P` intact.
//!
//! So the one rule a window obeys: on every member in both shapes, the
//! member sectors the window's new stripes occupy (data and parity) end at
//! or before the start of the old stripe that holds `P`, all in absolute
//! device sectors. The gap between old and new data offsets is what makes
//! the first windows possible; after that the new shape, which packs more
//! data per member row, falls further behind the old one with every
//! stripe, so the windows may grow. Sectors past the old shape's end hold
//! no old data: md fills them with zeros and so does the copy.

use super::Reshape;
use std::fmt;
use umd_layout::geometry::Geometry;

/// Why a reshape cannot be copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyError {
    /// The new data offsets leave too little room below the old ones.
    NoRoom {
        /// Sectors needed between each member's new and old data offset.
        needed_sectors: u64,
        /// Sectors there are (the smallest over the members).
        have_sectors: u64,
    },
    /// Backward reshapes (fewer members) are not copied.
    Backwards,
    /// The checkpoint is not on a new stripe boundary (md refuses those too).
    Unaligned {
        /// The checkpoint.
        position_sectors: u64,
        /// The new stripe's length in array sectors.
        stripe_sectors: u64,
    },
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRoom {
                needed_sectors,
                have_sectors,
            } => write!(
                f,
                "the reshape needs {needed_sectors} free sectors before each member's data \
                 (the data moves down as it is reshaped), there are {have_sectors}"
            ),
            Self::Backwards => write!(f, "backward reshapes (fewer members) are not supported"),
            Self::Unaligned {
                position_sectors,
                stripe_sectors,
            } => write!(
                f,
                "reshape_position {position_sectors} is not a multiple of the new stripe \
                 ({stripe_sectors} sectors)"
            ),
        }
    }
}

impl std::error::Error for CopyError {}

/// One step of the copy: array sectors `[start, end)` move to the new
/// shape; `[start, read_end)` is read from the old shape, the rest is zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First array sector (the checkpoint).
    pub start: u64,
    /// End of the window: the next checkpoint.
    pub end: u64,
    /// Old data ends here (`<= end`); beyond it the window is zeros.
    pub read_end: u64,
}

/// Plans windows for one forward reshape.
#[derive(Debug, Clone)]
pub struct CopyPlanner {
    old: Geometry,
    new: Geometry,
    /// Smallest `old data offset - new data offset` over the roles of both shapes.
    gap_sectors: u64,
    /// Array sectors the old shape holds.
    old_end: u64,
    /// Array sectors of the new shape: the copy runs to here.
    end: u64,
    /// Largest window, array sectors (at least one new stripe).
    max_window: u64,
}

impl CopyPlanner {
    /// A planner for `reshape`, whose roles sit at `old_offsets` and
    /// `new_offsets` (absolute device sectors, by role; the old list covers
    /// the old shape's roles). Windows are at most `max_window_sectors`.
    pub fn new(
        reshape: &Reshape,
        old_offsets: &[u64],
        new_offsets: &[u64],
        max_window_sectors: u64,
    ) -> Result<Self, CopyError> {
        if reshape.backwards {
            return Err(CopyError::Backwards);
        }
        let stripe = stripe_sectors(&reshape.new);
        if !reshape.position_sectors.is_multiple_of(stripe) {
            return Err(CopyError::Unaligned {
                position_sectors: reshape.position_sectors,
                stripe_sectors: stripe,
            });
        }
        let shared = old_offsets.len().min(new_offsets.len());
        let gap_sectors = (0..shared)
            .map(|r| old_offsets[r].saturating_sub(new_offsets[r]))
            .min()
            .unwrap_or(0);
        let planner = Self {
            old: reshape.old.clone(),
            new: reshape.new.clone(),
            gap_sectors,
            old_end: reshape.old.array_sectors(),
            end: reshape.new.array_sectors(),
            max_window: max_window_sectors.max(stripe) / stripe * stripe,
        };
        // Walk the whole plan once (arithmetic only): a shape whose new
        // stripes outrun the old ones somewhere is refused before anything
        // moves, naming the room it would need.
        let mut position = reshape.position_sectors;
        while position < planner.old_end {
            let Some(end) = planner.safe_end(position) else {
                // One more new stripe must fit below the old stripe.
                let rows = (position / stripe + 1) * u64::from(reshape.new.chunk_sectors());
                return Err(CopyError::NoRoom {
                    needed_sectors: rows - planner.old_stripe_start(position),
                    have_sectors: gap_sectors,
                });
            };
            position = end;
        }
        Ok(planner)
    }

    /// Array sectors the reshape covers (the new shape's size).
    #[must_use]
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The next window from checkpoint `position`, or `None` when done.
    /// Panics if `position` is not a checkpoint this planner produced or
    /// accepted (stripe aligned).
    #[must_use]
    pub fn next_window(&self, position: u64) -> Option<Window> {
        if position >= self.end {
            return None;
        }
        let stripe = stripe_sectors(&self.new);
        assert!(
            position.is_multiple_of(stripe),
            "checkpoint off a new stripe boundary"
        );
        let end = self
            .safe_end(position)
            .expect("every window of the plan was checked by new");
        Some(Window {
            start: position,
            end,
            read_end: end.min(self.old_end),
        })
    }

    /// Where a window from `position` may end: at most `max_window` long,
    /// and, while old data remains, its new member rows end by the old
    /// stripe holding `position` (plus the gap). `None`: not one stripe fits.
    fn safe_end(&self, position: u64) -> Option<u64> {
        let stripe = stripe_sectors(&self.new);
        let mut end = (position + self.max_window).min(self.end);
        if position < self.old_end {
            let limit_rows = self.old_stripe_start(position) + self.gap_sectors;
            let safe = limit_rows / u64::from(self.new.chunk_sectors()) * stripe;
            end = end.min(safe);
        }
        (end > position).then_some(end)
    }

    /// Member sector (from the data offset) where the old stripe holding
    /// array sector `sector` starts.
    fn old_stripe_start(&self, sector: u64) -> u64 {
        let chunk = u64::from(self.old.chunk_sectors());
        sector / stripe_sectors(&self.old) * chunk
    }
}

/// Array sectors in one stripe of `g`: chunk x data members.
#[must_use]
pub fn stripe_sectors(g: &Geometry) -> u64 {
    u64::from(g.chunk_sectors()) * u64::from(g.raid_disks() - g.level().parity_members())
}

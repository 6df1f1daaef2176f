//! Monotonic time as the engine sees it: nanoseconds from an origin the
//! driver picks.
//!
//! The engine never reads a clock (style R8). The real driver passes
//! `Time` derived from `Instant`; the simulator passes ticks. Only
//! differences and ordering mean anything.

use std::ops::{Add, Sub};

/// A point in monotonic time, in nanoseconds since the driver's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

/// A span of time in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

impl Duration {
    /// Nanoseconds per millisecond.
    pub const NS_PER_MS: u64 = 1_000_000;

    /// A duration of `ms` milliseconds.
    #[must_use]
    pub const fn from_ms(ms: u64) -> Self {
        Self(ms.saturating_mul(Self::NS_PER_MS))
    }

    /// Whole milliseconds, rounded down.
    #[must_use]
    pub const fn as_ms(self) -> u64 {
        self.0 / Self::NS_PER_MS
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        Time(self.0.saturating_add(rhs.0))
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, rhs: Time) -> Duration {
        Duration(self.0.saturating_sub(rhs.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Time(u64::MAX) + Duration(5), Time(u64::MAX));
        assert_eq!(Time(3) - Time(10), Duration(0));
        assert_eq!(Duration::from_ms(200).as_ms(), 200);
    }
}

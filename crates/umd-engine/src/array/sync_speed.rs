//! Sync speed: md's `sync_speed_min` / `sync_speed_max` limits, the
//! `sync_speed` a running sync shows, and the throttle decision the sync
//! thread asks for before each window (md's `md_do_sync` pacing).
//!
//! Why in the engine: the limits are attributes with md's formats and
//! errnos, and the speed is measured against the engine's clock (time is a
//! parameter, style R8); the host only sleeps when told to. md's rules:
//!
//! - a limit shows `N (system)` (the system-wide default) or `N (local)`;
//!   storing a positive number sets the local value, `system` resets it,
//!   `0` is `EINVAL`.
//! - speed is measured as md does: every [`SYNC_MARK_STEP`] the sync takes
//!   a mark (time, sectors done); speeds are taken against the oldest of the
//!   last [`SYNC_MARKS`] marks, so they average over up to 30 s.
//! - above `sync_speed_max`, or above `sync_speed_min` while foreground I/O
//!   is going on, the sync pauses [`SYNC_THROTTLE_PAUSE`] and asks again
//!   (md before 5.x; newer kernels wait less for fast devices).

use super::Array;
use crate::errno::{EngineError, Errno};
use crate::time::{Duration, Time};

/// md's `sysctl_speed_limit_min` default (`dev.raid.speed_limit_min`), KiB/s.
pub const SPEED_LIMIT_MIN_SYSTEM_KIB: u64 = 1000;
/// md's `sysctl_speed_limit_max` default (`dev.raid.speed_limit_max`), KiB/s.
pub const SPEED_LIMIT_MAX_SYSTEM_KIB: u64 = 200_000;
/// md's `SYNC_MARK_STEP`: a new speed mark every 3 s.
pub const SYNC_MARK_STEP: Duration = Duration::from_ms(3000);
/// md's `SYNC_MARKS`: speeds are measured over the last 10 marks.
pub const SYNC_MARKS: usize = 10;
/// How long a throttled sync pauses before it asks again (md's `msleep(500)`).
pub const SYNC_THROTTLE_PAUSE: Duration = Duration::from_ms(500);

/// Nanoseconds per second, for KiB/s from sectors and [`Time`].
const NS_PER_SECOND: u64 = 1_000_000_000;

/// Local speed limits; 0 means "use the system value" (md's `sync_speed_min`
/// and `sync_speed_max` fields of `mddev`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpeedLimits {
    min_local_kib: u64,
    max_local_kib: u64,
}

impl SpeedLimits {
    fn min_kib(self) -> u64 {
        if self.min_local_kib == 0 {
            SPEED_LIMIT_MIN_SYSTEM_KIB
        } else {
            self.min_local_kib
        }
    }

    fn max_kib(self) -> u64 {
        if self.max_local_kib == 0 {
            SPEED_LIMIT_MAX_SYSTEM_KIB
        } else {
            self.max_local_kib
        }
    }
}

/// md's resync marks: sectors of sync I/O done by a time, in a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncMarks {
    times: [Time; SYNC_MARKS],
    io: [u64; SYNC_MARKS],
    last: usize,
    /// The mark speeds are measured from (md's `resync_mark`, `resync_mark_cnt`).
    from: (Time, u64),
    /// Sectors of sync I/O so far (md's `io_sectors` / `curr_mark_cnt`).
    io_sectors: u64,
    /// The time of the last [`Self::advance`].
    latest: Time,
}

impl SyncMarks {
    pub(crate) fn new(now: Time) -> Self {
        Self {
            times: [now; SYNC_MARKS],
            io: [0; SYNC_MARKS],
            last: 0,
            from: (now, 0),
            io_sectors: 0,
            latest: now,
        }
    }

    /// `sectors` more were synced by `now`; take a mark when one is due.
    pub(crate) fn advance(&mut self, sectors: u64, now: Time) {
        self.io_sectors += sectors;
        self.latest = self.latest.max(now);
        if now - self.times[self.last] >= SYNC_MARK_STEP {
            let next = (self.last + 1) % SYNC_MARKS;
            self.from = (self.times[next], self.io[next]);
            self.times[next] = now;
            self.io[next] = self.io_sectors;
            self.last = next;
        }
        assert!(self.from.1 <= self.io_sectors, "marks never run ahead");
    }

    /// When the last progress was reported.
    pub(crate) fn last_time(&self) -> Time {
        self.latest
    }

    /// md's `sync_speed`: KiB/s since the oldest mark, whole seconds, at least 1.
    pub(crate) fn speed_kib(&self, now: Time) -> u64 {
        let seconds = ((now - self.from.0).0 / NS_PER_SECOND).max(1);
        (self.io_sectors - self.from.1) / seconds / 2
    }

    /// md's `currspeed` in `md_do_sync`: one second added, plus one KiB/s,
    /// so a fresh sync is never "too fast" before it did anything.
    fn current_kib(&self, now: Time) -> u64 {
        let seconds = (now - self.from.0).0 / NS_PER_SECOND + 1;
        (self.io_sectors - self.from.1) / 2 / seconds + 1
    }
}

impl Array {
    /// The sync thread did `sectors` of sync I/O by `now` (for `sync_speed`
    /// and throttling; positions are reported with `sync_progress`).
    pub fn sync_io(&mut self, sectors: u64, now: Time) {
        if let Some(run) = self.sync.running.as_mut() {
            run.marks.advance(sectors, now);
        }
    }

    /// How long the sync thread should pause before its next window, if at
    /// all: md's pacing against `sync_speed_max`, and against
    /// `sync_speed_min` while `foreground_busy` (requests arrived since the
    /// last window). Call again after the pause.
    #[must_use]
    pub fn sync_throttle(&self, now: Time, foreground_busy: bool) -> Option<Duration> {
        let run = self.sync.running.as_ref()?;
        let speed = run.marks.current_kib(now);
        let limits = self.sync.limits;
        let too_fast = speed > limits.max_kib() || (foreground_busy && speed > limits.min_kib());
        too_fast.then_some(SYNC_THROTTLE_PAUSE)
    }

    /// `sync_speed_min` / `sync_speed_max` as md shows them.
    pub(crate) fn show_speed_limit(&self, max: bool) -> String {
        let limits = self.sync.limits;
        let (value, local) = if max {
            (limits.max_kib(), limits.max_local_kib != 0)
        } else {
            (limits.min_kib(), limits.min_local_kib != 0)
        };
        format!("{value} ({})", if local { "local" } else { "system" })
    }

    /// A store to `sync_speed_min` / `sync_speed_max` (md's `sync_min_store`).
    pub(crate) fn store_speed_limit(
        &mut self,
        attr: &str,
        v: &str,
        max: bool,
    ) -> Result<(), EngineError> {
        let value = if v.starts_with("system") {
            0
        } else {
            match v.parse::<u64>() {
                Ok(0) => return Err(EngineError::new(Errno::EINVAL, format!("{attr}: 0"))),
                Ok(n) if u32::try_from(n).is_ok() => n,
                _ => {
                    return Err(EngineError::new(
                        Errno::EINVAL,
                        format!("{attr}: not a speed in KiB/s: {v:?}"),
                    ))
                }
            }
        };
        if max {
            self.sync.limits.max_local_kib = value;
        } else {
            self.sync.limits.min_local_kib = value;
        }
        self.notify(attr);
        Ok(())
    }

    /// `sync_speed`: `none` without a running sync, else KiB/s.
    pub(crate) fn show_sync_speed(&self, now: Time) -> String {
        self.sync
            .running
            .as_ref()
            .map_or_else(|| "none".to_owned(), |r| r.marks.speed_kib(now).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::running;
    use super::super::{Ro, SyncAction};
    use super::*;

    const SECOND: Duration = Duration::from_ms(1000);

    #[test]
    fn speed_averages_over_marks() {
        let mut marks = SyncMarks::new(Time(0));
        let mut now = Time(0);
        // 2048 sectors (1 MiB) a second for 40 s: 1024 KiB/s.
        for _ in 0..40 {
            now = now + SECOND;
            marks.advance(2048, now);
        }
        assert_eq!(marks.speed_kib(now), 1024);
        // md adds a second to the span, so the pacing speed reads a little low.
        assert!((900..=1025).contains(&marks.current_kib(now)));
    }

    #[test]
    fn limits_show_and_store_as_md() {
        let mut limits = SpeedLimits::default();
        assert_eq!(limits.min_kib(), SPEED_LIMIT_MIN_SYSTEM_KIB);
        assert_eq!(limits.max_kib(), SPEED_LIMIT_MAX_SYSTEM_KIB);
        limits.max_local_kib = 5000;
        assert_eq!(limits.max_kib(), 5000);
    }

    #[test]
    fn throttle_follows_md_limits_and_foreground_io() {
        let mut a = running(1, false, Ro::ReadWrite);
        assert_eq!(a.sync_throttle(Time(0), true), None, "no sync, no pause");
        a.sync_started(SyncAction::Check, 1 << 30, Time(0));
        let now = Time(0) + Duration::from_ms(900);
        // 4000 KiB in the first second: md's currspeed is 4001 KiB/s.
        a.sync_io(8000, now);
        assert_eq!(a.show_at("sync_speed", now).as_deref(), Ok("4000"));
        assert_eq!(a.sync_throttle(now, false), None, "below the system max");
        assert_eq!(
            a.sync_throttle(now, true),
            Some(SYNC_THROTTLE_PAUSE),
            "above min while busy"
        );
        a.store("sync_speed_max", "3000", now).expect("max");
        assert_eq!(
            a.sync_throttle(now, false),
            Some(SYNC_THROTTLE_PAUSE),
            "above max"
        );
        a.store("sync_speed_max", "system", now).expect("reset");
        a.store("sync_speed_min", "5000", now).expect("min");
        assert_eq!(a.sync_throttle(now, true), None, "below a raised min");
        assert_eq!(a.show("sync_speed_min").as_deref(), Ok("5000 (local)"));
    }
}

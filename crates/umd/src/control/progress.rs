//! Progress of a running long operation (resync, recovery, check, repair,
//! reshape) from an array's attributes: how far, how fast, how long still.
//!
//! One reading of the attributes serves `umd status` (md's `/proc/mdstat`
//! line), `umd detail` (mdadm's `... Status : N% complete`) and the progress
//! bar of `umd sync --wait` / `umd wait`, so the three never disagree. The
//! position is `curr_resync` (the live position, as `/proc/mdstat` shows it)
//! when the array serves it, else `sync_completed` (md's checkpoint); the
//! speed is `sync_speed` in KiB/s.

/// A long operation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `sync_action` (`resync`, `recover`, `check`, `repair`, `reshape`).
    pub action: String,
    /// Sectors done.
    pub done_sectors: u64,
    /// Sectors in the whole pass (never 0).
    pub total_sectors: u64,
    /// `sync_speed` in KiB/s, when served and non-zero.
    pub speed_kib: Option<u64>,
}

/// Parse `done / total` (`sync_completed`, `curr_resync`); `None` for
/// `none`, `delayed` or a zero total.
#[must_use]
pub fn parse_done_total(value: &str) -> Option<(u64, u64)> {
    let (done, total) = value.split_once(" / ")?;
    let done: u64 = done.trim().parse().ok()?;
    let total: u64 = total.trim().parse().ok().filter(|&t| t > 0)?;
    Some((done.min(total), total))
}

impl Progress {
    /// From the attribute values; `None` when no operation is running.
    #[must_use]
    pub fn read(
        sync_action: &str,
        curr_resync: Option<&str>,
        sync_completed: &str,
        sync_speed: Option<u64>,
    ) -> Option<Self> {
        if matches!(sync_action, "idle" | "frozen" | "") {
            return None;
        }
        let (done_sectors, total_sectors) = curr_resync
            .and_then(parse_done_total)
            .or_else(|| parse_done_total(sync_completed))?;
        Some(Self {
            action: sync_action.to_owned(),
            done_sectors,
            total_sectors,
            speed_kib: sync_speed.filter(|&s| s > 0),
        })
    }

    /// Done in thousandths (md's `per_milli`).
    #[must_use]
    pub fn per_milli(&self) -> u64 {
        assert!(self.total_sectors > 0, "a pass has a length");
        (u128::from(self.done_sectors) * 1000 / u128::from(self.total_sectors)) as u64
    }

    /// Seconds still needed at the current speed (md's `finish=`).
    #[must_use]
    pub fn eta_seconds(&self) -> Option<u64> {
        let speed = self.speed_kib?;
        Some((self.total_sectors - self.done_sectors) / 2 / speed)
    }

    /// `finish=M.Tmin` as md prints it (minutes and tenths).
    #[must_use]
    pub fn finish_text(&self) -> Option<String> {
        let seconds = self.eta_seconds()?;
        Some(format!("{}.{}min", seconds / 60, seconds % 60 / 6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_position_wins_over_the_checkpoint() {
        let p = Progress::read("check", Some("300 / 1000"), "0 / 1000", Some(50)).expect("running");
        assert_eq!((p.done_sectors, p.per_milli()), (300, 300));
        assert_eq!(p.eta_seconds(), Some(7));
        let p = Progress::read("resync", None, "500 / 1000", None).expect("running");
        assert_eq!((p.per_milli(), p.eta_seconds()), (500, None));
        assert_eq!(Progress::read("idle", Some("1 / 2"), "1 / 2", None), None);
        assert_eq!(parse_done_total("none"), None);
    }
}

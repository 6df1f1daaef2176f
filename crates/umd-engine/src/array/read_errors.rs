//! Read errors on members of a redundant array: md's `fix_read_error`
//! bookkeeping. The host rebuilds a block that failed to read from the
//! other members, rewrites it on the failing member and reads it back; the
//! engine decides whether the member may be repaired at all and counts what
//! was repaired.
//!
//! Why a threshold: a member that keeps failing reads is dying, and every
//! repair costs a rebuild, a write and a read. md counts read errors per
//! member (`read_errors`), halving the count for each hour without one
//! (`check_decay_read_errors`), and fails the member once the count passes
//! `max_read_errors` (md's `max_corr_read_errors`, default 20). Sectors
//! that were repaired add up in `dev-NAME/errors` (md's
//! `corrected_errors`). md's raid5 compares against its stripe count
//! instead; umd applies `max_read_errors` to every redundant level, which
//! is the attribute md documents for this.
//!
//! | member | trigger (actor) | to |
//! | --- | --- | --- |
//! | working | read error, count (after decay) ≤ max (host) | working, repair allowed |
//! | working | read error, count > max (host) | failed (md_error) |
//! | working | rewrite or re-read fails (host) | failed (md_error, as for any write error) |
//! | working | repair verified (host) | working, `errors` += sectors |

use super::Array;
use crate::errno::{EngineError, Errno};
use crate::member::parse_u64;
use crate::time::{Duration, Time};

/// md's `MD_DEFAULT_MAX_CORRECTED_READ_ERRORS`.
pub const MAX_READ_ERRORS_DEFAULT: u32 = 20;

/// The decay period of the read-error count: md halves it per hour.
const READ_ERROR_DECAY: Duration = Duration(3_600 * 1_000 * Duration::NS_PER_MS);

/// Whether a member that failed a read may be repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadErrorVerdict {
    /// Rebuild the block from redundancy and rewrite it on the member.
    Repair,
    /// Fail the member: too many read errors, not redundant, or unknown.
    Fail,
}

impl Array {
    /// A read from member `name` failed: count it (md's
    /// `check_decay_read_errors` then `read_errors++`) and say whether the
    /// block may be repaired. A member past `max_read_errors` must be
    /// failed by the caller, through the usual `faulty` store.
    pub fn read_error(&mut self, name: &str, now: Time) -> ReadErrorVerdict {
        let redundant = self.is_redundant() && self.state.running.is_some();
        let max = self.max_read_errors;
        let Some(m) = self.members.iter_mut().find(|m| m.name == name) else {
            return ReadErrorVerdict::Fail;
        };
        if !redundant || !m.is_working() {
            return ReadErrorVerdict::Fail;
        }
        let errors = &mut m.read_errors;
        if let Some(last) = errors.last {
            let hours = (now - last).0 / READ_ERROR_DECAY.0;
            errors.count = if hours >= 32 {
                0
            } else {
                errors.count >> hours
            };
        }
        errors.last = Some(now);
        errors.count = errors.count.saturating_add(1);
        assert!(errors.count >= 1, "the error just counted");
        if errors.count > max {
            ReadErrorVerdict::Fail
        } else {
            ReadErrorVerdict::Repair
        }
    }

    /// `sectors` of member `name` were rewritten and read back good (md's
    /// `corrected_errors`, shown in `dev-NAME/errors`).
    pub fn read_error_corrected(&mut self, name: &str, sectors: u64) {
        assert!(sectors > 0, "a repair of nothing");
        if let Some(m) = self.members.iter_mut().find(|m| m.name == name) {
            m.errors = m.errors.saturating_add(sectors);
            let attr = format!("dev-{name}/errors");
            self.notify(&attr);
        }
    }

    /// `max_read_errors` as md shows it.
    pub(crate) fn show_max_read_errors(&self) -> String {
        self.max_read_errors.to_string()
    }

    /// `max_read_errors` <- N (md's `max_corrected_read_errors_store`: an
    /// unsigned number that fits md's int).
    pub(crate) fn store_max_read_errors(&mut self, v: &str) -> Result<(), EngineError> {
        let n = parse_u64("max_read_errors", v)?;
        let n = u32::try_from(n)
            .ok()
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| {
                EngineError::new(Errno::EINVAL, format!("max_read_errors: {v:?} too large"))
            })?;
        self.max_read_errors = n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::tests::{running, NATIVE};
    use crate::state::Ro;

    #[test]
    fn read_errors_past_the_threshold_fail_and_decay_hourly() {
        let mut a = running(5, NATIVE, Ro::ReadWrite);
        a.store("max_read_errors", "2", Time(0)).expect("a number");
        assert_eq!(a.show("max_read_errors").as_deref(), Ok("2"));
        let t = Time(1_000);
        assert_eq!(a.read_error("sda", t), ReadErrorVerdict::Repair);
        assert_eq!(a.read_error("sda", t), ReadErrorVerdict::Repair);
        assert_eq!(a.read_error("sda", t), ReadErrorVerdict::Fail, "third > 2");
        // Two hours later the count (3) has halved twice: 0, then this one.
        let later = t + Duration(2 * READ_ERROR_DECAY.0);
        assert_eq!(a.read_error("sda", later), ReadErrorVerdict::Repair);
        assert_eq!(a.members[0].read_errors.count, 1);
        assert_eq!(a.read_error("nonexistent", t), ReadErrorVerdict::Fail);
    }

    #[test]
    fn corrected_sectors_add_up_in_errors() {
        let mut a = running(1, NATIVE, Ro::ReadWrite);
        a.read_error_corrected("sdb", 8);
        a.read_error_corrected("sdb", 16);
        assert_eq!(a.show("dev-sdb/errors").as_deref(), Ok("24"));
        assert_eq!(a.show("max_read_errors").as_deref(), Ok("20"));
        for bad in ["-1", "x", "4294967296", "2147483648"] {
            let e = a.store("max_read_errors", bad, Time(0)).unwrap_err();
            assert_eq!(e.errno, Errno::EINVAL, "{bad}");
        }
    }

    #[test]
    fn non_redundant_arrays_never_repair() {
        let mut a = running(0, NATIVE, Ro::ReadWrite);
        assert_eq!(a.read_error("sda", Time(0)), ReadErrorVerdict::Fail);
    }
}

//! One member device of an array (md's `md_rdev`): its slot, health, flags
//! and the `dev-NAME/*` attributes that only concern the member itself.
//!
//! Why a separate file: the member's state is a small machine of its own
//! (protocol.md §1 and §5) that the array core, the attribute tree and the
//! host all read. This module owns the invariants of one member:
//!
//! | health | meaning (md flags) | slot |
//! |---|---|---|
//! | `InSync` | `In_sync`, not `Faulty` | usually `Some`; `None` only while an inactive array is being configured (`insync` store before `slot`) |
//! | `OutOfSync` | neither flag: a spare (no slot) or a recovering member (slot, `recovery_offset`) | any |
//! | `Faulty` | `Faulty`, never `In_sync` | kept until the md thread or `slot none` removes it |
//!
//! md keeps `Faulty` and `In_sync` as two bits that must never both be set;
//! an enum makes that combination unwritable (style R10). The remaining md
//! flags (`Blocked`, `WriteMostly`, ...) are independent of each other and
//! of health, so they stay a bit set. Transitions that need the array
//! (failing a member, activating a slot, removal) live in `attrs.rs` and
//! `array.rs`; this file holds the pure parts.

use std::fmt::Write as _;

use crate::errno::{EngineError, Errno};

/// The attributes every member has under `dev-NAME/` (protocol.md §7).
pub const MEMBER_ATTRS: [&str; 9] = [
    "state",
    "slot",
    "offset",
    "size",
    "errors",
    "recovery_start",
    "bad_blocks",
    "unacknowledged_bad_blocks",
    // umd's own: sectors of this member that the last raid6 check or repair
    // located as wrong with the P/Q syndromes (repair rewrote them).
    "mismatches_located",
];

/// Most bad ranges one member records: md's `MAX_BADBLOCKS` (one page of
/// 8-byte entries). A member with more is failed instead.
pub const BAD_BLOCKS_MAX: usize = 512;

/// One recorded bad range (md's badblocks entry), in member sectors from
/// the data offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadBlock {
    /// First bad sector.
    pub start_sectors: u64,
    /// Bad sectors from there.
    pub len_sectors: u64,
    /// Recorded in the metadata (acknowledged); until then writes wait.
    pub acked: bool,
}

/// Whether a member's data can be trusted (md's `Faulty` / `In_sync` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberHealth {
    /// `In_sync`: every sector holds current data.
    InSync,
    /// Neither `In_sync` nor `Faulty`: a spare, or a member being recovered
    /// whose sectors below `recovery_offset_sectors` are current.
    OutOfSync {
        /// md's `recovery_offset`: sectors below this are already rebuilt.
        recovery_offset_sectors: u64,
    },
    /// `Faulty`: failed; never read, never written.
    Faulty,
}

/// md's per-member flags that are independent of [`MemberHealth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemberFlags(u16);

impl MemberFlags {
    /// md `Blocked`: writes touching this member wait for an acknowledgement.
    pub const BLOCKED: Self = Self(1 << 0);
    /// md `WriteMostly`: avoid reading from this member (raid1).
    pub const WRITE_MOSTLY: Self = Self(1 << 1);
    /// md `WriteErrorSeen`.
    pub const WRITE_ERROR: Self = Self(1 << 2);
    /// md `WantReplacement`.
    pub const WANT_REPLACEMENT: Self = Self(1 << 3);
    /// md `Replacement`.
    pub const REPLACEMENT: Self = Self(1 << 4);
    /// md `ExternalBbl`: the manager keeps the bad-block list.
    pub const EXTERNAL_BBL: Self = Self(1 << 5);
    /// md `FailFast`.
    pub const FAILFAST: Self = Self(1 << 6);
    /// md `FaultRecorded`: a native superblock write has recorded the failure.
    pub const FAULT_RECORDED: Self = Self(1 << 7);
    /// Re-added into the slot it had (md's `saved_raid_disk`): only the
    /// write-intent bitmap's dirty chunks need recovering.
    pub const BITMAP_RECOVERY: Self = Self(1 << 8);

    /// Whether every bit of `other` is set.
    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets or clears the bits of `other`.
    pub fn set(&mut self, other: Self, on: bool) {
        if on {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
        assert_eq!(self.contains(other), on, "flag update must stick");
    }
}

/// One member device (md's `md_rdev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub(crate) name: String,
    pub(crate) slot: Option<u32>,
    pub(crate) data_offset_sectors: u64,
    pub(crate) size_sectors: u64,
    pub(crate) health: MemberHealth,
    pub(crate) flags: MemberFlags,
    /// md's `corrected_errors` (`dev-NAME/errors`): sectors whose read
    /// error was repaired by rewriting them from redundancy.
    pub(crate) errors: u64,
    /// md's `read_errors` with its decay clock (`array/read_errors.rs`).
    pub(crate) read_errors: ReadErrors,
    /// md's bad-block list, at most [`BAD_BLOCKS_MAX`] entries.
    pub(crate) bad_blocks: Vec<BadBlock>,
}

/// md's `read_errors` count of one member and when it last grew: the
/// count halves for every hour without an error (md's
/// `check_decay_read_errors`), so only a burst reaches the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadErrors {
    /// Read errors counted (after decay).
    pub count: u32,
    /// When the last one was counted; `None` before the first.
    pub last: Option<crate::time::Time>,
}

/// What a `dev-NAME/state` store asks of the array, beyond flag changes the
/// member applied to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateStore {
    /// Only member flags changed.
    Done,
    /// `faulty`: run md's error handler (the array decides, by level).
    Fail,
    /// `remove`: detach the member from the array (only if not in a slot).
    Remove,
    /// `-blocked`: flags cleared; the array should look for removable members.
    Unblocked,
    /// `re-add`: needs the spare machinery.
    ReAdd,
    /// `want_replacement`: the array decides whether it can, and starts it.
    WantReplacement,
}

impl Member {
    /// The member's name as used in `dev-NAME/...` attribute paths.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// md's `raid_disk`: the role this member fills, `None` for no slot.
    #[must_use]
    pub fn slot(&self) -> Option<u32> {
        self.slot
    }

    /// The member's health.
    #[must_use]
    pub fn health(&self) -> MemberHealth {
        self.health
    }

    /// md's flag bits other than health.
    #[must_use]
    pub fn flags(&self) -> MemberFlags {
        self.flags
    }

    /// Where the array data starts on this member, in sectors.
    #[must_use]
    pub fn data_offset_sectors(&self) -> u64 {
        self.data_offset_sectors
    }

    /// Usable size of this member, in sectors.
    #[must_use]
    pub fn size_sectors(&self) -> u64 {
        self.size_sectors
    }

    /// md's `corrected_errors` (`dev-NAME/errors`): sectors repaired.
    #[must_use]
    pub fn corrected_errors(&self) -> u64 {
        self.errors
    }

    /// Whether md's `Faulty` is set.
    #[must_use]
    pub fn is_faulty(&self) -> bool {
        self.health == MemberHealth::Faulty
    }

    /// Whether md's `In_sync` is set.
    #[must_use]
    pub fn is_in_sync(&self) -> bool {
        self.health == MemberHealth::InSync
    }

    /// Whether md's `Blocked` is set (writes to this member must wait).
    #[must_use]
    pub fn is_blocked(&self) -> bool {
        self.flags.contains(MemberFlags::BLOCKED)
    }

    /// Whether bad ranges wait for the metadata to record them (md's
    /// `BlockedBadBlocks`).
    #[must_use]
    pub fn has_unacked_bad_blocks(&self) -> bool {
        self.bad_blocks.iter().any(|b| !b.acked)
    }

    /// Whether writes must wait for this member (md's `rdev_blocked`):
    /// `Blocked`, or unacknowledged bad blocks on a member that is not faulty.
    #[must_use]
    pub fn blocks_writes(&self) -> bool {
        self.is_blocked() || (self.has_unacked_bad_blocks() && !self.is_faulty())
    }

    /// `bad_blocks` (acknowledged) or `unacknowledged_bad_blocks`: md's
    /// `sector length` lines.
    #[must_use]
    pub fn show_bad_blocks(&self, acked: bool) -> String {
        self.bad_blocks
            .iter()
            .filter(|b| b.acked == acked)
            .map(|b| format!("{} {}", b.start_sectors, b.len_sectors))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Record a bad range, acknowledged or not (md's `badblocks_set`). An
    /// acknowledged range also acknowledges the unacknowledged ranges inside
    /// it. Returns `false` when the list is full.
    pub(crate) fn set_bad_blocks(
        &mut self,
        start_sectors: u64,
        len_sectors: u64,
        acked: bool,
    ) -> bool {
        assert!(len_sectors > 0, "an empty bad range");
        let end = start_sectors + len_sectors;
        if acked {
            for b in &mut self.bad_blocks {
                if b.start_sectors >= start_sectors && b.start_sectors + b.len_sectors <= end {
                    b.acked = true;
                }
            }
        }
        let same = self
            .bad_blocks
            .iter_mut()
            .find(|b| b.start_sectors == start_sectors && b.len_sectors == len_sectors);
        if let Some(b) = same {
            b.acked |= acked;
            return true;
        }
        if self.bad_blocks.len() >= BAD_BLOCKS_MAX {
            return false;
        }
        self.bad_blocks.push(BadBlock {
            start_sectors,
            len_sectors,
            acked,
        });
        true
    }

    /// Whether the member is the replacement of its slot's member (md's
    /// `Replacement`): written, recovered, never read.
    #[must_use]
    pub fn is_replacement(&self) -> bool {
        self.flags.contains(MemberFlags::REPLACEMENT)
    }

    /// Whether the member fills its slot with current data (counts as working).
    #[must_use]
    pub fn is_working(&self) -> bool {
        self.slot.is_some() && self.is_in_sync()
    }

    /// `dev-NAME/state`: md's comma list, in md's order.
    #[must_use]
    pub fn show_state(&self) -> String {
        let f = self.flags;
        let unacked = self.has_unacked_bad_blocks();
        let external_bbl = f.contains(MemberFlags::EXTERNAL_BBL);
        let words: [(&str, bool); 10] = [
            // md shows unacknowledged bad blocks on a member whose manager
            // keeps no bad-block list as faulty (protocol.md §7).
            ("faulty", self.is_faulty() || (unacked && !external_bbl)),
            ("in_sync", self.is_in_sync()),
            ("write_mostly", f.contains(MemberFlags::WRITE_MOSTLY)),
            ("blocked", self.blocks_writes()),
            ("spare", !self.is_faulty() && !self.is_in_sync()),
            ("write_error", f.contains(MemberFlags::WRITE_ERROR)),
            (
                "want_replacement",
                f.contains(MemberFlags::WANT_REPLACEMENT),
            ),
            ("replacement", f.contains(MemberFlags::REPLACEMENT)),
            ("external_bbl", f.contains(MemberFlags::EXTERNAL_BBL)),
            ("failfast", f.contains(MemberFlags::FAILFAST)),
        ];
        let mut out = String::new();
        for (word, on) in words {
            if on {
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str(word);
            }
        }
        out
    }

    /// `dev-NAME/slot`: `none` or the slot number.
    #[must_use]
    pub fn show_slot(&self) -> String {
        self.slot
            .map_or_else(|| "none".to_owned(), |s| s.to_string())
    }

    /// `dev-NAME/recovery_start`: `none` when in sync, else the offset.
    #[must_use]
    pub fn show_recovery_start(&self) -> String {
        match self.health {
            MemberHealth::OutOfSync {
                recovery_offset_sectors,
            } => recovery_offset_sectors.to_string(),
            MemberHealth::InSync | MemberHealth::Faulty => "none".to_owned(),
        }
    }

    /// The `dev-NAME/*` attributes this member has.
    #[must_use]
    pub fn attr_names(&self) -> Vec<String> {
        MEMBER_ATTRS
            .iter()
            .map(|a| {
                let mut s = String::new();
                let _ = write!(s, "dev-{}/{a}", self.name);
                s
            })
            .collect()
    }

    /// Applies the flag-only words of a `dev-NAME/state` store and says what
    /// the array must do for the rest (md's `state_store`).
    pub(crate) fn store_state(
        &mut self,
        word: &str,
        running: bool,
        external: bool,
    ) -> Result<StateStore, EngineError> {
        let slotted = self.slot.is_some();
        let einval = || EngineError::new(Errno::EINVAL, format!("dev-{}/state: {word}", self.name));
        let effect = match word {
            "faulty" if running => StateStore::Fail,
            "remove" => {
                if slotted {
                    return Err(EngineError::new(
                        Errno::EBUSY,
                        format!("dev-{}/state: remove while in slot", self.name),
                    ));
                }
                self.flags.set(MemberFlags::BLOCKED, false);
                StateStore::Remove
            }
            "writemostly" => self.set_flag(MemberFlags::WRITE_MOSTLY, true),
            "-writemostly" => self.set_flag(MemberFlags::WRITE_MOSTLY, false),
            "blocked" => self.set_flag(MemberFlags::BLOCKED, true),
            "-blocked" => {
                self.flags.set(MemberFlags::BLOCKED, false);
                StateStore::Unblocked
            }
            "insync" if !slotted => {
                if self.is_faulty() {
                    return Err(einval());
                }
                self.health = MemberHealth::InSync;
                StateStore::Done
            }
            "-insync" if slotted && !running => {
                if self.is_in_sync() {
                    self.health = MemberHealth::OutOfSync {
                        recovery_offset_sectors: 0,
                    };
                }
                self.slot = None;
                StateStore::Done
            }
            "write_error" => self.set_flag(MemberFlags::WRITE_ERROR, true),
            "-write_error" => self.set_flag(MemberFlags::WRITE_ERROR, false),
            "want_replacement" if slotted && running => StateStore::WantReplacement,
            "-want_replacement" => self.set_flag(MemberFlags::WANT_REPLACEMENT, false),
            "replacement" | "-replacement" => {
                if running {
                    return Err(EngineError::new(
                        Errno::EBUSY,
                        format!("dev-{}/state: {word} while running", self.name),
                    ));
                }
                self.set_flag(MemberFlags::REPLACEMENT, word == "replacement")
            }
            "re-add" if running => StateStore::ReAdd,
            "external_bbl" if external => self.set_flag(MemberFlags::EXTERNAL_BBL, true),
            "-external_bbl" if external => self.set_flag(MemberFlags::EXTERNAL_BBL, false),
            "failfast" => self.set_flag(MemberFlags::FAILFAST, true),
            "-failfast" => self.set_flag(MemberFlags::FAILFAST, false),
            _ => return Err(einval()),
        };
        assert!(
            !(self.is_faulty() && self.is_in_sync()),
            "Faulty and In_sync never together"
        );
        Ok(effect)
    }

    fn set_flag(&mut self, flag: MemberFlags, on: bool) -> StateStore {
        self.flags.set(flag, on);
        StateStore::Done
    }
}

/// Parses an unsigned decimal attribute value (md's `kstrtoull`), allowing
/// one trailing newline.
pub(crate) fn parse_u64(attr: &str, value: &str) -> Result<u64, EngineError> {
    let v = value.strip_suffix('\n').unwrap_or(value);
    v.parse::<u64>()
        .map_err(|_| EngineError::new(Errno::EINVAL, format!("{attr}: not a number: {v:?}")))
}

/// Strips the one trailing newline sysfs writers usually send.
pub(crate) fn trim_value(value: &str) -> &str {
    value.strip_suffix('\n').unwrap_or(value)
}

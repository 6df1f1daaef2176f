//! The `array_state` machine (protocol.md §2): the flags it is derived from,
//! what `show` reports and what each written word does.
//!
//! Why here: `array_state` is the whole external-metadata protocol in one
//! attribute. The manager learns of clean->dirty transitions, failures and
//! idleness by polling it and acknowledges by writing it; the precedence of
//! §2.1 and the three store steps of §2.2 must therefore match md exactly.
//!
//! States shown (§2.1, modern precedence), with the flags that produce them:
//!
//! | shown | `pers` | `ro` | flags |
//! |---|---|---|---|
//! | `clear` | none | - | no members, `raid_disks` 0, size 0 |
//! | `inactive` | none | - | some configuration |
//! | `readonly` / `read-auto` | yes | `ReadOnly` / `AutoRead` | - |
//! | `write-pending` | yes | `ReadWrite` | `CHANGE_PENDING` |
//! | `clean` (`broken` with `MD_BROKEN`) | yes | `ReadWrite` | `in_sync` |
//! | `active-idle` | yes | `ReadWrite` | `safemode` != off |
//! | `active` | yes | `ReadWrite` | none of the above |
//!
//! Transitions and their actors are the table of §2.2 (the manager or an
//! admin writing the attribute) plus §2.3 (writes, the safemode timer,
//! failures, resync end; see `array.rs`). Impossible combinations, asserted
//! by [`MdState::check`]: `in_sync` with writes pending on a redundant level; `safemode` immediate on an external array; a running flag set
//! (`CHANGE_*`, `safemode`) while not running.

use crate::array::{Array, ArrayEvent, MetadataKind};
use crate::errno::{EngineError, Errno};
use crate::time::Time;

/// md's `ro`: whether a running array accepts writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ro {
    /// `MD_RDWR` (0).
    ReadWrite,
    /// `MD_RDONLY` (1): `readonly`.
    ReadOnly,
    /// `MD_AUTO_READ` (2): `read-auto`; the first write makes it read-write.
    AutoRead,
}

/// md's `safemode` (protocol.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeMode {
    /// 0: normal.
    Off,
    /// 1: the safemode timer fired; the array is idle.
    Idle,
    /// 2: immediate (shutdown); native only.
    Immediate,
}

/// md's `sb_flags` (`MD_SB_CHANGE_*`): superblock changes not yet recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SbFlags(u8);

impl SbFlags {
    /// `MD_SB_CHANGE_DEVS`: device status changed.
    pub const DEVS: Self = Self(1 << 0);
    /// `MD_SB_CHANGE_CLEAN`: a clean<->dirty transition.
    pub const CLEAN: Self = Self(1 << 1);
    /// `MD_SB_CHANGE_PENDING`: writes wait until this is cleared.
    pub const PENDING: Self = Self(1 << 2);

    /// Whether every bit of `other` is set.
    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    #[must_use]
    pub fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no bit is set.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Sets the bits of `other`.
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    /// Clears the bits of `other`.
    pub fn remove(&mut self, other: Self) {
        self.0 &= !other.0;
    }

    /// The union of two sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// The flags of md's `mddev` that `array_state` is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdState {
    /// `pers` (a personality is attached) and `ro`; `None` = not running.
    pub running: Option<Ro>,
    /// md's `in_sync`: no writes since the metadata last recorded clean.
    pub in_sync: bool,
    /// md's `writes_pending`: writes between write start and end.
    pub writes_pending: u32,
    /// md's `safemode`.
    pub safemode: SafeMode,
    /// md's `sb_flags`.
    pub sb_flags: SbFlags,
    /// md's `MD_BROKEN`: failed beyond redundancy; writes get EIO.
    pub broken: bool,
    /// md's `MD_CLOSING`: a stop or read-only switch is in progress.
    pub closing: bool,
}

impl MdState {
    /// A configured, not running array.
    #[must_use]
    pub fn stopped() -> Self {
        Self {
            running: None,
            in_sync: true,
            writes_pending: 0,
            safemode: SafeMode::Off,
            sb_flags: SbFlags::default(),
            broken: false,
            closing: false,
        }
    }

    /// Asserts the impossible combinations of the module table never occur.
    /// `redundant`: the level tracks clean/dirty (raid0 and linear do not:
    /// md never marks them dirty, so they stay `in_sync` while writing).
    pub fn check(&self, external: bool, redundant: bool) {
        if self.running.is_none() {
            assert_eq!(self.writes_pending, 0, "writes pending on a stopped array");
            assert!(self.sb_flags.is_empty(), "sb_flags on a stopped array");
        }
        assert!(
            !(external && self.safemode == SafeMode::Immediate),
            "immediate safemode is native only"
        );
        assert!(
            !(redundant && self.in_sync && self.writes_pending > 0),
            "clean with writes in flight"
        );
    }
}

/// The words `array_state` shows or accepts (protocol.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayStateWord {
    /// `clear`.
    Clear,
    /// `inactive`.
    Inactive,
    /// `suspended` (never shown, never accepted).
    Suspended,
    /// `readonly`.
    Readonly,
    /// `read-auto`.
    ReadAuto,
    /// `clean`.
    Clean,
    /// `active`.
    Active,
    /// `write-pending`.
    WritePending,
    /// `active-idle`.
    ActiveIdle,
    /// `broken`.
    Broken,
}

impl ArrayStateWord {
    /// Every word, in md's `array_states[]` order.
    pub const ALL: [Self; 10] = [
        Self::Clear,
        Self::Inactive,
        Self::Suspended,
        Self::Readonly,
        Self::ReadAuto,
        Self::Clean,
        Self::Active,
        Self::WritePending,
        Self::ActiveIdle,
        Self::Broken,
    ];

    /// md's spelling.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::Inactive => "inactive",
            Self::Suspended => "suspended",
            Self::Readonly => "readonly",
            Self::ReadAuto => "read-auto",
            Self::Clean => "clean",
            Self::Active => "active",
            Self::WritePending => "write-pending",
            Self::ActiveIdle => "active-idle",
            Self::Broken => "broken",
        }
    }

    /// Parses one word with an optional trailing newline (md's `cmd_match`).
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.strip_suffix('\n').unwrap_or(value);
        Self::ALL.into_iter().find(|w| w.name() == v)
    }
}

impl Array {
    /// `array_state` as md shows it (protocol.md §2.1).
    #[must_use]
    pub fn array_state(&self) -> &'static str {
        self.array_state_word().name()
    }

    /// `array_state` as a word.
    #[must_use]
    pub fn array_state_word(&self) -> ArrayStateWord {
        let s = &self.state;
        let Some(ro) = s.running else {
            return if self.members.is_empty() && self.raid_disks == 0 && self.component_sectors == 0
            {
                ArrayStateWord::Clear
            } else {
                ArrayStateWord::Inactive
            };
        };
        let word = match ro {
            Ro::ReadOnly => ArrayStateWord::Readonly,
            Ro::AutoRead => ArrayStateWord::ReadAuto,
            Ro::ReadWrite if s.sb_flags.contains(SbFlags::PENDING) => ArrayStateWord::WritePending,
            Ro::ReadWrite if s.in_sync => ArrayStateWord::Clean,
            Ro::ReadWrite if s.safemode != SafeMode::Off => ArrayStateWord::ActiveIdle,
            Ro::ReadWrite => ArrayStateWord::Active,
        };
        if s.broken && word == ArrayStateWord::Clean {
            ArrayStateWord::Broken
        } else {
            word
        }
    }

    /// A write to `array_state` (protocol.md §2.2, steps A, B, C).
    pub(crate) fn store_array_state(&mut self, value: &str, now: Time) -> Result<(), EngineError> {
        let word = ArrayStateWord::parse(value).ok_or_else(|| bad_word(value))?;
        // Step A: refused words, and the open check for leaving read-write.
        match word {
            ArrayStateWord::Suspended
            | ArrayStateWord::WritePending
            | ArrayStateWord::ActiveIdle
            | ArrayStateWord::Broken => return Err(bad_word(value)),
            ArrayStateWord::Clear
            | ArrayStateWord::Readonly
            | ArrayStateWord::Inactive
            | ArrayStateWord::ReadAuto
                if self.state.running == Some(Ro::ReadWrite) =>
            {
                if self.openers > 0 || self.state.closing {
                    return Err(busy("array is open"));
                }
                self.state.closing = true;
            }
            _ => {}
        }
        // Step B: the lock-free toggle between clean and active.
        let fast = matches!(word, ArrayStateWord::Active | ArrayStateWord::Clean)
            && matches!(self.state.running, Some(Ro::ReadWrite | Ro::AutoRead));
        let result = if fast {
            self.store_fast(word)
        } else {
            self.store_locked(word, now)
        };
        self.state.closing = false;
        if result.is_ok() {
            self.notify("array_state");
        }
        self.md_check_recovery();
        self.state.check(self.is_external(), self.is_redundant());
        result
    }

    /// Step B: `active` acknowledges; `clean` marks the array in sync.
    fn store_fast(&mut self, word: ArrayStateWord) -> Result<(), EngineError> {
        assert!(self.state.running.is_some(), "fast path only when running");
        if self.state.running == Some(Ro::AutoRead) {
            self.restart_array();
        }
        if word == ArrayStateWord::Active {
            self.state.sb_flags.remove(SbFlags::PENDING);
            return Ok(());
        }
        if self.set_in_sync() {
            Ok(())
        } else {
            Err(busy("writes pending"))
        }
    }

    /// Step C: everything that needs the configuration lock.
    fn store_locked(&mut self, word: ArrayStateWord, now: Time) -> Result<(), EngineError> {
        let running = self.state.running;
        match (word, running) {
            (ArrayStateWord::Inactive, None) | (ArrayStateWord::ReadAuto, Some(Ro::AutoRead)) => {
                Ok(())
            }
            (ArrayStateWord::Inactive, Some(_)) => self.do_md_stop(true),
            (ArrayStateWord::Clear, _) => self.do_md_stop(false),
            (ArrayStateWord::Readonly, None) => self.run_from_store(Ro::ReadOnly, now),
            (ArrayStateWord::Readonly, Some(_)) => self.md_set_readonly(),
            (ArrayStateWord::ReadAuto, None) => self.run_from_store(Ro::AutoRead, now),
            (ArrayStateWord::ReadAuto, Some(Ro::ReadOnly)) => {
                self.restart_array();
                self.state.running = Some(Ro::AutoRead);
                Ok(())
            }
            (ArrayStateWord::ReadAuto, Some(Ro::ReadWrite)) => {
                self.md_set_readonly()?;
                self.state.running = Some(Ro::AutoRead);
                Ok(())
            }
            (ArrayStateWord::Clean, None) => Err(EngineError::new(
                Errno::EINVAL,
                "array_state: clean on an inactive array",
            )),
            (ArrayStateWord::Clean, Some(_)) => {
                self.restart_array();
                if self.set_in_sync() {
                    Ok(())
                } else {
                    Err(busy("writes pending"))
                }
            }
            (ArrayStateWord::Active, None) => self.run_from_store(Ro::ReadWrite, now),
            (ArrayStateWord::Active, Some(_)) => {
                self.restart_array();
                self.state.sb_flags.remove(SbFlags::PENDING);
                Ok(())
            }
            _ => unreachable!("step A refused {word:?}"),
        }
    }

    /// `do_md_run` reached through `array_state`: the host learns by `Run`.
    fn run_from_store(&mut self, ro: Ro, now: Time) -> Result<(), EngineError> {
        self.run(ro, now)?;
        self.push_event(ArrayEvent::Run);
        Ok(())
    }

    /// md's `restart_array` for a running array: make it read-write. Its
    /// only failures (no members, a read-only member device) cannot happen
    /// to a running array here, so it returns nothing.
    pub(crate) fn restart_array(&mut self) {
        assert!(
            self.state.running.is_some(),
            "restart_array needs a running array"
        );
        if self.state.running != Some(Ro::ReadWrite) {
            self.state.running = Some(Ro::ReadWrite);
            self.recovery_needed = true;
        }
        assert_eq!(self.state.running, Some(Ro::ReadWrite));
    }

    /// md's `set_in_sync`: the only way from dirty to clean (protocol.md §3.4).
    /// Returns the resulting `in_sync`.
    pub(crate) fn set_in_sync(&mut self) -> bool {
        if !self.state.in_sync && self.state.writes_pending == 0 {
            self.state.in_sync = true;
            self.state.sb_flags.insert(SbFlags::CLEAN);
            self.notify("array_state");
        }
        if self.state.safemode == SafeMode::Idle {
            self.state.safemode = SafeMode::Off;
        }
        assert!(!(self.state.in_sync && self.state.safemode == SafeMode::Idle));
        self.state.in_sync
    }

    /// md's `md_set_readonly` (protocol.md §2.2 helper list).
    fn md_set_readonly(&mut self) -> Result<(), EngineError> {
        assert!(
            self.state.running.is_some(),
            "md_set_readonly needs a running array"
        );
        if self.is_external() && self.state.sb_flags.contains(SbFlags::PENDING) {
            return Err(busy("unacknowledged write-pending"));
        }
        if self.openers > 0 || self.state.writes_pending > 0 {
            return Err(busy("array is open or has writes in flight"));
        }
        self.stop_sync_thread();
        self.md_stop_writes();
        if self.state.running == Some(Ro::ReadOnly) {
            return Err(EngineError::new(
                Errno::ENXIO,
                "array_state: already read-only",
            ));
        }
        self.state.running = Some(Ro::ReadOnly);
        self.state.sb_flags.remove(SbFlags::PENDING);
        Ok(())
    }

    /// md's `do_md_stop`: stop (`keep_config`: mode 2) or stop and wipe (mode 0).
    fn do_md_stop(&mut self, keep_config: bool) -> Result<(), EngineError> {
        if self.state.running.is_some() {
            if self.openers > 0 || self.state.writes_pending > 0 {
                return Err(busy("array is open or has writes in flight"));
            }
            self.stop_sync_thread();
            self.md_stop_writes();
            self.state = MdState::stopped();
            self.safemode_timer = None;
            self.sync.reset();
        }
        if !keep_config {
            self.wipe_config();
        }
        self.push_event(ArrayEvent::Stop { keep_config });
        assert!(self.state.running.is_none());
        Ok(())
    }

    /// md's `__md_stop_writes`: mark a read-write array clean before it
    /// stops being writable; native metadata records it.
    fn md_stop_writes(&mut self) {
        assert_eq!(self.state.writes_pending, 0, "stop with writes in flight");
        if self.state.running == Some(Ro::ReadWrite)
            && (!self.state.in_sync || !self.state.sb_flags.is_empty())
        {
            self.state.in_sync = true;
            self.state.safemode = SafeMode::Off;
            if matches!(self.metadata, MetadataKind::Native { .. }) {
                self.request_superblock_write();
            }
            self.state.sb_flags = SbFlags::default();
        }
        assert!(self.state.in_sync || self.state.running != Some(Ro::ReadWrite));
    }
}

fn bad_word(value: &str) -> EngineError {
    EngineError::new(
        Errno::EINVAL,
        format!("array_state: cannot write {value:?}"),
    )
}

fn busy(why: &str) -> EngineError {
    EngineError::new(Errno::EBUSY, format!("array_state: {why}"))
}

//! The attribute tree of an array: md's sysfs names under `md/` mapped to
//! show and store, with md's value formats and error codes (protocol.md
//! §2 and §7).
//!
//! Why: `umd ctl` and the metadata manager speak only in these names and
//! values, and must see exactly what md would show and refuse. Values are
//! shown without md's trailing newline; stores accept one trailing newline.
//! Unknown names are ENOENT; read-only attributes refuse stores with EIO (md's
//! store wrapper without a store method). The `array_state` machine lives
//! in `state.rs`, sync actions in `array/sync.rs`; this file holds the rest,
//! including md's `md_allow_write` for `stripe_cache_size` growth in the
//! 2008-2017 EAGAIN form (protocol.md §4.3).

mod members;

use crate::array::{
    level_name, Array, ArrayEvent, MetadataKind, LEVEL_LINEAR, LEVEL_NONE, MAX_SECTOR,
    STRIPE_CACHE_SIZE_MAX, STRIPE_CACHE_SIZE_MIN,
};
use crate::errno::{EngineError, Errno};
use crate::member::{parse_u64, trim_value};
use crate::state::{Ro, SafeMode, SbFlags};
use crate::time::{Duration, Time};

/// Array attributes every array has, in md's `md_default_attrs` order.
pub const ARRAY_ATTRS: [&str; 21] = [
    "level",
    "raid_disks",
    "chunk_size",
    "layout",
    "component_size",
    "metadata_version",
    "resync_start",
    "array_state",
    "sync_action",
    "sync_completed",
    "degraded",
    "mismatch_cnt",
    "sync_speed_min",
    "sync_speed_max",
    "sync_speed",
    "safe_mode_delay",
    "reshape_position",
    "array_size",
    "stripe_cache_size",
    "consistency_policy",
    "max_read_errors",
];

/// umd's attributes beyond md's sysfs, on redundant arrays: `curr_resync`
/// is md's live sync position (the variable `/proc/mdstat` prints), shown as
/// `none` or `done / total` sectors like `sync_completed`.
pub const UMD_ARRAY_ATTRS: [&str; 1] = ["curr_resync"];

/// The `bitmap/` attributes, present when the array has a bitmap.
pub const BITMAP_ATTRS: [&str; 8] = [
    "chunksize",
    "location",
    "metadata",
    "time_base",
    "backlog",
    "max_backlog_used",
    "can_clear",
    "space",
];

/// md's bitmap `COUNTER_MAX`: the largest `bitmap/backlog`.
pub const BITMAP_BACKLOG_MAX: u64 = 16383;

/// Milliseconds per second, for `safe_mode_delay`'s three decimals.
const MS_PER_SECOND: u64 = 1000;

impl Array {
    /// Every attribute name this array has now.
    #[must_use]
    pub fn attr_names(&self) -> Vec<String> {
        let redundant = self.is_redundant();
        let mut names: Vec<String> = ARRAY_ATTRS
            .iter()
            .filter(|a| **a != "stripe_cache_size" || self.has_stripe_cache())
            .filter(|a| redundant || !a.starts_with("sync_speed"))
            .map(|a| (*a).to_owned())
            .collect();
        if redundant {
            names.extend(UMD_ARRAY_ATTRS.iter().map(|a| (*a).to_owned()));
        }
        if self.bitmap.is_some() {
            names.extend(BITMAP_ATTRS.iter().map(|a| format!("bitmap/{a}")));
        }
        for m in &self.members {
            names.extend(m.attr_names());
        }
        names
    }

    /// Reads an attribute as md shows it (without the trailing newline);
    /// `sync_speed` as of the sync's last progress report ([`Self::show_at`]
    /// measures it now).
    pub fn show(&self, attr: &str) -> Result<String, EngineError> {
        let now = self.sync.running.map_or(Time(0), |r| r.marks.last_time());
        self.show_at(attr, now)
    }

    /// [`Self::show`] at time `now` (which only `sync_speed` depends on).
    pub fn show_at(&self, attr: &str, now: Time) -> Result<String, EngineError> {
        if let Some(rest) = attr.strip_prefix("dev-") {
            return self.show_member(attr, rest);
        }
        if let Some(name) = attr.strip_prefix("bitmap/") {
            return self.show_bitmap(attr, name);
        }
        Ok(match attr {
            "array_state" => self.array_state().to_owned(),
            "level" => self.show_level(),
            "raid_disks" if self.raid_disks == 0 => String::new(),
            "raid_disks" => self.raid_disks.to_string(),
            "chunk_size" => (u64::from(self.chunk_sectors) * 512).to_string(),
            "layout" => self.layout.to_string(),
            "component_size" => (self.component_sectors / 2).to_string(),
            "metadata_version" => match &self.metadata {
                MetadataKind::Native { version } => version.clone(),
                MetadataKind::External { name } => format!("external:{name}"),
                MetadataKind::None => "none".to_owned(),
            },
            "resync_start" => sector_or_none(self.recovery_cp),
            "sync_action" => self.show_sync_action().to_owned(),
            "sync_completed" => self.show_sync_completed(),
            "degraded" => self.degraded.to_string(),
            "mismatch_cnt" => self.sync.mismatch_cnt.to_string(),
            "sync_speed_min" if self.is_redundant() => self.show_speed_limit(false),
            "sync_speed_max" if self.is_redundant() => self.show_speed_limit(true),
            "sync_speed" if self.is_redundant() => self.show_sync_speed(now),
            "curr_resync" if self.is_redundant() => self.show_curr_resync(),
            "safe_mode_delay" => {
                let ms = self.safe_mode_delay.as_ms();
                format!("{}.{:03}", ms / MS_PER_SECOND, ms % MS_PER_SECOND)
            }
            "stripe_cache_size" if self.has_stripe_cache() => self.stripe_cache_size.to_string(),
            "reshape_position" => self
                .reshape_position
                .map_or_else(|| "none".to_owned(), |p| p.to_string()),
            "array_size" if self.external_size => (self.array_sectors / 2).to_string(),
            "array_size" => "default".to_owned(),
            "consistency_policy" => self.consistency_policy().to_owned(),
            "max_read_errors" => self.show_max_read_errors(),
            _ => return Err(no_attr(attr)),
        })
    }

    /// Writes an attribute with md's rules; on success, drain events.
    pub fn store(&mut self, attr: &str, value: &str, now: Time) -> Result<(), EngineError> {
        let result = self.store_inner(attr, value, now);
        self.md_check_recovery();
        result
    }

    fn store_inner(&mut self, attr: &str, value: &str, now: Time) -> Result<(), EngineError> {
        if let Some(rest) = attr.strip_prefix("dev-") {
            return self.store_member(attr, rest, trim_value(value));
        }
        if let Some(name) = attr.strip_prefix("bitmap/") {
            return self.store_bitmap(attr, name, trim_value(value));
        }
        let v = trim_value(value);
        match attr {
            "array_state" => self.store_array_state(value, now),
            "sync_action" => self.store_sync_action(v),
            "resync_start" => self.store_resync_start(v),
            "safe_mode_delay" => self.store_safe_mode_delay(v, now),
            "stripe_cache_size" if self.has_stripe_cache() => self.store_stripe_cache_size(v),
            "level" => self.store_level(v),
            "raid_disks" | "chunk_size" | "layout" | "component_size" => {
                self.store_geometry(attr, v)
            }
            "metadata_version" => self.store_metadata_version(v),
            "reshape_position" => self.store_reshape_position(v),
            "array_size" => self.store_array_size(v),
            "consistency_policy" => Err(EngineError::new(
                Errno::EINVAL,
                "consistency_policy: changing it on a running array is not supported",
            )),
            "max_read_errors" => self.store_max_read_errors(v),
            "sync_speed_min" if self.is_redundant() => self.store_speed_limit(attr, v, false),
            "sync_speed_max" if self.is_redundant() => self.store_speed_limit(attr, v, true),
            "sync_completed" | "degraded" | "mismatch_cnt" | "sync_speed" | "curr_resync"
                if self.is_redundant() || !attr.starts_with("sync_speed") =>
            {
                Err(EngineError::new(Errno::EIO, format!("{attr}: read-only")))
            }
            _ => Err(no_attr(attr)),
        }
    }

    /// md's `consistency_policy`: how the array survives a crash mid-write.
    #[must_use]
    pub fn consistency_policy(&self) -> &'static str {
        if self.ppl {
            "ppl"
        } else if self.bitmap.is_some() {
            "bitmap"
        } else if self.state.running.is_none() {
            "unknown"
        } else if matches!(self.level, 1 | 4 | 5 | 6 | 10) {
            "resync"
        } else {
            "none"
        }
    }

    /// md's `MD_HAS_PPL`: the array logs partial parity (raid5 with a PPL
    /// area on every member).
    pub fn set_ppl(&mut self, on: bool) {
        self.ppl = on && self.level == 5;
    }

    fn has_stripe_cache(&self) -> bool {
        matches!(self.level, 4..=6)
    }

    fn show_level(&self) -> String {
        level_name(self.level).map_or_else(
            || {
                if self.level == LEVEL_NONE {
                    self.clevel.clone()
                } else {
                    self.level.to_string()
                }
            },
            str::to_owned,
        )
    }

    fn store_level(&mut self, v: &str) -> Result<(), EngineError> {
        let parsed = parse_level(v);
        match self.state.running {
            None => {
                self.level = parsed.unwrap_or(LEVEL_NONE);
                self.clevel = if parsed.is_some() {
                    String::new()
                } else {
                    v.to_owned()
                };
                self.notify("level");
                Ok(())
            }
            Some(Ro::ReadWrite) if parsed == Some(self.level) => Ok(()),
            Some(Ro::ReadWrite) if self.sync.running.is_some() => {
                Err(EngineError::new(Errno::EBUSY, "level: sync running"))
            }
            Some(Ro::ReadWrite) => Err(EngineError::new(Errno::EINVAL, "level: no takeover")),
            Some(_) => Err(EngineError::new(Errno::EROFS, "level: array is read-only")),
        }
    }

    /// `raid_disks`, `chunk_size`, `layout`, `component_size`: free while
    /// inactive. While running, an unchanged value is accepted; a raid1
    /// `raid_disks` change is md's `raid1_reshape`; any other change is the
    /// personality's `check_reshape`, which for raid4/5/6 first needs
    /// `md_allow_write` (it would allocate a new stripe cache), so on a clean
    /// external array it fails with EAGAIN until the manager acknowledged
    /// (protocol.md §4.3: "reshape is held off").
    fn store_geometry(&mut self, attr: &str, v: &str) -> Result<(), EngineError> {
        let n = parse_u64(attr, v)?;
        let too_big = || EngineError::new(Errno::EINVAL, format!("{attr}: out of range"));
        let (current, new) = match attr {
            "raid_disks" => (u64::from(self.raid_disks), n),
            "chunk_size" => (u64::from(self.chunk_sectors), n / 512),
            "layout" => (u64::from(self.layout), n),
            _ => (
                self.component_sectors,
                n.checked_mul(2).ok_or_else(too_big)?,
            ),
        };
        if let Some(ro) = self.state.running {
            if new == current {
                return Ok(());
            }
            if matches!(ro, Ro::ReadOnly | Ro::AutoRead) {
                return Err(EngineError::new(Errno::EROFS, attr));
            }
            if self.sync.running.is_some() {
                return Err(EngineError::new(Errno::EBUSY, attr));
            }
            return match (attr, self.level) {
                ("raid_disks", 1) => self.raid1_reshape(u32::try_from(new).map_err(|_| too_big())?),
                ("raid_disks" | "chunk_size" | "layout", 4..=6) => {
                    self.md_allow_write()?;
                    Err(EngineError::new(
                        Errno::EINVAL,
                        format!("{attr}: reshaping raid{} is not supported yet", self.level),
                    ))
                }
                ("raid_disks" | "component_size", _) => Err(EngineError::new(
                    Errno::EINVAL,
                    format!("{attr}: reshape not supported"),
                )),
                _ => Err(EngineError::new(
                    Errno::EBUSY,
                    format!("{attr}: reshape not supported"),
                )),
            };
        }
        match attr {
            "raid_disks" => self.raid_disks = u32::try_from(new).map_err(|_| too_big())?,
            "chunk_size" => self.chunk_sectors = u32::try_from(new).map_err(|_| too_big())?,
            "layout" => self.layout = u32::try_from(new).map_err(|_| too_big())?,
            _ => {
                // md's size_store: only shrink, or set from zero.
                if self.component_sectors != 0 && self.component_sectors <= new {
                    return Err(EngineError::new(
                        Errno::ENOSPC,
                        "component_size: may only shrink",
                    ));
                }
                self.component_sectors = new;
            }
        }
        Ok(())
    }

    /// md's `raid1_reshape` through `update_raid_disks`: `md_allow_write`
    /// first (EAGAIN on a clean external array until the manager has
    /// acknowledged), then the new count. Growing adds empty slots (the
    /// array is degraded until spares fill them); shrinking needs the
    /// dropped slots empty (md would move members down into free lower
    /// slots; here they must be removed first).
    fn raid1_reshape(&mut self, new: u32) -> Result<(), EngineError> {
        assert_eq!(self.level, 1, "raid1 only");
        if new == 0 {
            return Err(EngineError::new(Errno::EINVAL, "raid_disks: at least 1"));
        }
        self.md_allow_write()?;
        if let Some(m) = self
            .members
            .iter()
            .find(|m| m.slot.is_some_and(|s| s >= new))
        {
            return Err(EngineError::new(
                Errno::EBUSY,
                format!(
                    "raid_disks: slot {} is held by {}",
                    m.slot.unwrap_or(0),
                    m.name
                ),
            ));
        }
        self.raid_disks = new;
        self.update_degraded();
        self.state.sb_flags.insert(SbFlags::DEVS);
        self.notify("raid_disks");
        assert!(self.members.iter().all(|m| m.slot.is_none_or(|s| s < new)));
        Ok(())
    }

    fn store_metadata_version(&mut self, v: &str) -> Result<(), EngineError> {
        let new = if v == "none" {
            MetadataKind::None
        } else if let Some(name) = v.strip_prefix("external:") {
            MetadataKind::External {
                name: name.chars().take(16).collect(),
            }
        } else {
            let (major, minor) = v
                .split_once('.')
                .ok_or_else(|| EngineError::new(Errno::EINVAL, "metadata_version: X.Y"))?;
            let (major, minor) = (
                parse_u64("metadata_version", major)?,
                parse_u64("metadata_version", minor)?,
            );
            let known = matches!((major, minor), (0, 90) | (1, 0..=2));
            if !known {
                return Err(EngineError::new(
                    Errno::ENOENT,
                    "metadata_version: unknown major",
                ));
            }
            MetadataKind::Native {
                version: format!("{major}.{minor}"),
            }
        };
        let ext_to_ext = self.is_external() && matches!(new, MetadataKind::External { .. });
        if !ext_to_ext && (!self.members.is_empty() || self.state.running.is_some()) {
            return Err(EngineError::new(
                Errno::EBUSY,
                "metadata_version: array has members",
            ));
        }
        self.metadata = new;
        Ok(())
    }

    fn store_resync_start(&mut self, v: &str) -> Result<(), EngineError> {
        if self.state.running.is_some() && !self.sync.frozen {
            return Err(EngineError::new(
                Errno::EBUSY,
                "resync_start: array running, not frozen",
            ));
        }
        self.recovery_cp = if v == "none" {
            MAX_SECTOR
        } else {
            parse_u64("resync_start", v)?
        };
        if self.state.running.is_some() {
            self.state.sb_flags.insert(SbFlags::CLEAN);
        }
        Ok(())
    }

    /// md's `safe_mode_delay_store`: decimal seconds, at most three decimals.
    fn store_safe_mode_delay(&mut self, v: &str, now: Time) -> Result<(), EngineError> {
        let ms = parse_seconds_ms(v)
            .ok_or_else(|| EngineError::new(Errno::EINVAL, format!("safe_mode_delay: {v:?}")))?;
        let old = self.safe_mode_delay;
        self.safe_mode_delay = Duration::from_ms(ms);
        let shorter = self.safe_mode_delay.0 != 0 && (self.safe_mode_delay < old || old.0 == 0);
        if shorter && self.state.running.is_some() {
            // md re-arms the timer one jiffy ahead.
            self.safemode_timer = Some(now + Duration(1));
        }
        if self.safe_mode_delay.0 == 0 && self.state.safemode == SafeMode::Idle {
            self.state.safemode = SafeMode::Off;
        }
        Ok(())
    }

    /// `raid5_store_stripe_cache_size`: shrink at once; growth first needs
    /// `md_allow_write`, which fails with EAGAIN while an external manager
    /// has not acknowledged the dirty transition (protocol.md §4.3).
    fn store_stripe_cache_size(&mut self, v: &str) -> Result<(), EngineError> {
        let n = parse_u64("stripe_cache_size", v)?;
        let range = u64::from(STRIPE_CACHE_SIZE_MIN)..=u64::from(STRIPE_CACHE_SIZE_MAX);
        if !range.contains(&n) {
            return Err(EngineError::new(
                Errno::EINVAL,
                "stripe_cache_size: 17..32768",
            ));
        }
        let n = n as u32;
        if self.state.running.is_none() {
            return Err(EngineError::new(
                Errno::ENODEV,
                "stripe_cache_size: not running",
            ));
        }
        if n <= self.stripe_cache_size {
            self.set_stripe_cache(n);
            return Ok(());
        }
        self.md_allow_write()?;
        self.set_stripe_cache(n);
        Ok(())
    }

    fn set_stripe_cache(&mut self, n: u32) {
        if n != self.stripe_cache_size {
            self.stripe_cache_size = n;
            self.push_event(ArrayEvent::StripeCacheResize(n));
        }
        assert_eq!(self.stripe_cache_size, n);
    }

    /// md's `md_allow_write` (2008-2017 form): start the dirty transition,
    /// notify, and return EAGAIN while `CHANGE_PENDING` stays set (external).
    pub(crate) fn md_allow_write(&mut self) -> Result<(), EngineError> {
        if self.state.running != Some(Ro::ReadWrite) || !self.is_redundant() {
            return Ok(());
        }
        if self.state.in_sync {
            self.state.in_sync = false;
            self.state
                .sb_flags
                .insert(SbFlags::CLEAN.union(SbFlags::PENDING));
            if self.safe_mode_delay.0 != 0 && self.state.safemode == SafeMode::Off {
                self.state.safemode = SafeMode::Idle;
            }
            self.notify("array_state");
        }
        if self.is_external() && self.state.sb_flags.contains(SbFlags::PENDING) {
            return Err(EngineError::new(
                Errno::EAGAIN,
                "array is clean: the metadata manager must acknowledge first",
            ));
        }
        Ok(())
    }

    /// md's GET_BITMAP_FILE ioctl: the path of a file-backed bitmap, or
    /// empty (no bitmap, or an internal one: umd has no file bitmaps). Like
    /// md it first calls `md_allow_write`; EAGAIN is not an error here (md
    /// then allocated its reply without reclaim), so the query never fails
    /// and never waits, though it may start the dirty transition.
    pub fn get_bitmap_file(&mut self) -> String {
        let _ = self.md_allow_write();
        self.md_check_recovery();
        String::new()
    }

    fn store_reshape_position(&mut self, v: &str) -> Result<(), EngineError> {
        if self.state.running.is_some() {
            return Err(EngineError::new(
                Errno::EBUSY,
                "reshape_position: array running",
            ));
        }
        self.reshape_position = if v == "none" {
            None
        } else {
            Some(parse_u64("reshape_position", v)?)
        };
        Ok(())
    }

    fn store_array_size(&mut self, v: &str) -> Result<(), EngineError> {
        let default = self.default_array_sectors();
        if v == "default" {
            self.external_size = false;
            self.array_sectors = default;
            return Ok(());
        }
        let kib = parse_u64("array_size", v)?;
        let sectors = kib
            .checked_mul(2)
            .ok_or_else(|| EngineError::new(Errno::EINVAL, "array_size: too large"))?;
        if self.state.running.is_some() && sectors > default {
            return Err(EngineError::new(
                Errno::E2BIG,
                "array_size: larger than the array",
            ));
        }
        self.external_size = true;
        self.array_sectors = sectors;
        Ok(())
    }

    /// What the personality's `size()` gives for the current geometry.
    fn default_array_sectors(&self) -> u64 {
        let disks = u64::from(self.raid_disks);
        let data_disks = match self.level {
            1 => 1.min(disks),
            4 | 5 => disks.saturating_sub(1),
            6 => disks.saturating_sub(2),
            10 => disks / u64::from(self.max_degraded() + 1),
            0 | LEVEL_LINEAR => disks,
            _ => 0,
        };
        self.component_sectors.saturating_mul(data_disks)
    }

    fn show_bitmap(&self, attr: &str, name: &str) -> Result<String, EngineError> {
        let b = self.bitmap.as_ref().ok_or_else(|| no_attr(attr))?;
        Ok(match name {
            "chunksize" => b.chunk_bytes.to_string(),
            "location" => b.location.clone(),
            "metadata" => if b.external { "external" } else { "internal" }.to_owned(),
            "time_base" => b.time_base_seconds.to_string(),
            "backlog" => b.backlog.to_string(),
            "max_backlog_used" => b.max_backlog_used.to_string(),
            "can_clear" => if b.can_clear { "true" } else { "false" }.to_owned(),
            "space" => b.space_sectors.to_string(),
            _ => return Err(no_attr(attr)),
        })
    }

    fn store_bitmap(&mut self, attr: &str, name: &str, v: &str) -> Result<(), EngineError> {
        let running = self.state.running.is_some();
        let degraded = self.degraded;
        let b = self.bitmap.as_mut().ok_or_else(|| no_attr(attr))?;
        let einval = || EngineError::new(Errno::EINVAL, format!("{attr}: {v:?}"));
        match name {
            "chunksize" | "location" | "metadata" | "space" if running => {
                return Err(EngineError::new(
                    Errno::EBUSY,
                    format!("{attr}: bitmap in use"),
                ))
            }
            "chunksize" => {
                let n = parse_u64(attr, v)?;
                if n < 512 || !n.is_power_of_two() {
                    return Err(einval());
                }
                b.chunk_bytes = n;
            }
            "location" => v.clone_into(&mut b.location),
            "metadata" => match v {
                "internal" => b.external = false,
                "external" => b.external = true,
                _ => return Err(einval()),
            },
            "space" => b.space_sectors = parse_u64(attr, v)?,
            "time_base" => match parse_u64(attr, v)? {
                0 => return Err(einval()),
                n => b.time_base_seconds = n,
            },
            "backlog" => match parse_u64(attr, v)? {
                n if n > BITMAP_BACKLOG_MAX => return Err(einval()),
                n => b.backlog = n,
            },
            "max_backlog_used" => b.max_backlog_used = 0,
            "can_clear" => match v {
                "false" => b.can_clear = false,
                "true" if degraded > 0 => {
                    return Err(EngineError::new(Errno::EBUSY, format!("{attr}: degraded")))
                }
                "true" => b.can_clear = true,
                _ => return Err(einval()),
            },
            _ => return Err(no_attr(attr)),
        }
        Ok(())
    }
}

fn no_attr(attr: &str) -> EngineError {
    EngineError::new(Errno::ENOENT, format!("{attr}: no such attribute"))
}

fn sector_or_none(sector: u64) -> String {
    if sector == MAX_SECTOR {
        "none".to_owned()
    } else {
        sector.to_string()
    }
}

/// md's level names and numbers (`level_store` via `find_pers`).
fn parse_level(v: &str) -> Option<i32> {
    let by_name = [LEVEL_LINEAR, 0, 1, 4, 5, 6, 10]
        .into_iter()
        .find(|l| level_name(*l) == Some(v));
    by_name.or_else(|| v.parse::<i32>().ok().filter(|l| level_name(*l).is_some()))
}

/// md's `strict_strtoul_scaled(buf, &msec, 3)`: `S`, `S.`, `S.d`, `S.dd`, `S.ddd`.
fn parse_seconds_ms(v: &str) -> Option<u64> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 {
        return None;
    }
    let seconds = whole.parse::<u64>().ok()?;
    let mut ms = 0u64;
    for i in 0..3 {
        let d = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
        ms = ms * 10 + d;
    }
    seconds.checked_mul(MS_PER_SECOND)?.checked_add(ms)
}

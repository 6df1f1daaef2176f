//! mdadm's layout names (`left-symmetric`, `n2`, `ddf-N-restart`, ...) and
//! the md layout numbers they stand for, per level.
//!
//! Split from `create.rs` so the placement logic there stays readable; the
//! names and numbers are formats.md §4.2-§4.6.

// A child of `create`: it shares that module's constants and error helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

/// mdadm's layout names for `level`, or a bare number, to md's layout value
/// (formats.md §4.2, §4.4, §4.5, §4.6). Values are checked against the level
/// by [`plan_create`] through the geometry.
pub fn parse_layout(level: i32, name: &str) -> Result<u32, EngineError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    if let Some(n) = name
        .strip_prefix("0x")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
    {
        return Ok(n);
    }
    let found = match level {
        0 => match name {
            "original" | "o" => Some(LAYOUT_RAID0_ORIG),
            "alternate" | "alt" => Some(LAYOUT_RAID0_ALT),
            _ => None,
        },
        4 => match name {
            "parity-last" => Some(0),
            _ => None,
        },
        5 => raid5_layout(name),
        6 => raid5_layout(name)
            .filter(|_| !name.starts_with("ddf-"))
            .or_else(|| raid6_layout(name)),
        10 => raid10_layout(name),
        _ => None,
    };
    found.ok_or_else(|| {
        einval(format!(
            "--layout {name}: not a layout of md level {level} ({})",
            layout_names(level)
        ))
    })
}

pub(super) fn layout_names(level: i32) -> &'static str {
    match level {
        0 => "original, alternate",
        4 => "parity-last",
        5 => {
            "left-asymmetric, right-asymmetric, left-symmetric, right-symmetric, parity-first, \
              parity-last, ddf-zero-restart, ddf-N-restart, ddf-N-continue"
        }
        6 => {
            "the raid5 names, ddf-zero-restart, ddf-N-restart, ddf-N-continue, \
              left-asymmetric-6, right-asymmetric-6, left-symmetric-6, right-symmetric-6, \
              parity-first-6"
        }
        10 => "nK, fK or oK with K copies, e.g. n2, f2, o2",
        _ => "this level has no layouts",
    }
}

/// raid4/5 algorithm names (formats.md §4.4); mdadm maps the DDF names of
/// raid5 onto md algorithms.
pub(super) fn raid5_layout(name: &str) -> Option<u32> {
    Some(match name {
        "left-asymmetric" | "la" | "ddf-N-restart" => 0,
        "right-asymmetric" | "ra" | "ddf-zero-restart" => 1,
        "left-symmetric" | "ls" | "ddf-N-continue" => LAYOUT_LEFT_SYMMETRIC,
        "right-symmetric" | "rs" => 3,
        "parity-first" => 4,
        "parity-last" => 5,
        _ => return None,
    })
}

/// raid6-only algorithm names (formats.md §4.5).
pub(super) fn raid6_layout(name: &str) -> Option<u32> {
    Some(match name {
        "ddf-zero-restart" => 8,
        "ddf-N-restart" => 9,
        "ddf-N-continue" => 10,
        "left-asymmetric-6" => 16,
        "right-asymmetric-6" => 17,
        "left-symmetric-6" => 18,
        "right-symmetric-6" => 19,
        "parity-first-6" => 20,
        _ => return None,
    })
}

/// raid10 "nK", "fK", "oK" (formats.md §4.6).
pub(super) fn raid10_layout(name: &str) -> Option<u32> {
    let mut chars = name.chars();
    let kind = chars.next()?;
    let copies: u32 = chars.as_str().parse().ok()?;
    if copies == 0 || copies > RAID10_COPIES_MAX {
        return None;
    }
    match kind {
        'n' => Some((1 << RAID10_FAR_SHIFT) | copies),
        'f' => Some((copies << RAID10_FAR_SHIFT) | 1),
        'o' => Some(RAID10_OFFSET_BIT | (copies << RAID10_FAR_SHIFT) | 1),
        _ => None,
    }
}

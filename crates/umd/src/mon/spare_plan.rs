//! When a subarray takes spares, and what the engine is told for each
//! (mdmon's spare activation, protocol.md §6.4, §8.24): the pure half, shared
//! by `umd mon`'s loop and the simulator's manager.
//!
//! Why apart from [`super::decide`]: `decide` records what the engine
//! already did; activation is the manager's own initiative, run after the
//! pass's acknowledgements, with its own order. The handler chooses the
//! disks and records them rebuilding; around that the order is fixed:
//! freeze the sync thread, add each disk to the engine (`new_dev`, then
//! `offset`, `size`, `slot`), write the metadata, and only then `recover`.
//! A recovery that ran before the metadata named the disk would rebuild onto
//! a disk the container still calls a spare.

use super::handler::SpareAssignment;
use umd_engine::array::ArrayStateWord;

/// The slots of a subarray that have no member, when the subarray may take
/// spares now: writable (clean, active or active-idle at the last pass),
/// degraded, no sync running or frozen, and not blocked by its manager
/// (`metadata_version` `external:-`). Empty otherwise. `get` reads an
/// attribute relative to the subarray (`None` when unreadable); `members`
/// are the member names the manager watches.
pub fn missing_slots(
    prev_state: Option<ArrayStateWord>,
    mut get: impl FnMut(&str) -> Option<String>,
    members: &[String],
) -> Vec<u32> {
    use ArrayStateWord as W;
    let writable = matches!(prev_state, Some(W::Clean | W::Active | W::ActiveIdle));
    if !writable {
        return Vec::new();
    }
    let mut number = |attr: &str| -> u32 {
        get(attr)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_default()
    };
    let degraded = number("degraded");
    let raid_disks = number("raid_disks");
    let idle = get("sync_action").is_some_and(|a| a.trim() == "idle");
    let blocked = get("metadata_version").is_some_and(|v| v.starts_with("external:-"));
    if degraded == 0 || !idle || blocked {
        return Vec::new();
    }
    let taken: Vec<u32> = members
        .iter()
        .filter_map(|name| get(&format!("dev-{name}/slot")))
        .filter_map(|slot| slot.trim().parse().ok())
        .collect();
    (0..raid_disks).filter(|s| !taken.contains(s)).collect()
}

/// The writes that place a chosen disk, added to the engine as member
/// `name` (after its `new_dev`), in its slot: md takes the offset before the
/// size (the size is checked against the device from the offset on) and
/// both before the slot. Attributes are relative to the subarray.
#[must_use]
pub fn placement_writes(a: &SpareAssignment, name: &str) -> [(String, String); 3] {
    [
        (
            format!("dev-{name}/offset"),
            a.data_offset_sectors.to_string(),
        ),
        (format!("dev-{name}/size"), (a.size_sectors / 2).to_string()),
        (format!("dev-{name}/slot"), a.slot.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn members() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    const DEGRADED_IDLE: &[(&str, &str)] = &[
        ("degraded", "1"),
        ("raid_disks", "3"),
        ("sync_action", "idle"),
        ("metadata_version", "external:/ddf-1/0"),
        ("dev-a/slot", "0"),
        ("dev-b/slot", "2"),
    ];

    #[test]
    fn a_degraded_idle_writable_subarray_wants_its_empty_slots() {
        let a = attrs(DEGRADED_IDLE);
        let got = missing_slots(
            Some(ArrayStateWord::Clean),
            |k| a.get(k).cloned(),
            &members(),
        );
        assert_eq!(got, vec![1]);
    }

    #[test]
    fn nothing_while_read_only_syncing_whole_or_blocked() {
        let a = attrs(DEGRADED_IDLE);
        let get = |k: &str| a.get(k).cloned();
        assert!(missing_slots(Some(ArrayStateWord::ReadAuto), get, &members()).is_empty());
        assert!(missing_slots(None, get, &members()).is_empty());
        for (attr, value) in [
            ("sync_action", "frozen"),
            ("sync_action", "recover"),
            ("degraded", "0"),
            ("metadata_version", "external:-ddf-1/0"),
        ] {
            let mut b = a.clone();
            b.insert(attr.into(), value.into());
            let got = missing_slots(
                Some(ArrayStateWord::Active),
                |k| b.get(k).cloned(),
                &members(),
            );
            assert!(got.is_empty(), "{attr}={value} gave {got:?}");
        }
    }

    #[test]
    fn placement_is_offset_then_size_in_kib_then_slot() {
        let a = SpareAssignment {
            disk: 3,
            slot: 1,
            data_offset_sectors: 2048,
            size_sectors: 8192,
        };
        let w = placement_writes(&a, "sdx");
        assert_eq!(
            w.map(|(k, v)| format!("{k}={v}")),
            ["dev-sdx/offset=2048", "dev-sdx/size=4096", "dev-sdx/slot=1"]
        );
    }
}

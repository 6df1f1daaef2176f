//! Parses what `oracle_write/verify.sh` prints in the VM: per array the members'
//! `mdadm --examine` before assembly, the kernel's state right after assembly, the outcome of
//! a re-add and of `check`, the size and sha256 of `/dev/mdX`, and the first member's
//! `mdadm --examine` after the kernel stopped it.
//!
//! Every line the host reads starts with `@@`; mdadm's and /proc/mdstat's own text passes
//! through untouched between `@@examine IDX K DEV` or `@@mdstat IDX` and `@@end`.

use std::collections::BTreeMap;

/// What the VM reported about one array.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verified {
    /// `mdadm --examine` text per member, in the order the plan attached them.
    pub(crate) examine: BTreeMap<usize, String>,
    /// `mdadm --assemble` failed with this output.
    pub(crate) assemble_failed: Option<String>,
    /// `KEY=VALUE` pairs read from sysfs right after assembly.
    pub(crate) after: BTreeMap<String, String>,
    /// /proc/mdstat right after assembly.
    pub(crate) mdstat: String,
    /// `mdadm --re-add` failed with this output.
    pub(crate) readd_failed: Option<String>,
    /// `KEY=VALUE` pairs once the re-added member's recovery ended.
    pub(crate) readd: BTreeMap<String, String>,
    /// `KEY=VALUE` pairs after `check` (mismatch_cnt, sync_action).
    pub(crate) check: BTreeMap<String, String>,
    /// `blockdev --getsize64 /dev/mdX`.
    pub(crate) size_bytes: Option<u64>,
    /// sha256 of the whole `/dev/mdX` after `check`.
    pub(crate) sha256: Option<String>,
    /// `mdadm --stop` failed.
    pub(crate) stop_failed: bool,
    /// `mdadm --examine` of the first assembled member after the kernel stopped the array.
    pub(crate) examine_after: Option<String>,
}

fn pairs(words: &[&str]) -> BTreeMap<String, String> {
    words
        .iter()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The text up to the next `@@end` line.
fn block<'a>(lines: &mut impl Iterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for l in lines.by_ref() {
        let l = l.trim_end_matches('\r');
        if l == "@@end" {
            break;
        }
        text.push_str(l);
        text.push('\n');
    }
    text
}

/// Splits the guest output into per-array results, keyed by the array's index in the plan.
pub(crate) fn parse_verify_output(out: &str) -> BTreeMap<usize, Verified> {
    let mut arrays: BTreeMap<usize, Verified> = BTreeMap::new();
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        let words: Vec<&str> = line.trim_end_matches('\r').split_whitespace().collect();
        let [tag, idx, rest @ ..] = &words[..] else {
            continue;
        };
        if !tag.starts_with("@@") {
            continue;
        }
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        let a = arrays.entry(idx).or_default();
        match *tag {
            "@@examine" => {
                let Some(k) = rest.first().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                a.examine.insert(k, block(&mut lines));
            }
            "@@assemble-failed" => a.assemble_failed = Some(rest.join(" ")),
            "@@after" => a.after = pairs(rest),
            "@@mdstat" => a.mdstat = block(&mut lines),
            "@@readd-failed" => a.readd_failed = Some(rest.join(" ")),
            "@@readd" => a.readd = pairs(rest),
            "@@check" => a.check = pairs(rest),
            "@@size" => a.size_bytes = rest.first().and_then(|s| s.parse().ok()),
            "@@sha256" => a.sha256 = rest.first().map(|s| (*s).to_string()),
            "@@stop-failed" => a.stop_failed = true,
            "@@examine-after" => a.examine_after = Some(block(&mut lines)),
            _ => {}
        }
    }
    arrays
}

//! Parses what `oracle/batch.sh` prints in the VM: per array its size, sha256, the kernel's
//! sysfs view of layout and chunk, and the raw `mdadm --examine` text of every member.
//!
//! The guest marks everything with lines starting `@@` so that mdadm's own text passes
//! through untouched between `@@examine IDX MEMBER DEV` and `@@end`.

use std::collections::BTreeMap;

/// What the VM reported about one array.
#[derive(Debug, Clone, Default)]
pub(crate) struct VmArray {
    /// `mdadm --create` failed with this output.
    pub(crate) create_failed: Option<String>,
    /// `mdadm --stop` failed.
    pub(crate) stop_failed: bool,
    /// `blockdev --getsize64 /dev/mdX`.
    pub(crate) size_bytes: Option<u64>,
    /// sha256 of the whole `/dev/mdX` after the data was written.
    pub(crate) sha256: Option<String>,
    /// `/sys/block/mdX/md/layout` (the kernel's reading of the superblock).
    pub(crate) sysfs_layout: Option<i64>,
    /// `/sys/block/mdX/md/chunk_size` in bytes.
    pub(crate) sysfs_chunk_bytes: Option<u64>,
    /// `mdadm --examine` text per member index (creation order).
    pub(crate) examine: BTreeMap<usize, String>,
}

fn array<'a>(
    arrays: &'a mut BTreeMap<usize, VmArray>,
    idx: Option<&str>,
) -> Option<&'a mut VmArray> {
    let idx = idx?.parse().ok()?;
    Some(arrays.entry(idx).or_default())
}

/// Splits the guest output into per-array results, keyed by the array's index in the batch.
pub(crate) fn parse_vm_output(out: &str) -> BTreeMap<usize, VmArray> {
    let mut arrays: BTreeMap<usize, VmArray> = BTreeMap::new();
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches('\r');
        let mut words = line.split_whitespace();
        let tag = words.next();
        if !tag.is_some_and(|t| t.starts_with("@@")) {
            continue;
        }
        let Some(a) = array(&mut arrays, words.next()) else {
            continue;
        };
        let rest: Vec<&str> = words.collect();
        match tag {
            Some("@@create-failed") => a.create_failed = Some(rest.join(" ")),
            Some("@@stop-failed") => a.stop_failed = true,
            Some("@@size") => a.size_bytes = rest.first().and_then(|s| s.parse().ok()),
            Some("@@sha256") => a.sha256 = rest.first().map(|s| (*s).to_string()),
            Some("@@sysfs") => {
                for kv in rest {
                    match kv.split_once('=') {
                        Some(("layout", v)) => a.sysfs_layout = v.parse().ok(),
                        Some(("chunk_size", v)) => a.sysfs_chunk_bytes = v.parse().ok(),
                        _ => {}
                    }
                }
            }
            Some("@@examine") => {
                let Some(member) = rest.first().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let mut text = String::new();
                for l in lines.by_ref() {
                    let l = l.trim_end_matches('\r');
                    if l == "@@end" {
                        break;
                    }
                    text.push_str(l);
                    text.push('\n');
                }
                a.examine.insert(member, text);
            }
            _ => {}
        }
    }
    arrays
}

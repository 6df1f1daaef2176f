//! mdadm's names for levels and layouts, for printing and for matching its output.

/// mdadm's name for md level `level`.
pub(crate) fn level_name(level: i32) -> String {
    match level {
        -4 => "multipath".into(),
        -5 => "faulty".into(),
        -1 => "linear".into(),
        0 | 1 | 4 | 5 | 6 | 10 => format!("raid{level}"),
        other => format!("level {other}"),
    }
}

/// mdadm's name for `layout` at `level` (formats.md §4.4-4.6), if it has one.
pub(crate) fn layout_name(level: i32, layout: u32) -> Option<String> {
    match level {
        5 | 6 => parity_layout_name(layout).map(str::to_string),
        10 => Some(raid10_layout_name(layout)),
        0 => match layout {
            1 => Some("original".into()),
            2 => Some("alternate".into()),
            _ => None,
        },
        _ => None,
    }
}

fn parity_layout_name(layout: u32) -> Option<&'static str> {
    Some(match layout {
        0 => "left-asymmetric",
        1 => "right-asymmetric",
        2 => "left-symmetric",
        3 => "right-symmetric",
        4 => "parity-first",
        5 => "parity-last",
        8 => "ddf-zero-restart",
        9 => "ddf-N-restart",
        10 => "ddf-N-continue",
        16 => "left-asymmetric-6",
        17 => "right-asymmetric-6",
        18 => "left-symmetric-6",
        19 => "right-symmetric-6",
        20 => "parity-first-6",
        _ => return None,
    })
}

fn raid10_layout_name(layout: u32) -> String {
    let near = layout & 0xff;
    let far = (layout >> 8) & 0xff;
    let offset = layout & 0x1_0000 != 0;
    let mut parts = Vec::new();
    if near > 1 {
        parts.push(format!("near={near}"));
    }
    if far > 1 {
        parts.push(format!("{}={far}", if offset { "offset" } else { "far" }));
    }
    if parts.is_empty() {
        parts.push(format!("near={near}"));
    }
    parts.join(", ")
}

/// `sectors` as mdadm shows sizes: "N sectors (x.xx MiB y.yy MB)".
// Two decimals of a human-readable size cannot notice f64's 52-bit mantissa.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn human_sectors(sectors: u64) -> String {
    let bytes = sectors as f64 * 512.0;
    let (bin, bin_unit) = scale(bytes, 1024.0, &["KiB", "MiB", "GiB", "TiB", "PiB"]);
    let (dec, dec_unit) = scale(bytes, 1000.0, &["KB", "MB", "GB", "TB", "PB"]);
    format!("{sectors} sectors ({bin:.2} {bin_unit} {dec:.2} {dec_unit})")
}

fn scale(mut value: f64, step: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut unit = units[0];
    value /= step;
    for u in &units[1..] {
        if value < step {
            break;
        }
        value /= step;
        unit = u;
    }
    (value, unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raid10_names_match_mdadm() {
        assert_eq!(raid10_layout_name(0x102), "near=2");
        assert_eq!(raid10_layout_name(0x201), "far=2");
        assert_eq!(raid10_layout_name(0x1_0201), "offset=2");
        assert_eq!(raid10_layout_name(0x202), "near=2, far=2");
    }
}

//! Speed limits and progress of long operations, end to end: md's
//! `sync_speed_min`/`sync_speed_max` formats and refusals, a low
//! `sync_speed_max` holding a check back, and `umd status`, `umd detail`,
//! `umd sync --wait` and `umd wait` reporting what the array's attributes
//! say (each reading bracketed by attribute reads taken before and after).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::{create, run_ok, sparse_members, umd, Running, TempDir};

const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
/// The limit the slow check runs under, KiB/s.
const SLOW_KIB: u64 = 1000;

/// (done, total) of a `done / total` attribute.
fn done_total(value: &str) -> (u64, u64) {
    let (d, t) = value
        .split_once(" / ")
        .unwrap_or_else(|| panic!("not done / total: {value:?}"));
    (
        d.trim().parse().expect("done"),
        t.trim().parse().expect("total"),
    )
}

/// Run a `umd` subcommand with `UMD_RUN_DIR` at `run_dir`; its stdout.
fn umd_stdout(run_dir: &Path, args: &[&str]) -> String {
    let out = run_ok(umd().env("UMD_RUN_DIR", run_dir).args(args));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `key` in `text` (up to the next non-digit).
fn number_after(text: &str, key: &str) -> u64 {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"))
        + key.len();
    let digits: String = text[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in:\n{text}"))
}

#[test]
fn speed_limits_show_and_store_as_md() {
    let dir = TempDir::new("speed-attrs");
    let members = sparse_members(dir.path(), 2, 16);
    create(
        &members,
        &["--level", "1", "--raid-devices", "2", "--assume-clean"],
    );
    let run = Running::start(dir.path(), &members);
    // md's defaults (dev.raid.speed_limit_min/max) until set locally.
    assert_eq!(run.get("sync_speed_min"), "1000 (system)");
    assert_eq!(run.get("sync_speed_max"), "200000 (system)");
    assert_eq!(run.get("sync_speed"), "none");
    run.set("sync_speed_max", "5000").expect("set max");
    assert_eq!(run.get("sync_speed_max"), "5000 (local)");
    run.set("sync_speed_min", "20").expect("set min");
    assert_eq!(run.get("sync_speed_min"), "20 (local)");
    run.set("sync_speed_max", "system").expect("reset max");
    assert_eq!(run.get("sync_speed_max"), "200000 (system)");
    for bad in ["0", "fast", "12abc"] {
        let error = run.set("sync_speed_min", bad).expect_err("md refuses");
        assert!(error.contains("EINVAL"), "{bad}: {error}");
    }
    assert!(
        run.set("sync_speed", "10").is_err(),
        "sync_speed is read-only"
    );
    run.stop();
}

#[test]
fn a_low_sync_speed_max_holds_a_check_back_and_progress_is_reported() {
    let dir = TempDir::new("speed-slow");
    let members = sparse_members(dir.path(), 4, 64);
    create(
        &members,
        &["--level", "5", "--raid-devices", "4", "--assume-clean"],
    );
    let run = Running::start(dir.path(), &members);
    let ctl = run.control.display().to_string();
    run.set("sync_speed_max", &SLOW_KIB.to_string())
        .expect("set max");
    let started = Instant::now();
    umd_stdout(dir.path(), &["sync", &ctl, "check"]);
    std::thread::sleep(Duration::from_secs(3));
    let (done, total) = done_total(&run.get("curr_resync"));
    let elapsed = started.elapsed().as_secs() + 2;
    assert!(done > 0, "the check started");
    assert!(
        done <= SLOW_KIB * 2 * elapsed,
        "{done} sectors in about {elapsed} s is faster than {SLOW_KIB} KiB/s"
    );
    assert!(done < total, "the check is held back");

    // umd status: the mdstat line lies between two reads of the attributes.
    let before = done_total(&run.get("curr_resync")).0;
    let speed_before: u64 = run.get("sync_speed").parse().expect("speed");
    let status = umd_stdout(dir.path(), &["status"]);
    let after = done_total(&run.get("curr_resync")).0;
    let speed_after: u64 = run.get("sync_speed").parse().expect("speed");
    let line = status
        .lines()
        .find(|l| l.contains("check ="))
        .unwrap_or_else(|| panic!("no check line in:\n{status}"));
    let shown_done = number_after(line, "(");
    assert!(
        (before / 2..=after / 2).contains(&shown_done),
        "{line} outside {before}..{after} sectors"
    );
    assert_eq!(number_after(line, "/"), total / 2, "{line}");
    let shown_speed = number_after(line, "speed=");
    assert!(
        (speed_before.min(speed_after)..=speed_before.max(speed_after)).contains(&shown_speed),
        "{line}: speed outside {speed_before}..{speed_after}"
    );
    assert!(line.contains("finish="), "{line}");

    // umd detail: level, devices and the check's progress.
    let before = done_total(&run.get("curr_resync")).0;
    let detail = umd_stdout(dir.path(), &["detail", "array"]);
    let after = done_total(&run.get("curr_resync")).0;
    assert!(
        detail.contains(&format!("Raid Level : {}", run.get("level"))),
        "{detail}"
    );
    assert_eq!(
        number_after(&detail, "Raid Devices :"),
        run.get("raid_disks").parse::<u64>().expect("n")
    );
    assert!(detail.contains("State : clean, checking"), "{detail}");
    let percent = number_after(&detail, "Check Status :");
    assert!(
        (before * 100 / total..=after * 100 / total).contains(&percent),
        "{percent}% outside {before}..{after} of {total}:\n{detail}"
    );
    for m in &members {
        let name = m.file_name().expect("name").to_string_lossy();
        assert!(
            detail
                .lines()
                .any(|l| l.contains("active sync") && l.ends_with(name.as_ref())),
            "{name} not listed in sync:\n{detail}"
        );
    }

    // Lift the limit; `umd wait` follows the check to its end.
    run.set("sync_speed_max", "system").expect("reset max");
    let waited = umd_stdout(dir.path(), &["wait", &ctl]);
    assert_eq!(run.get("sync_action"), "idle");
    assert_eq!(
        waited.trim(),
        format!("mismatch_cnt {}", run.get("mismatch_cnt"))
    );
    let repaired = umd_stdout(dir.path(), &["sync", "array", "repair", "--wait"]);
    assert_eq!(
        repaired.trim(),
        format!("mismatch_cnt {}", run.get("mismatch_cnt"))
    );
    run.wait_idle(SYNC_TIMEOUT);
    run.stop();
}

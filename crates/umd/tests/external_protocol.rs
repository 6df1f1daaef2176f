//! The engine <-> metadata manager protocol (protocol.md §8) with real
//! processes: `umd run` serving a DDF container that mdadm made, `umd mon`
//! managing it, real NBD clients (qemu-io) writing, and the host's mdadm
//! reading what landed on disk. Each test names the behaviour it shows.
//!
//! The manager is paused with SIGSTOP to hold the protocol at the moment a
//! behaviour is about: a write waiting in `write-pending`, a failure not yet
//! recorded.

mod support;

use std::time::Duration;
use support::external::{
    eventually, examine, expect_event, finish, get, qemu_io, real_container, serve, set,
    still_blocked, wait_for, watch, Mon, SETTLE,
};
use support::{mdadm_examine, require_tool, Running, TempDir};

/// How long a write must stay blocked to count as waiting.
const BLOCKED: Duration = Duration::from_millis(700);

/// A container of `level` served and managed, with subarray 0 clean: written
/// once and gone idle (`read-auto` until a write, then `active`, then
/// `clean` after safe mode).
struct Fixture {
    dir: TempDir,
    disks: Vec<std::path::PathBuf>,
    run: Running,
    mon: Option<Mon>,
    export: String,
}

impl Fixture {
    fn new(level: &str, run_args: &[&str]) -> Option<Fixture> {
        Self::with_env(level, run_args, &[])
    }

    /// A fixture whose `umd run` gets `env` too.
    fn with_env(level: &str, run_args: &[&str], env: &[(&str, &str)]) -> Option<Fixture> {
        require_tool("qemu-io");
        let dir = TempDir::new(&format!("ext-{level}"));
        let disks = real_container(dir.path(), level)?;
        let mut args = vec!["--no-mon"];
        args.extend_from_slice(run_args);
        let run = Running::start_with_env(dir.path(), &disks, &args, env);
        let mon = Mon::start(&run, "1", &[]);
        wait_for(&run, "0/array_state", "read-auto");
        let export = format!("ddf-{level}");
        Some(Fixture {
            dir,
            disks,
            run,
            mon: Some(mon),
            export,
        })
    }

    fn mon(&self) -> &Mon {
        self.mon.as_ref().expect("manager running")
    }

    /// One write through NBD, waited for.
    fn write(&self, offset: u64, pattern: u8) {
        let cmd = format!("write -P {pattern} {offset} 4k");
        finish(qemu_io(&self.run, &self.export, &cmd, false), SETTLE);
    }

    /// Write once (at 1 MiB, away from what the tests write) and wait until
    /// the array is clean again.
    fn make_clean(&self) {
        self.write(1 << 20, 0x11);
        wait_for(&self.run, "0/array_state", "clean");
    }

    fn vd_state(&self) -> String {
        let text = mdadm_examine(&self.disks[0]);
        text.lines()
            .find(|l| l.trim_start().starts_with("state[0]"))
            .unwrap_or_else(|| panic!("no VD state in mdadm --examine:\n{text}"))
            .to_owned()
    }

    fn wait_vd_state(&self, consistent: bool) {
        eventually(
            &format!("VD state (waiting for consistent={consistent})"),
            || {
                let state = self.vd_state();
                (state.contains("Not Consistent") != consistent, state)
            },
        );
    }
}

/// §8.2 and §8.3: with the manager paused, growing `stripe_cache_size` on a
/// clean external raid5 fails with EAGAIN at once, leaves the array in
/// `write-pending` (notified) and the cache unchanged; shrinking works even
/// then; after the acknowledgement the retry succeeds.
#[test]
fn stripe_cache_growth_is_eagain_until_acknowledged() {
    let Some(f) = Fixture::new("raid5", &[]) else {
        return;
    };
    f.make_clean();
    // As mdadm does around such changes: no drift back to clean.
    set(&f.run, "0/safe_mode_delay", "0").expect("safe_mode_delay");
    let events = watch(&f.run, &["0/array_state"]);
    expect_event(&events, "0/array_state", "clean");
    f.mon().pause();
    let started = std::time::Instant::now();
    assert_eq!(
        set(&f.run, "0/stripe_cache_size", "512"),
        Err("EAGAIN".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "EAGAIN must be prompt"
    );
    assert_eq!(get(&f.run, "0/array_state"), "write-pending");
    expect_event(&events, "0/array_state", "write-pending");
    assert_eq!(get(&f.run, "0/stripe_cache_size"), "256");
    assert_eq!(set(&f.run, "0/stripe_cache_size", "128"), Ok(()));
    assert_eq!(get(&f.run, "0/stripe_cache_size"), "128");
    f.mon().resume();
    wait_for(&f.run, "0/array_state", "active");
    assert_eq!(set(&f.run, "0/stripe_cache_size", "512"), Ok(()));
    assert_eq!(get(&f.run, "0/stripe_cache_size"), "512");
}

/// §8.5: the bitmap-file query answers at once even while the transition it
/// starts is unacknowledged.
#[test]
fn bitmap_file_query_never_waits() {
    let Some(f) = Fixture::new("raid5", &[]) else {
        return;
    };
    f.make_clean();
    set(&f.run, "0/safe_mode_delay", "0").expect("safe_mode_delay");
    f.mon().pause();
    let started = std::time::Instant::now();
    assert_eq!(get(&f.run, "0/bitmap_file"), "");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(get(&f.run, "0/array_state"), "write-pending");
    f.mon().resume();
    wait_for(&f.run, "0/array_state", "active");
}

/// §8.6: with `--allow-write wait` (md today), the change waits for the
/// acknowledgement instead of failing, and the acknowledgement gets through
/// while it waits.
#[test]
fn modern_mode_waits_and_the_ack_gets_through() {
    let Some(f) = Fixture::new("raid5", &["--allow-write", "wait"]) else {
        return;
    };
    f.make_clean();
    set(&f.run, "0/safe_mode_delay", "0").expect("safe_mode_delay");
    f.mon().pause();
    let mut change = support::umd()
        .args(["ctl", "--control"])
        .arg(&f.run.control)
        .args(["set", "0/stripe_cache_size", "1024"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("umd ctl");
    assert!(still_blocked(&mut change, BLOCKED), "the change must wait");
    // Reads of the attribute tree are not blocked by the waiting change.
    assert_eq!(get(&f.run, "0/array_state"), "write-pending");
    f.mon().resume();
    finish(change, SETTLE);
    assert_eq!(get(&f.run, "0/stripe_cache_size"), "1024");
}

/// §8.7, §8.8, §8.9: the first write to a clean array waits in
/// `write-pending` while reads go on; the manager records dirty on disk
/// before it writes `active`; after `safe_mode_delay` idle the engine shows
/// `active-idle`, the manager writes `clean`, and the disk says consistent
/// again after that.
#[test]
fn first_write_waits_for_the_dirty_record_and_idle_goes_clean() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    f.make_clean();
    f.wait_vd_state(true);
    // Long enough that `active` is seen before safe mode, even on a busy host.
    set(&f.run, "0/safe_mode_delay", "1").expect("safe_mode_delay");
    let events = watch(&f.run, &["0/array_state"]);
    expect_event(&events, "0/array_state", "clean");
    f.mon().pause();
    let mut write = qemu_io(&f.run, &f.export, "write -P 0x22 8k 4k", false);
    expect_event(&events, "0/array_state", "write-pending");
    assert!(still_blocked(&mut write, BLOCKED), "the write must wait");
    finish(qemu_io(&f.run, &f.export, "read 0 4k", true), SETTLE);
    f.wait_vd_state(true);
    f.mon().resume();
    expect_event(&events, "0/array_state", "active");
    // The acknowledgement came after the metadata write: the disk says dirty now.
    assert!(f.vd_state().contains("Not Consistent"), "{}", f.vd_state());
    finish(write, SETTLE);
    // Hold the manager so `active-idle` stays put: it is notified, and the
    // metadata is not touched until the engine itself is clean.
    f.mon().pause();
    expect_event(&events, "0/array_state", "active-idle");
    assert!(f.vd_state().contains("Not Consistent"), "{}", f.vd_state());
    f.mon().resume();
    expect_event(&events, "0/array_state", "clean");
    f.wait_vd_state(true);
}

/// §8.10: `clean` is refused with EBUSY while a write is in flight.
#[test]
fn clean_refused_while_a_write_is_in_flight() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    f.make_clean();
    f.mon().pause();
    let write = qemu_io(&f.run, &f.export, "write -P 0x33 0 4k", false);
    wait_for(&f.run, "0/array_state", "write-pending");
    assert_eq!(set(&f.run, "0/array_state", "clean"), Err("EBUSY".into()));
    assert_eq!(get(&f.run, "0/array_state"), "write-pending");
    f.mon().resume();
    finish(write, SETTLE);
}

/// A clean external raid1 whose first member is failed while the manager
/// is paused (nothing records the failure yet); returns that member.
fn fail_with_the_manager_paused(f: &Fixture) -> String {
    f.make_clean();
    let member = first_member(&f.run);
    f.mon().pause();
    set(&f.run, &format!("0/dev-{member}/state"), "faulty").expect("fail member");
    member
}

/// §8.12, §8.13, §8.27: a failed member of an external raid1 is
/// `faulty,blocked`, the array `write-pending`, writes wait, `remove` is
/// refused while it holds its slot (promptly: removal never blocks the
/// acknowledgement); the manager records the failure on disk, unblocks,
/// acknowledges, and removes the member.
#[test]
fn member_failure_is_recorded_before_writes_go_on() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    let member = fail_with_the_manager_paused(&f);
    assert_eq!(
        get(&f.run, &format!("0/dev-{member}/state")),
        "faulty,blocked"
    );
    assert_eq!(get(&f.run, "0/degraded"), "1");
    assert_eq!(get(&f.run, "0/array_state"), "write-pending");
    let mut write = qemu_io(&f.run, &f.export, "write -P 0x44 0 4k", false);
    assert!(
        still_blocked(&mut write, BLOCKED),
        "writes wait for the record"
    );
    let started = std::time::Instant::now();
    assert_eq!(
        set(&f.run, &format!("0/dev-{member}/state"), "remove"),
        Err("EBUSY".into())
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    f.mon().resume();
    finish(write, SETTLE);
    let text = mdadm_examine(&f.disks[1]);
    assert!(text.contains("Failed") || text.contains("failed"), "{text}");
    eventually("the failed member's removal", || {
        let state = support::external::get_opt(&f.run, &format!("0/dev-{member}/state"));
        (state.is_none(), state)
    });
}

/// A FLUSH after a member was failed by hand completes only once the
/// failure is recorded: the failed member is not flushed, so writes
/// acknowledged before it may sit in its cache alone, and until the
/// metadata says it failed a crash would bring it back as current.
#[test]
fn a_flush_waits_until_a_member_failed_by_hand_is_recorded() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    fail_with_the_manager_paused(&f);
    let mut flush = qemu_io(&f.run, &f.export, "flush", false);
    assert!(
        still_blocked(&mut flush, BLOCKED),
        "the flush waits for the record"
    );
    f.mon().resume();
    finish(flush, SETTLE);
    let text = mdadm_examine(&f.disks[1]);
    assert!(text.contains("Failed") || text.contains("failed"), "{text}");
}

/// The name of the first member of subarray 0.
fn first_member(run: &Running) -> String {
    umd::control::client::list(&run.control)
        .expect("list")
        .into_iter()
        .find_map(|a| {
            a.strip_prefix("0/dev-")
                .and_then(|r| r.strip_suffix("/state"))
                .map(str::to_owned)
        })
        .expect("a member")
}

/// §8.17: assembly hand-off. Clean metadata: `read-auto`. The blocked
/// marker `external:-`: stays `readonly`.
#[test]
fn assembly_hand_off_respects_the_blocked_marker() {
    require_tool("qemu-io");
    let dir = TempDir::new("ext-handoff");
    let Some(disks) = real_container(dir.path(), "raid1") else {
        return;
    };
    let run = serve(&dir, &disks, &[]);
    assert_eq!(get(&run, "0/array_state"), "readonly");
    let version = get(&run, "0/metadata_version");
    let blocked = version.replacen("external:/", "external:-", 1);
    set(&run, "0/metadata_version", &blocked).expect("external to external");
    let _mon = Mon::start(&run, "1", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(get(&run, "0/array_state"), "readonly");
    set(&run, "0/metadata_version", &version).expect("unblock");
    wait_for(&run, "0/array_state", "read-auto");
}

/// §8.17 (dirty side), §8.22: a container whose engine was killed while
/// dirty is handed off `active`, resyncs, shows `write-pending` at the end of
/// the resync until the manager acknowledges, and the manager then records
/// it consistent.
#[test]
fn dirty_container_resyncs_and_the_end_waits_for_the_manager() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    f.mon().pause();
    let write = qemu_io(&f.run, &f.export, "write -P 0x55 0 4k", false);
    f.mon().resume();
    finish(write, SETTLE);
    assert!(f.vd_state().contains("Not Consistent"));
    let Fixture {
        dir,
        disks,
        run,
        mon,
        ..
    } = f;
    run.kill9();
    drop(mon);
    let run = serve(&dir, &disks, &[]);
    set(&run, "0/sync_action", "frozen").expect("freeze before the hand-off");
    let mon = Mon::start(&run, "2", &[]);
    // Dirty metadata: handed off read-write (md shows `clean` until the
    // first write, since run starts in sync), never read-auto.
    wait_for(&run, "0/array_state", "clean");
    assert_eq!(get(&run, "0/resync_start"), "0");
    mon.pause();
    let events = watch(&run, &["0/sync_action", "0/array_state"]);
    set(&run, "0/sync_action", "resync").expect("start the resync");
    expect_event(&events, "0/sync_action", "idle");
    wait_for(&run, "0/resync_start", "none");
    assert_eq!(get(&run, "0/array_state"), "write-pending");
    mon.resume();
    wait_for(&run, "0/array_state", "clean");
    eventually("the VD recorded consistent", || {
        let text = mdadm_examine(&disks[0]);
        (!text.contains("Not Consistent"), text)
    });
    assert!(examine(&disks[0]).contains("clean"));
}

/// §8.18: the first write to a `read-auto` array makes it read-write and
/// passes through `write-pending`.
#[test]
fn read_auto_first_write_passes_through_write_pending() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    assert_eq!(get(&f.run, "0/array_state"), "read-auto");
    f.mon().pause();
    let write = qemu_io(&f.run, &f.export, "write -P 0x66 0 4k", false);
    wait_for(&f.run, "0/array_state", "write-pending");
    f.mon().resume();
    finish(write, SETTLE);
    let state = get(&f.run, "0/array_state");
    assert!(
        ["active", "active-idle", "clean"].contains(&state.as_str()),
        "{state}"
    );
}

/// §8.19: refused transitions with md's codes.
#[test]
fn refused_transitions() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    for word in [
        "write-pending",
        "active-idle",
        "broken",
        "suspended",
        "bogus",
    ] {
        assert_eq!(
            set(&f.run, "0/array_state", word),
            Err("EINVAL".into()),
            "{word}"
        );
    }
    f.make_clean();
    f.mon().pause();
    let write = qemu_io(&f.run, &f.export, "write -P 0x77 0 4k", false);
    wait_for(&f.run, "0/array_state", "write-pending");
    assert_eq!(
        set(&f.run, "0/array_state", "readonly"),
        Err("EBUSY".into())
    );
    f.mon().resume();
    finish(write, SETTLE);
    // Open (an NBD client connected): leaving read-write is refused.
    let mut reader = qemu_io(&f.run, &f.export, "sleep 3000", true);
    std::thread::sleep(Duration::from_millis(500));
    for word in ["readonly", "inactive", "clear"] {
        assert_eq!(
            set(&f.run, "0/array_state", word),
            Err("EBUSY".into()),
            "{word}"
        );
    }
    let _ = reader.kill();
    let _ = reader.wait();
    std::thread::sleep(Duration::from_millis(200));
    wait_for(&f.run, "0/array_state", "clean");
    // Held, or the manager hands the read-only array on to read-auto.
    f.mon().pause();
    assert_eq!(set(&f.run, "0/array_state", "readonly"), Ok(()));
    assert_eq!(
        set(&f.run, "0/array_state", "readonly"),
        Err("ENXIO".into())
    );
    f.mon().resume();
}

/// §8.20: stopping an idle external array: the engine marks itself clean and
/// reports `inactive`; the manager records clean and writes `clear`.
#[test]
fn stopping_an_external_array_is_recorded_clean() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    assert_eq!(set(&f.run, "0/safe_mode_delay", "10"), Ok(()));
    f.write(0, 0x12);
    wait_for(&f.run, "0/array_state", "active");
    assert!(f.vd_state().contains("Not Consistent"));
    assert_eq!(set(&f.run, "0/array_state", "inactive"), Ok(()));
    wait_for(&f.run, "0/array_state", "clear");
    f.wait_vd_state(true);
}

/// §8.21: `resync_start` is refused while running unless frozen.
#[test]
fn resync_start_needs_frozen() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    assert_eq!(set(&f.run, "0/resync_start", "0"), Err("EBUSY".into()));
    assert_eq!(set(&f.run, "0/sync_action", "frozen"), Ok(()));
    assert_eq!(set(&f.run, "0/resync_start", "none"), Ok(()));
    assert_eq!(get(&f.run, "0/resync_start"), "none");
}

/// §8.28: an external member's `offset` cannot follow its `size`.
#[test]
fn offset_after_size_is_refused() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    let member = first_member(&f.run);
    assert_eq!(
        set(&f.run, &format!("0/dev-{member}/offset"), "0"),
        Err("EBUSY".into())
    );
}

/// §8.15: a slow manager delays the first write after clean by about its
/// delay, and no write is lost: everything written reads back.
#[test]
fn slow_manager_delays_but_loses_nothing() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    set(&f.run, "0/safe_mode_delay", "0.05").expect("short safe mode");
    for round in 0..3u8 {
        f.make_clean();
        f.mon().pause();
        let started = std::time::Instant::now();
        let write = qemu_io(
            &f.run,
            &f.export,
            &format!("write -P {} {} 4k", 0x80 + round, u64::from(round) * 4096),
            false,
        );
        std::thread::sleep(Duration::from_millis(400));
        f.mon().resume();
        finish(write, SETTLE);
        assert!(started.elapsed() >= Duration::from_millis(400));
    }
    for round in 0..3u8 {
        let cmd = format!("read -P {} {} 4k", 0x80 + round, u64::from(round) * 4096);
        finish(qemu_io(&f.run, &f.export, &cmd, true), SETTLE);
    }
}

/// §8.14: with no manager, a failure blocks writes indefinitely while reads
/// go on and the member's state is notified again every 5 s; a new manager
/// finds `write-pending`, records, acknowledges, and writes resume.
#[test]
fn manager_dead_during_failure_then_a_new_one_recovers() {
    let Some(mut f) = Fixture::new("raid1", &[]) else {
        return;
    };
    f.write(0, 0x10);
    wait_for(&f.run, "0/array_state", "clean");
    f.mon.take().expect("manager").kill9();
    let member = first_member(&f.run);
    let state_attr = format!("0/dev-{member}/state");
    let events = watch(&f.run, &[&state_attr]);
    set(&f.run, &state_attr, "faulty").expect("fail");
    let mut write = qemu_io(&f.run, &f.export, "write -P 0x99 0 4k", false);
    expect_event(&events, &state_attr, "faulty,blocked");
    assert!(still_blocked(&mut write, Duration::from_secs(1)));
    // The wait re-notifies the member's state every 5 s.
    let again = events.recv_timeout(Duration::from_secs(8));
    assert!(
        matches!(&again, Ok((a, v)) if *a == state_attr && v == "faulty,blocked"),
        "no repeated notification: {again:?}"
    );
    finish(qemu_io(&f.run, &f.export, "read 0 4k", true), SETTLE);
    assert!(still_blocked(&mut write, Duration::from_millis(10)));
    let _mon = Mon::start(&f.run, "2", &[]);
    finish(write, SETTLE);
    finish(
        qemu_io(&f.run, &f.export, "read -P 0x99 0 4k", true),
        SETTLE,
    );
}

/// §8.11: a native array needs no manager: the first write proceeds once the
/// engine wrote its own superblocks, and it goes clean by itself after
/// `safe_mode_delay`.
#[test]
fn native_arrays_need_no_manager() {
    require_tool("qemu-io");
    let dir = TempDir::new("ext-native");
    let members = support::sparse_members(dir.path(), 2, 16);
    // In sync from the start: an initial resync would mark the array dirty
    // on its own, and on a loaded machine the first look could catch its
    // `write-pending` instead of the state this test is about.
    support::create(
        &members,
        &["--level", "1", "--raid-devices", "2", "--assume-clean"],
    );
    let run = Running::start(dir.path(), &members);
    assert_eq!(get(&run, "array_state"), "clean");
    set(&run, "safe_mode_delay", "1").expect("safe_mode_delay");
    let events = watch(&run, &["array_state"]);
    expect_event(&events, "array_state", "clean");
    finish(qemu_io(&run, "", "write -P 0x21 0 4k", false), SETTLE);
    expect_event(&events, "array_state", "active");
    expect_event(&events, "array_state", "clean");
    // The event is the engine's transition; the md thread writes the clean
    // superblock right after it.
    let text = eventually("the clean superblock", || {
        let text = mdadm_examine(&members[0]);
        (text.contains("State : clean"), text)
    });
    assert!(text.contains("State : clean"), "{text}");
}

/// §8.29: an external raid0 with a failed member is `broken`: writes fail,
/// reads go on.
#[test]
fn broken_raid0_refuses_writes_and_serves_reads() {
    require_tool("qemu-io");
    let dir = TempDir::new("ext-broken");
    let Some(disks) = support::external::real_container_named(
        dir.path(),
        &[
            "ddf-raid0-1.bin.gz",
            "ddf-raid0-2.bin.gz",
            "ddf-raid0-3.bin.gz",
        ],
    ) else {
        return;
    };
    let run = serve(&dir, &disks, &[]);
    assert_eq!(get(&run, "0/array_state"), "clean");
    let member = first_member(&run);
    let refused = set(&run, &format!("0/dev-{member}/state"), "faulty");
    assert_eq!(
        refused,
        Err("EBUSY".into()),
        "failing a raid0 member breaks it"
    );
    assert_eq!(get(&run, "0/array_state"), "broken");
    let write = qemu_io(&run, "ddf-raid0", "write -P 0x31 0 4k", false);
    let out = write.wait_with_output().expect("qemu-io");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Input/output error") || text.contains("failed"),
        "the write must fail: {text}"
    );
    finish(qemu_io(&run, "ddf-raid0", "read 0 64k", true), SETTLE);
}

/// The manager socket of a fixture's container.
fn manager_socket(run: &Running) -> std::path::PathBuf {
    let version = get(run, "0/metadata_version");
    let container = version
        .trim_start_matches("external:")
        .trim_start_matches(['/', '-'])
        .split('/')
        .next()
        .expect("container name")
        .to_owned();
    run.run_dir.join(format!("{container}.sock"))
}

/// §8.4: a `raid_disks` change on a clean external raid1 is EAGAIN before
/// the acknowledgement and leaves the geometry alone; after it, the retry is
/// accepted.
#[test]
fn raid_disks_change_is_eagain_until_acknowledged() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    f.make_clean();
    set(&f.run, "0/safe_mode_delay", "0").expect("safe_mode_delay");
    f.mon().pause();
    assert_eq!(set(&f.run, "0/raid_disks", "3"), Err("EAGAIN".into()));
    assert_eq!(get(&f.run, "0/raid_disks"), "2");
    assert_eq!(get(&f.run, "0/array_state"), "write-pending");
    f.mon().resume();
    wait_for(&f.run, "0/array_state", "active");
    assert_eq!(set(&f.run, "0/raid_disks", "3"), Ok(()));
    assert_eq!(get(&f.run, "0/raid_disks"), "3");
    assert_eq!(get(&f.run, "0/degraded"), "1");
}

/// §8.4, the client side: `umd grow` does mdadm's dance on an external
/// array (safe_mode_delay 0, EAGAIN, ping the manager, one retry, delay
/// restored).
#[test]
fn grow_retries_once_after_pinging_the_manager() {
    let Some(f) = Fixture::new("raid5", &[]) else {
        return;
    };
    f.make_clean();
    let out = support::umd()
        .env("UMD_RUN_DIR", &f.run.run_dir)
        .args(["grow", "--control"])
        .arg(&f.run.control)
        .args(["--subarray", "0", "--stripe-cache-size", "1024"])
        .output()
        .expect("umd grow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("EAGAIN: waiting for the metadata manager"),
        "{stderr}"
    );
    assert_eq!(get(&f.run, "0/stripe_cache_size"), "1024");
    assert_eq!(get(&f.run, "0/safe_mode_delay"), "0.200");
    let refused = support::umd()
        .env("UMD_RUN_DIR", &f.run.run_dir)
        .args(["grow", "--control"])
        .arg(&f.run.control)
        .args(["--subarray", "0", "--raid-devices", "4"])
        .output()
        .expect("umd grow");
    assert!(!refused.status.success());
    assert_eq!(get(&f.run, "0/raid_disks"), "3");
}

/// §8.30: a ping returns only after a pass that started after it: a
/// `write-pending` shown before the ping is acknowledged when it returns.
#[test]
fn ping_returns_after_a_full_pass() {
    let Some(f) = Fixture::new("raid1", &[]) else {
        return;
    };
    let socket = manager_socket(&f.run);
    set(&f.run, "0/safe_mode_delay", "0.02").expect("short safe mode");
    for round in 0..5u64 {
        f.make_clean();
        f.mon().pause();
        let write = qemu_io(
            &f.run,
            &f.export,
            &format!("write -P 7 {} 4k", round * 4096),
            false,
        );
        wait_for(&f.run, "0/array_state", "write-pending");
        f.mon().resume();
        let ping = umd::mon::socket::client::ping_monitor(&socket, SETTLE);
        let state = get(&f.run, "0/array_state");
        // On failure, the manager's own account of its passes says why.
        let tail = |text: String| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        assert!(
            ping.is_ok() && state != "write-pending",
            "round {round}: ping {ping:?}, array_state {state}\nmanager log:\n{}",
            tail(f.mon().log_text())
        );
        finish(write, SETTLE);
    }
}

/// §8.16: takeover. The new manager owns the socket and pid file, the old
/// one exits, writes going on during the switch all complete, and nothing is
/// left in `write-pending`.
#[test]
fn takeover_keeps_every_write_acknowledged() {
    let Some(mut f) = Fixture::new("raid1", &[]) else {
        return;
    };
    set(&f.run, "0/safe_mode_delay", "0.02").expect("short safe mode");
    let socket = manager_socket(&f.run);
    let pid_file = socket.with_extension("pid");
    let old = f.mon.take().expect("manager");
    let old_pid = old.id();
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid file").trim(),
        old_pid.to_string()
    );
    // Writes spread over the switch, each after the array went clean again.
    let script: Vec<String> = (0..40u64)
        .flat_map(|i| {
            [
                format!("write -P {} {} 4k", i + 1, i * 4096),
                "sleep 60".to_owned(),
            ]
        })
        .collect();
    let writer = support::external::qemu_io_script(&f.run, &f.export, &script, false);
    let new = Mon::start(&f.run, "2", &["--takeover"]);
    let mut old = old;
    let status = old.wait_exit(SETTLE);
    assert!(status.success(), "old manager: {}", old.log_text());
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid file").trim(),
        new.id().to_string()
    );
    finish(writer, SETTLE);
    for i in 0..40u64 {
        let cmd = format!("read -P {} {} 4k", i + 1, i * 4096);
        finish(qemu_io(&f.run, &f.export, &cmd, true), SETTLE);
    }
    umd::mon::socket::client::ping_monitor(&socket, SETTLE).expect("the new manager answers");
    assert_ne!(get(&f.run, "0/array_state"), "write-pending");
    finish(qemu_io(&f.run, &f.export, "write -P 9 0 4k", false), SETTLE);
    finish(qemu_io(&f.run, &f.export, "read -P 9 0 4k", true), SETTLE);
    f.mon = Some(new);
}

/// A DDF container made by `umd create` on `n` sparse disks of `mib` MiB,
/// with one virtual disk per `(level, size KiB, name)`.
fn created_container(
    dir: &TempDir,
    n: usize,
    mib: u64,
    vds: &[(&str, u64, &str)],
) -> Vec<std::path::PathBuf> {
    let disks = support::sparse_members(dir.path(), n, mib);
    for (level, size_kib, name) in vds {
        let raid_devices = if *level == "1" { 2 } else { n };
        let out = support::umd()
            .args(["create", "--metadata", "ddf", "--level", level])
            .args(["--raid-devices", &raid_devices.to_string()])
            .args(["--size", &size_kib.to_string(), "--name", name])
            .args(&disks[..raid_devices])
            .output()
            .expect("umd create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    disks
}

/// §8.25: a disk that fails in one subarray is failed by the manager in the
/// other subarray that uses it.
#[test]
fn a_failed_disk_is_failed_in_every_subarray() {
    require_tool("qemu-io");
    let dir = TempDir::new("ext-propagate");
    let disks = created_container(&dir, 2, 64, &[("1", 8192, "m1"), ("1", 8192, "m2")]);
    let run = serve(&dir, &disks, &[]);
    let _mon = Mon::start(&run, "1", &[]);
    for sub in ["0", "1"] {
        wait_for(&run, &format!("{sub}/sync_action"), "idle");
    }
    let member = first_member(&run);
    set(&run, &format!("0/dev-{member}/state"), "faulty").expect("fail in subarray 0");
    eventually("the disk failed in subarray 1 too", || {
        let other = support::external::get_opt(&run, &format!("1/dev-{member}/state"));
        // Failed there too (and possibly already removed).
        (other.as_deref().is_none_or(|s| s.contains("faulty")), other)
    });
    assert_eq!(get(&run, "1/degraded"), "1");
    finish(qemu_io(&run, "m2", "write -P 3 0 4k", false), SETTLE);
    finish(qemu_io(&run, "m2", "read -P 3 0 4k", true), SETTLE);
}

/// §8.23: a long resync's progress is notified at least every 1/16 of the
/// range, the manager's checkpoints never go back and never pass
/// `sync_completed`, and an interrupted resync resumes from its checkpoint
/// (an `idle` restarts a needed resync at once, as md does; `frozen` holds it
/// so the resume point can be read).
#[test]
fn resync_checkpoints_are_monotonic_and_resume() {
    let dir = TempDir::new("ext-checkpoint");
    let disks = created_container(&dir, 2, 160, &[("1", 120 * 1024, "big")]);
    let run = serve(&dir, &disks, &[]);
    set(&run, "0/sync_action", "frozen").expect("hold the resync");
    let mut mon = Mon::start(&run, "1", &[]);
    wait_for(&run, "0/array_state", "clean");
    let events = watch(&run, &["0/sync_completed"]);
    set(&run, "0/sync_action", "resync").expect("start");
    // Interrupt after the first progress step.
    let mut first = None;
    let deadline = std::time::Instant::now() + SETTLE;
    while first.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (_, value) = events.recv_timeout(left).expect("progress notified");
        first = value
            .split_whitespace()
            .next()
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|d| *d > 0);
    }
    // Interrupt (md's `frozen`: stop and stay stopped, the checkpoint kept).
    set(&run, "0/sync_action", "frozen").expect("interrupt");
    // Past every value delivered before the interrupt.
    expect_event(&events, "0/sync_completed", "none");
    let checkpoint: u64 = get(&run, "0/resync_start")
        .parse()
        .expect("a checkpoint, not none");
    assert!(
        checkpoint >= first.unwrap_or(0),
        "checkpoint {checkpoint} behind progress {first:?}"
    );
    set(&run, "0/sync_action", "resync").expect("restart");
    let restarted = loop {
        let (_, value) = events
            .recv_timeout(SETTLE)
            .expect("progress after the restart");
        if let Some(done) = value
            .split_whitespace()
            .next()
            .and_then(|d| d.parse::<u64>().ok())
        {
            break done;
        }
    };
    assert!(
        restarted >= checkpoint,
        "restarted at {restarted}, before {checkpoint}"
    );
    wait_for(&run, "0/resync_start", "none");
    wait_for(&run, "0/array_state", "clean");
    // The manager's record: checkpoints monotonic, never past sync_completed.
    let log = mon.log_text();
    let mut last = 0u64;
    let mut seen = 0;
    for line in log
        .lines()
        .filter(|l| l.contains("resync checkpoint recorded"))
    {
        let field = |k: &str| -> u64 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{k} in {line}"))
        };
        let (position, completed) = (field("position="), field("sync_completed="));
        assert!(position <= completed, "{line}");
        assert!(
            position >= last || position == 0,
            "checkpoint went back: {line}"
        );
        last = position;
        seen += 1;
    }
    assert!(seen >= 2, "the manager recorded {seen} checkpoints:\n{log}");
    drop(events);
    let _ = mon.try_exit();
}

/// The deadlock regression with a killed manager: growing
/// `stripe_cache_size`, changing `raid_disks` (a reshape) return EAGAIN
/// promptly and never hang; reads go on, writes wait; a new manager takes
/// over and everything completes.
#[test]
fn config_changes_never_hang_without_a_manager() {
    let Some(mut f) = Fixture::new("raid5", &[]) else {
        return;
    };
    f.make_clean();
    set(&f.run, "0/safe_mode_delay", "0").expect("safe_mode_delay");
    f.mon.take().expect("manager").kill9();
    for (attr, value) in [("0/stripe_cache_size", "512"), ("0/raid_disks", "4")] {
        let started = std::time::Instant::now();
        assert_eq!(set(&f.run, attr, value), Err("EAGAIN".into()), "{attr}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{attr} must not wait"
        );
    }
    assert_eq!(get(&f.run, "0/array_state"), "write-pending");
    let mut write = qemu_io(&f.run, &f.export, "write -P 0x42 0 4k", false);
    finish(qemu_io(&f.run, &f.export, "read 64k 4k", true), SETTLE);
    assert!(
        still_blocked(&mut write, BLOCKED),
        "writes wait for the manager"
    );
    let _new = Mon::start(&f.run, "2", &[]);
    finish(write, SETTLE);
    wait_for(&f.run, "0/array_state", "active");
    assert_eq!(set(&f.run, "0/stripe_cache_size", "512"), Ok(()));
    // The reshape is no longer held off; umd cannot reshape raid5 yet.
    assert_eq!(set(&f.run, "0/raid_disks", "4"), Err("EINVAL".into()));
    finish(
        qemu_io(&f.run, &f.export, "read -P 0x42 0 4k", true),
        SETTLE,
    );
}

/// The manager keeps going when one subarray stops: the stopped one is
/// recorded clean and released, the other is still managed.
#[test]
fn manager_keeps_going_when_a_subarray_stops() {
    require_tool("qemu-io");
    let dir = TempDir::new("ext-one-stops");
    let disks = created_container(&dir, 2, 64, &[("1", 8192, "m1"), ("1", 8192, "m2")]);
    let run = serve(&dir, &disks, &[]);
    let mut mon = Mon::start(&run, "1", &[]);
    for sub in ["0", "1"] {
        wait_for(&run, &format!("{sub}/sync_action"), "idle");
        wait_for(&run, &format!("{sub}/array_state"), "clean");
    }
    assert_eq!(set(&run, "0/array_state", "inactive"), Ok(()));
    wait_for(&run, "0/array_state", "clear");
    assert!(
        mon.try_exit().is_none(),
        "the manager must stay for subarray 1"
    );
    set(&run, "1/safe_mode_delay", "1").expect("safe_mode_delay");
    mon.pause();
    let mut write = qemu_io(&run, "m2", "write -P 5 0 4k", false);
    wait_for(&run, "1/array_state", "write-pending");
    assert!(still_blocked(&mut write, BLOCKED));
    mon.resume();
    finish(write, SETTLE);
    finish(qemu_io(&run, "m2", "read -P 5 0 4k", true), SETTLE);
}

/// §8.24: spare activation. A raid1 in a three-disk container loses a
/// member; the manager records the failure, picks the container's free
/// disk, adds it to the engine while recovery is frozen, records it
/// rebuilding, then starts the recovery; at the end the member is in sync,
/// the data reads back from it, and mdadm reads the virtual disk as optimal.
#[test]
fn a_spare_is_activated_and_rebuilt() {
    require_tool("qemu-io");
    let dir = TempDir::new("ext-spare");
    let disks = support::sparse_members(dir.path(), 3, 64);
    let umd_create = |args: &[&str], members: &[std::path::PathBuf]| {
        let out = support::umd()
            .args(["create", "--metadata", "ddf"])
            .args(args)
            .args(members)
            .output()
            .expect("umd create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    umd_create(&["--level", "container", "--raid-devices", "3"], &disks);
    umd_create(
        &[
            "--level",
            "1",
            "--raid-devices",
            "2",
            "--size",
            "8192",
            "--name",
            "m1",
        ],
        &disks[..2],
    );
    let run = serve(&dir, &disks, &[]);
    let _mon = Mon::start(&run, "1", &[]);
    wait_for(&run, "0/sync_action", "idle");
    wait_for(&run, "0/array_state", "clean");
    finish(qemu_io(&run, "m1", "write -P 0x6c 0 1M", false), SETTLE);
    let members: Vec<String> = umd::control::client::list(&run.control)
        .expect("list")
        .into_iter()
        .filter_map(|a| {
            a.strip_prefix("0/dev-")
                .and_then(|r| r.strip_suffix("/slot"))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(members.len(), 2, "{members:?}");
    let failed = &members[0];
    fail_and_rebuild(
        &run,
        failed,
        &file_name(&disks[2]),
        "read -P 0x6c 0 1M",
        &disks[2],
    );
}

/// Fail `failed` in subarray 0 of `run`, wait until `spare` is rebuilt into
/// its slot, read the data back through the export (`read_back`, a
/// qemu-io command), and require a check pass to find the copies agreeing
/// and mdadm to read the virtual disk optimal on `spare_path`.
fn fail_and_rebuild(
    run: &Running,
    failed: &str,
    spare: &str,
    read_back: &str,
    spare_path: &std::path::Path,
) {
    set(run, &format!("0/dev-{failed}/state"), "faulty").expect("fail");
    eventually("the spare rebuilt", || {
        let state = support::external::get_opt(run, &format!("0/dev-{spare}/state"));
        let idle = get(run, "0/sync_action") == "idle";
        (state.as_deref() == Some("in_sync") && idle, state)
    });
    assert_eq!(get(run, "0/degraded"), "0");
    let slot = get(run, &format!("0/dev-{spare}/slot"));
    assert!(slot.parse::<u32>().is_ok(), "spare slot {slot}");
    // The data is there, and the copies agree.
    finish(qemu_io(run, "m1", read_back, true), SETTLE);
    set(run, "0/sync_action", "check").expect("check");
    wait_for(run, "0/sync_action", "idle");
    assert_eq!(get(run, "0/mismatch_cnt"), "0");
    eventually("mdadm reads the VD optimal", || {
        let text = mdadm_examine(spare_path);
        let optimal = text
            .lines()
            .any(|l| l.contains("state[0]") && l.contains("Optimal"));
        (optimal, text)
    });
}

/// A member's name: its file's.
fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned()
}

/// `umd manage --add` to a running container (mdadm `--add` to a DDF
/// container): a file holding md metadata and a file too small for DDF are
/// refused with the reason; a blank disk is written by the manager as a
/// global spare of the container (mdadm reads it so), and when a member
/// fails the manager activates it and the data is rebuilt onto it.
#[test]
fn a_disk_added_to_a_running_container_becomes_its_spare() {
    require_tool("qemu-io");
    let dir = TempDir::new("ext-add");
    let disks = support::sparse_members(dir.path(), 2, 64);
    support::umd_ok(&[
        "create",
        "-e",
        "ddf",
        "-l",
        "1",
        "-n",
        "2",
        "--size",
        "8192",
        "--name",
        "m1",
        &disks[0].display().to_string(),
        &disks[1].display().to_string(),
    ]);
    let run = serve(&dir, &disks, &[]);
    let _mon = Mon::start(&run, "1", &[]);
    // Writable once the manager took it over and its first resync ended.
    wait_for(&run, "0/sync_action", "idle");
    wait_for(&run, "0/array_state", "clean");
    finish(qemu_io(&run, "m1", "write -P 0x3d 0 2M", false), SETTLE);
    let manage = |file: &std::path::Path| {
        support::umd()
            .env("UMD_RUN_DIR", &run.run_dir)
            .arg("manage")
            .arg(&run.control)
            .arg("--add")
            .arg(file)
            .output()
            .expect("umd manage")
    };
    let blank = |name: &str, mib: u64| {
        let p = dir.path().join(name);
        std::fs::File::create(&p)
            .and_then(|f| f.set_len(mib << 20))
            .expect("blank file");
        p
    };
    // Refused: md metadata on it, named; nothing written to it.
    let md_pair = [blank("md0.img", 64), blank("md1.img", 64)];
    let md = md_pair[0].clone();
    support::umd_ok(&[
        "create",
        "-l",
        "1",
        "-n",
        "2",
        "-e",
        "1.2",
        "--assume-clean",
        &md_pair[0].display().to_string(),
        &md_pair[1].display().to_string(),
    ]);
    let before = std::fs::read(&md).expect("read md.img");
    let out = manage(&md);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("md 1.x metadata"),
        "{err}"
    );
    assert!(
        std::fs::read(&md).expect("read") == before,
        "a refused disk is not written"
    );
    // Refused by the manager: too small for DDF's 32 MiB of metadata.
    let small = blank("small.img", 16);
    let out = manage(&small);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("did not take it"),
        "{err}"
    );
    // A blank disk becomes the container's global spare.
    let new = blank("new.img", 64);
    let out = manage(&new);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("as a global spare"),
        "{err}"
    );
    let text = mdadm_examine(&new);
    assert!(text.contains("Global-Spare"), "{text}");
    assert_eq!(
        get(&run, "disks").split_whitespace().count(),
        4,
        "three taken, one refused but listed"
    );
    // A member fails: the new disk takes its slot and is rebuilt.
    // The container's own socket takes only --add.
    let out = support::umd()
        .env("UMD_RUN_DIR", &run.run_dir)
        .arg("manage")
        .arg(&run.control)
        .arg("--fail")
        .arg(&disks[0])
        .output()
        .expect("umd manage");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("only --add"), "{err}");
    fail_and_rebuild(
        &run,
        &file_name(&disks[0]),
        &file_name(&new),
        "read -P 0x3d 0 2M",
        &new,
    );
}

/// §8.26: bad blocks. A write error on a member whose manager keeps its
/// bad-block list (`external_bbl`) records the range: the member shows
/// `blocked`, later writes wait until the range is written to `bad_blocks`,
/// and the data reads back from the other copy. Without `external_bbl` the
/// member shows `faulty,blocked`, and the manager's `-blocked` fails it.
#[test]
fn bad_blocks_block_writes_until_recorded_or_fail_the_member() {
    let faults = "ddf-raid1-2.bin:write:3072+8,ddf-raid1-2.bin:write:6144+8";
    let Some(f) = Fixture::with_env("raid1", &[], &[("UMD_FAULT_INJECT", faults)]) else {
        return;
    };
    f.make_clean();
    let state = "0/dev-ddf-raid1-2.bin/state";
    set(&f.run, state, "external_bbl").expect("external_bbl");
    // The test is the manager for the first part.
    f.mon().pause();
    let mut write = qemu_io(&f.run, &f.export, "write -P 0x26 1536k 4k", false);
    wait_for(&f.run, "0/array_state", "write-pending");
    set(&f.run, "0/array_state", "active").expect("ack the dirty mark");
    wait_for(&f.run, state, "in_sync,blocked,external_bbl");
    assert_eq!(
        get(&f.run, "0/dev-ddf-raid1-2.bin/unacknowledged_bad_blocks"),
        "3072 8"
    );
    // The write that hit the error is held too, as md holds it, until
    // the range is recorded.
    assert!(
        still_blocked(&mut write, BLOCKED),
        "the failed write waits for the record"
    );
    let mut later = qemu_io(&f.run, &f.export, "write -P 0x27 0 4k", false);
    assert!(
        still_blocked(&mut later, BLOCKED),
        "writes wait for the record"
    );
    // mdmon's order: record the range, acknowledge it, then `active`.
    assert_eq!(get(&f.run, "0/array_state"), "write-pending");
    set(&f.run, "0/dev-ddf-raid1-2.bin/bad_blocks", "3072 8").expect("acknowledge");
    set(&f.run, "0/array_state", "active").expect("ack");
    finish(write, SETTLE);
    finish(later, SETTLE);
    assert_eq!(get(&f.run, state), "in_sync,external_bbl");
    finish(
        qemu_io(&f.run, &f.export, "read -P 0x26 1536k 4k", true),
        SETTLE,
    );
    // Second part: no external_bbl, the real manager answers.
    set(&f.run, state, "-external_bbl").expect("-external_bbl");
    f.mon().resume();
    finish(
        qemu_io(&f.run, &f.export, "write -P 0x28 3m 4k", false),
        SETTLE,
    );
    eventually("the member failed by the manager's -blocked", || {
        let st = support::external::get_opt(&f.run, state);
        (
            st.as_deref()
                .is_none_or(|s| s.starts_with("faulty") && !s.contains("blocked")),
            st,
        )
    });
    assert_eq!(get(&f.run, "0/degraded"), "1");
    finish(
        qemu_io(&f.run, &f.export, "read -P 0x28 3m 4k", true),
        SETTLE,
    );
}

/// A write whose member write fails completes only once the manager has
/// recorded the failure (md holds it while the change is pending): were it
/// answered before, a crash could bring the failed member back as current,
/// without the acknowledged data.
#[test]
fn a_write_that_fails_a_member_completes_once_the_failure_is_recorded() {
    let faults = "ddf-raid1-2.bin:write:3072+8";
    let Some(f) = Fixture::with_env("raid1", &[], &[("UMD_FAULT_INJECT", faults)]) else {
        return;
    };
    f.make_clean();
    let state = "0/dev-ddf-raid1-2.bin/state";
    f.mon().pause();
    let mut write = qemu_io(&f.run, &f.export, "write -P 0x31 1536k 4k", false);
    wait_for(&f.run, "0/array_state", "write-pending");
    // The test acknowledges the dirty mark; the write error then leaves an
    // unacknowledged bad range, which a manager without a bad-block list
    // turns into a failure (§8.26).
    set(&f.run, "0/array_state", "active").expect("ack the dirty mark");
    wait_for(&f.run, state, "faulty,in_sync,blocked");
    assert!(
        still_blocked(&mut write, BLOCKED),
        "the write waits until the failure is recorded"
    );
    f.mon().resume();
    finish(write, SETTLE);
    let text = mdadm_examine(&f.disks[0]);
    assert!(text.contains("Failed") || text.contains("failed"), "{text}");
    finish(
        qemu_io(&f.run, &f.export, "read -P 0x31 1536k 4k", true),
        SETTLE,
    );
}

//! Tests of the array core: every row of protocol.md §2.2 through
//! `array_state` stores, the §8 behaviours that live at the array level,
//! and a property test over random write/timer/store sequences.

use proptest::prelude::*;

use super::*;
use crate::errno::Errno;

pub(super) const NATIVE: bool = false;
const EXTERNAL: bool = true;

fn ms(n: u64) -> Time {
    Time(Duration::from_ms(n).0)
}

fn member(name: &str, slot: u32) -> MemberConfig {
    member_config(name, Some(slot))
}

/// The member the engine tests use: 4096 sectors from sector 2048, in sync
/// when it has a slot, a spare otherwise.
pub(super) fn member_config(name: &str, slot: Option<u32>) -> MemberConfig {
    MemberConfig {
        name: name.to_owned(),
        slot,
        data_offset_sectors: 2048,
        size_sectors: 4096,
        in_sync: slot.is_some(),
        faulty: false,
        write_mostly: false,
        replacement: false,
        recovery_offset_sectors: None,
    }
}

fn config(level: i32, disks: u32, external: bool) -> ArrayConfig {
    let names = ["sda", "sdb", "sdc", "sdd"];
    ArrayConfig {
        level,
        raid_disks: disks,
        chunk_sectors: 128,
        layout: if level == 10 { 0x102 } else { 2 },
        component_sectors: 4096,
        array_sectors: 4096 * u64::from(disks.saturating_sub(1)),
        metadata: if external {
            MetadataKind::External {
                name: "/md127/0".to_owned(),
            }
        } else {
            MetadataKind::Native {
                version: "1.2".to_owned(),
            }
        },
        members: (0..disks).map(|i| member(names[i as usize], i)).collect(),
        resync_start: None,
        bitmap: None,
        safe_mode_delay: DEFAULT_SAFEMODE_DELAY,
        stripe_cache_size: DEFAULT_STRIPE_CACHE_SIZE,
    }
}

fn drain(a: &mut Array) -> Vec<ArrayEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

fn notify(attr: &str) -> ArrayEvent {
    ArrayEvent::Notify(attr.to_owned())
}

pub(super) fn running(level: i32, external: bool, ro: Ro) -> Array {
    let mut a = Array::new(config(level, 3, external));
    a.run(ro, Time(0)).expect("test array runs");
    drain(&mut a);
    a
}

/// Host side of a native superblock write: acknowledge every queued write.
fn write_superblocks(a: &mut Array, events: &[ArrayEvent], now: Time) {
    if events.contains(&ArrayEvent::UpdateSuperblock) {
        a.superblock_written(&a.superblock_state(), now);
    }
}

/// Builds an array in one of the §2.1 states; `None` when the state cannot
/// be reached with this metadata (native arrays go clean as soon as they are
/// idle, so they never rest in `active-idle`).
fn start(state: &str, external: bool) -> Option<Array> {
    let a = match state {
        "clear" => {
            let mut c = config(5, 0, external);
            c.component_sectors = 0;
            Array::new(c)
        }
        "inactive" => Array::new(config(5, 3, external)),
        "readonly" => running(5, external, Ro::ReadOnly),
        "read-auto" => running(5, external, Ro::AutoRead),
        "clean" => running(5, external, Ro::ReadWrite),
        "active" => active(external, ms(1000)),
        "write-pending" if external => {
            let mut a = running(5, external, Ro::ReadWrite);
            let err = a.store("stripe_cache_size", "512", Time(0)).unwrap_err();
            assert_eq!(err.errno, Errno::EAGAIN);
            drain(&mut a);
            a
        }
        "write-pending" => {
            let mut a = running(5, external, Ro::ReadWrite);
            a.write_start(Time(0)).expect("write starts");
            drain(&mut a);
            a
        }
        "active-idle" if external => {
            let mut a = active(external, ms(1000));
            let deadline = a.poll_timeout().expect("timer armed");
            a.handle_timeout(deadline);
            drain(&mut a);
            a
        }
        "active-idle" => return None,
        "broken" => {
            let mut a = running(0, external, Ro::ReadWrite);
            let err = a.store("dev-sdb/state", "faulty", Time(0)).unwrap_err();
            assert_eq!(err.errno, Errno::EBUSY);
            drain(&mut a);
            a
        }
        _ => unreachable!("no such start state {state}"),
    };
    assert_eq!(a.array_state(), state, "start state built");
    Some(a)
}

/// An array that took one write and was acknowledged: `active`.
fn active(external: bool, now: Time) -> Array {
    let mut a = running(5, external, Ro::ReadWrite);
    a.write_start(now).expect("write starts");
    let events = drain(&mut a);
    if external {
        a.store("array_state", "active", now).expect("ack");
    } else {
        write_superblocks(&mut a, &events, now);
    }
    assert!(!a.write_blocked());
    a.write_end(now);
    drain(&mut a);
    a
}

/// One expected outcome: the errno (None = success) and the state after.
type Outcome = (Option<Errno>, &'static str);

const WORDS: [&str; 11] = [
    "clear",
    "inactive",
    "suspended",
    "readonly",
    "read-auto",
    "clean",
    "active",
    "write-pending",
    "active-idle",
    "broken",
    "bogus",
];

const OK: Option<Errno> = None;
const EINVAL: Option<Errno> = Some(Errno::EINVAL);
const EBUSY: Option<Errno> = Some(Errno::EBUSY);
const ENXIO: Option<Errno> = Some(Errno::ENXIO);

/// Rows: start state, metadata, then the outcome of the first seven words
/// of [`WORDS`] (`suspended` included). The four always-refused words
/// (`write-pending`, `active-idle`, `broken`, garbage) are EINVAL and leave
/// the state unchanged in every row.
#[rustfmt::skip]
fn table() -> Vec<(&'static str, bool, [Outcome; 7])> {
    let mut rows = Vec::new();
    for ext in [NATIVE, EXTERNAL] {
        rows.extend([
            ("clear", ext, [(OK, "clear"), (OK, "clear"), (EINVAL, "clear"), (EINVAL, "clear"),
                (EINVAL, "clear"), (EINVAL, "clear"), (EINVAL, "clear")]),
            ("inactive", ext, [(OK, "clear"), (OK, "inactive"), (EINVAL, "inactive"),
                (OK, "readonly"), (OK, "read-auto"), (EINVAL, "inactive"), (OK, "clean")]),
            ("readonly", ext, [(OK, "clear"), (OK, "inactive"), (EINVAL, "readonly"),
                (ENXIO, "readonly"), (OK, "read-auto"), (OK, "clean"), (OK, "clean")]),
            ("read-auto", ext, [(OK, "clear"), (OK, "inactive"), (EINVAL, "read-auto"),
                (OK, "readonly"), (OK, "read-auto"), (OK, "clean"), (OK, "clean")]),
            ("clean", ext, [(OK, "clear"), (OK, "inactive"), (EINVAL, "clean"),
                (OK, "readonly"), (OK, "read-auto"), (OK, "clean"), (OK, "clean")]),
            ("active", ext, [(OK, "clear"), (OK, "inactive"), (EINVAL, "active"),
                (OK, "readonly"), (OK, "read-auto"), (OK, "clean"), (OK, "active")]),
            ("broken", ext, [(OK, "clear"), (OK, "inactive"), (EINVAL, "broken"),
                (OK, "readonly"), (OK, "read-auto"), (OK, "broken"), (OK, "broken")]),
        ]);
    }
    rows.extend([
        // External, unacknowledged (EAGAIN growth, no writer): readonly is refused.
        ("write-pending", EXTERNAL, [(OK, "clear"), (OK, "inactive"), (EINVAL, "write-pending"),
            (EBUSY, "write-pending"), (EBUSY, "write-pending"), (OK, "write-pending"),
            (OK, "active-idle")]),
        // Native, a writer waiting for its superblock: nothing may stop it.
        ("write-pending", NATIVE, [(EBUSY, "write-pending"), (EBUSY, "write-pending"),
            (EINVAL, "write-pending"), (EBUSY, "write-pending"), (EBUSY, "write-pending"),
            (EBUSY, "write-pending"), (OK, "active")]),
        ("active-idle", EXTERNAL, [(OK, "clear"), (OK, "inactive"), (EINVAL, "active-idle"),
            (OK, "readonly"), (OK, "read-auto"), (OK, "clean"), (OK, "active-idle")]),
    ]);
    rows
}

#[test]
fn every_row_of_the_array_state_store_table() {
    let mut checked = 0;
    for (state, ext, outcomes) in table() {
        for (i, word) in WORDS.iter().enumerate() {
            let expected = outcomes.get(i).copied().unwrap_or((EINVAL, state));
            let mut a = start(state, ext).expect("reachable start state");
            let before_events = a.events.len();
            let got = a
                .store("array_state", word, ms(5000))
                .err()
                .map(|e| e.errno);
            let what = format!(
                "{state} ({}) <- {word}",
                if ext { "external" } else { "native" }
            );
            assert_eq!(got, expected.0, "{what}: errno");
            assert_eq!(a.array_state(), expected.1, "{what}: state");
            if got.is_none() {
                assert!(
                    a.events.contains(&notify("array_state")),
                    "{what}: notified"
                );
            } else if got == EINVAL {
                assert_eq!(
                    a.events.len(),
                    before_events,
                    "{what}: refused without effect"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 17 * WORDS.len());
    assert!(start("active-idle", NATIVE).is_none());
}

#[test]
fn newline_is_accepted_and_open_device_refuses_leaving_read_write() {
    for word in ["clear", "inactive", "readonly", "read-auto"] {
        let mut a = running(5, EXTERNAL, Ro::ReadWrite);
        a.set_openers(1);
        let err = a
            .store("array_state", &format!("{word}\n"), Time(0))
            .unwrap_err();
        assert_eq!(err.errno, Errno::EBUSY, "{word} while open");
        assert_eq!(a.array_state(), "clean");
        assert!(!a.state.closing, "MD_CLOSING dropped after failure");
    }
    // On a read-only array, stopping while open is refused by do_md_stop,
    // and readonly by md_set_readonly before its ENXIO.
    for word in ["clear", "inactive", "readonly"] {
        let mut a = running(5, NATIVE, Ro::ReadOnly);
        a.set_openers(2);
        let err = a.store("array_state", word, Time(0)).unwrap_err();
        assert_eq!(err.errno, Errno::EBUSY, "{word} on open readonly");
    }
}

#[test]
fn behaviour_7_first_write_to_clean_external_array() {
    let mut a = running(5, EXTERNAL, Ro::ReadWrite);
    a.write_start(ms(10)).expect("write accepted");
    assert!(a.write_blocked(), "the write waits for the manager");
    assert_eq!(a.array_state(), "write-pending");
    assert_eq!(
        drain(&mut a),
        vec![notify("array_state")],
        "no superblock for external"
    );
    a.store("array_state", "active", ms(20)).expect("ack");
    assert!(!a.write_blocked());
    assert_eq!(a.array_state(), "active");
    assert_eq!(drain(&mut a), vec![notify("array_state")]);
    a.write_end(ms(30));
    assert_eq!(a.writes_pending(), 0);
}

#[test]
fn behaviour_9_idle_to_clean_external_with_timer_rounding() {
    let mut a = active(EXTERNAL, ms(1000));
    // roundup(1000, 200) + 200.
    assert_eq!(a.poll_timeout(), Some(ms(1200)));
    a.write_start(ms(1050)).expect("write");
    a.write_end(ms(1050));
    // roundup(1050, 200) + 200: the timer moves at most once per period.
    assert_eq!(a.poll_timeout(), Some(ms(1400)));
    drain(&mut a);
    a.handle_timeout(ms(1399));
    assert_eq!(a.array_state(), "active");
    assert!(drain(&mut a).is_empty(), "nothing before the deadline");
    a.handle_timeout(ms(1400));
    assert_eq!(a.array_state(), "active-idle");
    assert_eq!(drain(&mut a), vec![notify("array_state")]);
    assert_eq!(a.poll_timeout(), None);
    a.store("array_state", "clean", ms(1401))
        .expect("manager marks clean");
    assert_eq!(a.array_state(), "clean");
    let events = drain(&mut a);
    assert_eq!(events, vec![notify("array_state")]);
    assert!(!events.contains(&ArrayEvent::UpdateSuperblock));
}

#[test]
fn behaviour_10_clean_refused_with_writes_in_flight() {
    let mut a = running(5, EXTERNAL, Ro::ReadWrite);
    a.write_start(Time(0)).expect("write");
    a.store("array_state", "active", Time(0)).expect("ack");
    drain(&mut a);
    let err = a.store("array_state", "clean", Time(1)).unwrap_err();
    assert_eq!(err.errno, Errno::EBUSY);
    assert_eq!(a.array_state(), "active");
    assert!(!a.in_sync());
    assert!(drain(&mut a).is_empty(), "refusal changes nothing");
    a.write_end(Time(2));
    a.store("array_state", "clean", Time(3))
        .expect("clean once drained");
    assert_eq!(a.array_state(), "clean");
}

#[test]
fn behaviour_11_native_writes_its_own_superblock_and_goes_clean() {
    let mut a = running(5, NATIVE, Ro::ReadWrite);
    a.write_start(ms(0)).expect("write");
    assert_eq!(a.array_state(), "write-pending");
    assert_eq!(
        drain(&mut a),
        vec![notify("array_state"), ArrayEvent::UpdateSuperblock]
    );
    assert!(
        !a.superblock_state().clean,
        "dirty recorded before the write proceeds"
    );
    a.superblock_written(&a.superblock_state(), ms(1));
    assert!(!a.write_blocked());
    assert_eq!(a.array_state(), "active");
    assert_eq!(drain(&mut a), vec![notify("array_state")]);
    a.write_end(ms(2));
    assert_eq!(a.poll_timeout(), Some(ms(400)));
    a.handle_timeout(ms(400));
    assert_eq!(a.array_state(), "clean", "no manager needed");
    assert_eq!(
        drain(&mut a),
        vec![notify("array_state"), ArrayEvent::UpdateSuperblock]
    );
    assert!(a.superblock_state().clean);
    a.superblock_written(&a.superblock_state(), ms(401));
    assert_eq!(a.array_state(), "clean");
}

#[test]
fn behaviour_18_read_auto_first_write() {
    for ext in [NATIVE, EXTERNAL] {
        let mut a = running(5, ext, Ro::AutoRead);
        a.write_start(Time(0)).expect("read-auto accepts writes");
        assert_eq!(a.ro(), Some(Ro::ReadWrite));
        assert_eq!(a.array_state(), "write-pending");
        let events = drain(&mut a);
        assert!(events.contains(&notify("array_state")));
        assert_eq!(events.contains(&ArrayEvent::UpdateSuperblock), !ext);
    }
    let mut ro = running(5, NATIVE, Ro::ReadOnly);
    assert_eq!(ro.write_start(Time(0)).unwrap_err().errno, Errno::EROFS);
    let mut stopped = Array::new(config(5, 3, NATIVE));
    assert_eq!(stopped.write_start(Time(0)).unwrap_err().errno, Errno::EIO);
}

#[test]
fn behaviour_19_refused_words_and_clean_on_inactive() {
    let mut a = Array::new(config(5, 3, EXTERNAL));
    for word in [
        "write-pending",
        "active-idle",
        "broken",
        "suspended",
        "garbage",
        "clean",
    ] {
        assert_eq!(
            a.store("array_state", word, Time(0)).unwrap_err().errno,
            Errno::EINVAL
        );
    }
    assert_eq!(a.array_state(), "inactive");
}

#[test]
fn behaviour_21_resync_start_guard() {
    let mut a = running(5, EXTERNAL, Ro::ReadWrite);
    assert_eq!(
        a.store("resync_start", "0", Time(0)).unwrap_err().errno,
        Errno::EBUSY
    );
    a.store("sync_action", "frozen", Time(0)).expect("freeze");
    assert_eq!(a.show("sync_action").as_deref(), Ok("frozen"));
    a.store("resync_start", "100\n", Time(0))
        .expect("frozen allows it");
    assert_eq!(a.show("resync_start").as_deref(), Ok("100"));
    a.store("resync_start", "none", Time(0)).expect("none");
    assert_eq!(a.show("resync_start").as_deref(), Ok("none"));
}

#[test]
fn behaviour_29_broken_raid0() {
    let mut a = running(0, NATIVE, Ro::ReadWrite);
    let err = a.store("dev-sdc/state", "faulty", Time(0)).unwrap_err();
    assert_eq!(err.errno, Errno::EBUSY);
    assert_eq!(a.array_state(), "broken");
    assert!(a.is_broken());
    assert_eq!(a.write_start(Time(0)).unwrap_err().errno, Errno::EIO);
    assert_eq!(a.writes_pending(), 0);
}

#[test]
fn behaviours_2_and_3_stripe_cache_eagain_then_retry_after_ack() {
    let mut a = running(5, EXTERNAL, Ro::ReadWrite);
    let err = a.store("stripe_cache_size", "512", Time(0)).unwrap_err();
    assert_eq!(err.errno, Errno::EAGAIN);
    assert_eq!(a.array_state(), "write-pending");
    assert_eq!(
        a.stripe_cache_size(),
        DEFAULT_STRIPE_CACHE_SIZE,
        "the cache did not grow"
    );
    assert_eq!(drain(&mut a), vec![notify("array_state")]);
    // Shrinking succeeds at any time, even while write-pending.
    a.store("stripe_cache_size", "128", Time(1))
        .expect("shrink");
    assert_eq!(drain(&mut a), vec![ArrayEvent::StripeCacheResize(128)]);
    a.store("array_state", "active", Time(2))
        .expect("manager acks");
    drain(&mut a);
    a.store("stripe_cache_size", "512", Time(3))
        .expect("retry succeeds");
    assert_eq!(a.stripe_cache_size(), 512);
    assert_eq!(drain(&mut a), vec![ArrayEvent::StripeCacheResize(512)]);
    for bad in ["16", "32769", "x"] {
        assert_eq!(
            a.store("stripe_cache_size", bad, Time(4))
                .unwrap_err()
                .errno,
            Errno::EINVAL
        );
    }
}

#[test]
fn native_stripe_cache_growth_writes_superblock_and_succeeds() {
    let mut a = running(6, NATIVE, Ro::ReadWrite);
    a.store("stripe_cache_size", "1024", Time(0))
        .expect("native never EAGAIN");
    let events = drain(&mut a);
    assert!(events.contains(&ArrayEvent::UpdateSuperblock));
    assert!(events.contains(&ArrayEvent::StripeCacheResize(1024)));
    a.superblock_written(&a.superblock_state(), Time(1));
    assert_eq!(a.array_state(), "clean");
    let r1 = running(1, NATIVE, Ro::ReadWrite);
    assert_eq!(
        r1.show("stripe_cache_size").unwrap_err().errno,
        Errno::ENOENT
    );
}

#[test]
fn behaviour_12_member_failure_external_raid1() {
    let mut a = running(1, EXTERNAL, Ro::ReadWrite);
    a.store("dev-sdb/state", "faulty", Time(0))
        .expect("fail one mirror");
    assert_eq!(a.show("dev-sdb/state").as_deref(), Ok("faulty,blocked"));
    assert_eq!(a.degraded(), 1);
    assert_eq!(a.array_state(), "write-pending");
    let events = drain(&mut a);
    for e in [
        ArrayEvent::MemberFailed {
            name: "sdb".to_owned(),
        },
        notify("dev-sdb/state"),
        notify("degraded"),
        notify("array_state"),
    ] {
        assert!(events.contains(&e), "{e:?} in {events:?}");
    }
    assert_eq!(
        a.store("dev-sdb/state", "remove", Time(1))
            .unwrap_err()
            .errno,
        Errno::EBUSY
    );
    a.store("dev-sdb/state", "-blocked", Time(2))
        .expect("manager recorded it");
    a.store("array_state", "active", Time(2)).expect("ack");
    assert_eq!(a.show("dev-sdb/slot").as_deref(), Ok("none"));
    a.store("dev-sdb/state", "remove", Time(3))
        .expect("remove once out of slot");
    assert!(a.attr_names().iter().all(|n| !n.starts_with("dev-sdb/")));
    // The last two mirrors: failing the last in-sync one breaks instead.
    a.store("dev-sdc/state", "faulty", Time(4))
        .expect("second of three");
    a.store("array_state", "active", Time(4)).expect("ack");
    assert_eq!(
        a.store("dev-sda/state", "faulty", Time(5))
            .unwrap_err()
            .errno,
        Errno::EBUSY
    );
    assert_eq!(a.show("dev-sda/state").as_deref(), Ok("in_sync"));
    assert_eq!(a.array_state(), "broken");
}

#[test]
fn resync_runs_checkpoints_and_ends_in_write_pending_for_external() {
    let mut c = config(5, 3, EXTERNAL);
    c.resync_start = Some(0);
    let mut a = Array::new(c);
    a.run(Ro::ReadWrite, Time(0)).expect("runs");
    assert_eq!(a.array_state(), "clean");
    let events = drain(&mut a);
    assert!(events.contains(&ArrayEvent::StartSync(SyncAction::Resync)));
    assert_eq!(a.sync_request(), Some(SyncAction::Resync));
    a.sync_started(SyncAction::Resync, 1600, Time(0));
    assert_eq!(a.show("sync_action").as_deref(), Ok("resync"));
    drain(&mut a);
    a.sync_progress(50, Time(1));
    assert!(drain(&mut a).is_empty(), "less than 1/16: no refresh");
    assert_eq!(a.show("sync_completed").as_deref(), Ok("0 / 1600"));
    a.sync_progress(100, Time(2));
    assert_eq!(drain(&mut a), vec![notify("sync_completed")]);
    assert_eq!(a.show("resync_start").as_deref(), Ok("100"));
    assert_eq!(a.sync_position(), 100);
    a.sync_finished(0, true, Time(3));
    assert_eq!(a.show("resync_start").as_deref(), Ok("none"));
    assert_eq!(a.show("sync_action").as_deref(), Ok("idle"));
    assert_eq!(a.show("sync_completed").as_deref(), Ok("none"));
    assert_eq!(a.array_state(), "write-pending", "until the manager acks");
    assert_eq!(a.sync_position(), MAX_SECTOR);
    a.store("array_state", "active", Time(4)).expect("ack");
    assert_eq!(a.array_state(), "clean");
    assert_eq!(a.sync_request(), None);
}

#[test]
fn check_counts_mismatches_and_non_redundant_levels_refuse_actions() {
    let mut a = running(1, NATIVE, Ro::ReadWrite);
    a.store("sync_action", "check", Time(0)).expect("check");
    assert_eq!(a.show("sync_action").as_deref(), Ok("check"));
    assert!(drain(&mut a).contains(&ArrayEvent::StartSync(SyncAction::Check)));
    a.sync_started(SyncAction::Check, 64, Time(0));
    assert_eq!(
        a.store("sync_action", "repair", Time(0)).unwrap_err().errno,
        Errno::EBUSY
    );
    a.sync_finished(8, true, Time(1));
    assert_eq!(a.show("mismatch_cnt").as_deref(), Ok("8"));
    assert_eq!(
        a.store("sync_action", "bogus", Time(0)).unwrap_err().errno,
        Errno::EINVAL
    );
    let mut r0 = running(0, NATIVE, Ro::ReadWrite);
    assert_eq!(
        r0.store("sync_action", "check", Time(0)).unwrap_err().errno,
        Errno::EINVAL
    );
}

#[test]
fn shutdown_marks_native_clean_once_writes_drain() {
    let mut a = active(NATIVE, ms(0));
    a.write_start(ms(1)).expect("write");
    let events = drain(&mut a);
    write_superblocks(&mut a, &events, ms(1));
    a.shutdown(ms(2));
    assert_eq!(
        a.array_state(),
        "active-idle",
        "md shows safemode 2 as idle while a write drains"
    );
    a.write_end(ms(3));
    assert_eq!(a.array_state(), "clean");
    assert!(drain(&mut a).contains(&ArrayEvent::UpdateSuperblock));
    assert!(a.superblock_state().clean);
    assert_eq!(a.poll_timeout(), None, "immediate safe mode needs no timer");
}

#[test]
fn attribute_formats() {
    let mut a = running(5, NATIVE, Ro::ReadWrite);
    let cases = [
        ("level", "raid5"),
        ("raid_disks", "3"),
        ("chunk_size", "65536"),
        ("layout", "2"),
        ("component_size", "2048"),
        ("metadata_version", "1.2"),
        ("resync_start", "none"),
        ("sync_completed", "none"),
        ("degraded", "0"),
        ("safe_mode_delay", "0.200"),
        ("stripe_cache_size", "256"),
        ("reshape_position", "none"),
        ("array_size", "default"),
        ("dev-sda/slot", "0"),
        ("dev-sda/offset", "2048"),
        ("dev-sda/size", "2048"),
        ("dev-sda/state", "in_sync"),
    ];
    for (attr, value) in cases {
        assert_eq!(a.show(attr).as_deref(), Ok(value), "{attr}");
    }
    a.store("safe_mode_delay", "0.5\n", Time(0))
        .expect("decimal seconds");
    assert_eq!(a.show("safe_mode_delay").as_deref(), Ok("0.500"));
    assert_eq!(
        a.store("safe_mode_delay", "1.2345", Time(0))
            .unwrap_err()
            .errno,
        Errno::EINVAL
    );
    assert_eq!(a.show("nonexistent").unwrap_err().errno, Errno::ENOENT);
    assert_eq!(
        a.store("degraded", "1", Time(0)).unwrap_err().errno,
        Errno::EIO
    );
    assert_eq!(
        a.store("level", "raid6", Time(0)).unwrap_err().errno,
        Errno::EINVAL
    );
    assert!(a.attr_names().contains(&"dev-sdc/errors".to_owned()));
    a.store("dev-sda/state", "writemostly", Time(0))
        .expect("flag");
    assert_eq!(
        a.show("dev-sda/state").as_deref(),
        Ok("in_sync,write_mostly")
    );
}

#[derive(Debug, Clone)]
enum Op {
    WriteStart,
    WriteEnd,
    Advance(u64),
    Store(usize),
    Grow,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::WriteStart),
        3 => Just(Op::WriteEnd),
        2 => (0u64..500).prop_map(Op::Advance),
        2 => (0usize..WORDS.len()).prop_map(Op::Store),
        1 => Just(Op::Grow),
    ]
}

proptest! {
    #[test]
    fn random_sequences_stay_consistent(external: bool, ops in proptest::collection::vec(op(), 1..80)) {
        let mut a = running(5, external, Ro::ReadWrite);
        let mut now = ms(0);
        let mut in_flight = 0u32;
        for op in ops {
            match op {
                Op::WriteStart => {
                    if a.write_start(now).is_ok() {
                        in_flight += 1;
                    }
                }
                Op::WriteEnd if in_flight > 0 && !a.write_blocked() => {
                    a.write_end(now);
                    in_flight -= 1;
                }
                Op::WriteEnd => {}
                Op::Advance(d) => {
                    now = now + Duration::from_ms(d);
                    if a.poll_timeout().is_some_and(|t| t <= now) {
                        a.handle_timeout(now);
                    }
                }
                Op::Store(w) => {
                    let _ = a.store("array_state", WORDS[w], now);
                    if a.ro().is_none() {
                        let _ = a.store("array_state", "active", now);
                    }
                }
                Op::Grow => {
                    let _ = a.store("stripe_cache_size", "300", now);
                }
            }
            let events = drain(&mut a);
            write_superblocks(&mut a, &events, now);
            prop_assert_eq!(a.writes_pending(), in_flight);
            prop_assert!(!(a.array_state() == "clean" && a.writes_pending() > 0));
            prop_assert!(ArrayStateWord::parse(a.array_state()).is_some());
            if a.ro().is_none() {
                prop_assert_eq!(in_flight, 0, "a stop never drops a write");
            }
        }
        // Drain: acknowledge and finish every write.
        while in_flight > 0 {
            if a.write_blocked() {
                if external {
                    a.store("array_state", "active", now).expect("ack always succeeds");
                } else {
                    a.superblock_written(&a.superblock_state(), now);
                }
            }
            a.write_end(now);
            in_flight -= 1;
        }
        prop_assert_eq!(a.writes_pending(), 0);
        if let Some(t) = a.poll_timeout() {
            a.handle_timeout(t);
        }
        drain(&mut a);
        if external && a.array_state() == "active-idle" {
            a.store("array_state", "clean", now).expect("idle array can go clean");
        }
        prop_assert!(matches!(a.array_state(), "clean" | "readonly" | "read-auto" | "clear"
            | "inactive" | "write-pending"), "ends idle: {}", a.array_state());
    }
}

/// The host writes superblocks without holding the engine: a write that
/// takes the array dirty while a clean superblock is being written must
/// still wait for a dirty one (else it reaches the members while they say
/// clean, and a crash leaves it unresynced).
#[test]
fn a_write_arriving_during_a_clean_superblock_write_waits_for_a_dirty_one() {
    let mut a = running(5, NATIVE, Ro::ReadWrite);
    a.write_start(ms(0)).expect("write");
    a.superblock_written(&a.superblock_state(), ms(1));
    a.write_end(ms(2));
    a.handle_timeout(ms(400));
    drain(&mut a);
    let clean = a.superblock_state();
    assert!(clean.clean && clean.in_sync);
    // The md thread writes `clean`; meanwhile a write arrives.
    a.write_start(ms(401)).expect("write");
    assert!(a.write_blocked());
    drain(&mut a);
    a.superblock_written(&clean, ms(402));
    assert!(a.write_blocked(), "the clean superblock does not let it go");
    assert!(
        drain(&mut a).contains(&ArrayEvent::UpdateSuperblock),
        "another superblock write is asked for"
    );
    let dirty = a.superblock_state();
    assert!(!dirty.in_sync);
    a.superblock_written(&dirty, ms(403));
    assert!(!a.write_blocked());
}

/// A member that fails while a superblock is being written is not recorded
/// by it: it stays blocked (writes and FLUSH wait) until a superblock that
/// names it is written.
#[test]
fn a_failure_during_a_superblock_write_waits_for_the_next_one() {
    let mut a = running(1, NATIVE, Ro::ReadWrite);
    a.write_start(ms(0)).expect("write");
    drain(&mut a);
    let before = a.superblock_state();
    a.store("dev-sdb/state", "faulty", ms(1))
        .expect("fail one mirror");
    drain(&mut a);
    a.superblock_written(&before, ms(2));
    assert_eq!(a.show("dev-sdb/state").as_deref(), Ok("faulty,blocked"));
    assert!(a.write_blocked());
    assert!(drain(&mut a).contains(&ArrayEvent::UpdateSuperblock));
    a.superblock_written(&a.superblock_state(), ms(3));
    assert_eq!(a.show("dev-sdb/state").as_deref(), Ok("faulty"));
    assert!(!a.write_blocked());
}

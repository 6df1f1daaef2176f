//! Model check of the engine's lock protocol with external metadata
//! (protocol.md §4): a writer, a configuration change and the metadata
//! manager's acknowledgement, run under thousands of schedules that shuttle
//! explores (random and PCT), with shuttle's deadlock detector watching.
//!
//! The model uses the real engine core (`umd_engine::array::Array`) behind
//! the same two locks and condition variable as the host, taken in the same
//! order as `host/config.rs` and `host/io_path.rs` take them:
//!
//! * writer (`io_path::write_start`): `core`; `write_start`; while
//!   `write_blocked`, wait on `changed` (which releases `core`); `write_end`;
//! * configuration change (`config.rs`, `AllowWrite::Eagain`): `config_lock`,
//!   then `core` for one `store`; EAGAIN is returned to the caller, who
//!   retries once after the acknowledgement;
//! * manager (`umd mon`): wait until `array_state` is `write-pending`, then
//!   store `active` taking only `core` (acknowledgements never take
//!   `config_lock`), and wake everyone.
//!
//! The pre-patch discipline (every store takes `config_lock`, and the change
//! writes to the array while holding it, as memory reclaim did) must be
//! found to deadlock: that is the founding bug, and the model has to be able
//! to see it for its "no deadlock" verdict to mean anything.

use shuttle::sync::{Arc, Condvar, Mutex};
use shuttle::thread;
use umd_engine::array::{Array, ArrayConfig, MemberConfig, MetadataKind, Ro};
use umd_engine::time::{Duration, Time};
use umd_engine::Errno;

/// Schedules explored per check.
const ITERATIONS: usize = 2000;
/// PCT depth: enough preemption points for a three-thread cycle.
const PCT_DEPTH: usize = 3;

struct Model {
    /// md's `reconfig_mutex` (host lock order 0).
    config_lock: Mutex<()>,
    /// The engine core (host lock order 3).
    core: Mutex<Array>,
    /// The host's `core_changed`.
    changed: Condvar,
    /// Pre-patch discipline.
    legacy: bool,
}

fn external_clean_raid5() -> Array {
    let member = |name: &str, slot| MemberConfig {
        name: name.to_owned(),
        slot: Some(slot),
        data_offset_sectors: 0,
        size_sectors: 4096,
        in_sync: true,
        faulty: false,
        write_mostly: false,
        replacement: false,
        recovery_offset_sectors: None,
    };
    let mut a = Array::new(ArrayConfig {
        level: 5,
        raid_disks: 3,
        chunk_sectors: 128,
        layout: 2,
        component_sectors: 4096,
        array_sectors: 8192,
        metadata: MetadataKind::External {
            name: "/ddf-0/0".to_owned(),
        },
        members: vec![member("d0", 0), member("d1", 1), member("d2", 2)],
        resync_start: None,
        bitmap: None,
        // mdadm sets 0 around such changes so the array cannot drift back
        // to clean between attempts (protocol.md §4.3).
        safe_mode_delay: Duration(0),
        stripe_cache_size: 256,
    });
    a.run(Ro::ReadWrite, Time(0)).expect("a valid array runs");
    while a.poll_event().is_some() {}
    assert_eq!(a.array_state(), "clean");
    a
}

impl Model {
    fn new(legacy: bool) -> Arc<Self> {
        Arc::new(Self {
            config_lock: Mutex::new(()),
            core: Mutex::new(external_clean_raid5()),
            changed: Condvar::new(),
            legacy,
        })
    }

    /// `io_path::write_start` .. `write_end`.
    fn write(&self) {
        let mut a = self.core.lock().expect("no panics in the model");
        a.write_start(Time(0)).expect("the array accepts writes");
        while a.poll_event().is_some() {}
        self.changed.notify_all();
        while a.write_blocked() {
            a = self.changed.wait(a).expect("no panics in the model");
        }
        a.write_end(Time(0));
        while a.poll_event().is_some() {}
    }

    /// One configuration store (`config.rs`): grow the stripe cache.
    fn grow_stripe_cache(&self) -> Result<(), Errno> {
        let _config = self.config_lock.lock().expect("no panics in the model");
        let result = {
            let mut a = self.core.lock().expect("no panics in the model");
            let r = a.store("stripe_cache_size", "512", Time(0));
            while a.poll_event().is_some() {}
            r
        };
        self.changed.notify_all();
        match result {
            Err(e) if e.errno == Errno::EAGAIN && self.legacy => {
                // Pre-patch: the change goes on and allocates; reclaim writes
                // to this very array while the lock is held.
                self.write();
                Ok(())
            }
            Err(e) => Err(e.errno),
            Ok(()) => Ok(()),
        }
    }

    /// The manager: acknowledge the one dirty transition.
    fn acknowledge(&self) {
        let _config = self
            .legacy
            .then(|| self.config_lock.lock().expect("no panics in the model"));
        let mut a = self.core.lock().expect("no panics in the model");
        while a.array_state() != "write-pending" {
            a = self.changed.wait(a).expect("no panics in the model");
        }
        a.store("array_state", "active", Time(0))
            .expect("acknowledging never fails");
        while a.poll_event().is_some() {}
        self.changed.notify_all();
    }
}

/// One run: the three actors in parallel, then the caller's retry.
fn scenario(legacy: bool) {
    let model = Model::new(legacy);
    let writer = {
        let m = model.clone();
        thread::spawn(move || m.write())
    };
    let config = {
        let m = model.clone();
        thread::spawn(move || m.grow_stripe_cache())
    };
    let manager = {
        let m = model.clone();
        thread::spawn(move || m.acknowledge())
    };
    writer.join().expect("writer finished");
    manager.join().expect("manager finished");
    let first = config.join().expect("config change finished");
    // EAGAIN only while the transition was unacknowledged; the retry after
    // the acknowledgement succeeds (protocol.md §8.3).
    if let Err(errno) = first {
        assert_eq!(errno, Errno::EAGAIN, "the only refusal is EAGAIN");
        assert_eq!(model.grow_stripe_cache(), Ok(()));
    }
    let a = model.core.lock().expect("no panics in the model");
    assert_eq!(a.stripe_cache_size(), 512);
    assert!(!a.write_blocked(), "nothing left waiting");
    assert_eq!(a.writes_pending(), 0);
}

#[test]
fn eagain_discipline_never_deadlocks_random() {
    shuttle::check_random(|| scenario(false), ITERATIONS);
}

#[test]
fn eagain_discipline_never_deadlocks_pct() {
    shuttle::check_pct(|| scenario(false), ITERATIONS, PCT_DEPTH);
}

#[test]
fn pre_patch_discipline_is_found_to_deadlock() {
    let found = std::panic::catch_unwind(|| {
        shuttle::check_random(|| scenario(true), ITERATIONS);
    });
    let message = found
        .err()
        .and_then(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        })
        .expect("the model must find the founding deadlock");
    assert!(
        message.to_lowercase().contains("deadlock"),
        "failed for another reason: {message}"
    );
}

//! The founding patch's deadlock, on a real array host (protocol.md §8.1,
//! §8.2, §8.6): an external raid5 on temporary member files, a writer, a
//! configuration change (growing `stripe_cache_size`) and a stand-in for the
//! metadata manager, each on its own thread, through the host's public
//! `write` and `set`.
//!
//! * Pre-patch discipline (a test-only mode): the change holds the
//!   configuration lock and writes to the array; the manager's `active`
//!   needs the same lock. Neither progresses: the harness sees both stuck
//!   past a timeout, then stops the host, which fails the waiting write and
//!   unwinds the cycle.
//! * The patch (EAGAIN): the change fails at once, the manager acknowledges,
//!   the retry succeeds, the write completes.
//! * Today's md (wait): the change waits for the acknowledgement and the
//!   acknowledgement gets through meanwhile.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};
use umd_engine::array::{Array, ArrayConfig, MemberConfig, MetadataKind, Ro};
use umd_engine::read::MemberMap;
use umd_engine::time::Duration as EngineDuration;
use umd_engine::Errno;
use umd_io::{AllowWrite, ArrayHost, HostParts, MemberFile};
use umd_layout::geometry::{Geometry, GeometrySpec};

const MEMBER_BYTES: u64 = 8 << 20;
const COMPONENT_SECTORS: u64 = MEMBER_BYTES / 512;
/// How long both sides must be stuck to call it a deadlock.
const STUCK: Duration = Duration::from_secs(2);
/// How long a working protocol may take.
const PROMPT: Duration = Duration::from_secs(10);

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host(tag: &str, allow_write: AllowWrite) -> (Scratch, Arc<ArrayHost>) {
    let dir = std::env::temp_dir().join(format!("umd-founding-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let names: Vec<String> = (0..3).map(|i| format!("d{i}")).collect();
    let mut files = Vec::new();
    for n in &names {
        let path = dir.join(n);
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(MEMBER_BYTES))
            .expect("member file");
        files.push(Some(
            MemberFile::open_read_write(&path).expect("open member"),
        ));
    }
    let spec = GeometrySpec {
        level: 5,
        layout: 2,
        chunk_sectors: 128,
        raid_disks: 3,
        member_sectors: vec![COMPONENT_SECTORS; 3],
        component_sectors: COMPONENT_SECTORS,
        raid0_layout: None,
    };
    let geometry = Geometry::new(&spec).expect("raid5 geometry");
    let array_sectors = geometry.array_sectors();
    let members = names
        .iter()
        .enumerate()
        .map(|(i, n)| MemberConfig {
            name: n.clone(),
            slot: Some(i as u32),
            data_offset_sectors: 0,
            size_sectors: COMPONENT_SECTORS,
            in_sync: true,
            faulty: false,
            write_mostly: false,
            replacement: false,
            recovery_offset_sectors: None,
        })
        .collect();
    let array = Array::new(ArrayConfig {
        level: 5,
        raid_disks: 3,
        chunk_sectors: 128,
        layout: 2,
        component_sectors: COMPONENT_SECTORS,
        array_sectors,
        metadata: MetadataKind::External {
            name: "/ddf-test/0".to_owned(),
        },
        members,
        resync_start: None,
        bitmap: None,
        safe_mode_delay: EngineDuration(0),
        stripe_cache_size: 256,
    });
    let parts = HostParts {
        files,
        member_names: names,
        role_members: vec![Some(0), Some(1), Some(2)],
        geometry,
        member_map: MemberMap::new(vec![Some((0, None)); 3]),
        array_sectors,
        array,
        native: None,
        start: Ro::ReadWrite,
        allow_write,
    };
    let host = ArrayHost::start(parts).expect("host starts");
    assert_eq!(host.get("array_state").ok().as_deref(), Some("clean"));
    (Scratch(dir), host)
}

/// Run `f` on a thread; its result arrives on the receiver.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// The manager stand-in: wait for `write-pending`, then acknowledge
/// (EINTR if it never appears).
fn manager(host: Arc<ArrayHost>) -> Receiver<Result<(), Errno>> {
    spawn(move || {
        let deadline = Instant::now() + PROMPT;
        while host.get("array_state").ok().as_deref() != Some("write-pending") {
            if Instant::now() > deadline {
                return Err(Errno::EINTR);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        host.set("array_state", "active").map_err(|e| e.errno)
    })
}

#[test]
fn pre_patch_discipline_deadlocks_and_the_harness_sees_it() {
    let (_dir, host) = host("legacy", AllowWrite::LegacyDeadlock);
    let change = {
        let h = host.clone();
        spawn(move || h.set("stripe_cache_size", "512").map_err(|e| e.errno))
    };
    let ack = manager(host.clone());
    // Neither side progresses.
    assert!(
        change.recv_timeout(STUCK).is_err(),
        "the locked change finished: no deadlock to show"
    );
    assert!(
        ack.recv_timeout(Duration::from_millis(100)).is_err(),
        "the acknowledgement got through the configuration lock"
    );
    assert_eq!(
        host.get("array_state").ok().as_deref(),
        Some("write-pending")
    );
    // Reads still work while it is stuck.
    let mut buf = vec![0u8; 4096];
    host.read(0, &mut buf).expect("reads never wait");
    // Stopping the host fails the stuck write, which unwinds the cycle.
    host.shutdown().expect("stop");
    assert!(change.recv_timeout(PROMPT).is_ok(), "the change unwound");
    assert!(
        ack.recv_timeout(PROMPT).is_ok(),
        "the acknowledgement unwound"
    );
}

#[test]
fn the_patch_fails_fast_and_the_retry_succeeds() {
    let (_dir, host) = host("eagain", AllowWrite::Eagain);
    let started = Instant::now();
    assert_eq!(
        host.set("stripe_cache_size", "512").map_err(|e| e.errno),
        Err(Errno::EAGAIN)
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(host.get("stripe_cache_size").ok().as_deref(), Some("256"));
    let writer = {
        let h = host.clone();
        spawn(move || h.write(0, &[0x5a; 4096], false).map_err(|e| e.errno))
    };
    assert!(
        writer.recv_timeout(Duration::from_millis(300)).is_err(),
        "writes wait"
    );
    let ack = manager(host.clone());
    assert_eq!(ack.recv_timeout(PROMPT).expect("manager finished"), Ok(()));
    assert_eq!(
        writer.recv_timeout(PROMPT).expect("writer finished"),
        Ok(())
    );
    assert!(host.set("stripe_cache_size", "512").is_ok());
    assert_eq!(host.get("stripe_cache_size").ok().as_deref(), Some("512"));
    let mut back = vec![0u8; 4096];
    host.read(0, &mut back).expect("read back");
    assert_eq!(back, vec![0x5a; 4096]);
    host.shutdown().expect("stop");
}

#[test]
fn todays_md_waits_and_the_acknowledgement_gets_through() {
    let (_dir, host) = host("wait", AllowWrite::Wait);
    let change = {
        let h = host.clone();
        spawn(move || h.set("stripe_cache_size", "512").map_err(|e| e.errno))
    };
    assert!(
        change.recv_timeout(Duration::from_millis(500)).is_err(),
        "the change waits for the acknowledgement"
    );
    let ack = manager(host.clone());
    assert_eq!(ack.recv_timeout(PROMPT).expect("manager finished"), Ok(()));
    assert_eq!(
        change.recv_timeout(PROMPT).expect("change finished"),
        Ok(())
    );
    assert_eq!(host.get("stripe_cache_size").ok().as_deref(), Some("512"));
    host.shutdown().expect("stop");
}

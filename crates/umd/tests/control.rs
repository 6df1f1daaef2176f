//! The control interface end to end: a test attribute tree served on a real Unix socket,
//! driven through the public client, raw bytes, and the status renderer.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;
use umd::control::mdstat::{self, ArrayReport};
use umd::control::{client, AttrTree, ClientError, ControlServer, Notifier};
use umd_engine::{EngineError, Errno};

/// Longest a test waits for an event that must come; a failure, not a timing assertion.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// An md-like attribute map: `stripe_cache_size` takes 17..=32768 (protocol.md §7),
/// `degraded` is read-only, unknown names are ENOENT, and every store notifies.
struct TestTree {
    values: Mutex<BTreeMap<String, String>>,
    notifier: OnceLock<Notifier>,
}

impl TestTree {
    fn new() -> Arc<Self> {
        let values = [
            ("array_state", "clean"),
            ("level", "raid5"),
            ("raid_disks", "3"),
            ("degraded", "0"),
            ("stripe_cache_size", "256"),
            ("dev-sdb/slot", "0"),
            ("dev-sdb/state", "in_sync"),
            ("dev-sdb/bad_blocks", ""),
        ];
        Arc::new(Self {
            values: Mutex::new(
                values
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            notifier: OnceLock::new(),
        })
    }
}

impl AttrTree for TestTree {
    fn get(&self, name: &str) -> Result<String, EngineError> {
        let values = self
            .values
            .lock()
            .map_err(|_| EngineError::new(Errno::EIO, "poisoned"))?;
        values
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::new(Errno::ENOENT, format!("no attribute {name}")))
    }

    fn set(&self, name: &str, value: &str) -> Result<(), EngineError> {
        {
            let mut values = self
                .values
                .lock()
                .map_err(|_| EngineError::new(Errno::EIO, "poisoned"))?;
            let slot = values
                .get_mut(name)
                .ok_or_else(|| EngineError::new(Errno::ENOENT, format!("no attribute {name}")))?;
            match name {
                "degraded" => return Err(EngineError::new(Errno::EACCES, "read-only")),
                "stripe_cache_size" => {
                    let n: u32 = value
                        .trim()
                        .parse()
                        .map_err(|_| EngineError::new(Errno::EINVAL, "not a number"))?;
                    if !(17..=32768).contains(&n) {
                        return Err(EngineError::new(Errno::EINVAL, "outside 17..=32768"));
                    }
                }
                _ => {}
            }
            value.clone_into(slot);
            // md notifies with its own locks held: so does this tree.
            if let Some(notifier) = self.notifier.get() {
                notifier.notify(name);
            }
        }
        Ok(())
    }

    fn names(&self) -> Vec<String> {
        self.values
            .lock()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// A fresh private directory for one test's socket, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("umd-ctl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test directory");
        Self(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("md0.ctl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn serve(path: &Path) -> (Arc<TestTree>, umd::control::ControlHandle) {
    let tree = TestTree::new();
    let server = ControlServer::bind(path, tree.clone()).expect("bind control socket");
    tree.notifier
        .set(server.notifier())
        .unwrap_or_else(|_| panic!("notifier set twice"));
    (tree, server.spawn())
}

fn engine_errno(result: Result<impl std::fmt::Debug, ClientError>) -> Errno {
    match result {
        Err(ClientError::Engine(e)) => e.errno,
        other => panic!("expected md's refusal, got {other:?}"),
    }
}

/// Send raw bytes and read one reply line.
fn raw_exchange(reader: &mut BufReader<UnixStream>, bytes: &[u8]) -> String {
    reader.get_mut().write_all(bytes).expect("write request");
    let mut line = String::new();
    reader.read_line(&mut line).expect("read reply");
    line
}

#[test]
fn get_set_list_round_trip() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (_tree, handle) = serve(&path);
    assert_eq!(client::get(&path, "array_state").unwrap(), "clean");
    client::set(&path, "stripe_cache_size", "4096").unwrap();
    assert_eq!(client::get(&path, "stripe_cache_size").unwrap(), "4096");
    let bad_blocks = "8 16\n1024 8\n \\ spaced \t\n";
    client::set(&path, "dev-sdb/bad_blocks", bad_blocks).unwrap();
    assert_eq!(
        client::get(&path, "dev-sdb/bad_blocks").unwrap(),
        bad_blocks
    );
    let names = client::list(&path).unwrap();
    assert!(names.contains(&"dev-sdb/state".to_owned()), "{names:?}");
    assert_eq!(names.len(), 8);
    handle.shutdown();
}

#[test]
fn refusals_carry_md_errno() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (_tree, handle) = serve(&path);
    for bad in ["16", "32769", "lots"] {
        let error = client::set(&path, "stripe_cache_size", bad).unwrap_err();
        assert!(error.to_string().contains("EINVAL"), "{error}");
        assert_eq!(engine_errno(Err::<(), _>(error)), Errno::EINVAL);
    }
    assert_eq!(client::get(&path, "stripe_cache_size").unwrap(), "256");
    assert_eq!(
        engine_errno(client::get(&path, "no_such_attr")),
        Errno::ENOENT
    );
    assert_eq!(
        engine_errno(client::set(&path, "no_such_attr", "1")),
        Errno::ENOENT
    );
    assert_eq!(
        engine_errno(client::set(&path, "degraded", "1")),
        Errno::EACCES
    );
    handle.shutdown();
}

#[test]
fn garbage_and_oversize_requests_get_einval_and_the_connection_survives() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (_tree, handle) = serve(&path);
    let mut reader = BufReader::new(UnixStream::connect(&path).unwrap());
    assert!(raw_exchange(&mut reader, b"frobnicate now\n").starts_with("err EINVAL "));
    assert!(raw_exchange(&mut reader, b"get \xff\xfe\n").starts_with("err EINVAL "));
    assert!(raw_exchange(&mut reader, b"set stripe_cache_size\n").starts_with("err EINVAL "));
    assert!(raw_exchange(&mut reader, b"\n").starts_with("err EINVAL "));
    let mut huge = vec![b'x'; 200 * 1024];
    huge.push(b'\n');
    let reply = raw_exchange(&mut reader, &huge);
    assert!(reply.starts_with("err EINVAL "), "{reply}");
    assert_eq!(
        raw_exchange(&mut reader, b"get array_state\n"),
        "ok clean\n"
    );
    // Other clients were never affected.
    assert_eq!(client::get(&path, "level").unwrap(), "raid5");
    handle.shutdown();
}

#[test]
fn watch_gets_current_value_then_changes() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (tree, handle) = serve(&path);
    let (tx, rx) = mpsc::channel();
    let watch_path = path.clone();
    let watcher = std::thread::spawn(move || {
        let attrs = ["array_state".to_owned(), "dev-sdb/state".to_owned()];
        let mut seen = 0;
        client::watch(&watch_path, &attrs, |attr, value| {
            seen += 1;
            tx.send((attr.to_owned(), value.to_owned())).is_ok() && seen < 4
        })
    });
    let mut initial = vec![
        rx.recv_timeout(EVENT_WAIT).unwrap(),
        rx.recv_timeout(EVENT_WAIT).unwrap(),
    ];
    initial.sort();
    assert_eq!(
        initial,
        [
            ("array_state".to_owned(), "clean".to_owned()),
            ("dev-sdb/state".to_owned(), "in_sync".to_owned())
        ]
    );
    client::set(&path, "array_state", "active").unwrap();
    assert_eq!(
        rx.recv_timeout(EVENT_WAIT).unwrap(),
        ("array_state".to_owned(), "active".to_owned())
    );
    // A notify alone delivers the value read at delivery time.
    tree.values
        .lock()
        .unwrap()
        .insert("dev-sdb/state".into(), "faulty".into());
    tree.notifier.get().unwrap().notify("dev-sdb/state");
    tree.notifier.get().unwrap().notify("not_watched");
    assert_eq!(
        rx.recv_timeout(EVENT_WAIT).unwrap(),
        ("dev-sdb/state".to_owned(), "faulty".to_owned())
    );
    watcher.join().unwrap().unwrap();
    handle.shutdown();
}

#[test]
fn watching_an_unknown_attribute_is_enoent() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (_tree, handle) = serve(&path);
    let result = client::watch(&path, &["bogus".to_owned()], |_, _| true);
    assert_eq!(engine_errno(result), Errno::ENOENT);
    handle.shutdown();
}

#[test]
fn many_concurrent_clients() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (_tree, handle) = serve(&path);
    let workers: Vec<_> = (0..16)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                for j in 0..40 {
                    let value = (17 + i * 100 + j).to_string();
                    client::set(&path, "stripe_cache_size", &value).unwrap();
                    let got: u32 = client::get(&path, "stripe_cache_size")
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!((17..=32768).contains(&got));
                    assert_eq!(client::get(&path, "level").unwrap(), "raid5");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    handle.shutdown();
}

#[test]
fn shutdown_disconnects_clients_and_removes_the_socket() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (_tree, handle) = serve(&path);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let idle = UnixStream::connect(&path).unwrap();
    let watch_path = path.clone();
    let watcher = std::thread::spawn(move || {
        client::watch(&watch_path, &["array_state".to_owned()], |_, _| true)
    });
    while client::get(&path, "array_state").is_err() {}
    handle.shutdown();
    assert!(!path.exists(), "socket file left behind");
    assert!(
        watcher.join().unwrap().is_err(),
        "watch must end with the server"
    );
    drop(idle);
    assert!(matches!(
        client::get(&path, "array_state"),
        Err(ClientError::Connect { .. })
    ));
}

#[test]
fn a_second_server_on_a_live_socket_fails() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (_tree, handle) = serve(&path);
    let error = ControlServer::bind(&path, TestTree::new())
        .err()
        .expect("must refuse");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    assert!(error.to_string().contains("already"), "{error}");
    assert_eq!(client::get(&path, "array_state").unwrap(), "clean");
    handle.shutdown();
}

#[test]
fn a_stale_socket_is_replaced_but_other_files_are_not() {
    let dir = TempDir::new();
    let path = dir.socket();
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    assert!(matches!(
        client::get(&path, "array_state"),
        Err(ClientError::Connect { .. })
    ));
    let (_tree, handle) = serve(&path);
    assert_eq!(client::get(&path, "array_state").unwrap(), "clean");
    handle.shutdown();

    std::fs::write(&path, b"precious").unwrap();
    assert!(ControlServer::bind(&path, TestTree::new()).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

fn raid5_recovering() -> BTreeMap<String, String> {
    [
        ("array_state", "active"),
        ("level", "raid5"),
        ("raid_disks", "3"),
        ("chunk_size", "524288"),
        ("layout", "2"),
        ("component_size", "1046528"),
        ("array_size", "default"),
        ("metadata_version", "1.2"),
        ("degraded", "1"),
        ("sync_action", "recover"),
        ("sync_completed", "261632 / 2093056"),
        ("sync_speed", "10000"),
        ("bitmap/location", "+8"),
        ("bitmap/chunksize", "67108864"),
        ("dev-sdb/slot", "0"),
        ("dev-sdb/state", "in_sync"),
        ("dev-sdc/slot", "1"),
        ("dev-sdc/state", "in_sync"),
        ("dev-sde/slot", "2"),
        ("dev-sde/state", "spare"),
        ("dev-sdd/slot", "none"),
        ("dev-sdd/state", "faulty"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn raid1_clean() -> BTreeMap<String, String> {
    [
        ("array_state", "clean"),
        ("level", "raid1"),
        ("raid_disks", "2"),
        ("component_size", "1048512"),
        ("metadata_version", "0.90"),
        ("degraded", "0"),
        ("sync_action", "idle"),
        ("sync_completed", "none"),
        ("bitmap/location", "none"),
        ("dev-sdf/slot", "0"),
        ("dev-sdf/state", "in_sync"),
        ("dev-sdg/slot", "1"),
        ("dev-sdg/state", "in_sync,write_mostly"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn read_map(name: &str, map: &BTreeMap<String, String>) -> ArrayReport {
    let names: Vec<String> = map.keys().cloned().collect();
    let status = mdstat::read_array(name, &names, |attr| {
        map.get(attr)
            .cloned()
            .ok_or_else(|| ClientError::Engine(EngineError::new(Errno::ENOENT, attr)))
    })
    .unwrap();
    ArrayReport::Running(status)
}

/// Expected text written from md.c's md_seq_show, raid5.c's raid5_status, raid1.c's
/// raid1_status, status_resync and md_bitmap_status formats.
#[test]
fn status_renders_like_proc_mdstat() {
    let reports = [
        read_map("md0", &raid5_recovering()),
        read_map("md1", &raid1_clean()),
        ArrayReport::Stale {
            name: "md2".into(),
            error: "connection refused".into(),
        },
    ];
    let expected = "\
Personalities : [linear] [raid0] [raid1] [raid10] [raid6] [raid5] [raid4] 
md0 : active raid5 sdb[0] sdc[1] sde[2] sdd[3](F)
      2093056 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]
      [==>..................]  recovery = 12.5% (130816/1046528) finish=1.5min speed=10000K/sec
      bitmap: 0/1 pages [0KB], 65536KB chunk

md1 : active raid1 sdf[0] sdg[1](W)
      1048512 blocks [2/2] [UU]
      
md2 : stale control socket (connection refused)
unused devices: <none>
";
    assert_eq!(mdstat::render(&reports), expected);
}

#[test]
fn status_reads_a_live_array_and_reports_a_dead_one() {
    let dir = TempDir::new();
    let path = dir.socket();
    let (_tree, handle) = serve(&path);
    let names = client::list(&path).unwrap();
    let status = mdstat::read_array("md0", &names, |a| client::get(&path, a)).unwrap();
    assert_eq!(status.level, "raid5");
    assert_eq!(status.raid_disks, 3);
    assert_eq!(status.members.len(), 1);
    assert_eq!(status.members[0].slot, Some(0));
    handle.shutdown();
    let dead = mdstat::read_array("md0", &names, |a| client::get(&path, a));
    assert!(matches!(dead, Err(ClientError::Connect { .. })));
}

#[test]
fn fuzz_entry_point_survives_hostile_input() {
    let mut inputs: Vec<Vec<u8>> = vec![
        b"get array_state\nset array_state a\\nb\nlist\nwatch array_state\n".to_vec(),
        b"set dev-sdb/bad_blocks \\x01\\\\\\n\nget dev-sdb/bad_blocks\n".to_vec(),
        vec![0xff; 70_000],
        b"\r\n\r\n\0\0 get  \n".to_vec(),
    ];
    inputs.push([vec![b'a'; 70_000], b"\nget array_state\n".to_vec()].concat());
    for input in inputs {
        umd::control::fuzz::message(&input);
    }
}

//! The manager socket end to end (protocol.md §6.5, §6.6): a fake monitor
//! served on a real Unix socket, driven through the public client and raw
//! bytes; claims, stale files and takeover, including a takeover of a manager
//! running in another process that is then stopped with SIGTERM.
//!
//! Timing: the fake monitor records when each pass began and ended, and the
//! tests compare those instants with when replies arrived (an ordering, not a
//! duration). Waits for things that must happen are bounded by
//! [`EVENT_WAIT`]; running out is a failure, not a timing assertion.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use umd::mon::socket::client::{self, ClientError, MonClient};
use umd::mon::socket::proto::{
    Refusal, Reply, Request, FRAME_END_MAGIC, FRAME_START_MAGIC, UPDATE_BYTES_MAX,
};
use umd::mon::socket::{
    wait_gone, ClaimError, MonConfig, MonFiles, MonHandle, MonServer, PassTimedOut, PingTarget,
    MANAGER_VERSION, TAKEOVER_WAIT_DEFAULT,
};
use umd_engine::{EngineError, Errno};

/// Longest a test waits for something that must happen.
const EVENT_WAIT: Duration = Duration::from_secs(20);
/// How long one fake monitor pass takes: long enough that a reply sent
/// without waiting for it would clearly come first.
const PASS_LEN: Duration = Duration::from_millis(300);
/// The container every test manages.
const CONTAINER: &str = "md127";
/// Set in the child process of the cross-process takeover test: its directory.
const CHILD_DIR_VAR: &str = "UMD_MON_TEST_CHILD_DIR";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh, empty directory; not created, so `claim` creates it.
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "umd-mon-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn our_pid() -> Pid {
    Pid::from_raw(i32::try_from(std::process::id()).expect("pid fits"))
}

// ---- A fake monitor ----

#[derive(Default)]
struct FakeState {
    /// Passes begun and completed.
    begun: u64,
    done: u64,
    /// A ping asked for a pass.
    wake: bool,
    /// While set, a running pass does not end (the test releases it).
    held: bool,
    stop: bool,
    /// Updates queued (by the socket) and applied (by a completed pass), in order.
    queued: Vec<Vec<u8>>,
    applied: Vec<Vec<u8>>,
    /// (began, ended) of every completed pass.
    passes: Vec<(Instant, Instant)>,
    manager_pings: u64,
}

/// A monitor that runs one pass of [`PASS_LEN`] whenever a ping asks, applying
/// the queued updates at the end of the pass, as mdmon's monitor does.
struct FakeMonitor {
    state: Mutex<FakeState>,
    changed: Condvar,
}

impl FakeMonitor {
    /// A monitor that never runs a pass (its thread is never started).
    fn stalled() -> Arc<FakeMonitor> {
        Arc::new(FakeMonitor {
            state: Mutex::default(),
            changed: Condvar::new(),
        })
    }

    fn run(&self) {
        // Runs until stopped, by design.
        loop {
            let mut s = lock(&self.state);
            while !s.wake && !s.stop {
                s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            if s.stop {
                return;
            }
            s.wake = false;
            s.begun += 1;
            drop(s);
            let began = Instant::now();
            thread::sleep(PASS_LEN);
            let mut s = lock(&self.state);
            while s.held && !s.stop {
                s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            let queued = std::mem::take(&mut s.queued);
            s.applied.extend(queued);
            s.done += 1;
            s.passes.push((began, Instant::now()));
            drop(s);
            self.changed.notify_all();
        }
    }

    fn snapshot<R>(&self, f: impl FnOnce(&FakeState) -> R) -> R {
        f(&lock(&self.state))
    }
}

impl PingTarget for FakeMonitor {
    fn update(&self, blob: Vec<u8>) -> Result<(), EngineError> {
        if blob.first() == Some(&0xff) {
            return Err(EngineError::new(Errno::EINVAL, "fake handler refuses 0xff"));
        }
        lock(&self.state).queued.push(blob);
        Ok(())
    }

    fn ping_manager(&self) {
        lock(&self.state).manager_pings += 1;
    }

    fn wait_monitor_pass(&self, timeout: Duration) -> Result<(), PassTimedOut> {
        let deadline = Instant::now() + timeout;
        let mut s = lock(&self.state);
        // A pass already running began before this call: wait for the next.
        let target = s.begun + 1;
        s.wake = true;
        self.changed.notify_all();
        while s.done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PassTimedOut);
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }
}

/// A fake monitor with its thread; stopped and joined on drop.
struct Running {
    monitor: Arc<FakeMonitor>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn start() -> Running {
        let monitor = FakeMonitor::stalled();
        let runner = Arc::clone(&monitor);
        let thread = thread::spawn(move || runner.run());
        Running {
            monitor,
            thread: Some(thread),
        }
    }

    fn target(&self) -> Arc<dyn PingTarget> {
        self.monitor.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        lock(&self.monitor.state).stop = true;
        self.monitor.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Claims `dir` for [`CONTAINER`] (no takeover) and serves `target`.
fn serve(dir: &Path, target: Arc<dyn PingTarget>, config: MonConfig) -> MonHandle {
    let claimed = MonFiles::claim(dir, CONTAINER, false).expect("claim");
    assert_eq!(claimed.previous, None);
    MonServer::new(claimed.files, target, config)
        .expect("config")
        .spawn()
        .expect("spawn")
}

fn socket_in(dir: &Path) -> PathBuf {
    MonFiles::socket_path_in(dir, CONTAINER)
}

fn pid_in(dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(MonFiles::pid_path_in(dir, CONTAINER)).ok()?;
    text.trim().parse().ok()
}

/// True once the server has closed `s` (EOF or reset), waiting at most [`EVENT_WAIT`].
fn closed_by_server(s: &mut UnixStream) -> bool {
    s.set_read_timeout(Some(EVENT_WAIT)).expect("timeout");
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

// ---- Pings ----

#[test]
fn monitor_ping_is_answered_only_after_a_pass_that_began_after_it() {
    let dir = fresh_dir();
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    // A pass already running when the ping arrives does not count.
    lock(&running.monitor.state).wake = true;
    running.monitor.changed.notify_all();
    let sent = Instant::now();
    let version = client::ping_monitor(&socket_in(&dir), EVENT_WAIT).expect("ping");
    let answered = Instant::now();
    assert_eq!(version, MANAGER_VERSION);
    let passes = running.monitor.snapshot(|s| s.passes.clone());
    assert!(
        passes
            .iter()
            .any(|&(began, ended)| began >= sent && ended <= answered),
        "no pass both began after the ping and ended before its reply: {passes:?}"
    );
    server.shutdown();
}

#[test]
fn manager_ping_is_answered_while_the_monitor_is_busy() {
    let dir = fresh_dir();
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    let socket = socket_in(&dir);
    lock(&running.monitor.state).held = true;
    let pinger = {
        let socket = socket.clone();
        thread::spawn(move || client::ping_monitor(&socket, EVENT_WAIT))
    };
    // Wait until the monitor pass the ping asked for is running.
    let deadline = Instant::now() + EVENT_WAIT;
    while running.monitor.snapshot(|s| s.begun) == 0 {
        assert!(
            Instant::now() < deadline,
            "the monitor never started a pass"
        );
        thread::sleep(Duration::from_millis(5));
    }
    client::ping_manager(&socket).expect("manager ping");
    let answered = Instant::now();
    let (pings, done) = running.monitor.snapshot(|s| (s.manager_pings, s.done));
    assert_eq!(pings, 1);
    assert_eq!(done, 0, "answered while the pass is held");
    assert!(
        !pinger.is_finished(),
        "the monitor ping waits for the held pass"
    );
    lock(&running.monitor.state).held = false;
    running.monitor.changed.notify_all();
    pinger.join().expect("pinger").expect("monitor ping");
    let first_end = running.monitor.snapshot(|s| s.passes[0].1);
    assert!(
        answered < first_end,
        "the manager ping did not wait for the monitor"
    );
    server.shutdown();
}

#[test]
fn a_stalled_monitor_is_reported_not_faked() {
    let dir = fresh_dir();
    let config = MonConfig {
        monitor_pass_timeout: Duration::from_millis(200),
        ..MonConfig::default()
    };
    let server = serve(&dir, FakeMonitor::stalled(), config);
    let error = client::ping_monitor(&socket_in(&dir), EVENT_WAIT).expect_err("stalled");
    assert!(
        matches!(
            error,
            ClientError::Refused {
                refusal: Refusal::MonitorStalled,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains(CONTAINER), "{error}");
    server.shutdown();
}

#[test]
fn no_manager_is_a_clear_error() {
    let dir = fresh_dir();
    std::fs::create_dir_all(&dir).expect("dir");
    let socket = socket_in(&dir);
    let error = client::ping_monitor(&socket, EVENT_WAIT).expect_err("nobody there");
    let text = error.to_string();
    let expected = format!("no manager for {CONTAINER} at {}", socket.display());
    assert!(text.starts_with(&expected), "{text}");
    assert!(matches!(
        client::ping_manager(&socket),
        Err(ClientError::NoManager { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Updates ----

#[test]
fn updates_are_acked_once_queued_and_applied_in_order_by_the_next_pass() {
    let dir = fresh_dir();
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    let socket = socket_in(&dir);
    let blobs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
    let mut client = MonClient::connect(&socket, EVENT_WAIT).expect("connect");
    for (i, blob) in blobs.iter().enumerate() {
        client.send_update(blob).expect("update");
        let queued = running
            .monitor
            .snapshot(|s| s.queued.len() + s.applied.len());
        assert_eq!(queued, i + 1, "acked only once queued");
    }
    // One connection per update works too, as tools without a session do.
    client::send_update(&socket, b"eleventh").expect("update");
    client::send_update(&socket, &vec![0x42; UPDATE_BYTES_MAX]).expect("largest update");
    assert_eq!(client.ping_monitor().expect("ping"), MANAGER_VERSION);
    let applied = running.monitor.snapshot(|s| s.applied.clone());
    let mut expected = blobs;
    expected.push(b"eleventh".to_vec());
    expected.push(vec![0x42; UPDATE_BYTES_MAX]);
    assert!(applied == expected, "applied in the order sent");
    server.shutdown();
}

#[test]
fn refused_and_oversized_updates_fail_clearly_and_the_connection_stays() {
    let dir = fresh_dir();
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    let mut client = MonClient::connect(&socket_in(&dir), EVENT_WAIT).expect("connect");
    let error = client.send_update(&[0xff, 1, 2]).expect_err("refused");
    assert!(
        matches!(
            error,
            ClientError::Refused {
                refusal: Refusal::UpdateRefused,
                ..
            }
        ),
        "{error}"
    );
    for len in [0, UPDATE_BYTES_MAX + 1] {
        let error = client.send_update(&vec![1; len]).expect_err("size");
        assert!(matches!(error, ClientError::UpdateSize { .. }), "{error}");
    }
    client.send_update(b"fine").expect("still usable");
    let queued = running.monitor.snapshot(|s| s.queued.clone());
    assert_eq!(queued, [b"fine".to_vec()]);
    server.shutdown();
}

// ---- Bad input ----

/// One raw frame: start magic, `len`, `payload`, end magic.
fn raw_frame(len: i32, payload: &[u8]) -> Vec<u8> {
    let mut wire = FRAME_START_MAGIC.to_le_bytes().to_vec();
    wire.extend_from_slice(&len.to_le_bytes());
    wire.extend_from_slice(payload);
    wire.extend_from_slice(&FRAME_END_MAGIC.to_le_bytes());
    wire
}

#[test]
fn garbage_and_oversized_frames_close_only_that_connection() {
    let dir = fresh_dir();
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    let socket = socket_in(&dir);
    let mut bystander = MonClient::connect(&socket, EVENT_WAIT).expect("connect");
    let mut bad_end = raw_frame(4, b"abcd");
    let end = bad_end.len() - 1;
    bad_end[end] ^= 0xff;
    let mut mdadm = 0x5a5a_a5a5u32.to_le_bytes().to_vec();
    mdadm.extend_from_slice(&[0; 8]);
    let too_long = raw_frame(i32::try_from(UPDATE_BYTES_MAX + 1).expect("fits"), &[]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("garbage", b"hello, manager\n".to_vec()),
        ("mdadm's magic", mdadm),
        ("bad end magic", bad_end),
        ("length below -1", raw_frame(-5, &[])),
        // Refused on the header alone: the server must not wait for 1 MiB.
        ("oversized", too_long[..8].to_vec()),
    ];
    for (what, bytes) in cases {
        let mut s = UnixStream::connect(&socket).expect("connect");
        s.write_all(&bytes).expect("send");
        assert!(closed_by_server(&mut s), "{what}: connection not closed");
        bystander
            .ping_manager()
            .expect("the bystander is still served");
    }
    assert!(
        running.monitor.snapshot(|s| s.queued.is_empty()),
        "nothing queued"
    );
    // A good frame sent raw is answered with an ack.
    let mut s = UnixStream::connect(&socket).expect("connect");
    s.write_all(&raw_frame(3, b"xyz")).expect("send");
    let mut ack = Vec::new();
    Reply::Ack.encode(&mut ack);
    let mut back = vec![0u8; ack.len()];
    s.read_exact(&mut back).expect("ack");
    assert_eq!(back, ack);
    server.shutdown();
}

#[test]
fn idle_and_incomplete_messages_time_out_without_harm() {
    let dir = fresh_dir();
    let running = Running::start();
    let config = MonConfig {
        message_timeout: Duration::from_millis(200),
        ..MonConfig::default()
    };
    let server = serve(&dir, running.target(), config);
    let socket = socket_in(&dir);
    let mut idle = UnixStream::connect(&socket).expect("connect");
    assert!(closed_by_server(&mut idle), "idle connection kept");
    let mut partial = UnixStream::connect(&socket).expect("connect");
    let mut request = Vec::new();
    Request::Update(vec![7; 64]).encode(&mut request);
    partial.write_all(&request[..20]).expect("send part");
    assert!(closed_by_server(&mut partial), "incomplete message kept");
    client::ping_manager(&socket).expect("still serving");
    assert!(running.monitor.snapshot(|s| s.queued.is_empty()));
    server.shutdown();
}

// ---- Files, claims, takeover ----

#[test]
fn claim_creates_private_files_and_shutdown_removes_them() {
    let dir = fresh_dir();
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&socket_in(&dir)), 0o600);
    assert_eq!(pid_in(&dir), Some(our_pid().as_raw()));
    assert!(!server.taken_over());
    server.shutdown();
    assert!(!socket_in(&dir).exists(), "socket removed");
    assert!(
        !MonFiles::pid_path_in(&dir, CONTAINER).exists(),
        "pid file removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_claim_without_takeover_is_refused_naming_the_pid() {
    let dir = fresh_dir();
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    let error = MonFiles::claim(&dir, CONTAINER, false).expect_err("already managed");
    match &error {
        ClaimError::AlreadyManaged { pid, answered, .. } => {
            assert_eq!(*pid, Some(our_pid()));
            assert!(answered, "the live manager answered");
        }
        other => panic!("unexpected {other}"),
    }
    let text = error.to_string();
    assert!(text.contains(&format!("pid {}", our_pid())), "{text}");
    assert!(text.contains(CONTAINER), "{text}");
    // The refused claim left the live manager alone.
    client::ping_manager(&socket_in(&dir)).expect("still served");
    assert_eq!(
        running.monitor.snapshot(|s| s.manager_pings),
        2,
        "probe + ours"
    );
    assert!(!server.taken_over());
    server.shutdown();
}

#[test]
fn stale_socket_and_pid_file_are_replaced() {
    let dir = fresh_dir();
    std::fs::create_dir_all(&dir).expect("dir");
    drop(UnixListener::bind(socket_in(&dir)).expect("bind"));
    assert!(socket_in(&dir).exists(), "a dead socket is left behind");
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let dead_pid = dead.id();
    dead.wait().expect("reap");
    std::fs::write(
        MonFiles::pid_path_in(&dir, CONTAINER),
        format!("{dead_pid}\n"),
    )
    .expect("stale pid file");
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    assert_eq!(pid_in(&dir), Some(our_pid().as_raw()));
    client::ping_manager(&socket_in(&dir)).expect("served");
    server.shutdown();
    // Something that is not a socket is never clobbered.
    std::fs::write(socket_in(&dir), b"precious").expect("file");
    let error = MonFiles::claim(&dir, CONTAINER, true).expect_err("not a socket");
    assert!(matches!(error, ClaimError::NotASocket { .. }), "{error}");
    assert_eq!(std::fs::read(socket_in(&dir)).expect("kept"), b"precious");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn takeover_in_one_process_moves_the_socket_and_leaves_the_successors_files() {
    let dir = fresh_dir();
    let old_monitor = Running::start();
    let old = serve(&dir, old_monitor.target(), MonConfig::default());
    let socket = socket_in(&dir);
    let mut old_client = MonClient::connect(&socket, EVENT_WAIT).expect("connect");
    let claimed = MonFiles::claim(&dir, CONTAINER, true).expect("takeover");
    assert_eq!(claimed.previous, Some(our_pid()));
    let new_monitor = Running::start();
    let new = MonServer::new(claimed.files, new_monitor.target(), MonConfig::default())
        .expect("config")
        .spawn()
        .expect("spawn");
    assert!(old.taken_over(), "the old manager sees the takeover");
    assert!(!new.taken_over());
    let old_pings = old_monitor.monitor.snapshot(|s| s.manager_pings);
    client::ping_manager(&socket).expect("new manager");
    assert_eq!(new_monitor.monitor.snapshot(|s| s.manager_pings), 1);
    assert_eq!(old_monitor.monitor.snapshot(|s| s.manager_pings), old_pings);
    // The old manager still serves the client it had, until it stops.
    old_client.ping_manager().expect("old client still served");
    old.shutdown();
    assert!(matches!(
        old_client.ping_manager(),
        Err(ClientError::Closed { .. } | ClientError::Io { .. })
    ));
    assert!(socket.exists(), "the old manager left the new socket alone");
    assert_eq!(pid_in(&dir), Some(our_pid().as_raw()));
    assert_eq!(
        client::ping_monitor(&socket, EVENT_WAIT).expect("ping"),
        MANAGER_VERSION
    );
    new.shutdown();
    assert!(!socket.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts this test binary as the old manager of `dir` (see
/// [`child_manager_process`]) and waits until it answers.
fn spawn_child_manager(dir: &Path) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    let child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_manager_process",
            "--nocapture",
        ])
        .env(CHILD_DIR_VAR, dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child manager");
    let child_pid = i32::try_from(child.id()).expect("pid fits");
    let deadline = Instant::now() + EVENT_WAIT;
    while pid_in(dir) != Some(child_pid) || client::ping_manager(&socket_in(dir)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the child manager never answered"
        );
        thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn takeover_of_a_manager_in_another_process_then_sigterm_and_wait_gone() {
    let dir = fresh_dir();
    let mut child = spawn_child_manager(&dir);
    let child_pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    let socket = socket_in(&dir);
    let mut old_client = UnixStream::connect(&socket).expect("connect to old");
    let error = MonFiles::claim(&dir, CONTAINER, false).expect_err("live manager");
    assert!(
        error.to_string().contains(&format!("pid {child_pid}")),
        "{error}"
    );
    let claimed = MonFiles::claim(&dir, CONTAINER, true).expect("takeover");
    assert_eq!(claimed.previous, Some(child_pid));
    let running = Running::start();
    let new = MonServer::new(claimed.files, running.target(), MonConfig::default())
        .expect("config")
        .spawn()
        .expect("spawn");
    assert_eq!(
        child.try_wait().expect("status"),
        None,
        "the old manager still runs"
    );
    assert_eq!(pid_in(&dir), Some(our_pid().as_raw()));
    client::ping_manager(&socket).expect("new pings reach the new manager");
    assert_eq!(running.monitor.snapshot(|s| s.manager_pings), 1);
    // The old manager is told to go, and goes; its clients see end-of-file.
    kill(child_pid, Signal::SIGTERM).expect("SIGTERM");
    wait_gone(child_pid, TAKEOVER_WAIT_DEFAULT).expect("old manager gone");
    assert!(child.wait().expect("reap").success(), "clean exit");
    assert!(closed_by_server(&mut old_client), "old client not closed");
    assert!(socket.exists(), "the old manager left the new socket alone");
    assert_eq!(pid_in(&dir), Some(our_pid().as_raw()));
    assert_eq!(
        client::ping_monitor(&socket, EVENT_WAIT).expect("ping"),
        MANAGER_VERSION
    );
    new.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The old manager of the cross-process takeover test, run in a child process
/// by [`spawn_child_manager`]: claims the directory in `UMD_MON_TEST_CHILD_DIR`,
/// serves until SIGTERM (or [`EVENT_WAIT`] × 3), shuts down and exits.
#[test]
#[ignore = "helper process for takeover_of_a_manager_in_another_process_then_sigterm_and_wait_gone"]
fn child_manager_process() {
    let dir = std::env::var_os(CHILD_DIR_VAR)
        .map(PathBuf::from)
        .expect("run only by the takeover test");
    let signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM])
        .expect("signal handler");
    let running = Running::start();
    let server = serve(&dir, running.target(), MonConfig::default());
    let (done, wait) = std::sync::mpsc::channel();
    let handle = signals.handle();
    let mut signals = signals;
    thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = done.send(());
        }
    });
    let _ = wait.recv_timeout(EVENT_WAIT * 3);
    handle.close();
    server.shutdown();
    drop(running);
    std::process::exit(0);
}

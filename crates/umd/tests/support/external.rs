//! A DDF container served by `umd run` and managed by `umd mon`, for the
//! external-metadata tests: real processes, real sockets, real images.
//!
//! Containers come from the mdadm-made DDF images in the test data (copied
//! into a temporary directory), so every test starts from metadata Linux
//! wrote. The manager can be paused (SIGSTOP), resumed, killed and replaced,
//! which is how the tests hold the protocol at the interesting moments.

use super::{testdata, umd, unpack, Running, TempDir};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use umd::control::client;

/// How long a state the tests wait for may take to appear.
pub(crate) const SETTLE: Duration = Duration::from_secs(20);

/// The mdadm-made DDF image sets (dissect.volume), by level.
pub(crate) fn ddf_images(level: &str) -> Vec<&'static str> {
    match level {
        "raid1" => vec!["ddf-raid1-1.bin.gz", "ddf-raid1-2.bin.gz"],
        "raid5" => vec![
            "ddf-raid5-1.bin.gz",
            "ddf-raid5-2.bin.gz",
            "ddf-raid5-3.bin.gz",
        ],
        "raid0-raid1" => vec!["ddf-raid0-raid1-1.bin.gz", "ddf-raid0-raid1-2.bin.gz"],
        other => panic!("no DDF image set {other}"),
    }
}

/// Copies of a real DDF container in `dir`; `None` when the test data is
/// absent and skipping was asked for.
pub(crate) fn real_container(dir: &Path, level: &str) -> Option<Vec<PathBuf>> {
    real_container_named(dir, &ddf_images(level))
}

/// Copies of the named DDF images in `dir`.
pub(crate) fn real_container_named(dir: &Path, names: &[&str]) -> Option<Vec<PathBuf>> {
    let data = testdata()?.join("dissect.volume/ddf");
    Some(names.iter().map(|name| unpack(&data, name, dir)).collect())
}

/// A running `umd mon`.
pub(crate) struct Mon {
    child: Option<Child>,
    pub(crate) log: PathBuf,
}

impl Mon {
    /// Start `umd mon --control CONTROL` with `extra` arguments.
    pub(crate) fn start(run: &Running, tag: &str, extra: &[&str]) -> Mon {
        let log = run.log.with_file_name(format!("umd-mon-{tag}.log"));
        let child = umd()
            .env("UMD_RUN_DIR", &run.run_dir)
            .env("UMD_LOG", "debug")
            .arg("mon")
            .arg("--control")
            .arg(&run.control)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("mon log"))
            .spawn()
            .expect("spawn umd mon");
        Mon {
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> nix::unistd::Pid {
        let child = self.child.as_ref().expect("manager running");
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"))
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.as_ref().expect("manager running").id()
    }

    /// SIGSTOP: the manager stops acknowledging.
    pub(crate) fn pause(&self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    }

    /// SIGCONT.
    pub(crate) fn resume(&self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    }

    /// SIGKILL and reap.
    pub(crate) fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it exited, with its status.
    pub(crate) fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait (bounded) for it to exit by itself.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "umd mon did not exit: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it printed.
    pub(crate) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused manager must be woken to die.
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Start `umd run` on a container without its own manager (the test starts
/// and controls one).
pub(crate) fn serve(dir: &TempDir, disks: &[PathBuf], extra: &[&str]) -> Running {
    let mut args = vec!["--no-mon"];
    args.extend_from_slice(extra);
    Running::start_with(dir.path(), disks, &args)
}

/// Poll `probe` until it says done (bounded by [`SETTLE`]); panics with
/// what it saw last.
pub(crate) fn eventually<T: std::fmt::Debug>(
    what: &str,
    mut probe: impl FnMut() -> (bool, T),
) -> T {
    let deadline = Instant::now() + SETTLE;
    loop {
        let (done, seen) = probe();
        if done {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {seen:?} after {SETTLE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An attribute through the control library.
pub(crate) fn get(run: &Running, attr: &str) -> String {
    client::get(&run.control, attr).unwrap_or_else(|e| panic!("get {attr}: {e}"))
}

/// A store through the control library: `Ok`, or md's errno name.
pub(crate) fn set(run: &Running, attr: &str, value: &str) -> Result<(), String> {
    client::set(&run.control, attr, value).map_err(|e| match e {
        client::ClientError::Engine(e) => e.errno.to_string(),
        other => panic!("set {attr}: {other}"),
    })
}

/// Wait (bounded) until `attr` reads `want`.
pub(crate) fn wait_for(run: &Running, attr: &str, want: &str) {
    eventually(&format!("{attr} (waiting for {want:?})"), || {
        let got = get(run, attr);
        (got == want, got)
    });
}

/// A watch on `attrs` running in a thread: every `(attr, value)` event.
pub(crate) fn watch(run: &Running, attrs: &[&str]) -> Receiver<(String, String)> {
    let (tx, rx) = channel();
    let path = run.control.clone();
    let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
    std::thread::spawn(move || {
        let _ = client::watch(&path, &attrs, |a, v| {
            tx.send((a.to_owned(), v.to_owned())).is_ok()
        });
    });
    rx
}

/// Wait (bounded) for an event `attr` = `want` on `events`.
pub(crate) fn expect_event(events: &Receiver<(String, String)>, attr: &str, want: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (a, v) = events
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no {attr}={want} notification within {SETTLE:?}: {e}"));
        if a == attr && v == want {
            return;
        }
    }
}

/// A qemu-io command against export `export` of `run`, started in the
/// background (a real NBD client whose completion the test can observe).
pub(crate) fn qemu_io(run: &Running, export: &str, command: &str, read_only: bool) -> Child {
    qemu_io_script(run, export, &[command.to_owned()], read_only)
}

/// qemu-io running `commands` in order on one connection, in the background.
pub(crate) fn qemu_io_script(
    run: &Running,
    export: &str,
    commands: &[String],
    read_only: bool,
) -> Child {
    let uri = format!("nbd+unix:///{export}?socket={}", run.nbd.display());
    let mut cmd = Command::new("qemu-io");
    cmd.args(["-f", "raw"]);
    if read_only {
        cmd.arg("-r");
    }
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.arg(&uri)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn qemu-io")
}

/// Wait (bounded) for a background client; its output.
pub(crate) fn finish(child: Child, timeout: Duration) -> Output {
    let mut child = child;
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("client still blocked after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("client output");
    assert!(
        out.status.success(),
        "client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether a background client is still running after `for_at_least`.
pub(crate) fn still_blocked(child: &mut Child, for_at_least: Duration) -> bool {
    std::thread::sleep(for_at_least);
    child.try_wait().expect("wait").is_none()
}

/// `umd examine` of one disk, as text.
pub(crate) fn examine(disk: &Path) -> String {
    let out = umd()
        .arg("examine")
        .arg(disk)
        .output()
        .expect("umd examine");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An attribute, or `None` if the engine has no such attribute (ENOENT).
pub(crate) fn get_opt(run: &Running, attr: &str) -> Option<String> {
    match client::get(&run.control, attr) {
        Ok(v) => Some(v),
        Err(client::ClientError::Engine(e)) if e.errno == umd_engine::Errno::ENOENT => None,
        Err(e) => panic!("get {attr}: {e}"),
    }
}

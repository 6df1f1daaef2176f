//! Shared helpers for the end-to-end tests: temporary member files, the
//! `umd` binary, a running array (`umd run`) with its NBD and control
//! sockets, and the external clients that talk to it.
#![allow(dead_code)]

pub(crate) mod external;
pub(crate) mod fio_load;
pub(crate) mod nbd_data;
pub(crate) mod raid6;

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long `umd run` may take to open its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a clean stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A directory removed on drop (kept when `UMD_TEST_KEEP` is set).
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::var_os("UMD_TEST_TMP").map_or_else(std::env::temp_dir, PathBuf::from);
        let dir = base.join(format!(
            "umd-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("UMD_TEST_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        } else {
            eprintln!("kept {}", self.0.display());
        }
    }
}

/// The `umd` binary under test.
pub(crate) fn umd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_umd"))
}

/// Fail loudly when an external tool is missing (unless the named variable skips).
pub(crate) fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is required by this test (install it; .ci/run does)"
    );
}

/// `n` sparse member files of `mib` MiB each, named `m0.img`, `m1.img`, ...
pub(crate) fn sparse_members(dir: &Path, n: usize, mib: u64) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("m{i}.img"));
            let f = File::create(&p).expect("create member");
            f.set_len(mib << 20).expect("size member");
            p
        })
        .collect()
}

/// Run `umd` with `args`; panic with its stderr if it fails.
pub(crate) fn umd_ok(args: &[&str]) -> Output {
    let out = umd().args(args).output().expect("run umd");
    assert!(
        out.status.success(),
        "umd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `umd create` with `opts` on `members`.
pub(crate) fn create(members: &[PathBuf], opts: &[&str]) {
    let mut args: Vec<String> = vec!["create".into()];
    args.extend(opts.iter().map(|s| (*s).to_string()));
    args.extend(members.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    umd_ok(&refs);
}

/// A `umd run` process serving one array.
pub(crate) struct Running {
    pub(crate) child: Option<Child>,
    pub(crate) nbd: PathBuf,
    pub(crate) control: PathBuf,
    pub(crate) run_dir: PathBuf,
    pub(crate) log: PathBuf,
}

impl Running {
    /// Start `umd run` on `members` with sockets in `dir`.
    pub(crate) fn start(dir: &Path, members: &[PathBuf]) -> Running {
        Self::start_with(dir, members, &[])
    }

    pub(crate) fn start_with(dir: &Path, members: &[PathBuf], extra: &[&str]) -> Running {
        Self::start_with_env(dir, members, extra, &[])
    }

    /// As [`Running::start_with`], with extra environment variables.
    pub(crate) fn start_with_env(
        dir: &Path,
        members: &[PathBuf],
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Running {
        let run_dir = dir.join("run");
        fs::create_dir_all(&run_dir).expect("run dir");
        let nbd = dir.join("array.nbd");
        let control = dir.join("array.ctl");
        let _ = fs::remove_file(&nbd);
        let _ = fs::remove_file(&control);
        let log = dir.join("umd-run.log");
        let mut cmd = umd();
        cmd.env("UMD_RUN_DIR", &run_dir)
            .envs(envs.iter().copied())
            .arg("run")
            .arg("--nbd")
            .arg(format!("unix:{}", nbd.display()))
            .arg("--control")
            .arg(&control)
            .args(extra)
            .args(members)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"));
        let mut child = cmd.spawn().expect("spawn umd run");
        let deadline = Instant::now() + START_TIMEOUT;
        while !(nbd.exists() && control.exists()) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "umd run exited early ({status}): {}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "umd run did not open its sockets"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Running {
            child: Some(child),
            nbd,
            control,
            run_dir,
            log,
        }
    }

    /// The NBD URI for libnbd and qemu clients.
    pub(crate) fn uri(&self) -> String {
        format!("nbd+unix:///?socket={}", self.nbd.display())
    }

    /// `umd ctl --control ... ARGS`.
    pub(crate) fn ctl(&self, args: &[&str]) -> Output {
        umd()
            .env("UMD_RUN_DIR", &self.run_dir)
            .arg("ctl")
            .arg("--control")
            .arg(&self.control)
            .args(args)
            .output()
            .expect("run umd ctl")
    }

    /// An attribute's value.
    pub(crate) fn get(&self, attr: &str) -> String {
        let out = self.ctl(&["get", attr]);
        assert!(
            out.status.success(),
            "get {attr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Store a value: Ok, or Err(stderr) as `umd ctl` printed it.
    pub(crate) fn set(&self, attr: &str, value: &str) -> Result<(), String> {
        let out = self.ctl(&["set", attr, value]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
        }
    }

    /// `umd manage CONTROL ARGS`: Ok, or Err(stderr) as it printed it.
    pub(crate) fn manage(&self, args: &[&str]) -> Result<(), String> {
        let out = umd()
            .env("UMD_RUN_DIR", &self.run_dir)
            .arg("manage")
            .arg(&self.control)
            .args(args)
            .output()
            .expect("run umd manage");
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
        }
    }

    /// Wait until `sync_action` reads `idle` (bounded).
    pub(crate) fn wait_idle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let action = self.get("sync_action");
            if action == "idle" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sync_action still {action} after {timeout:?} (sync_completed {}, array_state {}); log:\n{}",
                self.get("sync_completed"),
                self.get("array_state"),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub(crate) fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(&child, nix::sys::signal::Signal::SIGTERM);
        let status = wait_bounded(&mut child, STOP_TIMEOUT);
        assert!(
            status.success(),
            "umd run did not stop cleanly ({status}): {}",
            fs::read_to_string(&self.log).unwrap_or_default()
        );
        status
    }

    /// SIGKILL: the process dies with the array dirty.
    pub(crate) fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        signal(&child, nix::sys::signal::Signal::SIGKILL);
        let _ = wait_bounded(&mut child, STOP_TIMEOUT);
    }

    pub(crate) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    nix::sys::signal::kill(pid, sig).expect("signal umd run");
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("umd run did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run an external command; panic with its output if it fails.
pub(crate) fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Deterministic pseudo-random bytes (splitmix64).
pub(crate) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `umd cat` of `members` (read-only, in-process assembly).
pub(crate) fn cat(members: &[PathBuf]) -> Vec<u8> {
    let out = umd().arg("cat").args(members).output().expect("umd cat");
    assert!(
        out.status.success(),
        "umd cat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Host `mdadm --examine` text of one member.
pub(crate) fn mdadm_examine(member: &Path) -> String {
    let out = run_ok(Command::new("mdadm").arg("--examine").arg(member));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `Key : value` in mdadm's text.
pub(crate) fn examine_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(" : ")?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The real member images made by mdadm on Linux (`UMD_TESTDATA`, else
/// `../shared/testdata/real` beside the repository). Missing: the test fails,
/// unless `UMD_SKIP_REAL_IMAGES` says to skip (then `None`).
pub(crate) fn testdata() -> Option<PathBuf> {
    let dir = std::env::var_os("UMD_TESTDATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/real"),
        PathBuf::from,
    );
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("UMD_SKIP_REAL_IMAGES").is_some(),
        "real images not found at {} (set UMD_TESTDATA, or UMD_SKIP_REAL_IMAGES=1 to skip)",
        dir.display()
    );
    None
}

/// Decompress `rel` (a .gz or .xz image) from the test data into `dir`.
pub(crate) fn unpack(data: &Path, rel: &str, dir: &Path) -> PathBuf {
    let src = data.join(rel);
    let raw = fs::read(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut out = Vec::new();
    if Path::new(rel)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
    } else {
        lzma_rs::xz_decompress(&mut &raw[..], &mut out).expect("unxz");
    }
    let name = Path::new(rel)
        .file_name()
        .expect("file name")
        .to_string_lossy();
    let dst = dir.join(name.trim_end_matches(".gz").trim_end_matches(".xz"));
    fs::write(&dst, out).expect("write image");
    dst
}

/// SHA-256 of `bytes` in lower-case hex, as `sha256sum` prints it.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Start fio writing 4 KiB blocks at random, 32 in flight, for 30 s through
/// `run`'s NBD export; `extra` narrows where (`--offset`, `--size`, zones).
pub(crate) fn write_storm(run: &Running, extra: &[String]) -> Child {
    Command::new("fio")
        .args([
            "--name=storm",
            "--ioengine=nbd",
            &format!("--uri={}", run.uri()),
            "--rw=randwrite",
            "--bs=4k",
            "--iodepth=32",
            "--time_based",
            "--runtime=30",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fio")
}

/// Wait until the array is clean (no write for `safe_mode_delay`), so that
/// [`wait_until_writing`] then sees new writes, not the last ones.
pub(crate) fn wait_until_clean(run: &Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while run.get("array_state") != "clean" {
        assert!(Instant::now() < deadline, "the array never went clean");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until writes are flowing: the array is dirty (its dirty superblocks
/// are written before the first write proceeds).
pub(crate) fn wait_until_writing(run: &Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(run.get("array_state").as_str(), "active" | "write-pending") {
        assert!(Instant::now() < deadline, "fio never started writing");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A 0.90 member's own descriptor as `mdadm --examine` prints it (the
/// `this` line): its RaidDevice and state ("active sync", "spare", ...).
#[allow(dead_code)] // used by the 0.90 rebuild tests only
pub(crate) fn examine_this_090(text: &str) -> Option<(u32, String)> {
    let line = text.lines().find(|l| l.trim_start().starts_with("this "))?;
    descriptor_090(line.trim_start().strip_prefix("this")?)
}

/// The slots of a 0.90 array as `mdadm --examine`'s descriptor table
/// shows them, as mdadm's 1.x "Array State" would: `A` for a slot whose
/// descriptor is active and in sync, `.` otherwise.
#[allow(dead_code)] // used by the 0.90 rebuild tests only
pub(crate) fn roles_090(text: &str, raid_disks: u32) -> String {
    let table: Vec<(u32, String)> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("this "))
        .skip(1)
        .filter_map(|l| {
            let (_, rest) = l.trim_start().split_once(char::is_whitespace)?;
            descriptor_090(rest)
        })
        .collect();
    (0..raid_disks)
        .map(|slot| {
            let in_sync = table
                .iter()
                .any(|(d, state)| *d == slot && state.starts_with("active sync"));
            if in_sync {
                'A'
            } else {
                '.'
            }
        })
        .collect()
}

/// `Number Major Minor RaidDevice State...` of one descriptor line.
fn descriptor_090(fields: &str) -> Option<(u32, String)> {
    let mut words = fields.split_whitespace();
    let _number = words.next()?;
    let _major = words.next()?;
    let _minor = words.next()?;
    let raid_device = words.next()?.parse().ok()?;
    let state: Vec<&str> = words.take_while(|w| !w.starts_with('/')).collect();
    Some((raid_device, state.join(" ")))
}

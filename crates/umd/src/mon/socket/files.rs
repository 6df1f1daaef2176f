//! The files beside a manager: its socket and pid file, and mdmon's start and
//! takeover rules for them (protocol.md §6.6).
//!
//! In a private directory (0700) each container has `<container>.sock` (mode
//! 0600) and `<container>.pid` (the manager's pid and a newline, as mdmon
//! writes it), plus `<container>.lock`, which only serialises claims and is
//! never removed (removing a lock file races with its next user).
//!
//! Why each step of [`MonFiles::claim`] is safe:
//! - Claims of one container hold an exclusive `flock` on the lock file, so two
//!   starting managers cannot both decide the socket is free.
//! - A socket that accepts a connection belongs to a live process (a dead
//!   one's socket refuses), whose pid the kernel reports (`SO_PEERCRED`); a pid
//!   file can be stale, so it is only cross-checked, never trusted.
//! - The new socket is bound at a temporary name, made 0600, then renamed over
//!   the old path: at every instant the path names a socket someone serves
//!   (clients never see it missing), and a client connecting after the rename
//!   reaches the new manager. The pid file is replaced the same way, after the
//!   socket, so a tool that sees the new pid also finds its socket.
//! - At shutdown a manager removes a file only if it is still the one it
//!   created (same device and inode), so a manager that was taken over never
//!   deletes its successor's socket or pid file.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::kill;
use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use super::client::MonClient;

/// File name suffix of a manager socket.
const SOCKET_SUFFIX: &str = "sock";
/// File name suffix of a manager pid file.
const PID_SUFFIX: &str = "pid";
/// File name suffix of the lock that serialises claims.
const LOCK_SUFFIX: &str = "lock";
/// Socket file permissions: owner only (the peer check is the second fence).
const SOCKET_MODE: u32 = 0o600;
/// Pid and lock file permissions: owner only, like the directory.
const FILE_MODE: u32 = 0o600;
/// Permissions of a directory `claim` creates.
const DIR_MODE: u32 = 0o700;
/// Longest container name: md names are short (`md127`, `ddf0`), and the socket
/// path must fit `sun_path` (108 bytes) with the directory in front.
const CONTAINER_NAME_BYTES_MAX: usize = 64;
/// How long a claim waits for a live manager to answer a ping: long enough for
/// a busy manager, short enough that starting is not held up by a stuck one.
const LIVENESS_PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a claim waits for another claim of the same container to finish
/// (that one waits at most [`LIVENESS_PING_TIMEOUT`] plus a few file operations).
const CLAIM_LOCK_WAIT: Duration = Duration::from_secs(10);
/// Polling interval while the claim lock is held by someone else.
const CLAIM_LOCK_POLL: Duration = Duration::from_millis(20);
/// Longest pid file we read: a decimal pid and a newline.
const PID_FILE_BYTES_MAX: u64 = 32;
/// How long a takeover waits for the old manager to exit after SIGTERM: mdmon
/// polls 25 × 200 ms.
pub const TAKEOVER_WAIT_DEFAULT: Duration = Duration::from_secs(5);
/// Upper bound on any [`wait_gone`]: a manager finishing its last pass and
/// marking its arrays clean needs seconds, not minutes.
const WAIT_GONE_MAX: Duration = Duration::from_secs(60);
/// Polling interval of [`wait_gone`].
const WAIT_GONE_POLL: Duration = Duration::from_millis(20);

/// Why the manager's files could not be claimed, or an old manager did not go.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClaimError {
    /// The container name cannot be a file name here.
    BadContainerName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A live manager serves the socket and no takeover was asked for.
    AlreadyManaged {
        /// The container.
        container: String,
        /// The live manager's pid, as the kernel reports it for the socket.
        pid: Option<Pid>,
        /// Its socket.
        socket: PathBuf,
        /// Whether it answered a ping (a stuck manager still holds the socket).
        answered: bool,
    },
    /// Something that is not a socket sits where the socket goes.
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Another claim of this container did not finish in time.
    Busy {
        /// The lock file it holds.
        lock: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// A file operation failed.
    Io {
        /// What we were doing ("bind", "rename", ...).
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The old manager was still running when [`wait_gone`] gave up.
    StillRunning {
        /// Its pid.
        pid: Pid,
        /// How long we waited.
        waited: Duration,
    },
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::BadContainerName { name, reason } => {
                write!(f, "bad container name {name:?}: {reason}")
            }
            ClaimError::AlreadyManaged {
                container,
                pid,
                socket,
                answered,
            } => {
                match pid {
                    Some(pid) => write!(f, "{container} is already managed by pid {pid}")?,
                    None => write!(f, "{container} is already managed by another process")?,
                }
                let how = if *answered {
                    "answers"
                } else {
                    "accepts connections but did not answer a ping"
                };
                write!(
                    f,
                    " (socket {} {how}); take it over to replace it",
                    socket.display()
                )
            }
            ClaimError::NotASocket { path } => {
                write!(f, "{} exists and is not a socket", path.display())
            }
            ClaimError::Busy { lock, waited } => write!(
                f,
                "another manager is starting ({} held for {waited:?})",
                lock.display()
            ),
            ClaimError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            ClaimError::StillRunning { pid, waited } => {
                write!(f, "old manager pid {pid} still running after {waited:?}")
            }
        }
    }
}

impl std::error::Error for ClaimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClaimError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_error<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> ClaimError + 'p {
    move |source| ClaimError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A file's identity, to tell our file from one that replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of the file at `path` now, if any (symbolic links not followed).
    fn of(path: &Path) -> io::Result<FileId> {
        let meta = fs::symlink_metadata(path)?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// The claimed socket (bound, not yet served) and pid file of one container.
#[derive(Debug)]
pub struct MonFiles {
    listener: UnixListener,
    guard: FilesGuard,
}

/// A successful claim.
#[derive(Debug)]
pub struct Claimed {
    /// Our socket and pid file; serve them with [`super::MonServer::spawn`].
    pub files: MonFiles,
    /// With takeover: the pid of the manager that served the socket until now.
    /// The caller sends it SIGTERM and [`wait_gone`]s it. It is this process's
    /// own pid when one process claims the same container twice.
    pub previous: Option<Pid>,
}

/// What removes our files when we are done, if they are still ours.
#[derive(Debug)]
pub(super) struct FilesGuard {
    container: String,
    socket_path: PathBuf,
    pid_path: PathBuf,
    socket_id: FileId,
    pid_id: FileId,
    released: bool,
}

impl MonFiles {
    /// The directory managers use unless told otherwise: umd's run directory
    /// (`/run/umd` for root), beside the arrays' control sockets.
    #[must_use]
    pub fn default_dir() -> PathBuf {
        crate::control::paths::run_dir()
    }

    /// Where the manager of `container` listens in `dir`.
    #[must_use]
    pub fn socket_path_in(dir: &Path, container: &str) -> PathBuf {
        dir.join(format!("{container}.{SOCKET_SUFFIX}"))
    }

    /// Where the manager of `container` writes its pid in `dir`.
    #[must_use]
    pub fn pid_path_in(dir: &Path, container: &str) -> PathBuf {
        dir.join(format!("{container}.{PID_SUFFIX}"))
    }

    /// mdmon's start (protocol.md §6.6): claims `dir/<container>.sock` and
    /// `.pid` for this process, creating `dir` (0700) if missing.
    ///
    /// If a live manager serves the socket: without `takeover`, refuses naming
    /// its pid; with `takeover`, puts our socket and pid file in its place and
    /// returns its pid in [`Claimed::previous`] for the caller to stop (the old
    /// manager keeps serving the clients it has). A socket nobody serves and a
    /// pid file naming no manager are stale and replaced.
    pub fn claim(dir: &Path, container: &str, takeover: bool) -> Result<Claimed, ClaimError> {
        check_container_name(container)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(io_error("create directory", dir))?;
        let lock_path = dir.join(format!("{container}.{LOCK_SUFFIX}"));
        let lock = lock_claims(&lock_path)?;
        let socket_path = Self::socket_path_in(dir, container);
        let pid_path = Self::pid_path_in(dir, container);
        let probed = probe(&socket_path)?;
        check_pid_file(&pid_path, &probed);
        let previous = match probed {
            Probe::Live { pid, answered } if !takeover => {
                return Err(ClaimError::AlreadyManaged {
                    container: container.to_owned(),
                    pid,
                    socket: socket_path,
                    answered,
                });
            }
            Probe::Live { pid, answered } => {
                info!(
                    container,
                    ?pid,
                    answered,
                    "mon: taking over from the live manager"
                );
                pid
            }
            Probe::Stale => {
                info!(socket = %socket_path.display(), "mon: replaced a stale socket");
                None
            }
            Probe::Absent => None,
        };
        let (listener, socket_id) = bind_in_place(&socket_path)?;
        let guard = FilesGuard {
            container: container.to_owned(),
            socket_id,
            pid_id: write_pid_file(&pid_path)?,
            socket_path,
            pid_path,
            released: false,
        };
        drop(lock);
        debug!(container, "mon: files claimed");
        Ok(Claimed {
            files: MonFiles { listener, guard },
            previous,
        })
    }

    /// The container these files belong to.
    #[must_use]
    pub fn container(&self) -> &str {
        &self.guard.container
    }

    /// Our socket's path.
    #[must_use]
    pub fn socket_path(&self) -> &Path {
        &self.guard.socket_path
    }

    /// Our pid file's path.
    #[must_use]
    pub fn pid_path(&self) -> &Path {
        &self.guard.pid_path
    }

    /// The bound listener and the guard that removes our files when dropped.
    pub(super) fn into_parts(self) -> (UnixListener, FilesGuard) {
        (self.listener, self.guard)
    }
}

impl FilesGuard {
    pub(super) fn container(&self) -> &str {
        &self.container
    }

    pub(super) fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// True once another manager's socket has replaced ours at the path.
    pub(super) fn taken_over(&self) -> bool {
        FileId::of(&self.socket_path).map_or(true, |id| id != self.socket_id)
    }

    /// Removes our socket and pid file if they are still the ones we created.
    /// A file replaced between the check and the removal (a takeover in that
    /// instant) would be removed too; its manager's clients then fail to
    /// connect and mdadm restarts a manager, which is the recovery mdmon has.
    fn release(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        for (path, id) in [
            (&self.socket_path, self.socket_id),
            (&self.pid_path, self.pid_id),
        ] {
            match FileId::of(path) {
                Ok(now) if now == id => {
                    if let Err(error) = fs::remove_file(path) {
                        warn!(path = %path.display(), %error, "mon: cannot remove");
                    }
                }
                Ok(_) => debug!(path = %path.display(), "mon: replaced by a successor; kept"),
                Err(error) => debug!(path = %path.display(), %error, "mon: already gone"),
            }
        }
    }
}

impl Drop for FilesGuard {
    fn drop(&mut self) {
        self.release();
    }
}

/// A container name must be a plain, short file name.
fn check_container_name(name: &str) -> Result<(), ClaimError> {
    let bad = |reason| {
        Err(ClaimError::BadContainerName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > CONTAINER_NAME_BYTES_MAX {
        return bad("must be 1 to 64 bytes");
    }
    if name.starts_with('.') {
        return bad("must not start with '.'");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.:+".contains(c);
    if !name.chars().all(allowed) {
        return bad("only letters, digits and _-.:+ are allowed");
    }
    Ok(())
}

/// Takes the exclusive claim lock, waiting at most [`CLAIM_LOCK_WAIT`].
fn lock_claims(path: &Path) -> Result<Flock<fs::File>, ClaimError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io_error("open lock", path))?;
    let deadline = Instant::now() + CLAIM_LOCK_WAIT;
    // Bounded: one attempt per poll interval until the deadline.
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((returned, Errno::EWOULDBLOCK | Errno::EINTR)) => file = returned,
            Err((_, errno)) => {
                return Err(ClaimError::Io {
                    action: "lock",
                    path: path.to_owned(),
                    source: io::Error::from(errno),
                })
            }
        }
        if Instant::now() >= deadline {
            return Err(ClaimError::Busy {
                lock: path.to_owned(),
                waited: CLAIM_LOCK_WAIT,
            });
        }
        thread::sleep(CLAIM_LOCK_POLL);
    }
}

/// Who serves the socket path.
#[derive(Debug)]
enum Probe {
    /// Nothing there.
    Absent,
    /// A socket nobody serves (its manager died).
    Stale,
    /// A live process serves it.
    Live { pid: Option<Pid>, answered: bool },
}

fn probe(path: &Path) -> Result<Probe, ClaimError> {
    match fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Probe::Absent),
        Err(error) => return Err(io_error("inspect", path)(error)),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ClaimError::NotASocket {
                path: path.to_owned(),
            })
        }
        Ok(_) => {}
    }
    let stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            fs::remove_file(path).map_err(io_error("remove stale socket", path))?;
            return Ok(Probe::Stale);
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Probe::Absent),
        Err(error) => return Err(io_error("connect to", path)(error)),
    };
    let pid = getsockopt(&stream, sockopt::PeerCredentials)
        .ok()
        .map(|creds| Pid::from_raw(creds.pid()))
        .filter(|pid| pid.as_raw() > 0);
    let mut client = MonClient::from_stream(stream, path, LIVENESS_PING_TIMEOUT);
    let answered = match client.ping_manager() {
        Ok(()) => true,
        Err(error) => {
            warn!(socket = %path.display(), %error, "mon: live manager did not answer");
            false
        }
    };
    Ok(Probe::Live { pid, answered })
}

/// Logs what an existing pid file says against who serves the socket; the
/// file is replaced either way.
fn check_pid_file(path: &Path, probed: &Probe) {
    let Some(recorded) = read_pid_file(path) else {
        return;
    };
    match *probed {
        Probe::Live {
            pid: Some(live), ..
        } if live != recorded => warn!(
            pid_file = %path.display(), %recorded, %live,
            "mon: pid file disagrees with the socket's owner; trusting the socket"
        ),
        Probe::Live { .. } => {}
        Probe::Absent | Probe::Stale if is_gone(recorded) => {
            info!(pid_file = %path.display(), %recorded, "mon: replacing a stale pid file");
        }
        Probe::Absent | Probe::Stale => warn!(
            pid_file = %path.display(), %recorded,
            "mon: pid file names a live process that serves no socket; replacing it"
        ),
    }
}

/// The pid a pid file records, if it exists and holds one.
fn read_pid_file(path: &Path) -> Option<Pid> {
    let file = fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(PID_FILE_BYTES_MAX)
        .read_to_string(&mut text)
        .ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 0).then(|| Pid::from_raw(pid))
}

/// Binds a socket at a temporary name beside `path`, makes it 0600 and renames
/// it over `path`. Returns the listener and the socket file's identity.
fn bind_in_place(path: &Path) -> Result<(UnixListener, FileId), ClaimError> {
    let temp = temp_beside(path);
    match fs::remove_file(&temp) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(io_error("remove leftover", &temp)(error));
        }
        _ => {}
    }
    let listener = UnixListener::bind(&temp).map_err(io_error("bind", &temp))?;
    let placed = (|| {
        fs::set_permissions(&temp, fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(io_error("set mode of", &temp))?;
        let id = FileId::of(&temp).map_err(io_error("inspect", &temp))?;
        fs::rename(&temp, path).map_err(io_error("rename socket to", path))?;
        Ok(id)
    })();
    match placed {
        Ok(id) => {
            assert_eq!(
                FileId::of(path).ok(),
                Some(id),
                "the rename placed our socket"
            );
            Ok((listener, id))
        }
        Err(error) => {
            let _ = fs::remove_file(&temp);
            Err(error)
        }
    }
}

/// Writes our pid to a temporary file beside `path` and renames it over `path`.
fn write_pid_file(path: &Path) -> Result<FileId, ClaimError> {
    let temp = temp_beside(path);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&temp)
            .map_err(io_error("create", &temp))?;
        writeln!(file, "{}", std::process::id()).map_err(io_error("write", &temp))?;
        file.sync_all().map_err(io_error("sync", &temp))?;
        let id = FileId::of(&temp).map_err(io_error("inspect", &temp))?;
        fs::rename(&temp, path).map_err(io_error("rename pid file to", path))?;
        Ok(id)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    let id = written?;
    assert_eq!(
        read_pid_file(path).map(Pid::as_raw),
        i32::try_from(std::process::id()).ok(),
        "the pid file names us"
    );
    Ok(id)
}

/// `<path>.<our pid>.new`: ours alone, in the same directory (rename is atomic
/// only within one file system).
fn temp_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.new", std::process::id()));
    path.with_file_name(name)
}

/// Waits until process `pid` has exited (an unreaped zombie counts as exited),
/// polling for at most `timeout` (capped at one minute). mdmon's takeover
/// waits like this after sending the old manager SIGTERM.
pub fn wait_gone(pid: Pid, timeout: Duration) -> Result<(), ClaimError> {
    let timeout = timeout.min(WAIT_GONE_MAX);
    let deadline = Instant::now() + timeout;
    // Bounded: one check per poll interval until the deadline.
    loop {
        if is_gone(pid) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClaimError::StillRunning {
                pid,
                waited: timeout,
            });
        }
        thread::sleep(left.min(WAIT_GONE_POLL));
    }
}

/// True if no process `pid` runs: none exists, or it is a zombie.
fn is_gone(pid: Pid) -> bool {
    match kill(pid, None) {
        Err(Errno::ESRCH) => true,
        // EPERM: it exists under another user.
        Err(_) => false,
        Ok(()) => is_zombie(pid),
    }
}

/// True if `/proc/<pid>/stat` says the process exited and awaits its parent.
fn is_zombie(pid: Pid) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        // Gone between the signal check and this read.
        return true;
    };
    // The state follows the command name, which may itself contain ") ".
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    matches!(state, Some("Z" | "X"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_stay_plain_file_names() {
        for good in ["md127", "ddf0", "host:name", "a.b-c_d+e"] {
            assert!(check_container_name(good).is_ok(), "{good}");
        }
        let too_long = "m".repeat(CONTAINER_NAME_BYTES_MAX + 1);
        for bad in ["", ".hidden", "../x", "a/b", "sp ace", "nul\0", &too_long] {
            assert!(check_container_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn this_process_is_not_gone_and_a_reaped_child_is() {
        let me = Pid::from_raw(i32::try_from(std::process::id()).expect("pid fits"));
        assert!(!is_gone(me));
        assert!(wait_gone(me, Duration::from_millis(30)).is_err());
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        // Exited but not yet reaped: a zombie counts as gone.
        wait_gone(pid, Duration::from_secs(5)).expect("exited child");
        child.wait().expect("reap");
        assert!(is_gone(pid));
    }

    #[test]
    fn temp_names_stay_beside_the_target() {
        let temp = temp_beside(Path::new("/run/umd/md127.sock"));
        assert_eq!(temp.parent(), Some(Path::new("/run/umd")));
        let name = temp.file_name().and_then(|n| n.to_str()).expect("utf-8");
        assert!(name.starts_with("md127.sock."), "{name}");
        assert_eq!(temp.extension(), Some("new".as_ref()), "{name}");
    }
}

//! `umd manage`: fail, remove, add or replace members of a running array,
//! as `mdadm --manage` does, through the array's control socket.
//!
//! Why a verb of its own: each action is one md attribute store, but the
//! order and the waiting are mdadm's. `--fail` writes `faulty` to the
//! member's `state`; `--remove` writes `remove`, which md refuses (EBUSY)
//! until its md thread has taken a failed member out of its slot, so it is
//! retried for a bounded time while the member is faulty; `--add` writes
//! the file's absolute path to `new_dev` (the server opens it), after which
//! the array activates the spare and rebuilds onto it by itself (given to a
//! DDF container, a blank file becomes a global spare that the container's
//! manager writes and activates);
//! `--replace` writes `want_replacement` (after adding `--with`'s file as
//! the spare to copy onto), and the array copies the member onto a spare
//! while the member goes on serving, then fails it.

use super::ctl::choose_socket;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use umd::control::client::{ClientError, Session};
use umd::control::paths;
use umd::mon::socket::client::ping_monitor;
use umd::mon::socket::{MonFiles, CLIENT_TIMEOUT_DEFAULT};
use umd_engine::Errno;
use umd_formats::probe::ProbeError;
use umd_io::MemberFile;

/// How long `--remove` waits for a failed member to leave its slot.
const REMOVE_WAIT: Duration = Duration::from_secs(5);
/// Pause between `--remove` attempts.
const REMOVE_RETRY: Duration = Duration::from_millis(50);

/// Arguments of `umd manage`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("action").required(true)
    .args(["fail", "remove", "add", "replace"])))]
pub(crate) struct ManageArgs {
    /// The array: its control socket, or an array name in the run
    /// directory; by default the only array running.
    array: Option<PathBuf>,
    /// Mark a member failed (its name as in `dev-NAME`, or its path).
    #[arg(long, value_name = "DEV")]
    fail: Option<PathBuf>,
    /// Take a failed or spare member out of the array.
    #[arg(long, value_name = "DEV")]
    remove: Option<PathBuf>,
    /// Add a device or image file as a spare (rebuilt onto when a slot is free).
    #[arg(long, value_name = "FILE")]
    add: Option<PathBuf>,
    /// Copy a working member onto a spare while it keeps serving, then fail
    /// it (md's hot replace): the array never loses redundancy on the way.
    #[arg(long, value_name = "DEV")]
    replace: Option<PathBuf>,
    /// With --replace: the spare to copy onto (a file, added first if it is
    /// not a member yet).
    #[arg(long, value_name = "FILE", requires = "replace")]
    with: Option<PathBuf>,
}

#[allow(clippy::needless_pass_by_value)] // clap hands each verb its arguments by value
pub(crate) fn run(args: ManageArgs) -> Result<ExitCode, String> {
    let path = socket_path(args.array.as_deref())?;
    let mut session = Session::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let container = session.get("level").is_ok_and(|l| l == "container");
    if container && (args.fail.is_some() || args.remove.is_some() || args.replace.is_some()) {
        return Err(format!(
            "{}: a container: only --add acts on it (a disk for the container); a subarray's \
             members are failed, removed or replaced through its attributes, e.g. \
             `umd ctl --control {} set 0/dev-NAME/state faulty`",
            path.display(),
            path.display()
        ));
    }
    if let Some(dev) = &args.fail {
        let name = member_name(&mut session, dev)?;
        store(&mut session, &format!("dev-{name}/state"), "faulty")?;
        eprintln!("umd manage: set {name} faulty");
    }
    if let Some(dev) = &args.remove {
        let name = member_name(&mut session, dev)?;
        remove(&mut session, &name)?;
        eprintln!("umd manage: removed {name}");
    }
    if let Some(file) = &args.add {
        if container {
            add_to_container(&mut session, file)?;
        } else {
            add(&mut session, file, "--add")?;
        }
    }
    if let Some(dev) = &args.replace {
        replace(&mut session, dev, args.with.as_deref())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `new_dev` <- the file's absolute path; returns the member's name.
fn add(session: &mut Session, file: &Path, flag: &str) -> Result<String, String> {
    let absolute =
        std::fs::canonicalize(file).map_err(|e| format!("{flag} {}: {e}", file.display()))?;
    let value = absolute
        .to_str()
        .ok_or_else(|| format!("{flag} {}: not a UTF-8 path", absolute.display()))?;
    store(session, "new_dev", value)?;
    eprintln!("umd manage: added {}", absolute.display());
    member_name(session, &absolute)
}

/// `--add` to a container (`mdadm --add` to a DDF container): the file is
/// checked blank, given to the container (`new_dev`), and the manager is
/// pinged to take it; a pass later its metadata must name it a disk of the
/// container (a global spare, which the manager activates into a subarray
/// that lost a member).
fn add_to_container(session: &mut Session, file: &Path) -> Result<(), String> {
    let absolute =
        std::fs::canonicalize(file).map_err(|e| format!("--add {}: {e}", file.display()))?;
    let value = absolute
        .to_str()
        .ok_or_else(|| format!("--add {}: not a UTF-8 path", absolute.display()))?;
    let shown = absolute.display().to_string();
    if let Some(what) = metadata_on(&absolute)? {
        return Err(format!(
            "--add {shown}: it holds {what} metadata; a container takes only blank disks \
             (erase it first)"
        ));
    }
    let container = super::mon::container_name(session)?;
    store(session, "new_dev", value)?;
    let mon = MonFiles::socket_path_in(&MonFiles::default_dir(), &container);
    if let Err(e) = ping_monitor(&mon, CLIENT_TIMEOUT_DEFAULT) {
        eprintln!(
            "umd manage: {shown} given to {container}, whose manager did not answer ({e}); \
             it becomes a spare once `umd mon` runs"
        );
        return Ok(());
    }
    if container_disk(&absolute, session)? {
        eprintln!("umd manage: added {shown} to {container} as a global spare");
        Ok(())
    } else {
        Err(format!(
            "--add {shown}: the manager of {container} did not take it (its log says why)"
        ))
    }
}

/// Which RAID metadata the file holds, if any (`Metadata::kind`).
fn metadata_on(path: &Path) -> Result<Option<&'static str>, String> {
    let file = MemberFile::open_read_only(path).map_err(|e| e.to_string())?;
    let mut read =
        |offset: u64, buf: &mut [u8]| file.read_exact_at(offset, buf).map_err(|e| e.source);
    match umd_formats::probe::probe(file.len_bytes(), &mut read) {
        Ok(found) => Ok(Some(found.kind())),
        Err(ProbeError::NotFound) => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Whether the DDF on `path` is the container's whose disks `session` lists
/// (it carries the container GUID of a disk already in it).
fn container_disk(path: &Path, session: &mut Session) -> Result<bool, String> {
    let guid_of = |p: &Path| -> Result<Option<[u8; 24]>, String> {
        let file = MemberFile::open_read_only(p).map_err(|e| e.to_string())?;
        let mut read =
            |offset: u64, buf: &mut [u8]| file.read_exact_at(offset, buf).map_err(|e| e.source);
        Ok(umd_formats::ddf::probe(file.len_bytes(), &mut read)
            .ok()
            .flatten()
            .map(|d| d.container_guid()))
    };
    let Some(mine) = guid_of(path)? else {
        return Ok(false);
    };
    let disks = session.get("disks").map_err(|e| format!("disks: {e}"))?;
    for name in disks.split_whitespace() {
        let Ok(block) = session.get(&format!("dev-{name}/block")) else {
            continue;
        };
        if Path::new(&block) != path && guid_of(Path::new(&block))? == Some(mine) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// md's hot replace of `dev`, onto `with` if given (module doc).
fn replace(session: &mut Session, dev: &Path, with: Option<&Path>) -> Result<(), String> {
    let name = member_name(session, dev)?;
    let state_of = |session: &mut Session, member: &str| {
        session
            .get(&format!("dev-{member}/state"))
            .map_err(|e| format!("dev-{member}/state: {e}"))
    };
    let state = state_of(session, &name)?;
    if !has_word(&state, "in_sync") {
        return Err(format!(
            "{name}: {state}: only a working member is replaced (a failed one is rebuilt by --add)"
        ));
    }
    if let Some(file) = with {
        // The array takes the first idle spare: the one named must be the
        // only one.
        let spares = idle_spares(session)?;
        let wanted = match file.file_name().map(|n| n.to_string_lossy().into_owned()) {
            Some(n) if spares.contains(&n) => n,
            _ => add(session, file, "--with")?,
        };
        let others: Vec<_> = spares.into_iter().filter(|s| *s != wanted).collect();
        if !others.is_empty() {
            return Err(format!(
                "--with {wanted}: other spares wait too ({}), and the array copies onto the first; remove them or leave out --with",
                others.join(", ")
            ));
        }
    }
    store(session, &format!("dev-{name}/state"), "want_replacement")?;
    let slot = session
        .get(&format!("dev-{name}/slot"))
        .map_err(|e| format!("dev-{name}/slot: {e}"))?;
    let mut onto = None;
    for member in members(session)? {
        let replacing = has_word(&state_of(session, &member)?, "replacement");
        if replacing && session.get(&format!("dev-{member}/slot")).ok() == Some(slot.clone()) {
            onto = Some(member);
        }
    }
    match onto {
        Some(spare) => eprintln!(
            "umd manage: copying {name} onto {spare}; {name} fails once the copy is whole (umd status shows progress)"
        ),
        None => eprintln!(
            "umd manage: {name} wants a replacement; the copy starts once a spare is added (--add), or once the sync running now ends"
        ),
    }
    Ok(())
}

/// Whether md's comma list `state` (`dev-NAME/state`) holds `word`.
fn has_word(state: &str, word: &str) -> bool {
    state.split(',').any(|w| w == word)
}

/// The array's members' names, from the attribute list.
fn members(session: &mut Session) -> Result<Vec<String>, String> {
    let attrs = session.list().map_err(|e| format!("list: {e}"))?;
    Ok(attrs
        .iter()
        .filter_map(|a| a.strip_prefix("dev-")?.strip_suffix("/state"))
        .map(str::to_owned)
        .collect())
}

/// Members with no slot that have not failed.
fn idle_spares(session: &mut Session) -> Result<Vec<String>, String> {
    let mut spares = Vec::new();
    for member in members(session)? {
        let slot = session
            .get(&format!("dev-{member}/slot"))
            .unwrap_or_default();
        let state = session
            .get(&format!("dev-{member}/state"))
            .unwrap_or_default();
        if slot == "none" && !has_word(&state, "faulty") {
            spares.push(member);
        }
    }
    Ok(spares)
}

/// The control socket for `array` (module doc).
fn socket_path(array: Option<&Path>) -> Result<PathBuf, String> {
    match array {
        None => choose_socket(&paths::list_control_sockets(), &paths::run_dir()),
        Some(p) if p.exists() => Ok(p.to_path_buf()),
        Some(p) => {
            let named = paths::default_control_path(&p.to_string_lossy());
            if named.exists() {
                Ok(named)
            } else {
                Err(format!(
                    "{}: no such control socket, nor an array of that name in {}",
                    p.display(),
                    paths::run_dir().display()
                ))
            }
        }
    }
}

/// The member's name in `dev-NAME`: `dev` itself, or its file name; it
/// must be a member of the array.
fn member_name(session: &mut Session, dev: &Path) -> Result<String, String> {
    let name = dev
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: not a member name", dev.display()))?;
    match session.get(&format!("dev-{name}/state")) {
        Ok(_) => Ok(name),
        Err(ClientError::Engine(e)) if e.errno == Errno::ENOENT => {
            Err(format!("{name}: not a member of this array"))
        }
        Err(e) => Err(format!("dev-{name}/state: {e}")),
    }
}

fn store(session: &mut Session, attr: &str, value: &str) -> Result<(), String> {
    session
        .set(attr, value)
        .map_err(|e| format!("{attr} <- {value}: {e}"))
}

/// `remove`, retried while md still holds the failed member in its slot.
fn remove(session: &mut Session, name: &str) -> Result<(), String> {
    let attr = format!("dev-{name}/state");
    let deadline = Instant::now() + REMOVE_WAIT;
    loop {
        match session.set(&attr, "remove") {
            Ok(()) => return Ok(()),
            Err(ClientError::Engine(e)) if e.errno == Errno::EBUSY => {
                let state = session.get(&attr).unwrap_or_default();
                if !has_word(&state, "faulty") {
                    return Err(format!(
                        "{name}: EBUSY: an active member ({state}); fail it first with --fail"
                    ));
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{name}: EBUSY: still in its slot after {REMOVE_WAIT:?}"
                    ));
                }
                std::thread::sleep(REMOVE_RETRY);
            }
            Err(e) => return Err(format!("{attr} <- remove: {e}")),
        }
    }
}

//! `umd run`: assemble the members, start the array, serve it over NBD and
//! the control socket until SIGTERM or SIGINT, then stop cleanly.
//!
//! The order of a clean stop matters (nothing acknowledged may be lost, and
//! the superblocks must end up clean): stop accepting NBD clients and finish
//! their in-flight requests, then stop the array (the sync checkpoint is
//! kept, members are flushed, superblocks are written clean), then close the
//! control socket.

use super::container::{is_container, open_container, stop_container, RunningContainer};
use super::members::{candidates, open_and_probe_rw, Opened};
use super::Raid0LayoutArg;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use umd::control::{paths, AttrTree, ContainerDiskAttrs, ContainerTree, ControlServer};
use umd::nbd::{BlockExport, ExportError, Listen, NbdServer, ServerConfig};
use umd_engine::array::{Array, MetadataKind, Ro};
use umd_engine::native::NativeMetadata;
use umd_engine::start;
use umd_engine::{assemble, AssembleOptions, EngineError};
use umd_formats::info::MetadataFormat;
use umd_io::{AllowWrite, ArrayHost, HostParts, MemberFile};

/// Options of `umd run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Where to serve NBD: `unix:PATH` or `tcp:ADDR:PORT` (loopback unless an
    /// address is given). Default: a Unix socket next to the control socket.
    #[arg(long)]
    nbd: Option<String>,
    /// Control socket path. Default: `<run dir>/<array name>.ctl`.
    #[arg(long)]
    control: Option<PathBuf>,
    /// raid0 layout for multi-zone arrays whose metadata does not record it.
    #[arg(long, value_enum)]
    raid0_layout: Option<Raid0LayoutArg>,
    /// Start a raid4/5/6 that is both dirty (not shut down cleanly) and
    /// degraded, as md's `start_dirty_degraded`: stripes that were being
    /// written when it stopped may rebuild wrong data.
    #[arg(long)]
    force: bool,
    /// For containers (DDF): run only this subarray, by index or name
    /// (default: all of them).
    #[arg(long)]
    subarray: Option<String>,
    /// For containers: do not start `umd mon` (run one yourself; until one
    /// runs, redundant subarrays stay read-only and writes to clean arrays
    /// wait).
    #[arg(long)]
    no_mon: bool,
    /// What a configuration change (growing `stripe_cache_size`, changing
    /// `raid_disks`) does while an external metadata manager has not yet
    /// recorded the array dirty: fail with EAGAIN for the caller to retry
    /// (md 2008-2017, the default), or wait for the manager (md today).
    #[arg(long, value_enum, default_value_t = AllowWriteArg::Eagain)]
    allow_write: AllowWriteArg,
    /// Member devices or image files, in any order.
    #[arg(required = true)]
    members: Vec<PathBuf>,
}

/// `--allow-write`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum AllowWriteArg {
    /// Fail with EAGAIN; the caller retries after the acknowledgement.
    Eagain,
    /// Wait for the acknowledgement, holding only the configuration lock.
    Wait,
}

impl From<AllowWriteArg> for AllowWrite {
    fn from(a: AllowWriteArg) -> Self {
        match a {
            AllowWriteArg::Eagain => AllowWrite::Eagain,
            AllowWriteArg::Wait => AllowWrite::Wait,
        }
    }
}

/// Adapts the host to the NBD server's export interface.
struct Export(Arc<ArrayHost>);

fn export_error(e: umd_io::HostError) -> ExportError {
    ExportError {
        errno: e.errno,
        message: e.message,
    }
}

impl BlockExport for Export {
    fn size_bytes(&self) -> u64 {
        self.0.size_bytes()
    }
    fn block_size_preferred(&self) -> u32 {
        // NBD wants a power of two; a full stripe (which may not be one) is
        // rounded down to one.
        let bytes = self.0.preferred_io_bytes().clamp(4096, 1 << 20);
        1 << bytes.ilog2()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), ExportError> {
        self.0.read(offset, buf).map_err(export_error)
    }
    fn read_batch(&self, reads: &mut [(u64, &mut [u8])], results: &mut [Result<(), ExportError>]) {
        assert_eq!(reads.len(), results.len(), "one result per read");
        self.0
            .read_many(reads, |i, error| results[i] = Err(export_error(error)));
    }
    fn write_announce(&self, offset: u64, len: u64) {
        self.0.announce_write(offset, len);
    }
    fn write_withdraw(&self, offset: u64, len: u64) {
        self.0.withdraw_write(offset, len);
    }
    fn write(&self, offset: u64, data: &[u8], fua: bool) -> Result<(), ExportError> {
        self.0.write(offset, data, fua).map_err(export_error)
    }
    fn flush(&self) -> Result<(), ExportError> {
        self.0.flush().map_err(export_error)
    }
    fn trim(&self, offset: u64, len: u64) -> Result<(), ExportError> {
        // md passes discards down only where members support them and parity
        // stays right; ignoring a trim is always safe (its data stays readable).
        let _ = (offset, len);
        Ok(())
    }
    fn write_zeroes(&self, offset: u64, len: u64, fua: bool) -> Result<(), ExportError> {
        self.0.write_zeroes(offset, len, fua).map_err(export_error)
    }
    fn client_opened(&self) {
        self.0.opened();
    }
    fn client_closed(&self) {
        self.0.closed();
    }
}

/// Adapts the host to the control server's attribute interface.
struct Tree(Arc<ArrayHost>);

impl AttrTree for Tree {
    fn get(&self, name: &str) -> Result<String, EngineError> {
        self.0.get(name)
    }
    fn set(&self, name: &str, value: &str) -> Result<(), EngineError> {
        self.0.set(name, value)
    }
    fn names(&self) -> Vec<String> {
        self.0.attr_names()
    }
}

#[allow(clippy::needless_pass_by_value)] // clap hands each verb its arguments by value
pub(crate) fn run(args: RunArgs) -> Result<ExitCode, String> {
    let opened = args
        .members
        .iter()
        .map(|p| open_and_probe_rw(p))
        .collect::<Result<Vec<_>, _>>()?;
    if is_container(&opened) {
        let container = open_container(
            &opened,
            args.subarray.as_deref(),
            args.force,
            args.allow_write.into(),
        )?;
        return serve_container(&args, &container);
    }
    if args.subarray.is_some() {
        return Err("--subarray: the members are not a container".to_owned());
    }
    let (host, name) = open_opened(opened, &args.members, args.raid0_layout, args.force)?;
    let control_path = control_path(&args, &name);
    let nbd_listen = nbd_listen(&args, &control_path)?;
    let control = ControlServer::bind(&control_path, Arc::new(Tree(host.clone())))
        .map_err(|e| format!("{}: control socket: {e}", control_path.display()))?;
    let notifier = control.notifier();
    host.set_notifier(Box::new(move |attr| notifier.notify(attr)));
    let control = control.spawn();
    let nbd = NbdServer::bind(
        &nbd_listen,
        Arc::new(Export(host.clone())),
        ServerConfig {
            export_name: name.clone(),
            ..ServerConfig::default()
        },
    )
    .map_err(|e| format!("{nbd_listen}: NBD listener: {e}"))?
    .spawn();
    eprintln!(
        "umd: {name}: serving on {nbd_listen}, control {}",
        control_path.display()
    );
    wait_for_signal()?;
    eprintln!("umd: {name}: stopping");
    nbd.shutdown();
    let stopped = host.shutdown();
    control.shutdown();
    stopped.map_err(|e| format!("{name}: stop: {e}"))?;
    eprintln!("umd: {name}: stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

fn control_path(args: &RunArgs, name: &str) -> PathBuf {
    args.control
        .clone()
        .unwrap_or_else(|| paths::default_control_path(name))
}

fn nbd_listen(args: &RunArgs, control_path: &std::path::Path) -> Result<Listen, String> {
    match &args.nbd {
        Some(s) => s.parse::<Listen>().map_err(|e| format!("--nbd {s}: {e}")),
        None => Ok(Listen::Unix(control_path.with_extension("nbd"))),
    }
}

/// Serve a container's subarrays: one NBD export and one `<index>/`
/// attribute directory each, then stop them as mdadm --stop does.
fn serve_container(args: &RunArgs, container: &RunningContainer) -> Result<ExitCode, String> {
    let name = container.name.clone();
    let control_path = control_path(args, &name);
    let nbd_listen = nbd_listen(args, &control_path)?;
    let disks = container
        .disks
        .iter()
        .map(|d| ContainerDiskAttrs {
            name: d.name.clone(),
            path: std::fs::canonicalize(&d.path).unwrap_or_else(|_| d.path.clone()),
            size_kib: d.size_bytes / 1024,
        })
        .collect();
    let subtrees: Vec<(String, Arc<dyn AttrTree>)> = container
        .subarrays
        .iter()
        .map(|s| {
            let tree: Arc<dyn AttrTree> = Arc::new(Tree(s.host.clone()));
            (s.index.to_string(), tree)
        })
        .collect();
    let tree = Arc::new(ContainerTree::new(container.format, disks, subtrees));
    let control = ControlServer::bind(&control_path, tree.clone())
        .map_err(|e| format!("{}: control socket: {e}", control_path.display()))?;
    let notifier = control.notifier();
    tree.set_notifier(Box::new(move |attr| notifier.notify(attr)));
    for s in &container.subarrays {
        let notifier = control.notifier();
        let prefix = s.index.to_string();
        s.host.set_notifier(Box::new(move |attr| {
            notifier.notify(&format!("{prefix}/{attr}"));
        }));
    }
    let control = control.spawn();
    let mut mon = if args.no_mon {
        None
    } else {
        Some(start_mon(&control_path)?)
    };
    let exports: Vec<(String, Arc<dyn BlockExport>)> = container
        .subarrays
        .iter()
        .map(|s| {
            let export: Arc<dyn BlockExport> = Arc::new(Export(s.host.clone()));
            (s.export.clone(), export)
        })
        .collect();
    let nbd = NbdServer::bind_exports(&nbd_listen, exports, ServerConfig::default())
        .map_err(|e| format!("{nbd_listen}: NBD listener: {e}"))?
        .spawn();
    let list: Vec<String> = container
        .subarrays
        .iter()
        .map(|s| format!("{} ({})", s.index, s.export))
        .collect();
    eprintln!(
        "umd: {name}: serving subarrays {} on {nbd_listen}, control {}",
        list.join(", "),
        control_path.display()
    );
    wait_for_signal()?;
    eprintln!("umd: {name}: stopping");
    nbd.shutdown();
    let outcome = stop_container(container);
    control.shutdown();
    if let Some(mon) = mon.as_mut() {
        reap_mon(mon);
    }
    outcome?;
    eprintln!("umd: {name}: stopped");
    Ok(ExitCode::SUCCESS)
}

/// How long the manager may take to exit once the container stopped.
const MON_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Start `umd mon` for the container, as mdadm starts mdmon.
fn start_mon(control_path: &std::path::Path) -> Result<std::process::Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("umd mon: {e}"))?;
    std::process::Command::new(exe)
        .arg("mon")
        .arg("--control")
        .arg(control_path)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("umd mon: {e}"))
}

/// The manager exits by itself once every subarray stopped; make sure.
fn reap_mon(mon: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + MON_EXIT_WAIT;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = mon.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = mon.kill();
    let _ = mon.wait();
}

/// Assemble `members` read-write and start the array in this process;
/// returns the running host and the array's name.
pub(crate) fn open_array(
    members: &[PathBuf],
    raid0_layout: Option<Raid0LayoutArg>,
    force: bool,
) -> Result<(Arc<ArrayHost>, String), String> {
    let opened = members
        .iter()
        .map(|p| open_and_probe_rw(p))
        .collect::<Result<Vec<_>, _>>()?;
    open_opened(opened, members, raid0_layout, force)
}

/// [`open_array`] on members already opened and probed.
fn open_opened(
    opened: Vec<Opened>,
    members: &[PathBuf],
    raid0_layout: Option<Raid0LayoutArg>,
    force: bool,
) -> Result<(Arc<ArrayHost>, String), String> {
    let cands = candidates(&opened, None)?;
    let options = AssembleOptions {
        raid0_layout: raid0_layout.map(Into::into),
    };
    let mut assembly = assemble(&cands, &options).map_err(|e| e.to_string())?;
    if let Some(r) = &assembly.reshape {
        return Err(format!(
            "{}: a reshape is in progress (at array sector {}); finish it first with \
             `umd grow --continue MEMBER...`",
            array_name(&assembly.name, &assembly.uuid.to_string()),
            r.position_sectors
        ));
    }
    // A PPL raid5 replays its logs first: a dirty and degraded one then
    // starts without --force, its logged stripes made consistent.
    let ppl = super::run_ppl::start(&opened, &mut assembly)?;
    let refusal = start::dirty_degraded_refusal(&assembly).filter(|_| ppl.is_none() && !force);
    if let Some(why) = refusal {
        return Err(format!(
            "{}: {why}",
            array_name(&assembly.name, &assembly.uuid.to_string())
        ));
    }
    for w in &assembly.warnings {
        eprintln!("umd: warning: {w}");
    }
    let version = match assembly.format {
        MetadataFormat::Ddf => unreachable!("containers are run by serve_container"),
        f => f.to_string(),
    };
    let name = array_name(&assembly.name, &assembly.uuid.to_string());
    let member_names = member_names(members);
    let fresh = cands
        .iter()
        .find(|c| c.info.array.events == assembly.events)
        .ok_or("no member carries the freshest events")?;
    let in_array = start::members_in_array(
        &assembly,
        &cands,
        opened.iter().map(|o| Some(o.metadata.clone())).collect(),
    );
    let mut native = NativeMetadata::load(in_array).map_err(|e| format!("superblocks: {e}"))?;
    let bitmap = start::load_bitmap(&assembly, &native, &mut |member, offset, buf| {
        opened[member]
            .file
            .read_exact_at(offset, buf)
            .map_err(|e| format!("{}: {e}", opened[member].path.display()))
    })
    .map_err(|e| format!("{name}: {e}"))?;
    let bitmap_config = bitmap.as_ref().map(|b| start::bitmap_config(b, fresh));
    if let Some(b) = bitmap {
        native
            .attach_bitmap(b)
            .map_err(|e| format!("{name}: bitmap: {e}"))?;
    }
    let metadata = MetadataKind::Native { version };
    let config = start::array_config(&assembly, fresh, &member_names, metadata, bitmap_config);
    let role_members = assembly.role_members();
    let files: Vec<Option<MemberFile>> = opened.into_iter().map(|o| Some(o.file)).collect();
    let parts = HostParts {
        files,
        member_names,
        role_members,
        geometry: assembly.geometry.clone(),
        member_map: assembly.member_map(),
        array_sectors: assembly.array_sectors,
        array: Array::new(config),
        native: Some(native),
        start: Ro::ReadWrite,
        allow_write: AllowWrite::default(),
    };
    let host = ArrayHost::start(parts).map_err(|e| format!("{name}: start: {e}"))?;
    if let Some(ppl) = ppl {
        host.enable_ppl(ppl.signature, &ppl.areas);
    }
    Ok((host, name))
}

/// The array's name for sockets and messages: md's name without any
/// `homehost:` prefix, else the UUID.
pub(crate) fn array_name(name: &str, uuid: &str) -> String {
    let short = name.rsplit(':').next().unwrap_or(name);
    let clean: String = short
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if clean.is_empty() {
        uuid.replace(':', "")
    } else {
        clean
    }
}

/// `dev-NAME` names: each member's file name, made unique.
pub(crate) fn member_names(paths: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let base = p.file_name().map_or_else(
            || format!("member{i}"),
            |n| n.to_string_lossy().into_owned(),
        );
        let base: String = base
            .chars()
            .map(|c| if c == '/' { '_' } else { c })
            .collect();
        let name = if names.contains(&base) {
            format!("{base}.{i}")
        } else {
            base
        };
        names.push(name);
    }
    names
}

fn wait_for_signal() -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("signal handler: {e}"))?;
    let _ = signals.forever().next();
    Ok(())
}

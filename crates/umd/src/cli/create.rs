//! `umd create`: write superblocks (and a bitmap) that make MEMBER... a new md array.
//!
//! The planning is the engine's ([`umd_engine::create`]); this verb does what
//! needs the operating system: open the members read-write (they must exist:
//! nothing is created or truncated), refuse members that already carry md or
//! DDF metadata unless `--force`, draw UUIDs from `/dev/urandom`, write every
//! planned block and flush each member. Nothing is written until every member
//! has been opened, probed and the whole plan accepted, so a refusal changes
//! nothing.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};
use umd_engine::create::{plan_create, CreatePlan, CreateSpec};
use umd_formats::probe::{probe, Metadata, ProbeError};
use umd_io::MemberFile;

/// The word that stands for an absent member, as in mdadm.
const MISSING: &str = "missing";
/// Where random UUIDs come from.
const RANDOM_SOURCE: &str = "/dev/urandom";
/// Array name when `--name` is not given.
const NAME_DEFAULT: &str = "umd";
/// Bytes of one UUID.
const UUID_BYTES: usize = 16;

/// Create a new md array on existing files or block devices.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// RAID level: linear, raid0, raid1, raid4, raid5, raid6, raid10 (or 0, 1, 4, 5, 6,
    /// 10); with `--metadata ddf` also `container` (an empty container).
    #[arg(long, short = 'l')]
    pub(super) level: String,
    /// Number of roles; must equal the number of MEMBER arguments.
    #[arg(long = "raid-devices", short = 'n')]
    pub(super) raid_devices: u32,
    /// Chunk size in KiB (default 512 for striped levels).
    #[arg(long, short = 'c')]
    pub(super) chunk: Option<u32>,
    /// Layout by mdadm name (left-symmetric, n2, f2, o2, ...) or number.
    #[arg(long, alias = "parity", short = 'p')]
    pub(super) layout: Option<String>,
    /// Metadata format: 0.90, 1.0, 1.1, 1.2, or ddf (a DDF container, as mdadm
    /// -e ddf makes; given members of an existing container, a new virtual
    /// disk in its free space).
    #[arg(long, short = 'e', default_value = "1.2")]
    pub(super) metadata: String,
    /// Write-intent bitmap: none or internal.
    #[arg(long, short = 'b', value_enum, default_value_t = BitmapArg::None)]
    pub(super) bitmap: BitmapArg,
    /// Data per bitmap bit in KiB (a power of two, at least 4); default 64 MiB.
    #[arg(long)]
    bitmap_chunk: Option<u32>,
    /// How the array survives a crash mid-write: `resync` (the default; a
    /// bitmap narrows it) or `ppl` (raid5, 1.x: a partial parity log on
    /// every member closes the write hole, no resync after a crash).
    #[arg(long, value_enum, default_value_t = ConsistencyArg::Resync)]
    pub(super) consistency_policy: ConsistencyArg,
    /// Space used on each member in KiB (DDF only; default: the most every
    /// member offers).
    #[arg(long, short = 'z')]
    pub(super) size: Option<u64>,
    /// Array name (at most 32 bytes; DDF virtual disks: 16).
    #[arg(long, short = 'N')]
    pub(super) name: Option<String>,
    /// Mark the array in sync: skip the initial resync.
    #[arg(long)]
    pub(super) assume_clean: bool,
    /// Overwrite members that already carry md or DDF metadata.
    #[arg(long, short = 'f')]
    pub(super) force: bool,
    /// Seed for the random identifiers of DDF metadata (GUIDs, refnums), for
    /// reproducible tests; default: drawn from /dev/urandom.
    #[arg(long, hide = true)]
    pub(super) random_seed: Option<u64>,
    /// Member files or block devices, in role order; `missing` for an absent one.
    #[arg(required = true)]
    pub(super) members: Vec<PathBuf>,
}

/// `--bitmap` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BitmapArg {
    /// No write-intent bitmap.
    None,
    /// A bitmap inside the metadata area of every member.
    Internal,
}

/// `--consistency-policy` choices (md's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ConsistencyArg {
    /// Resync after an unclean stop (with a bitmap: only dirty chunks).
    Resync,
    /// Partial parity log (raid5).
    Ppl,
}

/// md's level number for a `--level` word.
pub(super) fn parse_level(text: &str) -> Result<i32, String> {
    Ok(match text {
        "linear" | "-1" => -1,
        "raid0" | "0" | "stripe" => 0,
        "raid1" | "1" | "mirror" => 1,
        "raid4" | "4" => 4,
        "raid5" | "5" => 5,
        "raid6" | "6" => 6,
        "raid10" | "10" => 10,
        other => {
            return Err(format!(
                "--level {other}: unknown (linear, raid0, raid1, raid4, raid5, raid6, raid10)"
            ))
        }
    })
}

pub(super) fn is_missing(path: &Path) -> bool {
    path.as_os_str() == MISSING
}

/// Open a member read-write and refuse it if it already carries metadata
/// (unless `force`); a probe that reads garbage is not metadata.
fn open_member(path: &Path, force: bool) -> Result<MemberFile, String> {
    let file = MemberFile::open_read_write(path).map_err(|e| e.to_string())?;
    let kind = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let is_block = {
        use std::os::unix::fs::FileTypeExt;
        kind.file_type().is_block_device()
    };
    if !kind.is_file() && !is_block {
        return Err(format!(
            "{}: not a regular file or block device",
            path.display()
        ));
    }
    let mut read =
        |offset: u64, buf: &mut [u8]| file.read_exact_at(offset, buf).map_err(|e| e.source);
    let found = match probe(file.len_bytes(), &mut read) {
        Ok(Metadata::V0_90(sb)) => Some(format!("an md 0.90 superblock (level {})", sb.level)),
        Ok(Metadata::V1(sb)) => Some(format!(
            "an md 1.{} superblock of array {:?}",
            sb.minor(),
            sb.name()
        )),
        Ok(Metadata::Ddf(_)) => Some("DDF container metadata".to_string()),
        Ok(_) => Some("metadata".to_string()),
        Err(ProbeError::NotFound) => None,
        Err(ProbeError::Io { offset, source }) => {
            return Err(format!(
                "{}: read at byte {offset} failed: {source}",
                path.display()
            ))
        }
        Err(e) => Some(format!("damaged or conflicting metadata ({e})")),
    };
    match found {
        Some(what) if !force => Err(format!(
            "{}: already holds {what}; use --force to overwrite it",
            path.display()
        )),
        _ => Ok(file),
    }
}

fn random_bytes(len: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; len];
    File::open(RANDOM_SOURCE)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("{RANDOM_SOURCE}: {e}"))?;
    Ok(buf)
}

fn uuid_from(bytes: &[u8]) -> [u8; UUID_BYTES] {
    let mut u = [0u8; UUID_BYTES];
    u.copy_from_slice(&bytes[..UUID_BYTES]);
    u
}

/// Build the engine's spec from the arguments and the opened members.
fn spec_for(args: &CreateArgs, files: &[Option<MemberFile>]) -> Result<CreateSpec, String> {
    let random = random_bytes(UUID_BYTES * (1 + files.len()))?;
    let mut uuids = random.chunks_exact(UUID_BYTES).map(uuid_from);
    let uuid = uuids.next().ok_or("no random bytes")?;
    let ctime_seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("system clock before 1970: {e}"))?
        .as_secs();
    Ok(CreateSpec {
        level: parse_level(&args.level)?,
        raid_disks: args.raid_devices,
        chunk_kib: args.chunk,
        layout: args.layout.clone(),
        metadata: args.metadata.clone(),
        bitmap: args.bitmap == BitmapArg::Internal,
        bitmap_chunk_kib: args.bitmap_chunk,
        name: args
            .name
            .clone()
            .unwrap_or_else(|| NAME_DEFAULT.to_string()),
        assume_clean: args.assume_clean,
        member_bytes: files
            .iter()
            .map(|f| f.as_ref().map(MemberFile::len_bytes))
            .collect(),
        member_names: args
            .members
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        uuid,
        device_uuids: uuids.collect(),
        ctime_seconds,
        ppl: args.consistency_policy == ConsistencyArg::Ppl,
    })
}

/// Write every planned block, then flush each member.
fn write_plan(plan: &CreatePlan, files: &[Option<MemberFile>]) -> Result<(), String> {
    assert_eq!(plan.members.len(), files.len(), "one write list per member");
    for (writes, file) in plan.members.iter().zip(files) {
        let Some(file) = file else {
            assert!(writes.is_empty(), "nothing is written to a missing member");
            continue;
        };
        for w in writes {
            file.write_all_at(w.offset_bytes, &w.bytes)
                .map_err(|e| e.to_string())?;
        }
        file.sync_data().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Run `umd create`.
#[allow(clippy::needless_pass_by_value)] // the dispatcher hands each verb its arguments
pub(crate) fn run(args: CreateArgs) -> Result<ExitCode, String> {
    if args.metadata == "ddf" {
        return super::create_ddf::run(&args);
    }
    if args.size.is_some() {
        return Err("--size: only with --metadata ddf (native arrays use whole members)".into());
    }
    let mut files = Vec::with_capacity(args.members.len());
    let mut seen: Vec<PathBuf> = Vec::new();
    for path in &args.members {
        if is_missing(path) {
            files.push(None);
            continue;
        }
        let canonical = path
            .canonicalize()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if seen.contains(&canonical) {
            return Err(format!("{}: given twice", path.display()));
        }
        seen.push(canonical);
        files.push(Some(open_member(path, args.force)?));
    }
    let spec = spec_for(&args, &files)?;
    let plan = plan_create(&spec).map_err(|e| e.message)?;
    write_plan(&plan, &files)?;
    let present: Vec<String> = args
        .members
        .iter()
        .filter(|p| !is_missing(p))
        .map(|p| p.display().to_string())
        .collect();
    println!(
        "umd: {}; run it with: umd run {}",
        plan.summary,
        present.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

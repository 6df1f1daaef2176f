//! `umd create --metadata ddf`: a DDF container (and a virtual disk in it) on
//! MEMBER..., or a new virtual disk in the container the members already form.
//!
//! The planning is the engine's ([`umd_engine::create::ddf`]); this file does
//! what needs the operating system: open and probe the members, decide between
//! a new container and the one they hold, refuse foreign metadata without
//! `--force` naming the member, draw the random seed from `/dev/urandom`
//! (or `--random-seed`), read the host name and the clock, then write every
//! planned block and flush each member. Nothing is written until every member
//! was probed and the whole plan accepted.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use umd_engine::create::ddf::{plan_ddf_create, DdfCreatePlan, DdfCreateSpec, DdfMember};
use umd_formats::ddf::Ddf;
use umd_formats::probe::{probe, Metadata, ProbeError};
use umd_formats::{sb0, sb1, SECTOR_BYTES};
use umd_io::MemberFile;

use super::create::{is_missing, parse_level, CreateArgs};

/// The `--level` word for an empty container, as mdadm has it.
const LEVEL_CONTAINER: &str = "container";
/// Where the random seed comes from.
const RANDOM_SOURCE: &str = "/dev/urandom";
/// Where the host name comes from (mdadm's `gethostname`).
const HOSTNAME_SOURCE: &str = "/proc/sys/kernel/hostname";
/// Host name when it cannot be read.
const HOSTNAME_FALLBACK: &str = "localhost";
/// md's superblock magic as the first 4 bytes of a little-endian superblock.
const MD_MAGIC_LE: [u8; 4] = sb1::MD_SB_MAGIC.to_le_bytes();
/// ... and of a big-endian 0.90 superblock.
const MD_MAGIC_BE: [u8; 4] = sb0::MD_SB_MAGIC.to_be_bytes();

/// One opened member and what it holds.
struct Opened {
    path: PathBuf,
    file: MemberFile,
    found: Found,
}

/// What a member's probe found.
enum Found {
    Nothing,
    Ddf(Box<Ddf>),
    Other(String),
}

/// Run `umd create --metadata ddf`.
pub(crate) fn run(args: &CreateArgs) -> Result<ExitCode, String> {
    let level = if args.level == LEVEL_CONTAINER {
        None
    } else {
        Some(parse_level(&args.level)?)
    };
    if args.bitmap != super::create::BitmapArg::None {
        return Err("--bitmap: DDF containers have no md bitmap".to_string());
    }
    let opened = open_members(&args.members)?;
    let all_ddf = opened.iter().all(|o| matches!(o.found, Found::Ddf(_)));
    let into_existing = level.is_some() && all_ddf;
    if !into_existing && !args.force {
        if let Some(o) = opened.iter().find(|o| !matches!(o.found, Found::Nothing)) {
            let what = match &o.found {
                Found::Ddf(_) => "DDF container metadata".to_string(),
                Found::Other(w) => w.clone(),
                Found::Nothing => unreachable!("filtered above"),
            };
            return Err(format!(
                "{}: already holds {what}; use --force to overwrite it",
                o.path.display()
            ));
        }
    }
    let mut members = Vec::with_capacity(opened.len());
    for o in &opened {
        members.push(member_spec(o, into_existing)?);
    }
    let spec = DdfCreateSpec {
        level,
        raid_disks: args.raid_devices,
        chunk_kib: args.chunk,
        layout: args.layout.clone(),
        size_kib: args.size,
        name: args.name.clone(),
        assume_clean: args.assume_clean,
        members,
        seed: match args.random_seed {
            Some(s) => s,
            None => random_seed()?,
        },
        now_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| format!("system clock before 1970: {e}"))?
            .as_secs(),
        hostname: hostname(),
    };
    let plan = plan_ddf_create(&spec).map_err(|e| e.message)?;
    write_plan(&plan, &opened)?;
    println!("umd: {}", plan.summary);
    Ok(ExitCode::SUCCESS)
}

/// Open every member read-write and probe it; members must be distinct
/// regular files or block devices, and none may be `missing`.
fn open_members(paths: &[PathBuf]) -> Result<Vec<Opened>, String> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        if is_missing(path) {
            return Err("missing: DDF virtual disks are created with every member".to_string());
        }
        let canonical = path
            .canonicalize()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if seen.contains(&canonical) {
            return Err(format!("{}: given twice", path.display()));
        }
        seen.push(canonical);
        let file = MemberFile::open_read_write(path).map_err(|e| e.to_string())?;
        check_kind(path)?;
        let found = probe_member(path, &file)?;
        out.push(Opened {
            path: path.clone(),
            file,
            found,
        });
    }
    Ok(out)
}

fn check_kind(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if kind.is_file() || kind.file_type().is_block_device() {
        Ok(())
    } else {
        Err(format!(
            "{}: not a regular file or block device",
            path.display()
        ))
    }
}

fn probe_member(path: &Path, file: &MemberFile) -> Result<Found, String> {
    let mut read =
        |offset: u64, buf: &mut [u8]| file.read_exact_at(offset, buf).map_err(|e| e.source);
    Ok(match probe(file.len_bytes(), &mut read) {
        Ok(Metadata::Ddf(d)) => Found::Ddf(d),
        Ok(Metadata::V0_90(sb)) => {
            Found::Other(format!("an md 0.90 superblock (level {})", sb.level))
        }
        Ok(Metadata::V1(sb)) => Found::Other(format!(
            "an md 1.{} superblock of array {:?}",
            sb.minor(),
            sb.name()
        )),
        Ok(_) => Found::Other("metadata".to_string()),
        Err(ProbeError::NotFound) => Found::Nothing,
        Err(ProbeError::Io { offset, source }) => {
            return Err(format!(
                "{}: read at byte {offset} failed: {source}",
                path.display()
            ))
        }
        Err(e) => Found::Other(format!("damaged or conflicting metadata ({e})")),
    })
}

/// The planner's view of one member.
fn member_spec(o: &Opened, into_existing: bool) -> Result<DdfMember, String> {
    let container = match (&o.found, into_existing) {
        (Found::Ddf(d), true) => Some((**d).clone()),
        _ => None,
    };
    let stale_superblocks = if into_existing {
        Vec::new()
    } else {
        md_superblock_spots(&o.file).map_err(|e| format!("{}: {e}", o.path.display()))?
    };
    Ok(DdfMember {
        name: o.path.display().to_string(),
        dev_bytes: o.file.len_bytes(),
        container,
        stale_superblocks,
    })
}

/// Byte offsets of the md superblock locations (0.90, 1.0, 1.1, 1.2) that
/// hold md's magic: what mdadm erases before it makes a container.
fn md_superblock_spots(file: &MemberFile) -> Result<Vec<u64>, String> {
    let sectors = file.len_bytes() / SECTOR_BYTES;
    let spots = [0u8, 1, 2]
        .into_iter()
        .filter_map(|minor| sb1::super_offset_sectors(minor, sectors))
        .chain(sb0::super_offset_sectors(sectors));
    let mut out = Vec::new();
    for s in spots {
        let at = s * SECTOR_BYTES;
        let mut magic = [0u8; 4];
        file.read_exact_at(at, &mut magic)
            .map_err(|e| format!("read at byte {at} failed: {}", e.source))?;
        if (magic == MD_MAGIC_LE || magic == MD_MAGIC_BE) && !out.contains(&at) {
            out.push(at);
        }
    }
    Ok(out)
}

fn random_seed() -> Result<u64, String> {
    let mut buf = [0u8; 8];
    File::open(RANDOM_SOURCE)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("{RANDOM_SOURCE}: {e}"))?;
    Ok(u64::from_le_bytes(buf))
}

fn hostname() -> String {
    std::fs::read_to_string(HOSTNAME_SOURCE)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| HOSTNAME_FALLBACK.to_string())
}

/// Write every planned block, then flush each member.
fn write_plan(plan: &DdfCreatePlan, opened: &[Opened]) -> Result<(), String> {
    assert_eq!(
        plan.members.len(),
        opened.len(),
        "one write list per member"
    );
    for (writes, o) in plan.members.iter().zip(opened) {
        for w in writes {
            o.file
                .write_all_at(w.offset_bytes, &w.bytes)
                .map_err(|e| e.to_string())?;
        }
        o.file.sync_data().map_err(|e| e.to_string())?;
    }
    Ok(())
}

//! `umd grow MEMBER... --raid-devices N --add FILE...`: grow a stopped
//! raid4/5/6 array by adding members, moving the data as md's data-offset
//! method does; `umd grow --continue MEMBER...` (all members, the added
//! ones too) resumes a reshape that was interrupted, whether umd or Linux
//! started it.
//!
//! The engine decides (`umd_engine::reshape`): which superblocks start the
//! grow, where each window may end so the old copy of every sector at or
//! above the checkpoint survives, and the final superblocks. This file only
//! performs it: each window is read through the old shape, written through
//! the new one as full stripes, made durable on every member, and only then
//! is the window's end written to every superblock as the new
//! `reshape_position`. A crash anywhere loses nothing: the next run starts
//! at the recorded checkpoint, whose old data is intact. The array is not
//! served while this runs (online reshape is not done yet). The steps and
//! their order are `umd_engine::reshape::drive`, which the simulator runs
//! on its disks too; this file gives it the member files.

use super::members::{open_and_probe_rw, Opened};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};
use umd_engine::reshape::drive::{self, GrowIo};
use umd_engine::reshape::superblocks::{self, metadata_end, Joining};
use umd_formats::probe::{Metadata, ProbeError};
use umd_formats::sb1::Superblock1;
use umd_io::MemberFile;

/// Largest window the copy moves at once (array sectors; 8 MiB).
const WINDOW_SECTORS_MAX: u64 = 16384;
/// Most the data moves down (sectors; 8 MiB): more room only makes the
/// first windows larger.
const GAP_SECTORS_MAX: u64 = 16384;

/// What to do.
pub(crate) struct OfflineGrow<'a> {
    /// The array's members (for `--continue`: every member, added ones too).
    pub(crate) members: &'a [PathBuf],
    /// Blank devices to add.
    pub(crate) add: &'a [PathBuf],
    /// The new number of members; required to start.
    pub(crate) raid_devices: Option<u32>,
    /// Window size limit in KiB (smaller: more checkpoints).
    pub(crate) window_kib: Option<u64>,
    /// New chunk size, KiB.
    pub(crate) chunk_kib: Option<u32>,
    /// New layout name (as `umd create --layout`).
    pub(crate) layout: Option<&'a str>,
}

impl OfflineGrow<'_> {
    fn changes_shape(&self) -> bool {
        self.chunk_kib.is_some() || self.layout.is_some()
    }
}

pub(crate) fn run(req: &OfflineGrow<'_>) -> Result<ExitCode, String> {
    let mut opened = req
        .members
        .iter()
        .map(|p| open_and_probe_rw(p))
        .collect::<Result<Vec<_>, _>>()?;
    let fresh = freshest(&opened)?;
    let reshaping = fresh.feature_map & umd_formats::sb1::FEATURE_RESHAPE_ACTIVE != 0;
    if reshaping {
        if req.changes_shape() {
            return Err(
                "a reshape is already in progress: finish it with --continue first".to_string(),
            );
        }
        if !req.add.is_empty() {
            return Err(
                "a reshape is already in progress: give every member (the added \
                 ones too) without --add to resume it"
                    .to_string(),
            );
        }
        if let Some(n) = req.raid_devices.filter(|&n| n != fresh.raid_disks) {
            return Err(format!(
                "a reshape to {} members is in progress; finish it before asking for {n}",
                fresh.raid_disks
            ));
        }
    } else if fresh.raid_disks == req.raid_devices.unwrap_or(fresh.raid_disks)
        && req.add.is_empty()
        && !req.changes_shape()
    {
        return Err(
            "nothing to do: no reshape in progress; give --raid-devices N and --add the \
             new members, or --chunk / --layout"
                .to_string(),
        );
    } else {
        let added = start(req, &mut opened, &fresh)?;
        opened.extend(added);
    }
    reconcile(&mut opened)?;
    copy(&opened, req.window_kib)?;
    Ok(ExitCode::SUCCESS)
}

fn sb1_of(o: &Opened) -> Result<&Superblock1, String> {
    match &o.metadata {
        Metadata::V1(sb) => Ok(sb),
        _ => Err(format!(
            "{}: umd grows arrays with 1.x superblocks only",
            o.path.display()
        )),
    }
}

fn freshest(opened: &[Opened]) -> Result<Superblock1, String> {
    let mut best: Option<&Superblock1> = None;
    for o in opened {
        let sb = sb1_of(o)?;
        if best.is_none_or(|b| sb.events > b.events) {
            best = Some(sb);
        }
    }
    best.cloned().ok_or_else(|| "no members given".to_string())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The member files, as the grow driver's I/O: member `m` is the `m`th.
struct Files<'a>(Vec<(&'a Path, &'a MemberFile)>);

impl<'a> Files<'a> {
    fn of(opened: &'a [Opened]) -> Self {
        Self(opened.iter().map(|o| (o.path.as_path(), &o.file)).collect())
    }

    fn fail(&self, member: usize, e: &umd_io::IoError) -> String {
        format!("{}: {e}", self.0[member].0.display())
    }
}

impl GrowIo for Files<'_> {
    type Error = String;

    fn read(&mut self, member: usize, offset_bytes: u64, buf: &mut [u8]) -> Result<(), String> {
        let file = self.0[member].1;
        file.read_exact_at(offset_bytes, buf)
            .map_err(|e| self.fail(member, &e))
    }

    fn write(&mut self, member: usize, offset_bytes: u64, buf: &[u8]) -> Result<(), String> {
        let file = self.0[member].1;
        file.write_all_at(offset_bytes, buf)
            .map_err(|e| self.fail(member, &e))
    }

    fn sync(&mut self, member: usize) -> Result<(), String> {
        let file = self.0[member].1;
        file.sync_data().map_err(|e| self.fail(member, &e))
    }
}

/// The superblocks of `opened` (1.x only).
fn sbs_of(opened: &[Opened]) -> Result<Vec<Superblock1>, String> {
    opened.iter().map(|o| sb1_of(o).cloned()).collect()
}

/// Start the grow: check the array, write the joining devices' superblocks
/// first, then the members'. Returns the joining devices, opened.
fn start(
    req: &OfflineGrow<'_>,
    opened: &mut [Opened],
    fresh: &Superblock1,
) -> Result<Vec<Opened>, String> {
    let want = req.raid_devices.unwrap_or(fresh.raid_disks);
    if want != fresh.raid_disks + req.add.len() as u32 {
        return Err(format!(
            "--raid-devices {want}: the array has {} members and {} are added; umd grows \
             by adding exactly the new members",
            fresh.raid_disks,
            req.add.len()
        ));
    }
    if !matches!(fresh.level, 4..=6) {
        return Err(format!(
            "level {}: umd grows raid4, raid5 and raid6",
            fresh.level
        ));
    }
    if opened.len() != fresh.raid_disks as usize {
        return Err(format!(
            "the array has {} members and {} were given: a grow needs every member",
            fresh.raid_disks,
            opened.len()
        ));
    }
    let sbs: Vec<Superblock1> = opened
        .iter()
        .map(|o| sb1_of(o).cloned())
        .collect::<Result<_, _>>()?;
    if sbs.iter().any(|s| s.minor() == 0) {
        return Err(
            "1.0 superblocks sit after the data: there is no room before it to move \
             the data into (md would need a backup file)"
                .to_string(),
        );
    }
    let target = superblocks::Target {
        chunk_sectors: req
            .chunk_kib
            .map(|k| k.checked_mul(2).ok_or("--chunk too large"))
            .transpose()?,
        layout: req
            .layout
            .map(|name| umd_engine::create::parse_layout(fresh.level, name))
            .transpose()
            .map_err(|e| e.to_string())?,
    };
    // Move the data down by as much as every member has free, in whole
    // chunks of the larger size, up to GAP_SECTORS_MAX.
    let chunk = u64::from(fresh.chunksize.max(target.chunk_sectors.unwrap_or(0)));
    let gap = superblocks::gap_sectors(&sbs, chunk, GAP_SECTORS_MAX);
    if gap == 0 {
        return Err(format!(
            "the reshape needs {chunk} free sectors (one chunk) before each member's data; \
             the members have {}",
            sbs.iter()
                .map(|s| s.data_offset.saturating_sub(metadata_end(s)))
                .min()
                .unwrap_or(0)
        ));
    }
    let mut joining = Vec::new();
    let mut files = Vec::new();
    let random = random_uuids(req.add.len())?;
    for (path, uuid) in req.add.iter().zip(random) {
        let file = MemberFile::open_read_write(path).map_err(|e| e.to_string())?;
        let mut read =
            |offset: u64, buf: &mut [u8]| file.read_exact_at(offset, buf).map_err(|e| e.source);
        match umd_formats::probe::probe(file.len_bytes(), &mut read) {
            Err(ProbeError::NotFound) => {}
            Ok(_) => {
                return Err(format!(
                    "{}: already carries md metadata; clear it before adding",
                    path.display()
                ))
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        joining.push(Joining {
            dev_sectors: file.len_bytes() / 512,
            device_uuid: uuid,
        });
        files.push((path.clone(), file));
    }
    let new = superblocks::start_reshape(&sbs, &joining, target, gap, now())?;
    drive::check_plan(&sbs, &new, WINDOW_SECTORS_MAX)?;
    let mut io = Files::of(opened);
    io.0.extend(files.iter().map(|(p, f)| (p.as_path(), f)));
    let members: Vec<usize> = (0..sbs.len()).collect();
    let joined: Vec<usize> = (sbs.len()..sbs.len() + files.len()).collect();
    drive::write_start(&mut io, &members, &joined, &new).map_err(|e| e.to_string())?;
    drop(io);
    let (members_new, joined_new) = new.split_at(sbs.len());
    let added = files
        .into_iter()
        .zip(joined_new)
        .map(|((path, file), sb)| Opened {
            path,
            file,
            metadata: Metadata::V1(sb.clone()),
        })
        .collect();
    for (o, sb) in opened.iter_mut().zip(members_new) {
        o.metadata = Metadata::V1(sb.clone());
    }
    eprintln!(
        "umd grow: {} -> {want} members, chunk {} -> {} sectors, layout {} -> {}; data moves \
         down {gap} sectors",
        fresh.raid_disks, fresh.chunksize, new[0].new_chunk, fresh.layout, new[0].new_layout
    );
    Ok(added)
}

fn random_uuids(n: usize) -> Result<Vec<[u8; 16]>, String> {
    use std::io::Read;
    let mut buf = vec![0u8; 16 * n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(buf
        .chunks_exact(16)
        .map(|c| {
            let mut u = [0u8; 16];
            u.copy_from_slice(c);
            u
        })
        .collect())
}

/// Bring every member to the freshest superblock's state (a crash may have
/// stopped a round of superblock writes half way); `opened` then carries
/// what is on disk.
fn reconcile(opened: &mut [Opened]) -> Result<(), String> {
    let mut sbs = sbs_of(opened)?;
    drive::reconcile(&mut Files::of(opened), &mut sbs).map_err(|e| e.to_string())?;
    for (o, sb) in opened.iter_mut().zip(sbs) {
        o.metadata = Metadata::V1(sb);
    }
    Ok(())
}

/// Copy window after window from the checkpoint on, then end the reshape,
/// with a progress bar (speed and time left) on a terminal and one line
/// per checkpoint otherwise.
fn copy(opened: &[Opened], window_kib: Option<u64>) -> Result<(), String> {
    let mut sbs = sbs_of(opened)?;
    let window_max = window_kib.map_or(WINDOW_SECTORS_MAX, |k| (k * 2).max(8));
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "reshape [{bar:40}] {percent:>3}% ({bytes}/{total_bytes}) {binary_bytes_per_sec} eta {eta}",
        )
        .map_err(|e| format!("progress bar template: {e}"))?
        .progress_chars("=>."),
    );
    let attended = !bar.is_hidden();
    let mut progress = |position: u64, end: u64| {
        if attended {
            bar.set_length(end * 512);
            bar.set_position(position * 512);
        } else {
            eprintln!("umd grow: checkpoint {position} of {end}");
        }
    };
    let done = drive::copy(
        &mut Files::of(opened),
        &mut sbs,
        window_max,
        &mut now,
        &mut progress,
    )
    .map_err(|e| e.to_string());
    bar.finish_and_clear();
    if let Some(reshape) = done? {
        eprintln!(
            "umd grow: done: {} members, {} sectors",
            reshape.new.raid_disks(),
            reshape.new.array_sectors()
        );
    }
    Ok(())
}

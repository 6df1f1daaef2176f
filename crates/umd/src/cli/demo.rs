//! `umd demo`: build a small md raid5 on temporary files and read it back, healthy and degraded.
//!
//! Self-contained (no images needed), so a newcomer sees umd's main job
//! work from a fresh checkout: four member files get md 1.2 superblocks and
//! a pseudo-random pattern placed by md's left-symmetric layout with XOR
//! parity; then the array is assembled from the members (in shuffled order),
//! read whole, read with one member missing, and read with one member made
//! unreadable, and every byte is compared with the pattern. The members are
//! real md members: `mdadm --examine` reads them and Linux assembles them.

use super::cat::stream;
use super::members::{candidates, open_and_probe};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use umd_engine::{assemble, AssembleOptions};
use umd_formats::sb1::Superblock1;
use umd_layout::geometry::{Geometry, GeometrySpec, StripeLayout, Target};
use umd_layout::parity;

const MEMBERS: u32 = 4;
const MEMBER_BYTES: u64 = 16 << 20;
/// mdadm's choice for small 1.2 members: data at 1 MiB.
const DATA_OFFSET_SECTORS: u64 = 2048;
const SUPER_OFFSET_SECTORS: u64 = 8;
const CHUNK_SECTORS: u32 = 128;
/// md layout 2, left-symmetric: mdadm's default for raid5.
const LEFT_SYMMETRIC: u32 = 2;
/// Unused dev_roles entries (formats.md §2.3: 0xffff = spare/none).
const ROLE_NONE: u16 = 0xffff;
/// A faulty device's dev_roles entry (formats.md §2.3).
const ROLE_FAULTY: u16 = 0xfffe;
/// mdadm's max_dev for up to 128 devices (formats.md §2.3).
const MAX_DEV: usize = 128;

pub(crate) fn run(dir: Option<&Path>) -> Result<ExitCode, String> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("umd-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let paths: Vec<PathBuf> = (0..MEMBERS)
        .map(|i| dir.join(format!("member{i}.img")))
        .collect();
    println!(
        "creating a {MEMBERS}-member md raid5 (metadata 1.2, 64 KiB chunks) in {}",
        dir.display()
    );
    let (geometry, pattern) = create(&paths)?;
    println!(
        "wrote {} MiB of pseudo-random data with parity; array size {} sectors",
        pattern.len() >> 20,
        geometry.array_sectors()
    );

    let shuffled = [
        paths[2].clone(),
        paths[0].clone(),
        paths[3].clone(),
        paths[1].clone(),
    ];
    check("all members, shuffled order", &shuffled, &pattern)?;
    check(
        "member1.img missing",
        &[paths[0].clone(), paths[2].clone(), paths[3].clone()],
        &pattern,
    )?;
    fail_member(&paths, 1)?;
    check(
        "member1.img failed: marked faulty, its data overwritten",
        &paths,
        &pattern,
    )?;
    println!("every read matched the data written, byte for byte");
    println!(
        "members are in {} (try: umd examine {}/member0.img)",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Write superblocks and a pattern; returns the geometry and the logical content.
fn create(paths: &[PathBuf]) -> Result<(Geometry, Vec<u8>), String> {
    let data_sectors = MEMBER_BYTES / 512 - DATA_OFFSET_SECTORS;
    let component = data_sectors / u64::from(CHUNK_SECTORS) * u64::from(CHUNK_SECTORS);
    let spec = GeometrySpec {
        level: 5,
        layout: LEFT_SYMMETRIC,
        chunk_sectors: CHUNK_SECTORS,
        raid_disks: MEMBERS,
        member_sectors: vec![component; MEMBERS as usize],
        component_sectors: component,
        raid0_layout: None,
    };
    let geometry = Geometry::new(&spec).map_err(|e| e.to_string())?;
    let uuid = demo_uuid();
    let files: Vec<File> = paths
        .iter()
        .map(|p| {
            let f = File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
            f.set_len(MEMBER_BYTES)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(f)
        })
        .collect::<Result<_, String>>()?;
    for (i, f) in files.iter().enumerate() {
        let sb = superblock(uuid, i as u32, data_sectors, component);
        f.write_all_at(&sb.to_bytes(), SUPER_OFFSET_SECTORS * 512)
            .map_err(|e| e.to_string())?;
    }
    let pattern = pseudo_random(
        geometry.array_sectors() as usize * 512,
        u64::from_le_bytes([7; 8]),
    );
    write_stripes(&geometry, &files, &pattern)?;
    Ok((geometry, pattern))
}

fn superblock(uuid: [u8; 16], dev_number: u32, data_sectors: u64, component: u64) -> Superblock1 {
    let mut dev_roles = vec![ROLE_NONE; MAX_DEV];
    for (r, slot) in dev_roles.iter_mut().take(MEMBERS as usize).enumerate() {
        *slot = r as u16;
    }
    let mut set_name = [0u8; 32];
    set_name[..8].copy_from_slice(b"umd:demo");
    let mut device_uuid = uuid;
    device_uuid[15] ^= dev_number as u8 + 1;
    Superblock1 {
        feature_map: 0,
        set_uuid: uuid,
        set_name,
        ctime: 0,
        level: 5,
        layout: LEFT_SYMMETRIC,
        size: component,
        chunksize: CHUNK_SECTORS,
        raid_disks: MEMBERS,
        bitmap_offset: 0,
        new_level: 0,
        reshape_position: 0,
        delta_disks: 0,
        new_layout: 0,
        new_chunk: 0,
        new_offset: 0,
        data_offset: DATA_OFFSET_SECTORS,
        data_size: data_sectors,
        super_offset: SUPER_OFFSET_SECTORS,
        recovery_offset: 0,
        dev_number,
        cnt_corrected_read: 0,
        device_uuid,
        devflags: 0,
        bblog_shift: 0,
        bblog_size: 0,
        bblog_offset: 0,
        utime: 0,
        events: 1,
        resync_offset: u64::MAX,
        dev_roles,
    }
}

/// Fail `victim` the way md records it: every other member's superblock
/// marks its role faulty (0xfffe) with a higher event count, and its own data
/// is overwritten, so reading it would give garbage.
fn fail_member(paths: &[PathBuf], victim: usize) -> Result<(), String> {
    for (i, p) in paths.iter().enumerate() {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .map_err(|e| e.to_string())?;
        if i == victim {
            let junk = vec![0xa5u8; (MEMBER_BYTES - DATA_OFFSET_SECTORS * 512) as usize];
            f.write_all_at(&junk, DATA_OFFSET_SECTORS * 512)
                .map_err(|e| e.to_string())?;
            continue;
        }
        let mut raw = vec![0u8; 4096];
        f.read_exact_at(&mut raw, SUPER_OFFSET_SECTORS * 512)
            .map_err(|e| e.to_string())?;
        let dev_sectors = MEMBER_BYTES / 512;
        let mut sb = Superblock1::parse(&raw, SUPER_OFFSET_SECTORS, dev_sectors)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        sb.dev_roles[victim] = ROLE_FAULTY;
        sb.events += 1;
        f.write_all_at(&sb.to_bytes(), SUPER_OFFSET_SECTORS * 512)
            .map_err(|e| e.to_string())?;
    }
    println!("failed member{victim}.img: marked faulty in the other superblocks, data overwritten");
    Ok(())
}

/// Place each stripe's data chunks by the layout and write XOR parity.
fn write_stripes(geometry: &Geometry, files: &[File], pattern: &[u8]) -> Result<(), String> {
    let chunk_bytes = CHUNK_SECTORS as usize * 512;
    let data_disks = (MEMBERS - 1) as usize;
    let stripe_bytes = chunk_bytes * data_disks;
    let mut layout = StripeLayout::default();
    let mut copies = Vec::new();
    let mut p = vec![0u8; chunk_bytes];
    for (s, stripe_data) in pattern.chunks(stripe_bytes).enumerate() {
        let chunks: Vec<&[u8]> = stripe_data.chunks(chunk_bytes).collect();
        let first_sector = (s * stripe_bytes / 512) as u64;
        let Target::Striped { data, stripe } = geometry.locate(first_sector, &mut copies).target
        else {
            return Err("raid5 maps to stripes".into());
        };
        geometry.stripe_layout(stripe, &mut layout);
        let at = (DATA_OFFSET_SECTORS + data.dev_sector) * 512;
        for (j, chunk) in chunks.iter().enumerate() {
            let role = layout.data_roles[j] as usize;
            files[role]
                .write_all_at(chunk, at)
                .map_err(|e| e.to_string())?;
        }
        parity::xor_gen(&chunks, &mut p);
        files[layout.p_role as usize]
            .write_all_at(&p, at)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Assemble `members`, read the whole array, compare with `pattern`.
fn check(label: &str, members: &[PathBuf], pattern: &[u8]) -> Result<(), String> {
    let opened = members
        .iter()
        .map(|p| open_and_probe(p))
        .collect::<Result<Vec<_>, _>>()?;
    let assembly = assemble(&candidates(&opened, None)?, &AssembleOptions::default())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(pattern.len());
    let failed_members = stream(&assembly, &opened, &mut out).map_err(|e| e.to_string())?;
    if out != pattern {
        return Err(format!("{label}: data read back differs from data written"));
    }
    let missing = assembly.missing_roles();
    let note = if failed_members.is_empty() {
        String::new()
    } else {
        format!(
            ", read errors on {} so it was rebuilt from parity",
            failed_members.join(", ")
        )
    };
    println!(
        "  {label}: {} MiB identical (roles missing: {missing:?}{note})",
        out.len() >> 20
    );
    Ok(())
}

/// A fresh array UUID from the clock and process id (no randomness needed:
/// it only has to differ between arrays).
fn demo_uuid() -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos ^ u64::from(std::process::id()).rotate_left(32);
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&splitmix(&mut state).to_le_bytes());
    uuid[8..].copy_from_slice(&splitmix(&mut state).to_le_bytes());
    uuid
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&splitmix(&mut state).to_le_bytes());
    }
    v.truncate(len);
    v
}

//! Every md member image in the shared real-image set probes as its README
//! documents, and every real superblock writes back byte for byte.
//!
//! The facts checked here come from the image README (made by mdadm and the
//! kernel), not from our own output. Missing images fail the test unless
//! `UMD_SKIP_REAL_IMAGES=1` is set (style R19).

use std::io::Read;
use std::path::PathBuf;
use umd_formats::info::{MdInfo, MetadataFormat, SlotState};
use umd_formats::probe::{probe_md, Metadata, ProbeError};
use umd_formats::sb0::Superblock0;
use umd_formats::sb1::{sb_bytes, Superblock1};
use umd_formats::Problem;

fn real_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("UMD_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/real"),
        PathBuf::from,
    );
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("UMD_SKIP_REAL_IMAGES").as_deref() == Ok("1"),
        "real images not found at {}; set UMD_TESTDATA or UMD_SKIP_REAL_IMAGES=1",
        dir.display()
    );
    None
}

/// Decompress one image (`.xz` or `.gz`) in memory.
fn load(dir: &std::path::Path, rel: &str) -> Vec<u8> {
    let path = dir.join(rel);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    if path.extension().is_some_and(|e| e == "xz") {
        lzma_rs::xz_decompress(&mut &raw[..], &mut out).expect("valid xz image");
    } else {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("valid gzip image");
    }
    out
}

/// Reads of `img`, failing over the byte range `bad` (start, length).
fn reader(img: &[u8], bad: (u64, u64)) -> impl FnMut(u64, &mut [u8]) -> std::io::Result<()> + '_ {
    move |off: u64, buf: &mut [u8]| {
        if off < bad.0 + bad.1 && bad.0 < off + buf.len() as u64 {
            return Err(std::io::Error::other("unreadable sector"));
        }
        let start = usize::try_from(off).map_err(std::io::Error::other)?;
        let src = img
            .get(start..start + buf.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn probe_bytes(img: &[u8]) -> Result<Option<Metadata>, ProbeError> {
    probe_md(img.len() as u64, &mut reader(img, (0, 0)))
}

fn probe_ok(img: &[u8], name: &str) -> Metadata {
    match probe_bytes(img) {
        Ok(Some(m)) => m,
        other => panic!("{name}: expected a superblock, got {other:?}"),
    }
}

/// What the README says about one 1.2 member.
struct V12 {
    file: &'static str,
    level: i32,
    layout: u32,
    chunk_sectors: u32,
    raid_disks: u32,
    size: u64,
    data_offset: u64,
    data_size: u64,
    events: u64,
    dev_number: u32,
    role: u32,
    resync_offset: u64,
    raid0_layout: bool,
    bblog_offset: i32,
    name: &'static str,
}

const IN_SYNC: u64 = u64::MAX;

#[allow(clippy::too_many_arguments)]
const fn v12(
    file: &'static str,
    level: i32,
    layout: u32,
    chunk_sectors: u32,
    raid_disks: u32,
    size: u64,
    offsets: (u64, u64),
    events: u64,
    dev_role: (u32, u32),
    resync_offset: u64,
    name: &'static str,
) -> V12 {
    V12 {
        file,
        level,
        layout,
        chunk_sectors,
        raid_disks,
        size,
        data_offset: offsets.0,
        data_size: offsets.1,
        events,
        dev_number: dev_role.0,
        role: dev_role.1,
        resync_offset,
        raid0_layout: level == 0,
        // mdadm: bad-block log right after the bitmap space, none for size 0 (formats.md §2.9).
        bblog_offset: if size == 0 { 8 } else { 16 },
        name,
    }
}

fn dissect_v12() -> Vec<V12> {
    let md = "dissect.volume/md/";
    let f = |n: &str| -> &'static str { Box::leak(format!("{md}{n}.bin.gz").into_boxed_str()) };
    let mut v = vec![
        v12(
            f("md-linear-1"),
            -1,
            0,
            0,
            2,
            0,
            (2048, 2048),
            0,
            (0, 0),
            IN_SYNC,
            "fedora:linear",
        ),
        v12(
            f("md-linear-2"),
            -1,
            0,
            0,
            2,
            0,
            (2048, 2048),
            0,
            (1, 1),
            IN_SYNC,
            "fedora:linear",
        ),
        v12(
            f("md-raid0-1"),
            0,
            1,
            1024,
            3,
            0,
            (4096, 4096),
            0,
            (0, 0),
            IN_SYNC,
            "fedora:raid0",
        ),
        v12(
            f("md-raid0-2"),
            0,
            1,
            1024,
            3,
            0,
            (4096, 4096),
            0,
            (1, 1),
            IN_SYNC,
            "fedora:raid0",
        ),
        v12(
            f("md-raid0-3"),
            0,
            1,
            1024,
            3,
            0,
            (4096, 2048),
            0,
            (2, 2),
            IN_SYNC,
            "fedora:raid0",
        ),
        v12(
            f("md-raid1-1"),
            1,
            0,
            0,
            2,
            4096,
            (2048, 4096),
            14,
            (0, 0),
            IN_SYNC,
            "fedora:raid1",
        ),
        v12(
            f("md-raid1-2"),
            1,
            0,
            0,
            2,
            4096,
            (2048, 4096),
            14,
            (1, 1),
            IN_SYNC,
            "fedora:raid1",
        ),
    ];
    for (lvl, layout, events) in [(4, 0, 20), (5, 2, 20)] {
        for (i, (dev, role)) in [(0, 0), (1, 1), (3, 2)].into_iter().enumerate() {
            let file = f(&format!("md-raid{lvl}-{}", i + 1));
            let name: &'static str = Box::leak(format!("fedora:raid{lvl}").into_boxed_str());
            let size = 4096;
            let off = (4096, 4096);
            v.push(v12(
                file,
                lvl,
                layout,
                1024,
                3,
                size,
                off,
                events,
                (dev, role),
                IN_SYNC,
                name,
            ));
        }
    }
    for i in 0..4u32 {
        let file = f(&format!("md-raid6-{}", i + 1));
        v.push(v12(
            file,
            6,
            2,
            1024,
            4,
            4096,
            (4096, 4096),
            9,
            (i, i),
            0x630,
            "fedora:raid6",
        ));
    }
    for i in 0..2u32 {
        let file = f(&format!("md-raid10-{}", i + 1));
        v.push(v12(
            file,
            10,
            0x102,
            1024,
            2,
            4096,
            (4096, 4096),
            10,
            (i, i),
            0x900,
            "fedora:raid10",
        ));
    }
    v
}

fn check_v12(m: &Metadata, e: &V12) {
    let Metadata::V1(sb) = m else {
        panic!("{}: expected 1.x, got {m:?}", e.file)
    };
    let info: MdInfo = sb.info();
    let a = &info.array;
    let d = &info.device;
    assert_eq!(info.format, MetadataFormat::V1 { minor: 2 }, "{}", e.file);
    assert_eq!(d.super_offset_sectors, 8, "{}", e.file);
    assert_eq!(a.level, e.level, "{} level", e.file);
    assert_eq!(a.layout, e.layout, "{} layout", e.file);
    assert_eq!(a.chunk_sectors, e.chunk_sectors, "{} chunk", e.file);
    assert_eq!(a.raid_disks, e.raid_disks, "{} raid_disks", e.file);
    assert_eq!(a.component_sectors, e.size, "{} size", e.file);
    assert_eq!(
        d.data_offset_sectors, e.data_offset,
        "{} data_offset",
        e.file
    );
    assert_eq!(d.data_sectors, e.data_size, "{} data_size", e.file);
    assert_eq!(a.events, e.events, "{} events", e.file);
    assert_eq!(d.dev_id, e.dev_number, "{} dev_number", e.file);
    let active = SlotState::Active {
        role: e.role,
        recovery_offset_sectors: None,
    };
    assert_eq!(d.slot, active, "{} role", e.file);
    assert_eq!(
        a.resync_offset_sectors, e.resync_offset,
        "{} resync_offset",
        e.file
    );
    assert_eq!(a.clean, e.resync_offset == IN_SYNC, "{} clean", e.file);
    assert_eq!(
        a.raid0_layout_recorded, e.raid0_layout,
        "{} RAID0_LAYOUT",
        e.file
    );
    assert_eq!(a.name, e.name, "{} name", e.file);
    assert_eq!(sb.max_dev(), 128, "{} max_dev", e.file);
    assert_eq!(sb.bblog_offset, e.bblog_offset, "{} bblog_offset", e.file);
    assert_eq!(sb.bblog_size, 8, "{} bblog_size", e.file);
    assert!(a.bitmap.is_none() && a.reshape.is_none(), "{}", e.file);
    // Every member of the set has the same roster: one Active entry per role.
    let mut roles: Vec<u32> = a
        .roster
        .iter()
        .map(|r| match r.slot {
            SlotState::Active { role, .. } => role,
            other => panic!("{}: unexpected roster slot {other:?}", e.file),
        })
        .collect();
    roles.sort_unstable();
    assert_eq!(
        roles,
        (0..e.raid_disks).collect::<Vec<_>>(),
        "{} roster",
        e.file
    );
}

/// `write(parse(b)) == b` over the checksummed length of a 1.x superblock.
fn check_sb1_round_trip(img: &[u8], at: u64, file: &str) {
    let start = usize::try_from(at * 512).expect("small image");
    let bytes = &img[start..start + 4096];
    let sb = Superblock1::parse(bytes, at, img.len() as u64 / 512).expect("real superblock parses");
    let out = sb.to_bytes();
    assert_eq!(out.len(), sb_bytes(sb.max_dev()), "{file}");
    assert_eq!(out[..], bytes[..out.len()], "{file}: 1.x round trip");
}

fn check_sb0_round_trip(img: &[u8], at: u64, file: &str) {
    let start = usize::try_from(at * 512).expect("small image");
    let bytes = &img[start..start + 4096];
    let sb = Superblock0::parse(bytes).expect("real 0.90 superblock parses");
    assert_eq!(sb.to_bytes()[..], bytes[..], "{file}: 0.90 round trip");
}

#[test]
fn dissect_md_v12_members_match_readme() {
    let Some(dir) = real_dir() else { return };
    let all = dissect_v12();
    assert_eq!(all.len(), 19, "every 1.2 member of the set is listed");
    for e in &all {
        let img = load(&dir, e.file);
        check_v12(&probe_ok(&img, e.file), e);
        check_sb1_round_trip(&img, 8, e.file);
    }
}

#[test]
fn raid4_raid5_roster_maps_dev_numbers_0_1_3_to_roles_0_1_2() {
    let Some(dir) = real_dir() else { return };
    let img = load(&dir, "dissect.volume/md/md-raid5-3.bin.gz");
    let info = probe_ok(&img, "raid5-3").infos().remove(0);
    let got: Vec<(u32, SlotState)> = info
        .array
        .roster
        .iter()
        .map(|r| (r.dev_id, r.slot))
        .collect();
    let act = |role| SlotState::Active {
        role,
        recovery_offset_sectors: None,
    };
    assert_eq!(got, vec![(0, act(0)), (1, act(1)), (3, act(2))]);
}

#[test]
fn util_linux_mdraid1_is_single_disk_raid0_v12() {
    let Some(dir) = real_dir() else { return };
    let file = "util-linux/mdraid-1.img.xz";
    let img = load(&dir, file);
    let m = probe_ok(&img, file);
    let e = v12(
        file,
        0,
        1,
        1024,
        1,
        0,
        (4096, 16384),
        0,
        (0, 0),
        IN_SYNC,
        "troy.t-8ch.de:0",
    );
    // feature_map 0: the layout field is not recorded as meaningful.
    let e = V12 {
        raid0_layout: false,
        ..e
    };
    check_v12(&m, &e);
    let info = m.infos().remove(0);
    assert_eq!(
        info.array.uuid.to_string(),
        "77e61baf:c0b5d7d0:39cf575b:64d4878c"
    );
    let dev_uuid = umd_formats::info::ArrayUuid(info.device.device_uuid.expect("1.x has one"));
    assert_eq!(dev_uuid.to_string(), "379f6ef9:e75a12c1:11f1d883:ff168e1d");
    check_sb1_round_trip(&img, 8, file);
}

struct V090 {
    file: &'static str,
    sb_sector: u64,
    size_kib: u64,
    events: u64,
    clean: bool,
    resync_offset: u64,
    uuid: &'static str,
    this_disk: u32,
    md_minor: u32,
}

fn check_v090(img: &[u8], e: &V090) {
    let m = probe_ok(img, e.file);
    let Metadata::V0_90(sb) = &m else {
        panic!("{}: expected 0.90, got {m:?}", e.file)
    };
    assert_eq!(sb.md_minor, e.md_minor, "{} md_minor", e.file);
    let info = sb.info();
    let (a, d) = (&info.array, &info.device);
    assert_eq!(
        info.format,
        MetadataFormat::V0_90 { big_endian: false },
        "{}",
        e.file
    );
    assert_eq!(d.super_offset_sectors, e.sb_sector, "{} location", e.file);
    assert_eq!(d.data_offset_sectors, 0, "{}", e.file);
    assert_eq!(d.data_sectors, e.sb_sector, "{} data_sectors", e.file);
    assert_eq!((a.level, a.raid_disks), (1, 2), "{} raid1 of 2", e.file);
    assert_eq!(a.component_sectors, e.size_kib * 2, "{} size", e.file);
    assert_eq!(a.events, e.events, "{} events", e.file);
    assert_eq!(a.clean, e.clean, "{} clean", e.file);
    assert_eq!(
        a.resync_offset_sectors, e.resync_offset,
        "{} resync",
        e.file
    );
    assert_eq!(a.uuid.to_string(), e.uuid, "{} uuid", e.file);
    assert_eq!(d.dev_id, e.this_disk, "{} this_disk", e.file);
    let role = SlotState::Active {
        role: e.this_disk,
        recovery_offset_sectors: None,
    };
    assert_eq!(d.slot, role, "{} role", e.file);
    let act = |role| SlotState::Active {
        role,
        recovery_offset_sectors: None,
    };
    let roster: Vec<_> = a.roster.iter().map(|r| (r.dev_id, r.slot)).collect();
    assert_eq!(roster, vec![(0, act(0)), (1, act(1))], "{} roster", e.file);
    assert!(a.bitmap.is_none() && a.reshape.is_none(), "{}", e.file);
    check_sb0_round_trip(img, e.sb_sector, e.file);
}

#[test]
fn v090_members_match_readme() {
    let Some(dir) = real_dir() else { return };
    let uuid = "810dec20:9b1b9deb:3699e86a:17e98710";
    let all = [
        V090 {
            file: "util-linux/mdraid.img.xz",
            sb_sector: 20352,
            size_kib: 10176,
            events: 4,
            clean: true,
            resync_offset: IN_SYNC,
            uuid: "37c76b91:011a05c5:d30c1fd4:c5c3dbbc",
            this_disk: 0,
            md_minor: 0,
        },
        V090 {
            file: "dissect.volume/md/md-90-raid1-1.bin.gz",
            sb_sector: 6016,
            size_kib: 3008,
            events: 12,
            clean: false,
            resync_offset: 2944,
            uuid,
            this_disk: 0,
            md_minor: 127,
        },
        V090 {
            file: "dissect.volume/md/md-90-raid1-2.bin.gz",
            sb_sector: 6016,
            size_kib: 3008,
            events: 12,
            clean: false,
            resync_offset: 2944,
            uuid,
            this_disk: 1,
            md_minor: 127,
        },
    ];
    for e in &all {
        check_v090(&load(&dir, e.file), e);
    }
}

#[test]
fn location_helpers_match_real_placements() {
    // formats.md §1.1 verified placements, and the images' sizes.
    assert_eq!(umd_formats::sb0::super_offset_sectors(20480), Some(20352));
    assert_eq!(umd_formats::sb0::super_offset_sectors(10240), Some(10112));
    assert_eq!(umd_formats::sb0::super_offset_sectors(6144), Some(6016));
    assert_eq!(umd_formats::sb0::super_offset_sectors(255), Some(0));
    assert_eq!(umd_formats::sb0::super_offset_sectors(127), None);
    assert_eq!(umd_formats::sb1::super_offset_sectors(2, 4096), Some(8));
    assert_eq!(umd_formats::sb1::super_offset_sectors(1, 4096), Some(0));
    // (N - 16) & !7: 4096 -> 4080, 4101 -> 4080, 4104 -> 4088.
    assert_eq!(umd_formats::sb1::super_offset_sectors(0, 4096), Some(4080));
    assert_eq!(umd_formats::sb1::super_offset_sectors(0, 4101), Some(4080));
    assert_eq!(umd_formats::sb1::super_offset_sectors(0, 4104), Some(4088));
    assert_eq!(umd_formats::sb1::super_offset_sectors(3, 4096), None);
}

#[test]
fn corrupt_checksum_is_reported_at_its_device_offset() {
    let Some(dir) = real_dir() else { return };
    let mut img = load(&dir, "dissect.volume/md/md-raid1-1.bin.gz");
    img[8 * 512 + 216] ^= 1;
    match probe_bytes(&img) {
        Err(ProbeError::Format(e)) => {
            assert_eq!(e.field, "sb_csum");
            assert_eq!(e.offset, 8 * 512 + 216);
            assert!(matches!(e.problem, Problem::BadChecksum { .. }), "{e}");
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    let mut img = load(&dir, "util-linux/mdraid.img.xz");
    img[20352 * 512 + 152] ^= 0x80;
    match probe_bytes(&img) {
        Err(ProbeError::Format(e)) => {
            assert_eq!((e.field, e.offset), ("sb_csum", 20352 * 512 + 152));
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
}

#[test]
fn two_valid_superblocks_are_ambiguous_and_misplaced_ones_ignored() {
    let Some(dir) = real_dir() else { return };
    // A 1.2 member that also carries a valid 0.90 superblock at its end.
    let mut img = load(&dir, "dissect.volume/md/md-raid1-1.bin.gz");
    let v090 = load(&dir, "dissect.volume/md/md-90-raid1-1.bin.gz");
    let at = 6016 * 512;
    img[at..at + 4096].copy_from_slice(&v090[at..at + 4096]);
    assert!(matches!(
        probe_bytes(&img),
        Err(ProbeError::Ambiguous { .. })
    ));
    // The 1.2 superblock copied to sector 0 claims sector 8: not a 1.1 candidate.
    let mut img = load(&dir, "dissect.volume/md/md-raid1-1.bin.gz");
    img.copy_within(8 * 512..9 * 512, 0);
    check_v12(&probe_ok(&img, "raid1 with copy"), &dissect_v12()[5]);
    // Nothing at all.
    assert!(matches!(probe_bytes(&vec![0u8; 1 << 20]), Ok(None)));
}

/// `probe` over `img` whose bytes at `[bad, bad + len)` cannot be read.
fn probe_with_bad_range(img: &[u8], bad: u64, len: u64) -> Result<Metadata, ProbeError> {
    umd_formats::probe::probe(img.len() as u64, &mut reader(img, (bad, len)))
}

/// An unreadable sector where some other format would sit (the end of the
/// device: 1.0, 0.90, DDF) does not hide a valid 1.2 superblock, as mdadm
/// takes a read error as "not this format"; with nothing valid found, the
/// read error stands, naming where.
#[test]
fn an_unreadable_location_does_not_hide_a_valid_superblock() {
    let Some(dir) = real_dir() else { return };
    let img = load(&dir, "dissect.volume/md/md-raid1-1.bin.gz");
    let end = img.len() as u64;
    match probe_with_bad_range(&img, end - 512, 512) {
        Ok(Metadata::V1(sb)) => assert_eq!(sb.super_offset, 8),
        other => panic!("expected the 1.2 superblock, got {other:?}"),
    }
    match probe_with_bad_range(&img, 8 * 512, 512) {
        Err(ProbeError::Io { offset, .. }) => assert_eq!(offset, 8 * 512),
        other => panic!("expected the read error, got {other:?}"),
    }
}

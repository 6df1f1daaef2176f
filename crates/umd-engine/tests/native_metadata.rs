//! Native metadata updates on real mdadm-made members: the written bytes
//! re-parse, change only what md_update_sb changes, and read back in the
//! host's `mdadm --examine` / `mdadm -X` as intended.
//!
//! Needs the real images (`../shared/testdata/real` beside the repository) and `gzip`/`xz`;
//! needs `mdadm` unless `UMD_SKIP_MDADM` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use umd_engine::bitmap::WriteIntentBitmap;
use umd_engine::native::{MetadataWrite, NativeMetadata, SuperblockUpdate, MAX_SECTOR};
use umd_engine::time::Time;
use umd_formats::probe::{probe, Metadata};
use umd_formats::sb1::FEATURE_BITMAP_OFFSET;

const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/real");
const UTIME: u64 = 1_700_000_000;

fn decompress(rel: &str) -> Vec<u8> {
    let path = Path::new(REAL).join(rel);
    assert!(path.exists(), "real image {} missing", path.display());
    let is_xz = path.extension().is_some_and(|e| e == "xz");
    let tool = if is_xz { "xz" } else { "gzip" };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(&path)
        .output()
        .expect("run decompressor");
    assert!(out.status.success(), "{tool} failed on {rel}");
    out.stdout
}

fn probe_image(img: &[u8]) -> Metadata {
    let mut read = |off: u64, buf: &mut [u8]| {
        let off = off as usize;
        buf.copy_from_slice(&img[off..off + buf.len()]);
        Ok(())
    };
    probe(img.len() as u64, &mut read).expect("probe")
}

fn apply(images: &mut [Vec<u8>], writes: &[MetadataWrite]) {
    for w in writes {
        assert_eq!(w.bytes.len() % 512, 0, "whole sectors");
        let at = w.offset_bytes as usize;
        images[w.member][at..at + w.bytes.len()].copy_from_slice(&w.bytes);
    }
}

fn mdadm(args: &[&str], img: &[u8], name: &str) -> Option<String> {
    if std::env::var_os("UMD_SKIP_MDADM").is_some() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("umd-native-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file: PathBuf = dir.join(name);
    std::fs::write(&file, img).expect("write image");
    let out = Command::new("mdadm")
        .args(args)
        .arg(&file)
        .output()
        .expect("mdadm missing: install it or set UMD_SKIP_MDADM");
    std::fs::remove_file(&file).ok();
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(" : ")?;
            (k.trim() == name).then_some(v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in mdadm output:\n{text}"))
}

/// The superblock with the fields md_update_sb may change set to `base`'s.
fn normalized(m: &Metadata, base: &Metadata) -> Metadata {
    match (m.clone(), base) {
        (Metadata::V1(mut sb), Metadata::V1(b)) => {
            sb.events = b.events;
            sb.utime = b.utime;
            sb.resync_offset = b.resync_offset;
            // Roles of devices not in the set are written faulty, as md does.
            for (role, base) in sb.dev_roles.iter_mut().zip(&b.dev_roles) {
                if *role == umd_formats::sb1::ROLE_FAULTY {
                    *role = *base;
                }
            }
            Metadata::V1(sb)
        }
        (Metadata::V0_90(mut sb), Metadata::V0_90(b)) => {
            sb.events = b.events;
            sb.utime = b.utime;
            sb.state = b.state;
            sb.recovery_cp = b.recovery_cp;
            sb.cp_events = b.cp_events;
            // Descriptors of devices not in the set are written faulty.
            for (d, base) in sb.disks.iter_mut().zip(b.disks.iter()) {
                if d.state == umd_formats::sb0::DISK_FAULTY {
                    *d = *base;
                }
            }
            sb.active_disks = b.active_disks;
            sb.working_disks = b.working_disks;
            sb.failed_disks = b.failed_disks;
            Metadata::V0_90(sb)
        }
        _ => panic!("metadata kind changed"),
    }
}

fn check_state(m: &Metadata, events: u64, clean: bool) {
    match m {
        Metadata::V1(sb) => {
            assert_eq!(sb.events, events);
            assert_eq!(sb.utime, UTIME);
            assert_eq!(sb.resync_offset, if clean { MAX_SECTOR } else { 0 });
        }
        Metadata::V0_90(sb) => {
            assert_eq!(sb.events, events);
            assert_eq!(u64::from(sb.utime), UTIME);
            assert_eq!(sb.state & umd_formats::sb0::STATE_CLEAN != 0, clean);
            assert_eq!(sb.recovery_cp, if clean { u32::MAX } else { 0 });
        }
        _ => panic!("not native"),
    }
}

fn run_set(files: &[&str]) {
    let mut images: Vec<Vec<u8>> = files.iter().map(|f| decompress(f)).collect();
    let originals: Vec<Metadata> = images.iter().map(|i| probe_image(i)).collect();
    let mut md = NativeMetadata::load(originals.iter().cloned().map(Some).collect()).expect("load");
    let e0 = md.events();
    for (step, clean) in [false, true].into_iter().enumerate() {
        let update = SuperblockUpdate {
            clean,
            resync_offset_sectors: MAX_SECTOR,
            faulty_members: Vec::new(),
            utime_seconds: UTIME,
            raid_disks: None,
        };
        let mut out = Vec::new();
        md.update(&update, &mut out);
        assert_eq!(out.len(), files.len(), "one superblock per member");
        apply(&mut images, &out);
        let events = e0 + step as u64 + 1;
        assert_eq!(md.events(), events);
        for (i, img) in images.iter().enumerate() {
            let now = probe_image(img);
            check_state(&now, events, clean);
            assert_eq!(
                normalized(&now, &originals[i]),
                originals[i],
                "{}",
                files[i]
            );
            let Some(text) = mdadm(&["--examine"], img, &format!("m{i}.img")) else {
                continue;
            };
            assert_eq!(
                field(&text, "State"),
                if clean { "clean" } else { "active" }
            );
            assert_eq!(field(&text, "Events"), events.to_string(), "{}", files[i]);
        }
    }
}

#[test]
fn updates_on_every_real_member_set() {
    let md = "dissect.volume/md/md-";
    let sets: &[&[&str]] = &[
        &["raid1-1", "raid1-2"],
        &["raid4-1", "raid4-2", "raid4-3"],
        &["raid5-1", "raid5-2", "raid5-3"],
        &["raid6-1", "raid6-2", "raid6-3", "raid6-4"],
        &["raid10-1", "raid10-2"],
        &["raid0-1", "raid0-2", "raid0-3"],
        &["linear-1", "linear-2"],
        &["90-raid1-1", "90-raid1-2"],
    ];
    for set in sets {
        let files: Vec<String> = set.iter().map(|f| format!("{md}{f}.bin.gz")).collect();
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        run_set(&refs);
    }
    run_set(&["util-linux/mdraid.img.xz"]);
    run_set(&["util-linux/mdraid-1.img.xz"]);
}

#[test]
fn faulty_member_gets_faulty_role_and_no_write() {
    let files = [
        "dissect.volume/md/md-raid1-1.bin.gz",
        "dissect.volume/md/md-raid1-2.bin.gz",
    ];
    let mut images: Vec<Vec<u8>> = files.iter().map(|f| decompress(f)).collect();
    let metas = images.iter().map(|i| Some(probe_image(i))).collect();
    let mut md = NativeMetadata::load(metas).expect("load");
    let mut out = Vec::new();
    let update = SuperblockUpdate {
        clean: false,
        resync_offset_sectors: MAX_SECTOR,
        faulty_members: vec![1],
        utime_seconds: UTIME,
        raid_disks: None,
    };
    md.update(&update, &mut out);
    assert!(
        out.iter().all(|w| w.member == 0),
        "a faulty member is not written"
    );
    apply(&mut images, &out);
    let Metadata::V1(sb) = probe_image(&images[0]) else {
        panic!("1.2")
    };
    assert_eq!(sb.dev_roles[1], umd_formats::sb1::ROLE_FAULTY);
    if let Some(text) = mdadm(&["--examine"], &images[0], "faulty.img") {
        assert!(field(&text, "Array State").starts_with("A."), "{text}");
    }
}

/// Give a real raid1 member an internal bitmap (in the free space between
/// the bad-block log and the data), then drive writes through it. `mdadm -X`
/// reads a regular file as a bitmap file, so it is given the bitmap area.
#[test]
fn bitmap_on_real_member_reads_back_in_mdadm() {
    const BITMAP_OFFSET_SECTORS: i32 = 32;
    let mut img = decompress("dissect.volume/md/md-raid1-1.bin.gz");
    let Metadata::V1(mut sb) = probe_image(&img) else {
        panic!("1.2")
    };
    sb.feature_map |= FEATURE_BITMAP_OFFSET;
    sb.bitmap_offset = BITMAP_OFFSET_SECTORS;
    let sb_at = (sb.super_offset * 512) as usize;
    let bytes = sb.to_bytes();
    img[sb_at..sb_at + bytes.len()].copy_from_slice(&bytes);
    let bsb = umd_formats::bitmap::BitmapSuper {
        version: umd_formats::bitmap::BITMAP_MAJOR_HI,
        uuid: sb.set_uuid,
        events: sb.events,
        events_cleared: sb.events,
        sync_size: sb.size,
        state: 0,
        chunksize: 64 * 1024,
        daemon_sleep: umd_engine::bitmap::DAEMON_SLEEP_DEFAULT_SECONDS,
        write_behind: 0,
        sectors_reserved: 8,
        nodes: 0,
        cluster_name: [0; 64],
    };
    let bm_at = sb_at + BITMAP_OFFSET_SECTORS as usize * 512;
    img[bm_at..bm_at + 4096].fill(0);
    img[bm_at..bm_at + 256].copy_from_slice(&bsb.to_bytes());
    let mut images = vec![img];
    let mut md = NativeMetadata::load(vec![Some(probe_image(&images[0]))]).expect("load");
    let offsets = md.bitmap_offsets_bytes();
    assert_eq!(offsets, vec![Some(bm_at as u64)]);
    let area = &images[0][bm_at..bm_at + 4096];
    let bitmap = WriteIntentBitmap::new(area, offsets, sb.size, md.events(), 512).expect("new");
    assert_eq!(bitmap.chunk_sectors(), 128);
    md.attach_bitmap(bitmap).expect("same uuid");
    let mut out = Vec::new();
    let dirty = SuperblockUpdate {
        clean: false,
        resync_offset_sectors: MAX_SECTOR,
        faulty_members: Vec::new(),
        utime_seconds: UTIME,
        raid_disks: None,
    };
    md.update(&dirty, &mut out);
    let bm = md.bitmap_mut().expect("attached");
    assert!(bm.start_write(0, 8));
    assert!(bm.start_write(1000, 300));
    bm.flush_set_bits(&mut out);
    apply(&mut images, &out);
    let events = md.events();
    if let Some(text) = mdadm(&["-X"], &images[0][bm_at..bm_at + 4096], "bitmap.img") {
        assert_eq!(field(&text, "Events"), events.to_string(), "{text}");
        assert!(
            field(&text, "Bitmap").contains("32 bits (chunks), 5 dirty"),
            "{text}"
        );
    }
    let bm = md.bitmap_mut().expect("attached");
    bm.end_write(0, 8, Time(0));
    bm.end_write(1000, 300, Time(0));
    out.clear();
    while let Some(t) = bm.poll_timeout() {
        bm.handle_timeout(t, &mut out);
    }
    assert!(bm.dirty_ranges().is_empty());
    md.update(
        &SuperblockUpdate {
            clean: true,
            ..dirty
        },
        &mut out,
    );
    apply(&mut images, &out);
    if let Some(text) = mdadm(&["-X"], &images[0][bm_at..bm_at + 4096], "bitmap2.img") {
        assert_eq!(field(&text, "Events"), (events + 1).to_string(), "{text}");
        assert_eq!(field(&text, "Events Cleared"), events.to_string(), "{text}");
        assert!(field(&text, "Bitmap").contains("0 dirty"), "{text}");
    }
}

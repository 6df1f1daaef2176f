//! Every DDF image in the real-image collection parses as its README documents.
//!
//! The images were made by mdadm (dissect.volume's DDF set, util-linux's blkid
//! fixture); the facts checked here come from the collection's README and from
//! formats.md §5.1, never from our own output. Corrupted copies must be refused
//! with an error naming the structure, and truncated input must never panic.

mod ddf_support;

use ddf_support::{images_dir, load, must_probe, probe_mem};
use umd_formats::ddf::{self, level, Ddf};
use umd_formats::info::SlotState;
use umd_formats::probe::ProbeError;

/// One dissect.volume DDF set: its README row.
struct Set {
    stem: &'static str,
    vd_name: &'static str,
    prl: u8,
    rlq: u8,
    members: usize,
    blocks: u64,
    /// README "member positions": file suffix k is at `pos[k - 1]`.
    pos: &'static [usize],
    md_level: i32,
    md_layout: u32,
    /// md raid_disk of file suffix k.
    md_role: &'static [u32],
    chunk_sectors: u32,
}

const SETS: &[Set] = &[
    Set {
        stem: "ddf-raid0",
        vd_name: "ddf-raid0",
        prl: level::PRL_RAID0,
        rlq: 0,
        members: 3,
        blocks: 8192,
        pos: &[1, 0, 2],
        md_level: 0,
        md_layout: 0,
        md_role: &[1, 0, 2],
        chunk_sectors: 1024,
    },
    Set {
        stem: "ddf-raid1",
        vd_name: "ddf-raid1",
        prl: level::PRL_RAID1,
        rlq: 0,
        members: 2,
        blocks: 8192,
        pos: &[1, 0],
        md_level: 1,
        md_layout: 0,
        md_role: &[1, 0],
        chunk_sectors: 0,
    },
    Set {
        stem: "ddf-raid4",
        vd_name: "ddf-raid4",
        prl: level::PRL_RAID4,
        rlq: 1,
        members: 2,
        blocks: 8192,
        pos: &[1, 0],
        md_level: 4,
        md_layout: 0,
        md_role: &[1, 0],
        chunk_sectors: 1024,
    },
    Set {
        stem: "ddf-raid5",
        vd_name: "ddf-raid5",
        prl: level::PRL_RAID5,
        rlq: 3,
        members: 3,
        blocks: 8192,
        pos: &[1, 0, 2],
        md_level: 5,
        md_layout: 2,
        md_role: &[1, 0, 2],
        chunk_sectors: 1024,
    },
    Set {
        stem: "ddf-raid6",
        vd_name: "ddf-raid6",
        prl: level::PRL_RAID6,
        rlq: 3,
        members: 4,
        blocks: 8192,
        pos: &[2, 0, 3, 1],
        md_level: 6,
        md_layout: 10,
        md_role: &[2, 0, 3, 1],
        chunk_sectors: 1024,
    },
    Set {
        stem: "ddf-raid10",
        vd_name: "ddf-raid10",
        prl: level::PRL_RAID1,
        rlq: 0,
        members: 2,
        blocks: 8192,
        // BVD seq 0: -2 pos0, -4 pos1; BVD seq 1: -1 pos0, -3 pos1.
        pos: &[0, 0, 1, 1],
        md_level: 10,
        md_layout: 0x102,
        md_role: &[2, 0, 3, 1],
        chunk_sectors: 1024,
    },
];

/// Header facts shared by every dissect.volume DDF file (README "DDF" paragraph).
fn check_dissect_header(d: &Ddf, image_bytes: usize, name: &str) {
    let (primary, secondary) = if image_bytes == 38 << 20 {
        (45056, 12288)
    } else {
        (40960, 8192)
    };
    for h in [d.anchor(), d.header()] {
        assert_eq!(h.primary_lba(), primary, "{name}");
        assert_eq!(h.secondary_lba(), Some(secondary), "{name}");
        assert_eq!(&h.revision(), b"01.02.00", "{name}");
        assert_eq!(h.workspace_len_sectors(), 32768, "{name}");
        assert_eq!(h.max_pd_entries(), 1023, "{name}");
        assert_eq!(h.max_vd_entries(), 255, "{name}");
        assert_eq!(h.max_partitions(), 64, "{name}");
        assert_eq!(h.config_record_len_sectors(), 7, "{name}");
        assert_eq!(h.max_primary_element_entries(), 256, "{name}");
    }
    assert_eq!(d.header().header_type(), ddf::HeaderType::Primary, "{name}");
    assert_eq!(d.header().lba(), primary, "{name}");
    assert!(d.notes().is_empty(), "{name}: {:?}", d.notes());
    assert!(d.container_guid().starts_with(b"Linux-MD"), "{name}");
    for vd in d.virt_disks() {
        assert_eq!(
            vd.state & ddf::VD_STATE_MASK,
            ddf::VD_STATE_OPTIMAL,
            "{name}"
        );
        assert_eq!(
            vd.init_state & ddf::VD_INIT_MASK,
            ddf::VD_INIT_FULL,
            "{name}"
        );
    }
}

#[test]
fn dissect_single_vd_sets() {
    let Some(dir) = images_dir() else { return };
    for set in SETS {
        let n_files = set.md_role.len();
        let mut refnums = Vec::new();
        let mut parsed = Vec::new();
        for k in 1..=n_files {
            let name = format!("{}-{k}.bin.gz", set.stem);
            let image = load(&dir, &format!("dissect.volume/ddf/{name}"));
            let d = must_probe(&image, &name);
            check_dissect_header(&d, image.len(), &name);
            assert_eq!(d.phys_disks().len(), n_files, "{name}: one PD per member");
            assert_eq!(d.virt_disks().len(), 1, "{name}");
            assert_eq!(d.virt_disks()[0].name(), set.vd_name, "{name}");
            assert_eq!(d.configs().len(), 1, "{name}");
            let c = &d.configs()[0];
            assert_eq!((c.prl, c.rlq), (set.prl, set.rlq), "{name}");
            assert_eq!(usize::from(c.prim_elmnt_count), set.members, "{name}");
            assert_eq!(c.blocks, set.blocks, "{name}");
            assert_eq!(d.disk_data().refnum, d.this_disk().refnum, "{name}");
            refnums.push(d.this_disk().refnum);
            parsed.push((name, d));
        }
        for (k, (name, d)) in parsed.iter().enumerate() {
            let c = &d.configs()[0];
            let me = refnums[k];
            assert_eq!(
                c.position_of(me),
                Some(set.pos[k]),
                "{name}: README position"
            );
            if set.md_level == 10 {
                assert_eq!(
                    (c.sec_elmnt_count, c.srl),
                    (2, level::SRL_SPANNED),
                    "{name}"
                );
                assert_eq!(
                    u32::from(c.sec_elmnt_seq),
                    set.md_role[k] / 2,
                    "{name}: BVD"
                );
            } else {
                // Every member of the set, in README position order.
                let mut by_pos: Vec<_> = (0..n_files).collect();
                by_pos.sort_by_key(|&i| set.pos[i]);
                let expect: Vec<u32> = by_pos.iter().map(|&i| refnums[i]).collect();
                assert_eq!(c.phys_refnum, expect, "{name}: phys_refnum order");
            }
            let infos = d.infos();
            assert_eq!(infos.len(), 1, "{name}");
            let info = &infos[0];
            assert_eq!(info.array.level, set.md_level, "{name}");
            assert_eq!(info.array.layout, set.md_layout, "{name}");
            assert_eq!(info.array.raid_disks as usize, n_files, "{name}");
            assert_eq!(info.array.chunk_sectors, set.chunk_sectors, "{name}");
            assert_eq!(info.array.name, set.vd_name, "{name}");
            assert_eq!(info.array.component_sectors, set.blocks, "{name}");
            assert_eq!(info.array.resync_offset_sectors, u64::MAX, "{name}");
            assert!(info.array.clean, "{name}");
            assert_eq!(info.device.dev_id, me, "{name}");
            assert_eq!(info.device.data_offset_sectors, 0, "{name}: data at LBA 0");
            assert_eq!(info.device.data_sectors, set.blocks, "{name}");
            let want = SlotState::Active {
                role: set.md_role[k],
                recovery_offset_sectors: None,
            };
            assert_eq!(info.device.slot, want, "{name}");
            assert_eq!(
                info.array.uuid,
                parsed[0].1.infos()[0].array.uuid,
                "{name}: same array"
            );
        }
    }
}

#[test]
fn array_sizes_follow_the_level() {
    let Some(dir) = images_dir() else { return };
    // array_blocks = data members x blocks per member (formats.md §4).
    let cases = [
        ("ddf-raid0-1", 3 * 8192),
        ("ddf-raid1-1", 8192),
        ("ddf-raid5-1", 2 * 8192),
        ("ddf-raid6-1", 2 * 8192),
        ("ddf-raid10-1", 2 * 8192),
    ];
    for (stem, sectors) in cases {
        let d = must_probe(
            &load(&dir, &format!("dissect.volume/ddf/{stem}.bin.gz")),
            stem,
        );
        assert_eq!(d.infos()[0].array.array_sectors, Some(sectors), "{stem}");
    }
}

#[test]
fn vd_uuid_is_sha1_of_vd_guid() {
    let Some(dir) = images_dir() else { return };
    let d = must_probe(
        &load(&dir, "dissect.volume/ddf/ddf-raid5-1.bin.gz"),
        "raid5",
    );
    // First 16 bytes of SHA-1 of the VD GUID, computed independently (hashlib).
    let want = "6f92819a:ab0160aa:a91330fa:87a449cb";
    assert_eq!(d.infos()[0].array.uuid.to_string(), want);
}

#[test]
fn two_vd_container() {
    let Some(dir) = images_dir() else { return };
    let mut refnums = Vec::new();
    for k in 1..=2 {
        let name = format!("ddf-raid0-raid1-{k}.bin.gz");
        let image = load(&dir, &format!("dissect.volume/ddf/{name}"));
        let d = must_probe(&image, &name);
        check_dissect_header(&d, image.len(), &name);
        let names: Vec<String> = d.virt_disks().iter().map(ddf::VirtDisk::name).collect();
        assert_eq!(names, ["ddf-raid0", "ddf-raid1"], "{name}");
        let infos = d.infos();
        assert_eq!(infos.len(), 2, "{name}");
        let (r0, r1) = (&infos[0], &infos[1]);
        assert_eq!((r0.array.level, r0.array.raid_disks), (0, 2), "{name}");
        assert_eq!((r1.array.level, r1.array.raid_disks), (1, 2), "{name}");
        assert_eq!(
            (r0.device.data_offset_sectors, r0.device.data_sectors),
            (0, 4096)
        );
        assert_eq!(
            (r1.device.data_offset_sectors, r1.device.data_sectors),
            (4096, 4096)
        );
        assert_ne!(r0.array.uuid, r1.array.uuid, "{name}");
        // README: -2 pos0, -1 pos1 in both VDs.
        let role = u32::from(k != 2);
        for info in &infos {
            let want = SlotState::Active {
                role,
                recovery_offset_sectors: None,
            };
            assert_eq!(info.device.slot, want, "{name}");
            assert_eq!(info.array.roster.len(), 2, "{name}");
        }
        refnums.push(d.this_disk().refnum);
    }
    assert_ne!(refnums[0], refnums[1]);
}

#[test]
fn util_linux_container_without_vd() {
    let Some(dir) = images_dir() else { return };
    let image = load(&dir, "util-linux/ddf-raid.img.xz");
    assert_eq!(image.len(), 102_400 * 512);
    let d = must_probe(&image, "ddf-raid.img");
    assert_eq!(d.anchor().primary_lba(), 69632);
    assert_eq!(d.anchor().secondary_lba(), None);
    assert_eq!(d.anchor().workspace_lba(), 36864);
    assert_eq!(&d.anchor().revision(), b"01.02.00");
    assert!(d.container_guid().starts_with(b"Linux-MD"));
    assert_eq!(d.phys_disks().len(), 2);
    assert!(d.virt_disks().is_empty());
    assert!(d.configs().is_empty());
    assert!(d.infos().is_empty());
}

/// Device byte offset of section `kind` of the header at `lba`, read raw.
fn section_byte(image: &[u8], header_lba: u64, kind: usize) -> usize {
    let h = header_lba as usize * 512;
    let at = h + 192 + kind * 8;
    let off = u32::from_be_bytes(image[at..at + 4].try_into().expect("4 bytes"));
    h + off as usize * 512
}

#[test]
fn corrupt_crc_is_refused_or_falls_back() {
    let Some(dir) = images_dir() else { return };
    let image = load(&dir, "dissect.volume/ddf/ddf-raid5-1.bin.gz");
    let dev = image.len();

    let mut bad = image.clone();
    bad[dev - 512 + 40] ^= 1;
    let err = probe_mem(&bad).expect_err("bad anchor CRC");
    let ProbeError::Format(e) = err else {
        panic!("{err}")
    };
    assert_eq!(
        (e.structure, e.field, e.offset),
        ("DDF anchor header", "crc", dev as u64 - 508)
    );

    // Primary PD records bad, secondary good: the secondary copy serves.
    let mut bad = image.clone();
    let pd = section_byte(&image, 40960, 1);
    bad[pd + 100] ^= 0x80;
    let d = must_probe(&bad, "primary PD corrupted");
    assert_eq!(d.header().lba(), 8192);
    assert_eq!(d.notes().len(), 1);
    assert!(
        d.notes()[0].contains("DDF physical disk records"),
        "{:?}",
        d.notes()
    );
    assert_eq!(d.infos()[0].array.level, 5);

    // Both copies bad: refused, naming the primary's structure and offset.
    let pd2 = section_byte(&image, 8192, 1);
    bad[pd2 + 100] ^= 0x80;
    let ProbeError::Format(e) = probe_mem(&bad).expect_err("both bad") else {
        panic!()
    };
    assert_eq!(e.structure, "DDF physical disk records");
    assert_eq!((e.field, e.offset), ("crc", pd as u64 + 4));

    // A VD configuration record and disk_data, in both copies.
    for (kind, structure) in [(3, "DDF VD configuration record"), (4, "DDF disk data")] {
        let mut bad = image.clone();
        for lba in [40960, 8192] {
            bad[section_byte(&image, lba, kind) + 70] ^= 1;
        }
        let ProbeError::Format(e) = probe_mem(&bad).expect_err(structure) else {
            panic!()
        };
        assert_eq!(e.structure, structure);
        assert_eq!(e.offset, section_byte(&image, 40960, kind) as u64 + 4);
    }
}

#[test]
fn corrupt_controller_without_secondary_is_refused() {
    let Some(dir) = images_dir() else { return };
    let mut image = load(&dir, "util-linux/ddf-raid.img.xz");
    let ctrl = section_byte(&image, 69632, 0);
    image[ctrl + 300] ^= 4;
    let ProbeError::Format(e) = probe_mem(&image).expect_err("bad controller") else {
        panic!()
    };
    assert_eq!((e.structure, e.field), ("DDF controller data", "crc"));
    assert_eq!(e.offset, ctrl as u64 + 4);
}

#[test]
fn truncated_and_mangled_input_never_panics() {
    let Some(dir) = images_dir() else { return };
    let image = load(&dir, "dissect.volume/ddf/ddf-raid10-2.bin.gz");
    for keep in [
        0,
        1,
        511,
        512,
        4096,
        1 << 20,
        14 << 20,
        image.len() - 1,
        image.len(),
    ] {
        let tail = &image[image.len() - keep..];
        umd_formats::fuzz::ddf(tail);
        // A device that is the tail alone: small ones hold no DDF, large ones
        // point outside themselves.
        let r = probe_mem(tail);
        assert!(
            !matches!(r, Ok(Some(_))) || keep == image.len(),
            "keep {keep}"
        );
    }
    // Short reads: the device claims more bytes than the callback can give.
    let mut read = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        let start = offset as usize;
        let src = image
            .get(start..start + buf.len())
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    };
    let r = ddf::probe(image.len() as u64 + 512 * 1024, &mut read);
    assert!(!matches!(r, Ok(Some(_))));
    // Byte flips all over the metadata region of the tail, through the fuzz entry.
    let tail_len = 30 << 20;
    let mut tail = image[image.len() - tail_len..].to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = tail_len - 1 - (x as usize % (tail_len / 2));
        tail[at] ^= (x >> 32) as u8 | 1;
        umd_formats::fuzz::ddf(&tail);
    }
}

#[test]
fn anchor_search_is_opt_in() {
    let Some(dir) = images_dir() else { return };
    let mut image = load(&dir, "dissect.volume/ddf/ddf-raid5-2.bin.gz");
    let dev = image.len();
    image.copy_within(dev - 512.., dev - 4096);
    image[dev - 512..].fill(0);
    assert!(
        matches!(probe_mem(&image), Ok(None)),
        "mdadm's default looks at the last sector"
    );
    let mut read = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        let start = offset as usize;
        buf.copy_from_slice(&image[start..start + buf.len()]);
        Ok(())
    };
    let found = ddf::probe_with(dev as u64, &mut read, ddf::AnchorSearch::Extended);
    let d = found.expect("valid").expect("found by the search");
    assert_eq!(d.infos()[0].array.level, 5);
}

/// Every DDF image of the collection, by path relative to the images directory.
fn all_ddf_images(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("dissect.volume/ddf"))
        .expect("dissect.volume/ddf is listed")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".bin.gz"))
        .map(|n| format!("dissect.volume/ddf/{n}"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 20, "README lists 20 dissect.volume DDF files");
    names.push("util-linux/ddf-raid.img.xz".to_owned());
    names
}

/// Bitwise reflected CRC-32 (0xEDB88320), no inversions, CRC field as all ones:
/// formats.md §5.1 written out independently of the library.
fn reference_crc_ok(structure: &[u8]) -> bool {
    let mut crc = 0u32;
    for (i, &b) in structure.iter().enumerate() {
        crc ^= u32::from(if (4..8).contains(&i) { 0xff } else { b });
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    structure[4..8] == crc.to_be_bytes()
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// (primary, secondary) header LBAs read raw from the anchor (formats.md §5.1).
fn raw_copy_lbas(image: &[u8]) -> (u64, Option<u64>) {
    let anchor = &image[image.len() - 512..];
    let secondary = be_u64(anchor, 104);
    (
        be_u64(anchor, 96),
        (secondary != u64::MAX).then_some(secondary),
    )
}

/// VD configuration records in the config section of the header at `lba`,
/// counted raw by their magic.
fn raw_vd_config_count(image: &[u8], lba: u64) -> usize {
    let h = lba as usize * 512;
    let record_bytes = usize::from(u16::from_be_bytes([image[h + 134], image[h + 135]])) * 512;
    let len = u32::from_be_bytes(image[h + 220..h + 224].try_into().expect("4")) as usize * 512;
    let start = section_byte(image, lba, 3);
    image[start..start + len]
        .chunks_exact(record_bytes)
        .filter(|r| r[..4] == 0xEEEE_EEEEu32.to_be_bytes())
        .count()
}

fn apply(image: &[u8], writes: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = image.to_vec();
    for (off, bytes) in writes {
        let at = usize::try_from(*off).expect("offset fits");
        out[at..at + bytes.len()].copy_from_slice(bytes);
    }
    out
}

#[test]
fn rewrite_reproduces_every_image() {
    let Some(dir) = images_dir() else { return };
    for name in all_ddf_images(&dir) {
        let image = load(&dir, &name);
        let d = must_probe(&image, &name);
        let writes = d.write_metadata();
        let (primary, secondary) = raw_copy_lbas(&image);
        let copies: Vec<u64> = std::iter::once(primary).chain(secondary).collect();
        let configs = raw_vd_config_count(&image, primary);
        // Per copy: controller, PD records, VD records, disk_data, header,
        // each VD config record; plus the anchor.
        assert_eq!(writes.len(), copies.len() * (5 + configs) + 1, "{name}");
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for (off, bytes) in &writes {
            let at = usize::try_from(*off).expect("offset fits");
            assert!(
                at + bytes.len() <= image.len(),
                "{name}: write beyond the device"
            );
            assert!(
                image[at..at + bytes.len()] == bytes[..],
                "{name}: write at {off} differs"
            );
            assert!(reference_crc_ok(bytes), "{name}: CRC at {off}");
            spans.push((*off, *off + bytes.len() as u64));
        }
        spans.sort_unstable();
        assert!(
            spans.windows(2).all(|w| w[0].1 <= w[1].0),
            "{name}: overlapping writes"
        );
        let anchor = (image.len() - 512) as u64;
        assert_eq!(
            writes.last().map(|w| w.0),
            Some(anchor),
            "{name}: anchor last"
        );
        for lba in copies {
            assert!(
                writes.iter().any(|w| w.0 == lba * 512 && w.1.len() == 512),
                "{name}"
            );
            // Config section (3): slot 0 holds the first record when any exists.
            let kinds = [0, 1, 2, 4].into_iter().chain((configs > 0).then_some(3));
            for kind in kinds {
                let sec = section_byte(&image, lba, kind) as u64;
                assert!(writes.iter().any(|w| w.0 == sec), "{name}: section {kind}");
            }
        }
    }
}

#[test]
fn edits_are_written_and_read_back() {
    let Some(dir) = images_dir() else { return };
    for name in all_ddf_images(&dir)
        .iter()
        .filter(|n| n.starts_with("dissect"))
    {
        let image = load(&dir, name);
        let mut d = must_probe(&image, name);
        let seq = d.header().seq();
        d.set_seq(seq + 1);
        let vd = &mut d.virt_disks_mut()[0];
        vd.state = (vd.state & !ddf::VD_STATE_MASK) | ddf::VD_STATE_DEGRADED;
        let vd_index = vd.index as usize;
        d.phys_disks_mut()[0].state |= ddf::PD_STATE_FAILED;
        d.configs_mut()[0].seqnum += 7;
        let written = apply(&image, &d.write_metadata());

        // The edited VD state, read raw from both copies' VD records.
        let (primary, secondary) = raw_copy_lbas(&image);
        for lba in std::iter::once(primary).chain(secondary) {
            let entry = section_byte(&written, lba, 2) + 64 + vd_index * 64;
            assert_eq!(written[entry + 32] & 7, 1, "{name}: raw VD state at {lba}");
            assert_eq!(
                be_u64(&written, lba as usize * 512 + 40) >> 32,
                u64::from(seq + 1)
            );
        }

        let back = must_probe(&written, name);
        assert_eq!(back.header().seq(), seq + 1, "{name}");
        assert_eq!(back.virt_disks(), d.virt_disks(), "{name}");
        assert_eq!(back.phys_disks(), d.phys_disks(), "{name}");
        assert_eq!(back.configs(), d.configs(), "{name}");
        assert_eq!(back.controller(), d.controller(), "{name}");
        assert_eq!(back.disk_data(), d.disk_data(), "{name}");
        assert_eq!(back.anchor().as_bytes(), d.anchor().as_bytes(), "{name}");
        assert!(back.notes().is_empty(), "{name}: {:?}", back.notes());
        assert_eq!(
            back.virt_disks()[0].state & ddf::VD_STATE_MASK,
            ddf::VD_STATE_DEGRADED
        );

        // The secondary copy carries the edits too: with the primary header
        // broken, the loader falls back to it and sees the same values.
        let mut no_primary = written.clone();
        no_primary[primary as usize * 512 + 300] ^= 1;
        let fallback = must_probe(&no_primary, name);
        assert_eq!(
            fallback.header().lba(),
            secondary.expect("dissect has two copies")
        );
        assert_eq!(fallback.header().seq(), seq + 1, "{name}");
        assert_eq!(fallback.virt_disks(), d.virt_disks(), "{name}");
        assert_eq!(fallback.configs(), d.configs(), "{name}");
    }
}

#[test]
fn corrupting_a_written_structure_is_refused() {
    let Some(dir) = images_dir() else { return };
    for name in [
        "dissect.volume/ddf/ddf-raid0-raid1-1.bin.gz",
        "util-linux/ddf-raid.img.xz",
    ] {
        let image = load(&dir, name);
        let d = must_probe(&image, name);
        let writes = d.write_metadata();
        let (primary, secondary) = raw_copy_lbas(&image);
        let per_copy = (writes.len() - 1) / if secondary.is_some() { 2 } else { 1 };
        for (i, (off, bytes)) in writes.iter().enumerate().take(per_copy) {
            let mut bad = apply(&image, &writes);
            let mid = usize::try_from(*off).expect("fits") + bytes.len() / 2;
            bad[mid] ^= 0x10;
            // The same structure in the other copy, or the loader would use it.
            if let Some(s) = secondary {
                let twin = &writes[i + per_copy];
                assert_eq!(
                    twin.0 - s * 512,
                    off - primary * 512,
                    "{name}: copies pair up"
                );
                bad[usize::try_from(twin.0).expect("fits") + bytes.len() / 2] ^= 0x10;
            }
            let err = probe_mem(&bad).expect_err("corrupt structure refused");
            let ProbeError::Format(e) = err else {
                panic!("{name}: {err}")
            };
            assert_eq!(e.field, "crc", "{name}: write at {off}: {e}");
        }
        let mut bad = image.clone();
        bad[image.len() - 512 + 200] ^= 1;
        assert!(probe_mem(&bad).is_err(), "{name}: corrupt anchor");
    }
}

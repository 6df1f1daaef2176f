//! Round trips and refusals for the md superblocks and the bitmap superblock.
//!
//! Generated valid structures must satisfy `parse(write(x)) == x`; corrupted
//! bytes (checksum, padding, unknown feature bits) must be refused naming the
//! field at fault; short input must be an error, never a panic. The byte-swapped
//! 0.90 case is built from a real little-endian superblock by the swap mdadm's
//! `--update=byteorder` performs (formats.md §1.2).

use proptest::prelude::*;
use std::io::Read;
use std::path::PathBuf;
use umd_formats::bitmap::BitmapSuper;
use umd_formats::checksum::sb1_csum;
use umd_formats::info::MetadataFormat;
use umd_formats::sb0::{Disk0, Superblock0, MD_SB_DISKS};
use umd_formats::sb1::{
    sb_bytes, super_offset_sectors, Superblock1, FEATURE_BITMAP_OFFSET, FEATURE_JOURNAL,
    FEATURE_MULTIPLE_PPLS, FEATURE_NEW_OFFSET, FEATURE_PPL, FEATURE_RAID0_LAYOUT,
};
use umd_formats::{FormatError, Problem};

/// Offset of `sb_csum` in a 1.x superblock (formats.md §2.2).
const SB1_CSUM_AT: usize = 216;
/// Offset of `feature_map` (formats.md §2.2).
const SB1_FEATURE_AT: usize = 8;
/// Offset of `pad3` (formats.md §2.2).
const SB1_PAD3_AT: usize = 224;
/// Offset of the 0.90 `sb_csum` (formats.md §1.3, word 38).
const SB0_CSUM_AT: usize = 152;
/// First reserved byte of the 0.90 constant section (word 16).
const SB0_RESERVED_AT: usize = 64;

fn reseal_sb1(b: &mut [u8]) {
    let csum = sb1_csum(b, SB1_CSUM_AT);
    b[SB1_CSUM_AT..SB1_CSUM_AT + 4].copy_from_slice(&csum.to_le_bytes());
}

/// A 1.x superblock and the device size it is valid on.
fn sb1_strategy() -> impl Strategy<Value = (Superblock1, u64)> {
    let ids = (any::<[u8; 16]>(), any::<[u8; 32]>(), any::<[u8; 16]>());
    let nums = any::<[u64; 8]>();
    let smalls = any::<[u32; 10]>();
    let shape = (
        prop::sample::select(vec![-4i32, -1, 0, 1, 4, 5, 6, 10]),
        0u32..=0x1fff,
        prop::collection::vec(any::<u16>(), 0..=1920),
        any::<bool>(),
        (any::<u8>(), any::<u8>(), any::<u16>()),
    );
    (ids, nums, smalls, shape).prop_map(|(ids, n, s, shape)| {
        let (level, mut fm, dev_roles, at_end, (devflags, bblog_shift, bblog_size)) = shape;
        if fm & FEATURE_PPL != 0 {
            fm &= !(FEATURE_MULTIPLE_PPLS | FEATURE_BITMAP_OFFSET | FEATURE_JOURNAL);
        }
        if fm & FEATURE_MULTIPLE_PPLS != 0 {
            fm &= !(FEATURE_BITMAP_OFFSET | FEATURE_JOURNAL);
        }
        if level != 0 {
            fm &= !FEATURE_RAID0_LAYOUT;
        }
        let sb_sectors = (sb_bytes(dev_roles.len() as u32) as u64).div_ceil(512);
        let data_size = 10 + n[0] % (1 << 40);
        let (super_offset, data_offset, dev_sectors) = if at_end {
            let dev = data_size + 16 + 8 + n[1] % 4096;
            let at = super_offset_sectors(0, dev).expect("large enough");
            (at, 0, dev)
        } else {
            let data_offset = 8 + sb_sectors + n[1] % (1 << 30);
            (8, data_offset, data_offset + data_size + n[2] % 4096)
        };
        let mut new_offset = s[0] as i32;
        if fm & FEATURE_NEW_OFFSET != 0 {
            let slack = if at_end {
                0
            } else {
                data_offset - 8 - sb_sectors
            };
            new_offset = new_offset.max(-(slack.min(i32::MAX as u64) as i32));
        }
        let mut bitmap_offset = s[1] as i32;
        if fm & FEATURE_BITMAP_OFFSET != 0 {
            bitmap_offset = bitmap_offset.max(-(super_offset.min(i32::MAX as u64) as i32));
        }
        let sb = Superblock1 {
            feature_map: fm,
            set_uuid: ids.0,
            set_name: ids.1,
            ctime: n[3],
            level,
            layout: s[2],
            size: n[4],
            chunksize: s[3],
            raid_disks: s[4],
            bitmap_offset,
            new_level: s[5] as i32,
            reshape_position: n[5],
            delta_disks: s[6] as i32,
            new_layout: s[7],
            new_chunk: s[8],
            new_offset,
            data_offset,
            data_size,
            super_offset,
            recovery_offset: n[6],
            dev_number: s[9],
            cnt_corrected_read: s[9].rotate_left(7),
            device_uuid: ids.2,
            devflags,
            bblog_shift,
            bblog_size,
            bblog_offset: s[0].rotate_left(3) as i32,
            utime: n[7],
            events: n[2],
            resync_offset: n[1],
            dev_roles,
        };
        (sb, dev_sectors)
    })
}

fn disk_strategy() -> impl Strategy<Value = Disk0> {
    any::<[u32; 5]>().prop_map(|d| Disk0 {
        number: d[0],
        major: d[1],
        minor: d[2],
        raid_disk: d[3],
        state: d[4],
    })
}

fn sb0_strategy() -> impl Strategy<Value = Superblock0> {
    (
        any::<[u32; 24]>(),
        any::<[u64; 3]>(),
        prop::array::uniform27(disk_strategy()),
        disk_strategy(),
        (any::<bool>(), 0u32..27, 0u32..=27),
    )
        .prop_map(
            |(w, q, disks, mut this_disk, (minor91, number, raid_disks))| {
                this_disk.number = number;
                Superblock0 {
                    big_endian: false,
                    found_at_sector: None,
                    minor_version: if minor91 { 91 } else { 90 },
                    patch_version: w[0],
                    gvalid_words: w[1],
                    set_uuid0: w[2],
                    ctime: w[3],
                    level: w[4] as i32,
                    size: w[5],
                    nr_disks: w[6],
                    raid_disks,
                    md_minor: w[7],
                    not_persistent: w[8],
                    set_uuid1: w[9],
                    set_uuid2: w[10],
                    set_uuid3: w[11],
                    utime: w[12],
                    state: w[13],
                    active_disks: w[14],
                    working_disks: w[15],
                    failed_disks: w[16],
                    spare_disks: w[17],
                    events: q[0],
                    cp_events: q[1],
                    recovery_cp: w[18],
                    reshape_position: q[2],
                    new_level: w[19] as i32,
                    delta_disks: w[20] as i32,
                    new_layout: w[21],
                    new_chunk: w[22],
                    layout: w[23],
                    chunk_size: w[0].rotate_left(9),
                    root_pv: w[1].rotate_left(3),
                    root_block: w[2].rotate_left(5),
                    disks: Box::new(disks),
                    this_disk,
                }
            },
        )
}

fn bitmap_strategy() -> impl Strategy<Value = BitmapSuper> {
    (
        prop::sample::select(vec![3u32, 4]),
        any::<[u8; 16]>(),
        any::<[u64; 3]>(),
        (
            any::<u32>(),
            9u32..32,
            1u32..,
            0u32..=16383,
            any::<[u32; 2]>(),
        ),
        prop::collection::vec(any::<u8>(), 64),
    )
        .prop_map(
            |(version, uuid, e, (state, shift, sleep, wb, r), name)| BitmapSuper {
                version,
                uuid,
                events: e[0],
                events_cleared: e[1],
                sync_size: e[2],
                state,
                chunksize: 1 << shift,
                daemon_sleep: sleep,
                write_behind: wb,
                sectors_reserved: r[0],
                nodes: r[1],
                cluster_name: name.try_into().expect("64 bytes generated"),
            },
        )
}

fn assert_field(r: Result<impl std::fmt::Debug, FormatError>, field: &str) -> Problem {
    match r {
        Err(e) => {
            assert_eq!(e.field, field, "{e}");
            e.problem
        }
        Ok(v) => panic!("expected an error in {field}, parsed {v:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sb1_parse_write_round_trip((sb, dev) in sb1_strategy()) {
        let bytes = sb.to_bytes();
        prop_assert_eq!(bytes.len(), 256 + 2 * sb.dev_roles.len());
        let back = Superblock1::parse(&bytes, sb.super_offset, dev).expect("valid by construction");
        prop_assert_eq!(&back, &sb);
        // The header is md's table (formats.md §2.2), checked independently.
        prop_assert_eq!(&bytes[0..4], &0xa92b_4efcu32.to_le_bytes()[..]);
        prop_assert_eq!(&bytes[128..136], &sb.data_offset.to_le_bytes()[..]);
        prop_assert_eq!(&bytes[200..208], &sb.events.to_le_bytes()[..]);
    }

    #[test]
    fn sb1_corruption_is_refused_by_field((sb, dev) in sb1_strategy(), pick in any::<prop::sample::Index>(), bit in 13u32..32) {
        let good = sb.to_bytes();
        let at = sb.super_offset;

        let mut b = good.clone();
        b[SB1_CSUM_AT + pick.index(4)] ^= 0x10;
        let p = assert_field(Superblock1::parse(&b, at, dev), "sb_csum");
        prop_assert!(matches!(p, Problem::BadChecksum { .. }), "{:?}", p);

        let mut b = good.clone();
        b[SB1_PAD3_AT + pick.index(32)] = 1;
        reseal_sb1(&mut b);
        prop_assert_eq!(assert_field(Superblock1::parse(&b, at, dev), "pad3"), Problem::NonZeroPad);

        let mut b = good.clone();
        b[12 + pick.index(4)] = 0x80;
        reseal_sb1(&mut b);
        prop_assert_eq!(assert_field(Superblock1::parse(&b, at, dev), "pad0"), Problem::NonZeroPad);

        let mut b = good.clone();
        let fm = sb.feature_map | (1 << bit);
        b[SB1_FEATURE_AT..SB1_FEATURE_AT + 4].copy_from_slice(&fm.to_le_bytes());
        reseal_sb1(&mut b);
        let p = assert_field(Superblock1::parse(&b, at, dev), "feature_map");
        prop_assert_eq!(p, Problem::UnknownFeature { bits: 1u64 << bit });

        // Found somewhere else than it says.
        assert_field(Superblock1::parse(&good, at + 8, dev + 8), "super_offset");

        let cut = pick.index(good.len());
        prop_assert!(Superblock1::parse(&good[..cut], at, dev).is_err());
    }

    #[test]
    fn sb0_parse_write_round_trip(sb in sb0_strategy()) {
        let bytes = sb.to_bytes();
        let back = Superblock0::parse(&bytes).expect("valid by construction");
        prop_assert_eq!(&back, &sb);
        prop_assert_eq!(&bytes[156..164], &sb.events.to_le_bytes()[..]);
        prop_assert_eq!(&bytes[3968..3972], &sb.this_disk.number.to_le_bytes()[..]);
    }

    #[test]
    fn sb0_corruption_is_refused_by_field(sb in sb0_strategy(), pick in any::<prop::sample::Index>()) {
        let good = sb.to_bytes();
        let mut b = good;
        b[SB0_CSUM_AT + pick.index(4)] ^= 0x04;
        let p = assert_field(Superblock0::parse(&b), "sb_csum");
        prop_assert!(matches!(p, Problem::BadChecksum { .. }), "{:?}", p);

        // A reserved byte with the checksum fixed up by the same 1.x-style
        // fold is still refused as padding, not as a checksum error.
        let mut b = good;
        let i = SB0_RESERVED_AT + pick.index(64);
        let word = i & !3;
        let old = u32::from_le_bytes(b[word..word + 4].try_into().expect("4 bytes"));
        b[i] ^= 0x01;
        let new = u32::from_le_bytes(b[word..word + 4].try_into().expect("4 bytes"));
        let csum = u32::from_le_bytes(b[SB0_CSUM_AT..SB0_CSUM_AT + 4].try_into().expect("4 bytes"));
        let sum = u64::from(csum) + u64::from(new) + u64::from(u32::MAX - old);
        let fixed = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
        b[SB0_CSUM_AT..SB0_CSUM_AT + 4].copy_from_slice(&fixed.to_le_bytes());
        let p = assert_field(Superblock0::parse(&b), "gstate_creserved");
        prop_assert_eq!(p, Problem::NonZeroPad);

        let cut = pick.index(good.len());
        prop_assert!(Superblock0::parse(&good[..cut]).is_err());
    }

    #[test]
    fn bitmap_parse_write_round_trip(sb in bitmap_strategy(), pick in any::<prop::sample::Index>()) {
        let bytes = sb.to_bytes();
        let back = BitmapSuper::parse(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&sb));
        prop_assert_eq!(&bytes[0..4], &b"bitm"[..]);
        let mut b = bytes;
        b[136 + pick.index(120)] = 0xff;
        prop_assert_eq!(assert_field(BitmapSuper::parse(&b), "pad"), Problem::NonZeroPad);
        let mut b = bytes;
        b[52..56].copy_from_slice(&(sb.chunksize | 0x100 | 1).to_le_bytes());
        assert_field(BitmapSuper::parse(&b), "chunksize");
        prop_assert!(BitmapSuper::parse(&bytes[..pick.index(256)]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..5000)) {
        umd_formats::fuzz::sb0(&data);
        umd_formats::fuzz::sb1(&data);
        umd_formats::fuzz::bitmap(&data);
    }
}

/// The sum's 16-bit-fold tolerance (formats.md §1.5): a stored checksum that
/// differs but folds to the same 16 bits is accepted.
#[test]
fn sb0_accepts_a_16_bit_fold_match() {
    let mut b = sb0_template();
    let csum = u32::from_le_bytes(b[SB0_CSUM_AT..SB0_CSUM_AT + 4].try_into().expect("4 bytes"));
    assert!(
        csum >= 0x1_0000 && csum & 0xffff != 0xffff,
        "template sum {csum:#x} suits the test"
    );
    // Moving 1 from the high half to the low half keeps the 16-bit fold.
    let other = csum - 0x1_0000 + 1;
    b[SB0_CSUM_AT..SB0_CSUM_AT + 4].copy_from_slice(&other.to_le_bytes());
    assert_eq!(Superblock0::parse(&b).map(|s| s.events), Ok(7));
    // A sum that folds differently is refused.
    b[SB0_CSUM_AT..SB0_CSUM_AT + 4].copy_from_slice(&(other + 1).to_le_bytes());
    assert_field(Superblock0::parse(&b), "sb_csum");
}

/// A minimal valid LE 0.90 superblock built by hand from the §1.3 word table
/// and the §1.5 sum.
fn sb0_template() -> Vec<u8> {
    let mut w = vec![0u32; 1024];
    w[0] = 0xa92b_4efc; // md_magic
    w[2] = 90; // minor_version
    w[5] = 0x1234_5678; // set_uuid0
    w[10] = 2; // raid_disks
    w[39] = 7; // events, low word on a LE host
    let sum: u64 = w.iter().map(|&x| u64::from(x)).sum();
    w[38] = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

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

/// Swap a real LE 0.90 superblock to big-endian the way mdadm does:
/// every 4-byte word, then the halves of the two event counters (formats.md §1.2).
fn byte_swap_sb0(le: &[u8]) -> Vec<u8> {
    let mut be: Vec<u8> = le
        .chunks_exact(4)
        .flat_map(|w| [w[3], w[2], w[1], w[0]])
        .collect();
    for at in [156usize, 164] {
        let (lo, hi) = (be[at..at + 4].to_vec(), be[at + 4..at + 8].to_vec());
        be[at..at + 4].copy_from_slice(&hi);
        be[at + 4..at + 8].copy_from_slice(&lo);
    }
    be
}

#[test]
fn byte_swapped_real_v090_reads_the_same() {
    let Some(dir) = real_dir() else { return };
    for (file, at) in [
        ("util-linux/mdraid.img.xz", 20352u64),
        ("dissect.volume/md/md-90-raid1-2.bin.gz", 6016),
    ] {
        let raw = std::fs::read(dir.join(file)).expect("image present");
        let mut img = Vec::new();
        if std::path::Path::new(file)
            .extension()
            .is_some_and(|e| e == "xz")
        {
            lzma_rs::xz_decompress(&mut &raw[..], &mut img).expect("xz");
        } else {
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut img)
                .expect("gzip");
        }
        let start = (at * 512) as usize;
        let le = &img[start..start + 4096];
        let be = byte_swap_sb0(le);
        assert_ne!(&be[..], le);
        let a = Superblock0::parse_at(le, at).expect("LE parses");
        let b = Superblock0::parse_at(&be, at).expect("byte-swapped parses");
        assert!(!a.big_endian && b.big_endian, "{file}");
        let (ia, mut ib) = (a.info(), b.info());
        assert_eq!(
            ib.format,
            MetadataFormat::V0_90 { big_endian: true },
            "{file}"
        );
        ib.format = ia.format;
        assert_eq!(ia, ib, "{file}");
        // We write LE: the swapped superblock writes back as the original bytes.
        assert_eq!(b.to_bytes()[..], le[..], "{file}");
    }
}

#[test]
fn bad_block_log_entries_decode() {
    // Entry: start 5 units, length 3 units, shift 1 -> sectors 10..16.
    let e1: u64 = (5 << 10) | 3;
    let e2: u64 = (100 << 10) | 512;
    let mut b = Vec::new();
    for e in [e1, e2, u64::MAX, 7] {
        b.extend_from_slice(&e.to_le_bytes());
    }
    let got = umd_formats::sb1::parse_bblog(&b, 1).expect("valid log");
    let want = vec![
        umd_formats::sb1::BadBlock {
            start_sectors: 10,
            len_sectors: 6,
        },
        umd_formats::sb1::BadBlock {
            start_sectors: 200,
            len_sectors: 1024,
        },
    ];
    assert_eq!(got, want);
    let zero_len = (5u64 << 10).to_le_bytes();
    assert_eq!(
        umd_formats::sb1::parse_bblog(&zero_len, 0).map_err(|e| e.field),
        Err("entry")
    );
    assert!(umd_formats::sb1::parse_bblog(&b, 64).is_err());
    assert_eq!(sb_bytes(128), 512);
    let _ = MD_SB_DISKS;
}

use super::*;
use std::process::Command;

/// The real images beside the repository (`../shared/testdata/real`).
const MD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/real/dissect.volume/md/md-"
);

/// The metadata of real image `md-NAME.bin.gz` (mdadm-made).
pub(crate) fn member(name: &str) -> Metadata {
    let path = format!("{MD}{name}.bin.gz");
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "real image {path} missing");
    let img = out.stdout;
    let mut read = |off: u64, buf: &mut [u8]| {
        let off = off as usize;
        buf.copy_from_slice(&img[off..off + buf.len()]);
        Ok(())
    };
    umd_formats::probe::probe(img.len() as u64, &mut read).expect("probe")
}

#[test]
fn load_refuses_no_member_and_mixed_arrays() {
    assert!(NativeMetadata::load(vec![None, None]).is_err());
    let mixed = vec![Some(member("raid1-1")), Some(member("raid5-1"))];
    assert_eq!(
        NativeMetadata::load(mixed).map(|_| ()).unwrap_err().errno,
        Errno::EINVAL
    );
    let versions = vec![Some(member("raid1-1")), Some(member("90-raid1-1"))];
    assert!(NativeMetadata::load(versions).is_err());
}

#[test]
fn load_takes_the_freshest_events_and_version() {
    let md = NativeMetadata::load(vec![Some(member("raid6-1")), None]).expect("load");
    assert_eq!((md.version(), md.events()), ("1.2", 9));
    assert_eq!(md.bitmap_offset_bytes(0), None);
    let md = NativeMetadata::load(vec![Some(member("90-raid1-1"))]).expect("load");
    assert_eq!((md.version(), md.events()), ("0.90", 12));
}

#[test]
fn faulty_090_member_is_recorded_in_the_others() {
    let metas = vec![Some(member("90-raid1-1")), Some(member("90-raid1-2"))];
    let mut md = NativeMetadata::load(metas).expect("load");
    let update = SuperblockUpdate {
        clean: true,
        resync_offset_sectors: 2048,
        faulty_members: vec![0],
        utime_seconds: 5,
        raid_disks: None,
    };
    let mut out = Vec::new();
    md.update(&update, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].member, 1);
    let sb = Superblock0::parse(&out[0].bytes).expect("parse");
    assert_eq!(sb.disks[0].state, sb0::DISK_FAULTY);
    assert_eq!((sb.failed_disks, sb.working_disks), (1, 1));
    // Clean but mid-resync: checkpoint recorded, CLEAN not set.
    assert_eq!(
        (sb.recovery_cp, sb.cp_events, sb.state & sb0::STATE_CLEAN),
        (2048, 13, 0)
    );
}

/// The events of each member after `writes` land on the members whose
/// superblocks started at `events`.
fn events_after(events: &[u64], writes: &[MetadataWrite]) -> Vec<u64> {
    let mut now = events.to_vec();
    for w in writes {
        let sb = Superblock1::parse(&w.bytes, w.offset_bytes / SECTOR_BYTES, u64::MAX);
        now[w.member] = sb.expect("parse").events;
    }
    now
}

/// A member one event behind (an update the power cut) is brought to the
/// array's events before the next update, so a second cut during that
/// update leaves it at most one behind, which assembly still takes; left
/// behind, it would be two behind, and md's rule drops it.
#[test]
fn a_member_behind_is_caught_up_before_the_next_update() {
    let mut metas: Vec<Option<Metadata>> = (1..=3)
        .map(|i| Some(member(&format!("raid5-{i}"))))
        .collect();
    let Some(Metadata::V1(sb)) = metas[2].as_mut() else {
        panic!("1.2 image");
    };
    sb.events -= 1;
    let lagging = sb.events;
    let mut md = NativeMetadata::load(metas).expect("load");
    let e = md.events();
    assert_eq!(lagging + 1, e);
    let update = SuperblockUpdate {
        clean: false,
        resync_offset_sectors: MAX_SECTOR,
        faulty_members: vec![],
        utime_seconds: 7,
        raid_disks: None,
    };
    let mut catch_up = Vec::new();
    assert!(md.catch_up(&update, &mut catch_up));
    assert_eq!(catch_up.len(), 1, "only the member behind");
    assert_eq!(catch_up[0].member, 2);
    assert_eq!(
        events_after(&[e, e, lagging], &catch_up),
        [e, e, e],
        "no bump"
    );
    let mut writes = Vec::new();
    md.update(&update, &mut writes);
    // The power fails after the update reached member 0 only.
    let cut: Vec<MetadataWrite> = writes.into_iter().filter(|w| w.member == 0).collect();
    let caught = events_after(&events_after(&[e, e, lagging], &catch_up), &cut);
    assert_eq!(caught, [e + 1, e, e]);
    let without = events_after(&[e, e, lagging], &cut);
    assert_eq!(
        without,
        [e + 1, e, e - 1],
        "two behind without the catch-up"
    );
    // A second call has nothing left to catch up.
    let mut again = Vec::new();
    assert!(!md.catch_up(&update, &mut again));
    assert!(again.is_empty());
}

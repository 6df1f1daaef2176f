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

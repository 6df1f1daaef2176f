//! `ArrayHost::read_many` (the NBD server's batches of small reads) reads
//! exactly what `read` reads: on a healthy raid5, and after a member failed,
//! when every request touching the failed member must be rebuilt from
//! parity on its own; out-of-range requests fail alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use umd_engine::array::{Array, ArrayConfig, MemberConfig, MetadataKind, Ro};
use umd_engine::read::MemberMap;
use umd_engine::time::Duration as EngineDuration;
use umd_io::{AllowWrite, ArrayHost, HostParts, MemberFile};
use umd_layout::geometry::{Geometry, GeometrySpec};

const MEMBER_BYTES: u64 = 4 << 20;
const COMPONENT_SECTORS: u64 = MEMBER_BYTES / 512;
const DISKS: usize = 4;
/// How long the write may wait for the stand-in manager's acknowledgement.
const PROMPT: Duration = Duration::from_secs(10);

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host() -> (Scratch, Arc<ArrayHost>) {
    let dir = std::env::temp_dir().join(format!("umd-read-many-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let names: Vec<String> = (0..DISKS).map(|i| format!("d{i}")).collect();
    let files = names
        .iter()
        .map(|n| {
            let path = dir.join(n);
            std::fs::File::create(&path)
                .and_then(|f| f.set_len(MEMBER_BYTES))
                .expect("member file");
            Some(MemberFile::open_read_write(&path).expect("open member"))
        })
        .collect();
    let spec = GeometrySpec {
        level: 5,
        layout: 2,
        chunk_sectors: 16,
        raid_disks: DISKS as u32,
        member_sectors: vec![COMPONENT_SECTORS; DISKS],
        component_sectors: COMPONENT_SECTORS,
        raid0_layout: None,
    };
    let geometry = Geometry::new(&spec).expect("raid5 geometry");
    let array_sectors = geometry.array_sectors();
    let members = names
        .iter()
        .enumerate()
        .map(|(i, n)| MemberConfig {
            name: n.clone(),
            slot: Some(i as u32),
            data_offset_sectors: 0,
            size_sectors: COMPONENT_SECTORS,
            in_sync: true,
            faulty: false,
            write_mostly: false,
            replacement: false,
            recovery_offset_sectors: None,
        })
        .collect();
    let array = Array::new(ArrayConfig {
        level: 5,
        raid_disks: DISKS as u32,
        chunk_sectors: 16,
        layout: 2,
        component_sectors: COMPONENT_SECTORS,
        array_sectors,
        metadata: MetadataKind::External {
            name: "/read-many/0".to_owned(),
        },
        members,
        resync_start: None,
        bitmap: None,
        safe_mode_delay: EngineDuration(0),
        stripe_cache_size: 256,
    });
    let parts = HostParts {
        files,
        member_names: names,
        role_members: (0..DISKS).map(Some).collect(),
        geometry,
        member_map: MemberMap::new(vec![Some((0, None)); DISKS]),
        array_sectors,
        array,
        native: None,
        start: Ro::ReadWrite,
        allow_write: AllowWrite::Eagain,
    };
    (Scratch(dir), ArrayHost::start(parts).expect("host starts"))
}

/// Write `data` at 0, acknowledging the dirty transition as a manager would.
fn write_acknowledged(host: &Arc<ArrayHost>, data: Vec<u8>) {
    let writer = {
        let host = host.clone();
        std::thread::spawn(move || host.write(0, &data, false))
    };
    let deadline = Instant::now() + PROMPT;
    while host.get("array_state").ok().as_deref() != Some("write-pending") {
        assert!(
            Instant::now() < deadline,
            "the write never asked to go dirty"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    host.set("array_state", "active").expect("acknowledge");
    writer.join().expect("writer").expect("write");
}

fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x1234_5678_u64;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as u8
        })
        .collect()
}

/// `(offset, len)` requests of 4 KiB to 128 KiB all over `data_len`.
fn requests(data_len: u64) -> Vec<(u64, usize)> {
    (0..48u64)
        .map(|i| {
            let len = (4096usize << (i % 6)).min(128 << 10);
            let offset = (i * 7_340_033 * 512) % (data_len - len as u64) / 512 * 512;
            (offset, len)
        })
        .collect()
}

/// Read `reqs` with `read_many`, plus one request past the end and one
/// empty one; check every successful buffer against `data`.
fn check_batch(host: &ArrayHost, data: &[u8], reqs: &[(u64, usize)]) {
    let mut bufs: Vec<Vec<u8>> = reqs.iter().map(|&(_, len)| vec![0xee; len]).collect();
    bufs.push(vec![0; 4096]);
    bufs.push(Vec::new());
    let past_end = host.size_bytes();
    let mut reads: Vec<(u64, &mut [u8])> = reqs
        .iter()
        .map(|r| r.0)
        .chain([past_end, 0])
        .zip(bufs.iter_mut().map(Vec::as_mut_slice))
        .collect();
    let mut failed = Vec::new();
    host.read_many(&mut reads, |i, e| failed.push((i, e)));
    let indices: Vec<usize> = failed.iter().map(|f| f.0).collect();
    assert_eq!(
        indices,
        vec![reqs.len()],
        "only the request past the end fails: {failed:?}"
    );
    for (&(offset, len), buf) in reqs.iter().zip(&bufs) {
        let at = offset as usize;
        assert!(
            buf[..] == data[at..at + len],
            "read of {len} bytes at {offset} differs"
        );
    }
}

#[test]
fn batched_reads_match_healthy_and_degraded() {
    let (_scratch, host) = host();
    let data_len = 8 << 20;
    let data = pattern(data_len);
    write_acknowledged(&host, data.clone());
    let reqs = requests(data_len as u64);
    check_batch(&host, &data, &reqs);
    // A member fails: its chunks are rebuilt from parity, request by request.
    host.set("dev-d1/state", "faulty").expect("fail a member");
    check_batch(&host, &data, &reqs);
    host.shutdown().expect("clean stop");
}

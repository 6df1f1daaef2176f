//! SimDisk against a byte-for-byte model: what a read returns, what
//! survives a power loss.

use super::{DiskError, LossMode, SimDisk, SECTOR_BYTES};
use crate::rng::Rng;

fn sector(fill: u8) -> Vec<u8> {
    vec![fill; SECTOR_BYTES]
}

#[test]
fn reads_see_cached_writes_and_flush_makes_them_durable() {
    let mut d = SimDisk::new(8 * SECTOR_BYTES);
    d.write(512, &sector(1)).unwrap();
    let mut buf = vec![0; 1024];
    d.read(0, &mut buf).unwrap();
    assert_eq!(&buf[512..], &sector(1)[..]);
    assert_eq!(d.media()[512], 0, "not durable before FLUSH");
    d.flush().unwrap();
    assert_eq!(d.cached_writes(), 0);
    assert_eq!(d.media()[512], 1);
}

#[test]
fn power_loss_drop_all_keeps_only_flushed_writes() {
    let mut d = SimDisk::new(4 * SECTOR_BYTES);
    d.write(0, &sector(1)).unwrap();
    d.flush().unwrap();
    d.write(0, &sector(2)).unwrap();
    d.write(512, &sector(3)).unwrap();
    d.power_loss(LossMode::DropAll, &mut Rng::new(1));
    assert_eq!(d.media()[0], 1);
    assert_eq!(d.media()[512], 0);
}

#[test]
fn fua_write_is_durable() {
    let mut d = SimDisk::new(4 * SECTOR_BYTES);
    d.write_fua(1024, &sector(9)).unwrap();
    d.power_loss(LossMode::DropAll, &mut Rng::new(1));
    assert_eq!(d.media()[1024], 9);
}

/// Random power losses: every sector ends holding a value some write (or
/// the flushed state) gave it, never anything else; flushed sectors that no
/// later write touched keep their value; each value a sector holds is one of
/// the writes to it since the last flush, or the flushed one.
#[test]
fn random_power_loss_keeps_subsets_of_cached_writes() {
    for seed in 0..200 {
        let mut rng = Rng::new(seed);
        let sectors = 16usize;
        let mut d = SimDisk::new(sectors * SECTOR_BYTES);
        let mut possible: Vec<Vec<u8>> = vec![vec![0]; sectors];
        let mut fill = 1u8;
        for _ in 0..rng.range(1, 30) {
            if rng.chance(15) {
                d.flush().unwrap();
                for p in &mut possible {
                    let last = *p.last().unwrap();
                    *p = vec![last];
                }
                continue;
            }
            let first = rng.below(sectors as u64) as usize;
            let len = rng.range(1, (sectors - first).min(4) as u64) as usize;
            d.write(
                (first * SECTOR_BYTES) as u64,
                &vec![fill; len * SECTOR_BYTES],
            )
            .unwrap();
            for p in &mut possible[first..first + len] {
                p.push(fill);
            }
            fill = fill.wrapping_add(1).max(1);
        }
        d.power_loss(LossMode::Random, &mut rng);
        for (s, (bytes, possible)) in d.media().chunks(SECTOR_BYTES).zip(&possible).enumerate() {
            assert!(
                bytes.iter().all(|&b| b == bytes[0]),
                "seed {seed}: sector {s} mixed"
            );
            assert!(
                possible.contains(&bytes[0]),
                "seed {seed}: sector {s} holds {} never written there",
                bytes[0]
            );
        }
    }
}

#[test]
fn torn_writes_happen_and_whole_keeps_happen() {
    let (mut torn, mut whole) = (0, 0);
    for seed in 0..200 {
        let mut d = SimDisk::new(8 * SECTOR_BYTES);
        d.write(0, &vec![7; 8 * SECTOR_BYTES]).unwrap();
        d.power_loss(LossMode::Random, &mut Rng::new(seed));
        let kept = (0..8).filter(|s| d.media()[s * SECTOR_BYTES] == 7).count();
        torn += usize::from(kept > 0 && kept < 8);
        whole += usize::from(kept == 8);
    }
    assert!(torn > 0 && whole > 0, "torn {torn}, whole {whole}");
}

#[test]
fn latent_sectors_fail_reads_until_written() {
    let mut d = SimDisk::new(4 * SECTOR_BYTES);
    d.add_latent(2);
    let mut buf = vec![0; 2 * SECTOR_BYTES];
    assert_eq!(d.read(512, &mut buf), Err(DiskError::Latent(2)));
    assert!(d.read(0, &mut buf).is_ok(), "other sectors read");
    d.write(1024, &sector(5)).unwrap();
    assert!(d.read(512, &mut buf).is_ok(), "a write remaps the sector");
}

#[test]
fn vanished_disk_fails_io_and_comes_back_stale() {
    let mut d = SimDisk::new(4 * SECTOR_BYTES);
    d.write(0, &sector(1)).unwrap();
    d.flush().unwrap();
    d.write(0, &sector(2)).unwrap();
    d.vanish();
    let mut buf = sector(0);
    assert_eq!(d.read(0, &mut buf), Err(DiskError::Gone));
    assert_eq!(d.write(0, &sector(3)), Err(DiskError::Gone));
    assert_eq!(d.flush(), Err(DiskError::Gone));
    d.reappear();
    d.read(0, &mut buf).unwrap();
    assert_eq!(buf[0], 1, "what was durable when it vanished");
}

#[test]
#[should_panic(expected = "unaligned")]
fn unaligned_io_is_a_caller_bug() {
    let mut d = SimDisk::new(4 * SECTOR_BYTES);
    let _ = d.write(3, &sector(1));
}

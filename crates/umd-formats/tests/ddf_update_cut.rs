//! A DDF metadata update cut by a power loss at any point reads back as the
//! metadata before it or the metadata after it, never a mix.
//!
//! The update is the one the metadata manager writes (`Container::
//! write_update`): phases, each durable before the next. A power loss keeps
//! every earlier phase and any subset of the blocks of the phase in flight
//! (a volatile write cache drops or keeps each write). For every phase and
//! every such subset of one device's blocks, the device must load as the old
//! header sequence with the old tables, or the new sequence with the new
//! tables. Starting from metadata mdadm wrote (the dissect raid5 images).

mod ddf_support;

use ddf_support::{images_dir, load, must_probe};
use umd_formats::ddf::{self, Container, Ddf, PhysDisk, VdConfig, VirtDisk};

/// What a loaded device says: its sequence number and every table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    seq: u32,
    phys: Vec<PhysDisk>,
    virt: Vec<VirtDisk>,
    configs: Vec<VdConfig>,
}

fn seen(d: &Ddf) -> Seen {
    Seen {
        seq: d.header().seq(),
        phys: d.phys_disks().to_vec(),
        virt: d.virt_disks().to_vec(),
        configs: d.configs().to_vec(),
    }
}

fn apply<'a>(image: &mut [u8], blocks: impl IntoIterator<Item = &'a (u64, Vec<u8>)>) {
    for (off, bytes) in blocks {
        let at = usize::try_from(*off).expect("fits");
        image[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

/// Subsets of `n` blocks a power loss may leave: none, each one alone, each
/// prefix, each suffix, all but one, all.
fn kept_subsets(n: usize) -> Vec<Vec<bool>> {
    let mut out = vec![vec![false; n], vec![true; n]];
    for k in 0..n {
        out.push((0..n).map(|i| i == k).collect());
        out.push((0..n).map(|i| i != k).collect());
        out.push((0..n).map(|i| i <= k).collect());
        out.push((0..n).map(|i| i >= k).collect());
    }
    out
}

#[test]
fn a_cut_update_reads_as_before_or_after() {
    let Some(dir) = images_dir() else { return };
    let images: Vec<Vec<u8>> = (1..=3)
        .map(|k| load(&dir, &format!("dissect.volume/ddf/ddf-raid5-{k}.bin.gz")))
        .collect();
    let devices: Vec<Ddf> = images
        .iter()
        .enumerate()
        .map(|(i, img)| must_probe(img, &format!("image {i}")))
        .collect();
    let before: Vec<Seen> = devices.iter().map(seen).collect();
    let mut c = Container::from_devices(devices).expect("one container");
    // What the manager records when a member fails: the disk failed, the
    // virtual disk degraded and dirty, its element cleared.
    let guid = c.virt()[0].guid;
    let gone = c.devices()[1].disk_data().refnum;
    if let Some(pd) = c.phys_mut().iter_mut().find(|p| p.refnum == gone) {
        pd.state |= ddf::PD_STATE_FAILED;
    }
    c.virt_mut()[0].state = (c.virt()[0].state & !ddf::VD_STATE_MASK)
        | ddf::VD_STATE_DEGRADED
        | ddf::VD_STATE_INCONSISTENT;
    let bvd = c.bvd_mut(&guid, 0).expect("bvd");
    let pos = bvd.position_of(gone).expect("member");
    bvd.phys_refnum[pos] = 0;
    bvd.seqnum += 1;
    let phases = c.write_update(c.seq() + 1, 4321);
    assert!(phases.len() >= 3, "opened, written, closed");
    let mut cuts = 0;
    for (disk, image) in images.iter().enumerate() {
        let of = |p: usize| -> Vec<(u64, Vec<u8>)> {
            phases[p]
                .iter()
                .filter(|w| w.0 == disk)
                .map(|w| (w.1, w.2.clone()))
                .collect()
        };
        let mut whole = image.clone();
        let blocks: Vec<(u64, Vec<u8>)> = phases
            .iter()
            .flatten()
            .filter(|w| w.0 == disk)
            .map(|w| (w.1, w.2.clone()))
            .collect();
        apply(&mut whole, &blocks);
        let after = seen(&must_probe(&whole, &format!("disk {disk} updated")));
        assert_ne!(after, before[disk], "disk {disk}: the update changes it");
        assert_eq!(after.seq, before[disk].seq + 1);
        for p in 0..phases.len() {
            let mut base = image.clone();
            for q in 0..p {
                apply(&mut base, &of(q));
            }
            let in_flight = of(p);
            for kept in kept_subsets(in_flight.len()) {
                let mut cut = base.clone();
                let blocks = in_flight
                    .iter()
                    .zip(&kept)
                    .filter(|(_, k)| **k)
                    .map(|(b, _)| b);
                apply(&mut cut, blocks);
                let got = seen(&must_probe(&cut, &format!("disk {disk} cut in phase {p}")));
                assert!(
                    got == before[disk] || got == after,
                    "disk {disk}, phase {p}, blocks kept {kept:?}: read as seq {} with {} tables \
                     (before: seq {}, after: seq {})",
                    got.seq,
                    if got.phys == after.phys {
                        "the new"
                    } else {
                        "the old"
                    },
                    before[disk].seq,
                    after.seq
                );
                cuts += 1;
            }
        }
    }
    assert!(cuts > 100, "every phase of every device was cut ({cuts})");
}

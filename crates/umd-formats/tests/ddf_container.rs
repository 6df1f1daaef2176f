//! New DDF metadata and the container view, checked against metadata mdadm
//! wrote (the dissect.volume images).
//!
//! The strongest check here is byte for byte: metadata built from scratch
//! with the values an mdadm-made container records (GUIDs, refnums, times,
//! sequence numbers) must be exactly the bytes mdadm wrote, in every section
//! of both copies and in the anchor. That pins every template, pad byte and
//! placement rule to mdadm's, independently of our parser.

mod ddf_support;

use ddf_support::{images_dir, load, must_probe};
use umd_formats::ddf::build::{self, NewContainer};
use umd_formats::ddf::{self, Container, ContainerError, Ddf, Extent};

/// The three members of the dissect raid5 set, in file order.
fn raid5_images() -> Option<Vec<Vec<u8>>> {
    let dir = images_dir()?;
    Some(
        (1..=3)
            .map(|k| load(&dir, &format!("dissect.volume/ddf/ddf-raid5-{k}.bin.gz")))
            .collect(),
    )
}

/// `writes` applied over zeros of `len` bytes.
fn image_of(len: usize, writes: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (off, bytes) in writes {
        let at = usize::try_from(*off).expect("fits");
        out[at..at + bytes.len()].copy_from_slice(bytes);
    }
    out
}

fn container_of(images: &[Vec<u8>]) -> Container {
    let devices: Vec<Ddf> = images
        .iter()
        .enumerate()
        .map(|(i, img)| must_probe(img, &format!("image {i}")))
        .collect();
    Container::from_devices(devices).expect("one container")
}

fn writes_of(all: &[(usize, u64, Vec<u8>)], disk: usize) -> Vec<(u64, Vec<u8>)> {
    all.iter()
        .filter(|w| w.0 == disk)
        .map(|w| (w.1, w.2.clone()))
        .collect()
}

#[test]
fn built_metadata_is_byte_identical_to_mdadms() {
    let Some(images) = raid5_images() else { return };
    let real = container_of(&images);
    let first = &real.devices()[0];
    let ctrl_bytes = {
        // Vendor data of the controller record: mdadm's home host, NUL-terminated.
        let h = first.header().lba() as usize * 512;
        let at = h + 512;
        let vendor = &images[0][at + 64..at + 512];
        let end = vendor.iter().position(|&b| b == 0).expect("NUL") + 1;
        vendor[..end].to_vec()
    };
    let spec = NewContainer {
        guid: first.container_guid(),
        controller: first.controller().clone(),
        vendor_data: ctrl_bytes,
        seq: first.header().seq(),
        timestamp: first.header().timestamp(),
    };
    let built: Vec<Ddf> = real
        .devices()
        .iter()
        .zip(&images)
        .map(|(d, img)| {
            Ddf::new_device(&spec, real.phys(), d.disk_data(), img.len() as u64)
                .expect("36 MiB is enough")
        })
        .collect();
    let mut fresh = Container::from_devices(built).expect("one container");
    fresh.virt_mut().extend(real.virt().iter().cloned());
    let vd = &real.virt()[0];
    fresh.add_bvds(real.bvds(&vd.guid).into_iter().cloned().collect());
    let writes = fresh.write(spec.seq, spec.timestamp);
    for (disk, img) in images.iter().enumerate() {
        let mine = writes_of(&writes, disk);
        assert!(
            mine.len() >= 11,
            "two copies of five sections and headers, the anchor"
        );
        for (off, bytes) in &mine {
            let at = usize::try_from(*off).expect("fits");
            let theirs = &img[at..at + bytes.len()];
            if theirs != &bytes[..] {
                let i = (0..bytes.len())
                    .find(|&i| bytes[i] != theirs[i])
                    .expect("differs");
                panic!(
                    "disk {disk}: write at {off} (+{i}) differs: ours {:02x?} mdadm {:02x?}",
                    &bytes[i..(i + 16).min(bytes.len())],
                    &theirs[i..(i + 16).min(bytes.len())]
                );
            }
        }
        // Everything mdadm wrote in the metadata region is covered.
        let rebuilt = image_of(img.len(), &mine);
        let region = img.len() - (32 << 20);
        assert!(
            rebuilt[region..] == img[region..],
            "disk {disk}: metadata region differs"
        );
    }
}

#[test]
fn new_devices_follow_mdadms_placement() {
    let dev_bytes: u64 = 64 << 20;
    let guid = *b"Linux-MD\xde\xad\xbe\xef\0\0\0\0\x12\x34\x56\x78\x9a\xbc\xde\xf0";
    let controller = ddf::Controller {
        guid: *b"Linux-MD            host",
        pci_ids: [0xdead, 0xbeef, 0, 0],
        product_id: *b"What Is My PID??",
    };
    let spec = NewContainer {
        guid,
        controller,
        vendor_data: b"host\0".to_vec(),
        seq: 2,
        timestamp: 1000,
    };
    let pd = |i: u8| {
        let mut g = *b"Linux-MD20240101\0\0\0\0\0\0\0\0";
        g[23] = i;
        build::new_phys_disk(u32::from(i), g, 0x1000 + u32::from(i), dev_bytes).expect("size")
    };
    let phys = vec![pd(0), pd(1)];
    let dd = ddf::DiskData {
        guid: phys[1].guid,
        refnum: phys[1].refnum,
        forced_ref: 1,
        forced_guid: 1,
    };
    let d = Ddf::new_device(&spec, &phys, &dd, dev_bytes).expect("64 MiB");
    let sectors = dev_bytes / 512;
    assert_eq!(d.anchor().primary_lba(), sectors - 32768);
    assert_eq!(d.anchor().secondary_lba(), Some(sectors - 65536));
    assert_eq!(d.anchor().workspace_lba(), sectors - 65536);
    assert_eq!(d.this_disk().refnum, 0x1001);
    assert_eq!(d.phys_disks()[0].config_size_sectors, sectors - 65536);
    assert!(d.virt_disks().is_empty() && d.configs().is_empty());
    // The whole config section is rewritten so an older container vanishes.
    let writes = d.write_metadata();
    let config_at = (d.header().lba() + 162) * 512;
    assert!(writes
        .iter()
        .any(|(o, b)| *o == config_at && b.len() == 455 * 512));
    let back = ddf::probe_writes(dev_bytes, &writes)
        .expect("valid")
        .expect("found");
    assert_eq!(back.phys_disks(), d.phys_disks());
    assert_eq!(back.controller(), d.controller());
    assert_eq!(
        build::config_size_sectors(32 << 20),
        Err(ddf::BuildError::TooSmall {
            dev_bytes: 32 << 20
        })
    );
}

#[test]
fn container_rewrite_reproduces_the_images() {
    let Some(images) = raid5_images() else { return };
    let mut c = container_of(&images);
    let (seq, ts) = (c.seq(), c.devices()[0].header().timestamp());
    let writes = c.write(seq, ts);
    for (disk, img) in images.iter().enumerate() {
        for (off, bytes) in writes_of(&writes, disk) {
            let at = usize::try_from(off).expect("fits");
            assert!(
                img[at..at + bytes.len()] == bytes[..],
                "disk {disk} at {off}"
            );
        }
    }
}

#[test]
fn edits_reach_every_device_and_records_follow_membership() {
    let Some(images) = raid5_images() else { return };
    let mut c = container_of(&images);
    let guid = c.virt()[0].guid;
    c.virt_mut()[0].state |= ddf::VD_STATE_INCONSISTENT;
    // Take device 2 out of the VD: its record must be erased from it.
    let gone = c.devices()[2].disk_data().refnum;
    let bvd = c.bvd_mut(&guid, 0).expect("bvd");
    let pos = bvd.position_of(gone).expect("member");
    bvd.phys_refnum[pos] = 0;
    bvd.seqnum += 1;
    let writes = c.write(c.seq() + 1, 1234);
    for (disk, img) in images.iter().enumerate() {
        let mut after = img.clone();
        for (off, bytes) in writes_of(&writes, disk) {
            let at = usize::try_from(off).expect("fits");
            after[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        let d = must_probe(&after, &format!("disk {disk}"));
        assert!(d.notes().is_empty());
        assert_eq!(d.header().seq(), 11, "disk {disk}");
        assert_eq!(d.header().timestamp(), 1234, "disk {disk}");
        assert_eq!(
            d.anchor().timestamp(),
            1234,
            "disk {disk}: anchor stamped too"
        );
        assert_ne!(d.virt_disks()[0].state & ddf::VD_STATE_INCONSISTENT, 0);
        if disk == 2 {
            assert!(
                d.configs().is_empty(),
                "record erased from the dropped disk"
            );
        } else {
            assert_eq!(d.configs()[0].phys_refnum[pos], 0, "disk {disk}");
        }
        // The secondary copy agrees (break the primary header).
        let p = d.header().lba() as usize * 512;
        after[p + 300] ^= 1;
        let s = must_probe(&after, "secondary");
        assert_eq!(s.virt_disks(), d.virt_disks());
        assert_eq!(s.configs(), d.configs());
    }
}

#[test]
fn free_space_follows_used_extents() {
    let Some(dir) = images_dir() else { return };
    let images: Vec<Vec<u8>> = (1..=2)
        .map(|k| {
            load(
                &dir,
                &format!("dissect.volume/ddf/ddf-raid0-raid1-{k}.bin.gz"),
            )
        })
        .collect();
    let c = container_of(&images);
    let end = c.device_phys(0).expect("pd").config_size_sectors;
    assert_eq!(
        c.used_extents(0),
        Some(vec![
            Extent {
                start: 0,
                len: 4096
            },
            Extent {
                start: 4096,
                len: 4096
            }
        ])
    );
    assert_eq!(
        c.find_space(0, 1),
        if end > 8192 { Ok(8192) } else { Err(0) }
    );
    assert_eq!(c.find_space(0, end), Err(end - 8192));
}

#[test]
fn devices_of_different_containers_are_refused() {
    let Some(dir) = images_dir() else { return };
    let a = must_probe(&load(&dir, "dissect.volume/ddf/ddf-raid5-1.bin.gz"), "a");
    let b = must_probe(&load(&dir, "dissect.volume/ddf/ddf-raid1-1.bin.gz"), "b");
    assert_eq!(
        Container::from_devices(vec![a.clone(), b]),
        Err(ContainerError::Foreign { disk: 1, first: 0 })
    );
    let refnum = a.disk_data().refnum;
    assert_eq!(
        Container::from_devices(vec![a.clone(), a]),
        Err(ContainerError::SameDisk {
            disk: 1,
            other: 0,
            refnum
        })
    );
    assert_eq!(
        Container::from_devices(Vec::new()),
        Err(ContainerError::NoDevices)
    );
}

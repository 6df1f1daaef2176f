//! Fuzz entry for the DDF handler (style R21): containers made the way
//! `umd create` makes them, bent by typed edits a real disk could carry
//! (states, types, refnums, offsets, sizes, sequence numbers differing
//! between devices), loaded into the handler and driven through a random
//! sequence of monitor calls.
//!
//! Why structured: DDF seals every structure with a CRC, so random bytes
//! rarely reach the handler; typed edits keep the CRCs valid and explore the
//! semantics instead. Properties: nothing panics, and whatever the handler
//! writes loads again as the same container.

use std::collections::BTreeMap;

use umd_engine::create::ddf::{plan_ddf_create, DdfCreateSpec, DdfMember};
use umd_engine::create::MemberWrite;
use umd_engine::native::MetadataWrite;
use umd_formats::ddf::{self, Ddf};

use super::ddf::DdfHandler;
use super::handler::{Consistency, DiskState, MetadataHandler};

/// Device size: just above the 32 MiB DDF region, so a VD has some room.
const DEV_BYTES: u64 = 40 << 20;
/// Devices per container.
const DEVICES_MAX: u8 = 4;
/// Typed edits before loading.
const EDITS_MAX: u8 = 8;
/// Monitor calls per run.
const OPS_MAX: usize = 48;
/// Sparse images are kept in pages of this size.
const PAGE_BYTES: u64 = 4096;
/// A fixed clock (2023-11-14).
const CLOCK_S: u64 = 1_700_000_000;
/// md levels a VD may get (`None`: an empty container).
const LEVELS: [Option<i32>; 7] = [None, Some(0), Some(1), Some(4), Some(5), Some(6), Some(10)];

/// The fuzz input, read front to back; zeros once exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) << 32 | u64::from(self.u32())
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// A device held as sparse pages (zeros elsewhere).
#[derive(Clone, Default)]
struct Image(BTreeMap<u64, Vec<u8>>);

impl Image {
    fn write(&mut self, offset: u64, bytes: &[u8]) {
        let mut done = 0usize;
        while done < bytes.len() {
            let at = offset + done as u64;
            let within = (at % PAGE_BYTES) as usize;
            let len = (PAGE_BYTES as usize - within).min(bytes.len() - done);
            let page = self
                .0
                .entry(at / PAGE_BYTES)
                .or_insert_with(|| vec![0; PAGE_BYTES as usize]);
            page[within..within + len].copy_from_slice(&bytes[done..done + len]);
            done += len;
        }
    }
    fn read(&self, offset: u64, buf: &mut [u8]) {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let within = (at % PAGE_BYTES) as usize;
            let len = (PAGE_BYTES as usize - within).min(buf.len() - done);
            let dst = &mut buf[done..done + len];
            match self.0.get(&(at / PAGE_BYTES)) {
                Some(page) => dst.copy_from_slice(&page[within..within + len]),
                None => dst.fill(0),
            }
            done += len;
        }
    }
    fn probe(&self) -> Option<Ddf> {
        let mut read = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
            self.read(offset, buf);
            Ok(())
        };
        ddf::probe(DEV_BYTES, &mut read).ok().flatten()
    }
}

fn load(images: &[Image]) -> Option<DdfHandler> {
    let sources = images.iter().map(|img| {
        (DEV_BYTES, move |offset: u64, buf: &mut [u8]| {
            img.read(offset, buf);
            Ok(())
        })
    });
    let h = DdfHandler::load(sources).ok()?;
    Some(h.with_clock(Box::new(|| CLOCK_S)))
}

/// `umd create --metadata ddf` over `images` (new, or into their container).
fn create(input: &mut Input<'_>, images: &mut [Image], into: bool) -> Option<()> {
    let level = LEVELS[usize::from(input.byte()) % LEVELS.len()];
    let members = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            Some(DdfMember {
                name: format!("d{i}"),
                dev_bytes: DEV_BYTES,
                container: if into { Some(img.probe()?) } else { None },
                stale_superblocks: Vec::new(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let spec = DdfCreateSpec {
        level,
        raid_disks: members.len() as u32,
        chunk_kib: None,
        layout: None,
        size_kib: (input.byte() & 1 == 1).then(|| u64::from(input.byte()) * 64),
        name: None,
        assume_clean: input.byte() & 1 == 1,
        members,
        seed: input.u64(),
        now_unix_s: CLOCK_S,
        hostname: "fuzz".to_string(),
    };
    let plan = plan_ddf_create(&spec).ok()?;
    for (img, writes) in images.iter_mut().zip(&plan.members) {
        for MemberWrite {
            offset_bytes,
            bytes,
        } in writes
        {
            img.write(*offset_bytes, bytes);
        }
    }
    Some(())
}

/// One typed edit of one device's metadata, written back to it.
fn edit(input: &mut Input<'_>, images: &mut [Image]) {
    let i = usize::from(input.byte()) % images.len();
    let Some(mut d) = images[i].probe() else {
        return;
    };
    let pick = input.byte();
    let value = input.u32();
    match pick % 8 {
        0 => d.set_seq(value),
        1 => {
            if let Some(pd) = d.phys_disks_mut().get_mut(value as usize % 4) {
                pd.state = value as u16;
            }
        }
        2 => {
            if let Some(pd) = d.phys_disks_mut().get_mut(value as usize % 4) {
                pd.pd_type = (value >> 8) as u16;
            }
        }
        3 => {
            if let Some(vd) = d.virt_disks_mut().first_mut() {
                vd.state = value as u8;
                vd.init_state = (value >> 8) as u8;
            }
        }
        4 | 5 => {
            if let Some(c) = d.configs_mut().first_mut() {
                let j = value as usize % c.phys_refnum.len();
                if pick % 8 == 4 {
                    c.phys_refnum[j] = input.u32();
                } else {
                    c.lba_offset[j] = u64::from(input.u32());
                }
            }
        }
        6 => {
            if let Some(c) = d.configs_mut().first_mut() {
                c.blocks = u64::from(value);
                c.seqnum = input.u32();
            }
        }
        _ => {
            if let Some(pd) = d.phys_disks_mut().get_mut(value as usize % 4) {
                pd.refnum = input.u32();
                pd.config_size_sectors = u64::from(input.u32());
            }
        }
    }
    for (offset, bytes) in d.write_metadata() {
        images[i].write(offset, &bytes);
    }
}

fn disk_state(bits: u8) -> DiskState {
    DiskState {
        faulty: bits & 1 != 0,
        in_sync: bits & 2 != 0,
        write_mostly: bits & 4 != 0,
        spare: bits & 8 != 0,
        blocked: bits & 16 != 0,
        external_bbl: bits & 32 != 0,
    }
}

/// Write what the handler recorded and check it loads again, the same.
fn sync_and_reload(h: &mut DdfHandler, images: &mut [Image]) {
    let mut out: Vec<MetadataWrite> = Vec::new();
    h.sync_metadata(&mut out);
    if out.is_empty() {
        return;
    }
    for w in &out {
        images[w.member].write(w.offset_bytes, &w.bytes);
    }
    let again = load(images).expect("metadata the handler wrote loads again");
    assert_eq!(again.subarrays(), h.subarrays(), "written state reads back");
    assert_eq!(again.container().phys(), h.container().phys());
    assert_eq!(again.container().virt(), h.container().virt());
}

/// The fuzz entry: never panics on any input except on a handler bug.
pub fn ddf_handler(data: &[u8]) {
    let mut input = Input(data);
    let n = 2 + input.byte() % (DEVICES_MAX - 1);
    let mut images = vec![Image::default(); usize::from(n)];
    if create(&mut input, &mut images, false).is_none() {
        return;
    }
    if input.byte() & 1 == 1 {
        // A second VD in the space left; failing to fit is fine.
        let _ = create(&mut input, &mut images, true);
    }
    for _ in 0..input.byte() % (EDITS_MAX + 1) {
        edit(&mut input, &mut images);
    }
    let Some(mut h) = load(&images) else { return };
    for _ in 0..OPS_MAX {
        if input.done() {
            break;
        }
        let op = input.byte();
        let index = u32::from(input.byte() % 3);
        match op % 5 {
            0 => {
                let c = [Consistency::Dirty, Consistency::Clean, Consistency::Decide];
                let resync = match input.byte() % 3 {
                    0 => u64::MAX,
                    1 => 0,
                    _ => u64::from(input.u32()),
                };
                h.set_array_state(index, c[usize::from(op / 5) % 3], resync);
            }
            1 => h.set_disk(index, u32::from(input.byte() % 8), disk_state(input.byte())),
            2 => {
                let slots: Vec<u32> = (0..input.byte() % 4)
                    .map(|_| u32::from(input.byte() % 8))
                    .collect();
                for a in h.activate_spare(index, &slots) {
                    assert!(a.disk < images.len(), "a loaded device");
                    assert!(slots.contains(&a.slot), "an asked-for slot");
                }
            }
            3 => sync_and_reload(&mut h, &mut images),
            _ => {
                for s in h.subarrays() {
                    assert_eq!(s.slot_disks.len(), s.raid_disks as usize);
                }
            }
        }
    }
    sync_and_reload(&mut h, &mut images);
}

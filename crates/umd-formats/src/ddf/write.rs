//! Editing validated DDF metadata and serialising it back to the device.
//!
//! A [`Ddf`] holds decoded fields only; a faithful rewrite also needs every
//! reserved, padding (0xff) and vendor byte, the unused table entries and the
//! unused configuration slots. The loader keeps the verified bytes of each
//! structure it rewrites; the serialiser starts from them, lays every decoded
//! field over them from the typed values, and reseals each CRC (formats.md
//! §5.1). So `write(parse(b)) == b` for an untouched image, and an edited field
//! really changes the output.
//!
//! Both header copies are written from the copy that was loaded, as mdadm
//! writes both from one in-memory header: they differ only in their type (and
//! so CRC). Invariant: the edit API cannot move a record; an edit that changed
//! an `index`, a `slot` or an element count is a caller bug and panics on write.

use super::config::{self, VdConfig};
use super::header::{Header, HeaderType, SectionKind};
use super::load::KeptSections;
use super::records::{self, Controller, DiskData, PhysDisk, VirtDisk};
use super::Ddf;
use crate::SECTOR_BYTES;

/// The open flag of a copy being updated (mdadm writes 1; any non-zero value
/// means open).
const UPDATE_OPENFLAG: u8 = 1;

/// Where each typed record sat when loaded: a rewrite must put it back there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Positions {
    /// `PhysDisk::index` of each entry of `Ddf::phys`.
    pub(crate) pd_index: Vec<u32>,
    /// `VirtDisk::index` of each entry of `Ddf::virt`.
    pub(crate) vd_index: Vec<u32>,
    /// `VdConfig::slot` of each entry of `Ddf::configs`.
    pub(crate) config_slot: Vec<u32>,
}

/// What a rewrite needs beyond the decoded fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    /// Device byte offset of the anchor (the last sector, unless the extended
    /// search found it elsewhere).
    pub(crate) anchor_offset: u64,
    /// The copy that was not loaded, rebuilt from the loaded one; `None` when
    /// the device has a single copy.
    pub(crate) other: Option<Header>,
    /// Verified bytes of the loaded copy's sections.
    pub(crate) sections: KeptSections,
    /// Where each typed record was loaded from (or last placed by an edit).
    pub(crate) positions: Positions,
    /// Config slots an edit emptied since load: written as unused (0xff) so
    /// the device stops holding the record.
    pub(crate) erased_config_slots: Vec<u32>,
    /// Write the whole config section, every slot, as one block: for new
    /// metadata, whose device may hold anything where unused slots lie.
    pub(crate) rewrite_config_section: bool,
}

impl Ddf {
    /// Set the update sequence number of both header copies (not the anchor's,
    /// which stays "no sequencing"). mdadm bumps it at every metadata update.
    pub fn set_seq(&mut self, seq: u32) {
        self.for_each_copy(|h| h.set_seq(seq));
    }
    /// Set the timestamp (seconds since 1980-01-01) of both header copies
    /// and of the anchor: mdadm's every metadata write stamps all three
    /// (`_write_super_to_disk`).
    pub fn set_timestamp(&mut self, timestamp: u32) {
        self.for_each_copy(|h| h.set_timestamp(timestamp));
        self.anchor.set_timestamp(timestamp);
    }
    /// Set the open flag of both header copies (non-zero while updating).
    pub fn set_openflag(&mut self, openflag: u8) {
        self.for_each_copy(|h| h.set_openflag(openflag));
    }
    /// Controller data, for editing.
    pub fn controller_mut(&mut self) -> &mut Controller {
        &mut self.controller
    }
    /// Used physical disk entries, for editing; `index` must not change.
    pub fn phys_disks_mut(&mut self) -> &mut [PhysDisk] {
        &mut self.phys
    }
    /// Used virtual disk entries, for editing; `index` must not change.
    pub fn virt_disks_mut(&mut self) -> &mut [VirtDisk] {
        &mut self.virt
    }
    /// This device's configuration records, for editing; `slot` must not
    /// change, and `phys_refnum` and `lba_offset` must keep
    /// `prim_elmnt_count` entries each.
    pub fn configs_mut(&mut self) -> &mut [VdConfig] {
        &mut self.configs
    }
    /// This device's disk_data, for editing.
    pub fn disk_data_mut(&mut self) -> &mut DiskData {
        &mut self.disk_data
    }

    fn for_each_copy(&mut self, mut f: impl FnMut(&mut Header)) {
        f(&mut self.active);
        if let Some(other) = self.kept.other.as_mut() {
            f(other);
        }
    }

    /// The writes of a metadata update of this device, in phases: each
    /// phase may be written only once every earlier one is durable.
    ///
    /// Why phases: a copy is a header and five sections in separate blocks,
    /// and no section carries the header's sequence number, so a copy
    /// written in one go and cut by a power loss can be a new header over
    /// old sections or the reverse, which nothing can tell from a whole
    /// copy. DDF's open flag is the remedy: each copy is opened (its header
    /// with the open flag set, durable first), its sections written, and
    /// only then closed; the secondary is opened only once the primary is
    /// closed. At every moment one copy is closed and whole, and the reader
    /// prefers a closed copy to an open one (`load.rs`). The closed blocks
    /// are those of [`Ddf::write_metadata`].
    ///
    /// Phases: primary opened; primary sections; primary closed and
    /// secondary opened; secondary sections; secondary closed and the
    /// anchor. A device with one copy: opened; sections; closed and the
    /// anchor.
    ///
    /// # Panics
    /// As [`Ddf::write_metadata`].
    #[must_use]
    pub fn write_update(&self) -> Vec<Vec<(u64, Vec<u8>)>> {
        let copies = self.copies_to_write();
        let opened = |h: &Header| {
            let mut open = h.clone();
            open.set_openflag(UPDATE_OPENFLAG);
            (h.lba() * SECTOR_BYTES, open.sealed_bytes())
        };
        let closed = |h: &Header| (h.lba() * SECTOR_BYTES, h.sealed_bytes());
        let mut phases: Vec<Vec<(u64, Vec<u8>)>> = vec![Vec::new()];
        for header in copies {
            phases
                .last_mut()
                .expect("there is always a current phase")
                .push(opened(header));
            let mut sections = Vec::new();
            self.write_copy(header, &mut sections);
            let closing = sections.pop().expect("a copy ends with its header");
            assert_eq!(
                closing,
                closed(header),
                "the copy's header is its last block"
            );
            phases.push(sections);
            phases.push(vec![closing]);
        }
        phases
            .last_mut()
            .expect("there is always a current phase")
            .push((self.kept.anchor_offset, self.anchor.sealed_bytes()));
        phases
    }

    /// Every metadata structure of this device as (device byte offset, bytes),
    /// each CRC recomputed: for the primary then the secondary copy, its
    /// controller data, physical and virtual disk records, each VD
    /// configuration record, disk_data, then its header; the anchor last, so a
    /// caller writing in order never has an anchor pointing at half-written
    /// copies. Writes never overlap.
    ///
    /// # Panics
    /// If an edit moved a record (changed a `PhysDisk::index`,
    /// `VirtDisk::index` or `VdConfig::slot`) or made a configuration record's
    /// element lists disagree with `prim_elmnt_count`: caller bugs.
    #[must_use]
    pub fn write_metadata(&self) -> Vec<(u64, Vec<u8>)> {
        let copies = self.copies_to_write();
        let mut out = Vec::new();
        for header in copies {
            self.write_copy(header, &mut out);
        }
        out.push((self.kept.anchor_offset, self.anchor.sealed_bytes()));
        assert!(
            out.iter()
                .all(|(_, b)| (b.len() as u64).is_multiple_of(SECTOR_BYTES)),
            "every structure is whole sectors"
        );
        out
    }

    /// The header copies in the order they are written (primary first),
    /// once the records are checked to sit where they were loaded.
    fn copies_to_write(&self) -> Vec<&Header> {
        self.check_positions();
        let mut copies: Vec<&Header> = Some(&self.active)
            .into_iter()
            .chain(self.kept.other.as_ref())
            .collect();
        copies.sort_by_key(|h| h.header_type() != HeaderType::Primary);
        copies
    }

    /// The whole config section: every record resealed over its kept slot,
    /// every other slot as kept.
    fn config_section(&self, geo: config::ConfigGeometry) -> Vec<u8> {
        let mut out = self.kept.sections.config.clone();
        for c in &self.configs {
            let start = c.slot as usize * geo.record_bytes;
            let end = start + geo.record_bytes;
            let bytes = config::write_record(c, &out[start..end], geo);
            out[start..end].copy_from_slice(&bytes);
        }
        out
    }

    fn check_positions(&self) {
        let pos = &self.kept.positions;
        let pd: Vec<u32> = self.phys.iter().map(|p| p.index).collect();
        assert_eq!(pd, pos.pd_index, "PhysDisk::index was edited");
        let vd: Vec<u32> = self.virt.iter().map(|v| v.index).collect();
        assert_eq!(vd, pos.vd_index, "VirtDisk::index was edited");
        let slots: Vec<u32> = self.configs.iter().map(|c| c.slot).collect();
        assert_eq!(slots, pos.config_slot, "VdConfig::slot was edited");
    }

    /// Append the sections and the header of copy `header`.
    fn write_copy(&self, header: &Header, out: &mut Vec<(u64, Vec<u8>)>) {
        let kept = &self.kept.sections;
        let at = |kind: SectionKind| {
            let loc = header
                .section(kind)
                .expect("written sections were present at load and the copies share them");
            (header.lba() + u64::from(loc.offset_sectors)) * SECTOR_BYTES
        };
        let controller = records::write_controller(&self.controller, &kept.controller);
        out.push((at(SectionKind::Controller), controller));
        let phys = records::write_phys(&self.phys, &kept.phys);
        out.push((at(SectionKind::PhysRecords), phys));
        let virt = records::write_virt(&self.virt, &kept.virt);
        out.push((at(SectionKind::VirtRecords), virt));
        let geo = config::geometry(
            header.config_record_len_sectors(),
            header.max_primary_element_entries(),
            0,
        )
        .expect("the config geometry was checked at load and the copies share it");
        let config_at = at(SectionKind::Config);
        if self.kept.rewrite_config_section {
            out.push((config_at, self.config_section(geo)));
        } else {
            let mut records: Vec<(u32, Vec<u8>)> = Vec::new();
            for c in &self.configs {
                let start = c.slot as usize * geo.record_bytes;
                let slot = &kept.config[start..start + geo.record_bytes];
                records.push((c.slot, config::write_record(c, slot, geo)));
            }
            for &slot in &self.kept.erased_config_slots {
                let start = slot as usize * geo.record_bytes;
                records.push((slot, kept.config[start..start + geo.record_bytes].to_vec()));
            }
            records.sort_by_key(|r| r.0);
            for (slot, bytes) in records {
                out.push((config_at + slot as u64 * geo.record_bytes as u64, bytes));
            }
        }
        let disk_data = records::write_disk_data(&self.disk_data, &kept.disk_data);
        out.push((at(SectionKind::DiskData), disk_data));
        out.push((header.lba() * SECTOR_BYTES, header.sealed_bytes()));
    }
}

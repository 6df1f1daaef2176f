//! Structural edits of one device's DDF metadata: entries added to or removed
//! from the global tables, configuration records placed in or taken out of
//! this device's config slots.
//!
//! Why: the typed edits of `write.rs` change fields in place; creating a
//! virtual disk, activating a spare or dropping a vanished disk (mdadm's
//! `init_super_ddf_bvd`, `ddf_process_conf_update`, `ddf_remove_failed`)
//! changes which entries and records exist. Each edit keeps the invariant the
//! writer relies on: the kept bytes under every typed record are a complete
//! structure (the record's own bytes, a template like mdadm's, or an unused
//! 0xff entry), so reserved, pad and vendor bytes always have a defined value
//! and `write(parse(b)) == b` still holds for what was not touched.

use std::collections::BTreeSet;

use super::config::{self, ConfigGeometry, VdConfig};
use super::records::{self, PhysDisk, Table, VirtDisk};
use super::Ddf;

impl Ddf {
    /// Replace the used physical disk entries with `disks`, each at its
    /// `index`. Entries that disappear become unused (all 0xff), new ones
    /// start from an unused entry, and `used_pdes` becomes the new count when
    /// the set of entries changed (mdadm `add_to_super_ddf`,
    /// `ddf_remove_failed`).
    ///
    /// # Panics
    /// If two disks share an index, an index lies beyond the table, or this
    /// device's own entry (its disk_data GUID) is not among them: caller bugs.
    pub fn set_phys_disks(&mut self, mut disks: Vec<PhysDisk>) {
        disks.sort_by_key(|d| d.index);
        let old: BTreeSet<u32> = self.phys.iter().map(|d| d.index).collect();
        let new: BTreeSet<u32> = disks.iter().map(|d| d.index).collect();
        assert_eq!(new.len(), disks.len(), "two physical disks share an index");
        reshape_table(&mut self.kept.sections.phys, Table::Phys, &old, &new);
        self.kept.positions.pd_index = disks.iter().map(|d| d.index).collect();
        self.phys = disks;
        self.this_pd = self
            .phys
            .iter()
            .position(|pd| pd.guid == self.disk_data.guid)
            .expect("an edit must keep this device's own physical disk entry");
    }

    /// Replace the used virtual disk entries with `disks`, each at its
    /// `index`, as [`Ddf::set_phys_disks`] does for the physical disk table
    /// (`populated_vdes` follows the count; mdadm `init_super_ddf_bvd`).
    ///
    /// # Panics
    /// If two disks share an index or an index lies beyond the table.
    pub fn set_virt_disks(&mut self, mut disks: Vec<VirtDisk>) {
        disks.sort_by_key(|d| d.index);
        let old: BTreeSet<u32> = self.virt.iter().map(|d| d.index).collect();
        let new: BTreeSet<u32> = disks.iter().map(|d| d.index).collect();
        assert_eq!(new.len(), disks.len(), "two virtual disks share an index");
        reshape_table(&mut self.kept.sections.virt, Table::Virt, &old, &new);
        self.kept.positions.vd_index = disks.iter().map(|d| d.index).collect();
        self.virt = disks;
    }

    /// Number of config slots a VD configuration record may use:
    /// `max_partitions` (mdadm keeps the slot after them for the spare
    /// assignment record), bounded by what the section holds.
    #[must_use]
    pub fn config_slots(&self) -> u32 {
        let geo = self.config_geometry();
        let in_section = self.kept.sections.config.len() / geo.record_bytes;
        in_section.min(usize::from(self.active.max_partitions())) as u32
    }

    /// The bytes configuration record `config` (one of this device's) would
    /// be written as: a template carrying every byte umd does not model
    /// (cache policy, background rate, vendor bytes) when the same basic VD
    /// is placed on another device.
    #[must_use]
    pub fn config_record_bytes(&self, config: &VdConfig) -> Option<Vec<u8>> {
        let geo = self.config_geometry();
        let start = config.slot as usize * geo.record_bytes;
        let kept = self
            .kept
            .sections
            .config
            .get(start..start + geo.record_bytes)?;
        Some(config::write_record(config, kept, geo))
    }

    /// Replace this device's configuration records with `configs`, each in
    /// its `slot`. A record whose slot already holds the same basic VD (GUID
    /// and `sec_elmnt_seq`) keeps those bytes under its typed fields; any
    /// other starts from `template(config)` when that gives a whole record,
    /// else from mdadm's new-record template. Slots that lose their record
    /// are written as unused (0xff) by the next [`Ddf::write_metadata`].
    ///
    /// # Panics
    /// If two records share a slot, a slot is at or beyond
    /// [`Ddf::config_slots`], or a record's element lists disagree with its
    /// `prim_elmnt_count` (caller bugs).
    pub fn set_configs(
        &mut self,
        mut configs: Vec<VdConfig>,
        template: &dyn Fn(&VdConfig) -> Option<Vec<u8>>,
    ) {
        configs.sort_by_key(|c| c.slot);
        let geo = self.config_geometry();
        let slots = self.config_slots();
        let new: BTreeSet<u32> = configs.iter().map(|c| c.slot).collect();
        assert_eq!(new.len(), configs.len(), "two records share a config slot");
        for c in &configs {
            assert!(c.slot < slots, "config slot {} beyond {slots}", c.slot);
            assert_eq!(
                c.phys_refnum.len(),
                usize::from(c.prim_elmnt_count),
                "one refnum per element"
            );
            assert_eq!(
                c.lba_offset.len(),
                c.phys_refnum.len(),
                "one offset per element"
            );
            self.place_record(c, geo, template);
        }
        let gone: Vec<u32> = self
            .configs
            .iter()
            .map(|c| c.slot)
            .filter(|s| !new.contains(s))
            .collect();
        for slot in gone {
            let start = slot as usize * geo.record_bytes;
            self.kept.sections.config[start..start + geo.record_bytes].fill(records::FILL);
            self.kept.erased_config_slots.push(slot);
        }
        let erased = &mut self.kept.erased_config_slots;
        erased.retain(|s| !new.contains(s));
        erased.sort_unstable();
        erased.dedup();
        self.kept.positions.config_slot = configs.iter().map(|c| c.slot).collect();
        self.configs = configs;
    }

    /// Put the bytes `c` is laid over into its slot, unless the slot already
    /// holds the same basic VD.
    fn place_record(
        &mut self,
        c: &VdConfig,
        geo: ConfigGeometry,
        template: &dyn Fn(&VdConfig) -> Option<Vec<u8>>,
    ) {
        let start = c.slot as usize * geo.record_bytes;
        let slot = &mut self.kept.sections.config[start..start + geo.record_bytes];
        if config::record_key(slot) == Some((c.guid, c.sec_elmnt_seq)) {
            return;
        }
        let bytes = template(c)
            .filter(|t| t.len() == geo.record_bytes)
            .unwrap_or_else(|| config::new_record_template(geo));
        slot.copy_from_slice(&bytes);
    }

    fn config_geometry(&self) -> ConfigGeometry {
        config::geometry(
            self.active.config_record_len_sectors(),
            self.active.max_primary_element_entries(),
            0,
        )
        .expect("the config geometry was checked at load")
    }
}

/// Make the kept table section hold unused entries wherever `old` had an
/// entry and `new` has none, and fresh (unused) entries where `new` adds one;
/// the counter follows when the set changed.
fn reshape_table(section: &mut [u8], table: Table, old: &BTreeSet<u32>, new: &BTreeSet<u32>) {
    if old == new {
        return;
    }
    for &index in old.symmetric_difference(new) {
        records::clear_entry(section, table, index);
    }
    records::set_table_used(section, new.len());
    assert_eq!(
        records::table_used(section),
        new.len(),
        "counter follows the set"
    );
}

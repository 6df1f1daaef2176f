//! A DDF container seen through all of its devices at once: one view of the
//! global tables, one of every basic VD's configuration, and the per-device
//! metadata they are written back to.
//!
//! Why a container view: DDF keeps some records global (header, controller,
//! physical and virtual disk tables, identical on every device) and some local
//! (each device holds the configuration records of the virtual disks it serves,
//! and its own disk_data). mdadm (`load_super_ddf_all`) takes the global part
//! from the device with the newest header and gathers the newest record of each
//! basic VD from all devices; an update changes that one view and every write
//! projects it onto every device (`__write_init_super_ddf`). umd does the same,
//! so edits happen once and cannot leave devices disagreeing.
//!
//! Invariants owned here:
//! - Every device belongs to the same container (anchor GUID) and is a
//!   different physical disk (refnum); each has its own entry in the global
//!   physical disk table.
//! - A device receives exactly the configuration records of the basic VDs
//!   that list its refnum; a record it held for any other is erased.

use std::fmt;

use super::config::VdConfig;
use super::records::{PhysDisk, VirtDisk, PD_STATE_FAILED, PD_STATE_MISSING, PD_STATE_ONLINE};
use super::{Ddf, GUID_LEN};

/// Why a set of devices is not one container.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContainerError {
    /// No device was given.
    NoDevices,
    /// Device `disk` belongs to another container than device `first`.
    Foreign {
        /// The device that differs.
        disk: usize,
        /// The device whose container the others must match.
        first: usize,
    },
    /// Devices `disk` and `other` are the same physical disk (refnum).
    SameDisk {
        /// The later device.
        disk: usize,
        /// The earlier one.
        other: usize,
        /// Their shared refnum.
        refnum: u32,
    },
    /// Device `disk` has no entry in the container's physical disk table (the
    /// newest metadata dropped it).
    NotInTable {
        /// The device.
        disk: usize,
        /// Its refnum.
        refnum: u32,
    },
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDevices => write!(f, "no device given"),
            Self::Foreign { disk, first } => write!(
                f,
                "device {disk} belongs to another DDF container than device {first}"
            ),
            Self::SameDisk {
                disk,
                other,
                refnum,
            } => write!(
                f,
                "devices {other} and {disk} are the same physical disk (refnum {refnum:08x})"
            ),
            Self::NotInTable { disk, refnum } => write!(
                f,
                "device {disk} (refnum {refnum:08x}) is not in the container's physical disk table"
            ),
        }
    }
}

impl std::error::Error for ContainerError {}

/// One basic VD's configuration as the container holds it: the newest record
/// found, and the bytes that record was written with (the template for
/// placing it on another device).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bvd {
    config: VdConfig,
    template: Option<Vec<u8>>,
}

/// A stretch of a device's data space, in sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub len: u64,
}

/// One block for one device: (device index, byte offset, bytes).
pub type DeviceWrite = (usize, u64, Vec<u8>);

/// A DDF container: the devices' own metadata and the shared view over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    devices: Vec<Ddf>,
    seq: u32,
    phys: Vec<PhysDisk>,
    virt: Vec<VirtDisk>,
    bvds: Vec<Bvd>,
}

impl Container {
    /// The container the devices form, in the given order (a device's index
    /// here is its index everywhere in this API).
    pub fn from_devices(devices: Vec<Ddf>) -> Result<Container, ContainerError> {
        let first = devices.first().ok_or(ContainerError::NoDevices)?;
        let guid = first.container_guid();
        for (disk, d) in devices.iter().enumerate() {
            if d.container_guid() != guid {
                return Err(ContainerError::Foreign { disk, first: 0 });
            }
            let refnum = d.disk_data().refnum;
            if let Some(other) = devices[..disk]
                .iter()
                .position(|o| o.disk_data().refnum == refnum)
            {
                return Err(ContainerError::SameDisk {
                    disk,
                    other,
                    refnum,
                });
            }
        }
        let best = newest(&devices);
        let phys = devices[best].phys_disks().to_vec();
        for (disk, d) in devices.iter().enumerate() {
            if !phys.iter().any(|p| p.guid == d.disk_data().guid) {
                let refnum = d.disk_data().refnum;
                return Err(ContainerError::NotInTable { disk, refnum });
            }
        }
        let virt = devices[best].virt_disks().to_vec();
        let bvds = gather_bvds(&devices, &virt);
        let seq = devices[best].header().seq();
        Ok(Container {
            devices,
            seq,
            phys,
            virt,
            bvds,
        })
    }

    /// Take a new device into the container (mdadm's `add_to_super_ddf` on a
    /// loaded container): its own entry joins the physical disk table, and
    /// the next [`Container::write`] writes every device's tables with it.
    /// Returns its device index. Refused if it belongs to another container,
    /// shares a refnum or a table index with a disk already listed, or
    /// carries no entry for itself.
    pub fn add_device(&mut self, device: Ddf) -> Result<usize, ContainerError> {
        let disk = self.devices.len();
        let guid = self.devices.first().map(Ddf::container_guid);
        if guid.is_some_and(|g| g != device.container_guid()) {
            return Err(ContainerError::Foreign { disk, first: 0 });
        }
        let me = device.disk_data().clone();
        let entry = device
            .phys_disks()
            .iter()
            .find(|p| p.guid == me.guid && p.refnum == me.refnum)
            .cloned()
            .ok_or(ContainerError::NotInTable {
                disk,
                refnum: me.refnum,
            })?;
        if let Some(other) = self
            .phys
            .iter()
            .position(|p| p.refnum == me.refnum || p.guid == me.guid || p.index == entry.index)
        {
            let other = self
                .devices
                .iter()
                .position(|d| d.disk_data().refnum == self.phys[other].refnum)
                .unwrap_or(other);
            return Err(ContainerError::SameDisk {
                disk,
                other,
                refnum: me.refnum,
            });
        }
        self.phys.push(entry);
        self.phys.sort_by_key(|p| p.index);
        self.devices.push(device);
        Ok(disk)
    }

    /// Each device's own metadata, as last loaded or written.
    #[must_use]
    pub fn devices(&self) -> &[Ddf] {
        &self.devices
    }
    /// The header sequence number of the newest device (what the next write
    /// starts from).
    #[must_use]
    pub fn seq(&self) -> u32 {
        self.seq
    }
    /// The global physical disk table (used entries, table order).
    #[must_use]
    pub fn phys(&self) -> &[PhysDisk] {
        &self.phys
    }
    /// The global physical disk table, for editing; entries may be added,
    /// removed or moved (mdadm compacts it), as long as every device keeps its
    /// entry (checked when written).
    pub fn phys_mut(&mut self) -> &mut Vec<PhysDisk> {
        &mut self.phys
    }
    /// The global virtual disk table (used entries, table order).
    #[must_use]
    pub fn virt(&self) -> &[VirtDisk] {
        &self.virt
    }
    /// The global virtual disk table, for editing.
    pub fn virt_mut(&mut self) -> &mut Vec<VirtDisk> {
        &mut self.virt
    }
    /// The basic VDs of virtual disk `guid`, by `sec_elmnt_seq` (one for a VD
    /// without secondary level). `slot` means nothing here.
    #[must_use]
    pub fn bvds(&self, guid: &[u8; GUID_LEN]) -> Vec<&VdConfig> {
        let mut out: Vec<&VdConfig> = self
            .bvds
            .iter()
            .map(|b| &b.config)
            .filter(|c| &c.guid == guid)
            .collect();
        out.sort_by_key(|c| c.sec_elmnt_seq);
        out
    }
    /// Basic VD `sec_elmnt_seq` of virtual disk `guid`, for editing.
    pub fn bvd_mut(&mut self, guid: &[u8; GUID_LEN], sec_elmnt_seq: u8) -> Option<&mut VdConfig> {
        self.bvds
            .iter_mut()
            .map(|b| &mut b.config)
            .find(|c| &c.guid == guid && c.sec_elmnt_seq == sec_elmnt_seq)
    }
    /// Add the basic VDs of a new virtual disk (its entry goes in through
    /// [`Container::virt_mut`]); they are written with mdadm's new-record
    /// template.
    pub fn add_bvds(&mut self, configs: Vec<VdConfig>) {
        for config in configs {
            assert!(
                self.bvd_mut(&config.guid, config.sec_elmnt_seq).is_none(),
                "basic VD added twice"
            );
            self.bvds.push(Bvd {
                config,
                template: None,
            });
        }
    }
    /// The device whose own refnum is `refnum`.
    #[must_use]
    pub fn device_of(&self, refnum: u32) -> Option<usize> {
        self.devices
            .iter()
            .position(|d| d.disk_data().refnum == refnum)
    }
    /// The global entry of the physical disk `refnum`.
    #[must_use]
    pub fn phys_of(&self, refnum: u32) -> Option<&PhysDisk> {
        self.phys.iter().find(|p| p.refnum == refnum)
    }
    /// Device `disk`'s entry in the global table.
    #[must_use]
    pub fn device_phys(&self, disk: usize) -> Option<&PhysDisk> {
        let guid = self.devices.get(disk)?.disk_data().guid;
        self.phys.iter().find(|p| p.guid == guid)
    }

    /// The basic VDs that place data on physical disk `refnum`, with its
    /// position in each.
    #[must_use]
    pub fn bvds_on(&self, refnum: u32) -> Vec<(&VdConfig, usize)> {
        self.bvds
            .iter()
            .filter_map(|b| Some((&b.config, b.config.position_of(refnum)?)))
            .collect()
    }

    /// The extents virtual disks use on device `disk`, by start, or `None`
    /// when its physical disk is not online, or failed or missing (mdadm
    /// `get_extents`: such a disk offers no space).
    #[must_use]
    pub fn used_extents(&self, disk: usize) -> Option<Vec<Extent>> {
        let pd = self.device_phys(disk)?;
        if pd.state & (PD_STATE_ONLINE | PD_STATE_FAILED | PD_STATE_MISSING) != PD_STATE_ONLINE {
            return None;
        }
        let mut used: Vec<Extent> = self
            .bvds_on(pd.refnum)
            .into_iter()
            .map(|(c, pos)| Extent {
                start: c.lba_offset[pos],
                len: c.blocks,
            })
            .collect();
        used.sort_by_key(|e| e.start);
        Some(used)
    }

    /// mdadm's `find_space`: the first free stretch of device `disk` at least
    /// `want` sectors long (`Ok(start)`), else the longest free stretch
    /// (`Err(len)`, 0 when the disk offers no space).
    pub fn find_space(&self, disk: usize, want: u64) -> Result<u64, u64> {
        let (Some(used), Some(pd)) = (self.used_extents(disk), self.device_phys(disk)) else {
            return Err(0);
        };
        let end = pd.config_size_sectors;
        let mut pos = 0u64;
        let mut largest = 0u64;
        for e in used
            .iter()
            .copied()
            .chain(std::iter::once(Extent { start: end, len: 0 }))
        {
            let free = e.start.saturating_sub(pos);
            if free >= want {
                return Ok(pos);
            }
            largest = largest.max(free);
            pos = pos.max(e.start.saturating_add(e.len));
        }
        Err(largest)
    }

    /// Whether device `disk` has a config slot left for one more record.
    #[must_use]
    pub fn has_free_slot(&self, disk: usize) -> bool {
        let d = &self.devices[disk];
        let held = self.bvds_on(d.disk_data().refnum).len();
        held < d.config_slots() as usize
    }

    /// Project the view onto every device and serialise it: header `seq`
    /// and time stamp `timestamp` (seconds since 1980), the global tables,
    /// and on each device the records of the basic VDs that list it. Blocks
    /// come per device in [`Ddf::write_metadata`]'s order (primary copy,
    /// secondary copy, anchor last).
    ///
    /// # Panics
    /// If an edit removed a device's own physical disk entry, or a device
    /// serves more basic VDs than it has config slots (callers check
    /// [`Container::has_free_slot`]).
    pub fn write(&mut self, seq: u32, timestamp: u32) -> Vec<DeviceWrite> {
        self.seq = seq;
        let mut out = Vec::new();
        for disk in 0..self.devices.len() {
            self.project(disk, timestamp);
            let d = &self.devices[disk];
            out.extend(d.write_metadata().into_iter().map(|(o, b)| (disk, o, b)));
        }
        out
    }

    /// As [`Container::write`], as an update a power loss may cut anywhere:
    /// the blocks in phases ([`Ddf::write_update`]), each phase over every
    /// device, to be written only once every earlier phase is durable on
    /// every device.
    pub fn write_update(&mut self, seq: u32, timestamp: u32) -> Vec<Vec<DeviceWrite>> {
        self.seq = seq;
        let mut phases: Vec<Vec<DeviceWrite>> = Vec::new();
        for disk in 0..self.devices.len() {
            self.project(disk, timestamp);
            for (p, blocks) in self.devices[disk].write_update().into_iter().enumerate() {
                if phases.len() <= p {
                    phases.push(Vec::new());
                }
                phases[p].extend(blocks.into_iter().map(|(o, b)| (disk, o, b)));
            }
        }
        phases
    }

    fn project(&mut self, disk: usize, timestamp: u32) {
        let refnum = self.devices[disk].disk_data().refnum;
        let wanted: Vec<&Bvd> = self
            .bvds
            .iter()
            .filter(|b| b.config.position_of(refnum).is_some())
            .collect();
        let d = &self.devices[disk];
        let mut taken: Vec<u32> = Vec::new();
        let mut placed: Vec<VdConfig> = Vec::new();
        for b in &wanted {
            let existing = d
                .configs()
                .iter()
                .find(|c| c.guid == b.config.guid && c.sec_elmnt_seq == b.config.sec_elmnt_seq)
                .map(|c| c.slot);
            let mut c = b.config.clone();
            c.slot = existing.unwrap_or(u32::MAX);
            if let Some(s) = existing {
                taken.push(s);
            }
            placed.push(c);
        }
        let slots = d.config_slots();
        let mut free = (0..slots).filter(|s| !taken.contains(s));
        for c in placed.iter_mut().filter(|c| c.slot == u32::MAX) {
            c.slot = free
                .next()
                .expect("a device serves at most config_slots basic VDs");
        }
        let template = |c: &VdConfig| {
            wanted
                .iter()
                .find(|b| b.config.guid == c.guid && b.config.sec_elmnt_seq == c.sec_elmnt_seq)
                .and_then(|b| b.template.clone())
        };
        let d = &mut self.devices[disk];
        d.set_seq(self.seq);
        d.set_timestamp(timestamp);
        d.set_openflag(0);
        d.set_phys_disks(self.phys.clone());
        d.set_virt_disks(self.virt.clone());
        d.set_configs(placed, &template);
        assert_eq!(
            d.configs().len(),
            wanted.len(),
            "every basic VD on the device has its record"
        );
    }
}

/// The device mdadm takes the global records from: the newest header, an
/// open (interrupted) one counting one less (`load_super_ddf_all`).
fn newest(devices: &[Ddf]) -> usize {
    let rank = |d: &Ddf| i64::from(d.header().seq()) - i64::from(d.header().openflag() != 0);
    let mut best = 0;
    for (i, d) in devices.iter().enumerate() {
        if rank(d) > rank(&devices[best]) {
            best = i;
        }
    }
    best
}

/// The newest record of every basic VD of a virtual disk in `virt`, over
/// every device (mdadm `load_ddf_local`: the highest `seqnum` wins).
fn gather_bvds(devices: &[Ddf], virt: &[VirtDisk]) -> Vec<Bvd> {
    let mut out: Vec<Bvd> = Vec::new();
    for d in devices {
        for c in d.configs() {
            if !virt.iter().any(|v| v.guid == c.guid) {
                continue;
            }
            let found = out
                .iter_mut()
                .find(|b| b.config.guid == c.guid && b.config.sec_elmnt_seq == c.sec_elmnt_seq);
            let bvd = Bvd {
                config: c.clone(),
                template: d.config_record_bytes(c),
            };
            match found {
                Some(b) if c.seqnum > b.config.seqnum => *b = bvd,
                Some(_) => {}
                None => out.push(bvd),
            }
        }
    }
    out
}

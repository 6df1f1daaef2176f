//! `umd create --metadata ddf`'s planning: a new DDF container on bare
//! members, optionally with a first virtual disk, or a new virtual disk in the
//! free space of a container the members already form.
//!
//! Why it follows mdadm so closely: Linux assembles a DDF array only through
//! mdadm and mdmon, so what umd writes must be what mdadm would have written
//! (`init_super_ddf`, `add_to_super_ddf`, `init_super_ddf_bvd`,
//! `add_to_super_ddf_bvd`, `reserve_space`, `Create.c`'s size rules): the
//! metadata region in the last 32 MiB (formats.md §5.1), table sizes, GUIDs
//! shaped like mdadm's, data from LBA 0, the first free extent that fits, the
//! largest size every member offers rounded to the chunk (raid1: to 64 KiB),
//! and a virtual disk that is "not initialised" (so the kernel resyncs it)
//! unless `--assume-clean` or the level has no redundancy.
//!
//! Pure (style R8): the caller measures the members, reads any container they
//! hold and supplies the time, host name and a random seed; every planned
//! write is parsed back before the plan is returned (style R6).

use umd_formats::ddf::build::{self, NewContainer};
use umd_formats::ddf::container::Container;
use umd_formats::ddf::{self, Controller, Ddf, DiskData, GUID_LEN, PD_TYPE_GLOBAL_SPARE};

pub use super::ddf_vd::DdfVdPlan;
use super::{einval, enospc, MemberWrite, SECTORS_PER_KIB};
use crate::errno::{EngineError, Errno};

/// Seconds from 1970-01-01 to DDF's epoch 1980-01-01 (mdadm `DECADE`).
pub const DDF_EPOCH_UNIX_S: u64 = 3600 * 24 * (365 * 10 + 2);
/// The vendor part of every GUID mdadm makes ("a non-official T10 name").
const T10_VENDOR: &[u8; 8] = b"Linux-MD";
/// mdadm's controller-type word in header and VD GUIDs.
const GUID_CONTROLLER_TYPE: u32 = 0xdead_beef;
/// PCI ids mdadm writes in the controller record.
const CONTROLLER_PCI_IDS: [u16; 4] = [0xdead, 0xbeef, 0, 0];
/// Product id mdadm writes in the controller record.
const CONTROLLER_PRODUCT: &[u8; 16] = b"What Is My PID??";
/// mdadm keeps at most 16 characters of the host name in the controller GUID.
const HOSTNAME_IN_GUID_MAX: usize = GUID_LEN - T10_VENDOR.len();
/// mdadm stores the home host in the controller's vendor data only when it is
/// shorter than this.
const HOMEHOST_MAX: usize = 440;
/// The header sequence number of a new container's first write: mdadm starts
/// at 1 and its first update bumps it.
const SEQ_NEW_CONTAINER: u32 = 2;
/// Refnum values that mean "no disk" in a configuration record.
const RESERVED_REFNUMS: [u32; 2] = [0, u32::MAX];
/// Bytes of md superblock area erased where a stale one was found.
const STALE_SUPERBLOCK_BYTES: usize = 4096;

/// What to create, as the command line and the caller's measurements say.
#[derive(Debug, Clone)]
pub struct DdfCreateSpec {
    /// md level of the new virtual disk (-1 linear, 0, 1, 4, 5, 6, 10), or
    /// `None` for an empty container (`--level container`).
    pub level: Option<i32>,
    /// `--raid-devices`: equals the number of members.
    pub raid_disks: u32,
    /// Chunk in KiB; `None` = mdadm's default (512 for striped levels).
    pub chunk_kib: Option<u32>,
    /// Layout by mdadm name or number; `None` = mdadm's DDF default.
    pub layout: Option<String>,
    /// KiB per member; `None` = the most every member offers.
    pub size_kib: Option<u64>,
    /// VD name (at most 16 bytes); `None` = "umdN" with N its VD index.
    pub name: Option<String>,
    /// Record the VD fully initialised: no initial resync.
    pub assume_clean: bool,
    /// The members, in role order.
    pub members: Vec<DdfMember>,
    /// Seed of every random identifier (GUIDs, refnums).
    pub seed: u64,
    /// The time, seconds since the Unix epoch.
    pub now_unix_s: u64,
    /// The host name (mdadm's home host) for the controller record.
    pub hostname: String,
}

/// One member as the caller found it.
#[derive(Debug, Clone)]
pub struct DdfMember {
    /// How to name it in messages (its path).
    pub name: String,
    /// Its size in bytes.
    pub dev_bytes: u64,
    /// The DDF metadata it holds: the new VD goes into that container. `None`
    /// = a new container is made (any metadata it holds is overwritten).
    pub container: Option<Ddf>,
    /// Byte offsets of md superblocks found on it, to erase (4 KiB each) when
    /// a new container is made, as mdadm does.
    pub stale_superblocks: Vec<u64>,
}

/// Everything `umd create --metadata ddf` writes.
#[derive(Debug, Clone)]
pub struct DdfCreatePlan {
    /// Writes per member, in order.
    pub members: Vec<Vec<MemberWrite>>,
    /// The new VD, if one was asked for.
    pub vd: Option<DdfVdPlan>,
    /// Whether the container is new.
    pub new_container: bool,
    /// One line for the user.
    pub summary: String,
}

/// A small deterministic generator (splitmix64) for identifiers.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(super) fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

/// The time in DDF's seconds since 1980 (32 bits, as stored).
pub(super) fn ddf_time(now_unix_s: u64) -> u32 {
    now_unix_s.saturating_sub(DDF_EPOCH_UNIX_S) as u32
}

/// A header or VD GUID as mdadm's `make_header_guid` makes it: vendor,
/// controller type, zero, time stamp, random.
pub(super) fn header_guid(rng: &mut Rng, now_unix_s: u64) -> [u8; GUID_LEN] {
    let mut g = [0u8; GUID_LEN];
    g[..8].copy_from_slice(T10_VENDOR);
    g[8..12].copy_from_slice(&GUID_CONTROLLER_TYPE.to_be_bytes());
    g[12..16].copy_from_slice(&0u32.to_be_bytes());
    g[16..20].copy_from_slice(&ddf_time(now_unix_s).to_be_bytes());
    g[20..24].copy_from_slice(&rng.next_u32().to_be_bytes());
    g
}

/// A disk GUID as mdadm's `add_to_super_ddf` makes it: vendor, the date as
/// YYYYMMDD (umd uses UTC; mdadm local time), eight random bytes.
pub(super) fn disk_guid(rng: &mut Rng, now_unix_s: u64) -> [u8; GUID_LEN] {
    let (y, m, d) = civil_date(now_unix_s);
    let date = format!("{:04}{m:02}{d:02}", y % 10000);
    let mut g = [0u8; GUID_LEN];
    g[..8].copy_from_slice(T10_VENDOR);
    g[8..16].copy_from_slice(&date.as_bytes()[..8]);
    g[16..24].copy_from_slice(&rng.next_u64().to_be_bytes());
    g
}

/// The UTC calendar date of `unix_s` (Howard Hinnant's `civil_from_days`).
fn civil_date(unix_s: u64) -> (u64, u64, u64) {
    let z = unix_s / 86_400 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    assert!(
        (1..=12).contains(&m) && (1..=31).contains(&d),
        "a calendar date"
    );
    (y, m, d)
}

/// mdadm's controller record: vendor, then the host name right-aligned after
/// spaces (`init_super_ddf`).
fn controller_for(hostname: &str) -> Controller {
    let host = hostname.as_bytes();
    let host = &host[..host.len().min(HOSTNAME_IN_GUID_MAX)];
    let mut guid = [b' '; GUID_LEN];
    guid[..8].copy_from_slice(T10_VENDOR);
    guid[GUID_LEN - host.len()..].copy_from_slice(host);
    Controller {
        guid,
        pci_ids: CONTROLLER_PCI_IDS,
        product_id: *CONTROLLER_PRODUCT,
    }
}

/// A refnum no other disk has and that does not mean "no disk".
pub(super) fn fresh_refnum(rng: &mut Rng, taken: &[u32]) -> u32 {
    // Each draw collides with probability < n / 2^32; the bound is a guard.
    for _ in 0..1000 {
        let r = rng.next_u32();
        if !taken.contains(&r) && !RESERVED_REFNUMS.contains(&r) {
            return r;
        }
    }
    unreachable!("1000 random 32-bit draws all collided")
}

/// Plan `umd create --metadata ddf`.
pub fn plan_ddf_create(spec: &DdfCreateSpec) -> Result<DdfCreatePlan, EngineError> {
    check_members(spec)?;
    let mut rng = Rng(spec.seed);
    let existing = spec
        .members
        .iter()
        .filter(|m| m.container.is_some())
        .count();
    let new_container = existing == 0;
    let (mut container, seq) = if new_container {
        (new_container_for(spec, &mut rng)?, SEQ_NEW_CONTAINER)
    } else if existing == spec.members.len() {
        let c = existing_container(spec)?;
        let seq = c.seq().wrapping_add(1);
        (c, seq)
    } else {
        let (with, without) = split_names(spec);
        return Err(einval(format!(
            "{with} hold DDF metadata but {without} do not: give the members of one \
             container, or --force to make a new one"
        )));
    };
    let seq = if new_container && spec.level.is_some() {
        seq + 1
    } else {
        seq
    };
    let vd = match spec.level {
        Some(level) => Some(super::ddf_vd::add_vd(
            spec,
            level,
            &mut container,
            &mut rng,
        )?),
        None if new_container => None,
        None => {
            return Err(einval(
                "--level container: the members already form a DDF container",
            ))
        }
    };
    let writes = container.write(seq, ddf_time(spec.now_unix_s));
    let members = member_writes(spec, new_container, writes);
    verify(spec, &members, vd.as_ref());
    let summary = summary(spec, &container, vd.as_ref(), new_container);
    Ok(DdfCreatePlan {
        members,
        vd,
        new_container,
        summary,
    })
}

fn check_members(spec: &DdfCreateSpec) -> Result<(), EngineError> {
    if spec.members.is_empty() {
        return Err(einval("no members given"));
    }
    if spec.members.len() != spec.raid_disks as usize {
        return Err(einval(format!(
            "--raid-devices {} but {} members given (DDF spares are not supported at create)",
            spec.raid_disks,
            spec.members.len()
        )));
    }
    for m in &spec.members {
        build::config_size_sectors(m.dev_bytes)
            .map_err(|e| EngineError::new(Errno::ENOSPC, format!("{}: {e}", m.name)))?;
    }
    Ok(())
}

fn split_names(spec: &DdfCreateSpec) -> (String, String) {
    let names = |with: bool| {
        spec.members
            .iter()
            .filter(|m| m.container.is_some() == with)
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    (names(true), names(false))
}

/// A new container over every member, as mdadm's `init_super_ddf` and one
/// `add_to_super_ddf` per member make it.
fn new_container_for(spec: &DdfCreateSpec, rng: &mut Rng) -> Result<Container, EngineError> {
    let guid = header_guid(rng, spec.now_unix_s);
    let mut homehost = spec.hostname.as_bytes().to_vec();
    if homehost.len() < HOMEHOST_MAX {
        homehost.push(0);
    } else {
        homehost.clear();
    }
    let identity = NewContainer {
        guid,
        controller: controller_for(&spec.hostname),
        vendor_data: homehost,
        seq: SEQ_NEW_CONTAINER,
        timestamp: ddf_time(spec.now_unix_s),
    };
    let mut phys = Vec::with_capacity(spec.members.len());
    let mut disks = Vec::with_capacity(spec.members.len());
    for (i, m) in spec.members.iter().enumerate() {
        let taken: Vec<u32> = phys.iter().map(|p: &ddf::PhysDisk| p.refnum).collect();
        let refnum = fresh_refnum(rng, &taken);
        let pd_guid = disk_guid(rng, spec.now_unix_s);
        let pd = build::new_phys_disk(i as u32, pd_guid, refnum, m.dev_bytes)
            .map_err(|e| enospc(format!("{}: {e}", m.name)))?;
        phys.push(pd);
        disks.push(DiskData {
            guid: pd_guid,
            refnum,
            forced_ref: 1,
            forced_guid: 1,
        });
    }
    let mut devices = Vec::with_capacity(spec.members.len());
    for (m, disk) in spec.members.iter().zip(&disks) {
        let d = Ddf::new_device(&identity, &phys, disk, m.dev_bytes)
            .map_err(|e| enospc(format!("{}: {e}", m.name)))?;
        devices.push(d);
    }
    let c = Container::from_devices(devices)
        .map_err(|e| EngineError::new(Errno::EINVAL, format!("new container: {e}")))?;
    assert_eq!(c.phys().len(), spec.members.len(), "one entry per member");
    assert!(
        c.phys()
            .iter()
            .all(|p| p.pd_type & PD_TYPE_GLOBAL_SPARE != 0),
        "new disks are global spares until a VD uses them"
    );
    Ok(c)
}

/// The container every member holds.
fn existing_container(spec: &DdfCreateSpec) -> Result<Container, EngineError> {
    let devices: Vec<Ddf> = spec
        .members
        .iter()
        .map(|m| {
            m.container
                .clone()
                .expect("checked: every member holds DDF")
        })
        .collect();
    Container::from_devices(devices).map_err(|e| {
        let name = |i: usize| spec.members[i].name.clone();
        let what = match e {
            ddf::ContainerError::Foreign { disk, first } => format!(
                "{} belongs to another DDF container than {}",
                name(disk),
                name(first)
            ),
            ddf::ContainerError::SameDisk { disk, other, .. } => {
                format!("{} and {} are the same disk", name(other), name(disk))
            }
            ddf::ContainerError::NotInTable { disk, .. } => format!(
                "{} is no longer in its container's physical disk table",
                name(disk)
            ),
            other => other.to_string(),
        };
        einval(what)
    })
}

/// Per member: stale md superblock erasures (new container only, where our
/// writes do not cover them), then the DDF writes in the container's order.
fn member_writes(
    spec: &DdfCreateSpec,
    new_container: bool,
    writes: Vec<(usize, u64, Vec<u8>)>,
) -> Vec<Vec<MemberWrite>> {
    let mut out: Vec<Vec<MemberWrite>> = vec![Vec::new(); spec.members.len()];
    for (i, m) in spec.members.iter().enumerate() {
        if !new_container {
            continue;
        }
        for &at in &m.stale_superblocks {
            let end = at + STALE_SUPERBLOCK_BYTES as u64;
            let covered = writes
                .iter()
                .any(|(d, o, b)| *d == i && *o <= at && end <= *o + b.len() as u64);
            if !covered && end <= m.dev_bytes {
                out[i].push(MemberWrite {
                    offset_bytes: at,
                    bytes: vec![0; STALE_SUPERBLOCK_BYTES],
                });
            }
        }
    }
    for (disk, offset_bytes, bytes) in writes {
        out[disk].push(MemberWrite {
            offset_bytes,
            bytes,
        });
    }
    out
}

/// Parse every member's planned metadata back and check it says what was
/// planned (style R6).
fn verify(spec: &DdfCreateSpec, members: &[Vec<MemberWrite>], vd: Option<&DdfVdPlan>) {
    for (m, writes) in spec.members.iter().zip(members) {
        let blocks: Vec<(u64, Vec<u8>)> = writes
            .iter()
            .map(|w| (w.offset_bytes, w.bytes.clone()))
            .collect();
        let back = match ddf::probe_writes(m.dev_bytes, &blocks) {
            Ok(Some(d)) => d,
            Ok(None) => unreachable!("the anchor is among the writes"),
            Err(e) => unreachable!("planned metadata for {} does not parse: {e}", m.name),
        };
        let Some(vd) = vd else { continue };
        let info = back
            .infos()
            .into_iter()
            .find(|i| i.array.name == vd.name)
            .expect("every member holds the new VD's record");
        assert_eq!(
            info.array.component_sectors, vd.component_sectors,
            "{}",
            m.name
        );
        assert_eq!(
            info.array.array_sectors,
            Some(vd.array_sectors),
            "{}",
            m.name
        );
        assert!(
            info.array.clean,
            "a new VD is consistent until mdmon says otherwise"
        );
    }
}

fn summary(
    spec: &DdfCreateSpec,
    c: &Container,
    vd: Option<&DdfVdPlan>,
    new_container: bool,
) -> String {
    let container = if new_container {
        format!("DDF container created on {} devices", spec.members.len())
    } else {
        format!("DDF container of {} devices", c.phys().len())
    };
    let Some(vd) = vd else { return container };
    let sync = if vd.clean {
        ""
    } else {
        ", needs an initial resync"
    };
    let chunk = spec
        .chunk_kib
        .map_or(String::new(), |k| format!(", chunk {k}K"));
    format!(
        "{container}; virtual disk {} \"{}\": {} KiB{chunk}, {} KiB per member{sync}",
        vd.index,
        vd.name,
        vd.array_sectors / SECTORS_PER_KIB,
        vd.component_sectors / SECTORS_PER_KIB,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(1_700_000_000), (2023, 11, 14));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
    }

    #[test]
    fn controller_guid_is_mdadms() {
        assert_eq!(&controller_for("fedora").guid, b"Linux-MD          fedora");
        let long = controller_for("a-very-long-host-name");
        assert_eq!(&long.guid, b"Linux-MDa-very-long-host");
    }
}

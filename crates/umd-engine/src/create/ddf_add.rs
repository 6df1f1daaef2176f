//! A blank disk joining a DDF container that is in use, as a global spare
//! (mdadm `--add` to a container: `add_to_super_ddf`, then the metadata
//! written to every disk).
//!
//! Why here and pure: the metadata manager owns a running container's
//! metadata, so it makes the new device and writes it with its next update;
//! the simulator's manager does the same on its disks. The caller reads the
//! container and checks the disk is blank; this plans the device: a fresh
//! refnum and disk GUID (mdadm's shapes, as at create), the lowest free
//! entry of the physical disk table, and the container's own identity
//! (GUID, controller record, vendor bytes, sequence number) so that its
//! headers match the other devices'.

use umd_formats::ddf::build::{self, NewContainer};
use umd_formats::ddf::container::Container;
use umd_formats::ddf::{Ddf, DiskData};

use super::ddf::{ddf_time, disk_guid, fresh_refnum, Rng};
use super::{einval, enospc};
use crate::errno::EngineError;

/// The metadata of a blank device of `dev_bytes` (named `name` in messages)
/// joining `container` as a global spare, for [`Container::add_device`].
/// `seed` draws its identifiers; `now_unix_s` stamps its GUID and header.
///
/// Refused: a device too small for DDF, a container whose table sizes are
/// not the ones umd and mdadm make (its tables could not be shared with a
/// device umd builds), or a full physical disk table.
pub fn plan_ddf_add(
    container: &Container,
    name: &str,
    dev_bytes: u64,
    seed: u64,
    now_unix_s: u64,
) -> Result<Ddf, EngineError> {
    let first = container
        .devices()
        .first()
        .ok_or_else(|| einval("the container has no device to take its identity from"))?;
    let mut rng = Rng(seed);
    let taken: Vec<u32> = container.phys().iter().map(|p| p.refnum).collect();
    let refnum = fresh_refnum(&mut rng, &taken);
    let guid = disk_guid(&mut rng, now_unix_s);
    let capacity = first.table_capacities()[0];
    let index = (0..capacity)
        .find(|i| !container.phys().iter().any(|p| p.index == *i))
        .ok_or_else(|| {
            enospc(format!(
                "{name}: the physical disk table is full ({capacity} entries)"
            ))
        })?;
    let entry = build::new_phys_disk(index, guid, refnum, dev_bytes)
        .map_err(|e| enospc(format!("{name}: {e}")))?;
    let mut phys = container.phys().to_vec();
    phys.push(entry);
    let identity = NewContainer {
        guid: first.container_guid(),
        controller: first.controller().clone(),
        vendor_data: first.controller_vendor_data().to_vec(),
        seq: container.seq(),
        timestamp: ddf_time(now_unix_s),
    };
    let disk = DiskData {
        guid,
        refnum,
        forced_ref: 1,
        forced_guid: 1,
    };
    let device = Ddf::new_device(&identity, &phys, &disk, dev_bytes)
        .map_err(|e| enospc(format!("{name}: {e}")))?;
    if device.table_capacities() != first.table_capacities() {
        return Err(einval(format!(
            "{name}: the container's tables ({:?} entries: disks, virtual disks, records, \
             elements) are not the sizes umd writes ({:?}); umd adds disks only to containers \
             made by umd or mdadm",
            first.table_capacities(),
            device.table_capacities()
        )));
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::ddf::{plan_ddf_create, DdfCreateSpec, DdfMember};
    use umd_formats::ddf::{PD_STATE_ONLINE, PD_TYPE_GLOBAL_SPARE};

    const MIB: u64 = 1 << 20;

    /// A container umd made on `n` blank 64 MiB members, with a raid1 on
    /// them, as each device loads after the writes.
    fn container(n: usize) -> Container {
        let plan = plan_ddf_create(&DdfCreateSpec {
            level: Some(1),
            raid_disks: n as u32,
            chunk_kib: None,
            layout: None,
            size_kib: None,
            name: Some("m".into()),
            assume_clean: true,
            members: (0..n)
                .map(|i| DdfMember {
                    name: format!("d{i}"),
                    dev_bytes: 64 * MIB,
                    container: None,
                    stale_superblocks: Vec::new(),
                })
                .collect(),
            seed: 7,
            now_unix_s: 1_700_000_000,
            hostname: "host".into(),
        })
        .expect("plan");
        let devices = plan
            .members
            .iter()
            .map(|writes| {
                let mut image = vec![0u8; 64 * MIB as usize];
                for w in writes {
                    let at = w.offset_bytes as usize;
                    image[at..at + w.bytes.len()].copy_from_slice(&w.bytes);
                }
                let mut read = |offset: u64, buf: &mut [u8]| {
                    let at = offset as usize;
                    buf.copy_from_slice(&image[at..at + buf.len()]);
                    Ok(())
                };
                umd_formats::ddf::probe(image.len() as u64, &mut read)
                    .expect("probe")
                    .expect("ddf")
            })
            .collect();
        Container::from_devices(devices).expect("container")
    }

    #[test]
    fn a_new_disk_joins_every_table_as_a_global_spare() {
        let mut c = container(2);
        let d = plan_ddf_add(&c, "d2", 64 * MIB, 11, 1_700_000_100).expect("add");
        let me = d.disk_data().clone();
        assert_eq!(d.container_guid(), c.devices()[0].container_guid());
        assert_eq!(d.controller(), c.devices()[0].controller());
        assert_eq!(
            d.controller_vendor_data(),
            c.devices()[0].controller_vendor_data(),
            "the home host is kept"
        );
        let at = c.add_device(d).expect("taken");
        assert_eq!(at, 2);
        let writes = c.write_update(c.seq() + 1, 99);
        assert!(
            writes.iter().flatten().any(|w| w.0 == 2),
            "the new disk is written"
        );
        let entry = c
            .phys()
            .iter()
            .find(|p| p.refnum == me.refnum)
            .expect("listed");
        assert_eq!(entry.index, 2, "the lowest free table entry");
        assert_ne!(entry.pd_type & PD_TYPE_GLOBAL_SPARE, 0);
        assert_eq!(entry.state, PD_STATE_ONLINE);
        assert!(c
            .phys()
            .iter()
            .filter(|p| p.refnum != me.refnum)
            .all(|p| p.pd_type & PD_TYPE_GLOBAL_SPARE == 0));
    }

    #[test]
    fn the_same_disk_twice_and_a_small_disk_are_refused() {
        let mut c = container(2);
        let d = plan_ddf_add(&c, "d2", 64 * MIB, 11, 1_700_000_100).expect("add");
        c.add_device(d.clone()).expect("taken");
        assert!(c.add_device(d).is_err(), "a refnum already listed");
        let e = plan_ddf_add(&c, "tiny", 16 * MIB, 12, 1_700_000_100).expect_err("too small");
        assert!(e.message.contains("tiny"), "{}", e.message);
    }
}

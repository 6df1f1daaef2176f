//! The attribute tree of a container process: the container's own
//! attributes under their bare names, and each subarray's under
//! `<index>/` (`0/array_state`, `1/dev-d0/state`).
//!
//! Why one socket for all: md gives every member array its own sysfs
//! directory, and mdmon polls all of them from one loop. One control socket
//! with a prefix per subarray gives the manager the same view through one
//! connection (one `watch` covers every subarray), and stopping one subarray
//! leaves the others served.
//!
//! The container's own attributes are md's for a container device:
//! `metadata_version` (`external:<format>`), `level` (`container`),
//! `array_state` (`inactive`: a container never runs), plus `subarrays`
//! (umd's: the subarray indices, space-separated) and per disk
//! `dev-NAME/block` (its path, where md has a symlink to the block device),
//! `dev-NAME/size` (KiB), `dev-NAME/slot` (`none`) and `dev-NAME/state`
//! (`spare`: a container holds disks, it uses none). They are fixed while the
//! process runs.

use super::AttrTree;
use std::path::PathBuf;
use std::sync::Arc;
use umd_engine::{EngineError, Errno};

/// One disk of the container as its attributes show it.
#[derive(Debug, Clone)]
pub struct ContainerDiskAttrs {
    /// `dev-NAME`.
    pub name: String,
    /// `dev-NAME/block`.
    pub path: PathBuf,
    /// `dev-NAME/size`, in KiB.
    pub size_kib: u64,
}

/// Serves a container and its subarrays.
pub struct ContainerTree {
    format: String,
    disks: Vec<ContainerDiskAttrs>,
    subarrays: Vec<(String, Arc<dyn AttrTree>)>,
}

/// Each disk's attributes.
const DISK_ATTRS: [&str; 4] = ["block", "size", "slot", "state"];

/// The container-level attribute names (besides `dev-NAME/*`).
const CONTAINER_ATTRS: [&str; 4] = ["metadata_version", "level", "array_state", "subarrays"];

impl ContainerTree {
    /// A container of `format` (`ddf`) with its disks and subarrays, each
    /// subarray named by its index.
    #[must_use]
    pub fn new(
        format: &str,
        disks: Vec<ContainerDiskAttrs>,
        subarrays: Vec<(String, Arc<dyn AttrTree>)>,
    ) -> Self {
        assert!(
            subarrays
                .iter()
                .all(|(n, _)| !n.is_empty() && !n.contains('/')),
            "subarray names are single path components"
        );
        Self {
            format: format.to_owned(),
            disks,
            subarrays,
        }
    }

    /// The subarray tree `prefix` names, and the rest of the attribute name.
    fn route<'a>(&self, name: &'a str) -> Option<(&dyn AttrTree, &'a str)> {
        let (prefix, rest) = name.split_once('/')?;
        self.subarrays
            .iter()
            .find(|(n, _)| n == prefix)
            .map(|(_, t)| (t.as_ref(), rest))
    }

    fn own(&self, name: &str) -> Result<String, EngineError> {
        match name {
            "metadata_version" => return Ok(format!("external:{}", self.format)),
            "level" => return Ok("container".to_owned()),
            "array_state" => return Ok("inactive".to_owned()),
            "subarrays" => {
                let list: Vec<&str> = self.subarrays.iter().map(|(n, _)| n.as_str()).collect();
                return Ok(list.join(" "));
            }
            _ => {}
        }
        let missing = || EngineError::new(Errno::ENOENT, format!("{name}: no such attribute"));
        let rest = name.strip_prefix("dev-").ok_or_else(missing)?;
        let (disk, field) = rest.rsplit_once('/').ok_or_else(missing)?;
        let d = self
            .disks
            .iter()
            .find(|d| d.name == disk)
            .ok_or_else(missing)?;
        match field {
            "block" => Ok(d.path.display().to_string()),
            "size" => Ok(d.size_kib.to_string()),
            "slot" => Ok("none".to_owned()),
            "state" => Ok("spare".to_owned()),
            _ => Err(missing()),
        }
    }
}

impl AttrTree for ContainerTree {
    fn get(&self, name: &str) -> Result<String, EngineError> {
        match self.route(name) {
            Some((tree, rest)) => tree.get(rest),
            None => self.own(name),
        }
    }

    fn set(&self, name: &str, value: &str) -> Result<(), EngineError> {
        if let Some((tree, rest)) = self.route(name) {
            return tree.set(rest, value);
        }
        self.own(name)?;
        Err(EngineError::new(
            Errno::EBUSY,
            format!("{name}: container attributes are fixed while it runs"),
        ))
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = CONTAINER_ATTRS.iter().map(|a| (*a).to_owned()).collect();
        for d in &self.disks {
            for field in DISK_ATTRS {
                names.push(format!("dev-{}/{field}", d.name));
            }
        }
        for (prefix, tree) in &self.subarrays {
            names.extend(tree.names().into_iter().map(|n| format!("{prefix}/{n}")));
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    struct Map(Mutex<BTreeMap<String, String>>);

    impl AttrTree for Map {
        fn get(&self, name: &str) -> Result<String, EngineError> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(name)
                .cloned()
                .ok_or_else(|| EngineError::new(Errno::ENOENT, name.to_owned()))
        }
        fn set(&self, name: &str, value: &str) -> Result<(), EngineError> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.to_owned(), value.to_owned());
            Ok(())
        }
        fn names(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .keys()
                .cloned()
                .collect()
        }
    }

    fn sub(state: &str) -> Arc<dyn AttrTree> {
        let mut m = BTreeMap::new();
        m.insert("array_state".to_owned(), state.to_owned());
        m.insert("dev-d0/state".to_owned(), "in_sync".to_owned());
        Arc::new(Map(Mutex::new(m)))
    }

    fn tree() -> ContainerTree {
        ContainerTree::new(
            "ddf",
            vec![ContainerDiskAttrs {
                name: "d0".to_owned(),
                path: PathBuf::from("/tmp/d0.img"),
                size_kib: 1024,
            }],
            vec![
                ("0".to_owned(), sub("clean")),
                ("1".to_owned(), sub("active")),
            ],
        )
    }

    #[test]
    fn routes_by_prefix_and_serves_its_own() {
        let t = tree();
        assert_eq!(t.get("0/array_state").ok().as_deref(), Some("clean"));
        assert_eq!(t.get("1/array_state").ok().as_deref(), Some("active"));
        assert_eq!(t.get("1/dev-d0/state").ok().as_deref(), Some("in_sync"));
        assert_eq!(
            t.get("metadata_version").ok().as_deref(),
            Some("external:ddf")
        );
        assert_eq!(t.get("array_state").ok().as_deref(), Some("inactive"));
        assert_eq!(t.get("subarrays").ok().as_deref(), Some("0 1"));
        assert_eq!(t.get("dev-d0/block").ok().as_deref(), Some("/tmp/d0.img"));
        assert_eq!(
            t.get("2/array_state").map_err(|e| e.errno),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            t.get("dev-d9/block").map_err(|e| e.errno),
            Err(Errno::ENOENT)
        );
    }

    #[test]
    fn stores_reach_the_subarray_and_container_attributes_are_fixed() {
        let t = tree();
        assert!(t.set("1/array_state", "clean").is_ok());
        assert_eq!(t.get("1/array_state").ok().as_deref(), Some("clean"));
        assert_eq!(t.get("0/array_state").ok().as_deref(), Some("clean"));
        assert_eq!(
            t.set("metadata_version", "external:imsm")
                .map_err(|e| e.errno),
            Err(Errno::EBUSY)
        );
        assert_eq!(
            t.set("nonsense", "1").map_err(|e| e.errno),
            Err(Errno::ENOENT)
        );
        let names = t.names();
        assert!(names.contains(&"0/array_state".to_owned()));
        assert!(names.contains(&"1/dev-d0/state".to_owned()));
        assert!(names.contains(&"dev-d0/block".to_owned()));
    }
}

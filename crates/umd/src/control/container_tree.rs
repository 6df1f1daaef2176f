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
//! (`spare`: a container holds disks, it uses none), and `disks` (umd's: the
//! disk names, space-separated). Storing a path in `new_dev` gives the
//! container another disk, as `mdadm --add` to a container binds one: it is
//! listed at once and the metadata manager, woken by `disks`, writes the
//! container's metadata onto it (a blank disk becomes a global spare) or
//! refuses it in its log. The rest is fixed while the process runs.
//!
//! Locks: `disks` guards the disk list and is a leaf: nothing else is taken
//! while it is held (the notifier is called after it is released).

use super::AttrTree;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use umd_engine::{EngineError, Errno};
use umd_io::MemberFile;

/// Tells watchers that a container attribute changed (the control server's
/// notifier, given once the server exists).
pub(crate) type ContainerNotify = Box<dyn Fn(&str) + Send + Sync>;

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
    disks: Mutex<Vec<ContainerDiskAttrs>>,
    subarrays: Vec<(String, Arc<dyn AttrTree>)>,
    notify: OnceLock<ContainerNotify>,
}

/// Each disk's attributes.
const DISK_ATTRS: [&str; 4] = ["block", "size", "slot", "state"];

/// The container-level attribute names (besides `dev-NAME/*`).
const CONTAINER_ATTRS: [&str; 5] = [
    "metadata_version",
    "level",
    "array_state",
    "subarrays",
    "disks",
];

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
            disks: Mutex::new(disks),
            subarrays,
            notify: OnceLock::new(),
        }
    }

    /// Announce container attribute changes through `notify` from now on
    /// (once; later calls are ignored).
    pub fn set_notifier(&self, notify: ContainerNotify) {
        let _ = self.notify.set(notify);
    }

    fn disks(&self) -> MutexGuard<'_, Vec<ContainerDiskAttrs>> {
        self.disks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `new_dev`: list the device at `path` as a disk of the container, named
    /// after its file. Refused if it cannot be opened read-write, or if its
    /// name or the device is the container's already.
    fn add_disk(&self, path: &str) -> Result<(), EngineError> {
        let given = Path::new(path.trim());
        let path = std::fs::canonicalize(given).map_err(|e| {
            EngineError::new(Errno::ENOENT, format!("new_dev: {}: {e}", given.display()))
        })?;
        let file = MemberFile::open_read_write(&path)
            .map_err(|e| EngineError::new(Errno::EINVAL, format!("new_dev: {e}")))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                EngineError::new(
                    Errno::EINVAL,
                    format!("new_dev: {}: no file name", path.display()),
                )
            })?;
        {
            let mut disks = self.disks();
            if let Some(d) = disks.iter().find(|d| d.path == path) {
                return Err(EngineError::new(
                    Errno::EEXIST,
                    format!(
                        "new_dev: {} is already the container's disk {}",
                        path.display(),
                        d.name
                    ),
                ));
            }
            if disks.iter().any(|d| d.name == name) {
                return Err(EngineError::new(
                    Errno::EEXIST,
                    format!(
                        "new_dev: {}: the container has a disk named {name} already \
                         (disks are named after their files)",
                        path.display()
                    ),
                ));
            }
            disks.push(ContainerDiskAttrs {
                name,
                path,
                size_kib: file.len_bytes() / 1024,
            });
        }
        if let Some(notify) = self.notify.get() {
            notify("disks");
        }
        Ok(())
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
            "disks" => {
                let disks = self.disks();
                let list: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
                return Ok(list.join(" "));
            }
            _ => {}
        }
        let missing = || EngineError::new(Errno::ENOENT, format!("{name}: no such attribute"));
        let rest = name.strip_prefix("dev-").ok_or_else(missing)?;
        let (disk, field) = rest.rsplit_once('/').ok_or_else(missing)?;
        let disks = self.disks();
        let d = disks.iter().find(|d| d.name == disk).ok_or_else(missing)?;
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
        if name == "new_dev" {
            return self.add_disk(value);
        }
        self.own(name)?;
        Err(EngineError::new(
            Errno::EBUSY,
            format!("{name}: container attributes are fixed while it runs"),
        ))
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = CONTAINER_ATTRS.iter().map(|a| (*a).to_owned()).collect();
        for d in self.disks().iter() {
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

    struct Map(Mutex<BTreeMap<String, String>>);

    impl AttrTree for Map {
        fn get(&self, name: &str) -> Result<String, EngineError> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(name)
                .cloned()
                .ok_or_else(|| EngineError::new(Errno::ENOENT, name.to_owned()))
        }
        fn set(&self, name: &str, value: &str) -> Result<(), EngineError> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_owned(), value.to_owned());
            Ok(())
        }
        fn names(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
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
    fn new_dev_lists_a_disk_and_tells_the_watchers() {
        let dir = std::env::temp_dir().join(format!("umd-ctree-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("spare.img");
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(40 << 20))
            .expect("file");
        let t = tree();
        let told = Arc::new(Mutex::new(Vec::new()));
        let sink = told.clone();
        t.set_notifier(Box::new(move |a| {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(a.to_owned());
        }));
        assert_eq!(t.get("disks").ok().as_deref(), Some("d0"));
        t.set("new_dev", &file.display().to_string())
            .expect("added");
        assert_eq!(t.get("disks").ok().as_deref(), Some("d0 spare.img"));
        assert_eq!(
            t.get("dev-spare.img/size").ok().as_deref(),
            Some("40960"),
            "KiB"
        );
        let block = t.get("dev-spare.img/block").expect("block");
        assert_eq!(
            std::fs::canonicalize(&file).ok(),
            Some(PathBuf::from(block))
        );
        assert!(t.names().contains(&"dev-spare.img/state".to_owned()));
        assert_eq!(
            told.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_slice(),
            ["disks".to_owned()]
        );
        // The same file again, and a file that is not there.
        let again = t.set("new_dev", &file.display().to_string());
        assert_eq!(again.map_err(|e| e.errno), Err(Errno::EEXIST));
        let gone = t.set("new_dev", &dir.join("nothing.img").display().to_string());
        assert_eq!(gone.map_err(|e| e.errno), Err(Errno::ENOENT));
        std::fs::remove_dir_all(&dir).expect("clean up");
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

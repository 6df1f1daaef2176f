//! The control interface: a running array's md attribute tree served on a Unix socket.
//!
//! md exposes an array through sysfs files (`/sys/block/mdX/md/array_state`, ...) that
//! mdadm, mdmon and people read, write and poll. umd has no sysfs, so each running array
//! serves the same names, values, accepted writes and error codes (protocol.md §2 and §7)
//! on a per-array socket (`paths`), with watch notifications standing in for sysfs poll.
//!
//! The array host implements [`AttrTree`]; [`ControlServer`] serves it and hands out a
//! [`Notifier`] for md's `sysfs_notify` calls; [`client`] is what `umd ctl`, `umd status`
//! and the metadata manager use; the private `proto` module is the sans-I/O wire codec.

pub mod client;
mod container_tree;
pub mod mdstat;
pub mod paths;
pub mod progress;
mod proto;
mod server;

pub use client::ClientError;
pub use container_tree::{ContainerDiskAttrs, ContainerTree};
pub use server::{ControlHandle, ControlServer, Notifier};

use umd_engine::EngineError;

/// An array's attributes under md's sysfs names, as the array host serves them.
///
/// Calls come from the server's connection threads, concurrently; an implementation takes
/// its own locks. It must never call back into the server synchronously; to announce a
/// change it calls [`Notifier::notify`], which only queues.
pub trait AttrTree: Send + Sync + 'static {
    /// Read one attribute (`array_state`, `dev-sdb/state`, `bitmap/chunksize`), formatted
    /// as md's `show` would, without a trailing newline. An unknown name is `ENOENT`.
    fn get(&self, name: &str) -> Result<String, EngineError>;

    /// Write one attribute as md's `store` would, refusing with md's errno.
    fn set(&self, name: &str, value: &str) -> Result<(), EngineError>;

    /// Every attribute name, in a stable order.
    fn names(&self) -> Vec<String>;
}

/// Entry points for the fuzz targets (style R21); not a stable API.
#[doc(hidden)]
pub mod fuzz {
    use super::proto::{self, Frame, LineFramer};
    use super::server::{dispatch, Action};
    use super::AttrTree;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use umd_engine::{EngineError, Errno};

    /// A tiny attribute map with one md-like refusal rule, enough to reach every branch of
    /// the request handling.
    struct FuzzTree(Mutex<BTreeMap<String, String>>);

    impl AttrTree for FuzzTree {
        fn get(&self, name: &str) -> Result<String, EngineError> {
            let map = self
                .0
                .lock()
                .map_err(|_| EngineError::new(Errno::EIO, "poisoned"))?;
            map.get(name)
                .cloned()
                .ok_or_else(|| EngineError::new(Errno::ENOENT, name.to_owned()))
        }

        fn set(&self, name: &str, value: &str) -> Result<(), EngineError> {
            let mut map = self
                .0
                .lock()
                .map_err(|_| EngineError::new(Errno::EIO, "poisoned"))?;
            let slot = map
                .get_mut(name)
                .ok_or_else(|| EngineError::new(Errno::ENOENT, name.to_owned()))?;
            if value.contains('!') {
                return Err(EngineError::new(Errno::EINVAL, "refused"));
            }
            value.clone_into(slot);
            Ok(())
        }

        fn names(&self) -> Vec<String> {
            self.0
                .lock()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        }
    }

    /// Feed arbitrary bytes through the server's framing, request decoding and dispatch,
    /// and every reply back through the client's decoder. Must never panic.
    pub fn message(data: &[u8]) {
        let map = [
            ("array_state", "clean"),
            ("dev-sdb/bad_blocks", "8 8\n16 8\n"),
        ];
        let tree = FuzzTree(Mutex::new(
            map.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ));
        let mut framer = LineFramer::default();
        framer.push(data);
        while let Some(frame) = framer.next_frame() {
            let reply = match frame {
                Frame::TooLong => proto::encode_err(&EngineError::new(Errno::EINVAL, "long")),
                Frame::Line(line) => match dispatch(&tree, &line) {
                    Action::Reply(reply) | Action::Watch { reply, .. } => reply,
                },
            };
            let body = reply.strip_suffix('\n').unwrap_or(&reply);
            assert!(!body.contains('\n'), "a reply must be one line");
            assert!(
                proto::decode_reply(body.as_bytes()).is_ok(),
                "the server sent a reply its own client cannot read: {body:?}"
            );
        }
    }
}

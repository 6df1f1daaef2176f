//! Read errors met by a sync pass: the blocks the member could not read are
//! rebuilt from the other members, rewritten and read back, as md does in
//! every sync action (a `check` scrub included), so that a scrub heals a bad
//! sector instead of costing a member.
//!
//! Why a sync pass needs its own path: the foreground repair
//! (`read_repair.rs`) works on logical sectors through the read planner,
//! which cannot name a parity block; a sync window reads parity too. Here the
//! engine's sync planner plans the rebuild ([`SyncPlanner::plan_rewrite`]).
//!
//! The order, with the window's range lock held by the caller, so that no
//! write changes data or parity in between:
//!
//! 1. read the failing member's part of the window again, one 4 KiB sync
//!    block at a time, to find the blocks that fail (md works per 4 KiB too);
//! 2. for each: count the error (`Array::read_error`; past
//!    `max_read_errors` the member fails), rebuild the block from the other
//!    members, write it to the failing member, read it back and compare, and
//!    count the correction (`dev-NAME/errors`).
//!
//! A failure of steps 1-2 on the failing member, or a block the others cannot
//! rebuild, fails that member; a read failure of another member in the
//! rebuild names that member instead. The caller then reads the window once
//! more. Buffers are allocated here: this is the error path.

use super::read_repair::{corrected, may_repair, rewrite_verified};
use super::Shared;
use crate::member_file::{IoError, MemberFile};
use std::path::PathBuf;
use umd_engine::resync::{SyncPlanner, SyncWindow, SYNC_BLOCK_SECTORS};
use umd_engine::write::{BufRef, PlannedIo};

/// Rewrite the blocks of `role` in `window` that fail to read (module doc).
/// `error` is the failed window read's error, returned if the member must
/// fail before anything more specific is known. Returns the sectors
/// rewritten (0: every block read this time; the error was transient), or
/// the role to fail and why.
pub(super) fn rewrite_unreadable(
    shared: &Shared,
    planner: &SyncPlanner,
    window: &SyncWindow,
    role: u32,
    error: IoError,
) -> Result<u64, (u32, IoError)> {
    let Some(member) = shared.role_member(role) else {
        return Err((role, error));
    };
    let (Some(file), Some(name)) = (shared.file(member), shared.member_name(member)) else {
        return Err((role, error));
    };
    let mut rewritten = 0;
    let mut buf = vec![0u8; (SYNC_BLOCK_SECTORS * 512) as usize];
    for block in window.role_blocks(role) {
        let buf = &mut buf[..(block.len_sectors * 512) as usize];
        let Err(e) = file.read_exact_at(block.device_sector * 512, buf) else {
            continue;
        };
        if !may_repair(shared, name) {
            return Err((role, e));
        }
        rewrite_block(shared, planner, role, block.position, block.len_sectors)?;
        corrected(
            shared,
            name,
            block.device_sector,
            block.len_sectors,
            "sync read error corrected",
        );
        rewritten += block.len_sectors;
    }
    Ok(rewritten)
}

/// Rebuild `role`'s blocks at sync positions `[position, position + len)`
/// from the other roles, write them to `role` and read them back.
fn rewrite_block(
    shared: &Shared,
    planner: &SyncPlanner,
    role: u32,
    position: u64,
    len: u64,
) -> Result<(), (u32, IoError)> {
    let mut window = SyncWindow::default();
    let mut writes = Vec::new();
    let mut done = 0;
    while done < len {
        if !planner.plan_rewrite(role, position + done, len - done, &mut window) {
            let path = file_of(shared, role)?.path().to_owned();
            return Err((
                role,
                unreadable(path, "rebuild", None, "the other members cannot rebuild it"),
            ));
        }
        let mut scratch = vec![0u8; window.scratch_bytes];
        for r in &window.reads {
            file_of(shared, r.role)?
                .read_exact_at(r.device_sector * 512, scratch_of(&mut scratch, r))
                .map_err(|e| (r.role, e))?;
        }
        writes.clear();
        planner.finish_recover(&window, &mut scratch, &mut writes);
        let file = file_of(shared, role)?;
        for w in &writes {
            assert_eq!(w.role, role, "a rewrite writes only the failing role");
            let good = scratch_of(&mut scratch, w);
            rewrite_verified(file, w.device_sector * 512, good).map_err(|e| (role, e))?;
        }
        done += window.len;
    }
    Ok(())
}

/// The open file of `role`'s member, or why there is none.
fn file_of(shared: &Shared, role: u32) -> Result<&MemberFile, (u32, IoError)> {
    shared
        .role_member(role)
        .and_then(|m| shared.file(m))
        .ok_or_else(|| {
            let path = PathBuf::from(format!("(role {role})"));
            (
                role,
                unreadable(path, "open", None, "the member left the array"),
            )
        })
}

/// The scratch bytes a planned sync I/O reads into or writes from.
fn scratch_of<'a>(scratch: &'a mut [u8], io: &PlannedIo) -> &'a mut [u8] {
    let BufRef::Scratch { offset_bytes } = io.buf else {
        unreachable!("sync windows use scratch only")
    };
    &mut scratch[offset_bytes..][..(io.len_sectors * 512) as usize]
}

/// An error for a member whose block could not be rewritten.
fn unreadable(path: PathBuf, op: &'static str, offset: Option<u64>, why: &str) -> IoError {
    IoError {
        path,
        op,
        offset,
        source: std::io::Error::other(why.to_owned()),
    }
}

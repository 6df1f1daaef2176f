//! fio as the load and the judge of the lifecycle tests: 4 KiB random
//! writes through NBD, each block stamped with a crc32c header that fio
//! checks when it reads the block back (`verify`), so a block that lost
//! its write, or came back from the wrong member, fails the run by offset.

use super::Running;
use std::process::{Child, Command, Stdio};

/// fio writing `size` (e.g. "16M") at the array's start with a seeded
/// pattern, 8 requests in flight, and verifying it; `verify_only` reads and
/// checks the blocks a run with the same name, size and seed wrote.
pub(crate) fn fio_verify(
    run: &Running,
    name: &str,
    size: &str,
    seed: u64,
    verify_only: bool,
) -> Command {
    fio_verify_at_depth(run, name, size, seed, 8, verify_only)
}

/// [`fio_verify`] with `iodepth` requests in flight.
pub(crate) fn fio_verify_at_depth(
    run: &Running,
    name: &str,
    size: &str,
    seed: u64,
    iodepth: u32,
    verify_only: bool,
) -> Command {
    let mut cmd = Command::new("fio");
    cmd.args([
        &format!("--name={name}"),
        "--ioengine=nbd",
        &format!("--uri={}", run.uri()),
        "--rw=randwrite",
        "--bs=4k",
        &format!("--size={size}"),
        &format!("--iodepth={iodepth}"),
        "--verify=crc32c",
        "--verify_state_save=0",
        "--verify_fatal=1",
        &format!("--randseed={seed}"),
    ]);
    if verify_only {
        cmd.arg("--verify_only");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Wait for a fio run; panic with its output, naming `what`, if it failed.
pub(crate) fn finish(child: Child, what: &str) {
    let out = child.wait_with_output().expect("fio runs");
    assert!(
        out.status.success(),
        "fio {what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

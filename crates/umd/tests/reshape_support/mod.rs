//! Shared by the reshape tests: a filled array made by `umd create` and
//! `umd run`, and `umd grow` driven to completion or killed with SIGKILL at
//! chosen points of its progress.

use crate::support::{create, pseudo_random, run_ok, umd, Running};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `umd create` an array on `members` (all zeros, so `--assume-clean` is
/// true), then fill it through `umd run` and nbdcopy with pseudo-random
/// bytes from `seed`; returns what was written (the whole array).
pub(crate) fn filled_array(dir: &Path, members: &[PathBuf], opts: &[&str], seed: u64) -> Vec<u8> {
    let mut all = vec!["--assume-clean"];
    all.extend_from_slice(opts);
    create(members, &all);
    let run = Running::start(dir, members);
    let size = run_ok(Command::new("nbdinfo").arg("--size").arg(run.uri()));
    let size: usize = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .expect("nbdinfo prints the size");
    let data = pseudo_random(size, seed);
    let src = dir.join("data.bin");
    std::fs::write(&src, &data).expect("write the data file");
    run_ok(Command::new("nbdcopy").arg(&src).arg(run.uri()));
    assert!(run.stop().success(), "umd run stops cleanly");
    data
}

/// `umd grow` with `args`, to completion; panics with its output on failure.
pub(crate) fn grow_ok(args: &[&str], members: &[PathBuf]) -> String {
    let out = umd()
        .arg("grow")
        .args(args)
        .args(members)
        .output()
        .expect("umd grow");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "umd grow {args:?} failed: {err}");
    err
}

/// `umd grow` with `args`, killed with SIGKILL `delay` after it reported
/// its `checkpoints`-th checkpoint (0: after it started copying). Returns
/// whether it was killed (false: it finished first).
pub(crate) fn grow_killed(
    args: &[&str],
    members: &[PathBuf],
    checkpoints: usize,
    delay: Duration,
) -> bool {
    let mut child = umd()
        .arg("grow")
        .args(args)
        .args(members)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn umd grow");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut seen = 0;
    let mut text = String::new();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        text.push_str(&line);
        text.push('\n');
        let counts = line.contains("checkpoint") || line.contains("data moves down");
        if counts && seen == checkpoints {
            std::thread::sleep(delay);
            let killed = child.kill().is_ok();
            let status = child.wait().expect("wait for umd grow");
            return killed && !status.success();
        }
        if line.contains("checkpoint") {
            seen += 1;
        }
    }
    let status = child.wait().expect("wait for umd grow");
    assert!(status.success(), "umd grow failed: {text}");
    false
}

/// A tiny deterministic generator for kill points.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

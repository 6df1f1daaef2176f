//! `umd demo`: the main job on a built-in example, from a fresh checkout.
//!
//! Creates a four-member md raid5 (metadata 1.2, internal bitmap) on
//! temporary files with the same code as `umd create`, starts it in this
//! process with the same code as `umd run`, writes a pseudo-random pattern
//! through the running array, fails a member and keeps writing degraded,
//! stops cleanly, and finally assembles the surviving members offline (as
//! `umd cat` does) — checking every byte at every step. The members are real
//! md members: `mdadm --examine` reads them and Linux assembles them.

use super::cat::stream;
use super::create::CreateArgs;
use super::members::{candidates, open_and_probe};
use super::run::open_array;
use clap::Parser;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use umd_engine::{assemble, AssembleOptions};
use umd_io::ArrayHost;

const MEMBERS: usize = 4;
const MEMBER_BYTES: u64 = 24 << 20;
/// Bytes per write and read call: large requests, as an NBD client sends.
const IO_BYTES: usize = 1 << 20;
/// How long the initial resync may take on temporary files.
const RESYNC_TIMEOUT: Duration = Duration::from_secs(120);
/// The member failed on purpose.
const VICTIM: usize = 2;

/// `umd create`'s arguments, parsed from words as the command line would.
#[derive(Parser)]
struct CreateWords {
    #[command(flatten)]
    args: CreateArgs,
}

pub(crate) fn run(dir: Option<&Path>) -> Result<ExitCode, String> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("umd-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let paths: Vec<PathBuf> = (0..MEMBERS)
        .map(|i| dir.join(format!("member{i}.img")))
        .collect();
    for p in &paths {
        let f = File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
        f.set_len(MEMBER_BYTES)
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    println!(
        "1. umd create: raid5 on {MEMBERS} files of 24 MiB in {}",
        dir.display()
    );
    let mut words: Vec<String> = [
        "demo",
        "--level",
        "5",
        "--raid-devices",
        "4",
        "--chunk",
        "64",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    words.extend(["--bitmap", "internal", "--name", "demo", "--force"].map(String::from));
    words.extend(paths.iter().map(|p| p.display().to_string()));
    let parsed = CreateWords::try_parse_from(&words).map_err(|e| e.to_string())?;
    super::create::run(parsed.args)?;

    println!("2. umd run (in this process): assemble, start, initial resync");
    let (host, _name) = open_array(&paths, None, false)?;
    wait_idle(&host)?;
    let size = host.size_bytes();
    let mut expected = pseudo_random(usize::try_from(size).map_err(|e| e.to_string())?, 7);
    write_all(&host, &expected, 0)?;
    host.flush().map_err(|e| e.to_string())?;
    check(&host, &expected, "healthy")?;
    println!(
        "   wrote and read back {} MiB, parity computed per full stripe",
        size >> 20
    );

    let victim = format!("dev-member{VICTIM}.img/state");
    println!("3. fail member{VICTIM}.img ({victim} = faulty) and keep writing");
    host.set(&victim, "faulty").map_err(|e| e.to_string())?;
    let degraded = host.get("degraded").map_err(|e| e.to_string())?;
    let half = expected.len() / 2;
    let second = pseudo_random(half, 11);
    expected[..half].copy_from_slice(&second);
    write_all(&host, &second, 0)?;
    host.flush().map_err(|e| e.to_string())?;
    check(&host, &expected, "degraded")?;
    println!("   degraded = {degraded}; rewrote the first half, read everything back");

    println!("4. clean stop: flush, superblocks written clean");
    host.shutdown().map_err(|e| e.to_string())?;
    drop(host);

    println!("5. offline read of the three surviving members (as umd cat)");
    let survivors: Vec<PathBuf> = paths
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != VICTIM)
        .map(|(_, p)| p.clone())
        .collect();
    let offline = read_offline(&survivors)?;
    if offline != expected {
        return Err("offline read of the surviving members differs".to_string());
    }
    println!("every read matched the data written, byte for byte");
    println!(
        "members are in {} (try: umd examine {}/member0.img)",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn wait_idle(host: &ArrayHost) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let action = host.get("sync_action").map_err(|e| e.to_string())?;
        if action == "idle" {
            return Ok(());
        }
        if started.elapsed() > RESYNC_TIMEOUT {
            return Err(format!(
                "sync_action still {action} after {RESYNC_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_all(host: &ArrayHost, data: &[u8], offset: u64) -> Result<(), String> {
    for (i, piece) in data.chunks(IO_BYTES).enumerate() {
        let at = offset + (i * IO_BYTES) as u64;
        host.write(at, piece, false)
            .map_err(|e| format!("write at byte {at}: {e}"))?;
    }
    Ok(())
}

fn check(host: &ArrayHost, expected: &[u8], label: &str) -> Result<(), String> {
    let mut buf = vec![0u8; IO_BYTES];
    for (i, want) in expected.chunks(IO_BYTES).enumerate() {
        let at = (i * IO_BYTES) as u64;
        let got = &mut buf[..want.len()];
        host.read(at, got)
            .map_err(|e| format!("{label}: read at byte {at}: {e}"))?;
        if got != want {
            return Err(format!(
                "{label}: data at byte {at} differs from what was written"
            ));
        }
    }
    Ok(())
}

fn read_offline(members: &[PathBuf]) -> Result<Vec<u8>, String> {
    let opened = members
        .iter()
        .map(|p| open_and_probe(p))
        .collect::<Result<Vec<_>, _>>()?;
    let cands = candidates(&opened, None)?;
    let assembly = assemble(&cands, &AssembleOptions::default()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    stream(&assembly, &opened, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Deterministic pseudo-random bytes (splitmix64).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

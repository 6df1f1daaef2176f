//! Helpers for the DDF tests: the real mdadm-made images in memory, a
//! [`DdfHandler`] over them, applying its writes, and reading the result with
//! the host's `mdadm --examine` (the independent reference).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use umd::mon::ddf::DdfHandler;
use umd::mon::handler::MetadataHandler;
use umd_engine::native::MetadataWrite;

/// A fixed clock for deterministic time stamps: 2023-11-14.
pub(crate) const CLOCK_S: u64 = 1_700_000_000;

/// The real-image directory, or `None` when `UMD_SKIP_REAL_IMAGES=1`.
pub(crate) fn testdata() -> Option<PathBuf> {
    let dir = std::env::var_os("UMD_TESTDATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/real"),
        PathBuf::from,
    );
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("UMD_SKIP_REAL_IMAGES").is_some_and(|v| v == "1"),
        "real images not found at {} (set UMD_TESTDATA, or UMD_SKIP_REAL_IMAGES=1 to skip)",
        dir.display()
    );
    None
}

/// The dissect.volume DDF set `stem` (e.g. "ddf-raid5"), files 1..=n, in memory.
pub(crate) fn dissect_set(stem: &str, n: usize) -> Option<Vec<Vec<u8>>> {
    let dir = testdata()?;
    Some(
        (1..=n)
            .map(|k| {
                let path = dir.join(format!("dissect.volume/ddf/{stem}-{k}.bin.gz"));
                let raw =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .expect("gunzip");
                out
            })
            .collect(),
    )
}

/// A handler over in-memory images, with the fixed clock.
pub(crate) fn handler_over(images: &[Vec<u8>]) -> DdfHandler {
    let sources = images.iter().map(|img| {
        (img.len() as u64, move |offset: u64, buf: &mut [u8]| {
            let at = usize::try_from(offset).map_err(std::io::Error::other)?;
            let src = img
                .get(at..at + buf.len())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        })
    });
    DdfHandler::load(sources)
        .expect("the images form one container")
        .with_clock(Box::new(|| CLOCK_S))
}

/// Write what the handler wants written into the images; returns how many
/// blocks there were.
pub(crate) fn sync_into(h: &mut DdfHandler, images: &mut [Vec<u8>]) -> usize {
    let mut writes: Vec<MetadataWrite> = Vec::new();
    h.sync_metadata(&mut writes);
    apply(images, &writes);
    writes.len()
}

/// Apply metadata writes to in-memory images (`member` indexes `images`).
pub(crate) fn apply(images: &mut [Vec<u8>], writes: &[MetadataWrite]) {
    for w in writes {
        assert_eq!(w.bytes.len() % 512, 0, "whole sectors");
        let at = usize::try_from(w.offset_bytes).expect("fits");
        images[w.member][at..at + w.bytes.len()].copy_from_slice(&w.bytes);
    }
}

/// `mdadm --examine` of an in-memory image, written to `dir/name`.
pub(crate) fn examine_image(dir: &Path, name: &str, image: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, image).expect("write image");
    mdadm_examine_ok(&path)
}

/// `mdadm --examine PATH`, which must succeed.
pub(crate) fn mdadm_examine_ok(path: &Path) -> String {
    let out = Command::new("mdadm")
        .arg("--examine")
        .arg(path)
        .output()
        .expect("mdadm is required by this test (install it)");
    assert!(
        out.status.success(),
        "mdadm --examine {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `Key : value` in mdadm's text.
pub(crate) fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(" : ")?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// mdadm's "Type/State" column of the physical disk with `refnum` (e.g.
/// "active/Online"), from its `Physical Disks` table.
pub(crate) fn pd_row(text: &str, refnum: u32) -> Option<String> {
    let want = format!("{refnum:08x}");
    let table = text.split(" Physical Disks :").nth(1)?;
    table
        .lines()
        .take_while(|l| !l.starts_with(" Physical disks not in metadata"))
        .find_map(|l| {
            let mut words = l.split_whitespace();
            let _number = words.next()?;
            (words.next()? == want).then(|| {
                let size_end = l.find('K')? + 1;
                Some(l[size_end..].trim().to_string())
            })?
        })
}

/// Number of physical disks listed in mdadm's table.
pub(crate) fn pd_count(text: &str) -> usize {
    let Some(table) = text.split(" Physical Disks :").nth(1) else {
        return 0;
    };
    table
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with(" Physical disks not in metadata"))
        .filter(|l| !l.trim().is_empty())
        .count()
}

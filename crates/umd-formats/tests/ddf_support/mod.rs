//! Helpers shared by the DDF tests: locating and decompressing the real
//! images (failing loudly when they are missing unless
//! `UMD_SKIP_REAL_IMAGES=1`), and probing an image held in memory.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

use umd_formats::ddf::{self, Ddf};
use umd_formats::probe::ProbeError;

pub(crate) fn images_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("UMD_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/real"),
        PathBuf::from,
    );
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("UMD_SKIP_REAL_IMAGES").is_some_and(|v| v == "1"),
        "real images not found at {}; set UMD_TESTDATA, or UMD_SKIP_REAL_IMAGES=1 to skip",
        dir.display()
    );
    None
}

pub(crate) fn load(dir: &std::path::Path, rel: &str) -> Vec<u8> {
    let path = dir.join(rel);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    if std::path::Path::new(rel)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xz"))
    {
        let mut input = std::io::BufReader::new(file);
        lzma_rs::xz_decompress(&mut input, &mut out).expect("valid xz");
    } else {
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut out)
            .expect("valid gzip");
    }
    out
}

pub(crate) fn probe_mem(image: &[u8]) -> Result<Option<Ddf>, ProbeError> {
    let mut read = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let src = image
            .get(start..start + buf.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    };
    ddf::probe(image.len() as u64, &mut read)
}

pub(crate) fn must_probe(image: &[u8], name: &str) -> Ddf {
    match probe_mem(image) {
        Ok(Some(d)) => d,
        Ok(None) => panic!("{name}: no DDF found"),
        Err(e) => panic!("{name}: {e}"),
    }
}

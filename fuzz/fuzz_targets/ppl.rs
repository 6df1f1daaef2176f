//! Fuzz the PPL header parser and area walk through their library entry point (style R21).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| umd_formats::fuzz::ppl(data));

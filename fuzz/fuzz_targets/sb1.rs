//! Fuzz the sb1 parser through its library entry point (style R21).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| umd_formats::fuzz::sb1(data));

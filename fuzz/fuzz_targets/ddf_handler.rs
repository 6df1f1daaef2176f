//! Fuzz the DDF metadata handler: bent containers, random monitor calls, and
//! what it writes must load again (style R21).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| umd::mon::fuzz::ddf_handler(data));

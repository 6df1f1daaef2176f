#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| umd::control::fuzz::message(data));

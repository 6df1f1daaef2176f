#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| umd::nbd::fuzz::request_stream(data));

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| umd::mon::socket::fuzz::frames(data));

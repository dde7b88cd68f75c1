//! libFuzzer entry point of `spoor_fuzz::query`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::query(data));

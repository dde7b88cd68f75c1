//! libFuzzer entry point of `spoor_fuzz::config_file`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::config_file(data));

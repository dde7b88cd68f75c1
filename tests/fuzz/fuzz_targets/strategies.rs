//! libFuzzer entry point of `spoor_fuzz::strategies`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::strategies(data));

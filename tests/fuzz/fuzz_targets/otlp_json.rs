//! libFuzzer entry point of `spoor_fuzz::otlp_json`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::otlp_json(data));

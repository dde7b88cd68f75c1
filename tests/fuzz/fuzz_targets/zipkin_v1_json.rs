//! libFuzzer entry point of `spoor_fuzz::zipkin_v1_json`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::zipkin_v1_json(data));

//! libFuzzer entry point of `spoor_fuzz::zipkin_v2_json`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::zipkin_v2_json(data));

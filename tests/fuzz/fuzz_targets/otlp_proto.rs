//! libFuzzer entry point of `spoor_fuzz::otlp_proto`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::otlp_proto(data));

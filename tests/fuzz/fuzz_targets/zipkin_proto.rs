//! libFuzzer entry point of `spoor_fuzz::zipkin_proto`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::zipkin_proto(data));

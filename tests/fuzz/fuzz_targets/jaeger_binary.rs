//! libFuzzer entry point of `spoor_fuzz::jaeger_binary`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::jaeger_binary(data));

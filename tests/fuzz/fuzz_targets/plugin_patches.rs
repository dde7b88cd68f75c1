//! libFuzzer entry point of `spoor_fuzz::plugin_patches`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoor_fuzz::plugin_patches(data));

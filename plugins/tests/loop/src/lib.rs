//! Hostile test plugin for spoor-plugin-host's sandbox tests: spins forever in `process` (must run out of fuel).
//! Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "../../wit/v0.1/plugin.wit", world: "spoor:plugin/plugin@0.1.0" });

struct Plugin;

export!(Plugin);

impl Guest for Plugin {
    fn metadata() -> Metadata {
        metadata_named("hostile-loop")
    }

    fn configure(_config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn process(batch: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        let mut x = batch.len() as u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

fn metadata_named(name: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: "0.1.0".into(),
        capabilities: Vec::new(),
    }
}

//! Hostile test plugin for spoor-plugin-host's sandbox tests: traps in `process`: panics, or executes `unreachable` when configured with `{"how": "unreachable"}`.
//! Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "../../wit/v0.1/plugin.wit", world: "spoor:plugin/plugin@0.1.0" });

struct Plugin;

export!(Plugin);

use std::sync::atomic::{AtomicBool, Ordering};

static UNREACHABLE: AtomicBool = AtomicBool::new(false);

impl Guest for Plugin {
    fn metadata() -> Metadata {
        metadata_named("hostile-trap")
    }

    fn configure(config: String) -> Result<(), PluginError> {
        UNREACHABLE.store(config.contains("unreachable"), Ordering::Relaxed);
        Ok(())
    }

    fn process(batch: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        if UNREACHABLE.load(Ordering::Relaxed) {
            std::process::abort();
        }
        panic!("hostile plugin panics on a batch of {} bytes", batch.len());
    }
}

fn metadata_named(name: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: "0.1.0".into(),
        capabilities: Vec::new(),
    }
}

//! Hostile test plugin for spoor-plugin-host's sandbox tests: asks for every capability (clock, random, log); logs once per batch and passes it through.
//! Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "../../wit/v0.1/plugin.wit", world: "spoor:plugin/plugin@0.1.0" });

struct Plugin;

export!(Plugin);

use spoor::plugin::host::{log, Level};
use spoor::plugin::types::Capability;

impl Guest for Plugin {
    fn metadata() -> Metadata {
        Metadata {
            name: "hostile-greedy".into(),
            version: "0.1.0".into(),
            capabilities: vec![Capability::Clock, Capability::Random, Capability::Log],
        }
    }

    fn configure(_config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn process(batch: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        log(Level::Info, &format!("greedy saw {} bytes", batch.len()));
        Ok(batch)
    }
}

//! Hostile test plugin for spoor-plugin-host's sandbox tests: answers with bytes that are not a valid batch (right magic, garbage after).
//! Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "../../wit/v0.1/plugin.wit", world: "spoor:plugin/plugin@0.1.0" });

struct Plugin;

export!(Plugin);

impl Guest for Plugin {
    fn metadata() -> Metadata {
        metadata_named("hostile-garbage")
    }

    fn configure(_config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn process(batch: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        let mut out = b"SPBK\x01".to_vec();
        out.extend(batch.iter().rev().map(|b| b ^ 0x5a));
        out.extend_from_slice(&[0xff; 16]);
        Ok(out)
    }
}

fn metadata_named(name: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: "0.1.0".into(),
        capabilities: Vec::new(),
    }
}

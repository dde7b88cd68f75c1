//! Hostile test plugin for spoor-plugin-host's sandbox tests: sleeps an hour per batch (fuel
//! does not run while the host waits, so the host must not really wait), then passes the batch
//! on. Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "../../wit/v0.1/plugin.wit", world: "spoor:plugin/plugin@0.1.0" });

struct Plugin;

export!(Plugin);

impl Guest for Plugin {
    fn metadata() -> Metadata {
        Metadata {
            name: "hostile-sleepy".into(),
            version: "0.1.0".into(),
            capabilities: Vec::new(),
        }
    }

    fn configure(_config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn process(batch: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Ok(batch)
    }
}

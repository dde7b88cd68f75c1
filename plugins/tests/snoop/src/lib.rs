//! Hostile test plugin for spoor-plugin-host's sandbox tests: asks for nothing, then tries the clocks, the file system, the environment and the arguments; refuses the batch naming whatever leaked, else passes it through.
//! Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "../../wit/v0.1/plugin.wit", world: "spoor:plugin/plugin@0.1.0" });

struct Plugin;

export!(Plugin);

use std::time::{Instant, SystemTime, UNIX_EPOCH};

impl Guest for Plugin {
    fn metadata() -> Metadata {
        metadata_named("hostile-snoop")
    }

    fn configure(_config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn process(batch: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        let mut leaks = Vec::new();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        if wall != 0 {
            leaks.push(format!("wall clock {wall}"));
        }
        let start = Instant::now();
        std::hint::black_box(batch.iter().map(|&b| u64::from(b)).sum::<u64>());
        let elapsed = start.elapsed().as_nanos();
        if elapsed != 0 {
            leaks.push(format!("monotonic clock advanced {elapsed}"));
        }
        for path in ["/etc/hostname", "/etc/passwd", "/proc/self/environ", "."] {
            if let Ok(data) = std::fs::read(path) {
                leaks.push(format!("file {path} ({} bytes)", data.len()));
            }
            if let Ok(dir) = std::fs::read_dir(path) {
                leaks.push(format!("directory {path} ({} entries)", dir.count()));
            }
        }
        let vars = std::env::vars().count();
        if vars != 0 {
            leaks.push(format!("{vars} environment variables"));
        }
        let args = std::env::args().count();
        if args != 0 {
            leaks.push(format!("{args} arguments"));
        }
        if leaks.is_empty() {
            Ok(batch)
        } else {
            Err(PluginError::Failed(format!("leaked: {}", leaks.join(", "))))
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

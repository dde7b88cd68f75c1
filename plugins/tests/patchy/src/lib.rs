//! Hostile test plugin for spoor-plugin-host's sandbox tests, in strings mode (contract 0.2):
//! answers `process-strings` with patches the host must refuse, chosen by `{"how": ...}`:
//! `out-of-range` (an index past the view), `unordered` (descending indexes), `wrong-kind`
//! (`remove` on a span name), `oversized` (a replacement of more than the output cap),
//! `bad-utf8` (replacement text that is not UTF-8, which the canonical ABI refuses),
//! `bad-slice` (a replacement slice outside the text), `bad-op` (an unknown op word), or
//! `valid` (upper-cases every span name: the well-behaved control).
//! Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature, and `bad-utf8` forges a string.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "../../wit/v0.2.0/plugin.wit", world: "spoor:plugin/plugin@0.2.0" });

use spoor::plugin::types::{Capability, Mode};
use std::cell::RefCell;

struct Plugin;

export!(Plugin);

thread_local! {
    static HOW: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The `kind` word of span names.
const SPAN_NAME: u32 = 2;

impl Guest for Plugin {
    fn metadata() -> Metadata {
        Metadata {
            name: "hostile-patchy".into(),
            version: "0.2.0".into(),
            capabilities: Vec::<Capability>::new(),
            mode: Mode::Strings,
        }
    }

    fn configure(config: String) -> Result<(), PluginError> {
        let how = [
            "out-of-range",
            "unordered",
            "wrong-kind",
            "oversized",
            "bad-utf8",
            "bad-slice",
            "bad-op",
            "valid",
        ]
        .into_iter()
        .find(|h| config.contains(h))
        .ok_or_else(|| PluginError::InvalidConfig(format!("`how`: unknown in {config}")))?;
        HOW.with(|h| *h.borrow_mut() = how.to_string());
        Ok(())
    }

    fn process(_batch: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        Err(PluginError::Failed("strings mode only".into()))
    }

    fn process_strings(view: StringsView) -> Result<Patches, PluginError> {
        let n = (view.records.len() / 4) as u32;
        let span_names: Vec<u32> = (0..n)
            .filter(|&i| view.records[i as usize * 4 + 2] == SPAN_NAME)
            .collect();
        let first = span_names.first().copied().unwrap_or(0);
        // Flat patches: `index, op, offset, len` per patch into `text`.
        let mut text = String::new();
        let mut ops = Vec::new();
        let mut replace = |index: u32, s: &str| {
            ops.extend_from_slice(&[index, REPLACE, text.len() as u32, s.len() as u32]);
            text.push_str(s);
        };
        let how = HOW.with(|h| h.borrow().clone());
        match how.as_str() {
            "out-of-range" => {
                replace(first, "ok");
                replace(n, "past the end");
            }
            "unordered" => {
                replace(first + 1, "b");
                replace(first, "a");
            }
            "wrong-kind" => ops.extend_from_slice(&[first, REMOVE, 0, 0]),
            "oversized" => replace(first, &"x".repeat(view.text.len() * 4 + (2 << 20))),
            "bad-slice" => ops.extend_from_slice(&[first, REPLACE, 10, 1 << 20]),
            "bad-op" => ops.extend_from_slice(&[first, 9, 0, 0]),
            "bad-utf8" => {
                // The text is forged: the canonical ABI checks it when the host lifts it.
                let forged = unsafe { String::from_utf8_unchecked(vec![b'o', 0xff, 0xfe, b'k']) };
                ops.extend_from_slice(&[first, REPLACE, 0, 4]);
                return Ok(Patches { text: forged, ops });
            }
            _ => {
                for &i in &span_names {
                    let r = &view.records[i as usize * 4..i as usize * 4 + 2];
                    let name = &view.text[r[0] as usize..(r[0] + r[1]) as usize];
                    replace(i, &name.to_uppercase());
                }
            }
        }
        Ok(Patches { text, ops })
    }
}

/// The `op` words of `patches`.
const REPLACE: u32 = 0;
const REMOVE: u32 = 2;

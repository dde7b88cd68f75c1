//! Hostile test plugin for spoor-plugin-host's sandbox tests, in strings mode (contract 0.2):
//! answers `process-strings` with patches the host must refuse, chosen by `{"how": ...}`:
//! `out-of-range` (an index past the view), `unordered` (descending indexes), `wrong-kind`
//! (`remove` on a span name), `oversized` (a replacement of more than the output cap),
//! `bad-utf8` (a replacement string that is not UTF-8, which the canonical ABI refuses), or
//! `valid` (upper-cases every span name: the well-behaved control).
//! Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature, and `bad-utf8` forges a string.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "../../wit/plugin.wit", world: "spoor:plugin/plugin@0.2.0" });

use spoor::plugin::types::{Capability, Mode, PatchOp};
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

    fn process_strings(view: StringsView) -> Result<Vec<Patch>, PluginError> {
        let n = (view.records.len() / 4) as u32;
        let span_names: Vec<u32> = (0..n)
            .filter(|&i| view.records[i as usize * 4 + 2] == SPAN_NAME)
            .collect();
        let first = span_names.first().copied().unwrap_or(0);
        let replace = |index: u32, s: String| Patch {
            index,
            op: PatchOp::Replace(s),
        };
        let how = HOW.with(|h| h.borrow().clone());
        Ok(match how.as_str() {
            "out-of-range" => vec![
                replace(first, "ok".into()),
                replace(n, "past the end".into()),
            ],
            "unordered" => vec![replace(first + 1, "b".into()), replace(first, "a".into())],
            "wrong-kind" => vec![Patch {
                index: first,
                op: PatchOp::Remove,
            }],
            "oversized" => vec![replace(first, "x".repeat(view.text.len() * 4 + (2 << 20)))],
            // SAFETY (of the forgery, not of the result): the bytes are never read as a `str` in
            // the guest; the canonical ABI checks them when the host lifts the list.
            "bad-utf8" => vec![replace(first, unsafe {
                String::from_utf8_unchecked(vec![b'o', 0xff, 0xfe, b'k'])
            })],
            _ => span_names
                .iter()
                .map(|&i| {
                    let r = &view.records[i as usize * 4..i as usize * 4 + 2];
                    let text = &view.text[r[0] as usize..(r[0] + r[1]) as usize];
                    replace(i, text.to_uppercase())
                })
                .collect(),
        })
    }
}

//! Bench-only guest for `benches/benches/plugins.rs`: attribute redaction over typed WIT
//! records (`wit/typed.wit`), to compare with the block-encoded batch of the real contract.
//! Built for wasm32-wasip2 by `make plugins-hostile`.

// wit-bindgen's export glue is `unsafe` FFI by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({ path: "wit/typed.wit", world: "typed" });

use spoor::bench_typed::types::Value;

struct Typed;

export!(Typed);

impl Guest for Typed {
    fn process(keys: Vec<String>, mut spans: Vec<Span>) -> Vec<Span> {
        for span in &mut spans {
            for kv in &mut span.attributes {
                if keys.contains(&kv.key) {
                    kv.value = Value::Str("[REDACTED]".into());
                }
            }
        }
        spans
    }
}

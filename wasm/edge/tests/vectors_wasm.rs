//! `spoor-core`'s consistent-sampling vectors decided by the edge collector's head sampler
//! compiled to WebAssembly, as it runs in workerd (`make wasm-test` runs this file in Node with
//! `wasm-bindgen-test-runner`; the same table runs natively in `src/tests.rs`, in the browser
//! module's wasm tests and in a wasm32-wasip2 policy plugin under wasmtime).
#![cfg(target_arch = "wasm32")]

use spoor_core::sampling::consistent::{self, CONSISTENT_VECTORS};
use spoor_core::TraceId;
use spoor_edge::{decide, Config};
use wasm_bindgen_test::wasm_bindgen_test;

fn config(probability: f64) -> Config {
    let p = probability.to_string();
    Config::from_vars(&|name| match name {
        "SPOOR_TOKENS" => Some("t".into()),
        "SAMPLING_PROBABILITY" => Some(p.clone()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("probability {probability}: {e}"))
}

#[wasm_bindgen_test]
fn the_edge_decides_the_consistent_sampling_vectors_in_wasm() {
    assert!(CONSISTENT_VECTORS.len() >= 12);
    for v in CONSISTENT_VECTORS {
        let cfg = config(v.probability);
        let kept = decide(&cfg, TraceId(v.trace_id), v.trace_state, None);
        assert_eq!(kept, v.sampled, "{v:?}");
        // and the threshold the worker samples at is the one the table encodes
        let th = cfg.threshold.encode();
        assert_eq!(th.as_ref().map_or("", |t| t.as_str()), v.th, "{v:?}");
        assert_eq!(
            consistent::sample(cfg.threshold, TraceId(v.trace_id), v.trace_state),
            v.sampled
        );
    }
}

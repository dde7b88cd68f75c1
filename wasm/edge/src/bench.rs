//! `make bench-edge`: the worker's request logic exported to Node through wasm-bindgen, so a
//! script can time [`crate::handle`] compiled to wasm exactly as the worker runs it (the glue,
//! which only moves bytes, is left out).

use wasm_bindgen::prelude::wasm_bindgen;

use crate::{handle, Config, Outcome, Request};

/// Handles one authenticated `POST /v1/traces` protobuf body at `probability`; returns the
/// number of spans that would be forwarded, or the refusal's status code plus 1,000,000.
#[wasm_bindgen]
pub fn edge_handle(body: &[u8], probability: f64) -> u32 {
    let p = probability.to_string();
    let vars = |n: &str| match n {
        "SPOOR_TOKENS" => Some("bench-token".to_string()),
        "SAMPLING_PROBABILITY" => Some(p.clone()),
        "ALLOWED_ORIGINS" => Some("https://app.example".to_string()),
        _ => None,
    };
    let Ok(cfg) = Config::from_vars(&vars) else {
        return 1_000_500;
    };
    let len = body.len().to_string();
    let header = |n: &str| match n {
        "authorization" => Some("Bearer bench-token".to_string()),
        "content-type" => Some("application/x-protobuf".to_string()),
        "content-length" => Some(len.clone()),
        "origin" => Some("https://app.example".to_string()),
        "traceparent" => {
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string())
        }
        _ => None,
    };
    let req = Request {
        method: "POST",
        path: crate::OTLP_PATH,
        header: &header,
        body,
    };
    match handle(&cfg, &req) {
        Outcome::Forward { batches, .. } => batches.iter().map(|b| b.spans as u32).sum(),
        Outcome::Reply(r) => 1_000_000 + u32::from(r.status),
        Outcome::Stats { .. } => 1_000_000,
    }
}

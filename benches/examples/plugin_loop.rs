//! Runs one plugin chain of `benches/benches/plugins.rs` over the same 1,000-span batch again
//! and again, in place (each call's output is the next call's input; redact and rename give the
//! same patches every time), and prints CPU and wall time per batch: a steady loop with nothing
//! else in it, for `perf record` and for instruction counts under callgrind, which are
//! repeatable on a shared machine (the cost of 20 calls is the count at N = 40 minus the count
//! at N = 20). After `make plugins`:
//!
//! ```text
//! cargo run --release -p spoor-bench --example plugin_loop -- [N] [noop|keys|redact|rename]
//! ```
//!
//! `WASM=path` runs another build of the plugin file (to compare two builds of a plugin with
//! one host).

use std::path::PathBuf;

use spoor_bench::gen::{GenConfig, Generator};
use spoor_core::Span;
use spoor_plugin_host::{PluginChain, PluginSpec};

/// This thread's CPU time so far, in microseconds.
fn cpu_us() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("read schedstat");
    let ns: f64 = text
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .expect("schedstat starts with nanoseconds on cpu");
    ns / 1e3
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iters: usize = args.next().map_or(2000, |s| s.parse().expect("N"));
    let which = args.next().unwrap_or_else(|| "redact".into());
    let keys = ["http.user_agent", "app.attr.0"];
    let (file, config) = match which.as_str() {
        "noop" => (
            "redact.wasm",
            serde_json::json!({ "keys": ["no.such.key"], "emails": false, "cards": false }),
        ),
        "keys" => (
            "redact.wasm",
            serde_json::json!({ "keys": keys, "emails": false, "cards": false }),
        ),
        "redact" => ("redact.wasm", serde_json::json!({ "keys": keys })),
        "rename" => (
            "rename.wasm",
            serde_json::json!({
                "attributes": { "http.user_agent": "user_agent.original" },
                "lowercase_services": true,
                "normalize_paths": true,
            }),
        ),
        other => panic!("unknown chain {other:?}: noop, keys, redact or rename"),
    };
    let path = std::env::var_os("WASM").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/plugins")
                .join(file)
        },
        PathBuf::from,
    );
    let mut spec = PluginSpec::new("bench", path);
    spec.config = config.as_object().cloned().expect("object");
    let chain = PluginChain::load(&[spec]).expect("plugin loads");
    let mut g = Generator::new(GenConfig {
        spans_per_trace: 20,
        seed: 7,
        ..GenConfig::default()
    })
    .expect("valid generator config");
    let mut spans: Vec<Span> = (0..50).flat_map(|_| g.next_trace()).collect();
    let run = |mut spans: Vec<Span>, n: usize| {
        for _ in 0..n {
            let out = chain.process(spans);
            assert!(out.errors.is_empty(), "{:?}", out.errors);
            spans = out.spans;
        }
        spans
    };
    // The first calls grow the guest's memory and the host's buffers.
    spans = run(spans, 10);
    let (cpu, wall) = (cpu_us(), std::time::Instant::now());
    std::hint::black_box(run(spans, iters));
    println!(
        "{which}: {:.1} us CPU, {:.1} us wall per batch ({iters} batches)",
        (cpu_us() - cpu) / iters as f64,
        wall.elapsed().as_secs_f64() * 1e6 / iters as f64
    );
}

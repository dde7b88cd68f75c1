//! CPU time (not wall time) per 1,000-span batch through the plugin chains of
//! `benches/benches/plugins.rs`, for comparisons on a shared, busy machine where Criterion's
//! wall-clock times swing by 2x: `cargo run --release -p spoor-bench --example plugin_cpu --
//! [ROUNDS] [ITERS] [ONLY]` after `make plugins plugins-hostile`. Each round runs every configuration
//! ITERS times in turn and reads this thread's CPU time (`/proc/thread-self/schedstat`); the
//! clone of the input batch is measured alone and subtracted; the median round is printed. With
//! ONLY, just that configuration runs (for a profiler).

use std::path::{Path, PathBuf};
use std::time::Duration;

use spoor_bench::gen::{GenConfig, Generator};
use spoor_core::block::encode_block;
use spoor_core::Span;
use spoor_plugin_host::{PluginChain, PluginSpec};

const BATCH: usize = 1000;

/// This thread's CPU time so far.
fn cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("read schedstat");
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .expect("schedstat starts with nanoseconds on cpu");
    Duration::from_nanos(ns)
}

fn chain(path: &Path, config: serde_json::Value) -> PluginChain {
    let mut spec = PluginSpec::new("bench", path);
    spec.config = config.as_object().cloned().expect("object");
    PluginChain::load(&[spec]).expect("plugin loads")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(5, |s| s.parse().expect("rounds"));
    let iters: usize = args.next().map_or(300, |s| s.parse().expect("iters"));
    let only = args.next();
    let plugins = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    let (redact, rename) = (plugins.join("redact.wasm"), plugins.join("rename.wasm"));
    let mut g = Generator::new(GenConfig {
        spans_per_trace: 20,
        seed: 7,
        ..GenConfig::default()
    })
    .expect("valid generator config");
    let spans: Vec<Span> = (0..BATCH / 20).flat_map(|_| g.next_trace()).collect();

    let keys = ["http.user_agent", "app.attr.0"];
    let chains = [
        (
            "strings_noop",
            chain(
                &redact,
                serde_json::json!({ "keys": ["no.such.key"], "emails": false, "cards": false }),
            ),
        ),
        (
            "redact_keys_only",
            chain(
                &redact,
                serde_json::json!({ "keys": keys, "emails": false, "cards": false }),
            ),
        ),
        (
            "redact",
            chain(&redact, serde_json::json!({ "keys": keys })),
        ),
        (
            "rename",
            chain(
                &rename,
                serde_json::json!({
                    "attributes": { "http.user_agent": "user_agent.original" },
                    "lowercase_services": true,
                    "normalize_paths": true,
                }),
            ),
        ),
    ];
    for (_, c) in &chains {
        let out = c.process(spans.clone());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
    }

    let mut encode = Vec::new();
    let mut clone = Vec::new();
    let mut per_chain = vec![Vec::new(); chains.len()];
    for _ in 0..rounds {
        let t = cpu();
        for _ in 0..iters {
            std::hint::black_box(encode_block(std::hint::black_box(&spans)));
        }
        encode.push((cpu() - t) / iters as u32);
        let t = cpu();
        for _ in 0..iters {
            drop(std::hint::black_box(spans.clone()));
        }
        let cloned = (cpu() - t) / iters as u32;
        clone.push(cloned);
        for (i, (name, c)) in chains.iter().enumerate() {
            if only.as_deref().is_some_and(|o| o != *name) {
                continue;
            }
            let t = cpu();
            for _ in 0..iters {
                std::hint::black_box(c.process(spans.clone()));
            }
            per_chain[i].push(((cpu() - t) / iters as u32).saturating_sub(cloned));
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!("CPU time per {BATCH}-span batch, median of {rounds} rounds of {iters}:");
    println!(
        "{:<18} {:>9.1} us",
        "block_encode",
        median(&mut encode).as_secs_f64() * 1e6
    );
    println!(
        "{:<18} {:>9.1} us",
        "clone (subtracted)",
        median(&mut clone).as_secs_f64() * 1e6
    );
    for (i, (name, _)) in chains.iter().enumerate() {
        if per_chain[i].is_empty() {
            continue;
        }
        println!(
            "{name:<18} {:>9.1} us",
            median(&mut per_chain[i]).as_secs_f64() * 1e6
        );
    }
}

//! Criterion benchmarks of the plugin runtime (spoor-plugin-host), per span where it makes
//! sense:
//!
//! - `plugins/redact_1000` — the example redaction plugin (strings mode, contract 0.2) on a
//!   1,000-span batch through `PluginChain::process` (build the strings view, call, check and
//!   apply the patches), with its default settings (keys, e-mail and card scanning);
//!   `plugins/rename_1000` the renaming plugin (strings mode) the same way;
//!   `plugins/strings_view_1000` the host's share alone (building the view);
//!   `plugins/block_encode_1000` and `plugins/block_roundtrip_1000` the host's share of a
//!   spans-mode plugin (encode; encode + decode), `plugins/passthrough_1000` a spans-mode
//!   plugin that returns its input untouched (so the host skips the decode).
//! - `instantiate/*` — a fresh instance from the pooling allocator: the bench-only typed
//!   component without configuration, and the redaction plugin including `configure` (what
//!   instantiating per batch would cost; the runtime keeps configured instances instead).
//! - `boundary/*` — the same redaction (attribute keys only) on the same 1,000 spans, once as
//!   the strings view (contract 0.2's strings mode; under 0.1 this was the block-encoded
//!   `list<u8>`) and once as typed WIT records (a bench-only world,
//!   `plugins/tests/typed/wit/typed.wit`), both measured from `Vec<Span>` to `Vec<Span>`. The
//!   typed world carries less (no links, scopes, nested values), which favours it.
//!
//! Needs the components: the bench runs `make plugins plugins-hostile` first. Run with
//! `cargo bench -p spoor-bench --bench plugins`; `-- --test` runs each benchmark once.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use spoor_bench::gen::{GenConfig, Generator};
use spoor_core::block::{encode_block, BlockReader};
use spoor_core::{
    AnyValue, Event, KeyValue, Resource, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};
use spoor_plugin_host::{PluginChain, PluginSpec};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod typed {
    wasmtime::component::bindgen!({ path: "../plugins/tests/typed/wit/typed.wit", world: "typed" });
}

use typed::spoor::bench_typed::types as t;

const BATCH: usize = 1000;

/// Keys both boundary variants redact (present in the generator's spans).
const KEYS: [&str; 2] = ["http.user_agent", "app.attr.0"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the example and bench components (incremental; seconds when up to date).
fn components() -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let status = Command::new("make")
        .arg("-C")
        .arg(root())
        .args(["plugins", "plugins-hostile"])
        .status()
        .expect("run make");
    assert!(status.success(), "`make plugins plugins-hostile` failed");
    let plugins = root().join("target/plugins");
    (
        plugins.join("redact.wasm"),
        plugins.join("hostile/typed.wasm"),
        plugins.join("hostile/snoop.wasm"),
        plugins.join("rename.wasm"),
    )
}

fn batch() -> Vec<Span> {
    let mut g = Generator::new(GenConfig {
        spans_per_trace: 20,
        seed: 7,
        ..GenConfig::default()
    })
    .expect("valid generator config");
    (0..BATCH / 20).flat_map(|_| g.next_trace()).collect()
}

fn chain(path: &Path, config: serde_json::Value) -> PluginChain {
    let mut spec = PluginSpec::new("bench", path);
    spec.config = config.as_object().cloned().expect("object");
    PluginChain::load(&[spec]).expect("plugin loads")
}

fn plugins(c: &mut Criterion) {
    let (redact, _, snoop, rename) = components();
    let spans = batch();
    let full = chain(&redact, serde_json::json!({ "keys": KEYS }));
    let renaming = chain(
        &rename,
        serde_json::json!({
            "attributes": { "http.user_agent": "user_agent.original" },
            "lowercase_services": true,
            "normalize_paths": true,
        }),
    );
    let passthrough = chain(&snoop, serde_json::json!({}));
    // Strings mode's fixed cost: a key that never occurs, no scanning, so no patch.
    let strings_noop = chain(
        &redact,
        serde_json::json!({ "keys": ["no.such.key"], "emails": false, "cards": false }),
    );
    let keys_only = chain(
        &redact,
        serde_json::json!({ "keys": KEYS, "emails": false, "cards": false }),
    );
    for c in [&full, &renaming, &keys_only] {
        let out = c.process(spans.clone());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.spans.len(), BATCH);
        assert_ne!(out.spans, spans, "the plugin changes the batch");
    }

    let mut g = c.benchmark_group("plugins");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("block_encode_1000", |b| {
        b.iter(|| encode_block(black_box(&spans)))
    });
    g.bench_function("block_roundtrip_1000", |b| {
        b.iter(|| {
            let bytes = encode_block(black_box(&spans));
            BlockReader::open(&bytes)
                .and_then(|r| r.decode_all())
                .expect("valid block")
        })
    });
    g.bench_function("passthrough_1000", |b| {
        b.iter_batched(
            || spans.clone(),
            |s| passthrough.process(s),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("strings_view_1000", |b| {
        b.iter(|| spoor_plugin_strings::build(black_box(&spans)).expect("fits"))
    });
    g.bench_function("strings_noop_1000", |b| {
        b.iter_batched(
            || spans.clone(),
            |s| strings_noop.process(s),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("redact_keys_only_1000", |b| {
        b.iter_batched(
            || spans.clone(),
            |s| keys_only.process(s),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("redact_1000", |b| {
        b.iter_batched(|| spans.clone(), |s| full.process(s), BatchSize::SmallInput)
    });
    g.bench_function("rename_1000", |b| {
        b.iter_batched(
            || spans.clone(),
            |s| renaming.process(s),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// A pooling engine with fuel, as the runtime configures it.
fn engine() -> Engine {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(
        PoolingAllocationConfig::new(),
    ));
    Engine::new(&config).expect("engine")
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn store(engine: &Engine) -> Store<State> {
    let mut store = Store::new(
        engine,
        State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_fuel(u64::MAX / 2).expect("fuel enabled");
    store
}

fn typed_pre(engine: &Engine, path: &Path) -> typed::TypedPre<State> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi links");
    let component = Component::from_file(engine, path).expect("typed component compiles");
    typed::TypedPre::new(linker.instantiate_pre(&component).expect("links")).expect("typed world")
}

fn instantiate(c: &mut Criterion) {
    let (redact, typed_path, _, _) = components();
    let engine = engine();
    let pre = typed_pre(&engine, &typed_path);
    let full = chain(&redact, serde_json::json!({ "keys": KEYS }));
    let mut g = c.benchmark_group("instantiate");
    g.bench_function("pooled_typed", |b| {
        b.iter(|| {
            let mut store = store(&engine);
            pre.instantiate(&mut store).expect("instantiates")
        })
    });
    g.bench_function("pooled_redact_configured", |b| {
        b.iter(|| full.fresh_instance(0).expect("instantiates"))
    });
    g.finish();
}

fn value_to_wit(v: &AnyValue) -> t::Value {
    match v {
        AnyValue::Str(s) => t::Value::Str(s.clone()),
        AnyValue::Bool(b) => t::Value::Boolean(*b),
        AnyValue::Int(i) => t::Value::Int(*i),
        AnyValue::Double(d) => t::Value::Double(*d),
        AnyValue::Bytes(b) => t::Value::Bytes(b.clone()),
        AnyValue::Array(_) | AnyValue::Map(_) => t::Value::Str(String::new()),
    }
}

fn value_from_wit(v: t::Value) -> AnyValue {
    match v {
        t::Value::Str(s) => AnyValue::Str(s),
        t::Value::Boolean(b) => AnyValue::Bool(b),
        t::Value::Int(i) => AnyValue::Int(i),
        t::Value::Double(d) => AnyValue::Double(d),
        t::Value::Bytes(b) => AnyValue::Bytes(b),
    }
}

fn attrs_to_wit(a: &[KeyValue]) -> Vec<t::KeyValue> {
    a.iter()
        .map(|kv| t::KeyValue {
            key: kv.key.clone(),
            value: value_to_wit(&kv.value),
        })
        .collect()
}

fn attrs_from_wit(a: Vec<t::KeyValue>) -> Vec<KeyValue> {
    a.into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: value_from_wit(kv.value),
        })
        .collect()
}

fn to_wit(s: &Span) -> t::Span {
    t::Span {
        trace_id_hi: (s.trace_id.0 >> 64) as u64,
        trace_id_lo: s.trace_id.0 as u64,
        span_id: s.span_id.0,
        parent_span_id: s.parent_span_id.map(|p| p.0),
        name: s.name.clone(),
        kind: s.kind as u8,
        start_unix_nanos: s.start_unix_nanos,
        duration_nanos: s.duration_nanos,
        status_code: s.status.code as u8,
        status_message: s.status.message.clone(),
        attributes: attrs_to_wit(&s.attributes),
        events: s
            .events
            .iter()
            .map(|e| t::Event {
                time_unix_nanos: e.time_unix_nanos,
                name: e.name.clone(),
                attributes: attrs_to_wit(&e.attributes),
            })
            .collect(),
        service_name: s.resource.service_name.clone(),
        resource_attributes: attrs_to_wit(&s.resource.attributes),
    }
}

fn from_wit(s: t::Span) -> Span {
    Span {
        trace_id: TraceId((u128::from(s.trace_id_hi) << 64) | u128::from(s.trace_id_lo)),
        span_id: SpanId(s.span_id),
        parent_span_id: s.parent_span_id.map(SpanId),
        name: s.name,
        kind: SpanKind::from_otlp(i32::from(s.kind)),
        start_unix_nanos: s.start_unix_nanos,
        duration_nanos: s.duration_nanos,
        status: Status {
            code: StatusCode::from_otlp(i32::from(s.status_code)),
            message: s.status_message,
        },
        attributes: attrs_from_wit(s.attributes),
        events: s
            .events
            .into_iter()
            .map(|e| Event {
                time_unix_nanos: e.time_unix_nanos,
                name: e.name,
                attributes: attrs_from_wit(e.attributes),
                dropped_attributes_count: 0,
            })
            .collect(),
        resource: Arc::new(Resource {
            service_name: s.service_name,
            attributes: attrs_from_wit(s.resource_attributes),
            dropped_attributes_count: 0,
        }),
        ..Span::default()
    }
}

fn boundary(c: &mut Criterion) {
    let (redact, typed_path, _, _) = components();
    let spans = batch();
    let block = chain(
        &redact,
        serde_json::json!({ "keys": KEYS, "emails": false, "cards": false }),
    );
    let engine = engine();
    let pre = typed_pre(&engine, &typed_path);
    let mut store = store(&engine);
    let typed = pre.instantiate(&mut store).expect("instantiates");
    let keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();

    // Both variants redact the same attributes.
    let via_block = block.process(spans.clone());
    assert!(via_block.errors.is_empty(), "{:?}", via_block.errors);
    let wit: Vec<t::Span> = spans.iter().map(to_wit).collect();
    let via_typed: Vec<Span> = typed
        .call_process(&mut store, &keys, &wit)
        .expect("typed call")
        .into_iter()
        .map(from_wit)
        .collect();
    let redacted = |spans: &[Span]| {
        spans
            .iter()
            .flat_map(|s| &s.attributes)
            .filter(|kv| KEYS.contains(&kv.key.as_str()))
            .filter(|kv| kv.value == AnyValue::Str("[REDACTED]".into()))
            .count()
    };
    assert!(redacted(&via_block.spans) > 0);
    assert_eq!(redacted(&via_block.spans), redacted(&via_typed));

    let mut g = c.benchmark_group("boundary");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("strings_view_1000", |b| {
        b.iter_batched(
            || spans.clone(),
            |s| block.process(s),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("typed_records_1000", |b| {
        b.iter(|| {
            let wit: Vec<t::Span> = black_box(&spans).iter().map(to_wit).collect();
            let out = typed
                .call_process(&mut store, &keys, &wit)
                .expect("typed call");
            out.into_iter().map(from_wit).collect::<Vec<Span>>()
        })
    });
    g.finish();
}

/// A tail-sampling policy plugin (`slo`) deciding one 20-span trace: what the tail sampler pays
/// per trace for a plugin policy (block-encoding the trace, the call, the guest's decode and
/// rule), next to the same policy's rule run natively.
fn policy(c: &mut Criterion) {
    let _ = components();
    let mut spec = PluginSpec::new("slo", root().join("target/plugins/slo.wasm"));
    spec.config = serde_json::json!({
        "default_ms": 2000,
        "services": { "checkout": { "default_ms": 500, "operations": { "GET /cart": 250 } } }
    })
    .as_object()
    .cloned()
    .expect("object");
    let slo = spoor_plugin_host::PolicyPlugin::load(&spec).expect("slo loads");
    let trace: Vec<Span> = batch().into_iter().take(20).collect();
    assert!(trace.iter().all(|s| s.trace_id == trace[0].trace_id));
    slo.decide(&trace).expect("slo decides");
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("slo_decide_trace_20_spans", |b| {
        b.iter(|| slo.decide(&trace).expect("decides"))
    });
    g.bench_function("encode_trace_20_spans", |b| {
        b.iter(|| spoor_core::block::encode_block(&trace))
    });
    g.finish();
}

fn config() -> Criterion {
    // Short runs: the machine is shared.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = plugins, instantiate, boundary, policy
}
criterion_main!(benches);

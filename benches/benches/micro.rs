//! Criterion micro-benchmarks of Spoor's hot paths, reported per span: OTLP decoding,
//! validation, batching, storage blocks, sampling (head, tail, RED), the memory and sled stores,
//! and Jaeger JSON rendering.
//!
//! Run with `cargo bench -p spoor-bench`; `cargo bench -p spoor-bench -- --test` runs each
//! benchmark once as a check.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use spoor_bench::gen::{GenConfig, Generator};
use spoor_bench::payload::SpanBatches;
use spoor_bench::preload::preload;
use spoor_core::batch::{BatchConfig, Batcher};
use spoor_core::block::{encode_block, BlockReader};
use spoor_core::validate::{validate_batch, Limits};
use spoor_core::{Span, Trace, TraceId, TraceQuery};
use spoor_store::embedded::{SledConfig, SledStore};
use spoor_store::memory::MemoryStore;
use spoor_store::TraceStore;

/// Spans per request / batch in the per-batch benchmarks.
const BATCH: usize = 1000;

fn generator(spans_per_trace: usize, seed: u64) -> Generator {
    let cfg = GenConfig {
        spans_per_trace,
        seed,
        ..GenConfig::default()
    };
    Generator::new(cfg).expect("benchmark generator config is valid")
}

/// `BATCH` spans from 50 traces of 20 spans.
fn batch_of_spans(seed: u64) -> Vec<Span> {
    let mut g = generator(20, seed);
    (0..BATCH / 20).flat_map(|_| g.next_trace()).collect()
}

fn otlp(c: &mut Criterion) {
    let spans = batch_of_spans(1);
    let proto = spoor_otlp::encode_proto(&spans);
    let json = spoor_otlp::json::encode_traces_data(&spans)
        .to_string()
        .into_bytes();
    let mut g = c.benchmark_group("otlp");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("decode_proto_1000", |b| {
        b.iter(|| spoor_otlp::decode_proto(black_box(&proto)).expect("valid protobuf"))
    });
    g.bench_function("decode_json_1000", |b| {
        b.iter(|| spoor_otlp::decode_json(black_box(&json)).expect("valid json"))
    });
    g.bench_function("encode_proto_1000", |b| {
        b.iter(|| spoor_otlp::encode_proto(black_box(&spans)))
    });
    g.finish();
}

fn core(c: &mut Criterion) {
    let spans = batch_of_spans(2);
    let limits = Limits::default();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("validate_batch_1000", |b| {
        b.iter_batched(
            || spans.clone(),
            |s| validate_batch(s, &limits),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("batcher_push_1000", |b| {
        b.iter_batched(
            || spans.clone(),
            |s| {
                let mut batcher = Batcher::new(BatchConfig {
                    max_items: 512,
                    ..BatchConfig::default()
                });
                let mut out = 0usize;
                for (i, span) in s.into_iter().enumerate() {
                    let bytes = span.approx_size();
                    if let Some(done) = batcher.push(span, 1, bytes, i as u64) {
                        out += done.len();
                    }
                }
                out + batcher.take().map_or(0, |b| b.len())
            },
            BatchSize::SmallInput,
        )
    });
    let block = encode_block(&spans);
    g.bench_function("block_encode_1000", |b| {
        b.iter(|| encode_block(black_box(&spans)))
    });
    g.bench_function("block_decode_1000", |b| {
        b.iter(|| {
            let reader = BlockReader::open(black_box(&block)).expect("valid block");
            reader.decode_all().expect("valid block")
        })
    });
    g.finish();
}

/// Trace ids of `n` traces a fresh generator with `seed` makes, and their spans.
fn traces(spans_per_trace: usize, n: usize, seed: u64) -> (Vec<TraceId>, Vec<Span>) {
    let mut g = generator(spans_per_trace, seed);
    let spans: Vec<Span> = (0..n).flat_map(|_| g.next_trace()).collect();
    let mut ids: Vec<TraceId> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .map(|s| s.trace_id)
        .collect();
    ids.dedup();
    (ids, spans)
}

fn memory_store(c: &mut Criterion) {
    let spans = batch_of_spans(3);
    let mut g = c.benchmark_group("memory_store");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("write_1000", |b| {
        b.iter_batched(
            || MemoryStore::new(10_000),
            |store| store.write_spans(&spans).expect("memory write"),
            BatchSize::SmallInput,
        )
    });
    let (ids, all) = traces(20, 500, 4);
    let store = MemoryStore::new(10_000);
    store.write_spans(&all).expect("memory write");
    g.throughput(Throughput::Elements(20));
    let mut i = 0;
    g.bench_function("get_trace_20_spans", |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            store
                .get_trace(ids[i])
                .expect("memory read")
                .expect("trace stored")
        })
    });
    g.finish();
}

fn sled_store(c: &mut Criterion) {
    let mut g = c.benchmark_group("sled_store");
    {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SledStore::open(SledConfig::new(dir.path())).expect("open sled store");
        let mut gen = generator(20, 5);
        let mut batches = SpanBatches::new(&mut gen, BATCH, u64::MAX);
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("write_1000", |b| {
            b.iter_batched(
                || batches.next().expect("endless batches"),
                |spans| store.write_spans(&spans).expect("sled write"),
                BatchSize::SmallInput,
            )
        });
    }

    // A small preloaded store: 500 traces of 20 spans.
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SledStore::open(SledConfig::new(dir.path())).expect("open sled store");
    let mut gen = generator(20, 6);
    preload(&store, &mut gen, BATCH, 500 * 20).expect("preload sled store");
    let (ids, _) = traces(20, 500, 6);
    g.throughput(Throughput::Elements(20));
    let mut i = 0;
    g.bench_function("get_trace_20_spans", |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            store
                .get_trace(ids[i])
                .expect("sled read")
                .expect("trace stored")
        })
    });
    let query = TraceQuery {
        service: Some("checkout".into()),
        limit: 20,
        ..TraceQuery::between(0, u64::MAX)
    };
    let found: usize = store
        .find_traces(&query)
        .expect("sled find")
        .iter()
        .map(|t| t.spans.len())
        .sum();
    assert!(found > 0, "the preloaded store has checkout traces");
    g.throughput(Throughput::Elements(found as u64));
    g.bench_function("find_traces_service_limit_20", |b| {
        b.iter(|| store.find_traces(black_box(&query)).expect("sled find"))
    });
    g.finish();
}

fn jaeger_json(c: &mut Criterion) {
    let spans = generator(BATCH, 7).next_trace();
    let trace = Trace {
        trace_id: spans[0].trace_id,
        spans,
    };
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("jaeger_trace_json_1000", |b| {
        b.iter(|| spoor_query::jaeger::trace_json(black_box(&trace), &[]).render())
    });
    g.finish();
}

/// Sampling: the head decision per trace (goal ≤ 50 ns), the per-operation sampler a Jaeger
/// client runs, the tail sampler's buffering and decision per span, and RED recording per span.
fn sampling(c: &mut Criterion) {
    use spoor_core::sampling::{Sampler, StrategyResponse, Threshold};
    let ids: Vec<TraceId> = (0..1024u64)
        .map(|i| TraceId(u128::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) << 7 | 0x55))
        .collect();
    let mut g = c.benchmark_group("sampling");
    g.throughput(Throughput::Elements(ids.len() as u64));
    let threshold = Threshold::from_probability(0.01).expect("valid probability");
    g.bench_function("consistent_decision_1024_traces", |b| {
        b.iter(|| {
            ids.iter()
                .filter(|id| {
                    spoor_core::sampling::consistent::sample(threshold, **id, black_box(""))
                })
                .count()
        })
    });
    let strategy = StrategyResponse::probabilistic(0.01);
    let mut sampler = Sampler::from_strategy(&strategy);
    g.bench_function("jaeger_sampler_decision_1024_traces", |b| {
        b.iter(|| {
            ids.iter()
                .enumerate()
                .filter(|(i, id)| {
                    sampler
                        .sample(**id, "", black_box("GET /"), *i as u64)
                        .sampled
                })
                .count()
        })
    });
    g.finish();

    let spans = batch_of_spans(11);
    let mut g = c.benchmark_group("sampling");
    g.throughput(Throughput::Elements(BATCH as u64));
    let tail_cfg: spoor_core::tail::TailConfig = serde_json::from_str(
        r#"{"decision_wait_ms": 1, "policies": [
            {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
            {"name": "slow", "type": "latency", "latency": {"threshold_ms": 500}},
            {"name": "some", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}}]}"#,
    )
    .expect("valid tail config");
    g.bench_function("tail_push_and_decide_1000", |b| {
        b.iter_batched(
            || spans.clone(),
            |s| {
                let mut tail = spoor_core::tail::TailSampler::new(&tail_cfg).expect("valid");
                let early = tail.push(s, 0).spans.len();
                early + tail.poll(10_000_000).spans.len()
            },
            BatchSize::SmallInput,
        )
    });
    // Memory of 100k traces in flight (10 spans each): printed once, for BENCHMARKS.md.
    {
        let mut cfg = tail_cfg.clone();
        cfg.decision_wait_ms = 3_600_000;
        cfg.num_traces = 200_000;
        cfg.max_bytes = 4 << 30;
        let mut tail = spoor_core::tail::TailSampler::new(&cfg).expect("valid");
        let mut g10 = generator(10, 13);
        for _ in 0..100_000 {
            tail.push(g10.next_trace(), 0);
        }
        let st = tail.stats();
        eprintln!(
            "tail sampler, {} traces in flight: index {} B ({:.0} B/trace), buffered spans {} B ({:.0} B/trace)",
            st.traces_in_flight,
            tail.index_bytes(),
            tail.index_bytes() as f64 / st.traces_in_flight as f64,
            st.bytes_in_flight,
            st.bytes_in_flight as f64 / st.traces_in_flight as f64
        );
    }
    let mut red = spoor_core::red::RedAggregator::new(60_000_000_000);
    g.bench_function("red_record_1000", |b| {
        b.iter(|| {
            for s in &spans {
                red.record(black_box(s));
            }
        })
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
    targets = otlp, core, sampling, memory_store, sled_store, jaeger_json
}
criterion_main!(benches);

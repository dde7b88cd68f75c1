//! Measures bytes on disk per span for the sled store with ~100k synthetic spans (several
//! services, 5-20 spans per trace, 5 attributes each), written in pipeline-sized batches.
//! Prints the number and what each kind of tree and partition file holds, asserts <= 100
//! B/span, and checks that the compact indexes still give whole traces and the contract's
//! newest-first answers.

use std::collections::HashMap;
use std::sync::Arc;

use spoor_core::{
    AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, TraceId, TraceQuery,
};
use spoor_store::embedded::{SledConfig, SledStore};
use spoor_store::{match_key, rank, TraceStore};

/// xorshift64: deterministic ids and choices without a randomness source.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn synthetic(target_spans: usize) -> Vec<Span> {
    const SERVICES: [&str; 6] = [
        "frontend",
        "cart",
        "checkout",
        "payments",
        "inventory",
        "shipping",
    ];
    const OPS: [&str; 5] = [
        "GET /api/items",
        "POST /api/cart",
        "SELECT items",
        "charge",
        "publish",
    ];
    let resources: Vec<Arc<Resource>> = SERVICES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Arc::new(Resource {
                service_name: (*s).into(),
                attributes: vec![
                    KeyValue::string("host.name", format!("{s}-{i}")),
                    KeyValue::string("telemetry.sdk.language", "rust"),
                ],
                dropped_attributes_count: 0,
            })
        })
        .collect();
    let scope = Arc::new(Scope {
        name: "spoor.synthetic".into(),
        version: "1.0".into(),
        ..Default::default()
    });
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let base = 1_700_000_000_000_000_000u64;
    let mut spans = Vec::with_capacity(target_spans + 20);
    let mut t = 0u64;
    while spans.len() < target_spans {
        let trace_id = TraceId((u128::from(rng.next()) << 64) | u128::from(rng.next()));
        let n = 5 + (rng.next() % 16) as usize;
        let start = base + t * 2_000_000; // a trace every 2 ms
        t += 1;
        let mut ids: Vec<u64> = Vec::with_capacity(n);
        for i in 0..n {
            let id = rng.next();
            let parent = if i == 0 {
                None
            } else {
                Some(SpanId(ids[(rng.next() as usize) % ids.len()]))
            };
            ids.push(id);
            let svc = (rng.next() % SERVICES.len() as u64) as usize;
            spans.push(Span {
                trace_id,
                span_id: SpanId(id),
                parent_span_id: parent,
                flags: 1,
                name: OPS[(rng.next() % OPS.len() as u64) as usize].into(),
                kind: if i == 0 {
                    SpanKind::Server
                } else {
                    SpanKind::Client
                },
                start_unix_nanos: start + i as u64 * 150_000 + rng.next() % 50_000,
                duration_nanos: (rng.next() % 20_000_000) as i64,
                attributes: vec![
                    KeyValue::string(
                        "http.method",
                        if rng.next() % 3 == 0 { "POST" } else { "GET" },
                    ),
                    KeyValue::new(
                        "http.status_code",
                        AnyValue::Int([200, 200, 200, 404, 500][(rng.next() % 5) as usize]),
                    ),
                    KeyValue::string(
                        "http.url",
                        format!("/api/v1/items/{}", rng.next() % 100_000),
                    ),
                    KeyValue::string("user.id", format!("user-{}", rng.next() % 1_000)),
                    KeyValue::new(
                        "net.peer.port",
                        AnyValue::Int(8000 + (rng.next() % 100) as i64),
                    ),
                ],
                resource: resources[svc].clone(),
                scope: scope.clone(),
                ..Default::default()
            });
        }
    }
    spans
}

#[test]
fn bytes_on_disk_per_span() {
    let spans = synthetic(100_000);
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
    let started = std::time::Instant::now();
    // Pipeline-sized batches; traces may straddle batches as they do in the daemon.
    for batch in spans.chunks(2_000) {
        store.write_spans(batch).unwrap();
    }
    store.flush().unwrap();
    let elapsed = started.elapsed();
    let on_disk = store.stats().bytes_on_disk;
    let per_span = on_disk as f64 / spans.len() as f64;
    eprintln!(
        "sled store: {} spans, {on_disk} bytes on disk, {per_span:.1} B/span, written in {elapsed:?} ({} build)",
        spans.len(),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    // The data is there, whole, and found in the contract's order.
    let mut traces: HashMap<TraceId, Vec<Span>> = HashMap::new();
    for s in &spans {
        traces.entry(s.trace_id).or_default().push(s.clone());
    }
    let started = std::time::Instant::now();
    let mut checked = 0;
    for (id, want) in traces.iter().step_by(25) {
        let got = store.get_trace(*id).unwrap().expect("trace is stored");
        assert_eq!(got.spans.len(), want.len(), "spans of trace {id}");
        checked += 1;
    }
    eprintln!("get_trace: {:?} per trace", started.elapsed() / checked);
    let cart = |f: fn(&mut TraceQuery)| {
        let mut q = TraceQuery {
            service: Some("cart".into()),
            limit: 20,
            ..TraceQuery::between(0, u64::MAX)
        };
        f(&mut q);
        q
    };
    let queries = [
        cart(|_| {}),
        cart(|q| q.operation = Some("charge".into())),
        cart(|q| q.duration_min_nanos = Some(19_900_000)),
        cart(|q| q.tags = vec![("http.status_code".into(), "500".into())]),
        cart(|q| q.tags = vec![("http.url".into(), "/api/v1/items/4242".into())]),
        cart(|q| q.start_max_nanos = 1_700_000_000_000_000_000 + 9_000_000_000),
        cart(|q| {
            q.operation = Some("charge".into());
            q.duration_min_nanos = Some(19_000_000);
        }),
        cart(|q| {
            q.span_kind = Some(SpanKind::Server);
            q.tags = vec![("http.status_code".into(), "404".into())];
        }),
        cart(|q| q.tags = vec![("user.id".into(), "user-7".into())]),
    ];
    for q in queries {
        let expected = rank(
            traces
                .iter()
                .filter_map(|(id, t)| match_key(&q, t).map(|k| (k, *id)))
                .collect(),
            &q,
        );
        let started = std::time::Instant::now();
        assert_eq!(store.find_trace_ids(&q).unwrap(), expected, "{q:?}");
        eprintln!(
            "find_trace_ids: {:?} for {} of {q:?}",
            started.elapsed(),
            expected.len()
        );
    }
    for (kind, entries, bytes) in store.tree_sizes().unwrap() {
        let per_span = bytes as f64 / spans.len() as f64;
        if kind.starts_with("file ") {
            eprintln!("  {kind}: {entries} files, {per_span:.1} B/span");
        } else {
            eprintln!("  {kind}: {entries} entries, {per_span:.1} B/span before sled overhead");
        }
    }
    assert!(per_span <= 100.0, "{per_span:.1} bytes per span on disk");
}

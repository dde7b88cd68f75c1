//! Golden tests of the query API: fixture traces in a memory store, requests through the router,
//! and the exact status, content type and body compared with `tests/golden/<name>.http`.
//! `SPOOR_BLESS=1 cargo test -p spoor-query` rewrites the files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use spoor_core::{
    AnyValue, DependencyLink, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind,
    Status, StatusCode, TraceId,
};
use spoor_query::{router, QueryConfig};
use spoor_store::memory::MemoryStore;
use spoor_store::TraceStore;
use tower::ServiceExt;

/// 2026-11-25T10:00:00Z in nanoseconds.
const T0: u64 = 1_795_600_800_000_000_000;
const MS: u64 = 1_000_000;

const TRACE_A: TraceId = TraceId(0x0af7651916cd43dd8448eb211c80319c);
const TRACE_B: TraceId = TraceId(0xabc);
const TRACE_LINKED: TraceId = TraceId(0x1111);

fn frontend() -> Arc<Resource> {
    Arc::new(Resource {
        service_name: "frontend".into(),
        attributes: vec![
            KeyValue::string("host.name", "web-1"),
            KeyValue::string("telemetry.sdk.language", "go"),
        ],
        dropped_attributes_count: 0,
    })
}

fn fixture_spans() -> Vec<Span> {
    let frontend = frontend();
    let driver = Arc::new(Resource {
        service_name: "driver".into(),
        attributes: vec![KeyValue::string("host.name", "db-7")],
        dropped_attributes_count: 0,
    });
    let scope = Arc::new(Scope {
        name: "io.opentelemetry.http".into(),
        version: "1.2.0".into(),
        ..Default::default()
    });
    let root = Span {
        trace_id: TRACE_A,
        span_id: SpanId(0x00f067aa0ba902b7),
        trace_state: "rojo=00f067aa0ba902b7".into(),
        flags: 0x101,
        name: "GET /dispatch".into(),
        kind: SpanKind::Server,
        start_unix_nanos: T0,
        duration_nanos: (100 * MS) as i64,
        status: Status {
            code: StatusCode::Ok,
            message: String::new(),
        },
        attributes: vec![
            KeyValue::string("http.method", "GET"),
            KeyValue::new("http.status_code", AnyValue::Int(200)),
            KeyValue::new("big", AnyValue::Int(9_007_199_254_740_993)),
            KeyValue::new("small", AnyValue::Int(-9_007_199_254_740_991)),
            KeyValue::new("payload", AnyValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef])),
            KeyValue::new("ratio", AnyValue::Double(0.25)),
            KeyValue::new("cached", AnyValue::Bool(false)),
            KeyValue::new(
                "list",
                AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Str("two".into())]),
            ),
            KeyValue::new(
                "obj",
                AnyValue::Map(vec![
                    KeyValue::new("z", AnyValue::Bool(true)),
                    KeyValue::string("a", "<b>"),
                ]),
            ),
        ],
        events: vec![Event {
            time_unix_nanos: T0 + 5 * MS,
            name: "retry".into(),
            attributes: vec![KeyValue::new("attempt", AnyValue::Int(2))],
            dropped_attributes_count: 0,
        }],
        resource: Arc::clone(&frontend),
        scope: Arc::clone(&scope),
        ..Default::default()
    };
    // On another host, starting 10ms before its parent: the clock-skew adjuster centres it.
    let db = Span {
        trace_id: TRACE_A,
        span_id: SpanId(0x2),
        parent_span_id: Some(root.span_id),
        name: "SELECT drivers".into(),
        kind: SpanKind::Client,
        start_unix_nanos: T0 - 10 * MS,
        duration_nanos: (20 * MS) as i64,
        status: Status {
            code: StatusCode::Error,
            message: "timeout".into(),
        },
        events: vec![Event {
            time_unix_nanos: T0 - 5 * MS,
            name: "ignored-name".into(),
            attributes: vec![
                KeyValue::string("event", "deadline"),
                KeyValue::string("level", "warn"),
            ],
            dropped_attributes_count: 0,
        }],
        links: vec![
            Link {
                trace_id: TRACE_LINKED,
                span_id: SpanId(0x9),
                ..Default::default()
            },
            Link {
                trace_id: TRACE_A,
                span_id: SpanId(0x3),
                attributes: vec![KeyValue::string("opentracing.ref_type", "child_of")],
                ..Default::default()
            },
        ],
        resource: Arc::clone(&driver),
        ..Default::default()
    };
    let render = Span {
        trace_id: TRACE_A,
        span_id: SpanId(0x3),
        parent_span_id: Some(root.span_id),
        name: "render".into(),
        kind: SpanKind::Internal,
        start_unix_nanos: T0 + 60 * MS,
        duration_nanos: (30 * MS) as i64,
        resource: Arc::clone(&frontend),
        scope: Arc::clone(&scope),
        ..Default::default()
    };
    let health = Span {
        trace_id: TRACE_B,
        span_id: SpanId(0xb1),
        name: "GET /health".into(),
        start_unix_nanos: T0 + 1_000 * MS,
        duration_nanos: 1_500,
        flags: 1,
        resource: Arc::clone(&frontend),
        ..Default::default()
    };
    // Written out of order on purpose: responses sort spans by start time.
    vec![render, health, db, root]
}

fn app(cfg: QueryConfig) -> axum::Router {
    let store = MemoryStore::new(100);
    store
        .write_spans(&fixture_spans())
        .expect("fixture spans are written");
    store
        .write_dependencies(
            T0,
            &[
                DependencyLink {
                    parent: "frontend".into(),
                    child: "driver".into(),
                    call_count: 3,
                },
                DependencyLink {
                    parent: "driver".into(),
                    child: "redis".into(),
                    call_count: 5,
                },
            ],
        )
        .expect("fixture links are written");
    router(Arc::new(store), cfg)
}

async fn call(app: &axum::Router, uri: &str) -> String {
    let req = http::Request::builder()
        .uri(uri)
        .body(axum::body::Body::empty())
        .expect("request builds");
    let resp = app.clone().oneshot(req).await.expect("router answers");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes();
    format!("HTTP {status} {ctype}\n{}", String::from_utf8_lossy(&body))
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(format!("{name}.http"))
}

/// Compares every scenario with its golden file and reports all mismatches at once.
async fn check(app: &axum::Router, scenarios: &[(&str, &str)]) {
    let bless = std::env::var_os("SPOOR_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, uri) in scenarios {
        let got = call(app, uri).await;
        let path = golden_path(name);
        if bless {
            std::fs::create_dir_all(path.parent().expect("golden dir"))
                .expect("golden dir is created");
            std::fs::write(&path, &got).expect("golden file is written");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!("{name} ({uri}):\n--- want\n{want}\n--- got\n{got}")),
            Err(e) => failures.push(format!(
                "{name}: cannot read {}: {e} (run with SPOOR_BLESS=1)",
                path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Explicit window around the fixture so no test depends on the wall clock.
const WINDOW: &str = "start=1795600700000000&end=1795600900000000";

#[tokio::test]
async fn v1_api() {
    let app = app(QueryConfig::default());
    let search_frontend = format!("/api/traces?service=frontend&{WINDOW}");
    let search_tag = format!("/api/traces?service=driver&tag=event:deadline&{WINDOW}");
    let search_tags_json =
        format!("/api/traces?service=frontend&tags=%7B%22http.method%22%3A%22GET%22%7D&{WINDOW}");
    let search_duration = format!("/api/traces?service=frontend&minDuration=1ms&{WINDOW}");
    let search_error_tag = format!("/api/traces?service=driver&tag=error:true&{WINDOW}");
    let search_empty = format!("/api/traces?service=frontend&operation=nope&{WINDOW}");
    let search_limit = format!("/api/traces?service=frontend&limit=1&{WINDOW}");
    check(
        &app,
        &[
            ("services", "/api/services"),
            ("service_operations", "/api/services/frontend/operations"),
            (
                "service_operations_unknown",
                "/api/services/nobody/operations",
            ),
            ("operations", "/api/operations?service=frontend"),
            (
                "operations_server",
                "/api/operations?service=frontend&spanKind=server",
            ),
            ("operations_no_service", "/api/operations"),
            (
                "operations_bad_kind",
                "/api/operations?service=frontend&spanKind=sideways",
            ),
            ("trace_128", "/api/traces/0af7651916cd43dd8448eb211c80319c"),
            ("trace_64", "/api/traces/abc"),
            ("trace_not_found", "/api/traces/123"),
            ("trace_bad_id", "/api/traces/xyz"),
            (
                "trace_too_long",
                "/api/traces/0af7651916cd43dd8448eb211c80319c0",
            ),
            ("search", &search_frontend),
            ("search_tag", &search_tag),
            ("search_tags_json", &search_tags_json),
            ("search_min_duration", &search_duration),
            ("search_error_tag", &search_error_tag),
            ("search_empty", &search_empty),
            ("search_limit", &search_limit),
            ("search_ids", "/api/traces?traceID=abc&traceID=feed"),
            ("search_no_service", "/api/traces?operation=x"),
            (
                "search_bad_start",
                "/api/traces?service=frontend&start=yesterday",
            ),
            (
                "search_bad_duration",
                "/api/traces?service=frontend&maxDuration=5",
            ),
            (
                "search_bad_tags",
                "/api/traces?service=frontend&tags=%7Bnope",
            ),
            (
                "dependencies",
                "/api/dependencies?endTs=1795600800000&lookback=60000",
            ),
            (
                "dependencies_service",
                "/api/dependencies?endTs=1795600800000&lookback=60000&service=redis",
            ),
            (
                "dependencies_window_before",
                "/api/dependencies?endTs=1795600799999&lookback=60000",
            ),
            (
                "dependencies_bad_lookback",
                "/api/dependencies?endTs=1795600800000&lookback=1h",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn v1_span_cap() {
    let app = app(QueryConfig {
        max_spans_per_trace: 2,
        ..QueryConfig::default()
    });
    check(
        &app,
        &[(
            "trace_capped",
            "/api/traces/0af7651916cd43dd8448eb211c80319c",
        )],
    )
    .await;
}

#[tokio::test]
async fn v1_max_lookback_shortens_the_window() {
    // A 500ms maximum window ending at the newest trace cuts off the older one, although the
    // request asks for everything since the epoch.
    let app = app(QueryConfig {
        max_lookback: Some(Duration::from_millis(500)),
        ..QueryConfig::default()
    });
    check(
        &app,
        &[(
            "search_max_lookback",
            "/api/traces?service=frontend&start=0&end=1795600801000000",
        )],
    )
    .await;
}

#[tokio::test]
async fn v3_api() {
    let app = app(QueryConfig::default());
    let window =
        "query.start_time_min=2026-11-25T09:59:00Z&query.start_time_max=2026-11-25T10:01:00Z";
    let find = format!("/api/v3/traces?query.service_name=driver&{window}");
    let find_attrs = format!("/api/v3/traces?query.service_name=frontend&query.attributes=%7B%22http.method%22%3A%22GET%22%7D&{window}");
    let find_none = format!("/api/v3/traces?query.service_name=nobody&{window}");
    let summaries = format!("/api/v3/trace-summaries?query.service_name=frontend&{window}");
    let summaries_none = format!("/api/v3/trace-summaries?query.service_name=nobody&{window}");
    let bad_duration = format!("/api/v3/traces?query.duration_min=fast&{window}");
    check(
        &app,
        &[
            ("v3_services", "/api/v3/services"),
            ("v3_operations", "/api/v3/operations?service=frontend"),
            (
                "v3_operations_client",
                "/api/v3/operations?service=driver&span_kind=client",
            ),
            ("v3_operations_none", "/api/v3/operations?service=nobody"),
            ("v3_trace", "/api/v3/traces/abc"),
            (
                "v3_trace_window_miss",
                "/api/v3/traces/abc?start_time=2026-11-26T00:00:00Z",
            ),
            ("v3_trace_not_found", "/api/v3/traces/123"),
            ("v3_trace_bad_id", "/api/v3/traces/xyz"),
            ("v3_find", &find),
            ("v3_find_attributes", &find_attrs),
            ("v3_find_none", &find_none),
            (
                "v3_find_no_window",
                "/api/v3/traces?query.service_name=frontend",
            ),
            ("v3_find_bad_duration", &bad_duration),
            ("v3_summaries", &summaries),
            ("v3_summaries_none", &summaries_none),
        ],
    )
    .await;
}

/// One stored RED bucket of the metrics fixture: (service, operation, kind, bucket start in
/// minutes after `T0`, calls, errors, latency in ms of every call). Buckets are one minute.
type RedBucket = (&'static str, &'static str, SpanKind, u64, u64, u64, u64);

const RED_BUCKETS: &[RedBucket] = &[
    (
        "frontend",
        "GET /dispatch",
        SpanKind::Server,
        4,
        100,
        12,
        10,
    ),
    ("frontend", "GET /dispatch", SpanKind::Server, 4, 20, 0, 200),
    ("frontend", "GET /dispatch", SpanKind::Server, 5, 60, 0, 20),
    ("frontend", "POST /order", SpanKind::Server, 5, 30, 15, 300),
    (
        "frontend",
        "GET /dispatch",
        SpanKind::Client,
        5,
        600,
        600,
        1,
    ),
    // One bucket written in two halves (a late span re-opened it): the store merges them.
    ("driver", "FindNearest", SpanKind::Server, 7, 120, 0, 5),
    ("driver", "FindNearest", SpanKind::Server, 7, 120, 0, 5),
];

fn metrics_app() -> axum::Router {
    let store = MemoryStore::new(100);
    for &(service, operation, kind, minute, calls, errors, ms) in RED_BUCKETS {
        let mut histogram = spoor_core::red::LatencyHistogram::new();
        for _ in 0..calls {
            histogram.record_nanos(ms * MS);
        }
        let point = spoor_core::red::RedPoint {
            service: service.into(),
            operation: operation.into(),
            kind,
            bucket_start_nanos: T0 + minute * 60_000 * MS,
            bucket_nanos: 60_000 * MS,
            calls,
            errors,
            histogram,
        };
        store
            .write_span_metrics(&[point])
            .expect("fixture points are written");
    }
    router(Arc::new(store), QueryConfig::default())
}

#[tokio::test]
async fn metrics_api() {
    let app = metrics_app();
    // Steps 10:05, 10:06, …, 10:10 (T0 is 10:00); each window is the 2 minutes before its step.
    let range = "endTs=1795601400000&lookback=300000&step=60000&ratePer=120000";
    let both = format!("service=frontend&service=driver&{range}");
    let uri = |path: &str, extra: &str| format!("/api/metrics/{path}?{both}{extra}");
    let calls = uri("calls", "");
    let calls_by_op = uri("calls", "&groupByOperation=true");
    let calls_client = uri("calls", "&spanKind=client");
    let calls_none = format!("/api/metrics/calls?service=nobody&{range}");
    let errors = uri("errors", "");
    let errors_by_op = uri("errors", "&groupByOperation=1");
    let latencies = uri("latencies", "&quantile=0.95");
    let latencies_by_op = uri("latencies", "&quantile=0.5&groupByOperation=true");
    let latencies_all_kinds = uri("latencies", "&quantile=0.5&spanKind=server&spanKind=CLIENT");
    // Steps every 250 ms around 10:08, when driver's bucket closes.
    let sub_second = "/api/metrics/calls?service=driver&endTs=1795601280500&lookback=1000&step=250&ratePer=60000";
    check(
        &app,
        &[
            ("metrics_calls", &calls),
            ("metrics_calls_by_operation", &calls_by_op),
            ("metrics_calls_client", &calls_client),
            ("metrics_calls_none", &calls_none),
            ("metrics_calls_sub_second", sub_second),
            ("metrics_errors", &errors),
            ("metrics_errors_by_operation", &errors_by_op),
            ("metrics_latencies", &latencies),
            ("metrics_latencies_by_operation", &latencies_by_op),
            ("metrics_latencies_all_kinds", &latencies_all_kinds),
            ("metrics_minstep", "/api/metrics/minstep"),
            (
                "metrics_no_service",
                "/api/metrics/calls?endTs=1795601400000",
            ),
            (
                "metrics_no_quantile",
                "/api/metrics/latencies?service=frontend",
            ),
            (
                "metrics_quantile_out_of_range",
                "/api/metrics/latencies?service=frontend&quantile=1.5",
            ),
            (
                "metrics_bad_kind",
                "/api/metrics/errors?service=frontend&spanKind=sideways",
            ),
            (
                "metrics_bad_group",
                "/api/metrics/calls?service=frontend&groupByOperation=maybe",
            ),
            (
                "metrics_bad_end",
                "/api/metrics/calls?service=frontend&endTs=now",
            ),
            (
                "metrics_zero_step",
                "/api/metrics/calls?service=frontend&step=0",
            ),
            (
                "metrics_too_many_points",
                "/api/metrics/calls?service=frontend&lookback=3600000&step=100",
            ),
        ],
    )
    .await;
}

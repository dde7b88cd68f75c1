//! Authentication and multi-tenancy through the real daemon: tenant `a` sends over OTLP/HTTP
//! and OTLP/gRPC, tenant `b` over Jaeger Thrift HTTP and Zipkin; then every query endpoint
//! shows each tenant its own data only (by id, by search, by count), every entry point refuses
//! a missing or unknown token with 401 and another tenant's header with 403, a restart keeps
//! the tenants apart (sled), and header-only multi-tenancy (no tokens) behaves the same.

use std::time::{Duration, Instant};

use serde_json::Value;
use spoor_jaeger::model::{Batch, Process, Span, SpanRef, SpanRefType, Tag};
use spoor_tests::{http, Daemon};

/// 2026-01-01T00:00:00Z in microseconds: every span of this module starts after it.
pub(crate) const T0_US: u64 = 1_767_225_600_000_000;
pub(crate) const TA_HTTP: &str = "a0000000000000000000000000000001";
pub(crate) const TA_GRPC: &str = "a0000000000000000000000000000002";
pub(crate) const TB_JAEGER: &str = "000000000000000b0000000000000001";
pub(crate) const TB_ZIPKIN: &str = "b0000000000000000000000000000002";

/// What one tenant sent and must see; the other tenant must see none of it.
pub(crate) struct Sent {
    pub(crate) services: &'static [&'static str],
    pub(crate) traces: &'static [&'static str],
    /// A (parent, child) dependency link.
    pub(crate) link: (&'static str, &'static str),
}

pub(crate) const A: Sent = Sent {
    services: &["a-back", "a-front", "a-grpc"],
    traces: &[TA_HTTP, TA_GRPC],
    link: ("a-front", "a-back"),
};
pub(crate) const B: Sent = Sent {
    services: &["b-back", "b-front", "b-zipkin"],
    traces: &[TB_JAEGER, TB_ZIPKIN],
    link: ("b-front", "b-back"),
};

/// Credentials as request headers.
pub(crate) type Creds = Vec<(&'static str, String)>;

pub(crate) fn bearer(token: &str) -> Creds {
    vec![("Authorization", format!("Bearer {token}"))]
}

pub(crate) fn tenant_header(tenant: &str) -> Creds {
    vec![("x-tenant", tenant.to_string())]
}

pub(crate) fn headers(c: &Creds) -> Vec<(&str, &str)> {
    c.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

pub(crate) fn with(c: &Creds, extra: &[(&'static str, &str)]) -> Creds {
    let mut c = c.clone();
    c.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    c
}

pub(crate) fn get(port: u16, path: &str, c: &Creds) -> (u16, Value) {
    let r = http(port, "GET", path, &headers(c), b"").unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

pub(crate) fn query(d: &Daemon, path: &str, c: &Creds) -> Value {
    let (status, v) = get(d.ports.query, path, c);
    assert_eq!(status, 200, "GET {path}: {v}\n{}", d.log_text());
    v
}

pub(crate) fn otlp_json(trace: &str, spans: &[(&str, &str, &str, Option<&str>)]) -> String {
    // (service, span id, name, parent)
    let resource_spans: Vec<String> = spans
        .iter()
        .enumerate()
        .map(|(i, (service, id, name, parent))| {
            let parent = parent.map_or(String::new(), |p| format!(r#","parentSpanId":"{p}""#));
            let start = (T0_US + 1_000 * i as u64) * 1_000;
            format!(
                r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"{trace}","spanId":"{id}"{parent},"name":"{name}","kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{}"}}]}}]}}"#,
                start + 5_000_000
            )
        })
        .collect();
    format!(r#"{{"resourceSpans":[{}]}}"#, resource_spans.join(","))
}

pub(crate) fn send_otlp_grpc(
    port: u16,
    c: &Creds,
    body: &str,
) -> Result<spoor_otlp::proto::ExportTraceServiceResponse, tonic::Status> {
    let decoded = spoor_otlp::decode_json(body.as_bytes()).unwrap();
    let msg = spoor_otlp::spans_to_request(&decoded.spans);
    spoor_tests::grpc_unary(
        port,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        msg,
        c,
    )
}

fn jaeger_batches() -> [Batch; 2] {
    let (high, low) = (0x0b, 1);
    let root = Span {
        trace_id_low: low,
        trace_id_high: high,
        span_id: 0x10,
        operation_name: "GET /b".into(),
        start_time: T0_US as i64,
        duration: 20_000,
        tags: vec![Tag::string("span.kind", "server")],
        ..Default::default()
    };
    let child = Span {
        trace_id_low: low,
        trace_id_high: high,
        span_id: 0x11,
        parent_span_id: 0x10,
        operation_name: "SELECT b".into(),
        references: vec![SpanRef {
            ref_type: SpanRefType::ChildOf,
            trace_id_low: low,
            trace_id_high: high,
            span_id: 0x10,
        }],
        start_time: T0_US as i64 + 1_000,
        duration: 10_000,
        tags: vec![Tag::string("span.kind", "server")],
        ..Default::default()
    };
    let batch = |service: &str, span: Span| Batch {
        process: Process {
            service_name: service.into(),
            tags: vec![],
        },
        spans: vec![span],
        ..Default::default()
    };
    [batch("b-front", root), batch("b-back", child)]
}

fn zipkin_json() -> String {
    format!(
        r#"[{{"traceId":"{TB_ZIPKIN}","id":"0000000000000020","kind":"SERVER","name":"zipkin-op","timestamp":{},"duration":3000,"localEndpoint":{{"serviceName":"b-zipkin"}}}}]"#,
        T0_US + 2_000
    )
}

/// Tenant `a` sends over OTLP/HTTP and OTLP/gRPC, tenant `b` over Jaeger Thrift HTTP and
/// Zipkin v2 JSON.
pub(crate) fn send_all(d: &Daemon, a: &Creds, b: &Creds) {
    let body = otlp_json(
        TA_HTTP,
        &[
            ("a-front", "00000000000000a1", "GET /a", None),
            (
                "a-back",
                "00000000000000a2",
                "SELECT a",
                Some("00000000000000a1"),
            ),
        ],
    );
    let r = d
        .post_otlp(
            &headers(&with(a, &[("Content-Type", "application/json")])),
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = otlp_json(TA_GRPC, &[("a-grpc", "00000000000000a3", "grpc-op", None)]);
    send_otlp_grpc(d.ports.grpc, a, &body).unwrap();

    for batch in jaeger_batches() {
        let r = http(
            d.ports.jaeger_http,
            "POST",
            "/api/traces",
            &headers(&with(b, &[("Content-Type", "application/x-thrift")])),
            &spoor_jaeger::encode_http_batch(&batch),
        )
        .unwrap();
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = http(
        d.ports.zipkin,
        "POST",
        "/api/v2/spans",
        &headers(&with(b, &[("Content-Type", "application/json")])),
        zipkin_json().as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
}

pub(crate) fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

pub(crate) fn wait(what: &str, d: &Daemon, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const WINDOW_US: &str = "start=1767222000000000&end=1767229200000000";
const WINDOW_V3: &str =
    "query.start_time_min=2025-12-31T23:00:00Z&query.start_time_max=2026-01-01T01:00:00Z";

pub(crate) fn deps_path() -> String {
    format!(
        "/api/dependencies?endTs={}&lookback=7200000",
        T0_US / 1000 + 3_600_000
    )
}

pub(crate) fn metrics_path(kind: &str, service: &str) -> String {
    format!(
        "/api/metrics/{kind}?service={service}&endTs={}&lookback=7200000&step=60000&ratePer=60000",
        T0_US / 1000 + 3_600_000
    )
}

pub(crate) fn metric_points(v: &Value) -> usize {
    v["metrics"].as_array().map_or(0, |m| {
        m.iter()
            .map(|s| s["metricPoints"].as_array().map_or(0, Vec::len))
            .sum()
    })
}

/// Waits until `own` sees all of its data (so the checks below cannot pass on an empty store).
pub(crate) fn wait_stored(d: &Daemon, c: &Creds, own: &Sent) {
    for trace in own.traces {
        wait(&format!("trace {trace}"), d, || {
            get(d.ports.query, &format!("/api/traces/{trace}"), c).0 == 200
        });
    }
    wait("dependencies", d, || {
        query(d, &deps_path(), c)["data"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    wait("span metrics", d, || {
        metric_points(&query(d, &metrics_path("calls", own.services[1]), c)) > 0
    });
}

/// Everything `c` (the owner of `own`) can see through every query endpoint is its own.
pub(crate) fn check_isolation(d: &Daemon, c: &Creds, own: &Sent, other: &Sent) {
    // services, by count and by name
    let v = query(d, "/api/services", c);
    assert_eq!(names(&v["data"]), own.services, "{v}");
    assert_eq!(v["total"], own.services.len());
    let v = query(d, "/api/v3/services", c);
    assert_eq!(names(&v["services"]), own.services, "{v}");

    for (services, mine) in [(own.services, true), (other.services, false)] {
        for s in services {
            let ops = query(d, &format!("/api/services/{s}/operations"), c);
            assert_eq!(
                ops["data"].as_array().map_or(0, Vec::len) > 0,
                mine,
                "{s}: {ops}"
            );
            let ops = query(d, &format!("/api/operations?service={s}"), c);
            assert_eq!(
                ops["data"].as_array().map_or(0, Vec::len) > 0,
                mine,
                "{s}: {ops}"
            );
            let ops = query(d, &format!("/api/v3/operations?service={s}"), c);
            assert_eq!(
                ops["operations"].as_array().map_or(0, Vec::len) > 0,
                mine,
                "{s}: {ops}"
            );
            let found = query(
                d,
                &format!("/api/traces?service={s}&{WINDOW_US}&limit=100"),
                c,
            );
            assert_eq!(
                found["data"].as_array().map_or(0, Vec::len),
                usize::from(mine),
                "{s}: {found}"
            );
            let (status, v3) = get(
                d.ports.query,
                &format!("/api/v3/traces?{WINDOW_V3}&query.service_name={s}"),
                c,
            );
            let n = v3["result"]["resourceSpans"].as_array().map_or(0, Vec::len);
            if mine {
                assert_eq!(status, 200, "{s}: {v3}");
                assert!(n > 0, "{s}: {v3}");
            } else {
                // Jaeger answers "no traces" with 404
                assert!(status == 404 || n == 0, "{s}: {status} {v3}");
            }
            let calls = query(d, &metrics_path("calls", s), c);
            let latencies = query(
                d,
                &format!("{}&quantile=0.95", metrics_path("latencies", s)),
                c,
            );
            let errors = query(d, &metrics_path("errors", s), c);
            if !mine {
                for m in [&calls, &latencies, &errors] {
                    assert_eq!(metric_points(m), 0, "{s}: {m}");
                }
            }
        }
    }
    let calls = query(d, &metrics_path("calls", own.services[1]), c);
    assert!(metric_points(&calls) > 0, "{calls}");

    for (traces, mine) in [(own.traces, true), (other.traces, false)] {
        for t in traces {
            let want = if mine { 200 } else { 404 };
            let (status, v) = get(d.ports.query, &format!("/api/traces/{t}"), c);
            assert_eq!(status, want, "/api/traces/{t}: {v}");
            let (status, v) = get(d.ports.query, &format!("/api/v3/traces/{t}"), c);
            assert_eq!(status, want, "/api/v3/traces/{t}: {v}");
        }
    }
    // a search of everything in the window counts only the tenant's traces
    let total: usize = own
        .services
        .iter()
        .chain(other.services)
        .map(|s| {
            query(
                d,
                &format!("/api/traces?service={s}&{WINDOW_US}&limit=100"),
                c,
            )["data"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(total, own.services.len());

    let deps = query(d, &deps_path(), c);
    let links: Vec<(String, String)> = deps["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["parent"].as_str().unwrap().into(),
                l["child"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        links,
        vec![(own.link.0.to_string(), own.link.1.to_string())],
        "{deps}"
    );
}

/// `c` gets its strategies from every sampling endpoint of `r` (the receiving daemon; a
/// collector serves no `sampling_http` port).
pub(crate) fn check_sampling(r: &Daemon, c: &Creds, own: &Sent, sampling_http: bool) {
    let d = r;
    if sampling_http {
        let (status, v) = get(
            d.ports.sampling,
            &format!("/sampling?service={}", own.services[0]),
            c,
        );
        assert_eq!(status, 200, "{v}");
    }
    jaeger_grpc_strategy(d.ports.jaeger_grpc, c).unwrap();
    let (status, _) = get(
        d.ports.jaeger_http,
        &format!("/api/sampling?service={}", own.services[0]),
        c,
    );
    assert_eq!(status, 200);
}

/// Every entry point refuses `c` with `status` before reading the body (and, on 401, says how
/// to authenticate).
fn check_refused(d: &Daemon, c: &Creds, status: u16) {
    check_refused_query(d, c, status);
    check_refused_receivers(d, c, status, true);
}

/// Every query endpoint of `q` refuses `c` with `status`.
pub(crate) fn check_refused_query(q: &Daemon, c: &Creds, status: u16) {
    let cases: Vec<(u16, &str, String)> = [
        "/api/services".to_string(),
        "/api/operations?service=a-front".into(),
        "/api/services/a-front/operations".into(),
        "/api/traces?service=a-front".into(),
        format!("/api/traces/{TA_HTTP}"),
        "/api/dependencies?endTs=1&lookback=1".into(),
        "/api/metrics/calls?service=a-front".into(),
        "/api/metrics/errors?service=a-front".into(),
        "/api/metrics/latencies?service=a-front&quantile=0.9".into(),
        "/api/v3/services".into(),
        "/api/v3/operations?service=a-front".into(),
        "/api/v3/traces".into(),
        format!("/api/v3/traces/{TA_HTTP}"),
    ]
    .into_iter()
    .map(|p| (q.ports.query, "GET", p))
    .collect();
    expect_status(cases, c, status);
}

/// Every receiver and sampling endpoint of `d` refuses `c` with `status` (`sampling_http`:
/// whether `d` serves the remote samplers' port; a collector does not).
pub(crate) fn check_refused_receivers(d: &Daemon, c: &Creds, status: u16, sampling_http: bool) {
    let mut cases = vec![
        (d.ports.http, "POST", "/v1/traces".to_string()),
        (d.ports.jaeger_http, "POST", "/api/traces".into()),
        (d.ports.jaeger_http, "GET", "/api/sampling?service=x".into()),
        (d.ports.zipkin, "POST", "/api/v2/spans".into()),
    ];
    if sampling_http {
        cases.push((d.ports.sampling, "GET", "/sampling?service=x".into()));
        cases.push((d.ports.sampling, "GET", "/?service=x".into()));
    }
    expect_status(cases, c, status);
    let code = match status {
        401 => tonic::Code::Unauthenticated,
        _ => tonic::Code::PermissionDenied,
    };
    let body = otlp_json(TA_GRPC, &[("a-grpc", "00000000000000a9", "nope", None)]);
    let err = send_otlp_grpc(d.ports.grpc, c, &body).unwrap_err();
    assert_eq!(err.code(), code, "{err:?}");
    let err = jaeger_grpc_strategy(d.ports.jaeger_grpc, c).unwrap_err();
    assert_eq!(err.code(), code, "{err:?}");
}

fn expect_status(cases: Vec<(u16, &str, String)>, c: &Creds, status: u16) {
    let h = headers(c);
    for (port, method, path) in cases {
        let r = http(port, method, &path, &h, b"{}").unwrap();
        assert_eq!(
            r.status,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if status == 401 {
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"spoor\""),
                "{path}"
            );
        }
    }
}

/// `SamplingManager/GetSamplingStrategy` on the Jaeger gRPC port, with `c` as metadata.
fn jaeger_grpc_strategy(
    port: u16,
    c: &Creds,
) -> Result<spoor_jaeger::sampling::SamplingStrategyResponse, tonic::Status> {
    use spoor_jaeger::sampling::{SamplingStrategyParameters, GET_SAMPLING_STRATEGY_PATH};
    let msg = SamplingStrategyParameters {
        service_name: "a-front".into(),
    };
    spoor_tests::grpc_unary(port, GET_SAMPLING_STRATEGY_PATH, msg, c)
}

pub(crate) fn check_public(d: &Daemon) {
    let (status, v) = get(d.ports.query, "/api/ui-config", &vec![]);
    assert_eq!((status, v), (200, serde_json::json!({})));
    // the admin port is for operators: no token
    let r = http(d.ports.admin, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(r.status, 200);
}

fn check_metrics_labels(d: &Daemon) {
    let m = d.metrics_text();
    for (tenant, service) in [("a", "a-front"), ("b", "b-front")] {
        let want = format!(
            "traces_span_metrics_calls_total{{tenant=\"{tenant}\",service_name=\"{service}\""
        );
        assert!(m.contains(&want), "{want} not in\n{m}");
    }
    assert!(!m.contains("tenant=\"a\",service_name=\"b-"), "{m}");
}

fn check_everything(d: &Daemon, a: &Creds, b: &Creds) {
    wait_stored(d, a, &A);
    wait_stored(d, b, &B);
    check_isolation(d, a, &A, &B);
    check_isolation(d, b, &B, &A);
    check_sampling(d, a, &A, true);
    check_sampling(d, b, &B, true);
}

const ARGS: [&str; 4] = ["--span-metrics.bucket", "1s", "--retention", "100000d"];

#[test]
fn bearer_tokens_keep_tenants_apart_in_sled_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# tenants of the test\ntoken-a a\ntoken-b b\n").unwrap();
    let data = dir.path().join("data");
    let mut args = vec![
        "--storage",
        "sled",
        "--data-dir",
        data.to_str().unwrap(),
        "--auth.tokens-file",
        tokens.to_str().unwrap(),
    ];
    args.extend(ARGS);
    let d = Daemon::start(&args).unwrap();
    let (a, b) = (bearer("token-a"), bearer("token-b"));
    send_all(&d, &a, &b);
    check_everything(&d, &a, &b);
    check_metrics_labels(&d);
    check_public(&d);
    check_refused(&d, &vec![], 401);
    check_refused(&d, &bearer("token-c"), 401);
    check_refused(&d, &with(&a, &[("x-tenant", "b")]), 403);
    assert!(!d.log_text().contains("token-a"), "a token was logged");

    // a restart reopens both tenants' stores, still apart
    let ports = d.ports;
    assert!(d.stop().unwrap().success());
    assert!(data.join("tenants/a").is_dir() && data.join("tenants/b").is_dir());
    let d = Daemon::start_on(ports, &args).unwrap();
    check_everything(&d, &a, &b);
}

#[test]
fn bearer_tokens_keep_tenants_apart_in_memory() {
    let mut args = vec![
        "--storage",
        "memory",
        "--auth.tokens",
        "token-a=a,token-b=b",
    ];
    args.extend(ARGS);
    let d = Daemon::start(&args).unwrap();
    let (a, b) = (bearer("token-a"), bearer("token-b"));
    send_all(&d, &a, &b);
    check_everything(&d, &a, &b);
    // a prefix of a token is not the token
    check_refused(&d, &bearer("token-"), 401);
}

#[test]
fn the_tenant_header_alone_keeps_tenants_apart() {
    let mut args = vec![
        "--storage",
        "memory",
        "--multi-tenancy.enabled",
        "true",
        "--multi-tenancy.tenants",
        "a,b",
        "--multi-tenancy.max-tenants",
        "2",
    ];
    args.extend(ARGS);
    let d = Daemon::start(&args).unwrap();
    let (a, b) = (tenant_header("a"), tenant_header("b"));
    send_all(&d, &a, &b);
    check_everything(&d, &a, &b);
    check_refused(&d, &vec![], 401);
    check_refused(&d, &tenant_header("c"), 403);
    let r = http(
        d.ports.query,
        "GET",
        "/api/services",
        &[("x-tenant", "../etc")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn the_number_of_tenants_is_bounded_and_udp_needs_a_tenant() {
    let d = Daemon::start(&[
        "--storage",
        "memory",
        "--multi-tenancy.enabled",
        "true",
        "--multi-tenancy.max-tenants",
        "1",
    ])
    .unwrap();
    let r = http(
        d.ports.query,
        "GET",
        "/api/services",
        &[("x-tenant", "one")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let r = http(
        d.ports.query,
        "GET",
        "/api/services",
        &[("x-tenant", "two")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 403);
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("limit of 1 tenants"), "{text}");
    assert!(
        d.log_text().contains("Jaeger UDP receivers not started"),
        "{}",
        d.log_text()
    );
}

#[test]
fn adaptive_sampling_counts_each_tenant_apart() {
    let d = Daemon::start(&[
        "--storage",
        "memory",
        "--multi-tenancy.enabled",
        "true",
        "--sampling.adaptive",
        "true",
        "--sampling.calculation-interval",
        "1s",
    ])
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // 20 roots sampled at 0.001, of tenant a only, for a service both tenants could name
    let spans: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"traceId":"{:032x}","spanId":"00000000000000a1","name":"GET /only-a","kind":2,"startTimeUnixNano":"{now}","endTimeUnixNano":"{}","attributes":[{{"key":"sampler.type","value":{{"stringValue":"probabilistic"}}}},{{"key":"sampler.param","value":{{"doubleValue":0.001}}}}]}}"#,
                0xa000 + i,
                now + 1_000_000
            )
        })
        .collect();
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"shared-svc"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    let a = tenant_header("a");
    let r = d
        .post_otlp(
            &headers(&with(&a, &[("Content-Type", "application/json")])),
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let strategy = |c: &Creds| {
        let r = http(
            d.ports.sampling,
            "GET",
            "/sampling?service=shared-svc",
            &headers(c),
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        String::from_utf8_lossy(&r.body).into_owned()
    };
    wait("tenant a's adaptive strategy", &d, || {
        strategy(&a).contains("GET /only-a")
    });
    let b = strategy(&tenant_header("b"));
    assert!(
        !b.contains("GET /only-a"),
        "tenant b sees a's operation: {b}"
    );
}

#[test]
fn udp_spans_go_to_the_udp_tenant() {
    let d = Daemon::start(&[
        "--storage",
        "memory",
        "--multi-tenancy.enabled",
        "true",
        "--auth.udp-tenant",
        "a",
    ])
    .unwrap();
    let [front, _] = jaeger_batches();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(
        &spoor_jaeger::encode_emit_batch(&front, spoor_jaeger::Protocol::Compact, 1),
        ("127.0.0.1", d.ports.jaeger_compact),
    )
    .unwrap();
    let (a, b) = (tenant_header("a"), tenant_header("b"));
    wait("the UDP span in tenant a", &d, || {
        get(d.ports.query, &format!("/api/traces/{TB_JAEGER}"), &a).0 == 200
    });
    let (status, v) = get(d.ports.query, &format!("/api/traces/{TB_JAEGER}"), &b);
    assert_eq!(status, 404, "{v}");
    assert_eq!(
        names(&query(&d, "/api/services", &b)["data"]),
        Vec::<String>::new()
    );
}

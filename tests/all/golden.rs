//! The fixture trace (tests/fixtures/otlp_trace.json: fixed ids and times, every attribute
//! type, events, links, errors) goes in over each OTLP transport and each backend; every query
//! endpoint's JSON must equal the golden files in tests/golden/ (`SPOOR_BLESS=1` rewrites them).
//! One set of golden files for all paths proves transports and backends agree byte for byte.

use spoor_otlp::proto::ExportTraceServiceRequest;
use spoor_tests::{check_golden, repo_root, Daemon};

pub(crate) const TRACE_A: &str = "5b8efff798038103d269b633813fc60c";
/// 2026-01-01T00:00:00Z in microseconds (the fixture's time origin).
const T0_US: u64 = 1_767_225_600_000_000;

pub(crate) fn fixture_json() -> Vec<u8> {
    std::fs::read(repo_root().join("tests/fixtures/otlp_trace.json")).unwrap()
}

/// The same fixture as protobuf request bytes.
pub(crate) fn fixture_request() -> ExportTraceServiceRequest {
    let decoded = spoor_otlp::decode_json(&fixture_json()).unwrap();
    assert_eq!(decoded.rejected, 0);
    spoor_otlp::spans_to_request(&decoded.spans)
}

/// Exports `msg` over OTLP/gRPC; any prost message may stand in for the request, so tests can
/// send deliberately malformed ones.
pub(crate) fn send_grpc<M: prost::Message + Send + Sync + 'static>(
    port: u16,
    msg: M,
) -> Result<spoor_otlp::proto::ExportTraceServiceResponse, tonic::Status> {
    spoor_tests::grpc_unary(
        port,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        msg,
        &[],
    )
}

fn check_all_endpoints(d: &Daemon) {
    let window = format!("start={}&end={}", T0_US - 1_000_000, T0_US + 10_000_000);
    d.wait_json(&format!("/api/traces/{TRACE_A}"), |v| {
        v["data"][0]["spans"]
            .as_array()
            .is_some_and(|s| s.len() == 4)
    })
    .unwrap();
    let deps = format!(
        "/api/dependencies?endTs={}&lookback=3600000",
        T0_US / 1000 + 600_000
    );
    d.wait_json(&deps, |v| {
        v["data"].as_array().is_some_and(|l| !l.is_empty())
    })
    .unwrap();
    let cases: Vec<(&str, String, u16)> = vec![
        ("services", "/api/services".into(), 200),
        ("operations_frontend", "/api/services/frontend/operations".into(), 200),
        ("operations_kind", "/api/operations?service=frontend&spanKind=server".into(), 200),
        ("trace_a", format!("/api/traces/{TRACE_A}"), 200),
        ("find_by_service", format!("/api/traces?service=frontend&{window}&limit=20"), 200),
        ("find_by_operation_and_tag", format!("/api/traces?service=cart&operation=POST%20/cart&tags=%7B%22items%22%3A%223%22%7D&{window}"), 200),
        ("find_by_duration", format!("/api/traces?service=frontend&minDuration=100ms&{window}"), 200),
        ("find_none", format!("/api/traces?service=frontend&tag=http.status_code:404&{window}"), 200),
        ("dependencies", deps.clone(), 200),
        ("trace_not_found", "/api/traces/00000000000000000000000000000001".into(), 404),
        ("missing_service", "/api/traces?limit=5".into(), 400),
        ("bad_limit", "/api/traces?service=frontend&limit=many".into(), 400),
        ("bad_trace_id", "/api/traces/xyz".into(), 400),
        ("v3_services", "/api/v3/services".into(), 200),
        ("v3_trace_a", format!("/api/v3/traces/{TRACE_A}"), 200),
    ];
    let mut failures = Vec::new();
    for (name, path, status) in cases {
        let (got_status, body) = d.get_json(&path).unwrap();
        if got_status != status {
            failures.push(format!(
                "{path}: status {got_status}, want {status}: {body}"
            ));
            continue;
        }
        if let Err(e) = check_golden(name, &body) {
            failures.push(format!("{path}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn otlp_http_json_into_memory() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let r = d
        .post_otlp(&[("Content-Type", "application/json")], &fixture_json())
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    check_all_endpoints(&d);
}

#[test]
fn otlp_grpc_into_sled() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&[
        "--storage",
        "sled",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--retention",
        "100000d",
    ])
    .unwrap();
    let resp = send_grpc(d.ports.grpc, fixture_request()).unwrap();
    assert!(
        resp.partial_success
            .as_ref()
            .is_none_or(|p| p.rejected_spans == 0),
        "{resp:?}"
    );
    check_all_endpoints(&d);
}

#[test]
fn otlp_http_protobuf_gzip_into_sled() {
    use flate2::write::GzEncoder;
    use prost::Message;
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&[
        "--storage",
        "sled",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--retention",
        "100000d",
    ])
    .unwrap();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&fixture_request().encode_to_vec()).unwrap();
    let body = gz.finish().unwrap();
    let r = d
        .post_otlp(
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "gzip"),
            ],
            &body,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    check_all_endpoints(&d);
}

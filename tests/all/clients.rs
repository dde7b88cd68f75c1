//! Real OpenTelemetry clients (Python SDK over gRPC and HTTP/protobuf, JS SDK over HTTP/JSON
//! and HTTP/protobuf) send a three-span, two-service trace; the Jaeger query API must show it
//! with its services, parent/child links, kinds, typed tags, events, status and durations.

use serde_json::Value;
use spoor_tests::jaeger_json::{service_of, span, tag};
use spoor_tests::{python, run_client, Daemon};

fn check_trace(d: &Daemon, trace_id: &str, run: &str) {
    let v = d
        .wait_json(&format!("/api/traces/{trace_id}"), |v| {
            v["data"][0]["spans"]
                .as_array()
                .is_some_and(|s| s.len() == 3)
        })
        .unwrap();
    let t = &v["data"][0];
    let root = span(t, "GET /checkout");
    let call = span(t, "call cart");
    let server = span(t, "POST /cart");
    assert_eq!(service_of(t, root), format!("{run}-frontend"));
    assert_eq!(service_of(t, call), format!("{run}-frontend"));
    assert_eq!(service_of(t, server), format!("{run}-cart"));
    assert_eq!(root["references"], serde_json::json!([]));
    assert_eq!(call["references"][0]["refType"], "CHILD_OF");
    assert_eq!(call["references"][0]["spanID"], root["spanID"]);
    assert_eq!(server["references"][0]["spanID"], call["spanID"]);
    assert_eq!(tag(root, "span.kind")["value"], "server");
    assert_eq!(tag(call, "span.kind")["value"], "client");
    assert_eq!(tag(root, "http.method")["type"], "string");
    assert_eq!(tag(root, "http.status_code")["type"], "int64");
    assert_eq!(tag(root, "http.status_code")["value"], 200);
    assert_eq!(tag(root, "cache.hit")["type"], "bool");
    assert_eq!(tag(root, "cache.hit")["value"], true);
    assert_eq!(tag(root, "ratio")["type"], "float64");
    assert_eq!(tag(root, "ratio")["value"], 0.25);
    assert_eq!(tag(server, "error")["value"], true);
    assert_eq!(tag(server, "otel.status_code")["value"], "ERROR");
    assert_eq!(
        tag(server, "otel.status_description")["value"],
        "out of stock"
    );
    let log = &call["logs"][0];
    assert!(
        log["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["key"] == "event" && f["value"] == "retrying"),
        "{log}"
    );
    assert!(
        log["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["key"] == "attempt" && f["value"] == 2),
        "{log}"
    );
    // Durations in microseconds: the server span slept (2 ms in Python, 5 ms in JS; timers may
    // fire a little early by the SDK clock, hence the 1 ms bound) and nests inside its parents.
    let (rs, rd) = (
        root["startTime"].as_u64().unwrap(),
        root["duration"].as_u64().unwrap(),
    );
    let (ss, sd) = (
        server["startTime"].as_u64().unwrap(),
        server["duration"].as_u64().unwrap(),
    );
    assert!(sd >= 1000, "server duration {sd}us");
    assert!(
        ss >= rs && ss + sd <= rs + rd,
        "child outside parent: {root} {server}"
    );
    let services = d.get_json("/api/services").unwrap().1;
    for s in [format!("{run}-frontend"), format!("{run}-cart")] {
        assert!(
            services["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == &Value::String(s.clone())),
            "{services}"
        );
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 120_000;
    d.wait_json(
        &format!("/api/dependencies?endTs={now_ms}&lookback=3600000"),
        |v| {
            v["data"].as_array().is_some_and(|l| {
                l.iter().any(|x| {
                    x["parent"] == format!("{run}-frontend")
                        && x["child"] == format!("{run}-cart")
                        && x["callCount"] == 1
                })
            })
        },
    )
    .unwrap();
}

#[test]
fn python_sdk_over_grpc() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let out = run_client(
        &python(),
        &[
            "send_otlp.py",
            "grpc",
            &format!("127.0.0.1:{}", d.ports.grpc),
            "pygrpc",
        ],
    )
    .unwrap();
    check_trace(&d, out["trace_id"].as_str().unwrap(), "pygrpc");
}

#[test]
fn python_sdk_over_http_protobuf() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let out = run_client(
        &python(),
        &[
            "send_otlp.py",
            "http",
            &format!("http://127.0.0.1:{}", d.ports.http),
            "pyhttp",
        ],
    )
    .unwrap();
    check_trace(&d, out["trace_id"].as_str().unwrap(), "pyhttp");
}

#[test]
fn js_sdk_over_http_json_and_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&[
        "--storage",
        "sled",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let base = format!("http://127.0.0.1:{}", d.ports.http);
    let json = run_client("node".as_ref(), &["send_otlp.mjs", "json", &base, "jsjson"]).unwrap();
    check_trace(&d, json["trace_id"].as_str().unwrap(), "jsjson");
    let proto = run_client(
        "node".as_ref(),
        &["send_otlp.mjs", "protobuf", &base, "jsproto"],
    )
    .unwrap();
    check_trace(&d, proto["trace_id"].as_str().unwrap(), "jsproto");
}

//! Zipkin ingest end to end: the real Zipkin clients (Python `py_zipkin` in v2 JSON and proto3,
//! Node `zipkin` + `zipkin-transport-http` in v2 JSON) send a three-span, two-service trace that
//! the query API must show with services, parent/child links, kinds, string tags, annotations
//! as logs and durations; a v1 JSON body goes in over `/api/v1/spans`; and a fixed v2 JSON batch
//! must come back from `/api/traces/{id}` equal to the golden file
//! `tests/golden/zipkin_trace.json`.

use serde_json::Value;
use spoor_tests::jaeger_json::{service_of, span, tag};
use spoor_tests::{check_golden, http, python, run_client, Daemon};

/// Checks the trace that send_zipkin.py / send_zipkin.mjs produce.
fn check_trace(d: &Daemon, trace_id: &str, run: &str) {
    assert_eq!(trace_id.len(), 32, "expected a 128-bit id: {trace_id}");
    let v = d
        .wait_json(&format!("/api/traces/{trace_id}"), |v| {
            v["data"][0]["spans"]
                .as_array()
                .is_some_and(|s| s.len() == 3)
        })
        .unwrap();
    let t = &v["data"][0];
    assert_eq!(t["traceID"], trace_id);
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
    assert_eq!(tag(server, "span.kind")["value"], "server");
    // Zipkin tags are strings on the wire and stay strings
    assert_eq!(tag(root, "http.method")["type"], "string");
    assert_eq!(tag(root, "http.method")["value"], "GET");
    assert_eq!(tag(root, "http.status_code")["type"], "string");
    assert_eq!(tag(root, "http.status_code")["value"], "200");
    // the remote endpoint becomes peer attributes
    assert_eq!(tag(call, "peer.service")["value"], format!("{run}-cart"));
    assert_eq!(tag(call, "net.peer.ip")["value"], "127.0.0.1");
    assert_eq!(tag(call, "net.peer.port")["type"], "int64");
    assert_eq!(tag(call, "net.peer.port")["value"], 9000);
    // error tag: an error span whose message is the tag's text
    assert_eq!(tag(server, "error")["value"], true);
    assert_eq!(
        tag(server, "otel.status_description")["value"],
        "out of stock"
    );
    // annotations are logs
    let log = &call["logs"][0];
    assert_eq!(log["fields"][0]["key"], "event", "{call}");
    assert_eq!(log["fields"][0]["value"], "retrying", "{call}");
    // durations in microseconds: the server span waited 2 ms inside its parents
    let (rs, rd) = (
        root["startTime"].as_u64().unwrap(),
        root["duration"].as_u64().unwrap(),
    );
    let (ss, sd) = (
        server["startTime"].as_u64().unwrap(),
        server["duration"].as_u64().unwrap(),
    );
    assert!(sd >= 1000, "server duration {sd}us");
    assert!(rd >= sd, "root {rd}us shorter than server {sd}us");
    assert!(ss >= rs, "child starts before parent: {root} {server}");
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
}

#[test]
fn python_client_v2_json_and_proto3() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let url = format!("http://127.0.0.1:{}/api/v2/spans", d.ports.zipkin);
    for (enc, run) in [("json", "pyzjson"), ("proto", "pyzproto")] {
        let out = run_client(&python(), &["send_zipkin.py", &url, enc, run]).unwrap();
        check_trace(&d, out["trace_id"].as_str().unwrap(), run);
    }
}

#[test]
fn node_client_v2_json() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let url = format!("http://127.0.0.1:{}/api/v2/spans", d.ports.zipkin);
    let out = run_client("node".as_ref(), &["send_zipkin.mjs", &url, "jszipkin"]).unwrap();
    check_trace(&d, out["trace_id"].as_str().unwrap(), "jszipkin");
}

/// 2026-01-01T00:00:00Z in microseconds.
const T0_US: u64 = 1_767_225_600_000_000;
const TRACE: &str = "5af7183fb1d4cf5f4bf92f3577b34da6";

/// A fixed two-service v2 batch: kinds, endpoints, tags, annotations, a shared server span.
fn fixed_batch() -> Value {
    serde_json::json!([
        {
            "traceId": TRACE, "id": "0102030405060708", "kind": "SERVER",
            "name": "get /orders", "timestamp": T0_US, "duration": 120000,
            "localEndpoint": {"serviceName": "zipkin-golden-web", "ipv4": "10.1.0.1", "port": 8080},
            "remoteEndpoint": {"ipv4": "192.0.2.7", "port": 50123},
            "annotations": [{"timestamp": T0_US + 100000, "value": "timeout"}],
            "tags": {"http.method": "GET", "http.status_code": "500", "error": "db timeout"},
            "debug": true
        },
        {
            "traceId": TRACE, "parentId": "0102030405060708", "id": "1122334455667788",
            "kind": "CLIENT", "name": "select orders", "timestamp": T0_US + 5000, "duration": 100000,
            "localEndpoint": {"serviceName": "zipkin-golden-web"},
            "remoteEndpoint": {"serviceName": "zipkin-golden-db", "port": 5432},
            "tags": {"db.system": "postgresql"}
        },
        {
            "traceId": TRACE, "parentId": "0102030405060708", "id": "1122334455667788",
            "kind": "SERVER", "name": "select orders", "timestamp": T0_US + 6000, "duration": 98000,
            "localEndpoint": {"serviceName": "zipkin-golden-db"}, "shared": true
        }
    ])
}

#[test]
fn fixed_batch_matches_golden_and_v1_goes_in() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let body = fixed_batch().to_string();
    let r = http(
        d.ports.zipkin,
        "POST",
        "/api/v2/spans",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (202, &b""[..]));
    let v = d
        .wait_json(&format!("/api/traces/{TRACE}"), |v| {
            v["data"][0]["spans"]
                .as_array()
                .is_some_and(|s| s.len() == 3)
        })
        .unwrap();
    check_golden("zipkin_trace", &v).unwrap();

    // the same batch in v1 JSON (written by the codec's v1 encoder) on /api/v1/spans
    let (spans, _) = spoor_zipkin::read_v2_json(body.as_bytes()).unwrap();
    let mut zs: Vec<_> = spans.into_iter().map(|(_, z)| z).collect();
    for z in &mut zs {
        z.trace_id = spoor_core::TraceId(z.trace_id.0 ^ 1);
    }
    let v1 = spoor_zipkin::encode_v1_json(&zs);
    let r = http(d.ports.zipkin, "POST", "/api/v1/spans", &[], &v1).unwrap();
    assert_eq!(r.status, 202);
    let id = spoor_core::TraceId(zs[0].trace_id.0).to_hex().to_string();
    let v1_trace = d
        .wait_json(&format!("/api/traces/{id}"), |v| {
            v["data"][0]["spans"]
                .as_array()
                .is_some_and(|s| s.len() == 3)
        })
        .unwrap();
    let kinds = |v: &Value| {
        let mut k: Vec<String> = v["data"][0]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{} {}", s["operationName"], tag(s, "span.kind")["value"]))
            .collect();
        k.sort();
        k
    };
    assert_eq!(kinds(&v1_trace), kinds(&v));

    // a bad body is refused with a message naming the problem
    let r = http(
        d.ports.zipkin,
        "POST",
        "/api/v2/spans",
        &[],
        b"{\"spans\": 1}",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "expected a json array of spans, got an object\n"
    );
}

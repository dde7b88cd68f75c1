//! Jaeger ingest end to end: the real Jaeger clients (Python `jaeger-client` over Thrift
//! compact/UDP, Node `jaeger-client` over Thrift binary/UDP and Thrift/HTTP) send a three-span,
//! two-service trace that the query API must show with services, parent/child links, kinds,
//! typed tags, logs and durations; an `api_v2` PostSpans call goes in over gRPC; and a fixed
//! Thrift batch sent over UDP must come back from `/api/traces/{id}` equal to the golden file
//! `tests/golden/jaeger_trace.json`.

use serde_json::Value;
use spoor_jaeger::model::{Batch, Log, Process, Span, SpanRef, SpanRefType, Tag};
use spoor_jaeger::{proto, Protocol};
use spoor_tests::jaeger_json::{service_of, span, tag};
use spoor_tests::{check_golden, http, python, run_client, Daemon};

fn has_field(log: &Value, key: &str, value: Value) -> bool {
    log["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["key"] == key && f["value"] == value)
}

/// Checks the trace that send_jaeger.py / send_jaeger.mjs produce. `int_type` is the tag type
/// the client gives integers: the Node client sends every JS number as a DOUBLE tag.
fn check_trace(d: &Daemon, trace_id: &str, run: &str, int_type: &str) {
    let v = d
        .wait_json(&format!("/api/traces/{trace_id}"), |v| {
            v["data"][0]["spans"]
                .as_array()
                .is_some_and(|s| s.len() == 3)
        })
        .unwrap();
    let t = &v["data"][0];
    // 64-bit ids come back in 16 hex digits, as Jaeger shows them
    let short = trace_id
        .strip_prefix("0000000000000000")
        .unwrap_or(trace_id);
    assert_eq!(t["traceID"], short);
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
    assert_eq!(tag(root, "http.method")["type"], "string");
    assert_eq!(tag(root, "http.method")["value"], "GET");
    assert_eq!(tag(root, "http.status_code")["type"], int_type);
    assert_eq!(tag(root, "http.status_code")["value"].as_f64(), Some(200.0));
    assert_eq!(tag(root, "cache.hit")["type"], "bool");
    assert_eq!(tag(root, "cache.hit")["value"], true);
    assert_eq!(tag(root, "ratio")["type"], "float64");
    assert_eq!(tag(root, "ratio")["value"], 0.25);
    assert_eq!(tag(server, "error")["value"], true);
    assert!(
        has_field(&call["logs"][0], "event", "retrying".into()),
        "{call}"
    );
    let attempt = call["logs"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "attempt")
        .unwrap_or_else(|| panic!("no attempt field in {call}"));
    assert_eq!(attempt["type"], int_type);
    assert_eq!(attempt["value"].as_f64(), Some(2.0));
    assert!(
        has_field(&server["logs"][0], "message", "out of stock".into()),
        "{server}"
    );
    // the client's process tags arrive as process tags
    let pid = root["processID"].as_str().unwrap();
    let ptags = t["processes"][pid]["tags"].as_array().unwrap();
    assert!(ptags.iter().any(|t| t["key"] == "hostname"), "{ptags:?}");
    assert!(
        ptags.iter().any(|t| t["key"] == "jaeger.version"),
        "{ptags:?}"
    );
    // durations in microseconds: the server span slept (2 or 5 ms) inside its parents
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
}

#[test]
fn python_client_over_udp_thrift_compact() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let out = run_client(
        &python(),
        &[
            "send_jaeger.py",
            "127.0.0.1",
            &d.ports.jaeger_compact.to_string(),
            "pyjaeger",
        ],
    )
    .unwrap();
    let id = out["trace_id"].as_str().unwrap();
    assert!(
        !id.starts_with("0000000000000000"),
        "expected a 128-bit id: {id}"
    );
    check_trace(&d, id, "pyjaeger", "int64");
}

#[test]
fn node_client_over_udp_thrift_binary_and_http() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let udp = run_client(
        "node".as_ref(),
        &[
            "send_jaeger.mjs",
            "udp",
            &format!("127.0.0.1:{}", d.ports.jaeger_binary),
            "jsudp",
        ],
    )
    .unwrap();
    check_trace(&d, udp["trace_id"].as_str().unwrap(), "jsudp", "float64");
    // Node's HTTP sender writes the body without a length: chunked transfer encoding
    let url = format!("http://127.0.0.1:{}/api/traces", d.ports.jaeger_http);
    let web = run_client(
        "node".as_ref(),
        &["send_jaeger.mjs", "http", &url, "jshttp"],
    )
    .unwrap();
    check_trace(&d, web["trace_id"].as_str().unwrap(), "jshttp", "float64");
}

const TRACE_HIGH: i64 = 0x4bf92f3577b34da6;
const TRACE_LOW: i64 = -0x5c1e_4f2a_0d3b_6e11;
/// 2026-01-01T00:00:00Z in microseconds.
const T0_US: i64 = 1_767_225_600_000_000;

/// A fixed two-service Thrift batch pair: every tag type, logs, references, process tags.
fn fixed_batches() -> [Batch; 2] {
    let id = |low| (TRACE_HIGH, low);
    let (h, l) = id(TRACE_LOW);
    let root = Span {
        trace_id_low: l,
        trace_id_high: h,
        span_id: 0x0102030405060708,
        operation_name: "GET /orders".into(),
        flags: 1,
        start_time: T0_US,
        duration: 120_000,
        tags: vec![
            Tag::string("span.kind", "server"),
            Tag::string("http.method", "GET"),
            Tag::long("http.status_code", 500),
            Tag::double("ratio", 0.5),
            Tag::bool("cache.hit", false),
            Tag::binary("blob", &[0xca, 0xfe]),
            Tag::bool("error", true),
            Tag::string("otel.status_description", "db timeout"),
        ],
        logs: vec![Log {
            timestamp: T0_US + 100_000,
            fields: vec![Tag::string("event", "timeout"), Tag::long("after_ms", 100)],
        }],
        ..Default::default()
    };
    let db = Span {
        trace_id_low: l,
        trace_id_high: h,
        span_id: -0x1122334455667788,
        parent_span_id: 0x0102030405060708,
        operation_name: "SELECT orders".into(),
        references: vec![
            SpanRef {
                ref_type: SpanRefType::ChildOf,
                trace_id_low: l,
                trace_id_high: h,
                span_id: 0x0102030405060708,
            },
            SpanRef {
                ref_type: SpanRefType::FollowsFrom,
                trace_id_low: 99,
                trace_id_high: 0,
                span_id: 0x99,
            },
        ],
        flags: 1,
        start_time: T0_US + 5_000,
        duration: 100_000,
        tags: vec![
            Tag::string("span.kind", "client"),
            Tag::string("db.system", "postgresql"),
        ],
        ..Default::default()
    };
    [
        Batch {
            process: Process {
                service_name: "jaeger-golden-web".into(),
                tags: vec![Tag::string("hostname", "web-1"), Tag::long("pid", 4242)],
            },
            spans: vec![root],
            ..Default::default()
        },
        Batch {
            process: Process {
                service_name: "jaeger-golden-db".into(),
                tags: vec![Tag::bool("primary", true)],
            },
            spans: vec![db],
            ..Default::default()
        },
    ]
}

fn trace_hex() -> String {
    format!("{:016x}{:016x}", TRACE_HIGH as u64, TRACE_LOW as u64)
}

fn wait_golden(d: &Daemon) -> Value {
    d.wait_json(&format!("/api/traces/{}", trace_hex()), |v| {
        v["data"][0]["spans"]
            .as_array()
            .is_some_and(|s| s.len() == 2)
    })
    .unwrap()
}

#[test]
fn fixed_thrift_batch_over_udp_matches_golden() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let [web, db] = fixed_batches();
    // garbage first: counted and dropped, the receiver keeps going
    sock.send_to(b"\x82\x81garbage", ("127.0.0.1", d.ports.jaeger_compact))
        .unwrap();
    sock.send_to(
        &spoor_jaeger::encode_emit_batch(&web, Protocol::Compact, 1),
        ("127.0.0.1", d.ports.jaeger_compact),
    )
    .unwrap();
    sock.send_to(
        &spoor_jaeger::encode_emit_batch(&db, Protocol::Binary, 2),
        ("127.0.0.1", d.ports.jaeger_binary),
    )
    .unwrap();
    let v = wait_golden(&d);
    check_golden("jaeger_trace", &v).unwrap();
}

#[test]
fn thrift_over_http_chunked_and_refusals() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let [web, db] = fixed_batches();
    let ct = [("Content-Type", "application/x-thrift")];
    for b in [&web, &db] {
        let r = http(
            d.ports.jaeger_http,
            "POST",
            "/api/traces",
            &ct,
            &spoor_jaeger::encode_http_batch(b),
        )
        .unwrap();
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    }
    // the same golden file: HTTP and UDP agree
    check_golden("jaeger_trace", &wait_golden(&d)).unwrap();
    let bad = http(d.ports.jaeger_http, "POST", "/api/traces", &ct, b"\x0c\x00").unwrap();
    assert_eq!(bad.status, 400);
    let text = String::from_utf8_lossy(&bad.body);
    assert!(text.starts_with("cannot decode thrift batch: "), "{text}");
}

fn post_spans(port: u16, req: proto::PostSpansRequest) -> Result<(), tonic::Status> {
    spoor_tests::grpc_unary::<_, proto::PostSpansResponse>(port, proto::POST_SPANS_PATH, req, &[])
        .map(|_| ())
}

#[test]
fn api_v2_post_spans_over_grpc() {
    let d = Daemon::start(&["--storage", "memory"]).unwrap();
    let trace_id: Vec<u8> = (1..=16).collect();
    let mk =
        |id: u8, name: &str, kind: &str, refs: Vec<proto::SpanRef>, start_ms: u64| proto::Span {
            trace_id: trace_id.clone(),
            span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
            operation_name: name.into(),
            references: refs,
            flags: 1,
            start_time: Some(proto::Timestamp::from_nanos(
                1_767_225_600_000_000_000 + start_ms * 1_000_000,
            )),
            duration: Some(proto::Duration::from_nanos(3_000_000)),
            tags: vec![
                proto::KeyValue::string("span.kind", kind),
                proto::KeyValue::int64("attempt", 2),
                proto::KeyValue::float64("ratio", 0.5),
                proto::KeyValue::bool("retry", true),
            ],
            logs: vec![proto::Log {
                timestamp: Some(proto::Timestamp::from_nanos(
                    1_767_225_600_000_000_000 + start_ms * 1_000_000 + 1_000,
                )),
                fields: vec![proto::KeyValue::string("event", "sent")],
            }],
            ..Default::default()
        };
    let mut child = mk(
        2,
        "consume",
        "consumer",
        vec![proto::SpanRef {
            trace_id: trace_id.clone(),
            span_id: vec![0, 0, 0, 0, 0, 0, 0, 1],
            ref_type: proto::SpanRefType::ChildOf as i32,
        }],
        1,
    );
    // inside its parent (0-3 ms), so the query's clock-skew adjustment leaves it alone
    child.duration = Some(proto::Duration::from_nanos(1_000_000));
    child.process = Some(proto::Process {
        service_name: "grpc-worker".into(),
        tags: vec![],
    });
    let req = proto::PostSpansRequest {
        batch: Some(proto::Batch {
            spans: vec![mk(1, "publish", "producer", vec![], 0), child],
            process: Some(proto::Process {
                service_name: "grpc-api".into(),
                tags: vec![proto::KeyValue::string("hostname", "api-1")],
            }),
        }),
    };
    post_spans(d.ports.jaeger_grpc, req).unwrap();
    let v = d
        .wait_json("/api/traces/0102030405060708090a0b0c0d0e0f10", |v| {
            v["data"][0]["spans"]
                .as_array()
                .is_some_and(|s| s.len() == 2)
        })
        .unwrap();
    let t = &v["data"][0];
    let publish = span(t, "publish");
    let consume = span(t, "consume");
    assert_eq!(service_of(t, publish), "grpc-api");
    assert_eq!(service_of(t, consume), "grpc-worker");
    assert_eq!(consume["references"][0]["spanID"], publish["spanID"]);
    assert_eq!(tag(publish, "span.kind")["value"], "producer");
    assert_eq!(tag(consume, "span.kind")["value"], "consumer");
    assert_eq!(tag(consume, "attempt")["type"], "int64");
    assert_eq!(tag(consume, "ratio")["type"], "float64");
    assert_eq!(tag(consume, "retry")["type"], "bool");
    assert_eq!(consume["duration"], 1000);
    assert_eq!(consume["startTime"], 1_767_225_600_001_000u64);
    assert!(has_field(&consume["logs"][0], "event", "sent".into()));
    let err = post_spans(d.ports.jaeger_grpc, proto::PostSpansRequest { batch: None }).unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "PostSpansRequest has no batch");
}

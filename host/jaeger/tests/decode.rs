//! Decoding tests: one Jaeger batch built by hand, encoded in every wire format Spoor accepts,
//! must decode to the same spans, which must equal the golden file `golden/batch.json`
//! (`SPOOR_BLESS=1` rewrites it). Truncated and garbage input must fail with a message, never
//! panic.

use serde_json::{json, Value};
use spoor_core::{AnyValue, KeyValue, Span};
use spoor_jaeger::model::{Batch, Log, Process, Span as JSpan, SpanRef, SpanRefType, Tag};
use spoor_jaeger::{proto, Protocol};

const TRACE_HIGH: i64 = 0x0af7651916cd43dd;
const TRACE_LOW: i64 = -0x7b5a_4c3e_2d1f_0e01; // high bit set: ids are unsigned on the wire
const START_US: i64 = 1_764_000_000_123_456;

fn batch() -> Batch {
    let root = JSpan {
        trace_id_low: TRACE_LOW,
        trace_id_high: TRACE_HIGH,
        span_id: 0x1111,
        parent_span_id: 0,
        operation_name: "GET /checkout".into(),
        flags: 1,
        start_time: START_US,
        duration: 250_000,
        tags: vec![
            Tag::string("span.kind", "server"),
            Tag::string("http.method", "GET"),
            Tag::long("http.status_code", 503),
            Tag::double("load", 0.75),
            Tag::bool("cache.hit", false),
            Tag::binary("blob", &[0xde, 0xad, 0xbe, 0xef]),
            Tag::bool("error", true),
            Tag::string("otel.status_description", "backend down"),
            Tag::string("w3c.tracestate", "vendor=abc"),
            Tag::string("otel.library.name", "shop-tracer"),
            Tag::string("otel.library.version", "1.2.3"),
        ],
        logs: vec![
            Log {
                timestamp: START_US + 1_000,
                fields: vec![
                    Tag::string("event", "cache miss"),
                    Tag::string("key", "cart:42"),
                ],
            },
            Log {
                timestamp: START_US + 2_000,
                fields: vec![Tag::long("retries", 3)],
            },
        ],
        ..Default::default()
    };
    let child = JSpan {
        trace_id_low: TRACE_LOW,
        trace_id_high: TRACE_HIGH,
        span_id: -2, // 0xfffffffffffffffe
        parent_span_id: 0x1111,
        operation_name: "SELECT cart".into(),
        references: vec![
            SpanRef {
                ref_type: SpanRefType::ChildOf,
                trace_id_low: TRACE_LOW,
                trace_id_high: TRACE_HIGH,
                span_id: 0x1111,
            },
            SpanRef {
                ref_type: SpanRefType::FollowsFrom,
                trace_id_low: TRACE_LOW,
                trace_id_high: TRACE_HIGH,
                span_id: 0x2222,
            },
            SpanRef {
                ref_type: SpanRefType::ChildOf,
                trace_id_low: 7,
                trace_id_high: 0,
                span_id: 0x3333,
            },
        ],
        flags: 3,
        start_time: START_US + 10_000,
        duration: 80_000,
        tags: vec![
            Tag::string("span.kind", "client"),
            Tag::string("otel.status_code", "OK"),
            Tag::string("db.system", "postgresql"),
        ],
        ..Default::default()
    };
    Batch {
        process: Process {
            service_name: "frontend".into(),
            tags: vec![
                Tag::string("hostname", "web-1"),
                Tag::string("ip", "10.0.0.7"),
                Tag::string("jaeger.version", "Python-4.8.0"),
                Tag::long("pid", 4242),
            ],
        },
        spans: vec![root, child],
        seq_no: Some(9),
        stats: None,
    }
}

fn value(v: &AnyValue) -> Value {
    match v {
        AnyValue::Str(s) => json!({ "str": s }),
        AnyValue::Bool(b) => json!({ "bool": b }),
        AnyValue::Int(i) => json!({ "int": i }),
        AnyValue::Double(d) => json!({ "double": d }),
        AnyValue::Bytes(b) => {
            json!({ "bytes": b.iter().map(|x| format!("{x:02x}")).collect::<String>() })
        }
        AnyValue::Array(a) => json!({ "array": a.iter().map(value).collect::<Vec<_>>() }),
        AnyValue::Map(m) => json!({ "map": attrs(m) }),
    }
}

fn attrs(kvs: &[KeyValue]) -> Value {
    kvs.iter()
        .map(|kv| json!([kv.key, value(&kv.value)]))
        .collect()
}

/// A readable rendering of decoded spans for the golden file.
fn render(spans: &[Span]) -> Value {
    spans
        .iter()
        .map(|s| {
            json!({
                "trace_id": s.trace_id.to_hex().as_str(),
                "span_id": s.span_id.to_hex().as_str(),
                "parent_span_id": s.parent_span_id.map(|p| p.to_hex().as_str().to_string()),
                "trace_state": s.trace_state,
                "flags": s.flags,
                "name": s.name,
                "kind": s.kind.as_jaeger_str(),
                "start_unix_nanos": s.start_unix_nanos,
                "duration_nanos": s.duration_nanos,
                "status": { "code": format!("{:?}", s.status.code), "message": s.status.message },
                "attributes": attrs(&s.attributes),
                "events": s.events.iter().map(|e| json!({
                    "time_unix_nanos": e.time_unix_nanos, "name": e.name, "attributes": attrs(&e.attributes),
                })).collect::<Vec<_>>(),
                "links": s.links.iter().map(|l| json!({
                    "trace_id": l.trace_id.to_hex().as_str(), "span_id": l.span_id.to_hex().as_str(),
                    "attributes": attrs(&l.attributes),
                })).collect::<Vec<_>>(),
                "resource": { "service_name": s.resource.service_name, "attributes": attrs(&s.resource.attributes) },
                "scope": { "name": s.scope.name, "version": s.scope.version },
            })
        })
        .collect()
}

fn check_golden(name: &str, actual: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("SPOOR_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); run with SPOOR_BLESS=1",
            path.display()
        )
    });
    assert_eq!(
        text,
        want,
        "{} differs; SPOOR_BLESS=1 rewrites it",
        path.display()
    );
}

#[test]
fn thrift_compact_binary_and_http_decode_alike_and_match_golden() {
    let b = batch();
    let compact = spoor_jaeger::encode_emit_batch(&b, Protocol::Compact, 1);
    let binary = spoor_jaeger::encode_emit_batch(&b, Protocol::Binary, 1);
    let http = spoor_jaeger::encode_http_batch(&b);
    assert_eq!(
        spoor_jaeger::read_emit_batch(&compact, Protocol::Compact).unwrap(),
        b
    );
    assert_eq!(
        spoor_jaeger::read_emit_batch(&binary, Protocol::Binary).unwrap(),
        b
    );
    let d = spoor_jaeger::decode_emit_batch(&compact, Protocol::Compact).unwrap();
    assert_eq!(d.rejected, 0);
    assert_eq!(
        spoor_jaeger::decode_emit_batch(&binary, Protocol::Binary).unwrap(),
        d
    );
    assert_eq!(spoor_jaeger::decode_http_batch(&http).unwrap(), d);
    // the spans of one batch share one resource
    assert!(std::sync::Arc::ptr_eq(
        &d.spans[0].resource,
        &d.spans[1].resource
    ));
    check_golden("batch.json", &render(&d.spans));
}

fn kv(t: &Tag) -> proto::KeyValue {
    use spoor_jaeger::model::TagType;
    match t.v_type {
        TagType::String => proto::KeyValue::string(&t.key, t.v_str.as_deref().unwrap()),
        TagType::Double => proto::KeyValue::float64(&t.key, t.v_double.unwrap()),
        TagType::Bool => proto::KeyValue::bool(&t.key, t.v_bool.unwrap()),
        TagType::Long => proto::KeyValue::int64(&t.key, t.v_long.unwrap()),
        TagType::Binary => proto::KeyValue::binary(&t.key, t.v_binary.as_deref().unwrap()),
    }
}

fn trace_bytes(high: i64, low: i64) -> Vec<u8> {
    let mut v = high.to_be_bytes().to_vec();
    v.extend_from_slice(&low.to_be_bytes());
    v
}

/// The same batch as `batch()`, in api_v2 protobuf.
fn proto_batch() -> proto::Batch {
    let b = batch();
    let spans = b
        .spans
        .iter()
        .map(|s| proto::Span {
            trace_id: trace_bytes(s.trace_id_high, s.trace_id_low),
            span_id: s.span_id.to_be_bytes().to_vec(),
            operation_name: s.operation_name.clone(),
            references: s
                .references
                .iter()
                .map(|r| proto::SpanRef {
                    trace_id: trace_bytes(r.trace_id_high, r.trace_id_low),
                    span_id: r.span_id.to_be_bytes().to_vec(),
                    ref_type: r.ref_type as i32,
                })
                .collect(),
            flags: s.flags as u32,
            start_time: Some(proto::Timestamp::from_nanos(s.start_time as u64 * 1000)),
            duration: Some(proto::Duration::from_nanos(s.duration * 1000)),
            tags: s.tags.iter().map(kv).collect(),
            logs: s
                .logs
                .iter()
                .map(|l| proto::Log {
                    timestamp: Some(proto::Timestamp::from_nanos(l.timestamp as u64 * 1000)),
                    fields: l.fields.iter().map(kv).collect(),
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    proto::Batch {
        spans,
        process: Some(proto::Process {
            service_name: b.process.service_name.clone(),
            tags: b.process.tags.iter().map(kv).collect(),
        }),
    }
}

#[test]
fn api_v2_protobuf_decodes_like_thrift() {
    let thrift =
        spoor_jaeger::decode_http_batch(&spoor_jaeger::encode_http_batch(&batch())).unwrap();
    let bytes = spoor_jaeger::encode_post_spans(proto_batch());
    let d = spoor_jaeger::decode_post_spans(&bytes).unwrap();
    assert_eq!(render(&d.spans), render(&thrift.spans));
}

#[test]
fn api_v2_span_process_overrides_and_bad_ids_are_rejected_one_by_one() {
    let mut b = proto_batch();
    b.spans[0].process = Some(proto::Process {
        service_name: "own".into(),
        tags: vec![],
    });
    let mut third = b.spans[1].clone();
    b.spans[1].span_id.truncate(5);
    third.references[0].trace_id = vec![1, 2, 3];
    third.references.truncate(1);
    b.spans.push(third);
    let d = spoor_jaeger::decode_post_spans(&spoor_jaeger::encode_post_spans(b)).unwrap();
    assert_eq!(d.spans.len(), 1);
    assert_eq!(d.spans[0].service(), "own");
    assert_eq!(d.rejected, 2);
    assert_eq!(
        d.problems,
        [
            "spans[1]: span_id is 5 bytes, expected 8",
            "spans[2]: references[0].trace_id is 3 bytes, expected 16"
        ]
    );
    assert_eq!(
        spoor_jaeger::decode_post_spans(&[])
            .unwrap_err()
            .to_string(),
        "PostSpansRequest has no batch"
    );
    assert!(spoor_jaeger::decode_post_spans(&[0x0a, 0x05, 1])
        .unwrap_err()
        .to_string()
        .starts_with("invalid protobuf: "));
}

#[test]
fn ids_of_64_bits_have_a_zero_high_half() {
    let mut b = batch();
    b.spans.truncate(1);
    b.spans[0].trace_id_high = 0;
    b.spans[0].trace_id_low = 0x00f067aa0ba902b7;
    let d = spoor_jaeger::decode_emit_batch(
        &spoor_jaeger::encode_emit_batch(&b, Protocol::Compact, 0),
        Protocol::Compact,
    )
    .unwrap();
    assert_eq!(
        d.spans[0].trace_id.to_hex().as_str(),
        "000000000000000000f067aa0ba902b7"
    );
}

#[test]
fn status_rules_follow_the_collector_translator() {
    // (tags, expected status code, message, attribute keys left)
    let cases: Vec<(Vec<Tag>, &str, &str, Vec<&str>)> = vec![
        (vec![Tag::bool("error", false)], "Unset", "", vec!["error"]),
        (
            vec![Tag::string("error", "true")],
            "Unset",
            "",
            vec!["error"],
        ),
        (
            vec![
                Tag::bool("error", true),
                Tag::string("otel.status_code", "OK"),
            ],
            "Error",
            "",
            vec![],
        ),
        (
            vec![
                Tag::string("otel.status_code", "error"),
                Tag::string("otel.status_description", "boom"),
            ],
            "Error",
            "boom",
            vec![],
        ),
        (
            vec![
                Tag::long("http.status_code", 502),
                Tag::string("http.status_message", "bad gw"),
            ],
            "Error",
            "bad gw",
            vec!["http.status_code", "http.status_message"],
        ),
        (
            vec![Tag::long("http.status_code", 404)],
            "Unset",
            "",
            vec!["http.status_code"],
        ),
        (
            vec![Tag::string("span.kind", "weird")],
            "Unset",
            "",
            vec!["span.kind"],
        ),
    ];
    for (tags, code, msg, left) in cases {
        let mut b = batch();
        b.spans.truncate(1);
        b.spans[0].tags = tags.clone();
        if !tags.iter().any(|t| t.key == "span.kind") {
            b.spans[0].tags.push(Tag::string("span.kind", "server"));
        }
        let d = spoor_jaeger::decode_http_batch(&spoor_jaeger::encode_http_batch(&b)).unwrap();
        let s = &d.spans[0];
        assert_eq!(format!("{:?}", s.status.code), code, "{tags:?}");
        assert_eq!(s.status.message, msg, "{tags:?}");
        let keys: Vec<&str> = s.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, left, "{tags:?}");
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let b = batch();
    for p in [Protocol::Compact, Protocol::Binary] {
        let bytes = spoor_jaeger::encode_emit_batch(&b, p, 1);
        for n in 0..bytes.len() {
            assert!(
                spoor_jaeger::decode_emit_batch(&bytes[..n], p).is_err(),
                "{p:?} {n}"
            );
        }
    }
    let http = spoor_jaeger::encode_http_batch(&b);
    for n in 0..http.len() {
        assert!(spoor_jaeger::decode_http_batch(&http[..n]).is_err(), "{n}");
    }
}

#[test]
fn garbage_and_bit_flips_never_panic() {
    let b = batch();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for p in [Protocol::Compact, Protocol::Binary] {
        let good = spoor_jaeger::encode_emit_batch(&b, p, 1);
        for _ in 0..3000 {
            let mut bytes = good.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            let _ = spoor_jaeger::decode_emit_batch(&bytes, p);
            let _ = spoor_jaeger::decode_http_batch(&bytes);
            let garbage: Vec<u8> = (0..next() % 200).map(|_| next() as u8).collect();
            let _ = spoor_jaeger::decode_emit_batch(&garbage, p);
            let _ = spoor_jaeger::decode_post_spans(&garbage);
        }
    }
}

#[test]
fn wrong_method_and_wrong_protocol_are_named() {
    let b = batch();
    let binary = spoor_jaeger::encode_emit_batch(&b, Protocol::Binary, 1);
    assert_eq!(
        spoor_jaeger::decode_emit_batch(&binary, Protocol::Compact)
            .unwrap_err()
            .to_string(),
        "malformed thrift at byte 0: protocol id 0x80 is not compact (0x82)"
    );
    let mut w = spoor_jaeger::thrift::Writer::new(Protocol::Compact);
    w.message(
        "emitZipkinBatch",
        spoor_jaeger::thrift::MessageType::Oneway,
        1,
        &[],
    );
    assert_eq!(
        spoor_jaeger::decode_emit_batch(&w.finish(), Protocol::Compact)
            .unwrap_err()
            .to_string(),
        "unsupported agent method \"emitZipkinBatch\", expected \"emitBatch\""
    );
    let mut w = spoor_jaeger::thrift::Writer::new(Protocol::Compact);
    let process = spoor_jaeger::thrift::TValue::Struct(vec![]);
    w.message(
        "emitBatch",
        spoor_jaeger::thrift::MessageType::Oneway,
        1,
        &[(1, spoor_jaeger::thrift::TValue::Struct(vec![(1, process)]))],
    );
    assert_eq!(
        spoor_jaeger::decode_emit_batch(&w.finish(), Protocol::Compact)
            .unwrap_err()
            .to_string(),
        "field Process.serviceName is missing"
    );
}

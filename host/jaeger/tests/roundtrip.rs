//! Round trip of Spoor spans through Jaeger Thrift: `spans_to_batches` then every Thrift wire
//! format (UDP compact, UDP binary, HTTP) then the decoders must give back the same spans, for
//! spans that Jaeger can represent (times in whole microseconds, no scope attributes).

use std::sync::Arc;

use spoor_core::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};
use spoor_jaeger::convert::{spans_to_batches, thrift_batch, REF_TYPE_ATTR};
use spoor_jaeger::Protocol;
use spoor_jaeger::{decode_emit_batch, decode_http_batch, encode_emit_batch, encode_http_batch};

const START: u64 = 1_764_000_000_123_456_000;

fn resource(service: &str, host: &str) -> Arc<Resource> {
    Arc::new(Resource {
        service_name: service.into(),
        attributes: vec![
            KeyValue::string("host.name", host),
            KeyValue::new("process.pid", AnyValue::Int(4242)),
        ],
        dropped_attributes_count: 0,
    })
}

fn link(trace: u128, span: u64, ref_type: &str) -> Link {
    Link {
        trace_id: TraceId(trace),
        span_id: SpanId(span),
        attributes: vec![KeyValue::string(REF_TYPE_ATTR, ref_type)],
        ..Default::default()
    }
}

/// Spans grouped by resource (batches keep the order of first appearance).
fn spans() -> Vec<Span> {
    let shop = resource("shop", "web-1");
    let db = resource("db", "db-7");
    let scope = Arc::new(Scope {
        name: "shop-tracer".into(),
        version: "1.2.3".into(),
        ..Default::default()
    });
    let trace = TraceId(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);
    let root = Span {
        trace_id: trace,
        span_id: SpanId(0x1111),
        trace_state: "vendor=abc".into(),
        flags: 1,
        name: "GET /checkout".into(),
        kind: SpanKind::Server,
        start_unix_nanos: START,
        duration_nanos: 250_000_000,
        status: Status {
            code: StatusCode::Error,
            message: "backend down".into(),
        },
        attributes: vec![
            KeyValue::string("http.method", "GET"),
            KeyValue::new("http.status_code", AnyValue::Int(503)),
            KeyValue::new("load", AnyValue::Double(0.75)),
            KeyValue::new("cache.hit", AnyValue::Bool(false)),
            KeyValue::new("blob", AnyValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef])),
        ],
        events: vec![
            Event {
                time_unix_nanos: START + 1_000_000,
                name: "cache miss".into(),
                attributes: vec![KeyValue::string("key", "cart:42")],
                ..Default::default()
            },
            Event {
                time_unix_nanos: START + 2_000_000,
                attributes: vec![KeyValue::new("retries", AnyValue::Int(3))],
                ..Default::default()
            },
        ],
        links: vec![link(0x99, 0x77, "follows_from")],
        resource: shop.clone(),
        scope: scope.clone(),
        ..Default::default()
    };
    let ok_child = Span {
        trace_id: trace,
        span_id: SpanId(0xffff_ffff_ffff_fffe), // high bit set: signed on the wire
        parent_span_id: Some(SpanId(0x1111)),
        name: "render".into(),
        kind: SpanKind::Internal,
        start_unix_nanos: START + 5_000,
        duration_nanos: 1_000,
        status: Status {
            code: StatusCode::Ok,
            message: String::new(),
        },
        resource: shop,
        scope,
        ..Default::default()
    };
    let db_span = Span {
        trace_id: trace,
        span_id: SpanId(0x2222),
        parent_span_id: Some(SpanId(0x1111)),
        name: "SELECT cart".into(),
        kind: SpanKind::Client,
        start_unix_nanos: START + 10_000,
        duration_nanos: 40_000_000,
        // unset although the code is a 5xx: must not turn into an error
        attributes: vec![KeyValue::new("http.status_code", AnyValue::Int(500))],
        links: vec![
            link(0x1234, 0x5678, "child_of"),
            link(0x1234, 0x9abc, "follows_from"),
        ],
        resource: db.clone(),
        ..Default::default()
    };
    let db_error_no_message = Span {
        trace_id: TraceId(7),
        span_id: SpanId(0x3333),
        name: "vacuum".into(),
        start_unix_nanos: START,
        status: Status {
            code: StatusCode::Error,
            message: String::new(),
        },
        attributes: vec![KeyValue::string("http.status_message", "not this")],
        resource: db,
        ..Default::default()
    };
    vec![root, ok_child, db_span, db_error_no_message]
}

#[test]
fn one_batch_per_resource() {
    let batches = spans_to_batches(&spans());
    let shape: Vec<(&str, usize, usize)> = batches
        .iter()
        .map(|b| {
            (
                b.process.service_name.as_str(),
                b.process.tags.len(),
                b.spans.len(),
            )
        })
        .collect();
    assert_eq!(shape, [("shop", 2, 2), ("db", 2, 2)]);
    assert!(spans_to_batches(&[]).is_empty());
}

#[test]
fn thrift_batch_inverts_spans_to_batches() {
    let want = spans();
    let mut got = Vec::new();
    for b in spans_to_batches(&want) {
        let d = thrift_batch(&b);
        assert_eq!(d.rejected, 0, "{:?}", d.problems);
        got.extend(d.spans);
    }
    assert_eq!(got, want);
}

/// Encodes a batch in one wire format and decodes it back.
type RoundTrip = dyn Fn(&spoor_jaeger::Batch) -> spoor_jaeger::Decoded;

#[test]
fn every_thrift_wire_format_round_trips() {
    let want = spans();
    let batches = spans_to_batches(&want);
    let formats: [(&str, &RoundTrip); 3] = [
        ("udp compact", &|b| {
            decode_emit_batch(
                &encode_emit_batch(b, Protocol::Compact, 1),
                Protocol::Compact,
            )
            .unwrap()
        }),
        ("udp binary", &|b| {
            decode_emit_batch(&encode_emit_batch(b, Protocol::Binary, 2), Protocol::Binary).unwrap()
        }),
        ("http", &|b| {
            decode_http_batch(&encode_http_batch(b)).unwrap()
        }),
    ];
    for (name, round_trip) in formats {
        let got: Vec<Span> = batches.iter().flat_map(|b| round_trip(b).spans).collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn unrepresentable_values_become_text() {
    let s = Span {
        trace_id: TraceId(1),
        span_id: SpanId(2),
        start_unix_nanos: START + 999, // sub-microsecond part is dropped
        attributes: vec![
            KeyValue::new(
                "list",
                AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Str("a\"b".into())]),
            ),
            KeyValue::new(
                "map",
                AnyValue::Map(vec![KeyValue::new("ok", AnyValue::Bool(true))]),
            ),
        ],
        ..Default::default()
    };
    let got = thrift_batch(&spans_to_batches(&[s])[0]).spans;
    assert_eq!(got[0].start_unix_nanos, START);
    assert_eq!(
        got[0].attributes,
        [
            KeyValue::string("list", r#"[1,"a\"b"]"#),
            KeyValue::string("map", r#"{"ok":true}"#),
        ]
    );
}

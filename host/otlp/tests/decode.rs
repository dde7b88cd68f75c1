//! Decode tests for spoor-otlp: golden OTLP/JSON fixtures, protobuf round trips and malformed
//! inputs. `SPOOR_BLESS=1 cargo test -p spoor-otlp` rewrites the `.expected` files.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use prost::Message;
use spoor_core::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};
use spoor_otlp::{
    decode_json, decode_proto, encode_proto, json, proto, request_to_spans, DecodeError, Decoded,
};

#[path = "decode/equivalence.rs"]
mod equivalence;

fn kvs(attrs: &[KeyValue]) -> String {
    let parts: Vec<String> = attrs
        .iter()
        .map(|kv| format!("{}={:?}", kv.key, kv.value))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A stable text rendering of decoded spans, one fact per line.
fn render(d: &Decoded) -> String {
    let mut out = String::new();
    for (i, s) in d.spans.iter().enumerate() {
        let parent = s
            .parent_span_id
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "span {i}: {:?} trace={} span={} parent={parent}",
            s.name, s.trace_id, s.span_id
        );
        let _ = writeln!(
            out,
            "  kind={:?} start={} duration={} flags={} trace_state={:?}",
            s.kind, s.start_unix_nanos, s.duration_nanos, s.flags, s.trace_state
        );
        let _ = writeln!(out, "  status={:?} {:?}", s.status.code, s.status.message);
        let r = &s.resource;
        let _ = writeln!(
            out,
            "  resource service={:?} attrs={} dropped={}",
            r.service_name,
            kvs(&r.attributes),
            r.dropped_attributes_count
        );
        let sc = &s.scope;
        let _ = writeln!(
            out,
            "  scope name={:?} version={:?} attrs={} dropped={}",
            sc.name,
            sc.version,
            kvs(&sc.attributes),
            sc.dropped_attributes_count
        );
        for kv in &s.attributes {
            let _ = writeln!(out, "  attr {}={:?}", kv.key, kv.value);
        }
        for e in &s.events {
            let _ = writeln!(
                out,
                "  event {:?} at={} attrs={} dropped={}",
                e.name,
                e.time_unix_nanos,
                kvs(&e.attributes),
                e.dropped_attributes_count
            );
        }
        for l in &s.links {
            let _ = writeln!(
                out,
                "  link trace={} span={} state={:?} flags={} attrs={} dropped={}",
                l.trace_id,
                l.span_id,
                l.trace_state,
                l.flags,
                kvs(&l.attributes),
                l.dropped_attributes_count
            );
        }
        let _ = writeln!(
            out,
            "  dropped attrs={} events={} links={}",
            s.dropped_attributes_count, s.dropped_events_count, s.dropped_links_count
        );
        for w in &s.warnings {
            let _ = writeln!(out, "  warning {w}");
        }
    }
    let _ = writeln!(out, "rejected: {}", d.rejected);
    for p in &d.problems {
        let _ = writeln!(out, "problem: {p}");
    }
    out
}

/// Compares `actual` with the golden file, or rewrites it when `SPOOR_BLESS=1`.
fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if std::env::var("SPOOR_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (run with SPOOR_BLESS=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "golden file {} differs (SPOOR_BLESS=1 rewrites it)",
        path.display()
    );
}

fn golden_json(fixture: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let body = std::fs::read(dir.join(format!("{fixture}.json"))).unwrap();
    let decoded = decode_json(&body).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    check_golden(&format!("{fixture}.expected"), &render(&decoded));
    // The same request as protobuf decodes to the same spans.
    let req = json::decode_request(&body).unwrap();
    let via_proto = decode_proto(&req.encode_to_vec()).unwrap();
    assert_eq!(
        via_proto, decoded,
        "{fixture}: protobuf and JSON decodes differ"
    );
}

#[test]
fn golden_basic() {
    golden_json("basic");
}

#[test]
fn golden_lenient_snake_case_enum_names_numbers_unknown_fields() {
    golden_json("lenient");
}

#[test]
fn golden_rejected_ids_are_counted_and_others_kept() {
    golden_json("rejected");
}

#[test]
fn spans_of_one_resource_and_scope_share_one_arc() {
    let body =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/basic.json"))
            .unwrap();
    let d = decode_json(&body).unwrap();
    assert_eq!(d.spans.len(), 2);
    assert!(Arc::ptr_eq(&d.spans[0].resource, &d.spans[1].resource));
    assert!(Arc::ptr_eq(&d.spans[0].scope, &d.spans[1].scope));
}

fn attr_zoo() -> Vec<KeyValue> {
    vec![
        KeyValue::string("s", "text ✓"),
        KeyValue::new("b", AnyValue::Bool(true)),
        KeyValue::new("i", AnyValue::Int(i64::MIN)),
        KeyValue::new("d", AnyValue::Double(-2.5e-300)),
        KeyValue::new("inf", AnyValue::Double(f64::NEG_INFINITY)),
        KeyValue::new("bytes", AnyValue::Bytes(vec![0, 1, 254, 255])),
        KeyValue::new(
            "arr",
            AnyValue::Array(vec![
                AnyValue::Int(1),
                AnyValue::Str("x".into()),
                AnyValue::Array(vec![]),
            ]),
        ),
        KeyValue::new(
            "map",
            AnyValue::Map(vec![KeyValue::new("nested", AnyValue::Map(vec![]))]),
        ),
    ]
}

/// Spans over two resources and three scopes, with every field set somewhere.
fn sample_spans() -> Vec<Span> {
    let r1 = Arc::new(Resource {
        service_name: "frontend".into(),
        attributes: vec![KeyValue::string("host.name", "a")],
        dropped_attributes_count: 2,
    });
    let r2 = Arc::new(Resource {
        service_name: String::new(),
        attributes: attr_zoo(),
        dropped_attributes_count: 0,
    });
    let s1 = Arc::new(Scope {
        name: "lib".into(),
        version: "1".into(),
        attributes: attr_zoo(),
        dropped_attributes_count: 1,
    });
    let s2 = Arc::new(Scope::default());
    let full = Span {
        trace_id: TraceId(u128::MAX),
        span_id: SpanId(1),
        parent_span_id: Some(SpanId(u64::MAX)),
        trace_state: "k=v".into(),
        flags: 0x301,
        name: "op".into(),
        kind: SpanKind::Producer,
        start_unix_nanos: u64::MAX - 10,
        duration_nanos: 10,
        status: Status {
            code: StatusCode::Error,
            message: "bad".into(),
        },
        attributes: attr_zoo(),
        events: vec![Event {
            time_unix_nanos: 5,
            name: "e".into(),
            attributes: attr_zoo(),
            dropped_attributes_count: 3,
        }],
        links: vec![Link {
            trace_id: TraceId(7),
            span_id: SpanId(8),
            trace_state: "x=y".into(),
            attributes: attr_zoo(),
            dropped_attributes_count: 4,
            flags: 1,
        }],
        dropped_attributes_count: 5,
        dropped_events_count: 6,
        dropped_links_count: 7,
        resource: r1.clone(),
        scope: s1.clone(),
        warnings: vec![],
    };
    let minimal =
        |id: u64, resource: &Arc<Resource>, scope: &Arc<Scope>, duration_nanos: i64| Span {
            trace_id: TraceId(42),
            span_id: SpanId(id),
            start_unix_nanos: 1_000,
            duration_nanos,
            status: Status {
                code: StatusCode::Ok,
                message: String::new(),
            },
            resource: resource.clone(),
            scope: scope.clone(),
            ..Default::default()
        };
    vec![
        full,
        minimal(2, &r1, &s1, 0),
        minimal(3, &r1, &s2, -500),
        minimal(4, &r2, &s2, 1),
        minimal(5, &r2, &s1, i64::MAX - 1000),
    ]
}

#[test]
fn proto_round_trip_is_exact() {
    let spans = sample_spans();
    let bytes = encode_proto(&spans);
    let back = decode_proto(&bytes).unwrap();
    assert_eq!(back.rejected, 0, "{:?}", back.problems);
    assert_eq!(back.spans, spans);
    // Grouping: 2 resources; r1 has scopes s1 and s2, r2 has s2 and s1.
    let req = spoor_otlp::spans_to_request(&spans);
    let shape: Vec<Vec<usize>> = req
        .resource_spans
        .iter()
        .map(|rs| rs.scope_spans.iter().map(|ss| ss.spans.len()).collect())
        .collect();
    assert_eq!(shape, vec![vec![2, 1], vec![1, 1]]);
    // service.name is put back as a resource attribute, and only when set.
    let first = &req.resource_spans[0].resource.as_ref().unwrap().attributes[0];
    assert_eq!(first.key, "service.name");
    assert!(req.resource_spans[1]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .all(|kv| kv.key != "service.name"));
}

#[test]
fn json_round_trip_is_exact() {
    let spans = sample_spans();
    let value = json::encode_traces_data(&spans);
    let text = serde_json::to_vec(&value).unwrap();
    let back = decode_json(&text).unwrap();
    assert_eq!(back.rejected, 0, "{:?}", back.problems);
    assert_eq!(back.spans, spans);
}

#[test]
fn json_encoding_follows_otlp_rules() {
    let spans = sample_spans();
    let v = json::encode_traces_data(&spans[..2]);
    let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "ffffffffffffffffffffffffffffffff");
    assert_eq!(span["spanId"], "0000000000000001");
    assert_eq!(span["parentSpanId"], "ffffffffffffffff");
    assert_eq!(span["kind"], 4);
    assert_eq!(span["startTimeUnixNano"], (u64::MAX - 10).to_string());
    assert_eq!(span["endTimeUnixNano"], u64::MAX.to_string());
    assert_eq!(
        span["status"],
        serde_json::json!({"code": 2, "message": "bad"})
    );
    assert_eq!(span["flags"], 0x301);
    let attrs = span["attributes"].as_array().unwrap();
    assert_eq!(
        attrs[2]["value"],
        serde_json::json!({"intValue": i64::MIN.to_string()})
    );
    assert_eq!(
        attrs[4]["value"],
        serde_json::json!({"doubleValue": "-Infinity"})
    );
    assert_eq!(
        attrs[5]["value"],
        serde_json::json!({"bytesValue": "AAH+/w=="})
    );
    let resource = &v["resourceSpans"][0]["resource"];
    assert_eq!(
        resource["attributes"][0],
        serde_json::json!({"key": "service.name", "value": {"stringValue": "frontend"}})
    );
    // Defaults are omitted.
    let minimal = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][1];
    for key in [
        "parentSpanId",
        "traceState",
        "flags",
        "attributes",
        "events",
        "links",
        "droppedAttributesCount",
    ] {
        assert!(
            minimal.get(key).is_none(),
            "{key} should be omitted: {minimal}"
        );
    }
    assert_eq!(minimal["status"], serde_json::json!({"code": 1}));
}

#[test]
fn export_response_and_rpc_status_json() {
    let ok = proto::ExportTraceServiceResponse::default();
    assert_eq!(json::encode_export_response(&ok), serde_json::json!({}));
    let partial = proto::ExportTraceServiceResponse {
        partial_success: Some(proto::ExportTracePartialSuccess {
            rejected_spans: 3,
            error_message: "3 bad".into(),
        }),
    };
    assert_eq!(
        json::encode_export_response(&partial),
        serde_json::json!({"partialSuccess": {"rejectedSpans": "3", "errorMessage": "3 bad"}})
    );
    let st = proto::RpcStatus::new(8, "slow down", Some(std::time::Duration::from_millis(1500)));
    assert_eq!(
        json::encode_rpc_status(&st),
        serde_json::json!({"code": 8, "message": "slow down", "details": [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500000000s"}
        ]})
    );
    let info = proto::RetryInfo::decode(st.details[0].value.as_slice()).unwrap();
    assert_eq!(
        info.retry_delay,
        Some(proto::Duration {
            seconds: 1,
            nanos: 500_000_000
        })
    );
}

/// `(input, expected error text)`: every malformed JSON body names its problem and position.
#[test]
fn malformed_json_is_a_decode_error() {
    let cases: &[(&str, &str)] = &[
        ("", "malformed json at line 1 column 0: EOF while parsing a value"),
        ("\"spans\"", "malformed json at line 1 column 7: invalid type: string \"spans\", expected struct ExportTraceServiceRequest"),
        (
            "{\"resourceSpans\": {}}",
            "malformed json at line 1 column 18: invalid type: map, expected a sequence",
        ),
        (
            "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"name\": 5}]}]}]}",
            "malformed json at line 1 column 56: invalid type: integer `5`, expected a string",
        ),
        (
            "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [\n{\"traceId\": \"zz\"}]}]}]}",
            "malformed json at line 2 column 17: invalid hex id \"zz\"",
        ),
        (
            "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"spanId\": \"abc\"}]}]}]}",
            "malformed json at line 1 column 63: invalid hex id \"abc\"",
        ),
        (
            "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"kind\": \"SERVER\"}]}]}]}",
            "malformed json at line 1 column 63: unknown span kind \"SERVER\"",
        ),
        (
            "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"startTimeUnixNano\": \"-1\"}]}]}]}",
            "malformed json at line 1 column 72: number -1 is not an unsigned 64-bit integer",
        ),
        (
            "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"flags\": 4294967296}]}]}]}",
            "malformed json at line 1 column 66: number 4294967296 is not an unsigned 32-bit integer",
        ),
        (
            "{\"resourceSpans\": [{\"resource\": {\"attributes\": [{\"key\": \"k\", \"value\": {\"intValue\": \"1.5\"}}]}}]}",
            "malformed json at line 1 column 88: string \"1.5\" is not a signed 64-bit integer",
        ),
        (
            "{\"resourceSpans\": [{\"resource\": {\"attributes\": [{\"key\": \"k\", \"value\": {\"bytesValue\": \"!!\"}}]}}]}",
            "malformed json at line 1 column 90: invalid base64 bytes value \"!!\"",
        ),
        ("{\"resourceSpans\": [", "malformed json at line 1 column 19: EOF while parsing a list"),
    ];
    for (input, want) in cases {
        let got = decode_json(input.as_bytes()).map(|d| d.spans.len());
        match got {
            Err(e @ DecodeError::Json { .. }) => assert_eq!(&e.to_string(), want, "input: {input}"),
            other => panic!("input {input}: expected a json error, got {other:?}"),
        }
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let depth = 10_000;
    let mut body = String::from(
        "{\"resourceSpans\": [{\"resource\": {\"attributes\": [{\"key\": \"k\", \"value\": ",
    );
    body.push_str(&"{\"arrayValue\": {\"values\": [".repeat(depth));
    let err = decode_json(body.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[test]
fn malformed_protobuf_is_a_decode_error() {
    let good = encode_proto(&sample_spans());
    // Every truncation of a valid message either fails cleanly or decodes a prefix; none panics.
    let mut failures = 0;
    for cut in 0..good.len() {
        if decode_proto(&good[..cut]).is_err() {
            failures += 1;
        }
    }
    assert!(
        failures > good.len() / 2,
        "only {failures} of {} truncations failed",
        good.len()
    );

    let mut huge_len = vec![0x0a]; // field 1, length-delimited
    varint(u64::MAX, &mut huge_len);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() - 3].to_vec(),
            "malformed protobuf: ",
        ),
        (
            "varint too long",
            vec![
                0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            "varint longer than 10 bytes at byte 1",
        ),
        ("length beyond the buffer", huge_len, "malformed protobuf: "),
        ("wire type 7", vec![0x0f], "invalid wire type 7 at byte 0"),
        (
            "field number 0",
            vec![0x00],
            "invalid field tag 0 at byte 0",
        ),
        (
            "string that is not utf-8",
            {
                // ResourceSpans{ScopeSpans{Span{name = 0xff}}}
                let span = vec![0x2a, 0x01, 0xff];
                let ss = [vec![0x12, span.len() as u8], span].concat();
                let rs = [vec![0x12, ss.len() as u8], ss].concat();
                [vec![0x0a, rs.len() as u8], rs].concat()
            },
            "field 5 of Span at byte 6 is not valid utf-8",
        ),
    ];
    for (what, bytes, want) in cases {
        match decode_proto(&bytes) {
            Err(e @ DecodeError::Protobuf(_)) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("malformed protobuf: ") && text.contains(want),
                    "{what}: {text}"
                );
            }
            other => panic!("{what}: expected a protobuf error, got {other:?}"),
        }
    }
}

#[test]
fn bad_id_lengths_in_protobuf_reject_only_that_span() {
    let good = proto::Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "ok".into(),
        ..Default::default()
    };
    let seven = proto::Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 7],
        name: "7-byte span id".into(),
        ..Default::default()
    };
    let long_trace = proto::Span {
        trace_id: vec![1; 17],
        span_id: vec![2; 8],
        ..Default::default()
    };
    let req = proto::ExportTraceServiceRequest {
        resource_spans: vec![proto::ResourceSpans {
            scope_spans: vec![proto::ScopeSpans {
                spans: vec![seven, good, long_trace],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let d = decode_proto(&req.encode_to_vec()).unwrap();
    assert_eq!(d.spans.len(), 1);
    assert_eq!(d.spans[0].name, "ok");
    assert_eq!(d.spans[0].service(), "");
    assert_eq!(d.rejected, 2);
    assert_eq!(
        d.problems,
        vec![
            "resource_spans[0].scope_spans[0].spans[0]: span_id is 7 bytes, expected 8",
            "resource_spans[0].scope_spans[0].spans[2]: trace_id is 17 bytes, expected 16",
        ]
    );
    assert_eq!(request_to_spans(req), d);
}

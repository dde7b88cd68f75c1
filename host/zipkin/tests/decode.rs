//! Decoding tests: fixture bodies in every Zipkin format (`fixtures/v2.json`, `fixtures/v1.json`,
//! and `fixtures/v2.pb`, written by py_zipkin's generated `zipkin_pb2`) decode to the spans in
//! the golden files `golden/*.json` (`SPOOR_BLESS=1` rewrites them); the encoders round-trip;
//! malformed input fails with a message naming the problem and never panics.

use std::path::PathBuf;

use serde_json::{json, Value};
use spoor_core::{AnyValue, KeyValue, Span, SpanId, TraceId};
use spoor_zipkin::{DecodeError, Decoded, ZipkinSpan};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(dir().join("fixtures").join(name)).unwrap()
}

fn value(v: &AnyValue) -> Value {
    match v {
        AnyValue::Str(s) => json!({ "str": s }),
        AnyValue::Bool(b) => json!({ "bool": b }),
        AnyValue::Int(i) => json!({ "int": i }),
        AnyValue::Double(d) => json!({ "double": d }),
        AnyValue::Bytes(b) => json!({ "bytes": b }),
        AnyValue::Array(a) => Value::Array(a.iter().map(value).collect()),
        AnyValue::Map(m) => attrs(m),
    }
}

fn attrs(kvs: &[KeyValue]) -> Value {
    Value::Array(
        kvs.iter()
            .map(|kv| json!([kv.key, value(&kv.value)]))
            .collect(),
    )
}

/// Every field of a span, as data.
fn span_json(s: &Span) -> Value {
    json!({
        "trace_id": s.trace_id.to_hex().to_string(),
        "span_id": s.span_id.to_hex().to_string(),
        "parent_span_id": s.parent_span_id.map(|p| p.to_hex().to_string()),
        "trace_state": s.trace_state,
        "flags": s.flags,
        "name": s.name,
        "kind": format!("{:?}", s.kind),
        "start_unix_nanos": s.start_unix_nanos,
        "duration_nanos": s.duration_nanos,
        "status": [format!("{:?}", s.status.code), s.status.message],
        "attributes": attrs(&s.attributes),
        "events": s.events.iter().map(|e| json!({
            "time_unix_nanos": e.time_unix_nanos,
            "name": e.name,
            "attributes": attrs(&e.attributes),
            "dropped_attributes_count": e.dropped_attributes_count,
        })).collect::<Vec<_>>(),
        "links": s.links.len(),
        "service": s.resource.service_name,
        "resource_attributes": attrs(&s.resource.attributes),
        "scope": [s.scope.name, s.scope.version],
    })
}

fn decoded_json(d: &Decoded) -> Value {
    json!({
        "spans": d.spans.iter().map(span_json).collect::<Vec<_>>(),
        "rejected": d.rejected,
        "problems": d.problems,
    })
}

fn check_golden(name: &str, actual: &Value) {
    let path = dir().join("golden").join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("SPOOR_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {} (run with SPOOR_BLESS=1)", path.display()));
    assert_eq!(
        want,
        text,
        "{} differs (SPOOR_BLESS=1 rewrites it)",
        path.display()
    );
}

#[test]
fn v2_json_fixture_matches_golden() {
    let d = spoor_zipkin::decode_v2_json(&fixture("v2.json")).unwrap();
    check_golden("v2_json", &decoded_json(&d));
}

#[test]
fn v2_proto_fixture_from_py_zipkin_matches_golden() {
    let d = spoor_zipkin::decode_v2_proto(&fixture("v2.pb")).unwrap();
    check_golden("v2_proto", &decoded_json(&d));
}

#[test]
fn v1_json_fixture_matches_golden() {
    let d = spoor_zipkin::decode_v1_json(&fixture("v1.json")).unwrap();
    check_golden("v1_json", &decoded_json(&d));
}

/// Key facts of the fixtures, stated here so that a bad bless cannot hide them.
#[test]
fn shared_spans_get_their_own_id_under_the_client_span() {
    let d = spoor_zipkin::decode_v2_json(&fixture("v2.json")).unwrap();
    assert_eq!(d.rejected, 0, "{:?}", d.problems);
    let client = SpanId::parse_hex("b7ad6b7169203331").unwrap();
    let server = spoor_zipkin::convert::unshared_id(client);
    let by_name = |n: &str, svc: &str| {
        d.spans
            .iter()
            .find(|s| s.name == n && s.service() == svc)
            .unwrap()
    };
    assert_eq!(by_name("get /cart", "frontend").span_id, client);
    let srv = by_name("get /cart", "cart");
    assert_eq!((srv.span_id, srv.parent_span_id), (server, Some(client)));
    // the cart service's child of the shared id moves under the server half
    assert_eq!(by_name("select cart", "cart").parent_span_id, Some(server));
    // 64-bit trace ids have a zero high half
    assert_eq!(
        by_name("send", "queue-writer").trace_id,
        TraceId(0xa3ce929d0e0e4736)
    );
    // v1: one span with cs/sr/ss/cr becomes a client and a shared server span
    let v1 = spoor_zipkin::decode_v1_json(&fixture("v1.json")).unwrap();
    let kinds: Vec<_> = v1
        .spans
        .iter()
        .map(|s| (s.name.as_str(), s.service(), s.kind))
        .collect();
    use spoor_core::SpanKind::*;
    assert_eq!(
        kinds,
        [
            ("get /cart", "frontend", Client),
            ("get /cart", "cart", Server),
            ("compute", "cart", Unspecified),
            ("late server", "cart", Server),
        ]
    );
    assert_eq!(v1.spans[1].parent_span_id, Some(v1.spans[0].span_id));
    assert_eq!(v1.spans[1].duration_nanos, 98_000_000);
}

#[test]
fn encoders_round_trip() {
    let (spans, problems) = spoor_zipkin::read_v2_json(&fixture("v2.json")).unwrap();
    assert!(problems.is_empty());
    let zs: Vec<ZipkinSpan> = spans.into_iter().map(|(_, z)| z).collect();
    let want = spoor_zipkin::decode_v2_json(&fixture("v2.json")).unwrap();
    let json = spoor_zipkin::decode_v2_json(&spoor_zipkin::encode_v2_json(&zs)).unwrap();
    assert_eq!(decoded_json(&json), decoded_json(&want));
    // proto carries tags as a map: compare with tags sorted (the JSON fixture's are already)
    let proto = spoor_zipkin::decode_v2_proto(&spoor_zipkin::encode_v2_proto(&zs)).unwrap();
    assert_eq!(decoded_json(&proto), decoded_json(&want));
    // v1 then back: same kinds, ids, times, services and tags
    let v1 = spoor_zipkin::decode_v1_json(&spoor_zipkin::encode_v1_json(&zs)).unwrap();
    let key = |s: &Span| {
        (
            s.span_id,
            s.parent_span_id,
            s.kind,
            s.start_unix_nanos,
            s.duration_nanos,
            s.service().to_string(),
            s.status.clone(),
        )
    };
    let a: Vec<_> = v1.spans.iter().map(key).collect();
    let b: Vec<_> = want.spans.iter().map(key).collect();
    assert_eq!(a, b);
    // core spans -> Zipkin -> core spans
    // (attribute order aside: endpoint attributes come back after the tags)
    let sorted = |spans: &[Span]| {
        let mut spans = spans.to_vec();
        for s in &mut spans {
            s.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        }
        decoded_json(&Decoded {
            spans,
            ..Default::default()
        })
    };
    let again = spoor_zipkin::decode_v2_json(&spoor_zipkin::encode_v2_json(
        &spoor_zipkin::from_spans(&want.spans[..2]),
    ))
    .unwrap();
    assert_eq!(sorted(&again.spans), sorted(&want.spans[..2]));
}

/// `(body, rejected problems)`: bad spans are left out with a message, good ones kept.
#[test]
fn bad_spans_are_rejected_by_name() {
    let cases: &[(&str, &[&str])] = &[
        (r#"[{"traceId": "abc", "id": "1"}]"#, &[]),
        (
            r#"[{"traceId": "0123456789abcdef0123456789abcdef0", "id": "1"}]"#,
            &["span 0: traceId \"0123456789abcdef0123456789abcdef0\": id has the wrong length"],
        ),
        (r#"[{"id": "1"}]"#, &["span 0: traceId is missing"]),
        (r#"[{"traceId": "1"}]"#, &["span 0: id is missing"]),
        (
            r#"[{"traceId": "1", "id": "g"}]"#,
            &["span 0: id \"g\": id is not hexadecimal"],
        ),
        (
            r#"[{"traceId": "0", "id": "1"}]"#,
            &["span 0: traceId is zero"],
        ),
        (
            r#"[{"traceId": "1", "id": "1", "kind": "SIDEWAYS"}]"#,
            &["span 0: kind \"SIDEWAYS\" is not a span kind"],
        ),
        (
            r#"[{"traceId": "1", "id": "1", "timestamp": -5}]"#,
            &["span 0: timestamp -5 is not a non-negative integer"],
        ),
        (
            r#"[{"traceId": "1", "id": "1", "timestamp": 18446744073709552}]"#,
            &["span 0: timestamp 18446744073709552 microseconds is out of range"],
        ),
        (
            r#"[{"traceId": "1", "id": "1", "localEndpoint": {"port": 70000}}]"#,
            &["span 0: localEndpoint.port 70000 is out of range"],
        ),
        (
            r#"[{"traceId": "1", "id": "1", "tags": {"a": []}}]"#,
            &["span 0: tags.a is an array, expected a string"],
        ),
        (
            r#"[{"traceId": "1", "id": "1", "annotations": [{"value": "x"}]}]"#,
            &["span 0: annotations[0] timestamp is missing"],
        ),
        (
            r#"[3, {"traceId": "1", "id": "2"}]"#,
            &["span 0: is a number, expected an object"],
        ),
    ];
    for (body, problems) in cases {
        let d = spoor_zipkin::decode_v2_json(body.as_bytes()).unwrap();
        assert_eq!(d.problems, *problems, "{body}");
        assert_eq!(d.rejected, problems.len(), "{body}");
    }
    let v1: &[(&str, &[&str])] = &[
        (
            r#"[{"traceId": "1", "id": "1", "binaryAnnotations": [{"value": "x"}]}]"#,
            &["span 0: binaryAnnotations[0] key is missing"],
        ),
        (
            r#"[{"traceId": "1", "id": "1", "binaryAnnotations": [{"key": "n", "value": "x", "type": "I64"}]}]"#,
            &["span 0: binaryAnnotations[0] value \"x\" is not a valid I64"],
        ),
    ];
    for (body, problems) in v1 {
        let d = spoor_zipkin::decode_v1_json(body.as_bytes()).unwrap();
        assert_eq!(d.problems, *problems, "{body}");
    }
    let proto = spoor_zipkin::proto::ListOfSpans {
        spans: vec![
            spoor_zipkin::proto::Span {
                trace_id: vec![1; 12],
                id: vec![1; 8],
                ..Default::default()
            },
            spoor_zipkin::proto::Span {
                trace_id: vec![1; 8],
                id: vec![1; 4],
                ..Default::default()
            },
            spoor_zipkin::proto::Span {
                trace_id: vec![1; 8],
                id: vec![2; 8],
                kind: 9,
                ..Default::default()
            },
            spoor_zipkin::proto::Span {
                trace_id: vec![1; 8],
                id: vec![3; 8],
                ..Default::default()
            },
        ],
    };
    let d = spoor_zipkin::decode_v2_proto(&prost::Message::encode_to_vec(&proto)).unwrap();
    assert_eq!(
        d.problems,
        [
            "span 0: trace_id is 12 bytes, expected 8 or 16",
            "span 1: id is 4 bytes, expected 8",
            "span 2: kind 9 is not a span kind",
        ]
    );
    assert_eq!(d.spans.len(), 1);
}

#[test]
fn whole_body_errors_name_the_problem() {
    assert_eq!(
        spoor_zipkin::decode_v2_json(b"{}").unwrap_err(),
        DecodeError::NotAnArray("an object")
    );
    assert_eq!(
        spoor_zipkin::decode_v1_json(b"[1,")
            .unwrap_err()
            .to_string(),
        "malformed json at line 1 column 3: EOF while parsing a value"
    );
    let e = spoor_zipkin::decode_v2_proto(&[0x0a, 0xff]).unwrap_err();
    assert!(e.to_string().starts_with("malformed protobuf: "), "{e}");
}

/// Every truncation and many corruptions of every fixture: an error or spans, never a panic.
#[test]
fn malformed_input_never_panics() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for name in ["v2.json", "v1.json", "v2.pb"] {
        let good = fixture(name);
        let mut inputs: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % b.len() as u64) as usize;
                b[i] = next() as u8;
            }
            inputs.push(b);
        }
        for input in &inputs {
            let _ = spoor_zipkin::decode_v2_json(input);
            let _ = spoor_zipkin::decode_v1_json(input);
            let _ = spoor_zipkin::decode_v2_proto(input);
        }
    }
}

//! Native tests of the browser module: the parsers against fixtures, the Jaeger JSON reader
//! against the query API's Jaeger writer, and every analysis answer on a generated trace.
#![cfg(not(target_arch = "wasm32"))]

use spoor_core::{AnyValue, Span, SpanKind, StatusCode, Trace};
use spoor_wasm::formats::{self, Format};
use spoor_wasm::session::Traces;
use spoor_wasm::{synth, to_json};

const JAEGER: &[u8] = include_bytes!("fixtures/jaeger_trace.json");
const ZIPKIN: &[u8] = include_bytes!("fixtures/zipkin_trace.json");
const OTLP: &[u8] = include_bytes!("../../tests/fixtures/otlp_trace.json");

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a AnyValue> {
    spoor_core::find_attr(&s.attributes, key)
}

#[test]
fn jaeger_fixture_maps_tags_back_to_fields() {
    let p = formats::parse(JAEGER, None).unwrap();
    assert_eq!(
        (p.format, p.traces.len(), p.rejected),
        (Some(Format::Jaeger), 1, 0)
    );
    let spans = &p.traces[0].spans;
    // (span id, parent, service, kind, status, status message, scope)
    let shape: Vec<_> = spans
        .iter()
        .map(|s| {
            (
                s.span_id.to_hex().to_string(),
                s.parent_span_id.map(|p| p.to_hex().to_string()),
                s.service().to_string(),
                s.kind,
                s.status.code,
                s.status.message.clone(),
                s.scope.name.clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (
                "eee19b7ec3c1b174".into(),
                None,
                "frontend".into(),
                SpanKind::Server,
                StatusCode::Ok,
                "".into(),
                "spoor.fixture".into()
            ),
            (
                "0020000000000001".into(),
                Some("eee19b7ec3c1b174".into()),
                "payments".into(),
                SpanKind::Client,
                StatusCode::Error,
                "card declined".into(),
                "".into()
            ),
            (
                "0020000000000002".into(),
                Some("0020000000000001".into()),
                "payments".into(),
                SpanKind::Unspecified,
                StatusCode::Unset,
                "".into(),
                "".into()
            ),
        ]
    );
    let root = &spans[0];
    assert_eq!(root.start_unix_nanos, 1_767_225_600_000_000_000);
    assert_eq!(root.duration_nanos, 250_000_000);
    assert_eq!(attr(root, "http.status_code"), Some(&AnyValue::Int(200)));
    assert!(attr(root, "span.kind").is_none() && attr(root, "otel.status_code").is_none());
    assert_eq!(root.resource.attributes[0].key, "host.name");
    let charge = &spans[1];
    assert_eq!(
        attr(charge, "retries"),
        Some(&AnyValue::Int(9_007_199_254_740_993))
    );
    assert_eq!(attr(charge, "ratio"), Some(&AnyValue::Double(0.25)));
    assert_eq!(attr(charge, "cached"), Some(&AnyValue::Bool(false)));
    assert_eq!(
        attr(charge, "blob"),
        Some(&AnyValue::Bytes(vec![0, 1, 2, 255]))
    );
    assert!(attr(charge, "error").is_none());
    assert_eq!(charge.events[0].name, "exception");
    assert_eq!(charge.events[0].time_unix_nanos, 1_767_225_600_150_000_000);
    assert_eq!(charge.warnings, ["clock skew adjusted"]);
    // the two payments spans share one resource
    assert!(std::sync::Arc::ptr_eq(
        &spans[1].resource,
        &spans[2].resource
    ));
    let link = &spans[2].links[0];
    assert_eq!(
        (
            link.trace_id.0,
            link.span_id.0,
            link.attributes[0].value.as_str()
        ),
        (0xabc, 0xcd, Some("follows_from"))
    );
}

#[test]
fn jaeger_reader_undoes_the_query_writer() {
    let decoded = spoor_otlp::decode_json(OTLP).unwrap();
    let traces = formats::group(decoded.spans);
    let mut body = String::from("{\"data\":[");
    for (i, t) in traces.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        spoor_query::jaeger::trace_json(t, &[]).write(&mut body);
    }
    body.push_str("]}");
    let back = formats::parse(body.as_bytes(), None).unwrap();
    assert_eq!(back.rejected, 0, "{:?}", back.problems);
    // What survives Jaeger JSON: everything but array/map attribute types and link attributes.
    // Arrays and maps come back as their JSON text: compare them as present only.
    let structured: Vec<String> = traces
        .iter()
        .flat_map(|t| t.spans.iter())
        .flat_map(|s| s.attributes.iter())
        .filter(|kv| matches!(kv.value, AnyValue::Array(_) | AnyValue::Map(_)))
        .map(|kv| kv.key.clone())
        .collect();
    assert!(!structured.is_empty());
    let project = |t: &Trace| -> Vec<String> {
        t.spans
            .iter()
            .map(|s| {
                let attrs: Vec<_> = s
                    .attributes
                    .iter()
                    .filter(|kv| !structured.contains(&kv.key))
                    .collect();
                let mut res = s.resource.attributes.clone();
                res.retain(|kv| kv.key != "service.name");
                format!(
                    "{} {:?} {} {} {:?} {:?} {:?} {} {}/{} {:?} {:?} {:?} {:?}",
                    s.span_id,
                    s.parent_span_id,
                    s.name,
                    s.service(),
                    s.kind,
                    s.status,
                    attrs,
                    s.trace_state,
                    s.scope.name,
                    s.scope.version,
                    res,
                    s.events
                        .iter()
                        .map(|e| (&e.name, e.time_unix_nanos / 1000))
                        .collect::<Vec<_>>(),
                    s.links
                        .iter()
                        .map(|l| (l.trace_id, l.span_id))
                        .collect::<Vec<_>>(),
                    (s.start_unix_nanos / 1000, s.duration_nanos / 1000),
                )
            })
            .collect()
    };
    assert_eq!(back.traces.len(), traces.len());
    for (a, b) in traces.iter().zip(&back.traces) {
        assert_eq!(project(a), project(b));
    }
}

#[test]
fn otlp_fixture_is_read_by_spoor_otlp() {
    let p = formats::parse(OTLP, None).unwrap();
    assert_eq!(p.format, Some(Format::Otlp));
    let direct = spoor_otlp::decode_json(OTLP).unwrap();
    assert_eq!(
        p.traces
            .iter()
            .flat_map(|t| t.spans.iter().cloned())
            .collect::<Vec<_>>(),
        direct.spans
    );
    // api_v3's wrapper reads the same
    let wrapped = format!("{{\"result\":{}}}", std::str::from_utf8(OTLP).unwrap());
    let w = formats::parse(wrapped.as_bytes(), None).unwrap();
    assert_eq!(w.traces, p.traces);
}

#[test]
fn zipkin_fixture_groups_traces() {
    let p = formats::parse(ZIPKIN, None).unwrap();
    assert_eq!(p.format, Some(Format::Zipkin));
    let shape: Vec<(String, usize)> = p
        .traces
        .iter()
        .map(|t| (t.trace_id.to_hex().to_string(), t.spans.len()))
        .collect();
    assert_eq!(
        shape,
        [
            ("5b8efff798038103d269b633813fc60c".to_string(), 2),
            ("00000000000000000000000000000abc".to_string(), 1)
        ]
    );
    let charge = &p.traces[0].spans[1];
    assert!(charge.is_error());
    assert_eq!(charge.kind, SpanKind::Client);
}

#[test]
fn errors_name_what_was_wrong_and_where() {
    // (body, error or problems)
    let cases: &[(&str, Result<&[&str], &str>)] = &[
        ("{\"data\":[{\"spans\":[{\"traceID\":\"1\",\"spanID\":\"zz\",\"startTime\":1},{\"traceID\":\"1\",\"spanID\":\"2\",\"startTime\":1,\"tags\":[{\"key\":\"n\",\"type\":\"int64\",\"value\":\"x\"}]},{\"traceID\":\"1\",\"spanID\":\"3\"}]}]}",
         Ok(&[
            "data[0].spans[0].spanID: expected 1 to 16 hex digits, got \"zz\" (id is not hexadecimal)",
            "data[0].spans[1].tags[0].value: expected a 64-bit integer, got \"x\"",
            "data[0].spans[2].startTime: is missing",
         ])),
        ("{\"data\":{}}", Err("jaeger json: data: expected an array, got an object")),
        ("{\"spans\":[1]}", Ok(&["spans[0]: expected a span object, got a number"])),
        ("[{\"traceId\":\"1\",\"id\":\"2\"}", Err("malformed json at line 1 column 25: EOF while parsing a list")),
        ("[{\"traceId\":\"xyz\",\"id\":\"2\",\"timestamp\":1}]", Ok(&["span 0: traceId \"xyz\": id is not hexadecimal"])),
    ];
    for (body, want) in cases {
        let got = formats::parse(body.as_bytes(), None);
        match (want, got) {
            (Ok(problems), Ok(p)) => {
                assert_eq!(p.problems, *problems, "{body}");
                assert_eq!(p.rejected, problems.len(), "{body}");
            }
            (Err(msg), Err(e)) => assert_eq!(e.to_string(), *msg, "{body}"),
            (want, got) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn timeline_collapse_and_rows() {
    let mut t = Traces::parse(JAEGER, None).unwrap();
    assert!(t.timeline(1).is_err());
    let info = t.timeline(0).unwrap();
    assert_eq!(
        (
            info.row_count,
            info.max_depth,
            info.end_unix_nanos - info.start_unix_nanos
        ),
        (3, 2, 250_000_000)
    );
    let rows = to_json(&t.rows(0, 0, 10).unwrap()).unwrap();
    assert_eq!(
        rows,
        concat!(
            r#"[{"span":0,"depth":0,"has_children":true,"collapsed":false,"offset":0.0,"width":1.0,"span_id":"eee19b7ec3c1b174","service":"frontend","operation":"GET /checkout","duration_nanos":250000000,"error":false},"#,
            r#"{"span":1,"depth":1,"has_children":true,"collapsed":false,"offset":0.04,"width":0.8,"span_id":"0020000000000001","service":"payments","operation":"charge","duration_nanos":200000000,"error":true},"#,
            r#"{"span":2,"depth":2,"has_children":false,"collapsed":false,"offset":0.08,"width":0.2,"span_id":"0020000000000002","service":"payments","operation":"fraud-check","duration_nanos":50000000,"error":false}]"#
        )
    );
    assert_eq!(t.toggle(0, 1).unwrap(), 2);
    assert_eq!(
        (t.row_of(0, 2).unwrap(), t.row_of(0, 1).unwrap()),
        (None, Some(1))
    );
    assert_eq!(t.collapsed_spans(0).unwrap(), [1]);
    assert_eq!(t.collapse_below_depth(0, 0).unwrap(), 1);
    assert_eq!(t.expand_all(0).unwrap(), 3);
    assert_eq!(t.set_collapsed(0, 0, true).unwrap(), 1);
    assert_eq!(
        t.set_collapsed(0, 9, true).unwrap_err().to_string(),
        "no span at index 9 in trace 0, it has 3"
    );
    assert_eq!(t.span_index(0, "20000000000002").unwrap(), Some(2));
}

#[test]
fn span_detail_is_plain_text() {
    let mut t = Traces::parse(JAEGER, None).unwrap();
    let d = t.span(0, 1).unwrap();
    assert_eq!(
        (d.kind, d.status_code, d.parent, d.children.as_slice()),
        ("client", "error", Some(0), &[2][..])
    );
    let attrs: Vec<(&str, &str, &str)> = d
        .attributes
        .iter()
        .map(|a| (a.key.as_str(), a.kind, a.value.as_str()))
        .collect();
    assert_eq!(
        attrs,
        [
            ("retries", "int", "9007199254740993"),
            ("ratio", "double", "0.25"),
            ("cached", "bool", "false"),
            ("blob", "bytes", "000102ff"),
        ]
    );
    assert_eq!(
        (
            d.offset_nanos,
            d.events[0].offset_nanos,
            d.events[0].name.as_str()
        ),
        (10_000_000, 140_000_000, "exception")
    );
    let d2 = t.span(0, 2).unwrap();
    assert_eq!(
        (d2.links[0].span, d2.links[0].trace_id.as_str()),
        (None, "00000000000000000000000000000abc")
    );
    let nested = AnyValue::Array(vec![
        AnyValue::Str("a\"<b>".into()),
        AnyValue::Map(vec![spoor_core::KeyValue::new("k", AnyValue::Int(1))]),
    ]);
    assert_eq!(
        spoor_wasm::session::value_text(&nested),
        ("array", r#"["a\"<b>", {"k": 1}]"#.to_string())
    );
}

#[test]
fn summaries_and_service_graph() {
    let t = Traces::parse(ZIPKIN, None).unwrap();
    let s = &t.summaries()[0];
    assert_eq!(
        (
            s.root_service.as_str(),
            s.root_operation.as_str(),
            s.span_count,
            s.error_count,
            s.duration_nanos
        ),
        ("frontend", "get /checkout", 2, 1, 250_000_000)
    );
    assert_eq!(t.index_of("abc"), Some(1));
    let g = t.service_graph();
    let nodes: Vec<_> = g
        .nodes
        .iter()
        .map(|n| (n.service.as_str(), n.span_count))
        .collect();
    assert_eq!(nodes, [("batch", 1), ("frontend", 2)]);
}

#[test]
fn analyses_on_a_generated_10k_span_trace() {
    let body = synth::jaeger_json(10_000, 7);
    let mut t = Traces::parse(body.as_bytes(), None).unwrap();
    assert_eq!((t.len(), t.span_count(), t.rejected()), (1, 10_000, 0));
    let info = t.timeline(0).unwrap();
    assert_eq!((info.row_count, info.max_depth), (10_000, 7));
    assert_eq!(t.rows(0, 9_990, 20_000).unwrap().len(), 10);
    // collapsing the root's first child hides its subtree: (4^7 - 1) / 3 spans below depth 1
    let n = t.collapse_below_depth(0, 1).unwrap();
    assert_eq!(n, 5);
    let cp = t.critical_path(0).unwrap();
    assert_eq!(cp.span_nanos.len(), 10_000);
    assert_eq!(
        cp.segments.iter().map(|s| s.end - s.start).sum::<u64>(),
        10_000_000_000
    );
    let stats = t.stats(0).unwrap();
    assert_eq!(stats.by_service.len(), 8);
    assert_eq!(stats.all.errors, 10_000 / 97);
    assert_eq!(t.search(0, "op-49").unwrap().len(), 200);
    let by_shard = t.stats_by_attribute(0, "shard").unwrap();
    assert_eq!(by_shard.len(), 16);

    // a diff against itself is all "same"; against a different seed the structure is equal too
    let other_body = synth::jaeger_json(10_000, 8);
    let mut other = Traces::parse(other_body.as_bytes(), None).unwrap();
    let d = t.diff(0, Some(&mut other), 0).unwrap();
    assert!(
        d.nodes.iter().all(|n| n.count_a == n.count_b),
        "same shape, same counts"
    );
    let json = to_json(&d).unwrap();
    assert!(json.starts_with("{\"nodes\":[{"), "{}", &json[..40]);
    let rc = t.root_cause(0, 5, Some((Some(&mut other), 0))).unwrap();
    assert!(rc.critical_owners.len() <= 5 && !rc.error_origins.is_empty());
}

/// Native parse timings of generated 10k- and 100k-span Jaeger files, for comparison with the
/// wasm timings of `make wasm-test`: `cargo test --release -p spoor-wasm --test native --
/// --ignored --nocapture`. Ignored by default: the 100k file takes seconds in a debug build.
#[test]
#[ignore]
fn native_parse_timings() {
    for n in [10_000, 100_000] {
        let body = synth::jaeger_json(n, 3);
        let t0 = std::time::Instant::now();
        let p = formats::parse(body.as_bytes(), None).unwrap();
        let elapsed = t0.elapsed();
        let spans: usize = p.traces.iter().map(|t| t.spans.len()).sum();
        assert_eq!((p.traces.len(), spans, p.rejected), (1, n, 0));
        println!(
            "native: {n} spans ({} KiB json): parse {:.0} ms",
            body.len() / 1024,
            elapsed.as_secs_f64() * 1000.0
        );
    }
}

#[test]
fn span_columns_carry_every_span_as_numbers() {
    let mut t = Traces::parse(OTLP, None).unwrap();
    let c = t.span_columns(0).unwrap();
    assert_eq!(c.services, ["frontend", "cart"]);
    assert_eq!(
        c.operations,
        ["GET /checkout", "call cart", "POST /cart", "SELECT cart"]
    );
    assert_eq!(c.preorder, [0, 1, 2, 3]);
    let rows: Vec<&[f64]> = c.data.chunks(spoor_wasm::session::SPAN_COLUMNS).collect();
    // parent, depth, start, duration, self, service, operation, error (times in ms here)
    let ms = |v: f64| v / 1e6;
    let got: Vec<[f64; 8]> = rows
        .iter()
        .map(|r| [r[0], r[1], ms(r[2]), ms(r[3]), ms(r[4]), r[5], r[6], r[7]])
        .collect();
    assert_eq!(
        got,
        [
            [-1.0, 0.0, 0.0, 120.0, 30.0, 0.0, 0.0, 1.0],
            [0.0, 1.0, 10.0, 90.0, 10.0, 0.0, 1.0, 0.0],
            [1.0, 2.0, 15.0, 80.0, 60.0, 1.0, 2.0, 1.0],
            [2.0, 3.0, 20.0, 20.0, 20.0, 1.0, 3.0, 0.0],
        ]
    );
    assert!(t.span_columns(9).is_err());
}

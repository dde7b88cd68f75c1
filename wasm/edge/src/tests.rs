//! Native tests of the edge worker's request logic: scenario tables of request -> status and
//! message, and the sampling, forwarding and buffer bookkeeping.

use super::*;
use spoor_core::{Resource, SpanId};
use std::sync::Arc;

const TOKEN: &str = "s3cret-token";

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_vars(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
}

fn base() -> Config {
    config(&[
        ("SPOOR_TOKENS", "other, s3cret-token"),
        (
            "ALLOWED_ORIGINS",
            "https://app.example, https://shop.example",
        ),
        ("MAX_BODY_BYTES", "4096"),
    ])
}

fn span(trace: u128, id: u64) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(id),
        name: "GET /".into(),
        start_unix_nanos: 1_700_000_000_000_000_000,
        duration_nanos: 1_000,
        resource: Arc::new(Resource {
            service_name: "web".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn otlp(spans: &[Span]) -> Vec<u8> {
    spoor_otlp::encode_proto(spans)
}

fn run(cfg: &Config, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Outcome {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let lookup = move |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    handle(
        cfg,
        &Request {
            method,
            path,
            header: &lookup,
            body,
        },
    )
}

fn reply(o: Outcome) -> Reply {
    match o {
        Outcome::Reply(r) => r,
        Outcome::Forward { reply, .. } => reply,
        Outcome::Stats { headers } => Reply {
            status: 0,
            headers,
            body: b"<stats>".to_vec(),
        },
    }
}

const AUTH: (&str, &str) = ("authorization", "Bearer s3cret-token");
const PROTO: (&str, &str) = ("content-type", "application/x-protobuf");

/// method, path, headers, body, status, message
type Scenario<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [u8],
    u16,
    &'a str,
);

#[test]
fn refusals_name_the_problem() {
    let cfg = base();
    let good = otlp(&[span(1, 1)]);
    let big = vec![0u8; 5000];
    // (method, path, headers, body, status, message)
    let rows: &[Scenario] = &[
        ("POST", "/v1/traces", &[PROTO], &good, 401, "missing authorization header (Bearer token)"),
        ("POST", "/v1/traces", &[("authorization", "Basic abc"), PROTO], &good, 401,
            "authorization scheme \"Basic\" is not Bearer"),
        ("POST", "/v1/traces", &[("authorization", "Bearer s3cret-tokem"), PROTO], &good, 403,
            "bearer token is not accepted"),
        ("POST", "/v1/traces", &[("authorization", "Bearer s3cret-token-longer"), PROTO], &good, 403,
            "bearer token is not accepted"),
        ("POST", "/v1/traces", &[AUTH, PROTO, ("origin", "https://evil.example")], &good, 403,
            "origin \"https://evil.example\" is not allowed (see ALLOWED_ORIGINS)"),
        ("OPTIONS", "/v1/traces", &[("origin", "https://evil.example")], b"", 403,
            "origin \"https://evil.example\" is not allowed (see ALLOWED_ORIGINS)"),
        ("OPTIONS", "/v1/traces", &[], b"", 400, "preflight request without an origin header"),
        ("POST", "/v1/traces", &[AUTH, PROTO], &big, 413, "body of 5000 bytes is over the limit of 4096 bytes"),
        ("POST", "/v1/traces", &[AUTH, PROTO, ("content-length", "999999")], b"", 413,
            "body of 999999 bytes is over the limit of 4096 bytes"),
        ("POST", "/v1/traces", &[AUTH, ("content-type", "text/plain")], &good, 415,
            "content type \"text/plain\" is not application/x-protobuf or application/json on /v1/traces"),
        ("POST", "/v1/traces", &[AUTH, PROTO, ("content-encoding", "gzip")], &good, 415,
            "content encoding \"gzip\" is not supported"),
        ("POST", "/v1/traces", &[AUTH, ("content-type", "application/json")], b"{\"resourceSpans\":", 400,
            "bad body: malformed json at line 1 column 17: EOF while parsing a value"),
        ("POST", "/v1/traces", &[AUTH, PROTO], b"\xff\xff\xff", 400, "bad body: malformed protobuf"),
        ("POST", "/api/v2/spans", &[AUTH], b"{}", 400, "bad body:"),
        ("GET", "/v1/traces", &[AUTH], b"", 405, "method GET is not allowed on /v1/traces (use POST)"),
        ("POST", "/stats", &[AUTH], b"", 405, "method POST is not allowed on /stats (use GET)"),
        ("GET", "/stats", &[], b"", 401, "missing authorization header (Bearer token)"),
        ("GET", "/nope", &[AUTH], b"", 404, "no route \"/nope\""),
    ];
    for (method, path, headers, body, status, message) in rows {
        let r = reply(run(&cfg, method, path, headers, body));
        assert_eq!(
            r.status,
            *status,
            "{method} {path} {headers:?}: {}",
            r.body_text()
        );
        assert!(
            r.body_text().starts_with(message),
            "{method} {path} {headers:?}: {:?} does not start with {message:?}",
            r.body_text()
        );
    }
}

#[test]
fn unauthenticated_replies_ask_for_a_bearer_token() {
    let r = reply(run(&base(), "POST", "/v1/traces", &[PROTO], b""));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
}

#[test]
fn preflight_and_cors_headers_for_allowed_origins() {
    let cfg = base();
    let r = reply(run(
        &cfg,
        "OPTIONS",
        "/v1/traces",
        &[("origin", "https://app.example")],
        b"",
    ));
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("POST, GET, OPTIONS")
    );
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    // Errors to an allowed origin carry CORS headers, so the page can read them.
    let r = reply(run(
        &cfg,
        "POST",
        "/v1/traces",
        &[("origin", "https://shop.example")],
        b"",
    ));
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (401, Some("https://shop.example"))
    );
    let any = config(&[("SPOOR_TOKENS", TOKEN), ("ALLOWED_ORIGINS", "*")]);
    let r = reply(run(
        &any,
        "OPTIONS",
        "/v1/traces",
        &[("origin", "http://localhost:1")],
        b"",
    ));
    assert_eq!(r.status, 204);
}

fn forward(o: Outcome) -> (Vec<Batch>, Counts, Reply, Vec<(&'static str, String)>) {
    match o {
        Outcome::Forward {
            batches,
            counts,
            reply,
            forward_headers,
        } => (batches, counts, reply, forward_headers),
        other => panic!("not forwarded: {other:?}"),
    }
}

fn forwarded_spans(batches: &[Batch]) -> Vec<Span> {
    batches
        .iter()
        .flat_map(|b| spoor_otlp::decode_proto(&b.body).unwrap().spans)
        .collect()
}

#[test]
fn accepted_spans_are_forwarded_as_otlp_protobuf() {
    let cfg = base();
    let spans = [span(7, 1), span(7, 2), span(8, 3)];
    let (batches, counts, r, _) = forward(run(
        &cfg,
        "POST",
        "/v1/traces",
        &[AUTH, PROTO],
        &otlp(&spans),
    ));
    assert_eq!(
        counts,
        Counts {
            accepted: 3,
            rejected: 0,
            sampled_out: 0
        }
    );
    assert_eq!((r.status, r.body.len()), (200, 0));
    let out = forwarded_spans(&batches);
    let ids: Vec<_> = out.iter().map(|s| (s.trace_id.0, s.span_id.0)).collect();
    assert_eq!(ids, [(7, 1), (7, 2), (8, 3)]);
    assert_eq!(batches.iter().map(|b| b.spans).sum::<u64>(), 3);
}

#[test]
fn json_and_zipkin_bodies_are_accepted() {
    let cfg = base();
    let json = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
        "scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"a",
        "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000001000"},
        {"traceId":"00000000000000000000000000000000","spanId":"00f067aa0ba902b8","name":"zero",
        "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000001000"}]}]}]}"#;
    let (batches, counts, r, _) = forward(run(
        &cfg,
        "POST",
        "/v1/traces",
        &[AUTH, ("content-type", "application/json; charset=utf-8")],
        json,
    ));
    assert_eq!((counts.accepted, counts.rejected), (1, 1));
    assert_eq!(
        forwarded_spans(&batches)[0].trace_id.0,
        0x4bf92f3577b34da6a3ce929d0e0e4736
    );
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["partialSuccess"]["rejectedSpans"], "1");
    assert!(body["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("1 spans rejected: "));

    let zipkin =
        br#"[{"traceId":"80f198ee56343ba864fe8b2a57d3eff7","id":"e457b5a2e4d86bd1","name":"get",
        "timestamp":1700000000000000,"duration":10,"localEndpoint":{"serviceName":"edge-fn"}}]"#;
    let (batches, counts, r, _) = forward(run(
        &cfg,
        "POST",
        "/api/v2/spans",
        &[AUTH, ("content-type", "application/json")],
        zipkin,
    ));
    assert_eq!((counts.accepted, r.status), (1, 202));
    assert_eq!(
        forwarded_spans(&batches)[0].resource.service_name,
        "edge-fn"
    );
}

#[test]
fn head_sampling_matches_the_consistent_vectors() {
    for v in consistent::CONSISTENT_VECTORS {
        if v.probability == 0.0 || v.trace_id == 0 {
            continue; // a zero trace id is rejected by validation before sampling
        }
        let p = v.probability.to_string();
        let cfg = config(&[("SPOOR_TOKENS", TOKEN), ("SAMPLING_PROBABILITY", &p)]);
        let mut s = span(v.trace_id, 1);
        s.trace_state = v.trace_state.to_string();
        let d = Decoded {
            spans: vec![s],
            rejected: 0,
            problems: vec![],
        };
        let p = process(&cfg, d, None);
        assert_eq!(p.counts.sampled_out == 0, v.sampled, "{v:?}");
        if v.sampled && v.probability < 1.0 {
            let kept = forwarded_spans(&p.batches);
            let th = consistent::trace_state_threshold(&kept[0].trace_state).unwrap();
            assert!(th >= cfg.threshold, "{v:?}: th {th:?} recorded");
        }
    }
}

#[test]
fn sampling_keeps_whole_traces_and_counts_the_rest() {
    // Randomness is the trace id's low 56 bits: 0x..ff.. is kept at 1/2, 0x..00.. is not.
    let cfg = config(&[("SPOOR_TOKENS", TOKEN), ("SAMPLING_PROBABILITY", "0.5")]);
    let keep = 0x00ff_0000_0000_0000u128;
    let drop = 0x0000_0000_0000_0001u128;
    let spans = vec![span(keep, 1), span(drop, 2), span(keep, 3), span(drop, 4)];
    let p = process(
        &cfg,
        Decoded {
            spans,
            rejected: 0,
            problems: vec![],
        },
        None,
    );
    assert_eq!(
        p.counts,
        Counts {
            accepted: 4,
            rejected: 0,
            sampled_out: 2
        }
    );
    let kept = forwarded_spans(&p.batches);
    assert_eq!(kept.iter().map(|s| s.span_id.0).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(kept[0].trace_state, "ot=th:8");
}

#[test]
fn propagation_headers_decide_their_own_trace_and_are_reported() {
    let cfg = config(&[("SPOOR_TOKENS", TOKEN), ("SAMPLING_PROBABILITY", "0.5")]);
    let low = 0x4bf92f3577b34da6_0000000000000001u128; // sampled out at 0.5 on its own
    let body = otlp(&[span(low, 1), span(low, 2)]);
    let rows: &[(&str, &str, u64, Option<&str>)] = &[
        // header, value, spans sampled out, spoor-context
        (
            "traceparent",
            "00-4bf92f3577b34da60000000000000001-00f067aa0ba902b7-01",
            0,
            Some("00-4bf92f3577b34da60000000000000001-00f067aa0ba902b7-01"),
        ),
        (
            "traceparent",
            "00-4bf92f3577b34da60000000000000001-00f067aa0ba902b7-00",
            2,
            Some("00-4bf92f3577b34da60000000000000001-00f067aa0ba902b7-00"),
        ),
        (
            "b3",
            "4bf92f3577b34da60000000000000001-00f067aa0ba902b7-d",
            0,
            Some("00-4bf92f3577b34da60000000000000001-00f067aa0ba902b7-01"),
        ),
        (
            "uber-trace-id",
            "4bf92f3577b34da60000000000000001:00f067aa0ba902b7:0:1",
            0,
            Some("00-4bf92f3577b34da60000000000000001-00f067aa0ba902b7-01"),
        ),
        // another trace's header leaves the decision to the sampler
        (
            "b3",
            "80f198ee56343ba8-e457b5a2e4d86bd1-1",
            2,
            Some("00-000000000000000080f198ee56343ba8-e457b5a2e4d86bd1-01"),
        ),
        ("traceparent", "junk", 2, None),
    ];
    for (name, value, sampled_out, context) in rows {
        let (_, counts, r, fwd) = forward(run(
            &cfg,
            "POST",
            "/v1/traces",
            &[AUTH, PROTO, (name, value)],
            &body,
        ));
        assert_eq!(counts.sampled_out, *sampled_out, "{name}: {value}");
        assert_eq!(r.header("spoor-context"), *context, "{name}: {value}");
        assert_eq!(
            fwd.first().map(|(_, v)| v.as_str()),
            *context,
            "{name}: {value}"
        );
    }
    let (_, _, r, _) = forward(run(
        &cfg,
        "POST",
        "/v1/traces",
        &[AUTH, PROTO, ("traceparent", "junk")],
        &body,
    ));
    assert_eq!(
        r.header("spoor-context-error"),
        Some("traceparent header \"junk\" is malformed")
    );
}

#[test]
fn batches_are_split_under_the_forward_limit() {
    let spans: Vec<Span> = (1..=40).map(|i| span(9, i)).collect();
    let one = spoor_otlp::encode_proto(&spans).len();
    let batches = encode_batches(&spans, one / 3);
    assert!(batches.len() >= 3, "{} batches", batches.len());
    assert!(batches.iter().all(|b| b.body.len() <= one / 3));
    assert_eq!(forwarded_spans(&batches).len(), 40);
    assert_eq!(encode_batches(&[], 10), vec![]);
}

#[test]
fn config_errors_name_the_variable() {
    let rows: &[(&[(&str, &str)], &str)] = &[
        (&[], "SPOOR_TOKENS is not set"),
        (&[("SPOOR_TOKENS", " , ")], "SPOOR_TOKENS is not set"),
        (
            &[("SPOOR_TOKENS", "t"), ("SAMPLING_PROBABILITY", "1.5")],
            "SAMPLING_PROBABILITY \"1.5\" is not a number in [0, 1]",
        ),
        (
            &[("SPOOR_TOKENS", "t"), ("SAMPLING_PROBABILITY", "half")],
            "SAMPLING_PROBABILITY \"half\" is not a number in [0, 1]",
        ),
        (
            &[("SPOOR_TOKENS", "t"), ("MAX_BODY_BYTES", "-1")],
            "MAX_BODY_BYTES \"-1\" is not a non-negative integer",
        ),
    ];
    for (vars, message) in rows {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = Config::from_vars(&|n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
            .unwrap_err();
        assert_eq!(e.to_string(), *message);
    }
}

#[test]
fn tokens_compare_whole() {
    let tokens = vec![b"abc".to_vec(), b"longer-token".to_vec()];
    let rows: &[(&[u8], bool)] = &[
        (b"abc", true),
        (b"longer-token", true),
        (b"ab", false),
        (b"abcd", false),
        (b"", false),
        (b"abd", false),
    ];
    for (t, ok) in rows {
        assert_eq!(token_accepted(&tokens, t), *ok, "{t:?}");
    }
}

#[test]
fn delivery_classes_and_retry_delays() {
    let rows: &[(Option<u16>, Delivery)] = &[
        (Some(200), Delivery::Delivered),
        (Some(204), Delivery::Delivered),
        (None, Delivery::Retry),
        (Some(408), Delivery::Retry),
        (Some(429), Delivery::Retry),
        (Some(503), Delivery::Retry),
        (Some(400), Delivery::Refused),
        (Some(404), Delivery::Refused),
    ];
    for (s, d) in rows {
        assert_eq!(classify(*s), *d, "{s:?}");
    }
    let delays: Vec<u64> = (0..9).map(retry_delay_ms).collect();
    assert_eq!(delays, [0, 50, 100, 200, 400, 800, 1000, 1000, 1000]);
}

#[test]
fn buffer_bound_and_stats() {
    let b = BufferPolicy { max_bytes: 100 };
    assert!(b.admits(0, 100));
    assert!(!b.admits(1, 100));
    assert!(!b.admits(u64::MAX, 1));
    let mut s = Stats::default();
    for (name, n) in [
        ("accepted", 5),
        ("forwarded", 3),
        ("dropped", 2),
        ("nonsense", 9),
    ] {
        s.add(name, n);
    }
    let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(
        (
            v["accepted"].as_u64(),
            v["forwarded"].as_u64(),
            v["dropped"].as_u64()
        ),
        (Some(5), Some(3), Some(2))
    );
    assert_eq!(v["buffer"]["bytes"], 0);
}

#[test]
fn stats_needs_a_token_and_keeps_cors() {
    let cfg = base();
    match run(
        &cfg,
        "GET",
        "/stats",
        &[AUTH, ("origin", "https://app.example")],
        b"",
    ) {
        Outcome::Stats { headers } => {
            assert!(headers.contains(&("access-control-allow-origin", "https://app.example".into())))
        }
        other => panic!("{other:?}"),
    }
}

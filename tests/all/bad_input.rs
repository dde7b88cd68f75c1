//! Bad input on every OTLP entry point gets a clear error naming what was wrong, the daemon
//! keeps serving, and what it already stored stays there.

use prost::Message;
use spoor_tests::Daemon;

use crate::golden::{fixture_json, fixture_request, send_grpc, TRACE_A};

fn assert_still_serving(d: &Daemon) {
    let (status, v) = d.get_json(&format!("/api/traces/{TRACE_A}")).unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"][0]["spans"].as_array().unwrap().len(), 4);
    let health = spoor_tests::http(d.ports.admin, "GET", "/", &[], b"").unwrap();
    assert_eq!(health.status, 200);
}

fn message_of(r: &spoor_tests::Response) -> String {
    String::from_utf8_lossy(&r.body).to_lowercase()
}

#[test]
fn malformed_wrong_type_oversized_and_zero_ids() {
    let d = Daemon::start(&["--storage", "memory", "--otlp.max-body-bytes", "65536"]).unwrap();
    let ok = d
        .post_otlp(&[("Content-Type", "application/json")], &fixture_json())
        .unwrap();
    assert_eq!(ok.status, 200);
    d.wait_json(&format!("/api/traces/{TRACE_A}"), |v| {
        v["data"][0]["spans"]
            .as_array()
            .is_some_and(|s| s.len() == 4)
    })
    .unwrap();

    // Malformed protobuf: 400 with a google.rpc.Status whose message says so.
    let r = d
        .post_otlp(
            &[("Content-Type", "application/x-protobuf")],
            &[0x0a, 0xff, 0xff, 0x01, 0x02],
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(message_of(&r).contains("protobuf"), "{}", message_of(&r));

    // Malformed JSON: 400 naming the position.
    let r = d
        .post_otlp(
            &[("Content-Type", "application/json")],
            b"{\"resourceSpans\": [ {",
        )
        .unwrap();
    assert_eq!(r.status, 400);
    let m = message_of(&r);
    assert!(m.contains("json") && m.contains("line"), "{m}");

    // Wrong content type: 415 naming it.
    let r = d
        .post_otlp(&[("Content-Type", "text/plain")], b"hello")
        .unwrap();
    assert_eq!(r.status, 415);
    assert!(message_of(&r).contains("text/plain"), "{}", message_of(&r));

    // Oversized body: 413.
    let big = vec![b' '; 70_000];
    let r = d
        .post_otlp(&[("Content-Type", "application/json")], &big)
        .unwrap();
    assert_eq!(r.status, 413);

    // Gzip garbage: 400.
    let r = d
        .post_otlp(
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "gzip"),
            ],
            b"not gzip",
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", message_of(&r));

    // Zero trace id in one span: partial success, the other span kept.
    let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"zero"}}]},
      "scopeSpans":[{"spans":[
        {"traceId":"00000000000000000000000000000000","spanId":"0000000000000001","name":"bad","startTimeUnixNano":"1","endTimeUnixNano":"2"},
        {"traceId":"000000000000000000000000000000ff","spanId":"0000000000000002","name":"good","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
    let r = d
        .post_otlp(&[("Content-Type", "application/json")], body)
        .unwrap();
    assert_eq!(r.status, 200);
    let v = r.json().unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{v}");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("trace id"),
        "{v}"
    );
    d.wait_json("/api/traces/ff", |v| {
        v["data"][0]["spans"]
            .as_array()
            .is_some_and(|s| s.len() == 1)
    })
    .unwrap();

    // gRPC: field 1 holds bytes that do not decode as ResourceSpans -> INVALID_ARGUMENT.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Raw {
        #[prost(bytes = "vec", tag = "1")]
        resource_spans: Vec<u8>,
    }
    let raw = Raw {
        resource_spans: vec![0x0a, 0xff, 0xff, 0xff],
    };
    let bogus =
        spoor_otlp::proto::ExportTraceServiceRequest::decode(raw.encode_to_vec().as_slice());
    assert!(bogus.is_err());
    let status = send_grpc(d.ports.grpc, raw).unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // Zero span id over gRPC: partial success.
    let mut zero = fixture_request();
    zero.resource_spans[0].scope_spans[0].spans[0].span_id = vec![0; 8];
    let resp = send_grpc(d.ports.grpc, zero).unwrap();
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_spans, 1);
    assert!(ps.error_message.contains("span id"), "{}", ps.error_message);

    assert_still_serving(&d);
    let metrics = String::from_utf8(
        spoor_tests::http(d.ports.admin, "GET", "/metrics", &[], b"")
            .unwrap()
            .body,
    )
    .unwrap();
    assert!(
        metrics.contains("spoor_receiver_bad_requests_total{receiver=\"otlp_http\"} 5"),
        "{metrics}"
    );
}

/// Reads until the server closes the connection (or `limit` passes); what it sent, if anything.
fn read_until_closed(s: &mut std::net::TcpStream, limit: std::time::Duration) -> Option<String> {
    use std::io::Read;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        // A reset also means the server let go of the connection.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(String::new()),
        Err(_) => None,
    }
}

#[test]
fn stalled_clients_are_cut_off_and_cannot_exhaust_connections() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let d = Daemon::start(&[
        "--storage",
        "memory",
        "--http.max-connections",
        "8",
        "--http.header-read-timeout",
        "1s",
        "--http.body-read-timeout",
        "1s",
    ])
    .unwrap();
    // Twice the connection cap, each stuck in the middle of its request head, on the OTLP and
    // the query port.
    let mut stalled: Vec<TcpStream> = (0..16)
        .map(|i| {
            let port = if i % 2 == 0 {
                d.ports.http
            } else {
                d.ports.query
            };
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
                .unwrap();
            s
        })
        .collect();
    // A well-behaved client still gets in: at worst it waits for the stalled ones to be cut.
    let started = Instant::now();
    let ok = d
        .post_otlp(&[("Content-Type", "application/json")], &fixture_json())
        .unwrap();
    assert_eq!(ok.status, 200, "{}", message_of(&ok));
    assert!(started.elapsed() < Duration::from_secs(10));
    // Every stalled connection is closed by the server once its header time is up.
    for (i, s) in stalled.iter_mut().enumerate() {
        assert!(
            read_until_closed(s, Duration::from_secs(10)).is_some(),
            "stalled connection {i} still open"
        );
    }
    // A body that stops arriving gets 408 naming the limit.
    let mut slow = TcpStream::connect(("127.0.0.1", d.ports.http)).unwrap();
    slow.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"resourceSp",
    )
    .unwrap();
    let reply = read_until_closed(&mut slow, Duration::from_secs(10)).expect("an answer");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.contains("request body not received within 1s"),
        "{reply}"
    );
    assert_still_serving(&d);
}

#[test]
fn query_cost_is_capped() {
    let d = Daemon::start(&[
        "--storage",
        "memory",
        "--query.max-limit",
        "2",
        "--query.max-spans-per-trace",
        "2",
        "--query.max-lookback",
        "1h",
    ])
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for i in 1..=4u64 {
        let body = crate::crash::trace_body(&format!("{i:032x}"), now - i * 1_000_000_000);
        let r = d
            .post_otlp(&[("Content-Type", "application/json")], body.as_bytes())
            .unwrap();
        assert_eq!(r.status, 200);
    }
    let v = d
        .wait_json("/api/traces?service=crashy&limit=100&lookback=24h", |v| {
            v["data"].as_array().is_some_and(|t| t.len() == 2)
        })
        .unwrap();
    for t in v["data"].as_array().unwrap() {
        assert_eq!(t["spans"].as_array().unwrap().len(), 2, "{t}");
        assert!(
            t["warnings"].to_string().contains("only the first 2"),
            "{t}"
        );
    }
    // A window longer than the longest lookback is shortened by moving its start: of
    // [3 h ago, 10 min ago] only the last hour is searched, so a trace two hours old is not
    // found (it is without the cap).
    let old = crate::crash::trace_body(&format!("{:032x}", 99), now - 7_200_000_000_000);
    let r = d
        .post_otlp(&[("Content-Type", "application/json")], old.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    d.wait_json(&format!("/api/traces/{:032x}", 99), |v| {
        v["data"].is_array()
    })
    .unwrap();
    let start = (now - 3 * 3_600_000_000_000) / 1000;
    let end = (now - 600_000_000_000) / 1000;
    let (status, v) = d
        .get_json(&format!(
            "/api/traces?service=crashy&start={start}&end={end}&limit=100"
        ))
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(0), "{v}");
}

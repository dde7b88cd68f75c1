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

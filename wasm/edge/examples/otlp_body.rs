//! Writes an OTLP protobuf `ExportTraceServiceRequest` of N browser-like spans (10 per trace, 8
//! attributes and 1 event each) to stdout: the body `make bench-edge` times the worker on.

use std::io::Write;
use std::sync::Arc;

use spoor_core::{AnyValue, Event, KeyValue, Resource, Span, SpanId, TraceId};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let resource = Arc::new(Resource {
        service_name: "web-frontend".into(),
        attributes: vec![
            KeyValue::string("telemetry.sdk.language", "webjs"),
            KeyValue::string("telemetry.sdk.name", "opentelemetry"),
            KeyValue::string(
                "browser.user_agent",
                "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
            ),
        ],
        dropped_attributes_count: 0,
    });
    let start = 1_764_000_000_000_000_000u64;
    let spans: Vec<Span> = (0..n)
        .map(|i| {
            let trace = 0x5f3c_0000_0000_0000_0000_0000_0000_0000u128
                | (u128::from(i / 10 + 1) * 0x9e37_79b9_7f4a_7c15);
            Span {
                trace_id: TraceId(trace),
                span_id: SpanId(0x1000 + i),
                parent_span_id: (i % 10 != 0).then_some(SpanId(0x1000 + i - i % 10)),
                name: format!("GET /api/items/{}", i % 7),
                start_unix_nanos: start + i * 1_000_000,
                duration_nanos: 250_000 + (i as i64) * 1_000,
                attributes: vec![
                    KeyValue::string("http.request.method", "GET"),
                    KeyValue::string(
                        "url.full",
                        format!("https://shop.example/api/items/{}?page=2", i % 7),
                    ),
                    KeyValue::new("http.response.status_code", AnyValue::Int(200)),
                    KeyValue::string("server.address", "shop.example"),
                    KeyValue::new("server.port", AnyValue::Int(443)),
                    KeyValue::string("component", "fetch"),
                    KeyValue::new("http.response_content_length", AnyValue::Int(5123)),
                    KeyValue::string("session.id", "b7a1f0c2-93d4-4e55-8a1b-2f6e0c9d7e31"),
                ],
                events: vec![Event {
                    time_unix_nanos: start + i * 1_000_000 + 100_000,
                    name: "responseEnd".into(),
                    ..Default::default()
                }],
                resource: resource.clone(),
                ..Default::default()
            }
        })
        .collect();
    let body = spoor_otlp::encode_proto(&spans);
    std::io::stdout()
        .write_all(&body)
        .expect("writing the body to stdout");
}

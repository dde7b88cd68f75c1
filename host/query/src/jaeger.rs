//! Spoor's span model rendered as the Jaeger UI's trace JSON (Jaeger's `uimodel`), with the tags
//! the OpenTelemetry-to-Jaeger translator adds for OTLP spans.

use std::collections::BTreeMap;

use base64::Engine as _;
use spoor_core::{AnyValue, Resource, Span, SpanId, SpanKind, StatusCode, Trace, TraceId};

use crate::json::Json;

/// Largest integer a JavaScript number holds exactly; Jaeger sends larger ones as strings.
const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A trace id as Jaeger prints it: 16 hex digits when the high half is zero, else 32.
pub fn trace_id_str(id: TraceId) -> String {
    if id.high() == 0 {
        format!("{:016x}", id.low())
    } else {
        id.to_hex().to_string()
    }
}

/// A span id as Jaeger prints it: 16 hex digits.
pub fn span_id_str(id: SpanId) -> String {
    id.to_hex().to_string()
}

/// One tag `{"key","type","value"}` as Jaeger's UI JSON shows it.
pub fn tag(key: &str, value: &AnyValue) -> Json {
    let (ty, v) = match value {
        AnyValue::Str(s) => ("string", Json::str(s.as_str())),
        AnyValue::Bool(b) => ("bool", Json::Bool(*b)),
        AnyValue::Int(i) if !(-JS_MAX_SAFE_INTEGER..=JS_MAX_SAFE_INTEGER).contains(i) => {
            ("int64", Json::Str(i.to_string()))
        }
        AnyValue::Int(i) => ("int64", Json::Int(*i)),
        AnyValue::Double(d) => ("float64", Json::Float(*d)),
        AnyValue::Bytes(b) => (
            "binary",
            Json::Str(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
        AnyValue::Array(_) | AnyValue::Map(_) => ("string", Json::Str(raw_value(value).render())),
    };
    Json::obj([
        ("key", Json::str(key)),
        ("type", Json::str(ty)),
        ("value", v),
    ])
}

/// The plain JSON form of a value, as pdata's `AsString` renders arrays and maps (map keys
/// sorted, bytes base64).
fn raw_value(value: &AnyValue) -> Json {
    match value {
        AnyValue::Str(s) => Json::str(s.as_str()),
        AnyValue::Bool(b) => Json::Bool(*b),
        AnyValue::Int(i) => Json::Int(*i),
        AnyValue::Double(d) => Json::Float(*d),
        AnyValue::Bytes(b) => Json::Str(base64::engine::general_purpose::STANDARD.encode(b)),
        AnyValue::Array(items) => Json::Arr(items.iter().map(raw_value).collect()),
        AnyValue::Map(kvs) => {
            let sorted: BTreeMap<&str, &AnyValue> =
                kvs.iter().map(|kv| (kv.key.as_str(), &kv.value)).collect();
            Json::obj(sorted.into_iter().map(|(k, v)| (k, raw_value(v))))
        }
    }
}

fn str_tag(key: &str, value: &str) -> Json {
    tag(key, &AnyValue::Str(value.to_string()))
}

/// The span's tags in the translator's order: scope, attributes, `span.kind`,
/// `otel.status_code`, `error`, `otel.status_description`, `w3c.tracestate`.
fn span_tags(span: &Span) -> Vec<Json> {
    let mut tags = Vec::with_capacity(span.attributes.len() + 6);
    if !span.scope.name.is_empty() {
        tags.push(str_tag("otel.scope.name", &span.scope.name));
    }
    if !span.scope.version.is_empty() {
        tags.push(str_tag("otel.scope.version", &span.scope.version));
    }
    tags.extend(span.attributes.iter().map(|kv| tag(&kv.key, &kv.value)));
    if span.kind != SpanKind::Unspecified {
        tags.push(str_tag("span.kind", span.kind.as_jaeger_str()));
    }
    match span.status.code {
        StatusCode::Ok => tags.push(str_tag("otel.status_code", "OK")),
        StatusCode::Error => {
            tags.push(str_tag("otel.status_code", "ERROR"));
            tags.push(tag("error", &AnyValue::Bool(true)));
        }
        StatusCode::Unset => {}
    }
    if !span.status.message.is_empty() {
        tags.push(str_tag("otel.status_description", &span.status.message));
    }
    if !span.trace_state.is_empty() {
        tags.push(str_tag("w3c.tracestate", &span.trace_state));
    }
    tags
}

/// Parent first as `CHILD_OF`, then links as `FOLLOWS_FROM` (or `CHILD_OF` when the link's
/// `opentracing.ref_type` says `child_of`); a link to the parent only retypes the parent.
fn references(span: &Span) -> Vec<Json> {
    let mut refs: Vec<(&'static str, TraceId, SpanId)> = Vec::with_capacity(span.links.len() + 1);
    let parent = span.parent_span_id.filter(|p| !p.is_zero());
    if let Some(p) = parent {
        refs.push(("CHILD_OF", span.trace_id, p));
    }
    for link in &span.links {
        let ref_type = match spoor_core::find_attr(&link.attributes, "opentracing.ref_type") {
            Some(AnyValue::Str(s)) if s == "child_of" => "CHILD_OF",
            _ => "FOLLOWS_FROM",
        };
        if parent.is_some() && link.trace_id == span.trace_id && Some(link.span_id) == parent {
            refs[0].0 = ref_type;
            continue;
        }
        refs.push((ref_type, link.trace_id, link.span_id));
    }
    refs.into_iter()
        .map(|(t, tid, sid)| {
            Json::obj([
                ("refType", Json::str(t)),
                ("traceID", Json::Str(trace_id_str(tid))),
                ("spanID", Json::Str(span_id_str(sid))),
            ])
        })
        .collect()
}

fn logs(span: &Span) -> Vec<Json> {
    span.events
        .iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(e.attributes.len() + 1);
            if !e.name.is_empty() && spoor_core::find_attr(&e.attributes, "event").is_none() {
                fields.push(str_tag("event", &e.name));
            }
            fields.extend(e.attributes.iter().map(|kv| tag(&kv.key, &kv.value)));
            Json::obj([
                ("timestamp", Json::UInt(e.time_unix_nanos / 1000)),
                ("fields", Json::Arr(fields)),
            ])
        })
        .collect()
}

fn process_tags(resource: &Resource) -> Vec<Json> {
    resource
        .attributes
        .iter()
        .filter(|kv| kv.key != "service.name")
        .map(|kv| tag(&kv.key, &kv.value))
        .collect()
}

/// One span of the UI JSON, with its process id.
pub fn span_json(span: &Span, process_id: &str) -> Json {
    let mut fields: Vec<(String, Json)> = vec![
        ("traceID".into(), Json::Str(trace_id_str(span.trace_id))),
        ("spanID".into(), Json::Str(span_id_str(span.span_id))),
    ];
    // Jaeger's flags are the W3C trace flags byte; OTLP's extra bits are not Jaeger's.
    let flags = span.flags & 0xff;
    if flags != 0 {
        fields.push(("flags".into(), Json::UInt(u64::from(flags))));
    }
    fields.extend([
        ("operationName".into(), Json::str(span.name.as_str())),
        ("references".into(), Json::Arr(references(span))),
        ("startTime".into(), Json::UInt(span.start_unix_nanos / 1000)),
        (
            "duration".into(),
            Json::UInt(span.duration_nanos.max(0) as u64 / 1000),
        ),
        ("tags".into(), Json::Arr(span_tags(span))),
        ("logs".into(), Json::Arr(logs(span))),
        ("processID".into(), Json::str(process_id)),
        (
            "warnings".into(),
            Json::nil_if_empty(
                span.warnings
                    .iter()
                    .map(|w| Json::str(w.as_str()))
                    .collect(),
            ),
        ),
    ]);
    Json::Obj(fields)
}

/// A whole trace in the UI JSON. Spans are rendered in the order given; processes are
/// deduplicated by service name and tags and numbered `p1`, `p2`, … in order of first use.
pub fn trace_json(trace: &Trace, warnings: &[String]) -> Json {
    // Process identity: service name plus the rendered tags.
    let mut process_ids: Vec<(String, Json, String)> = Vec::new();
    let mut spans = Vec::with_capacity(trace.spans.len());
    for span in &trace.spans {
        let tags = Json::Arr(process_tags(&span.resource));
        let service = span.resource.service_name.as_str();
        let id = match process_ids
            .iter()
            .find(|(s, t, _)| s == service && *t == tags)
        {
            Some((_, _, id)) => id.clone(),
            None => {
                let id = format!("p{}", process_ids.len() + 1);
                process_ids.push((service.to_string(), tags, id.clone()));
                id
            }
        };
        spans.push(span_json(span, &id));
    }
    // Go marshals map keys sorted as strings (p1, p10, p2, …).
    let processes: BTreeMap<String, Json> = process_ids
        .into_iter()
        .map(|(service, tags, id)| {
            (
                id,
                Json::obj([("serviceName", Json::Str(service)), ("tags", tags)]),
            )
        })
        .collect();
    let trace_id = trace.spans.first().map_or_else(
        || trace_id_str(trace.trace_id),
        |s| trace_id_str(s.trace_id),
    );
    Json::obj([
        ("traceID", Json::Str(trace_id)),
        ("spans", Json::Arr(spans)),
        ("processes", Json::Obj(processes.into_iter().collect())),
        (
            "warnings",
            Json::nil_if_empty(warnings.iter().map(|w| Json::str(w.as_str())).collect()),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_core::KeyValue;

    #[test]
    fn ids_like_jaeger() {
        assert_eq!(trace_id_str(TraceId(0xabc)), "0000000000000abc");
        assert_eq!(
            trace_id_str(TraceId::from_high_low(1, 2)),
            "00000000000000010000000000000002"
        );
        assert_eq!(span_id_str(SpanId(0xff)), "00000000000000ff");
    }

    #[test]
    fn tag_values() {
        let cases: Vec<(AnyValue, &str)> = vec![
            (
                AnyValue::Int(1 << 53),
                r#"{"key":"k","type":"int64","value":"9007199254740992"}"#,
            ),
            (
                AnyValue::Int((1 << 53) - 1),
                r#"{"key":"k","type":"int64","value":9007199254740991}"#,
            ),
            (
                AnyValue::Int(-(1 << 53)),
                r#"{"key":"k","type":"int64","value":"-9007199254740992"}"#,
            ),
            (
                AnyValue::Bytes(vec![0, 1, 2, 255]),
                r#"{"key":"k","type":"binary","value":"AAEC/w=="}"#,
            ),
            (
                AnyValue::Double(1.5),
                r#"{"key":"k","type":"float64","value":1.5}"#,
            ),
            (
                AnyValue::Bool(false),
                r#"{"key":"k","type":"bool","value":false}"#,
            ),
            (
                AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Str("a".into())]),
                r#"{"key":"k","type":"string","value":"[1,\"a\"]"}"#,
            ),
            (
                AnyValue::Map(vec![
                    KeyValue::new("z", AnyValue::Bool(true)),
                    KeyValue::string("a", "<"),
                ]),
                r#"{"key":"k","type":"string","value":"{\"a\":\"\\u003c\",\"z\":true}"}"#,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(tag("k", &v).render(), want, "{v:?}");
        }
    }
}

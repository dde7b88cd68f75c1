//! OTLP trace wire formats — protobuf ([`proto`]) and OTLP/JSON ([`json`]) — to and from
//! Spoor's span model.
//!
//! This crate knows nothing of servers: receivers hand it request bodies and get spans back, and
//! exporters/query APIs hand it spans and get wire messages back.
//!
//! Mapping rules:
//! - the `service.name` resource attribute (when it is a string) becomes
//!   [`Resource::service_name`] and is removed from the attributes; a missing one gives `""`
//!   (validation substitutes the default later);
//! - a span whose trace id is not 16 bytes, span id not 8 bytes, or parent id not 0 or 8 bytes is
//!   rejected at decode time, the others are kept ([`Decoded::rejected`], [`Decoded::problems`]);
//! - an all-zero parent id means "no parent";
//! - a link with malformed ids is dropped and noted in the span's warnings;
//! - `end < start` gives a negative duration, which validation reports later;
//! - an empty `AnyValue` becomes an empty string;
//! - the spans of one `ResourceSpans` share one `Arc<Resource>`, those of one `ScopeSpans` one
//!   `Arc<Scope>`.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use spoor_core::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};

mod fast;
pub mod json;
pub mod proto;

/// The resource attribute lifted into [`Resource::service_name`].
pub const SERVICE_NAME_KEY: &str = "service.name";

/// What a request decoded to: the one definition shared by every codec.
pub use spoor_core::Decoded;

/// Why a request body could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not a valid `ExportTraceServiceRequest` protobuf message.
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
    /// The body is not valid OTLP/JSON.
    #[error("malformed json at line {line} column {column}: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What was wrong.
        message: String,
    },
}

impl From<prost::DecodeError> for DecodeError {
    fn from(e: prost::DecodeError) -> Self {
        let text = e.to_string();
        let text = text
            .strip_prefix("failed to decode Protobuf message: ")
            .unwrap_or(&text);
        DecodeError::Protobuf(text.to_string())
    }
}

/// Decodes an `ExportTraceServiceRequest` protobuf body.
///
/// Reads the bytes in one pass straight into spans (see `fast.rs`); the result is the same as
/// [`request_to_spans`] of the prost decode, and every body prost rejects is rejected.
pub fn decode_proto(body: &[u8]) -> Result<Decoded, DecodeError> {
    fast::decode(body)
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` body.
pub fn decode_json(body: &[u8]) -> Result<Decoded, DecodeError> {
    json::decode_request(body).map(request_to_spans)
}

/// Converts a decoded request into spans, rejecting spans with malformed ids.
pub fn request_to_spans(req: proto::ExportTraceServiceRequest) -> Decoded {
    let total: usize = req
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .map(|ss| ss.spans.len())
        .sum();
    let mut out = Decoded {
        spans: Vec::with_capacity(total),
        rejected: 0,
        problems: Vec::new(),
    };
    for (ri, rs) in req.resource_spans.into_iter().enumerate() {
        let resource = Arc::new(convert_resource(rs.resource.unwrap_or_default()));
        for (si, ss) in rs.scope_spans.into_iter().enumerate() {
            let scope = Arc::new(convert_scope(ss.scope.unwrap_or_default()));
            for (pi, span) in ss.spans.into_iter().enumerate() {
                match convert_span(span, &resource, &scope) {
                    Ok((span, link_problems)) => {
                        for p in link_problems {
                            out.problems.push(format!(
                                "resource_spans[{ri}].scope_spans[{si}].spans[{pi}]: {p}"
                            ));
                        }
                        out.spans.push(span);
                    }
                    Err(p) => {
                        out.rejected += 1;
                        out.problems.push(format!(
                            "resource_spans[{ri}].scope_spans[{si}].spans[{pi}]: {p}"
                        ));
                    }
                }
            }
        }
    }
    out
}

fn convert_resource(r: proto::Resource) -> Resource {
    resource_from_parts(convert_attrs(r.attributes), r.dropped_attributes_count)
}

/// Builds a resource, lifting the first string `service.name` attribute out of `attributes`.
fn resource_from_parts(mut attributes: Vec<KeyValue>, dropped_attributes_count: u32) -> Resource {
    let mut service_name = String::new();
    if let Some(i) = attributes
        .iter()
        .position(|kv| kv.key == SERVICE_NAME_KEY && matches!(kv.value, AnyValue::Str(_)))
    {
        if let AnyValue::Str(s) = attributes.remove(i).value {
            service_name = s;
        }
    }
    Resource {
        service_name,
        attributes,
        dropped_attributes_count,
    }
}

fn convert_scope(s: proto::InstrumentationScope) -> Scope {
    Scope {
        name: s.name,
        version: s.version,
        attributes: convert_attrs(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
    }
}

fn convert_attrs(attrs: Vec<proto::KeyValue>) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: convert_value(kv.value),
        })
        .collect()
}

fn convert_value(v: Option<proto::AnyValue>) -> AnyValue {
    use proto::any_value::Value;
    match v.and_then(|v| v.value) {
        None => AnyValue::Str(String::new()),
        Some(Value::StringValue(s)) => AnyValue::Str(s),
        Some(Value::BoolValue(b)) => AnyValue::Bool(b),
        Some(Value::IntValue(i)) => AnyValue::Int(i),
        Some(Value::DoubleValue(d)) => AnyValue::Double(d),
        Some(Value::BytesValue(b)) => AnyValue::Bytes(b),
        Some(Value::ArrayValue(a)) => AnyValue::Array(
            a.values
                .into_iter()
                .map(|v| convert_value(Some(v)))
                .collect(),
        ),
        Some(Value::KvlistValue(m)) => AnyValue::Map(convert_attrs(m.values)),
    }
}

fn trace_id(b: &[u8], what: &str) -> Result<TraceId, String> {
    TraceId::from_slice(b).ok_or_else(|| format!("{what} is {} bytes, expected 16", b.len()))
}

fn span_id(b: &[u8], what: &str) -> Result<SpanId, String> {
    SpanId::from_slice(b).ok_or_else(|| format!("{what} is {} bytes, expected 8", b.len()))
}

/// Converts one span; `Err` names why it is rejected, `Ok` carries problems with dropped links.
fn convert_span(
    s: proto::Span,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
) -> Result<(Span, Vec<String>), String> {
    let trace_id = trace_id(&s.trace_id, "trace_id")?;
    let span_id = span_id(&s.span_id, "span_id")?;
    let parent_span_id = match s.parent_span_id.len() {
        0 => None,
        8 => {
            Some(SpanId::from_slice(&s.parent_span_id).unwrap_or_default()).filter(|p| !p.is_zero())
        }
        n => return Err(format!("parent_span_id is {n} bytes, expected 0 or 8")),
    };
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    let mut links = Vec::with_capacity(s.links.len());
    for (li, l) in s.links.into_iter().enumerate() {
        match (trace_id_of(&l.trace_id), span_id_of(&l.span_id)) {
            (Ok(t), Ok(id)) => links.push(Link {
                trace_id: t,
                span_id: id,
                trace_state: l.trace_state,
                attributes: convert_attrs(l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            }),
            (Err(e), _) | (_, Err(e)) => {
                let msg = format!("link {li} dropped: {e}");
                problems.push(msg.clone());
                warnings.push(msg);
            }
        }
    }
    let duration = i128::from(s.end_time_unix_nano) - i128::from(s.start_time_unix_nano);
    let duration_nanos =
        i64::try_from(duration).unwrap_or(if duration < 0 { i64::MIN } else { i64::MAX });
    let status = s
        .status
        .map(|st| Status {
            code: StatusCode::from_otlp(st.code),
            message: st.message,
        })
        .unwrap_or_default();
    let span = Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: s.trace_state,
        flags: s.flags,
        name: s.name,
        kind: SpanKind::from_otlp(s.kind),
        start_unix_nanos: s.start_time_unix_nano,
        duration_nanos,
        status,
        attributes: convert_attrs(s.attributes),
        events: s
            .events
            .into_iter()
            .map(|e| Event {
                time_unix_nanos: e.time_unix_nano,
                name: e.name,
                attributes: convert_attrs(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        links,
        dropped_attributes_count: s.dropped_attributes_count,
        dropped_events_count: s.dropped_events_count,
        dropped_links_count: s.dropped_links_count,
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
        warnings,
    };
    Ok((span, problems))
}

fn trace_id_of(b: &[u8]) -> Result<TraceId, String> {
    trace_id(b, "trace_id")
}

fn span_id_of(b: &[u8]) -> Result<SpanId, String> {
    span_id(b, "span_id")
}

/// The end time of a span as sent on the wire (`start + duration`, clamped to `u64`).
pub fn end_time_unix_nanos(span: &Span) -> u64 {
    let end = i128::from(span.start_unix_nanos) + i128::from(span.duration_nanos);
    u64::try_from(end.max(0)).unwrap_or(u64::MAX)
}

/// Groups spans by their shared resource and scope (by `Arc` identity, in order of first
/// appearance) into an export request. The inverse of [`request_to_spans`] for spans that
/// passed it.
pub fn spans_to_request(spans: &[Span]) -> proto::ExportTraceServiceRequest {
    let mut resource_spans: Vec<proto::ResourceSpans> = Vec::new();
    let mut by_resource: HashMap<*const Resource, usize> = HashMap::new();
    let mut by_scope: HashMap<(*const Resource, *const Scope), usize> = HashMap::new();
    for span in spans {
        let rkey = Arc::as_ptr(&span.resource);
        let ri = *by_resource.entry(rkey).or_insert_with(|| {
            resource_spans.push(proto::ResourceSpans {
                resource: Some(resource_to_proto(&span.resource)),
                scope_spans: Vec::new(),
                schema_url: String::new(),
            });
            resource_spans.len() - 1
        });
        let rs = &mut resource_spans[ri];
        let si = *by_scope
            .entry((rkey, Arc::as_ptr(&span.scope)))
            .or_insert_with(|| {
                rs.scope_spans.push(proto::ScopeSpans {
                    scope: Some(scope_to_proto(&span.scope)),
                    spans: Vec::new(),
                    schema_url: String::new(),
                });
                rs.scope_spans.len() - 1
            });
        rs.scope_spans[si].spans.push(span_to_proto(span));
    }
    proto::ExportTraceServiceRequest { resource_spans }
}

/// Encodes spans as `ExportTraceServiceRequest` protobuf bytes.
pub fn encode_proto(spans: &[Span]) -> Vec<u8> {
    spans_to_request(spans).encode_to_vec()
}

fn resource_to_proto(r: &Resource) -> proto::Resource {
    let mut attributes = Vec::with_capacity(r.attributes.len() + 1);
    if !r.service_name.is_empty() {
        attributes.push(proto::KeyValue {
            key: SERVICE_NAME_KEY.to_string(),
            value: Some(value_to_proto(&AnyValue::Str(r.service_name.clone()))),
        });
    }
    attributes.extend(attrs_to_proto(&r.attributes));
    proto::Resource {
        attributes,
        dropped_attributes_count: r.dropped_attributes_count,
    }
}

fn scope_to_proto(s: &Scope) -> proto::InstrumentationScope {
    proto::InstrumentationScope {
        name: s.name.clone(),
        version: s.version.clone(),
        attributes: attrs_to_proto(&s.attributes).collect(),
        dropped_attributes_count: s.dropped_attributes_count,
    }
}

fn attrs_to_proto(attrs: &[KeyValue]) -> impl Iterator<Item = proto::KeyValue> + '_ {
    attrs.iter().map(|kv| proto::KeyValue {
        key: kv.key.clone(),
        value: Some(value_to_proto(&kv.value)),
    })
}

fn value_to_proto(v: &AnyValue) -> proto::AnyValue {
    use proto::any_value::Value;
    let value = match v {
        AnyValue::Str(s) => Value::StringValue(s.clone()),
        AnyValue::Bool(b) => Value::BoolValue(*b),
        AnyValue::Int(i) => Value::IntValue(*i),
        AnyValue::Double(d) => Value::DoubleValue(*d),
        AnyValue::Bytes(b) => Value::BytesValue(b.clone()),
        AnyValue::Array(a) => Value::ArrayValue(proto::ArrayValue {
            values: a.iter().map(value_to_proto).collect(),
        }),
        AnyValue::Map(m) => Value::KvlistValue(proto::KeyValueList {
            values: attrs_to_proto(m).collect(),
        }),
    };
    proto::AnyValue { value: Some(value) }
}

fn span_to_proto(s: &Span) -> proto::Span {
    proto::Span {
        trace_id: s.trace_id.to_bytes().to_vec(),
        span_id: s.span_id.to_bytes().to_vec(),
        trace_state: s.trace_state.clone(),
        parent_span_id: s
            .parent_span_id
            .map(|p| p.to_bytes().to_vec())
            .unwrap_or_default(),
        flags: s.flags,
        name: s.name.clone(),
        kind: s.kind.to_otlp(),
        start_time_unix_nano: s.start_unix_nanos,
        end_time_unix_nano: end_time_unix_nanos(s),
        attributes: attrs_to_proto(&s.attributes).collect(),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .iter()
            .map(|e| proto::span::Event {
                time_unix_nano: e.time_unix_nanos,
                name: e.name.clone(),
                attributes: attrs_to_proto(&e.attributes).collect(),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .iter()
            .map(|l| proto::span::Link {
                trace_id: l.trace_id.to_bytes().to_vec(),
                span_id: l.span_id.to_bytes().to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: attrs_to_proto(&l.attributes).collect(),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: s.dropped_links_count,
        status: (s.status.code != StatusCode::Unset || !s.status.message.is_empty()).then(|| {
            proto::Status {
                message: s.status.message.clone(),
                code: status_code_to_otlp(s.status.code),
            }
        }),
    }
}

fn status_code_to_otlp(c: StatusCode) -> i32 {
    match c {
        StatusCode::Unset => 0,
        StatusCode::Ok => 1,
        StatusCode::Error => 2,
    }
}

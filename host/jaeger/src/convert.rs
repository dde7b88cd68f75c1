//! Jaeger spans (Thrift or `api_v2` protobuf) -> Spoor's span model, following the
//! OpenTelemetry Collector's `pkg/translator/jaeger` rules: tags that the translator turns into
//! fields (kind, status, trace state, scope) are lifted out, everything else stays a typed
//! attribute.

use std::sync::Arc;

use spoor_core::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};

use crate::{model, proto, Decoded};

const TAG_SPAN_KIND: &str = "span.kind";
const TAG_ERROR: &str = "error";
const TAG_STATUS_CODE: &str = "otel.status_code";
const TAG_STATUS_DESC: &str = "otel.status_description";
const TAG_HTTP_STATUS_CODE: &str = "http.status_code";
const TAG_HTTP_STATUS_MSG: &str = "http.status_message";
const TAG_TRACE_STATE: &str = "w3c.tracestate";
const TAG_SCOPE_NAME: &str = "otel.scope.name";
const TAG_SCOPE_VERSION: &str = "otel.scope.version";
const TAG_LIBRARY_NAME: &str = "otel.library.name";
const TAG_LIBRARY_VERSION: &str = "otel.library.version";
const LOG_EVENT: &str = "event";
/// Attribute a link gets naming the Jaeger reference type, as the translator sets it.
pub const REF_TYPE_ATTR: &str = "opentracing.ref_type";

/// A Jaeger reference, protocol-neutral.
struct Ref {
    child_of: bool,
    trace_id: TraceId,
    span_id: SpanId,
}

/// Shares one `Arc<Scope>` per distinct (name, version) within a batch.
#[derive(Default)]
struct Scopes {
    known: Vec<Arc<Scope>>,
}

impl Scopes {
    fn get(&mut self, name: String, version: String) -> Arc<Scope> {
        if let Some(s) = self
            .known
            .iter()
            .find(|s| s.name == name && s.version == version)
        {
            return s.clone();
        }
        let s = Arc::new(Scope {
            name,
            version,
            ..Default::default()
        });
        self.known.push(s.clone());
        s
    }
}

fn thrift_tag(t: &model::Tag) -> KeyValue {
    let value = match t.v_type {
        model::TagType::String => AnyValue::Str(t.v_str.clone().unwrap_or_default()),
        model::TagType::Double => AnyValue::Double(t.v_double.unwrap_or_default()),
        model::TagType::Bool => AnyValue::Bool(t.v_bool.unwrap_or_default()),
        model::TagType::Long => AnyValue::Int(t.v_long.unwrap_or_default()),
        model::TagType::Binary => AnyValue::Bytes(t.v_binary.clone().unwrap_or_default()),
    };
    KeyValue::new(t.key.clone(), value)
}

fn proto_tag(t: &proto::KeyValue) -> KeyValue {
    let value = match proto::ValueType::try_from(t.v_type) {
        Ok(proto::ValueType::Bool) => AnyValue::Bool(t.v_bool),
        Ok(proto::ValueType::Int64) => AnyValue::Int(t.v_int64),
        Ok(proto::ValueType::Float64) => AnyValue::Double(t.v_float64),
        Ok(proto::ValueType::Binary) => AnyValue::Bytes(t.v_binary.clone()),
        // unknown types read as strings, as Jaeger's model does for the zero value
        Ok(proto::ValueType::String) | Err(_) => AnyValue::Str(t.v_str.clone()),
    };
    KeyValue::new(t.key.clone(), value)
}

fn take(attrs: &mut Vec<KeyValue>, key: &str) -> Option<AnyValue> {
    let i = attrs.iter().position(|kv| kv.key == key)?;
    Some(attrs.remove(i).value)
}

fn take_str(attrs: &mut Vec<KeyValue>, key: &str) -> Option<String> {
    let i = attrs
        .iter()
        .position(|kv| kv.key == key && matches!(kv.value, AnyValue::Str(_)))?;
    match attrs.remove(i).value {
        AnyValue::Str(s) => Some(s),
        _ => None,
    }
}

fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

/// The status an HTTP status code implies (OpenTelemetry semantic conventions: 5xx is an error,
/// 4xx only for clients and other non-server spans).
fn http_status(v: &AnyValue, kind: SpanKind) -> Option<StatusCode> {
    let code = match v {
        AnyValue::Int(i) => *i,
        AnyValue::Str(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    if !(100..=599).contains(&code) {
        return Some(StatusCode::Error);
    }
    Some(
        if code >= 500 || (code >= 400 && kind != SpanKind::Server) {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
    )
}

/// The translator's `setInternalSpanStatus`.
fn lift_status(attrs: &mut Vec<KeyValue>, kind: SpanKind) -> Status {
    let mut status = Status::default();
    let mut exists = false;
    if matches!(get(attrs, TAG_ERROR), Some(AnyValue::Bool(true))) {
        take(attrs, TAG_ERROR);
        status.code = StatusCode::Error;
        exists = true;
        if let Some(desc) = take_str(attrs, TAG_STATUS_DESC) {
            status.message = desc;
        } else if let Some(code) =
            get(attrs, TAG_HTTP_STATUS_CODE).and_then(|v| http_status(v, kind))
        {
            if code != StatusCode::Unset {
                status.code = code;
            }
            if let Some(AnyValue::Str(m)) = get(attrs, TAG_HTTP_STATUS_MSG) {
                status.message = m.clone();
            }
        }
    }
    if let Some(code) = take(attrs, TAG_STATUS_CODE) {
        if !exists {
            let text = match &code {
                AnyValue::Str(s) => s.to_ascii_uppercase(),
                _ => String::new(),
            };
            status.code = match text.as_str() {
                "OK" => StatusCode::Ok,
                "ERROR" => StatusCode::Error,
                _ => StatusCode::Unset,
            };
            if let Some(desc) = take_str(attrs, TAG_STATUS_DESC) {
                status.message = desc;
            }
        }
    } else if !exists {
        if let Some(code) = get(attrs, TAG_HTTP_STATUS_CODE).and_then(|v| http_status(v, kind)) {
            if code != StatusCode::Unset {
                status.code = code;
                if let Some(AnyValue::Str(m)) = get(attrs, TAG_HTTP_STATUS_MSG) {
                    status.message = m.clone();
                }
            }
        }
    }
    status
}

/// Applies the translator's rules to a span whose attributes and events still hold every tag.
fn finish(mut span: Span, parent: Option<SpanId>, refs: Vec<Ref>, scopes: &mut Scopes) -> Span {
    // parent: the explicit parent id, else the first CHILD_OF reference within the trace
    let parent = parent.or_else(|| {
        refs.iter()
            .find(|r| r.child_of && r.trace_id == span.trace_id && !r.span_id.is_zero())
            .map(|r| r.span_id)
    });
    span.parent_span_id = parent;
    let mut parent_ref_skipped = false;
    for r in refs {
        let is_parent_ref = r.child_of && Some(r.span_id) == parent && r.trace_id == span.trace_id;
        if is_parent_ref && !parent_ref_skipped {
            parent_ref_skipped = true;
            continue;
        }
        span.links.push(Link {
            trace_id: r.trace_id,
            span_id: r.span_id,
            attributes: vec![KeyValue::string(
                REF_TYPE_ATTR,
                if r.child_of {
                    "child_of"
                } else {
                    "follows_from"
                },
            )],
            ..Default::default()
        });
    }

    let attrs = &mut span.attributes;
    if let Some(AnyValue::Str(k)) = get(attrs, TAG_SPAN_KIND) {
        if let Some(kind) = SpanKind::from_jaeger_str(k) {
            span.kind = kind;
            take(attrs, TAG_SPAN_KIND);
        }
    }
    span.status = lift_status(attrs, span.kind);
    if let Some(ts) = take_str(attrs, TAG_TRACE_STATE) {
        span.trace_state = ts;
    }
    let name = take_str(attrs, TAG_SCOPE_NAME);
    let lib_name = take_str(attrs, TAG_LIBRARY_NAME);
    let version = take_str(attrs, TAG_SCOPE_VERSION);
    let lib_version = take_str(attrs, TAG_LIBRARY_VERSION);
    span.scope = scopes.get(
        name.or(lib_name).unwrap_or_default(),
        version.or(lib_version).unwrap_or_default(),
    );
    for e in &mut span.events {
        if let Some(name) = take_str(&mut e.attributes, LOG_EVENT) {
            e.name = name;
        }
    }
    span
}

fn micros_to_nanos(us: i64) -> u64 {
    u64::try_from(us).unwrap_or(0).saturating_mul(1000)
}

/// Converts a Thrift batch.
pub fn thrift_batch(batch: &model::Batch) -> Decoded {
    let resource = Arc::new(Resource {
        service_name: batch.process.service_name.clone(),
        attributes: batch.process.tags.iter().map(thrift_tag).collect(),
        dropped_attributes_count: 0,
    });
    let mut scopes = Scopes::default();
    let mut out = Decoded::default();
    for (i, s) in batch.spans.iter().enumerate() {
        if s.start_time < 0 {
            out.rejected += 1;
            out.problems
                .push(format!("spans[{i}]: negative startTime {}", s.start_time));
            continue;
        }
        let trace_id = TraceId::from_high_low(s.trace_id_high as u64, s.trace_id_low as u64);
        let span = Span {
            trace_id,
            span_id: SpanId(s.span_id as u64),
            flags: s.flags as u32,
            name: s.operation_name.clone(),
            start_unix_nanos: micros_to_nanos(s.start_time),
            duration_nanos: s.duration.saturating_mul(1000),
            attributes: s.tags.iter().map(thrift_tag).collect(),
            events: s
                .logs
                .iter()
                .map(|l| Event {
                    time_unix_nanos: micros_to_nanos(l.timestamp),
                    attributes: l.fields.iter().map(thrift_tag).collect(),
                    ..Default::default()
                })
                .collect(),
            resource: resource.clone(),
            ..Default::default()
        };
        let refs = s
            .references
            .iter()
            .map(|r| Ref {
                child_of: r.ref_type == model::SpanRefType::ChildOf,
                trace_id: TraceId::from_high_low(r.trace_id_high as u64, r.trace_id_low as u64),
                span_id: SpanId(r.span_id as u64),
            })
            .collect();
        let parent = (s.parent_span_id != 0).then_some(SpanId(s.parent_span_id as u64));
        out.spans.push(finish(span, parent, refs, &mut scopes));
    }
    out
}

fn timestamp_nanos(t: Option<&proto::Timestamp>) -> Result<u64, String> {
    let Some(t) = t else { return Ok(0) };
    if t.seconds < 0 || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(format!(
            "timestamp {}s {}ns is before 1970 or malformed",
            t.seconds, t.nanos
        ));
    }
    Ok((t.seconds as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.nanos as u64))
}

fn trace_id(b: &[u8], what: &str) -> Result<TraceId, String> {
    TraceId::from_slice(b).ok_or_else(|| format!("{what} is {} bytes, expected 16", b.len()))
}

fn parse_span_id(b: &[u8], what: &str) -> Result<SpanId, String> {
    SpanId::from_slice(b).ok_or_else(|| format!("{what} is {} bytes, expected 8", b.len()))
}

fn proto_span(
    s: &proto::Span,
    resource: Arc<Resource>,
    scopes: &mut Scopes,
) -> Result<Span, String> {
    let trace_id = trace_id(&s.trace_id, "trace_id")?;
    let span_id = parse_span_id(&s.span_id, "span_id")?;
    let duration = s.duration.unwrap_or_default();
    let mut refs = Vec::with_capacity(s.references.len());
    for (j, r) in s.references.iter().enumerate() {
        refs.push(Ref {
            child_of: r.ref_type == proto::SpanRefType::ChildOf as i32,
            trace_id: trace_id_of_ref(&r.trace_id, j)?,
            span_id: parse_span_id(&r.span_id, &format!("references[{j}].span_id"))?,
        });
    }
    let mut events = Vec::with_capacity(s.logs.len());
    for (j, l) in s.logs.iter().enumerate() {
        events.push(Event {
            time_unix_nanos: timestamp_nanos(l.timestamp.as_ref())
                .map_err(|e| format!("logs[{j}].{e}"))?,
            attributes: l.fields.iter().map(proto_tag).collect(),
            ..Default::default()
        });
    }
    let span = Span {
        trace_id,
        span_id,
        flags: s.flags,
        name: s.operation_name.clone(),
        start_unix_nanos: timestamp_nanos(s.start_time.as_ref())
            .map_err(|e| format!("start_time {e}"))?,
        duration_nanos: duration
            .seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(duration.nanos)),
        attributes: s.tags.iter().map(proto_tag).collect(),
        events,
        resource,
        warnings: s.warnings.clone(),
        ..Default::default()
    };
    Ok(finish(span, None, refs, scopes))
}

fn trace_id_of_ref(b: &[u8], j: usize) -> Result<TraceId, String> {
    trace_id(b, &format!("references[{j}].trace_id"))
}

fn proto_resource(p: &proto::Process) -> Resource {
    Resource {
        service_name: p.service_name.clone(),
        attributes: p.tags.iter().map(proto_tag).collect(),
        dropped_attributes_count: 0,
    }
}

/// Converts an `api_v2` batch: a span's own process wins over the batch's. Spans with bad ids
/// or timestamps are rejected one by one, naming the problem.
pub fn proto_batch(batch: &proto::Batch) -> Decoded {
    let batch_resource = Arc::new(
        batch
            .process
            .as_ref()
            .map(proto_resource)
            .unwrap_or_default(),
    );
    let mut own: Vec<Arc<Resource>> = Vec::new();
    let mut scopes = Scopes::default();
    let mut out = Decoded::default();
    for (i, s) in batch.spans.iter().enumerate() {
        let resource = match &s.process {
            None => batch_resource.clone(),
            Some(p) => {
                let r = proto_resource(p);
                match own.iter().find(|o| ***o == r) {
                    Some(o) => o.clone(),
                    None => {
                        let r = Arc::new(r);
                        own.push(r.clone());
                        r
                    }
                }
            }
        };
        match proto_span(s, resource, &mut scopes) {
            Ok(span) => out.spans.push(span),
            Err(e) => {
                out.rejected += 1;
                out.problems.push(format!("spans[{i}]: {e}"));
            }
        }
    }
    out
}

// ---- Spoor's span model -> Jaeger Thrift (the inverse of `thrift_batch`) -------------------

/// A value as Jaeger text: arrays and maps, which Jaeger tags cannot hold, become JSON-like
/// strings, as the OpenTelemetry Collector's translator writes them.
fn value_text(v: &AnyValue, out: &mut String) {
    use core::fmt::Write as _;
    match v {
        AnyValue::Str(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        AnyValue::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        AnyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        AnyValue::Double(d) => {
            let _ = write!(out, "{d}");
        }
        AnyValue::Bytes(b) => {
            out.push('"');
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
            out.push('"');
        }
        AnyValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value_text(item, out);
            }
            out.push(']');
        }
        AnyValue::Map(kvs) => {
            out.push('{');
            for (i, kv) in kvs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value_text(&AnyValue::Str(kv.key.clone()), out);
                out.push(':');
                value_text(&kv.value, out);
            }
            out.push('}');
        }
    }
}

fn to_thrift_tag(kv: &KeyValue) -> model::Tag {
    match &kv.value {
        AnyValue::Str(s) => model::Tag::string(&kv.key, s),
        AnyValue::Bool(b) => model::Tag::bool(&kv.key, *b),
        AnyValue::Int(i) => model::Tag::long(&kv.key, *i),
        AnyValue::Double(d) => model::Tag::double(&kv.key, *d),
        AnyValue::Bytes(b) => model::Tag::binary(&kv.key, b),
        v @ (AnyValue::Array(_) | AnyValue::Map(_)) => {
            let mut text = String::new();
            value_text(v, &mut text);
            model::Tag::string(&kv.key, &text)
        }
    }
}

fn nanos_to_micros(ns: u64) -> i64 {
    i64::try_from(ns / 1000).unwrap_or(i64::MAX)
}

/// The tags that carry what `thrift_batch` lifts out of them: kind, status, trace state and
/// scope, after the span's own attributes.
fn span_tags(s: &Span) -> Vec<model::Tag> {
    let mut tags: Vec<model::Tag> = s.attributes.iter().map(to_thrift_tag).collect();
    if s.kind != SpanKind::Unspecified {
        tags.push(model::Tag::string(TAG_SPAN_KIND, s.kind.as_jaeger_str()));
    }
    match s.status.code {
        StatusCode::Error => {
            tags.push(model::Tag::bool(TAG_ERROR, true));
            // always written, so that an `http.status_message` tag is not taken for it
            tags.push(model::Tag::string(TAG_STATUS_DESC, &s.status.message));
        }
        StatusCode::Ok => tags.push(model::Tag::string(TAG_STATUS_CODE, "OK")),
        StatusCode::Unset => {
            // without it, an `http.status_code` tag would imply a status
            if get(&s.attributes, TAG_HTTP_STATUS_CODE).is_some() {
                tags.push(model::Tag::string(TAG_STATUS_CODE, "UNSET"));
            }
        }
    }
    if !s.trace_state.is_empty() {
        tags.push(model::Tag::string(TAG_TRACE_STATE, &s.trace_state));
    }
    if !s.scope.name.is_empty() {
        tags.push(model::Tag::string(TAG_SCOPE_NAME, &s.scope.name));
    }
    if !s.scope.version.is_empty() {
        tags.push(model::Tag::string(TAG_SCOPE_VERSION, &s.scope.version));
    }
    tags
}

fn to_thrift_span(s: &Span) -> model::Span {
    let logs = s
        .events
        .iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(e.attributes.len() + 1);
            if !e.name.is_empty() {
                fields.push(model::Tag::string(LOG_EVENT, &e.name));
            }
            fields.extend(e.attributes.iter().map(to_thrift_tag));
            model::Log {
                timestamp: nanos_to_micros(e.time_unix_nanos),
                fields,
            }
        })
        .collect();
    let references = s
        .links
        .iter()
        .map(|l| {
            let child_of = matches!(
                get(&l.attributes, REF_TYPE_ATTR),
                Some(AnyValue::Str(t)) if t == "child_of"
            );
            model::SpanRef {
                ref_type: if child_of {
                    model::SpanRefType::ChildOf
                } else {
                    model::SpanRefType::FollowsFrom
                },
                trace_id_low: l.trace_id.low() as i64,
                trace_id_high: l.trace_id.high() as i64,
                span_id: l.span_id.0 as i64,
            }
        })
        .collect();
    model::Span {
        trace_id_low: s.trace_id.low() as i64,
        trace_id_high: s.trace_id.high() as i64,
        span_id: s.span_id.0 as i64,
        parent_span_id: s.parent_span_id.map_or(0, |p| p.0 as i64),
        operation_name: s.name.clone(),
        references,
        flags: s.flags as i32,
        start_time: nanos_to_micros(s.start_unix_nanos),
        duration: s.duration_nanos / 1000,
        tags: span_tags(s),
        logs,
        incomplete: None,
    }
}

/// Converts spans into Thrift batches, one per distinct `Arc<Resource>` (the Jaeger process),
/// in order of first appearance. This is the inverse of [`thrift_batch`] for spans Jaeger can
/// represent: times in whole microseconds, no scope attributes, no link trace state or link
/// attributes other than [`REF_TYPE_ATTR`], no dropped counts or warnings; array and map
/// values become JSON-like strings.
pub fn spans_to_batches(spans: &[Span]) -> Vec<model::Batch> {
    let mut batches: Vec<(Arc<Resource>, model::Batch)> = Vec::new();
    for s in spans {
        let i = match batches
            .iter()
            .position(|(r, _)| Arc::ptr_eq(r, &s.resource))
        {
            Some(i) => i,
            None => {
                let process = model::Process {
                    service_name: s.resource.service_name.clone(),
                    tags: s.resource.attributes.iter().map(to_thrift_tag).collect(),
                };
                batches.push((
                    s.resource.clone(),
                    model::Batch {
                        process,
                        ..Default::default()
                    },
                ));
                batches.len() - 1
            }
        };
        batches[i].1.spans.push(to_thrift_span(s));
    }
    batches.into_iter().map(|(_, b)| b).collect()
}

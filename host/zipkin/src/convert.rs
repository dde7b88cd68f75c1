//! Zipkin v2 spans -> Spoor's span model, following the OpenTelemetry Collector's
//! `pkg/translator/zipkin/zipkinv2` rules:
//!
//! - `localEndpoint.serviceName` is the resource's service name (empty when missing, so that
//!   validation applies its default and says so); its address becomes `net.host.ip` /
//!   `net.host.port`;
//! - `remoteEndpoint` becomes `peer.service`, `net.peer.ip`, `net.peer.port` (tags of the same
//!   name win);
//! - `kind` maps one to one; a kind-less span with tag `span.kind=internal` is internal;
//! - `otel.status_code` / `otel.status_description` set the status; an `error` tag makes it an
//!   error, its text (other than `true`) becoming the status message, as Jaeger shows Zipkin
//!   errors; `w3c.tracestate` is the trace state; `otel.scope.*` / `otel.library.*` the scope;
//! - annotations are events; an annotation `name|{json attributes}|dropped` (how the
//!   collector's Zipkin exporter writes events) gets its attributes back;
//! - `debug` sets Jaeger's debug flag (2) next to sampled (1);
//! - a `shared` server span (B3 joined span: same id as its client span) gets its own id,
//!   derived from the shared one, with the client span as parent, as Jaeger's span-id
//!   uniquifier does; spans of the same batch and service that name the shared id as parent
//!   are moved under the server span.

use std::collections::HashMap;
use std::sync::Arc;

use spoor_core::{
    AnyValue, Event, KeyValue, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
};

use crate::model::{Endpoint, Kind, ZipkinSpan};
use crate::Decoded;

const TAG_SPAN_KIND: &str = "span.kind";
const TAG_ERROR: &str = "error";
const TAG_STATUS_CODE: &str = "otel.status_code";
const TAG_STATUS_DESC: &str = "otel.status_description";
const TAG_TRACE_STATE: &str = "w3c.tracestate";
const TAG_SCOPE_NAME: &str = "otel.scope.name";
const TAG_SCOPE_VERSION: &str = "otel.scope.version";
const TAG_LIBRARY_NAME: &str = "otel.library.name";
const TAG_LIBRARY_VERSION: &str = "otel.library.version";

/// Attribute names of the endpoints (semantic conventions 1.12, as the translator uses).
pub const NET_HOST_IP: &str = "net.host.ip";
/// Local endpoint port.
pub const NET_HOST_PORT: &str = "net.host.port";
/// Remote endpoint service name.
pub const PEER_SERVICE: &str = "peer.service";
/// Remote endpoint address.
pub const NET_PEER_IP: &str = "net.peer.ip";
/// Remote endpoint port.
pub const NET_PEER_PORT: &str = "net.peer.port";

/// W3C sampled flag: Zipkin only reports sampled spans.
const FLAG_SAMPLED: u32 = 1;
/// Jaeger's debug flag.
const FLAG_DEBUG: u32 = 2;

/// Shares one `Arc` per distinct resource / scope within a batch.
#[derive(Default)]
struct Shared {
    resources: HashMap<String, Arc<Resource>>,
    scopes: Vec<Arc<Scope>>,
}

impl Shared {
    fn resource(&mut self, service: &str) -> Arc<Resource> {
        self.resources
            .entry(service.to_string())
            .or_insert_with(|| {
                Arc::new(Resource {
                    service_name: service.to_string(),
                    ..Default::default()
                })
            })
            .clone()
    }

    fn scope(&mut self, name: String, version: String) -> Arc<Scope> {
        if let Some(s) = self
            .scopes
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
        self.scopes.push(s.clone());
        s
    }
}

/// The id a shared server span gets: a fixed mix of the shared id (never zero, never the id
/// itself), so every copy of the span maps to the same id wherever it is received.
pub fn unshared_id(id: SpanId) -> SpanId {
    // splitmix64 finaliser over the id and a constant
    let mut z = id.0 ^ 0x5a49_504b_494e_5352;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    if z == 0 || z == id.0 {
        z = z.wrapping_add(1).max(1);
    }
    SpanId(z)
}

fn us_to_ns(us: u64, what: &str) -> Result<u64, String> {
    us.checked_mul(1000)
        .ok_or_else(|| format!("{what} {us} microseconds is out of range"))
}

fn kind_of(kind: Option<Kind>, tags: &mut Vec<(String, AnyValue)>) -> SpanKind {
    match kind {
        Some(Kind::Client) => SpanKind::Client,
        Some(Kind::Server) => SpanKind::Server,
        Some(Kind::Producer) => SpanKind::Producer,
        Some(Kind::Consumer) => SpanKind::Consumer,
        None => match take(tags, TAG_SPAN_KIND) {
            Some(AnyValue::Str(s)) if s.eq_ignore_ascii_case("internal") => SpanKind::Internal,
            Some(other) => {
                // not a kind the translator knows: keep the tag
                tags.push((TAG_SPAN_KIND.to_string(), other));
                SpanKind::Unspecified
            }
            None => SpanKind::Unspecified,
        },
    }
}

/// Removes the last tag named `key` (and any earlier duplicates) and returns its value.
fn take(tags: &mut Vec<(String, AnyValue)>, key: &str) -> Option<AnyValue> {
    let mut found = None;
    tags.retain_mut(|(k, v)| {
        if k == key {
            found = Some(std::mem::take(v));
            false
        } else {
            true
        }
    });
    found
}

fn take_text(tags: &mut Vec<(String, AnyValue)>, key: &str) -> Option<String> {
    take(tags, key).map(|v| crate::model::tag_text(&v))
}

fn status_of(tags: &mut Vec<(String, AnyValue)>) -> Status {
    let mut status = Status::default();
    if let Some(code) = take_text(tags, TAG_STATUS_CODE) {
        status.code = match code.to_ascii_uppercase().as_str() {
            "OK" | "STATUS_CODE_OK" => StatusCode::Ok,
            "ERROR" | "STATUS_CODE_ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        };
        if let Some(desc) = take_text(tags, TAG_STATUS_DESC) {
            status.message = desc;
        }
    }
    if let Some(err) = take(tags, TAG_ERROR) {
        let text = crate::model::tag_text(&err);
        if matches!(err, AnyValue::Bool(false)) || text.eq_ignore_ascii_case("false") {
            // an explicit error=false is information, not a failure
            tags.push((TAG_ERROR.to_string(), err));
        } else {
            status.code = StatusCode::Error;
            if status.message.is_empty() && !text.is_empty() && !text.eq_ignore_ascii_case("true") {
                status.message = text;
            }
        }
    }
    status
}

/// Splits `name|{json}|dropped` (the collector's encoding of an event) or returns the value as
/// the name.
fn event_of(time_unix_nanos: u64, value: &str) -> Event {
    let plain = || Event {
        time_unix_nanos,
        name: value.to_string(),
        ..Default::default()
    };
    let (Some(first), Some(last)) = (value.find('|'), value.rfind('|')) else {
        return plain();
    };
    if first == last {
        return plain();
    }
    let (name, json, dropped) = (&value[..first], &value[first + 1..last], &value[last + 1..]);
    let Ok(dropped) = dropped.parse::<u32>() else {
        return plain();
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return plain();
    };
    Event {
        time_unix_nanos,
        name: name.to_string(),
        attributes: map
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, json_value(v)))
            .collect(),
        dropped_attributes_count: dropped,
    }
}

/// A JSON value as a typed attribute value.
pub(crate) fn json_value(v: serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    match v {
        J::String(s) => AnyValue::Str(s),
        J::Bool(b) => AnyValue::Bool(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or_default()),
        },
        J::Null => AnyValue::Str(String::new()),
        J::Array(items) => AnyValue::Array(items.into_iter().map(json_value).collect()),
        J::Object(m) => AnyValue::Map(
            m.into_iter()
                .map(|(k, v)| KeyValue::new(k, json_value(v)))
                .collect(),
        ),
    }
}

fn has(attrs: &[KeyValue], key: &str) -> bool {
    attrs.iter().any(|kv| kv.key == key)
}

fn endpoint_attrs(attrs: &mut Vec<KeyValue>, ep: &Endpoint, local: bool) {
    let mut put = |key: &str, value: AnyValue| {
        if !has(attrs, key) {
            attrs.push(KeyValue::new(key, value));
        }
    };
    if !local && !ep.service_name.is_empty() {
        put(PEER_SERVICE, AnyValue::Str(ep.service_name.clone()));
    }
    let ip_key = if local { NET_HOST_IP } else { NET_PEER_IP };
    // IPv6 wins when both are given, as in the translator (it writes IPv4, then IPv6)
    if let Some(ip) = ep.ipv6.as_ref().or(ep.ipv4.as_ref()) {
        put(ip_key, AnyValue::Str(ip.clone()));
    }
    if ep.port > 0 {
        let port_key = if local { NET_HOST_PORT } else { NET_PEER_PORT };
        put(port_key, AnyValue::Int(i64::from(ep.port)));
    }
}

fn convert_one(z: ZipkinSpan, shared: &mut Shared) -> Result<(Span, bool), String> {
    if z.trace_id.is_zero() {
        return Err("traceId is zero".to_string());
    }
    if z.id.is_zero() {
        return Err("id is zero".to_string());
    }
    let start = us_to_ns(z.timestamp_us.unwrap_or(0), "timestamp")?;
    let duration = us_to_ns(z.duration_us.unwrap_or(0), "duration")?;
    let duration = i64::try_from(duration)
        .map_err(|_| format!("duration {} microseconds is out of range", duration / 1000))?;
    let mut tags = z.tags;
    let kind = kind_of(z.kind, &mut tags);
    let status = status_of(&mut tags);
    let trace_state = take_text(&mut tags, TAG_TRACE_STATE).unwrap_or_default();
    let scope_name = take_text(&mut tags, TAG_SCOPE_NAME);
    let scope_version = take_text(&mut tags, TAG_SCOPE_VERSION);
    let lib_name = take_text(&mut tags, TAG_LIBRARY_NAME);
    let lib_version = take_text(&mut tags, TAG_LIBRARY_VERSION);
    let scope = shared.scope(
        scope_name.or(lib_name).unwrap_or_default(),
        scope_version.or(lib_version).unwrap_or_default(),
    );
    let mut attributes: Vec<KeyValue> =
        tags.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
    if let Some(ep) = &z.local_endpoint {
        endpoint_attrs(&mut attributes, ep, true);
    }
    if let Some(ep) = &z.remote_endpoint {
        endpoint_attrs(&mut attributes, ep, false);
    }
    let mut events = Vec::with_capacity(z.annotations.len());
    for a in &z.annotations {
        events.push(event_of(
            us_to_ns(a.timestamp_us, "annotation timestamp")?,
            &a.value,
        ));
    }
    let service = z
        .local_endpoint
        .as_ref()
        .map(|e| e.service_name.as_str())
        .unwrap_or("");
    let unshare = z.shared && z.kind != Some(Kind::Client);
    let span = Span {
        trace_id: z.trace_id,
        span_id: z.id,
        parent_span_id: z.parent_id.filter(|p| !p.is_zero()),
        trace_state,
        flags: FLAG_SAMPLED | if z.debug { FLAG_DEBUG } else { 0 },
        name: z.name,
        kind,
        start_unix_nanos: start,
        duration_nanos: duration,
        status,
        attributes,
        events,
        resource: shared.resource(service),
        scope,
        ..Default::default()
    };
    Ok((span, unshare))
}

/// Converts a batch of Zipkin spans. Spans that cannot be represented (zero ids, times out of
/// range) are counted as rejected, with `problems` naming them by `labels` (their position in
/// the request).
pub fn to_spans(spans: Vec<(String, ZipkinSpan)>) -> Decoded {
    let mut shared = Shared::default();
    let mut out = Decoded::default();
    // (shared id, new id, service) of every unshared server span
    let mut moved: Vec<(SpanId, SpanId, Arc<Resource>)> = Vec::new();
    for (label, z) in spans {
        match convert_one(z, &mut shared) {
            Ok((mut span, unshare)) => {
                if unshare {
                    let old = span.span_id;
                    span.span_id = unshared_id(old);
                    span.parent_span_id = Some(old);
                    moved.push((old, span.span_id, span.resource.clone()));
                }
                out.spans.push(span);
            }
            Err(problem) => {
                out.rejected += 1;
                out.problems.push(format!("{label}: {problem}"));
            }
        }
    }
    if !moved.is_empty() {
        for span in &mut out.spans {
            let Some(parent) = span.parent_span_id else {
                continue;
            };
            if let Some((_, new, _)) = moved.iter().find(|(old, new, res)| {
                *old == parent && *new != span.span_id && Arc::ptr_eq(res, &span.resource)
            }) {
                span.parent_span_id = Some(*new);
            }
        }
    }
    out
}

fn endpoint_from_attrs(attrs: &mut Vec<KeyValue>, local: bool) -> Option<Endpoint> {
    let mut ep = Endpoint::default();
    let mut take_attr = |key: &str| -> Option<AnyValue> {
        let i = attrs.iter().position(|kv| kv.key == key)?;
        Some(attrs.remove(i).value)
    };
    if !local {
        if let Some(AnyValue::Str(s)) = take_attr(PEER_SERVICE) {
            ep.service_name = s;
        }
    }
    let (ip_key, port_key) = if local {
        (NET_HOST_IP, NET_HOST_PORT)
    } else {
        (NET_PEER_IP, NET_PEER_PORT)
    };
    if let Some(AnyValue::Str(ip)) = take_attr(ip_key) {
        if ip.contains(':') {
            ep.ipv6 = Some(ip);
        } else {
            ep.ipv4 = Some(ip);
        }
    }
    if let Some(AnyValue::Int(p)) = take_attr(port_key) {
        ep.port = u16::try_from(p).unwrap_or(0);
    }
    (!ep.is_empty()).then_some(ep)
}

/// An event as an annotation value: the name alone, or `name|{json attributes}|dropped` as the
/// collector's Zipkin exporter writes events with attributes.
fn annotation_value(e: &Event) -> String {
    if e.attributes.is_empty() && e.dropped_attributes_count == 0 {
        return e.name.clone();
    }
    let attrs = crate::model::tag_text(&AnyValue::Map(e.attributes.clone()));
    format!("{}|{attrs}|{}", e.name, e.dropped_attributes_count)
}

/// The Zipkin form of a span (for the encoders: tests and the load generator). The inverse of
/// [`to_spans`] for what Zipkin can carry; attribute values become text.
pub fn from_span(span: &Span) -> ZipkinSpan {
    let mut attrs = span.attributes.clone();
    let mut local = endpoint_from_attrs(&mut attrs, true).unwrap_or_default();
    local.service_name = span.resource.service_name.clone();
    let remote = endpoint_from_attrs(&mut attrs, false);
    let mut tags: Vec<(String, AnyValue)> =
        attrs.into_iter().map(|kv| (kv.key, kv.value)).collect();
    let text = |s: &str| AnyValue::Str(s.to_string());
    if span.kind == SpanKind::Internal {
        tags.push((TAG_SPAN_KIND.into(), text("internal")));
    }
    match span.status.code {
        StatusCode::Ok => tags.push((TAG_STATUS_CODE.into(), text("OK"))),
        StatusCode::Error => tags.push((TAG_ERROR.into(), text(&span.status.message))),
        StatusCode::Unset => {}
    }
    if span.status.code == StatusCode::Ok && !span.status.message.is_empty() {
        tags.push((TAG_STATUS_DESC.into(), text(&span.status.message)));
    }
    if !span.trace_state.is_empty() {
        tags.push((TAG_TRACE_STATE.into(), text(&span.trace_state)));
    }
    if !span.scope.name.is_empty() {
        tags.push((TAG_SCOPE_NAME.into(), text(&span.scope.name)));
    }
    if !span.scope.version.is_empty() {
        tags.push((TAG_SCOPE_VERSION.into(), text(&span.scope.version)));
    }
    let tags = tags
        .into_iter()
        .map(|(k, v)| (k, AnyValue::Str(crate::model::tag_text(&v))))
        .collect();
    ZipkinSpan {
        trace_id: span.trace_id,
        trace_id_128: span.trace_id.high() != 0,
        parent_id: span.parent_span_id,
        id: span.span_id,
        kind: match span.kind {
            SpanKind::Client => Some(Kind::Client),
            SpanKind::Server => Some(Kind::Server),
            SpanKind::Producer => Some(Kind::Producer),
            SpanKind::Consumer => Some(Kind::Consumer),
            SpanKind::Internal | SpanKind::Unspecified => None,
        },
        name: span.name.clone(),
        timestamp_us: Some(span.start_unix_nanos / 1000),
        duration_us: Some(span.duration_nanos.max(0) as u64 / 1000),
        local_endpoint: Some(local),
        remote_endpoint: remote,
        annotations: span
            .events
            .iter()
            .map(|e| crate::model::Annotation {
                timestamp_us: e.time_unix_nanos / 1000,
                value: annotation_value(e),
            })
            .collect(),
        tags,
        debug: span.flags & FLAG_DEBUG != 0,
        shared: false,
    }
}

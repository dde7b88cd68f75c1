//! Spoor's span model rendered as the Jaeger UI's trace JSON (Jaeger's `uimodel`), with the tags
//! the OpenTelemetry-to-Jaeger translator adds for OTLP spans.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use spoor_core::{AnyValue, Resource, Span, SpanId, SpanKind, StatusCode, Trace, TraceId};

use crate::json::{write_go_float, write_go_string, write_i64, write_u64};

/// Largest integer a JavaScript number holds exactly; Jaeger sends larger ones as strings.
const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A trace id as Jaeger prints it: 16 hex digits when the high half is zero, else 32.
pub fn trace_id_str(id: TraceId) -> String {
    let mut s = String::with_capacity(32);
    push_trace_id(id, &mut s);
    s
}

/// A span id as Jaeger prints it: 16 hex digits.
pub fn span_id_str(id: SpanId) -> String {
    id.to_hex().to_string()
}

fn push_trace_id(id: TraceId, out: &mut String) {
    let hex = id.to_hex();
    let hex = hex.as_str();
    out.push_str(if id.high() == 0 { &hex[16..] } else { hex });
}

/// Appends `"<hex>"`.
fn write_trace_id(id: TraceId, out: &mut String) {
    out.push('"');
    push_trace_id(id, out);
    out.push('"');
}

/// Appends `"<hex>"`.
fn write_span_id(id: SpanId, out: &mut String) {
    out.push('"');
    out.push_str(id.to_hex().as_str());
    out.push('"');
}

/// Appends one tag `{"key","type","value"}` as Jaeger's UI JSON shows it.
pub fn write_tag(key: &str, value: &AnyValue, out: &mut String) {
    out.push_str("{\"key\":");
    write_go_string(key, out);
    match value {
        AnyValue::Str(s) => write_str_tag_value(s, out),
        AnyValue::Bool(b) => {
            out.push_str(if *b {
                ",\"type\":\"bool\",\"value\":true}"
            } else {
                ",\"type\":\"bool\",\"value\":false}"
            });
            return;
        }
        AnyValue::Int(i) if !(-JS_MAX_SAFE_INTEGER..=JS_MAX_SAFE_INTEGER).contains(i) => {
            out.push_str(",\"type\":\"int64\",\"value\":\"");
            write_i64(*i, out);
            out.push('"');
        }
        AnyValue::Int(i) => {
            out.push_str(",\"type\":\"int64\",\"value\":");
            write_i64(*i, out);
        }
        AnyValue::Double(d) => {
            out.push_str(",\"type\":\"float64\",\"value\":");
            write_go_float(*d, out);
        }
        AnyValue::Bytes(b) => {
            out.push_str(",\"type\":\"binary\",\"value\":\"");
            // Base64 needs no JSON escaping.
            base64::engine::general_purpose::STANDARD.encode_string(b, out);
            out.push('"');
        }
        AnyValue::Array(_) | AnyValue::Map(_) => {
            let mut raw = String::new();
            write_raw_value(value, &mut raw);
            write_str_tag_value(&raw, out);
        }
    }
    out.push('}');
}

/// Appends `,"type":"string","value":"<s>"` (without the closing brace).
fn write_str_tag_value(s: &str, out: &mut String) {
    out.push_str(",\"type\":\"string\",\"value\":");
    write_go_string(s, out);
}

/// A tag whose value is a string, without building an [`AnyValue`].
fn write_str_tag(key: &str, value: &str, out: &mut String) {
    out.push_str("{\"key\":");
    write_go_string(key, out);
    write_str_tag_value(value, out);
    out.push('}');
}

/// The plain JSON form of a value, as pdata's `AsString` renders arrays and maps (map keys
/// sorted, the last of duplicate keys kept, bytes base64).
fn write_raw_value(value: &AnyValue, out: &mut String) {
    match value {
        AnyValue::Str(s) => write_go_string(s, out),
        AnyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AnyValue::Int(i) => write_i64(*i, out),
        AnyValue::Double(d) => write_go_float(*d, out),
        AnyValue::Bytes(b) => {
            out.push('"');
            base64::engine::general_purpose::STANDARD.encode_string(b, out);
            out.push('"');
        }
        AnyValue::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_raw_value(v, out);
            }
            out.push(']');
        }
        AnyValue::Map(kvs) => {
            let sorted: BTreeMap<&str, &AnyValue> =
                kvs.iter().map(|kv| (kv.key.as_str(), &kv.value)).collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(k, out);
                out.push(':');
                write_raw_value(v, out);
            }
            out.push('}');
        }
    }
}

/// Writes a comma before every item but the first.
struct Sep(bool);

impl Sep {
    fn new() -> Sep {
        Sep(true)
    }

    fn next(&mut self, out: &mut String) {
        if self.0 {
            self.0 = false;
        } else {
            out.push(',');
        }
    }
}

/// The span's tags in the translator's order: scope, attributes, `span.kind`,
/// `otel.status_code`, `error`, `otel.status_description`, `w3c.tracestate`.
fn write_span_tags(span: &Span, out: &mut String) {
    let mut sep = Sep::new();
    out.push('[');
    if !span.scope.name.is_empty() {
        sep.next(out);
        write_str_tag("otel.scope.name", &span.scope.name, out);
    }
    if !span.scope.version.is_empty() {
        sep.next(out);
        write_str_tag("otel.scope.version", &span.scope.version, out);
    }
    for kv in &span.attributes {
        sep.next(out);
        write_tag(&kv.key, &kv.value, out);
    }
    if span.kind != SpanKind::Unspecified {
        sep.next(out);
        write_str_tag("span.kind", span.kind.as_jaeger_str(), out);
    }
    match span.status.code {
        StatusCode::Ok => {
            sep.next(out);
            write_str_tag("otel.status_code", "OK", out);
        }
        StatusCode::Error => {
            sep.next(out);
            write_str_tag("otel.status_code", "ERROR", out);
            out.push(',');
            write_tag("error", &AnyValue::Bool(true), out);
        }
        StatusCode::Unset => {}
    }
    if !span.status.message.is_empty() {
        sep.next(out);
        write_str_tag("otel.status_description", &span.status.message, out);
    }
    if !span.trace_state.is_empty() {
        sep.next(out);
        write_str_tag("w3c.tracestate", &span.trace_state, out);
    }
    out.push(']');
}

/// Parent first as `CHILD_OF`, then links as `FOLLOWS_FROM` (or `CHILD_OF` when the link's
/// `opentracing.ref_type` says `child_of`); a link to the parent only retypes the parent.
fn write_references(span: &Span, trace_id: &QuotedTraceId, out: &mut String) {
    fn link_ref_type(link: &spoor_core::Link) -> &'static str {
        match spoor_core::find_attr(&link.attributes, "opentracing.ref_type") {
            Some(AnyValue::Str(s)) if s == "child_of" => "CHILD_OF",
            _ => "FOLLOWS_FROM",
        }
    }
    let write_ref = |ref_type: &str, tid: TraceId, sid: SpanId, out: &mut String| {
        out.push_str("{\"refType\":\"");
        out.push_str(ref_type);
        out.push_str("\",\"traceID\":");
        trace_id.write(tid, out);
        out.push_str(",\"spanID\":");
        write_span_id(sid, out);
        out.push('}');
    };
    let parent = span.parent_span_id.filter(|p| !p.is_zero());
    let is_parent =
        |link: &spoor_core::Link| link.trace_id == span.trace_id && Some(link.span_id) == parent;
    let mut sep = Sep::new();
    out.push('[');
    if let Some(p) = parent {
        // The last link to the parent decides its type.
        let ref_type = span
            .links
            .iter()
            .rev()
            .find(|l| is_parent(l))
            .map_or("CHILD_OF", link_ref_type);
        sep.next(out);
        write_ref(ref_type, span.trace_id, p, out);
    }
    for link in &span.links {
        if parent.is_some() && is_parent(link) {
            continue;
        }
        sep.next(out);
        write_ref(link_ref_type(link), link.trace_id, link.span_id, out);
    }
    out.push(']');
}

fn write_logs(span: &Span, out: &mut String) {
    out.push('[');
    for (i, e) in span.events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"timestamp\":");
        write_u64(e.time_unix_nanos / 1000, out);
        out.push_str(",\"fields\":[");
        let mut sep = Sep::new();
        if !e.name.is_empty() && spoor_core::find_attr(&e.attributes, "event").is_none() {
            sep.next(out);
            write_str_tag("event", &e.name, out);
        }
        for kv in &e.attributes {
            sep.next(out);
            write_tag(&kv.key, &kv.value, out);
        }
        out.push_str("]}");
    }
    out.push(']');
}

/// `null` for no strings (a Go nil slice), else the array.
fn write_strs_or_null(items: &[String], out: &mut String) {
    if items.is_empty() {
        out.push_str("null");
        return;
    }
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_string(s, out);
    }
    out.push(']');
}

/// A trace id with its rendering, `"<hex>"`, made once per trace instead of once per span.
struct QuotedTraceId {
    id: TraceId,
    quoted: String,
}

impl QuotedTraceId {
    fn new(id: TraceId) -> QuotedTraceId {
        let mut quoted = String::with_capacity(34);
        write_trace_id(id, &mut quoted);
        QuotedTraceId { id, quoted }
    }

    fn write(&self, id: TraceId, out: &mut String) {
        if id == self.id {
            out.push_str(&self.quoted);
        } else {
            write_trace_id(id, out);
        }
    }
}

/// One span of the UI JSON; its process is `p<process_number>`.
fn write_span(span: &Span, process_number: u32, trace_id: &QuotedTraceId, out: &mut String) {
    out.push_str("{\"traceID\":");
    trace_id.write(span.trace_id, out);
    out.push_str(",\"spanID\":");
    write_span_id(span.span_id, out);
    // Jaeger's flags are the W3C trace flags byte; OTLP's extra bits are not Jaeger's.
    let flags = span.flags & 0xff;
    if flags != 0 {
        out.push_str(",\"flags\":");
        write_u64(u64::from(flags), out);
    }
    out.push_str(",\"operationName\":");
    write_go_string(&span.name, out);
    out.push_str(",\"references\":");
    write_references(span, trace_id, out);
    out.push_str(",\"startTime\":");
    write_u64(span.start_unix_nanos / 1000, out);
    out.push_str(",\"duration\":");
    write_u64(span.duration_nanos.max(0) as u64 / 1000, out);
    out.push_str(",\"tags\":");
    write_span_tags(span, out);
    out.push_str(",\"logs\":");
    write_logs(span, out);
    out.push_str(",\"processID\":\"p");
    write_u64(u64::from(process_number), out);
    out.push_str("\",\"warnings\":");
    write_strs_or_null(&span.warnings, out);
    out.push('}');
}

/// A generous guess at the rendered size of a span, so that one buffer is allocated per
/// response instead of being regrown (each regrowth copies everything written so far, while
/// reserved but unwritten bytes of a large buffer cost only address space).
fn span_size_hint(span: &Span) -> usize {
    fn value_len(v: &AnyValue) -> usize {
        match v {
            AnyValue::Str(s) => s.len() + s.len() / 4,
            AnyValue::Bytes(b) => b.len() * 4 / 3 + 4,
            AnyValue::Array(a) => a.iter().map(value_len).sum::<usize>() * 2 + 8,
            AnyValue::Map(kvs) => {
                kvs.iter()
                    .map(|kv| kv.key.len() + value_len(&kv.value))
                    .sum::<usize>()
                    * 2
                    + 8
            }
            _ => 24,
        }
    }
    // `{"key":"","type":"string","value":""}`
    const TAG: usize = 40;
    // `{"refType":"FOLLOWS_FROM","traceID":"<32>","spanID":"<16>"}`
    const REF: usize = 100;
    let tags = |kvs: &[spoor_core::KeyValue]| {
        kvs.iter()
            .map(|kv| TAG + kv.key.len() + value_len(&kv.value))
            .sum::<usize>()
    };
    let optional = |s: &str, key: usize| {
        if s.is_empty() {
            0
        } else {
            TAG + key + s.len() * 5 / 4
        }
    };
    // The fields every span has, with 32-digit ids, 17-digit times and a 3-digit process id.
    let fixed = 260;
    // `span.kind`, `otel.status_code` and `error`, and a clock-skew warning that may be added
    // after this guess.
    let generated = 3 * (TAG + 20) + 80;
    let size = fixed
        + generated
        + span.name.len() * 5 / 4
        + optional(&span.scope.name, 15)
        + optional(&span.scope.version, 18)
        + optional(&span.trace_state, 14)
        + optional(&span.status.message, 23)
        + (span.links.len() + 1) * REF
        + tags(&span.attributes)
        + span
            .events
            .iter()
            .map(|e| 32 + TAG + e.name.len() * 5 / 4 + tags(&e.attributes))
            .sum::<usize>()
        + span
            .warnings
            .iter()
            .map(|w| w.len() * 5 / 4 + 3)
            .sum::<usize>();
    size + size / 8
}

/// One distinct process of a trace: its service name and its rendered tags.
struct Process<'a> {
    service: &'a str,
    tags: String,
}

/// Appends the process tags (all resource attributes but `service.name`) as a JSON array.
fn write_process_tags(resource: &Resource, out: &mut String) {
    let mut sep = Sep::new();
    out.push('[');
    for kv in resource
        .attributes
        .iter()
        .filter(|kv| kv.key != "service.name")
    {
        sep.next(out);
        write_tag(&kv.key, &kv.value, out);
    }
    out.push(']');
}

/// The distinct processes of a trace, numbered from 1 in order of first use, and the process
/// number of every span. Processes are the same when their service names and rendered tags are.
fn number_processes(spans: &[Span]) -> (Vec<Process<'_>>, Vec<u32>) {
    let mut procs: Vec<Process<'_>> = Vec::new();
    // Resources already seen (spans of one batch share one `Arc`), with their process number.
    let mut seen: Vec<(*const Resource, u32)> = Vec::new();
    let mut numbers = Vec::with_capacity(spans.len());
    let mut last: Option<(*const Resource, u32)> = None;
    let mut tags = String::new();
    for span in spans {
        let ptr = Arc::as_ptr(&span.resource);
        let n = match last {
            Some((p, n)) if p == ptr => n,
            _ => {
                let n = match seen.iter().find(|(p, _)| *p == ptr) {
                    Some(&(_, n)) => n,
                    None => {
                        tags.clear();
                        write_process_tags(&span.resource, &mut tags);
                        let service = span.resource.service_name.as_str();
                        let n = match procs
                            .iter()
                            .position(|p| p.service == service && p.tags == tags)
                        {
                            Some(i) => i as u32 + 1,
                            None => {
                                procs.push(Process {
                                    service,
                                    tags: tags.clone(),
                                });
                                procs.len() as u32
                            }
                        };
                        seen.push((ptr, n));
                        n
                    }
                };
                last = Some((ptr, n));
                n
            }
        };
        numbers.push(n);
    }
    (procs, numbers)
}

/// A whole trace in the UI JSON, ready to be written. Spans are rendered in the order given;
/// processes are deduplicated by service name and tags and numbered `p1`, `p2`, … in order of
/// first use.
#[derive(Debug, Clone, Copy)]
pub struct TraceJson<'a> {
    trace: &'a Trace,
    warnings: &'a [String],
}

/// The UI JSON of a whole trace with its trace-level warnings (see [`TraceJson`]).
pub fn trace_json<'a>(trace: &'a Trace, warnings: &'a [String]) -> TraceJson<'a> {
    TraceJson { trace, warnings }
}

impl TraceJson<'_> {
    /// A generous guess at the rendered size in bytes.
    pub fn size_hint(&self) -> usize {
        200 + self.trace.spans.iter().map(span_size_hint).sum::<usize>()
    }

    /// Renders the trace into a new string sized by [`TraceJson::size_hint`].
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.size_hint());
        self.write(&mut out);
        out
    }

    /// Appends the trace to `out`.
    pub fn write(&self, out: &mut String) {
        let spans = &self.trace.spans;
        let (procs, numbers) = number_processes(spans);
        let trace_id =
            QuotedTraceId::new(spans.first().map_or(self.trace.trace_id, |s| s.trace_id));
        out.push_str("{\"traceID\":");
        out.push_str(&trace_id.quoted);
        out.push_str(",\"spans\":[");
        for (i, (span, n)) in spans.iter().zip(&numbers).enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_span(span, *n, &trace_id, out);
        }
        // Go marshals map keys sorted as strings (p1, p10, p2, …).
        let mut keys: Vec<(String, &Process<'_>)> = procs
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("p{}", i + 1), p))
            .collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.push_str("],\"processes\":{");
        for (i, (key, p)) in keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(key);
            out.push_str("\":{\"serviceName\":");
            write_go_string(p.service, out);
            out.push_str(",\"tags\":");
            out.push_str(&p.tags);
            out.push('}');
        }
        out.push_str("},\"warnings\":");
        write_strs_or_null(self.warnings, out);
        out.push('}');
    }
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
    fn processes_numbered_by_first_use_and_deduplicated_by_content() {
        let resource = |service: &str, host: &str| {
            Arc::new(Resource {
                service_name: service.into(),
                attributes: vec![
                    KeyValue::string("service.name", service),
                    KeyValue::string("host.name", host),
                ],
                dropped_attributes_count: 0,
            })
        };
        // Twelve processes; then equal content in new `Arc`s, and a repeat of the first `Arc`.
        let mut resources: Vec<Arc<Resource>> =
            (0..12).map(|i| resource("svc", &format!("h{i}"))).collect();
        resources.push(resource("svc", "h3"));
        resources.push(resource("other", "h3"));
        resources.push(Arc::clone(&resources[0]));
        let spans: Vec<Span> = resources
            .into_iter()
            .enumerate()
            .map(|(i, resource)| Span {
                trace_id: TraceId(7),
                span_id: SpanId(i as u64 + 1),
                resource,
                ..Span::default()
            })
            .collect();
        let trace = Trace {
            trace_id: TraceId(7),
            spans,
        };
        let json: serde_json::Value =
            serde_json::from_str(&trace_json(&trace, &[]).render()).expect("valid JSON");
        let ids: Vec<&str> = json["spans"]
            .as_array()
            .expect("spans")
            .iter()
            .map(|s| s["processID"].as_str().expect("processID"))
            .collect();
        assert_eq!(
            ids,
            [
                "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11", "p12", "p4",
                "p13", "p1"
            ]
        );
        let rendered = trace_json(&trace, &[]).render();
        let processes = &rendered[rendered.find("\"processes\":").expect("processes")..];
        assert!(
            processes.starts_with(
                r#""processes":{"p1":{"serviceName":"svc","tags":[{"key":"host.name","type":"string","value":"h0"}]},"p10":"#
            ),
            "{processes}"
        );
        assert!(processes.contains(r#""p13":{"serviceName":"other","#));
        assert!(
            processes.find("\"p13\"") < processes.find("\"p2\""),
            "keys sorted as strings"
        );
    }

    #[test]
    fn size_hint_bounds_the_rendering() {
        let resource = Arc::new(Resource {
            service_name: "frontend".into(),
            attributes: vec![KeyValue::string("host.name", "web-1")],
            dropped_attributes_count: 0,
        });
        let scope = Arc::new(spoor_core::Scope {
            name: "io.opentelemetry.http".into(),
            version: "1.2.0".into(),
            ..Default::default()
        });
        let spans: Vec<Span> = (0..200u64)
            .map(|i| Span {
                trace_id: TraceId::from_high_low(0x0af7651916cd43dd, 0x8448eb211c80319c),
                span_id: SpanId(u64::MAX - i),
                parent_span_id: (i > 0).then(|| SpanId(u64::MAX - i / 3)),
                flags: 1,
                name: "GET /api/users/{id}".into(),
                kind: SpanKind::Client,
                start_unix_nanos: 1_795_600_800_123_456_789 + i * 1000,
                duration_nanos: 123_456_789_000,
                status: spoor_core::Status {
                    code: if i % 5 == 0 {
                        StatusCode::Error
                    } else {
                        StatusCode::Ok
                    },
                    message: if i % 5 == 0 {
                        "boom <x>".into()
                    } else {
                        String::new()
                    },
                },
                attributes: vec![
                    KeyValue::string("http.method", "GET"),
                    KeyValue::string("http.url", "https://example.com/a?b=<c>&d=\"e\""),
                    KeyValue::new("http.status_code", AnyValue::Int(200)),
                    KeyValue::new("big", AnyValue::Int(i64::MIN)),
                    KeyValue::new("ratio", AnyValue::Double(-1.234_567_890_123e-300)),
                    KeyValue::new("net.peer.port", AnyValue::Int(8080)),
                ],
                events: (0..i % 3)
                    .map(|k| spoor_core::Event {
                        time_unix_nanos: 1_795_600_800_123_456_789 + k,
                        name: "exception".into(),
                        attributes: vec![KeyValue::string("exception.message", "\u{1}\u{2}\u{3}")],
                        ..Default::default()
                    })
                    .collect(),
                links: (0..i % 2)
                    .map(|_| spoor_core::Link {
                        trace_id: TraceId::from_high_low(1, 2),
                        span_id: SpanId(3),
                        ..Default::default()
                    })
                    .collect(),
                warnings: vec!["This span's timestamps were adjusted by 1.234567ms".into()],
                resource: Arc::clone(&resource),
                scope: Arc::clone(&scope),
                ..Span::default()
            })
            .collect();
        let trace = Trace {
            trace_id: spans[0].trace_id,
            spans,
        };
        let json = trace_json(&trace, &[]);
        let (hint, len) = (json.size_hint(), json.render().len());
        assert!(hint >= len, "hint {hint} < {len} bytes rendered");
        assert!(
            hint <= 2 * len,
            "hint {hint} far above {len} bytes rendered"
        );
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
            let mut got = String::new();
            write_tag("k", &v, &mut got);
            assert_eq!(got, want, "{v:?}");
        }
    }
}

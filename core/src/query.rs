//! Trace search parameters and the one definition of "does this trace match", shared by every
//! storage backend (so memory, sled and the scale-out store answer the same query the same way)
//! and by the browser module.
//!
//! Semantics follow Jaeger: a trace matches when at least one of its spans satisfies *all*
//! criteria at once (service, operation, span kind, every tag, duration bounds, start-time
//! window). Tags are looked up in the span's attributes, its resource's attributes, and its
//! events' attributes, and compared in text form ([`AnyValue::matches_text`]).

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::model::{KeyValue, Span, SpanKind, StatusCode, Trace};

/// What to search for. Times are nanoseconds since the epoch, durations nanoseconds.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct TraceQuery {
    /// Service name; `None` matches any service (the API layer requires one where Jaeger does).
    pub service: Option<String>,
    /// Operation (span) name.
    pub operation: Option<String>,
    /// Span kind of the matching span.
    pub span_kind: Option<SpanKind>,
    /// Tags that must all be present on the matching span (key, value in text form).
    pub tags: Vec<(String, String)>,
    /// Earliest span start, inclusive.
    pub start_min_nanos: u64,
    /// Latest span start, inclusive (`u64::MAX` for no bound).
    pub start_max_nanos: u64,
    /// Minimum span duration, inclusive.
    pub duration_min_nanos: Option<u64>,
    /// Maximum span duration, inclusive.
    pub duration_max_nanos: Option<u64>,
    /// Maximum number of traces to return (0 means the backend's default, 20).
    pub limit: usize,
}

/// Default number of traces returned when a query gives no limit.
pub const DEFAULT_LIMIT: usize = 20;

impl TraceQuery {
    /// A query for any trace in `[start_min, start_max]`.
    pub fn between(start_min_nanos: u64, start_max_nanos: u64) -> Self {
        TraceQuery {
            start_min_nanos,
            start_max_nanos,
            ..Default::default()
        }
    }

    /// The limit to apply, with the default substituted for 0.
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 {
            DEFAULT_LIMIT
        } else {
            self.limit
        }
    }

    /// Whether one span satisfies every criterion.
    pub fn matches_span(&self, span: &Span) -> bool {
        if let Some(svc) = &self.service {
            if span.service() != svc {
                return false;
            }
        }
        if let Some(op) = &self.operation {
            if &span.name != op {
                return false;
            }
        }
        if let Some(kind) = self.span_kind {
            if span.kind != kind {
                return false;
            }
        }
        if span.start_unix_nanos < self.start_min_nanos
            || span.start_unix_nanos > self.start_max_nanos
        {
            return false;
        }
        let d = span.duration_nanos.max(0) as u64;
        if self.duration_min_nanos.is_some_and(|min| d < min) {
            return false;
        }
        if self.duration_max_nanos.is_some_and(|max| d > max) {
            return false;
        }
        self.tags.iter().all(|(k, v)| span_has_tag(span, k, v))
    }

    /// Whether any span of the trace satisfies every criterion.
    pub fn matches_trace(&self, trace: &Trace) -> bool {
        trace.spans.iter().any(|s| self.matches_span(s))
    }
}

fn attrs_have(attrs: &[KeyValue], key: &str, value: &str) -> bool {
    attrs
        .iter()
        .any(|kv| kv.key == key && kv.value.matches_text(value))
}

/// Whether the span carries `key` with text value `value` in its attributes, its resource, its
/// events, or as one of the synthetic tags Jaeger shows for OTLP spans (`span.kind`,
/// `otel.status_code`, `otel.status_description`, `error`, `otel.scope.name`,
/// `otel.scope.version`).
pub fn span_has_tag(span: &Span, key: &str, value: &str) -> bool {
    if attrs_have(&span.attributes, key, value)
        || attrs_have(&span.resource.attributes, key, value)
        || span
            .events
            .iter()
            .any(|e| attrs_have(&e.attributes, key, value))
    {
        return true;
    }
    match key {
        "span.kind" => span.kind != SpanKind::Unspecified && span.kind.as_jaeger_str() == value,
        "error" => value == "true" && span.status.code == StatusCode::Error,
        "otel.status_code" => match span.status.code {
            StatusCode::Ok => value == "OK",
            StatusCode::Error => value == "ERROR",
            StatusCode::Unset => false,
        },
        "otel.status_description" => {
            !span.status.message.is_empty() && span.status.message == value
        }
        "otel.scope.name" => !span.scope.name.is_empty() && span.scope.name == value,
        "otel.scope.version" => !span.scope.version.is_empty() && span.scope.version == value,
        "service.name" => span.service() == value,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AnyValue, Event, Resource, Status};
    use alloc::sync::Arc;
    use alloc::vec;

    fn span(service: &str, name: &str, start: u64, dur: i64) -> Span {
        Span {
            name: name.into(),
            start_unix_nanos: start,
            duration_nanos: dur,
            resource: Arc::new(Resource {
                service_name: service.into(),
                attributes: vec![KeyValue::string("host.name", "h1")],
                ..Default::default()
            }),
            attributes: vec![KeyValue::new("http.status_code", AnyValue::Int(500))],
            events: vec![Event {
                name: "e".into(),
                attributes: vec![KeyValue::string("event", "retry")],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn all_criteria_on_one_span() {
        let mut q = TraceQuery::between(0, u64::MAX);
        q.service = Some("a".into());
        q.operation = Some("op".into());
        q.duration_min_nanos = Some(10);
        q.tags = vec![
            ("http.status_code".into(), "500".into()),
            ("host.name".into(), "h1".into()),
        ];
        assert!(q.matches_span(&span("a", "op", 5, 10)));
        assert!(!q.matches_span(&span("a", "op", 5, 9)));
        assert!(!q.matches_span(&span("b", "op", 5, 10)));
        q.tags.push(("event".into(), "retry".into()));
        assert!(q.matches_span(&span("a", "op", 5, 10)));
        q.tags.push(("missing".into(), "x".into()));
        assert!(!q.matches_span(&span("a", "op", 5, 10)));
    }

    #[test]
    fn trace_matches_when_one_span_matches_everything() {
        let mut q = TraceQuery::between(0, 100);
        q.service = Some("a".into());
        q.duration_min_nanos = Some(50);
        // One span has the service, another the duration: no single span has both.
        let t = Trace {
            trace_id: Default::default(),
            spans: vec![span("a", "x", 1, 10), span("b", "y", 1, 60)],
        };
        assert!(!q.matches_trace(&t));
        let t2 = Trace {
            trace_id: Default::default(),
            spans: vec![span("a", "x", 1, 60)],
        };
        assert!(q.matches_trace(&t2));
        let late = Trace {
            trace_id: Default::default(),
            spans: vec![span("a", "x", 101, 60)],
        };
        assert!(!q.matches_trace(&late));
    }

    #[test]
    fn synthetic_tags() {
        let mut s = span("a", "x", 1, 1);
        s.kind = SpanKind::Server;
        s.status = Status {
            code: StatusCode::Error,
            message: "boom".into(),
        };
        assert!(span_has_tag(&s, "span.kind", "server"));
        assert!(span_has_tag(&s, "error", "true"));
        assert!(span_has_tag(&s, "otel.status_code", "ERROR"));
        assert!(span_has_tag(&s, "otel.status_description", "boom"));
        assert!(!span_has_tag(&s, "span.kind", "client"));
    }
}

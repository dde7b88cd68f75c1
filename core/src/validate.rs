//! Validation of incoming span batches: rejects spans that cannot be stored, truncates spans
//! that exceed the size limits, and reports every problem it found.
//!
//! Rejected (dropped from the batch): zero trace id, zero span id, end before start, and a
//! second span with the same (trace id, span id) as an earlier *kept* span of the same batch.
//! Never rejected, only repaired and noted in [`Span::warnings`]: too many attributes, events
//! or links, over-long attribute values or names, an empty service name, a span that names
//! itself as its parent.
//!
//! Cost: the input `Vec` is compacted in place, so a clean batch allocates nothing except,
//! for batches of more than [`SMALL_BATCH`] spans, one hash set per batch for duplicate
//! detection. Strings are only built when something is wrong.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::model::{AnyValue, KeyValue, Resource, Span, SpanId, TraceId, DEFAULT_SERVICE_NAME};

/// Batches up to this many spans find duplicates by comparing with the spans kept so far
/// (no allocation); larger batches use one hash set per batch.
pub const SMALL_BATCH: usize = 16;

/// Size limits applied to every span. Exceeding one truncates the span, it never rejects it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Attributes kept per span, event or link (default 128); the rest are dropped and counted.
    pub max_attributes: usize,
    /// Bytes kept of a string or bytes attribute value (default 16384); cut on a UTF-8
    /// boundary. Applies to span, event and link attributes, also inside arrays and maps.
    pub max_attribute_value_bytes: usize,
    /// Events kept per span (default 128); the rest are dropped and counted.
    pub max_events: usize,
    /// Links kept per span (default 128); the rest are dropped and counted.
    pub max_links: usize,
    /// Bytes kept of a span name (default 1024), cut on a UTF-8 boundary.
    pub max_name_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attributes: 128,
            max_attribute_value_bytes: 16384,
            max_events: 128,
            max_links: 128,
            max_name_bytes: 1024,
        }
    }
}

/// What was wrong with a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Problem {
    /// The trace id is all zeros (rejects the span).
    ZeroTraceId,
    /// The span id is all zeros (rejects the span).
    ZeroSpanId,
    /// The end time is before the start time (rejects the span).
    NegativeDuration,
    /// An earlier kept span of the batch has the same trace id and span id (rejects the span).
    DuplicateSpan,
    /// More attributes than [`Limits::max_attributes`] on the span, an event or a link.
    TooManyAttributes,
    /// A string or bytes attribute value longer than [`Limits::max_attribute_value_bytes`].
    AttributeTooLong,
    /// More events than [`Limits::max_events`].
    TooManyEvents,
    /// More links than [`Limits::max_links`].
    TooManyLinks,
    /// A name longer than [`Limits::max_name_bytes`].
    NameTooLong,
    /// The resource has an empty service name; it was set to [`DEFAULT_SERVICE_NAME`].
    MissingServiceName,
    /// The span names itself as its parent; the parent was removed.
    ParentIsSelf,
}

impl Problem {
    /// Whether this problem removes the span from the batch.
    pub fn rejects(self) -> bool {
        matches!(
            self,
            Problem::ZeroTraceId
                | Problem::ZeroSpanId
                | Problem::NegativeDuration
                | Problem::DuplicateSpan
        )
    }

    /// A short phrase that completes "a span with …", as used by [`Validated::summary`].
    pub fn phrase(self) -> &'static str {
        match self {
            Problem::ZeroTraceId => "a zero trace id",
            Problem::ZeroSpanId => "a zero span id",
            Problem::NegativeDuration => "end time before start time",
            Problem::DuplicateSpan => "a duplicate span id",
            Problem::TooManyAttributes => "too many attributes",
            Problem::AttributeTooLong => "an attribute value that is too long",
            Problem::TooManyEvents => "too many events",
            Problem::TooManyLinks => "too many links",
            Problem::NameTooLong => "a name that is too long",
            Problem::MissingServiceName => "no service name",
            Problem::ParentIsSelf => "itself as parent",
        }
    }

    /// Every problem, in the order summaries list them.
    pub const ALL: [Problem; 11] = [
        Problem::ZeroTraceId,
        Problem::ZeroSpanId,
        Problem::NegativeDuration,
        Problem::DuplicateSpan,
        Problem::TooManyAttributes,
        Problem::AttributeTooLong,
        Problem::TooManyEvents,
        Problem::TooManyLinks,
        Problem::NameTooLong,
        Problem::MissingServiceName,
        Problem::ParentIsSelf,
    ];
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phrase())
    }
}

/// One problem found in one span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Position of the span in the input batch.
    pub index: usize,
    /// The span's trace id.
    pub trace_id: TraceId,
    /// The span's id.
    pub span_id: SpanId,
    /// What was wrong.
    pub problem: Problem,
    /// Whether the span was dropped from the batch.
    pub rejected: bool,
    /// What exactly was wrong, naming the value (lowercase, no trailing period).
    pub detail: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "span {} of trace {} (batch index {}) {}: {}",
            self.span_id,
            self.trace_id,
            self.index,
            if self.rejected {
                "rejected"
            } else {
                "repaired"
            },
            self.detail
        )
    }
}

/// The outcome of [`validate_batch`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Validated {
    /// The kept spans, in input order, repaired where needed.
    pub spans: Vec<Span>,
    /// How many spans were dropped.
    pub rejected: usize,
    /// Every problem found, in input order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validated {
    /// `""` when nothing was rejected, else e.g. `"2 of 10 spans rejected: 1 with a zero trace
    /// id, 1 with end time before start time"`. A span with two rejecting problems is counted
    /// under both.
    pub fn summary(&self) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let total = self.spans.len() + self.rejected;
        let mut out = format!("{} of {} spans rejected", self.rejected, total);
        let mut first = true;
        for p in Problem::ALL.iter().copied().filter(|p| p.rejects()) {
            let n = self
                .diagnostics
                .iter()
                .filter(|d| d.rejected && d.problem == p)
                .count();
            if n > 0 {
                out.push_str(if first { ": " } else { ", " });
                first = false;
                out.push_str(&format!("{n} with {p}"));
            }
        }
        out
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary; returns the original length if
/// it was cut.
fn cut_str(s: &mut String, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None;
    }
    let len = s.len();
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    Some(len)
}

/// Truncation of attribute values: the number of values cut and the first cut key and length.
#[derive(Default)]
struct ValueCuts {
    count: usize,
    first: Option<(String, usize)>,
}

fn cut_value(v: &mut AnyValue, max: usize, key: &str, cuts: &mut ValueCuts) {
    let cut = match v {
        AnyValue::Str(s) => cut_str(s, max),
        AnyValue::Bytes(b) if b.len() > max => {
            let len = b.len();
            b.truncate(max);
            Some(len)
        }
        AnyValue::Array(items) => {
            for item in items {
                cut_value(item, max, key, cuts);
            }
            None
        }
        AnyValue::Map(kvs) => {
            for kv in kvs {
                cut_value(&mut kv.value, max, key, cuts);
            }
            None
        }
        _ => None,
    };
    if let Some(len) = cut {
        if cuts.first.is_none() {
            cuts.first = Some((String::from(key), len));
        }
        cuts.count += 1;
    }
}

/// Applies the attribute count and value limits to one attribute list; returns how many
/// attributes were dropped.
fn limit_attrs(
    attrs: &mut Vec<KeyValue>,
    dropped: &mut u32,
    limits: &Limits,
    cuts: &mut ValueCuts,
) -> usize {
    let mut removed = 0;
    if attrs.len() > limits.max_attributes {
        removed = attrs.len() - limits.max_attributes;
        attrs.truncate(limits.max_attributes);
        *dropped = dropped.saturating_add(u32::try_from(removed).unwrap_or(u32::MAX));
    }
    for kv in attrs.iter_mut() {
        cut_value(
            &mut kv.value,
            limits.max_attribute_value_bytes,
            &kv.key,
            cuts,
        );
    }
    removed
}

/// Resources with an empty service name, already replaced in this batch.
#[derive(Default)]
struct ResourceFixes {
    fixed: Vec<(Arc<Resource>, Arc<Resource>)>,
}

impl ResourceFixes {
    /// Returns the replacement for `r` and whether it was created now (first span using it).
    fn replacement(&mut self, r: &Arc<Resource>) -> (Arc<Resource>, bool) {
        if let Some((_, new)) = self.fixed.iter().find(|(old, _)| Arc::ptr_eq(old, r)) {
            return (new.clone(), false);
        }
        let mut res = Resource::clone(r);
        res.service_name = String::from(DEFAULT_SERVICE_NAME);
        let new = Arc::new(res);
        self.fixed.push((r.clone(), new.clone()));
        (new, true)
    }
}

struct Ctx<'a> {
    diagnostics: &'a mut Vec<Diagnostic>,
    index: usize,
    trace_id: TraceId,
    span_id: SpanId,
}

impl Ctx<'_> {
    fn report(&mut self, problem: Problem, detail: String) {
        self.diagnostics.push(Diagnostic {
            index: self.index,
            trace_id: self.trace_id,
            span_id: self.span_id,
            problem,
            rejected: problem.rejects(),
            detail,
        });
    }
}

/// Repairs a span that is kept: limits, service name, self-parent.
fn repair(span: &mut Span, limits: &Limits, fixes: &mut ResourceFixes, ctx: &mut Ctx<'_>) {
    if span.parent_span_id == Some(span.span_id) {
        span.parent_span_id = None;
        let msg = format!(
            "parent span id {} was the span's own id and was removed",
            span.span_id
        );
        span.warnings.push(msg.clone());
        ctx.report(Problem::ParentIsSelf, msg);
    }

    if span.resource.service_name.is_empty() {
        let (new, first) = fixes.replacement(&span.resource);
        span.resource = new;
        if first {
            ctx.report(
                Problem::MissingServiceName,
                format!("empty service name replaced by \"{DEFAULT_SERVICE_NAME}\" for every span of this resource"),
            );
        }
    }

    if let Some(len) = cut_str(&mut span.name, limits.max_name_bytes) {
        let msg = format!("name of {len} bytes truncated to {} bytes", span.name.len());
        span.warnings.push(msg.clone());
        ctx.report(Problem::NameTooLong, msg);
    }

    let mut cuts = ValueCuts::default();
    let mut attrs_dropped = limit_attrs(
        &mut span.attributes,
        &mut span.dropped_attributes_count,
        limits,
        &mut cuts,
    );

    if span.events.len() > limits.max_events {
        let n = span.events.len();
        span.events.truncate(limits.max_events);
        span.dropped_events_count = span
            .dropped_events_count
            .saturating_add(u32::try_from(n - limits.max_events).unwrap_or(u32::MAX));
        let msg = format!(
            "{} of {n} events dropped, the limit is {}",
            n - limits.max_events,
            limits.max_events
        );
        span.warnings.push(msg.clone());
        ctx.report(Problem::TooManyEvents, msg);
    }
    if span.links.len() > limits.max_links {
        let n = span.links.len();
        span.links.truncate(limits.max_links);
        span.dropped_links_count = span
            .dropped_links_count
            .saturating_add(u32::try_from(n - limits.max_links).unwrap_or(u32::MAX));
        let msg = format!(
            "{} of {n} links dropped, the limit is {}",
            n - limits.max_links,
            limits.max_links
        );
        span.warnings.push(msg.clone());
        ctx.report(Problem::TooManyLinks, msg);
    }
    for e in &mut span.events {
        attrs_dropped += limit_attrs(
            &mut e.attributes,
            &mut e.dropped_attributes_count,
            limits,
            &mut cuts,
        );
        if let Some(len) = cut_str(&mut e.name, limits.max_name_bytes) {
            let msg = format!(
                "event name of {len} bytes truncated to {} bytes",
                e.name.len()
            );
            span.warnings.push(msg.clone());
            ctx.report(Problem::NameTooLong, msg);
        }
    }
    for l in &mut span.links {
        attrs_dropped += limit_attrs(
            &mut l.attributes,
            &mut l.dropped_attributes_count,
            limits,
            &mut cuts,
        );
    }

    if attrs_dropped > 0 {
        let msg = format!(
            "{attrs_dropped} attributes dropped beyond the limit of {} per span, event or link",
            limits.max_attributes
        );
        span.warnings.push(msg.clone());
        ctx.report(Problem::TooManyAttributes, msg);
    }
    if let Some((key, len)) = cuts.first {
        let msg = if cuts.count == 1 {
            format!(
                "value of attribute \"{key}\" truncated from {len} to {} bytes",
                limits.max_attribute_value_bytes
            )
        } else {
            format!(
                "{} attribute values truncated to {} bytes, the first was \"{key}\" of {len} bytes",
                cuts.count, limits.max_attribute_value_bytes
            )
        };
        span.warnings.push(msg.clone());
        ctx.report(Problem::AttributeTooLong, msg);
    }
}

/// Validates a batch: drops spans that cannot be stored, repairs the rest, and reports every
/// problem. Kept spans stay in input order. A rejected span is reported with all its rejecting
/// problems; its size limits are not checked.
pub fn validate_batch(mut spans: Vec<Span>, limits: &Limits) -> Validated {
    let total = spans.len();
    let mut diagnostics = Vec::new();
    let mut fixes = ResourceFixes::default();
    let mut seen: Option<hashbrown::HashMap<(TraceId, SpanId), usize>> =
        (total > SMALL_BATCH).then(|| hashbrown::HashMap::with_capacity(total));
    // Input index of every kept span, only needed to name the first copy of a duplicate in
    // small batches; fixed-size so that it never allocates.
    let mut small_index = [0usize; SMALL_BATCH];
    let mut kept = 0;

    for i in 0..total {
        let (trace_id, span_id, duration) = {
            let s = &spans[i];
            (s.trace_id, s.span_id, s.duration_nanos)
        };
        let mut ctx = Ctx {
            diagnostics: &mut diagnostics,
            index: i,
            trace_id,
            span_id,
        };
        let mut bad = false;
        if trace_id.is_zero() {
            ctx.report(Problem::ZeroTraceId, String::from("trace id is zero"));
            bad = true;
        }
        if span_id.is_zero() {
            ctx.report(Problem::ZeroSpanId, String::from("span id is zero"));
            bad = true;
        }
        if duration < 0 {
            ctx.report(
                Problem::NegativeDuration,
                format!(
                    "end time is {} ns before start time",
                    duration.unsigned_abs()
                ),
            );
            bad = true;
        }
        if !bad {
            let first = match &mut seen {
                Some(map) => match map.entry((trace_id, span_id)) {
                    hashbrown::hash_map::Entry::Occupied(e) => Some(*e.get()),
                    hashbrown::hash_map::Entry::Vacant(v) => {
                        v.insert(i);
                        None
                    }
                },
                None => spans[..kept]
                    .iter()
                    .position(|s| s.trace_id == trace_id && s.span_id == span_id)
                    .map(|k| small_index[k]),
            };
            if let Some(first) = first {
                ctx.report(
                    Problem::DuplicateSpan,
                    format!("same trace id and span id as the span at batch index {first}"),
                );
                bad = true;
            }
        }
        if bad {
            continue;
        }
        repair(&mut spans[i], limits, &mut fixes, &mut ctx);
        if seen.is_none() {
            small_index[kept] = i;
        }
        if kept != i {
            spans.swap(kept, i);
        }
        kept += 1;
    }
    spans.truncate(kept);
    Validated {
        spans,
        rejected: total - kept,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Link};
    use alloc::string::ToString;
    use alloc::vec;

    fn res(service: &str) -> Arc<Resource> {
        Arc::new(Resource {
            service_name: service.into(),
            ..Default::default()
        })
    }

    fn span(trace: u128, id: u64, dur: i64) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId(id),
            name: "op".into(),
            start_unix_nanos: 1_000,
            duration_nanos: dur,
            resource: res("svc"),
            ..Default::default()
        }
    }

    fn small() -> Limits {
        Limits {
            max_attributes: 2,
            max_attribute_value_bytes: 4,
            max_events: 1,
            max_links: 1,
            max_name_bytes: 3,
        }
    }

    /// (index, problem, rejected) of every diagnostic.
    fn problems(v: &Validated) -> Vec<(usize, Problem, bool)> {
        v.diagnostics
            .iter()
            .map(|d| (d.index, d.problem, d.rejected))
            .collect()
    }

    fn ids(v: &Validated) -> Vec<(u128, u64)> {
        v.spans
            .iter()
            .map(|s| (s.trace_id.0, s.span_id.0))
            .collect()
    }

    #[test]
    fn rejecting_rules() {
        use Problem::*;
        // (batch, kept ids, diagnostics, summary)
        type Case = (
            Vec<Span>,
            Vec<(u128, u64)>,
            Vec<(usize, Problem, bool)>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (vec![span(1, 1, 5), span(1, 2, 0)], vec![(1, 1), (1, 2)], vec![], ""),
            (
                vec![span(0, 1, 5), span(1, 2, 5)],
                vec![(1, 2)],
                vec![(0, ZeroTraceId, true)],
                "1 of 2 spans rejected: 1 with a zero trace id",
            ),
            (vec![span(1, 0, 5)], vec![], vec![(0, ZeroSpanId, true)], "1 of 1 spans rejected: 1 with a zero span id"),
            (
                vec![span(1, 1, -5), span(1, 2, 1)],
                vec![(1, 2)],
                vec![(0, NegativeDuration, true)],
                "1 of 2 spans rejected: 1 with end time before start time",
            ),
            (
                vec![span(1, 1, 5), span(2, 1, 5), span(1, 1, 7)],
                vec![(1, 1), (2, 1)],
                vec![(2, DuplicateSpan, true)],
                "1 of 3 spans rejected: 1 with a duplicate span id",
            ),
            // A rejected first copy does not make the second a duplicate.
            (vec![span(1, 1, -1), span(1, 1, 1)], vec![(1, 1)], vec![(0, NegativeDuration, true)], "1 of 2 spans rejected: 1 with end time before start time"),
            // Every rejecting problem of a span is reported.
            (
                vec![span(0, 0, -1), span(0, 3, 1), span(4, 4, 1)],
                vec![(4, 4)],
                vec![(0, ZeroTraceId, true), (0, ZeroSpanId, true), (0, NegativeDuration, true), (1, ZeroTraceId, true)],
                "2 of 3 spans rejected: 2 with a zero trace id, 1 with a zero span id, 1 with end time before start time",
            ),
        ];
        for (i, (batch, kept, diags, summary)) in cases.into_iter().enumerate() {
            let v = validate_batch(batch, &Limits::default());
            assert_eq!(ids(&v), kept, "case {i}");
            assert_eq!(problems(&v), diags, "case {i}");
            assert_eq!(v.summary(), summary, "case {i}");
            assert_eq!(
                v.rejected,
                v.diagnostics
                    .iter()
                    .map(|d| d.index)
                    .collect::<hashbrown::HashSet<_>>()
                    .len(),
                "case {i}"
            );
        }
    }

    #[test]
    fn duplicates_in_large_batch_use_the_set_and_keep_order() {
        let mut batch: Vec<Span> = (1..=40).map(|i| span(7, i, 1)).collect();
        batch.insert(10, span(7, 3, 9));
        batch.push(span(7, 40, 9));
        batch.insert(0, span(0, 99, 1));
        let v = validate_batch(batch, &Limits::default());
        assert_eq!(
            v.spans.iter().map(|s| s.span_id.0).collect::<Vec<_>>(),
            (1..=40).collect::<Vec<_>>()
        );
        assert!(
            v.spans.iter().all(|s| s.duration_nanos == 1),
            "the first copy is kept"
        );
        assert_eq!(
            problems(&v),
            vec![
                (0, Problem::ZeroTraceId, true),
                (11, Problem::DuplicateSpan, true),
                (42, Problem::DuplicateSpan, true)
            ]
        );
        assert_eq!(
            v.diagnostics[1].detail,
            "same trace id and span id as the span at batch index 3"
        );
        assert_eq!(
            v.summary(),
            "3 of 43 spans rejected: 1 with a zero trace id, 2 with a duplicate span id"
        );
    }

    #[test]
    fn duplicate_detail_names_first_index_in_small_batch() {
        let v = validate_batch(
            vec![span(0, 1, 1), span(1, 5, 1), span(1, 6, 1), span(1, 5, 1)],
            &Limits::default(),
        );
        assert_eq!(
            v.diagnostics[1].detail,
            "same trace id and span id as the span at batch index 1"
        );
        assert_eq!(
            v.diagnostics[1].to_string(),
            "span 0000000000000005 of trace 00000000000000000000000000000001 (batch index 3) rejected: same trace id and span id as the span at batch index 1"
        );
    }

    #[test]
    fn limits_truncate_and_warn() {
        use Problem::*;
        let mut s = span(1, 1, 1);
        s.name = "abcdef".into();
        s.attributes = vec![
            KeyValue::string("k1", "héllo"), // 6 bytes, 'é' spans bytes 1..3
            KeyValue::new("k2", AnyValue::Bytes(vec![1, 2, 3, 4, 5])),
            KeyValue::string("k3", "x"),
        ];
        s.dropped_attributes_count = 1;
        s.events = vec![
            Event {
                name: "e".into(),
                attributes: vec![KeyValue::string("a", "b")],
                ..Default::default()
            },
            Event::default(),
            Event::default(),
        ];
        s.links = vec![Link::default(), Link::default()];
        let v = validate_batch(vec![s], &small());
        assert_eq!(v.rejected, 0);
        let s = &v.spans[0];
        assert_eq!(s.name, "abc");
        assert_eq!(
            s.attributes,
            vec![
                KeyValue::string("k1", "hél"),
                KeyValue::new("k2", AnyValue::Bytes(vec![1, 2, 3, 4]))
            ]
        );
        assert_eq!(
            (
                s.dropped_attributes_count,
                s.events.len(),
                s.dropped_events_count
            ),
            (2, 1, 2)
        );
        assert_eq!((s.links.len(), s.dropped_links_count), (1, 1));
        assert_eq!(
            s.warnings,
            vec![
                "name of 6 bytes truncated to 3 bytes",
                "2 of 3 events dropped, the limit is 1",
                "1 of 2 links dropped, the limit is 1",
                "1 attributes dropped beyond the limit of 2 per span, event or link",
                "2 attribute values truncated to 4 bytes, the first was \"k1\" of 6 bytes",
            ]
        );
        assert_eq!(
            problems(&v),
            vec![
                (0, NameTooLong, false),
                (0, TooManyEvents, false),
                (0, TooManyLinks, false),
                (0, TooManyAttributes, false),
                (0, AttributeTooLong, false)
            ]
        );
        assert_eq!(v.summary(), "");
    }

    #[test]
    fn nested_and_event_link_values_are_cut() {
        let mut s = span(1, 1, 1);
        s.attributes = vec![KeyValue::new(
            "arr",
            AnyValue::Array(vec![
                AnyValue::Str("123456".into()),
                AnyValue::Map(vec![KeyValue::string("in", "abcdefg")]),
            ]),
        )];
        s.links = vec![Link {
            attributes: vec![KeyValue::string("l", "zzzzzz")],
            ..Default::default()
        }];
        let v = validate_batch(vec![s], &small());
        let s = &v.spans[0];
        assert_eq!(
            s.attributes[0].value,
            AnyValue::Array(vec![
                AnyValue::Str("1234".into()),
                AnyValue::Map(vec![KeyValue::string("in", "abcd")])
            ])
        );
        assert_eq!(s.links[0].attributes[0].value, AnyValue::Str("zzzz".into()));
        assert_eq!(
            s.warnings,
            vec!["3 attribute values truncated to 4 bytes, the first was \"arr\" of 6 bytes"]
        );
    }

    #[test]
    fn single_cut_value_message() {
        let mut s = span(1, 1, 1);
        s.attributes = vec![KeyValue::string("url", "ééé")];
        let v = validate_batch(vec![s], &small());
        assert_eq!(v.spans[0].attributes[0].value, AnyValue::Str("éé".into()));
        assert_eq!(
            v.spans[0].warnings,
            vec!["value of attribute \"url\" truncated from 6 to 4 bytes"]
        );
    }

    #[test]
    fn utf8_cut_points() {
        // (text, max bytes, expected)
        let cases = [
            ("abc", 3, "abc"),
            ("abcd", 3, "abc"),
            ("aé", 2, "a"),
            ("aé", 3, "aé"),
            ("日本", 5, "日"),
            ("日", 0, ""),
        ];
        for (text, max, want) in cases {
            let mut s = String::from(text);
            cut_str(&mut s, max);
            assert_eq!(s, want, "{text} cut to {max}");
        }
    }

    #[test]
    fn missing_service_name_replaced_once_per_resource() {
        let empty_a = res("");
        let empty_b = res("");
        let mut batch = vec![span(1, 1, 1), span(1, 2, 1), span(1, 3, 1), span(1, 4, 1)];
        batch[0].resource = empty_a.clone();
        batch[1].resource = empty_a.clone();
        batch[2].resource = empty_b.clone();
        let v = validate_batch(batch, &Limits::default());
        assert_eq!(
            v.spans.iter().map(Span::service).collect::<Vec<_>>(),
            [
                "unknown_service",
                "unknown_service",
                "unknown_service",
                "svc"
            ]
        );
        assert!(
            Arc::ptr_eq(&v.spans[0].resource, &v.spans[1].resource),
            "one replacement per distinct resource"
        );
        assert!(!Arc::ptr_eq(&v.spans[0].resource, &v.spans[2].resource));
        assert_eq!(
            problems(&v),
            vec![
                (0, Problem::MissingServiceName, false),
                (2, Problem::MissingServiceName, false)
            ]
        );
        assert_eq!(
            empty_a.service_name, "",
            "the shared input resource is not mutated"
        );
        assert_eq!(v.rejected, 0);
    }

    #[test]
    fn parent_is_self_removed() {
        let mut s = span(1, 0xab, 1);
        s.parent_span_id = Some(SpanId(0xab));
        let mut ok = span(1, 2, 1);
        ok.parent_span_id = Some(SpanId(0xab));
        let v = validate_batch(vec![s, ok], &Limits::default());
        assert_eq!(v.spans[0].parent_span_id, None);
        assert_eq!(
            v.spans[0].warnings,
            vec!["parent span id 00000000000000ab was the span's own id and was removed"]
        );
        assert_eq!(v.spans[1].parent_span_id, Some(SpanId(0xab)));
        assert_eq!(problems(&v), vec![(0, Problem::ParentIsSelf, false)]);
    }

    #[test]
    fn clean_batch_has_no_warnings_or_diagnostics() {
        let batch: Vec<Span> = (1..=100).map(|i| span(3, i, 10)).collect();
        let expected = batch.clone();
        let v = validate_batch(batch, &Limits::default());
        assert_eq!(v.spans, expected);
        assert!(v.diagnostics.is_empty());
        assert_eq!(v.summary(), "");
    }
}

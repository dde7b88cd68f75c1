//! The traces of one file kept in memory with their span trees and timelines, and every answer
//! the UI asks for as plain serialisable data. Pure Rust: the bindings in `lib.rs` only turn
//! these answers into JavaScript values, so all of this is tested natively.
//!
//! A trace's span tree and timeline borrow the trace. Each trace is therefore owned by a
//! [`self_cell`] together with its tree, and that cell by another together with the timeline
//! (and its collapse state): no `unsafe` here, no rebuilding on every call. Trees are built
//! lazily, the first time a trace is looked at.

use std::fmt::Write as _;

use serde::Serialize;
use spoor_core::analysis::{
    self, CriticalPath, RootCause, RootKind, ServiceGraph, SpanTree, Timeline, TraceDiff,
    TraceStats,
};
use spoor_core::{AnyValue, KeyValue, Span, SpanId, SpanKind, StatusCode, Trace, TraceId};

use crate::formats::{self, Format, ParseError, Parsed};

self_cell::self_cell!(
    /// A trace and its span tree.
    struct TreeCell {
        owner: Trace,
        #[covariant]
        dependent: SpanTree,
    }
);

type TimelineOf<'a> = Timeline<'a, 'a>;

self_cell::self_cell!(
    /// A trace, its span tree, and its timeline with the collapse state.
    struct Indexed {
        owner: TreeCell,
        #[covariant]
        dependent: TimelineOf,
    }
);

impl Indexed {
    fn build(trace: Trace) -> Indexed {
        let tree = TreeCell::new(trace, |t| SpanTree::new(t));
        Indexed::new(tree, |cell| Timeline::new(cell.borrow_dependent()))
    }

    fn trace(&self) -> &Trace {
        self.borrow_owner().borrow_owner()
    }

    fn tree(&self) -> &SpanTree<'_> {
        self.borrow_owner().borrow_dependent()
    }
}

/// A trace, indexed once it has been looked at.
enum Slot {
    Plain(Trace),
    Indexed(Box<Indexed>),
    /// Only while a trace moves into its cell.
    Moving,
}

/// Why a request about the traces could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// No trace at this index.
    #[error("no trace at index {index}, the set has {len}")]
    NoTrace {
        /// The index asked for.
        index: usize,
        /// Number of traces.
        len: usize,
    },
    /// No span at this index of the trace.
    #[error("no span at index {span} in trace {trace}, it has {len}")]
    NoSpan {
        /// The trace index.
        trace: usize,
        /// The span index asked for.
        span: usize,
        /// Number of spans in the trace.
        len: usize,
    },
}

/// One line of the trace list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceSummary {
    /// Index of the trace in the set (what every other call takes).
    pub index: usize,
    /// Trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// Service of the root span (`""` for an empty trace).
    pub root_service: String,
    /// Operation of the root span.
    pub root_operation: String,
    /// Earliest span start, nanoseconds since the epoch.
    pub start_unix_nanos: u64,
    /// Latest span end minus earliest start, nanoseconds.
    pub duration_nanos: u64,
    /// Spans in the trace.
    pub span_count: usize,
    /// Failed spans.
    pub error_count: usize,
    /// Distinct services, sorted.
    pub services: Vec<String>,
}

/// The window of a trace's timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineInfo {
    /// Earliest span start, nanoseconds since the epoch.
    pub start_unix_nanos: u64,
    /// Latest span end, nanoseconds since the epoch.
    pub end_unix_nanos: u64,
    /// Visible rows with the current collapse state.
    pub row_count: usize,
    /// Spans in the trace.
    pub span_count: usize,
    /// Greatest depth of the span tree.
    pub max_depth: usize,
}

/// One visible timeline row: `spoor_core::analysis::TimelineRow` plus what a row shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row<'a> {
    /// Index of the span in the trace.
    pub span: usize,
    /// Depth in the span tree.
    pub depth: usize,
    /// Whether the span has children.
    pub has_children: bool,
    /// Whether the span is collapsed.
    pub collapsed: bool,
    /// Start as a fraction of the trace window.
    pub offset: f64,
    /// Duration as a fraction of the trace window.
    pub width: f64,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Service name.
    pub service: &'a str,
    /// Operation name.
    pub operation: &'a str,
    /// Duration in nanoseconds (negative read as zero).
    pub duration_nanos: u64,
    /// Whether the span failed.
    pub error: bool,
}

/// An attribute as text: never markup, always a string value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attr {
    /// Key.
    pub key: String,
    /// `string`, `bool`, `int`, `double`, `bytes` (hex), `array` or `map`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The value as text (integers exact, arrays and maps JSON-like).
    pub value: String,
}

/// A resource or scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Owner {
    /// Service name (resource) or library name (scope).
    pub name: String,
    /// Library version (scope only; `""` for a resource).
    pub version: String,
    /// Attributes.
    pub attributes: Vec<Attr>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
}

/// An event (Jaeger log).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventView {
    /// When, nanoseconds since the epoch.
    pub time_unix_nanos: u64,
    /// When, nanoseconds after the span's start (negative if before).
    pub offset_nanos: i64,
    /// Name.
    pub name: String,
    /// Attributes.
    pub attributes: Vec<Attr>,
}

/// A link (Jaeger reference other than the parent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkView {
    /// Linked trace id, 32 hex digits.
    pub trace_id: String,
    /// Linked span id, 16 hex digits.
    pub span_id: String,
    /// Index of the linked span when it is in this trace.
    pub span: Option<usize>,
    /// W3C trace state.
    pub trace_state: String,
    /// Attributes (`opentracing.ref_type` for Jaeger references).
    pub attributes: Vec<Attr>,
}

/// Everything about one span, as plain data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanDetail {
    /// Index in the trace.
    pub span: usize,
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Parent span id as received.
    pub parent_span_id: Option<String>,
    /// Index of the parent in the span tree.
    pub parent: Option<usize>,
    /// Indices of the children, by start time.
    pub children: Vec<usize>,
    /// Depth in the tree.
    pub depth: usize,
    /// Why the span is a root, when it is one.
    pub root_kind: Option<RootKind>,
    /// Whether an earlier span has the same id.
    pub duplicate: bool,
    /// Operation name.
    pub operation: String,
    /// Service name.
    pub service: String,
    /// `unspecified`, `internal`, `server`, `client`, `producer` or `consumer`.
    pub kind: &'static str,
    /// `unset`, `ok` or `error`.
    pub status_code: &'static str,
    /// Status message.
    pub status_message: String,
    /// Whether the span failed (status or `error` tag).
    pub error: bool,
    /// Start, nanoseconds since the epoch.
    pub start_unix_nanos: u64,
    /// Start, nanoseconds after the trace's start.
    pub offset_nanos: u64,
    /// Duration, nanoseconds (negative read as zero).
    pub duration_nanos: u64,
    /// W3C trace flags and OTLP flag bits.
    pub flags: u32,
    /// W3C trace state.
    pub trace_state: String,
    /// Span attributes.
    pub attributes: Vec<Attr>,
    /// The producing service.
    pub resource: Owner,
    /// The instrumentation scope.
    pub scope: Owner,
    /// Events.
    pub events: Vec<EventView>,
    /// Links.
    pub links: Vec<LinkView>,
    /// Warnings noted while processing the span.
    pub warnings: Vec<String>,
    /// Attributes, events and links the sender dropped.
    pub dropped_attributes_count: u32,
    /// Events the sender dropped.
    pub dropped_events_count: u32,
    /// Links the sender dropped.
    pub dropped_links_count: u32,
}

/// Values per span in [`SpanColumns::data`].
pub const SPAN_COLUMNS: usize = 8;

/// Every span of a trace as numbers, for views that draw all spans at once (minimap,
/// flamegraph, trace graph): one crossing of the boundary instead of one per span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanColumns {
    /// Distinct service names; `data` refers to them by index.
    pub services: Vec<String>,
    /// Distinct operation names; `data` refers to them by index.
    pub operations: Vec<String>,
    /// Span indices in display order (depth-first, children by start time).
    pub preorder: Vec<u32>,
    /// [`SPAN_COLUMNS`] numbers per span, by span index: parent index (-1 for a root), depth,
    /// start in nanoseconds after the trace's start, duration in nanoseconds, self time in
    /// nanoseconds, service index, operation index, 1 if the span failed else 0.
    #[serde(skip)]
    pub data: Vec<f64>,
}

/// The traces of one file.
pub struct Traces {
    format: Option<Format>,
    slots: Vec<Slot>,
    summaries: Vec<TraceSummary>,
    rejected: usize,
    problems: Vec<String>,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces")
            .field("format", &self.format)
            .field("traces", &self.slots.len())
            .field("rejected", &self.rejected)
            .finish()
    }
}

impl Traces {
    /// Parses a file (`format` `None`: detect it).
    pub fn parse(body: &[u8], format: Option<Format>) -> Result<Traces, ParseError> {
        Ok(Traces::from_parsed(formats::parse(body, format)?))
    }

    /// Takes decoded traces.
    pub fn from_parsed(p: Parsed) -> Traces {
        let summaries = p
            .traces
            .iter()
            .enumerate()
            .map(|(i, t)| summarize(i, t))
            .collect();
        Traces {
            format: p.format,
            slots: p.traces.into_iter().map(Slot::Plain).collect(),
            summaries,
            rejected: p.rejected,
            problems: p.problems,
        }
    }

    /// Traces built elsewhere (tests, generated traces).
    pub fn from_traces(traces: Vec<Trace>) -> Traces {
        Traces::from_parsed(Parsed {
            traces,
            ..Parsed::default()
        })
    }

    /// The format that was read.
    pub fn format(&self) -> &'static str {
        self.format.map_or("", Format::name)
    }

    /// Number of traces.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no traces.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Number of spans in all traces.
    pub fn span_count(&self) -> usize {
        self.summaries.iter().map(|s| s.span_count).sum()
    }

    /// Spans rejected while decoding.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// One line per rejected span, naming its JSON path and the problem.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The trace list, in file order.
    pub fn summaries(&self) -> &[TraceSummary] {
        &self.summaries
    }

    /// The index of the trace with this hex id (1 to 32 digits).
    pub fn index_of(&self, trace_id: &str) -> Option<usize> {
        let id = TraceId::parse_hex(trace_id).ok()?;
        (0..self.slots.len()).find(|&i| self.trace_ref(i).is_some_and(|t| t.trace_id == id))
    }

    fn check(&self, index: usize) -> Result<(), QueryError> {
        if index < self.slots.len() {
            Ok(())
        } else {
            Err(QueryError::NoTrace {
                index,
                len: self.slots.len(),
            })
        }
    }

    fn trace_ref(&self, index: usize) -> Option<&Trace> {
        match self.slots.get(index)? {
            Slot::Plain(t) => Some(t),
            Slot::Indexed(c) => Some(c.trace()),
            Slot::Moving => None,
        }
    }

    /// The trace at `index` with its tree and timeline, indexing it on first use.
    fn indexed(&mut self, index: usize) -> Result<&mut Indexed, QueryError> {
        self.check(index)?;
        let len = self.slots.len();
        let slot = &mut self.slots[index];
        if let Slot::Plain(_) = slot {
            if let Slot::Plain(trace) = std::mem::replace(slot, Slot::Moving) {
                *slot = Slot::Indexed(Box::new(Indexed::build(trace)));
            }
        }
        match slot {
            Slot::Indexed(c) => Ok(c),
            _ => Err(QueryError::NoTrace { index, len }),
        }
    }

    fn span_check(&mut self, trace: usize, span: usize) -> Result<&mut Indexed, QueryError> {
        let c = self.indexed(trace)?;
        let len = c.trace().spans.len();
        if span < len {
            Ok(c)
        } else {
            Err(QueryError::NoSpan { trace, span, len })
        }
    }

    /// The timeline's window and row count.
    pub fn timeline(&mut self, trace: usize) -> Result<TimelineInfo, QueryError> {
        let c = self.indexed(trace)?;
        let tree = c.tree();
        Ok(TimelineInfo {
            start_unix_nanos: tree.start(),
            end_unix_nanos: tree.end(),
            row_count: c.borrow_dependent().row_count(),
            span_count: tree.len(),
            max_depth: tree.max_depth(),
        })
    }

    /// The visible rows `start..end` (clamped) of the trace's timeline.
    pub fn rows(
        &mut self,
        trace: usize,
        start: usize,
        end: usize,
    ) -> Result<Vec<Row<'_>>, QueryError> {
        let c: &Indexed = self.indexed(trace)?;
        let spans = &c.trace().spans;
        let rows = c.borrow_dependent().rows_in(start..end);
        Ok(rows
            .into_iter()
            .map(|r| {
                let s = &spans[r.span];
                Row {
                    span: r.span,
                    depth: r.depth,
                    has_children: r.has_children,
                    collapsed: r.collapsed,
                    offset: r.offset,
                    width: r.width,
                    span_id: s.span_id.to_hex().to_string(),
                    service: s.service(),
                    operation: &s.name,
                    duration_nanos: duration(s),
                    error: s.is_error(),
                }
            })
            .collect())
    }

    /// Changes the collapse state with `f`; answers the new row count.
    fn change(
        &mut self,
        trace: usize,
        f: impl FnOnce(&mut TimelineOf<'_>),
    ) -> Result<usize, QueryError> {
        let c = self.indexed(trace)?;
        c.with_dependent_mut(|_, tl| f(tl));
        Ok(c.borrow_dependent().row_count())
    }

    /// Collapses or expands a span; answers the new row count.
    pub fn set_collapsed(
        &mut self,
        trace: usize,
        span: usize,
        collapsed: bool,
    ) -> Result<usize, QueryError> {
        self.span_check(trace, span)?;
        self.change(trace, |tl| tl.set_collapsed(span, collapsed))
    }

    /// Flips a span's collapse state; answers the new row count.
    pub fn toggle(&mut self, trace: usize, span: usize) -> Result<usize, QueryError> {
        self.span_check(trace, span)?;
        self.change(trace, |tl| tl.toggle(span))
    }

    /// Expands every span; answers the new row count.
    pub fn expand_all(&mut self, trace: usize) -> Result<usize, QueryError> {
        self.change(trace, |tl| tl.expand_all())
    }

    /// Shows spans down to `depth`, collapsing those there; answers the new row count.
    pub fn collapse_below_depth(
        &mut self,
        trace: usize,
        depth: usize,
    ) -> Result<usize, QueryError> {
        self.change(trace, |tl| tl.collapse_below_depth(depth))
    }

    /// The collapsed spans that have children, in display order.
    pub fn collapsed_spans(&mut self, trace: usize) -> Result<Vec<usize>, QueryError> {
        Ok(self.indexed(trace)?.borrow_dependent().collapsed_spans())
    }

    /// The visible row showing `span`, if it is visible.
    pub fn row_of(&mut self, trace: usize, span: usize) -> Result<Option<usize>, QueryError> {
        Ok(self.indexed(trace)?.borrow_dependent().row_of(span))
    }

    /// The index of the span with this hex id in the trace (the first, if repeated).
    pub fn span_index(&mut self, trace: usize, span_id: &str) -> Result<Option<usize>, QueryError> {
        let Ok(id) = SpanId::parse_hex(span_id) else {
            return Ok(None);
        };
        let c = self.indexed(trace)?;
        Ok(c.trace().spans.iter().position(|s| s.span_id == id))
    }

    /// Everything about one span.
    pub fn span(&mut self, trace: usize, span: usize) -> Result<SpanDetail, QueryError> {
        let c = self.span_check(trace, span)?;
        Ok(detail(c.tree(), span))
    }

    /// Every span of the trace as numbers (see [`SpanColumns`]).
    pub fn span_columns(&mut self, trace: usize) -> Result<SpanColumns, QueryError> {
        let tree = self.indexed(trace)?.tree();
        let spans = tree.spans();
        let self_nanos = analysis::stats::self_times(tree);
        let start = tree.start();
        let mut services: Vec<String> = Vec::new();
        let mut operations: Vec<String> = Vec::new();
        let mut service_ix: hashbrown::HashMap<&str, usize> = hashbrown::HashMap::new();
        let mut operation_ix: hashbrown::HashMap<&str, usize> = hashbrown::HashMap::new();
        let mut data = Vec::with_capacity(spans.len() * SPAN_COLUMNS);
        for (i, s) in spans.iter().enumerate() {
            let svc = *service_ix.entry(s.service()).or_insert_with(|| {
                services.push(s.service().to_string());
                services.len() - 1
            });
            let op = *operation_ix.entry(s.name.as_str()).or_insert_with(|| {
                operations.push(s.name.clone());
                operations.len() - 1
            });
            data.extend_from_slice(&[
                tree.parent(i).map_or(-1.0, |p| p as f64),
                tree.depth(i) as f64,
                s.start_unix_nanos.saturating_sub(start) as f64,
                duration(s) as f64,
                self_nanos[i] as f64,
                svc as f64,
                op as f64,
                if s.is_error() { 1.0 } else { 0.0 },
            ]);
        }
        Ok(SpanColumns {
            services,
            operations,
            preorder: tree.preorder().iter().map(|&i| i as u32).collect(),
            data,
        })
    }

    /// The critical path.
    pub fn critical_path(&mut self, trace: usize) -> Result<CriticalPath, QueryError> {
        Ok(analysis::critical_path(self.indexed(trace)?.tree()))
    }

    /// Statistics by service, operation and both.
    pub fn stats(&mut self, trace: usize) -> Result<TraceStats, QueryError> {
        Ok(analysis::trace_stats(self.indexed(trace)?.tree()))
    }

    /// Statistics grouped by the text value of attribute `key`.
    pub fn stats_by_attribute(
        &mut self,
        trace: usize,
        key: &str,
    ) -> Result<Vec<analysis::Group<Option<String>>>, QueryError> {
        Ok(analysis::stats_by_attribute(
            self.indexed(trace)?.tree(),
            key,
        ))
    }

    /// Spans matching `query`, in display order.
    pub fn search(&mut self, trace: usize, query: &str) -> Result<Vec<usize>, QueryError> {
        Ok(analysis::search(self.indexed(trace)?.tree(), query))
    }

    /// The structural diff of trace `a` of this set and trace `b` of `other` (this set when
    /// `None`).
    pub fn diff(
        &mut self,
        a: usize,
        other: Option<&mut Traces>,
        b: usize,
    ) -> Result<TraceDiff, QueryError> {
        match other {
            None => {
                self.indexed(a)?;
                self.indexed(b)?;
                Ok(analysis::diff_traces(self.tree_of(a)?, self.tree_of(b)?))
            }
            Some(other) => {
                let ta = self.indexed(a)?.tree();
                let tb = other.indexed(b)?.tree();
                Ok(analysis::diff_traces(ta, tb))
            }
        }
    }

    /// The root-cause summary of trace `trace`, against trace `baseline` of `other` (this set
    /// when `None`) if one is given.
    pub fn root_cause(
        &mut self,
        trace: usize,
        top_n: usize,
        baseline: Option<(Option<&mut Traces>, usize)>,
    ) -> Result<RootCause, QueryError> {
        match baseline {
            None => Ok(analysis::root_cause(
                self.indexed(trace)?.tree(),
                top_n,
                None,
            )),
            Some((None, b)) => {
                self.indexed(trace)?;
                self.indexed(b)?;
                Ok(analysis::root_cause(
                    self.tree_of(trace)?,
                    top_n,
                    Some(self.tree_of(b)?),
                ))
            }
            Some((Some(other), b)) => {
                let t = self.indexed(trace)?.tree();
                let base = other.indexed(b)?.tree();
                Ok(analysis::root_cause(t, top_n, Some(base)))
            }
        }
    }

    /// The tree of an already indexed trace, through a shared borrow.
    fn tree_of(&self, index: usize) -> Result<&SpanTree<'_>, QueryError> {
        match self.slots.get(index) {
            Some(Slot::Indexed(c)) => Ok(c.tree()),
            _ => Err(QueryError::NoTrace {
                index,
                len: self.slots.len(),
            }),
        }
    }

    /// The service graph of all traces.
    pub fn service_graph(&self) -> ServiceGraph {
        analysis::service_graph((0..self.slots.len()).filter_map(|i| self.trace_ref(i)))
    }
}

fn duration(s: &Span) -> u64 {
    s.end_unix_nanos() - s.start_unix_nanos
}

fn summarize(index: usize, t: &Trace) -> TraceSummary {
    let root = t.root();
    let mut services: Vec<String> = Vec::new();
    for s in &t.spans {
        if let Err(pos) = services.binary_search_by(|x| x.as_str().cmp(s.service())) {
            services.insert(pos, s.service().to_string());
        }
    }
    TraceSummary {
        index,
        trace_id: t.trace_id.to_hex().to_string(),
        root_service: root.map(|s| s.service().to_string()).unwrap_or_default(),
        root_operation: root.map(|s| s.name.clone()).unwrap_or_default(),
        start_unix_nanos: t.start_unix_nanos(),
        duration_nanos: t.duration_nanos(),
        span_count: t.spans.len(),
        error_count: t.spans.iter().filter(|s| s.is_error()).count(),
        services,
    }
}

/// The text form of a value and its type name.
pub fn value_text(v: &AnyValue) -> (&'static str, String) {
    let mut out = String::new();
    write_value(v, &mut out);
    let kind = match v {
        AnyValue::Str(_) => "string",
        AnyValue::Bool(_) => "bool",
        AnyValue::Int(_) => "int",
        AnyValue::Double(_) => "double",
        AnyValue::Bytes(_) => "bytes",
        AnyValue::Array(_) => "array",
        AnyValue::Map(_) => "map",
    };
    (kind, out)
}

/// Strings as they are at the top level, quoted inside arrays and maps; bytes as hex.
/// Nesting depth is bounded by the JSON parser's recursion limit (128).
fn write_value(v: &AnyValue, out: &mut String) {
    fn nested(v: &AnyValue, out: &mut String) {
        match v {
            AnyValue::Str(s) => {
                let _ = write!(out, "{}", serde_json::Value::String(s.clone()));
            }
            other => write_value(other, out),
        }
    }
    match v {
        AnyValue::Str(s) => out.push_str(s),
        AnyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AnyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        AnyValue::Double(d) => {
            let _ = write!(out, "{d}");
        }
        AnyValue::Bytes(b) => {
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
        }
        AnyValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                nested(item, out);
            }
            out.push(']');
        }
        AnyValue::Map(kvs) => {
            out.push('{');
            for (i, kv) in kvs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}: ", serde_json::Value::String(kv.key.clone()));
                nested(&kv.value, out);
            }
            out.push('}');
        }
    }
}

fn attrs(kvs: &[KeyValue]) -> Vec<Attr> {
    kvs.iter()
        .map(|kv| {
            let (kind, value) = value_text(&kv.value);
            Attr {
                key: kv.key.clone(),
                kind,
                value,
            }
        })
        .collect()
}

fn kind_name(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Unspecified => "unspecified",
        other => other.as_jaeger_str(),
    }
}

fn detail(tree: &SpanTree<'_>, i: usize) -> SpanDetail {
    let spans = tree.spans();
    let s = &spans[i];
    SpanDetail {
        span: i,
        trace_id: s.trace_id.to_hex().to_string(),
        span_id: s.span_id.to_hex().to_string(),
        parent_span_id: s.parent_span_id.map(|p| p.to_hex().to_string()),
        parent: tree.parent(i),
        children: tree.children(i).to_vec(),
        depth: tree.depth(i),
        root_kind: tree.root_kind(i),
        duplicate: tree.is_duplicate(i),
        operation: s.name.clone(),
        service: s.service().to_string(),
        kind: kind_name(s.kind),
        status_code: match s.status.code {
            StatusCode::Unset => "unset",
            StatusCode::Ok => "ok",
            StatusCode::Error => "error",
        },
        status_message: s.status.message.clone(),
        error: s.is_error(),
        start_unix_nanos: s.start_unix_nanos,
        offset_nanos: s.start_unix_nanos.saturating_sub(tree.start()),
        duration_nanos: duration(s),
        flags: s.flags,
        trace_state: s.trace_state.clone(),
        attributes: attrs(&s.attributes),
        resource: Owner {
            name: s.resource.service_name.clone(),
            version: String::new(),
            attributes: attrs(&s.resource.attributes),
            dropped_attributes_count: s.resource.dropped_attributes_count,
        },
        scope: Owner {
            name: s.scope.name.clone(),
            version: s.scope.version.clone(),
            attributes: attrs(&s.scope.attributes),
            dropped_attributes_count: s.scope.dropped_attributes_count,
        },
        events: s
            .events
            .iter()
            .map(|e| EventView {
                time_unix_nanos: e.time_unix_nanos,
                offset_nanos: (e.time_unix_nanos as i128 - s.start_unix_nanos as i128)
                    .clamp(i64::MIN as i128, i64::MAX as i128) as i64,
                name: e.name.clone(),
                attributes: attrs(&e.attributes),
            })
            .collect(),
        links: s
            .links
            .iter()
            .map(|l| LinkView {
                trace_id: l.trace_id.to_hex().to_string(),
                span_id: l.span_id.to_hex().to_string(),
                span: (l.trace_id == s.trace_id)
                    .then(|| spans.iter().position(|x| x.span_id == l.span_id))
                    .flatten(),
                trace_state: l.trace_state.clone(),
                attributes: attrs(&l.attributes),
            })
            .collect(),
        warnings: s.warnings.clone(),
        dropped_attributes_count: s.dropped_attributes_count,
        dropped_events_count: s.dropped_events_count,
        dropped_links_count: s.dropped_links_count,
    }
}

//! Trace analyses the web UI runs in the browser: the span tree, the timeline layout, the
//! critical path, statistics, structural diff, root-cause summary, search and the service graph.
//!
//! Every analysis starts from a [`SpanTree`], the prepared index of one trace, built once in
//! O(n log n). All analyses are O(n log n) at worst, use explicit stacks (no recursion, so
//! deep traces cannot overflow the stack) and accept malformed traces without panicking:
//! missing parents, parent cycles, duplicate span ids, children outside their parent and
//! zero or negative durations (read as zero, as [`Span::end_unix_nanos`] does).
//!
//! Result types derive `Serialize` so the browser module can hand them to JavaScript as they
//! are. Span references are indices into `trace.spans`.

pub mod critical_path;
pub mod diff;
pub mod graph;
pub mod rootcause;
pub mod search;
pub mod stats;
pub mod timeline;
pub mod tree;

#[cfg(test)]
mod testkit;

pub use critical_path::{critical_path, CriticalPath, CriticalSegment};
pub use diff::{diff_traces, DiffNode, DiffStatus, PathStep, TraceDiff};
pub use graph::{service_graph, ServiceGraph, ServiceNode};
pub use rootcause::{root_cause, CriticalOwner, RootCause, SlowerNode};
pub use search::search;
pub use stats::{stats_by_attribute, trace_stats, Group, ServiceOperation, Stat, TraceStats};
pub use timeline::{Timeline, TimelineRow};
pub use tree::{RootKind, SpanTree};

use alloc::string::String;
use core::fmt::Write;

use crate::model::{find_attr, AnyValue, Span};

/// A span's duration in nanoseconds, negative durations read as zero.
pub(crate) fn duration(span: &Span) -> u64 {
    span.end_unix_nanos() - span.start_unix_nanos
}

/// Appends the text form of `value` to `out`: strings as they are, integers and floats in
/// decimal, booleans as `true`/`false`, bytes as lowercase hex, arrays and maps as JSON-like
/// `[a, b]` and `{k: v}`. Nesting is walked with an explicit stack.
pub(crate) fn write_value_text(value: &AnyValue, out: &mut String) {
    enum Item<'v> {
        Value(&'v AnyValue),
        Text(&'static str),
        Key(&'v str),
    }
    let mut stack = alloc::vec![Item::Value(value)];
    while let Some(item) = stack.pop() {
        match item {
            Item::Text(t) => out.push_str(t),
            Item::Key(k) => {
                out.push_str(k);
                out.push_str(": ");
            }
            Item::Value(v) => match v {
                AnyValue::Str(s) => out.push_str(s),
                AnyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                AnyValue::Int(i) => {
                    let _ = write!(out, "{i}");
                }
                AnyValue::Double(d) => {
                    let _ = write!(out, "{d}");
                }
                AnyValue::Bytes(bytes) => {
                    for b in bytes {
                        let _ = write!(out, "{b:02x}");
                    }
                }
                AnyValue::Array(items) => {
                    stack.push(Item::Text("]"));
                    for (i, item) in items.iter().enumerate().rev() {
                        stack.push(Item::Value(item));
                        if i > 0 {
                            stack.push(Item::Text(", "));
                        }
                    }
                    stack.push(Item::Text("["));
                }
                AnyValue::Map(kvs) => {
                    stack.push(Item::Text("}"));
                    for (i, kv) in kvs.iter().enumerate().rev() {
                        stack.push(Item::Value(&kv.value));
                        stack.push(Item::Key(&kv.key));
                        if i > 0 {
                            stack.push(Item::Text(", "));
                        }
                    }
                    stack.push(Item::Text("{"));
                }
            },
        }
    }
}

/// The value of attribute `key` of a span, looked up in the span's attributes first and in its
/// resource's attributes second.
pub(crate) fn span_attr<'s>(span: &'s Span, key: &str) -> Option<&'s AnyValue> {
    find_attr(&span.attributes, key).or_else(|| find_attr(&span.resource.attributes, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyValue;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn value_text_forms() {
        let cases: Vec<(AnyValue, &str)> = vec![
            (AnyValue::Str("Hi".into()), "Hi"),
            (AnyValue::Bool(false), "false"),
            (AnyValue::Int(-7), "-7"),
            (AnyValue::Double(1.5), "1.5"),
            (AnyValue::Bytes(vec![0xde, 0x0a]), "de0a"),
            (
                AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Str("x".into())]),
                "[1, x]",
            ),
            (
                AnyValue::Map(vec![
                    KeyValue::new("a", AnyValue::Array(vec![])),
                    KeyValue::string("b", "c"),
                ]),
                "{a: [], b: c}",
            ),
        ];
        for (value, want) in cases {
            let mut out = String::new();
            write_value_text(&value, &mut out);
            assert_eq!(out, want, "{value:?}");
        }
    }

    #[test]
    fn deeply_nested_value_does_not_overflow() {
        let mut v = AnyValue::Int(1);
        for _ in 0..100_000 {
            v = AnyValue::Array(vec![v]);
        }
        let mut out = String::new();
        write_value_text(&v, &mut out);
        assert_eq!(out.len(), 200_001);
        // dropping a 100 000-deep value recurses in the compiler's drop glue; unwrap it
        // iteratively instead
        while let AnyValue::Array(mut items) = v {
            v = items.pop().unwrap_or(AnyValue::Int(0));
        }
    }
}

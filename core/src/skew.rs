//! Clock-skew adjustment of a whole trace at query time, following Jaeger's clock-skew
//! adjuster.
//!
//! The spans are arranged into a tree by span id. Walking down from each root, a child that
//! runs on a different host than its parent (see [`host_key`]) gets its own shift `delta`,
//! computed against the parent's (already shifted) timestamps:
//!
//! - if the child fits inside `[parent start, parent end]`, `delta = 0`;
//! - if the child is longer than the parent, only the starts can be aligned: a child starting
//!   before its parent is moved to the parent's start, otherwise `delta = 0`;
//! - otherwise the network latency is assumed to split equally between request and response, so
//!   the child is centred in its parent: `delta = parent start + (parent duration - child
//!   duration) / 2 - child start`.
//!
//! A child on the same host as its parent inherits the parent's shift, so a shifted span moves
//! with its whole same-host subtree; a different-host descendant gets its own shift, computed
//! afresh. Shifting moves the start and all event timestamps and adds the warning Jaeger shows,
//! `"This span's timestamps were adjusted by 1.2ms"` (the delta in Go's duration notation).
//!
//! Spans whose parent is missing from the trace, or that name themselves as parent, are roots.
//! Spans that sit in a parent cycle are unreachable from any root and are left untouched. With
//! duplicate span ids (Zipkin's shared client/server spans), children attach to the first span
//! with that id.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::model::{find_attr, AnyValue, Span, SpanId, Trace};

/// What identifies the host a span ran on, compared between parent and child.
#[derive(Debug, PartialEq)]
pub enum HostKey<'a> {
    /// The first of the resource attributes `host.name`, `host.ip`, `ip` (Jaeger's process tag).
    Attr(&'a AnyValue),
    /// The service name, when the resource names no host.
    Service(&'a str),
}

/// The host identity of a span: the resource's `host.name`, else `host.ip`, else `ip`, else the
/// service name.
pub fn host_key(span: &Span) -> HostKey<'_> {
    let attrs = &span.resource.attributes;
    ["host.name", "host.ip", "ip"]
        .iter()
        .find_map(|k| find_attr(attrs, k))
        .map(HostKey::Attr)
        .unwrap_or_else(|| HostKey::Service(span.service()))
}

/// Adjusts the trace's timestamps for clock skew between hosts, without a bound on the shift.
pub fn adjust_clock_skew(trace: &mut Trace) {
    adjust_clock_skew_max(trace, u64::MAX);
}

/// Like [`adjust_clock_skew`], but a computed shift larger than `max_delta_nanos` (in either
/// direction) is not applied; the span instead gets Jaeger's warning `"max clock skew adjustment
/// delta of 1s exceeded; not applying calculated delta of 2.5s"`, and its subtree is left as is
/// (unless a different-host descendant needs its own shift).
pub fn adjust_clock_skew_max(trace: &mut Trace, max_delta_nanos: u64) {
    let spans = &mut trace.spans;
    let n = spans.len();
    if n < 2 {
        return;
    }
    const NONE: usize = usize::MAX;
    let mut by_id: hashbrown::HashMap<SpanId, usize> = hashbrown::HashMap::with_capacity(n);
    for (i, s) in spans.iter().enumerate() {
        by_id.entry(s.span_id).or_insert(i);
    }
    // Children as linked lists: no allocation per node.
    let mut first_child = vec![NONE; n];
    let mut next_sibling = vec![NONE; n];
    let mut roots = Vec::new();
    for i in (0..n).rev() {
        let parent = spans[i]
            .parent_span_id
            .and_then(|p| by_id.get(&p).copied())
            .filter(|&p| p != i);
        match parent {
            Some(p) => {
                next_sibling[i] = first_child[p];
                first_child[p] = i;
            }
            None => roots.push(i),
        }
    }

    // Pass 1 (read-only): the shift of every reachable span, top-down.
    let mut delta = vec![0i64; n];
    let mut refused: Vec<(usize, i64)> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    for &root in roots.iter().rev() {
        stack.push(root);
        while let Some(p) = stack.pop() {
            let mut c = first_child[p];
            while c != NONE {
                let d = if host_key(&spans[c]) == host_key(&spans[p]) {
                    delta[p]
                } else {
                    let d = child_delta(&spans[p], delta[p], &spans[c]);
                    if d.unsigned_abs() > max_delta_nanos {
                        refused.push((c, d));
                        0
                    } else {
                        d
                    }
                };
                delta[c] = d;
                stack.push(c);
                c = next_sibling[c];
            }
        }
    }

    // Pass 2: apply.
    for (span, &d) in spans.iter_mut().zip(&delta) {
        if d == 0 {
            continue;
        }
        span.start_unix_nanos = shift(span.start_unix_nanos, d);
        for e in &mut span.events {
            e.time_unix_nanos = shift(e.time_unix_nanos, d);
        }
        span.warnings.push(format!(
            "This span's timestamps were adjusted by {}",
            go_duration(d)
        ));
    }
    for (i, d) in refused {
        spans[i].warnings.push(format!(
            "max clock skew adjustment delta of {} exceeded; not applying calculated delta of {}",
            go_duration(i64::try_from(max_delta_nanos).unwrap_or(i64::MAX)),
            go_duration(d)
        ));
    }
}

/// Jaeger's `calculateSkew`: the shift for `child` (unshifted) against `parent` whose own shift
/// is `parent_delta`.
fn child_delta(parent: &Span, parent_delta: i64, child: &Span) -> i64 {
    let p_dur = i128::from(parent.duration_nanos.max(0));
    let c_dur = i128::from(child.duration_nanos.max(0));
    let p_start = i128::from(parent.start_unix_nanos) + i128::from(parent_delta);
    let c_start = i128::from(child.start_unix_nanos);
    let d = if c_dur > p_dur {
        if c_start < p_start {
            p_start - c_start
        } else {
            0
        }
    } else if c_start >= p_start && c_start + c_dur <= p_start + p_dur {
        0
    } else {
        p_start + (p_dur - c_dur) / 2 - c_start
    };
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

fn shift(t: u64, d: i64) -> u64 {
    let v = i128::from(t) + i128::from(d);
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

/// Formats nanoseconds as Go's `time.Duration.String` does: `"300ns"`, `"1.5µs"`, `"1.2ms"`,
/// `"2.5s"`, `"2m0s"`, `"1h0m0.5s"`, `"-1.2ms"`, `"0s"`.
pub fn go_duration(nanos: i64) -> String {
    let mut out = String::new();
    if nanos == 0 {
        out.push_str("0s");
        return out;
    }
    if nanos < 0 {
        out.push('-');
    }
    let u = nanos.unsigned_abs();
    if u < 1_000 {
        let _ = write!(out, "{u}ns");
    } else if u < 1_000_000 {
        push_fraction(&mut out, u, 1_000, 3);
        out.push_str("µs");
    } else if u < 1_000_000_000 {
        push_fraction(&mut out, u, 1_000_000, 6);
        out.push_str("ms");
    } else {
        let secs = u / 1_000_000_000;
        let (h, m) = (secs / 3600, (secs / 60) % 60);
        if h > 0 {
            let _ = write!(out, "{h}h");
        }
        if h > 0 || m > 0 {
            let _ = write!(out, "{m}m");
        }
        push_fraction(&mut out, u % 60_000_000_000, 1_000_000_000, 9);
        out.push('s');
    }
    out
}

/// Writes `v / unit` with the fractional digits (at most `digits`) that are not trailing zeros.
fn push_fraction(out: &mut String, v: u64, unit: u64, digits: usize) {
    let _ = write!(out, "{}", v / unit);
    let rem = v % unit;
    if rem > 0 {
        let mut frac = String::new();
        let _ = write!(frac, "{rem:0digits$}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, KeyValue, Resource, TraceId};
    use alloc::string::ToString;
    use alloc::sync::Arc;

    /// A span: (id, parent, service, host or "" for none, start, duration).
    fn s(id: u64, parent: u64, service: &str, host: &str, start: u64, dur: i64) -> Span {
        let attributes = if host.is_empty() {
            Vec::new()
        } else {
            vec![KeyValue::string("host.name", host)]
        };
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(id),
            parent_span_id: (parent != 0).then_some(SpanId(parent)),
            start_unix_nanos: start,
            duration_nanos: dur,
            events: vec![Event {
                time_unix_nanos: start + 1,
                ..Default::default()
            }],
            resource: Arc::new(Resource {
                service_name: service.into(),
                attributes,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Runs the adjuster and returns (id, start, event time, warnings) per span.
    fn run(spans: Vec<Span>, max: u64) -> Vec<(u64, u64, u64, Vec<String>)> {
        let mut t = Trace {
            trace_id: TraceId(1),
            spans,
        };
        adjust_clock_skew_max(&mut t, max);
        t.spans
            .into_iter()
            .map(|s| {
                (
                    s.span_id.0,
                    s.start_unix_nanos,
                    s.events[0].time_unix_nanos,
                    s.warnings,
                )
            })
            .collect()
    }

    fn w(text: &str) -> Vec<String> {
        vec![text.to_string()]
    }

    #[test]
    fn skew_cases() {
        type Case = (&'static str, Vec<Span>, Vec<(u64, u64, u64, Vec<String>)>);
        let adj = |d: &str| w(&format!("This span's timestamps were adjusted by {d}"));
        let cases: Vec<Case> = vec![
            (
                "child on another host starts before its parent: centred",
                vec![
                    s(1, 0, "a", "h1", 1_000_000, 1_000_000),
                    s(2, 1, "b", "h2", 500_000, 200_000),
                ],
                // latency = (1ms - 0.2ms) / 2 = 0.4ms; new start 1.4ms; delta 0.9ms
                vec![
                    (1, 1_000_000, 1_000_001, vec![]),
                    (2, 1_400_000, 1_400_001, adj("900µs")),
                ],
            ),
            (
                "child ends after its parent: centred (negative delta)",
                vec![
                    s(1, 0, "a", "h1", 1_000, 100),
                    s(2, 1, "b", "h2", 1_090, 20),
                ],
                vec![(1, 1_000, 1_001, vec![]), (2, 1_040, 1_041, adj("-50ns"))],
            ),
            (
                "same host is never adjusted",
                vec![s(1, 0, "a", "h1", 1_000, 100), s(2, 1, "b", "h1", 5, 20)],
                vec![(1, 1_000, 1_001, vec![]), (2, 5, 6, vec![])],
            ),
            (
                "no host attribute: same service counts as same host",
                vec![s(1, 0, "a", "", 1_000, 100), s(2, 1, "a", "", 5, 20)],
                vec![(1, 1_000, 1_001, vec![]), (2, 5, 6, vec![])],
            ),
            (
                "no host attribute: other service is another host",
                vec![s(1, 0, "a", "", 1_000, 100), s(2, 1, "b", "", 5, 20)],
                vec![(1, 1_000, 1_001, vec![]), (2, 1_040, 1_041, adj("1.035µs"))],
            ),
            (
                "child fits: untouched",
                vec![
                    s(1, 0, "a", "h1", 1_000, 100),
                    s(2, 1, "b", "h2", 1_010, 20),
                ],
                vec![(1, 1_000, 1_001, vec![]), (2, 1_010, 1_011, vec![])],
            ),
            (
                "child longer than parent and earlier: starts aligned",
                vec![s(1, 0, "a", "h1", 1_000, 100), s(2, 1, "b", "h2", 900, 300)],
                vec![(1, 1_000, 1_001, vec![]), (2, 1_000, 1_001, adj("100ns"))],
            ),
            (
                "child longer than parent and later: untouched",
                vec![
                    s(1, 0, "a", "h1", 1_000, 100),
                    s(2, 1, "b", "h2", 1_500, 300),
                ],
                vec![(1, 1_000, 1_001, vec![]), (2, 1_500, 1_501, vec![])],
            ),
            (
                "missing parent: treated as root, untouched",
                vec![s(2, 9, "b", "h2", 5, 20), s(3, 2, "b", "h2", 6, 5)],
                vec![(2, 5, 6, vec![]), (3, 6, 7, vec![])],
            ),
            (
                "shift carries the same-host subtree; other host below gets its own shift",
                vec![
                    // listed child-first to show the order does not matter
                    s(4, 3, "d", "h3", 0, 10),
                    s(3, 2, "c", "h2", 100, 10),
                    s(2, 1, "b", "h2", 0, 200),
                    s(1, 0, "a", "h1", 10_000, 1_000),
                ],
                // 2: latency (1000-200)/2=400 -> start 10_400, delta 10_400
                // 3 same host as 2: +10_400 -> 10_500; fits in 2 [10_400, 10_600]
                // 4 other host, against 3 at 10_500 (dur 10): child dur 10 == parent, centred at 10_500
                vec![
                    (4, 10_500, 10_501, adj("10.5µs")),
                    (3, 10_500, 10_501, adj("10.4µs")),
                    (2, 10_400, 10_401, adj("10.4µs")),
                    (1, 10_000, 10_001, vec![]),
                ],
            ),
            (
                "cycle: no panic, untouched",
                vec![s(1, 2, "a", "h1", 0, 10), s(2, 1, "b", "h2", 100, 10)],
                vec![(1, 0, 1, vec![]), (2, 100, 101, vec![])],
            ),
            (
                "parent is self: a root",
                vec![s(1, 1, "a", "h1", 0, 10), s(2, 1, "b", "h2", 100, 4)],
                vec![(1, 0, 1, vec![]), (2, 3, 4, adj("-97ns"))],
            ),
        ];
        for (name, spans, want) in cases {
            assert_eq!(run(spans, u64::MAX), want, "{name}");
        }
    }

    #[test]
    fn max_delta_refuses_large_shifts() {
        let got = run(
            vec![
                s(1, 0, "a", "h1", 1_000_000_000, 100),
                s(2, 1, "b", "h2", 0, 100),
            ],
            1_000_000,
        );
        assert_eq!(
            got,
            vec![
                (1, 1_000_000_000, 1_000_000_001, vec![]),
                (2, 0, 1, w("max clock skew adjustment delta of 1ms exceeded; not applying calculated delta of 1s")),
            ]
        );
    }

    #[test]
    fn host_key_prefers_host_attributes() {
        let mut a = s(1, 0, "svc", "", 0, 1);
        assert_eq!(host_key(&a), HostKey::Service("svc"));
        a.resource = Arc::new(Resource {
            service_name: "svc".into(),
            attributes: vec![
                KeyValue::new("ip", AnyValue::Int(7)),
                KeyValue::string("host.ip", "10.0.0.1"),
            ],
            ..Default::default()
        });
        assert_eq!(
            host_key(&a),
            HostKey::Attr(&AnyValue::Str("10.0.0.1".into()))
        );
    }

    #[test]
    fn go_duration_formats() {
        let cases = [
            (0, "0s"),
            (300, "300ns"),
            (1_500, "1.5µs"),
            (1_200_000, "1.2ms"),
            (-1_200_000, "-1.2ms"),
            (1_000_000_000, "1s"),
            (2_500_000_000, "2.5s"),
            (120_000_000_000, "2m0s"),
            (3_600_500_000_000, "1h0m0.5s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (n, want) in cases {
            assert_eq!(go_duration(n), want, "{n}");
        }
    }

    #[test]
    fn empty_and_single_traces_are_fine() {
        let mut t = Trace::default();
        adjust_clock_skew(&mut t);
        assert!(t.spans.is_empty());
        assert_eq!(
            run(vec![s(1, 0, "a", "h", 5, 1)], u64::MAX),
            vec![(1, 5, 6, vec![])]
        );
    }
}

//! Trace statistics: per span its self time (its duration minus the union of its children's
//! time inside it), aggregated by service, by operation, by (service, operation) and by the
//! value of a chosen attribute: count, total, self total, min, max, average and errors.
//!
//! Self times come from each span's children, which the tree keeps sorted by start, so the
//! union is one merge pass: O(n) after the tree, plus O(g log g) to sort g groups.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use super::tree::SpanTree;
use super::{duration, span_attr, write_value_text};

/// Aggregates of a group of spans. Times are nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stat {
    /// Number of spans.
    pub count: u64,
    /// Sum of durations.
    pub total_nanos: u64,
    /// Sum of self times.
    pub self_nanos: u64,
    /// Shortest duration.
    pub min_nanos: u64,
    /// Longest duration.
    pub max_nanos: u64,
    /// Mean duration.
    pub avg_nanos: f64,
    /// Number of failed spans.
    pub errors: u64,
}

impl Stat {
    fn add(&mut self, dur: u64, self_time: u64, error: bool) {
        if self.count == 0 || dur < self.min_nanos {
            self.min_nanos = dur;
        }
        self.max_nanos = self.max_nanos.max(dur);
        self.count += 1;
        self.total_nanos = self.total_nanos.saturating_add(dur);
        self.self_nanos = self.self_nanos.saturating_add(self_time);
        self.errors += u64::from(error);
        self.avg_nanos = self.total_nanos as f64 / self.count as f64;
    }
}

/// One group: its key and its aggregates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group<K> {
    /// What the spans of the group share.
    pub key: K,
    /// Their aggregates.
    pub stat: Stat,
}

/// A (service, operation) pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ServiceOperation {
    /// Service name.
    pub service: String,
    /// Operation (span) name.
    pub operation: String,
}

/// Statistics of one trace; every list is sorted by key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceStats {
    /// The whole trace.
    pub all: Stat,
    /// By service.
    pub by_service: Vec<Group<String>>,
    /// By operation name, across services.
    pub by_operation: Vec<Group<String>>,
    /// By (service, operation).
    pub by_service_operation: Vec<Group<ServiceOperation>>,
    /// Self time of every span, indexed like the trace's spans.
    pub self_nanos: Vec<u64>,
}

/// Self time of every span: its duration minus the union of its children's intervals clipped
/// to the span.
pub fn self_times(tree: &SpanTree) -> Vec<u64> {
    let spans = tree.spans();
    (0..tree.len())
        .map(|i| {
            let (s, e) = (spans[i].start_unix_nanos, spans[i].end_unix_nanos());
            let mut covered = 0u64;
            // children are sorted by start, so a running end merges the union
            let mut run_end = s;
            for &c in tree.children(i) {
                let cs = spans[c].start_unix_nanos.clamp(run_end, e);
                let ce = spans[c].end_unix_nanos().clamp(cs, e);
                covered += ce - cs;
                run_end = run_end.max(ce);
            }
            (e - s) - covered
        })
        .collect()
}

/// Statistics of the tree's trace.
pub fn trace_stats(tree: &SpanTree) -> TraceStats {
    let spans = tree.spans();
    let self_nanos = self_times(tree);
    let mut all = Stat::default();
    let mut by_service: BTreeMap<&str, Stat> = BTreeMap::new();
    let mut by_operation: BTreeMap<&str, Stat> = BTreeMap::new();
    let mut by_pair: BTreeMap<(&str, &str), Stat> = BTreeMap::new();
    for (s, &own) in spans.iter().zip(&self_nanos) {
        let (d, e) = (duration(s), s.is_error());
        all.add(d, own, e);
        by_service.entry(s.service()).or_default().add(d, own, e);
        by_operation.entry(&s.name).or_default().add(d, own, e);
        by_pair
            .entry((s.service(), &s.name))
            .or_default()
            .add(d, own, e);
    }
    let named = |m: BTreeMap<&str, Stat>| {
        m.into_iter()
            .map(|(k, stat)| Group {
                key: String::from(k),
                stat,
            })
            .collect()
    };
    TraceStats {
        all,
        by_service: named(by_service),
        by_operation: named(by_operation),
        by_service_operation: by_pair
            .into_iter()
            .map(|((service, operation), stat)| Group {
                key: ServiceOperation {
                    service: service.into(),
                    operation: operation.into(),
                },
                stat,
            })
            .collect(),
        self_nanos,
    }
}

/// Statistics grouped by the text form of attribute `key` (span attributes first, then the
/// resource's); spans without it form the group `None`, listed first.
pub fn stats_by_attribute(tree: &SpanTree, key: &str) -> Vec<Group<Option<String>>> {
    let self_nanos = self_times(tree);
    let mut groups: BTreeMap<Option<String>, Stat> = BTreeMap::new();
    let mut text = String::new();
    for (s, &own) in tree.spans().iter().zip(&self_nanos) {
        let value = span_attr(s, key).map(|v| {
            text.clear();
            write_value_text(v, &mut text);
            text.as_str()
        });
        groups
            .entry(value.map(String::from))
            .or_default()
            .add(duration(s), own, s.is_error());
    }
    groups
        .into_iter()
        .map(|(key, stat)| Group { key, stat })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{attr, err, sp, trace};
    use crate::model::AnyValue;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn self_time_is_duration_minus_union_of_children_inside() {
        // (spans, self times)
        let cases: Vec<(Vec<crate::model::Span>, Vec<u64>)> = vec![
            (vec![sp(1, 0, "a", "r", 0, 100)], vec![100]),
            // overlapping children count once; a child sticking out counts only inside
            (
                vec![
                    sp(1, 0, "a", "r", 0, 100),
                    sp(2, 1, "a", "x", 10, 30),
                    sp(3, 1, "a", "y", 20, 30),
                    sp(4, 1, "a", "z", 90, 50),
                    sp(5, 1, "a", "w", 95, 1),
                ],
                vec![50, 30, 30, 50, 1],
            ),
            // children wholly outside, negative and zero durations
            (
                vec![
                    sp(1, 0, "a", "r", 100, 10),
                    sp(2, 1, "a", "x", 0, 50),
                    sp(3, 1, "a", "y", 200, 5),
                    sp(4, 1, "a", "z", 105, -7),
                ],
                vec![10, 50, 5, 0],
            ),
            // a cycle: the cut span's former parent is its child
            (
                vec![sp(1, 2, "a", "r", 0, 10), sp(2, 1, "a", "x", 2, 4)],
                vec![6, 4],
            ),
        ];
        for (i, (spans, want)) in cases.into_iter().enumerate() {
            let tr = trace(spans);
            assert_eq!(self_times(&SpanTree::new(&tr)), want, "case {i}");
        }
    }

    #[test]
    fn groups() {
        let tr = trace(vec![
            sp(1, 0, "api", "GET", 0, 100),
            err(sp(2, 1, "db", "query", 10, 20)),
            sp(3, 1, "db", "query", 40, 40),
            attr(sp(4, 1, "api", "query", 85, 10), "peer", AnyValue::Int(5)),
        ]);
        let st = trace_stats(&SpanTree::new(&tr));
        let stat = |count, total, own, min, max, avg, errors| Stat {
            count,
            total_nanos: total,
            self_nanos: own,
            min_nanos: min,
            max_nanos: max,
            avg_nanos: avg,
            errors,
        };
        assert_eq!(st.all, stat(4, 170, 100, 10, 100, 42.5, 1));
        assert_eq!(
            st.by_service,
            vec![
                Group {
                    key: "api".into(),
                    stat: stat(2, 110, 40, 10, 100, 55.0, 0)
                },
                Group {
                    key: "db".into(),
                    stat: stat(2, 60, 60, 20, 40, 30.0, 1)
                },
            ]
        );
        assert_eq!(
            st.by_operation
                .iter()
                .map(|g| (g.key.as_str(), g.stat.count))
                .collect::<Vec<_>>(),
            [("GET", 1), ("query", 3)]
        );
        assert_eq!(
            st.by_service_operation
                .iter()
                .map(|g| (
                    g.key.service.as_str(),
                    g.key.operation.as_str(),
                    g.stat.self_nanos
                ))
                .collect::<Vec<_>>(),
            [
                ("api", "GET", 30),
                ("api", "query", 10),
                ("db", "query", 60)
            ]
        );
        let by_peer = stats_by_attribute(&SpanTree::new(&tr), "peer");
        assert_eq!(
            by_peer
                .iter()
                .map(|g| (g.key.as_deref(), g.stat.count, g.stat.total_nanos))
                .collect::<Vec<_>>(),
            [(None, 3, 160), (Some("5"), 1, 10)]
        );
    }

    #[test]
    fn empty_trace() {
        let tr = trace(vec![]);
        let st = trace_stats(&SpanTree::new(&tr));
        assert_eq!((st.all, st.by_service.len()), (Stat::default(), 0));
    }
}

//! The critical path of a trace, computed as Jaeger UI computes it
//! (`packages/jaeger-ui/src/components/TracePage/CriticalPath/`).
//!
//! For each root: the subtree is pruned of non-blocking branches (a `Consumer` child of a
//! `Producer` span, with its descendants); in display order every child is clipped to its
//! (already clipped) parent, and a child wholly outside its parent is dropped with its
//! descendants. Then, from the root, the walk takes the last finishing child (LFC), the part
//! of the parent after it is critical, the walk descends into the LFC; when a span has no LFC
//! left its part from its own start is critical and the walk returns to the parent, now looking
//! for the child finishing last strictly before the returning child's start.
//!
//! Jaeger UI recurses and scans every child for each LFC lookup, quadratic in the children of a
//! span. Here the walk is a loop, and each span's children are sorted once by end time
//! (latest first, ties in display order as Jaeger's strict `>` picks the first) with a cursor
//! that only moves forward, because the returning start time only decreases: O(n log n) in
//! all. The one deliberate difference: Jaeger treats a timestamp of 0 as absent; here 0 is an
//! ordinary time.

use alloc::vec;
use alloc::vec::Vec;

use serde::Serialize;

use super::tree::SpanTree;
use crate::model::SpanKind;

/// A stretch of time during which one span is on the critical path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CriticalSegment {
    /// Index of the span in the trace.
    pub span: usize,
    /// Start, nanoseconds since the epoch.
    pub start: u64,
    /// End (exclusive), nanoseconds since the epoch; always after `start`.
    pub end: u64,
}

/// The critical path of a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CriticalPath {
    /// Segments in the order Jaeger UI emits them: root by root (roots by start time), each
    /// walked backwards from the root's end, so the segments of one root are contiguous and
    /// descending in time.
    pub segments: Vec<CriticalSegment>,
    /// Critical time of every span (nanoseconds), indexed like the trace's spans.
    pub span_nanos: Vec<u64>,
}

/// Computes the critical path of the tree's trace.
pub fn critical_path(tree: &SpanTree) -> CriticalPath {
    let spans = tree.spans();
    let n = tree.len();
    // Clipped times; `alive` says whether the span takes part.
    let mut start: Vec<u64> = spans.iter().map(|s| s.start_unix_nanos).collect();
    let mut end: Vec<u64> = spans.iter().map(|s| s.end_unix_nanos()).collect();
    let mut alive = vec![false; n];
    for &i in tree.preorder() {
        let Some(p) = tree.parent(i) else {
            alive[i] = true;
            continue;
        };
        if !alive[p] || (spans[p].kind == SpanKind::Producer && spans[i].kind == SpanKind::Consumer)
        {
            continue;
        }
        let (ps, pe) = (start[p], end[p]);
        if start[i] >= ps {
            if start[i] >= pe {
                continue;
            }
            end[i] = end[i].min(pe);
        } else {
            if end[i] <= ps {
                continue;
            }
            start[i] = ps;
            end[i] = end[i].min(pe);
        }
        alive[i] = true;
    }

    // Live children of every span, latest end first (stable: display order among equals).
    let mut offsets: Vec<usize> = Vec::with_capacity(n + 1);
    let mut by_end: Vec<usize> = Vec::with_capacity(n);
    for i in 0..n {
        let from = by_end.len();
        offsets.push(from);
        by_end.extend(tree.children(i).iter().copied().filter(|&c| alive[c]));
        by_end[from..].sort_by(|&a, &b| end[b].cmp(&end[a]));
    }
    offsets.push(by_end.len());
    let mut cursor = offsets.clone();

    let mut segments = Vec::new();
    let mut span_nanos = vec![0u64; n];
    let mut push = |span: usize, from: u64, to: u64| {
        if from < to {
            segments.push(CriticalSegment {
                span,
                start: from,
                end: to,
            });
            span_nanos[span] += to - from;
        }
    };
    for &root in tree.roots() {
        let mut cur = root;
        let mut returning: Option<u64> = None;
        loop {
            let limit = offsets[cur + 1];
            if let Some(r) = returning {
                while cursor[cur] < limit && end[by_end[cursor[cur]]] >= r {
                    cursor[cur] += 1;
                }
            }
            let section_end = returning.unwrap_or(end[cur]);
            if cursor[cur] < limit {
                let lfc = by_end[cursor[cur]];
                push(cur, end[lfc], section_end);
                cur = lfc;
                returning = None;
            } else {
                push(cur, start[cur], section_end);
                match tree.parent(cur) {
                    Some(p) if cur != root => {
                        returning = Some(start[cur]);
                        cur = p;
                    }
                    _ => break,
                }
            }
        }
    }
    CriticalPath {
        segments,
        span_nanos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{kind, sp, trace};
    use crate::model::{Span, Trace};
    use alloc::collections::BTreeMap;

    /// Segments as (span id, start, end).
    fn cp(spans: Vec<Span>) -> Vec<(u64, u64, u64)> {
        let tr = trace(spans);
        let tree = SpanTree::new(&tr);
        critical_path(&tree)
            .segments
            .iter()
            .map(|s| (tr.spans[s.span].span_id.0, s.start, s.end))
            .collect()
    }

    #[test]
    fn like_jaeger_ui() {
        // (spans, segments)
        type Case = (Vec<Span>, Vec<(u64, u64, u64)>);
        let cases: Vec<Case> = vec![
            (vec![], vec![]),
            // jaeger-ui test2: X [1,101) with A [10,50) and C [20,60)
            (
                vec![
                    sp(1, 0, "s", "X", 1, 100),
                    sp(2, 1, "s", "A", 10, 40),
                    sp(3, 1, "s", "C", 20, 40),
                ],
                vec![(1, 60, 101), (3, 20, 60), (1, 1, 20)],
            ),
            // sequential children: the walk returns to earlier ones
            (
                vec![
                    sp(1, 0, "s", "r", 0, 100),
                    sp(2, 1, "s", "a", 10, 20),
                    sp(3, 1, "s", "b", 40, 20),
                    sp(4, 3, "s", "c", 45, 5),
                ],
                vec![
                    (1, 60, 100),
                    (3, 50, 60),
                    (4, 45, 50),
                    (3, 40, 45),
                    (1, 30, 40),
                    (2, 10, 30),
                    (1, 0, 10),
                ],
            ),
            // a child outliving its parent is clipped; one starting after it is dropped; one
            // wholly before it too
            (
                vec![
                    sp(1, 0, "s", "r", 10, 100),
                    sp(2, 1, "s", "late", 80, 100),
                    sp(3, 1, "s", "after", 120, 10),
                    sp(4, 1, "s", "before", 0, 10),
                    sp(5, 2, "s", "grandchild", 150, 10),
                ],
                vec![(2, 80, 110), (1, 10, 80)],
            ),
            // a child starting before its parent is clipped to the parent's start
            (
                vec![sp(1, 0, "s", "r", 10, 100), sp(2, 1, "s", "early", 0, 30)],
                vec![(1, 30, 110), (2, 10, 30)],
            ),
            // producer -> consumer is not blocking
            (
                vec![
                    kind(sp(1, 0, "s", "r", 0, 100), SpanKind::Producer),
                    kind(sp(2, 1, "s", "c", 50, 40), SpanKind::Consumer),
                ],
                vec![(1, 0, 100)],
            ),
            // overlapping children: the walk skips a child ending after the returning start
            (
                vec![
                    sp(1, 0, "s", "r", 0, 100),
                    sp(2, 1, "s", "a", 10, 60),
                    sp(3, 1, "s", "b", 50, 40),
                ],
                vec![(1, 90, 100), (3, 50, 90), (1, 0, 50)],
            ),
            // zero durations, a missing parent (second root) and a cycle root
            (
                vec![
                    sp(1, 0, "s", "r", 0, 10),
                    sp(2, 1, "s", "z", 5, 0),
                    sp(3, 9, "s", "orphan", 20, 5),
                    sp(4, 4, "s", "loop", 30, -1),
                ],
                vec![(1, 5, 10), (1, 0, 5), (3, 20, 25)],
            ),
        ];
        for (i, (spans, want)) in cases.into_iter().enumerate() {
            assert_eq!(cp(spans), want, "case {i}");
        }
    }

    #[test]
    fn per_span_time() {
        let tr = trace(vec![
            sp(1, 0, "s", "r", 0, 100),
            sp(2, 1, "s", "a", 10, 20),
            sp(3, 1, "s", "b", 40, 20),
        ]);
        let tree = SpanTree::new(&tr);
        assert_eq!(critical_path(&tree).span_nanos, [60, 20, 20]);
    }

    /// A literal port of Jaeger UI's recursive algorithm (quadratic, small traces only).
    fn reference(tr: &Trace) -> Vec<(usize, u64, u64)> {
        let tree = SpanTree::new(tr);
        let n = tr.spans.len();
        let mut st: Vec<u64> = tr.spans.iter().map(|s| s.start_unix_nanos).collect();
        let mut en: Vec<u64> = tr.spans.iter().map(|s| s.end_unix_nanos()).collect();
        let mut kids: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut alive = vec![false; n];
        for &i in tree.preorder() {
            match tree.parent(i) {
                None => alive[i] = true,
                Some(p) => {
                    if !alive[p] {
                        continue;
                    }
                    let (ps, pe) = (st[p], en[p]);
                    let keep = if st[i] >= ps {
                        if st[i] >= pe {
                            false
                        } else {
                            if en[i] > pe {
                                en[i] = pe;
                            }
                            true
                        }
                    } else if en[i] <= ps {
                        false
                    } else if en[i] <= pe {
                        st[i] = ps;
                        true
                    } else {
                        st[i] = ps;
                        en[i] = pe;
                        true
                    };
                    if keep {
                        alive[i] = true;
                        kids.entry(p).or_default().push(i);
                    }
                }
            }
        }
        #[allow(clippy::too_many_arguments)]
        fn go(
            cur: usize,
            ret: Option<u64>,
            kids: &BTreeMap<usize, Vec<usize>>,
            st: &[u64],
            en: &[u64],
            tree: &SpanTree,
            root: usize,
            out: &mut Vec<(usize, u64, u64)>,
        ) {
            let mut lfc = None;
            let mut max = None;
            for &c in kids.get(&cur).map(Vec::as_slice).unwrap_or(&[]) {
                if ret.is_none_or(|r| en[c] < r) && max.is_none_or(|m| en[c] > m) {
                    max = Some(en[c]);
                    lfc = Some(c);
                }
            }
            let section_end = ret.unwrap_or(en[cur]);
            match lfc {
                Some(c) => {
                    if en[c] != section_end {
                        out.push((cur, en[c], section_end));
                    }
                    go(c, None, kids, st, en, tree, root, out);
                }
                None => {
                    if st[cur] != section_end {
                        out.push((cur, st[cur], section_end));
                    }
                    if cur != root {
                        if let Some(p) = tree.parent(cur) {
                            go(p, Some(st[cur]), kids, st, en, tree, root, out);
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for &r in tree.roots() {
            go(r, None, &kids, &st, &en, &tree, r, &mut out);
        }
        out
    }

    #[test]
    fn matches_the_literal_port_on_random_traces() {
        let mut state: u64 = 7;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        for round in 0..300 {
            let n = 1 + next(40);
            let spans: Vec<Span> = (1..=n)
                .map(|id| {
                    // parents among earlier ids, sometimes missing, sometimes none
                    let parent = match next(10) {
                        0 => 0,
                        1 => 1000 + id,
                        _ if id > 1 => 1 + next(id - 1),
                        _ => 0,
                    };
                    sp(id, parent, "s", "op", next(100), next(60) as i64 - 5)
                })
                .collect();
            let tr = trace(spans);
            let tree = SpanTree::new(&tr);
            let got: Vec<(usize, u64, u64)> = critical_path(&tree)
                .segments
                .iter()
                .map(|s| (s.span, s.start, s.end))
                .collect();
            assert_eq!(got, reference(&tr), "round {round}: {:?}", tr.spans);
        }
    }
}

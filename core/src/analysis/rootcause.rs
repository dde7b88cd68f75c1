//! Root-cause summary of a trace: where errors originate, which spans own most of the critical
//! path, and, against a baseline trace of the same operation, what got slower.

use alloc::vec::Vec;

use serde::Serialize;

use super::critical_path::critical_path;
use super::diff::{diff_traces, DiffNode, PathStep};
use super::tree::SpanTree;

/// A span owning part of the critical path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriticalOwner {
    /// Index of the span in the trace.
    pub span: usize,
    /// Its critical time, nanoseconds.
    pub critical_nanos: u64,
    /// Its share of the whole critical path, in [0, 1].
    pub share: f64,
}

/// A diff node that took more self time than in the baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlowerNode {
    /// The node's path of (service, operation) from the top.
    pub path: Vec<PathStep>,
    /// Self time added: this trace's total self time there minus the baseline's (nanoseconds,
    /// always positive).
    pub added_self_nanos: u64,
    /// The node as the diff gives it (A is the baseline, B this trace).
    pub node: DiffNode,
}

/// The root-cause summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RootCause {
    /// Failed spans none of whose children failed, in display order.
    pub error_origins: Vec<usize>,
    /// The `top_n` spans with the most critical time, most first (ties by display order);
    /// spans with none are left out.
    pub critical_owners: Vec<CriticalOwner>,
    /// With a baseline: the diff nodes whose self time grew, most added first (ties in display
    /// order), at most `top_n`. Empty without a baseline.
    pub slower: Vec<SlowerNode>,
}

/// Summarises `tree`'s trace; `baseline` is an earlier trace of the same operation.
pub fn root_cause(tree: &SpanTree, top_n: usize, baseline: Option<&SpanTree>) -> RootCause {
    let spans = tree.spans();
    let error_origins = tree
        .preorder()
        .iter()
        .copied()
        .filter(|&i| spans[i].is_error() && !tree.children(i).iter().any(|&c| spans[c].is_error()))
        .collect();

    let cp = critical_path(tree);
    let whole: u64 = cp.span_nanos.iter().sum();
    let mut owners: Vec<usize> = tree
        .preorder()
        .iter()
        .copied()
        .filter(|&i| cp.span_nanos[i] > 0)
        .collect();
    owners.sort_by(|&x, &y| cp.span_nanos[y].cmp(&cp.span_nanos[x]));
    owners.truncate(top_n);
    let critical_owners = owners
        .into_iter()
        .map(|span| CriticalOwner {
            span,
            critical_nanos: cp.span_nanos[span],
            share: cp.span_nanos[span] as f64 / whole as f64,
        })
        .collect();

    let slower = match baseline {
        None => Vec::new(),
        Some(base) => {
            let d = diff_traces(base, tree);
            let mut grown: Vec<(usize, u64)> = d
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.self_b_nanos > n.self_a_nanos)
                .map(|(i, n)| (i, n.self_b_nanos - n.self_a_nanos))
                .collect();
            grown.sort_by_key(|x| core::cmp::Reverse(x.1));
            grown.truncate(top_n);
            grown
                .into_iter()
                .map(|(i, added)| SlowerNode {
                    path: d.path(i),
                    added_self_nanos: added,
                    node: d.nodes[i].clone(),
                })
                .collect()
        }
    };
    RootCause {
        error_origins,
        critical_owners,
        slower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{err, sp, trace};
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn summary() {
        let base = trace(vec![
            sp(1, 0, "fe", "GET", 0, 100),
            sp(2, 1, "be", "q", 10, 50),
            sp(3, 1, "db", "sel", 70, 20),
        ]);
        let now = trace(vec![
            sp(1, 0, "fe", "GET", 0, 200),
            err(sp(2, 1, "be", "q", 10, 150)),
            err(sp(4, 2, "be", "retry", 20, 30)),
            err(sp(5, 1, "db", "sel", 170, 20)),
            // a failed child of a missing parent is an origin too
            err(sp(6, 9, "x", "y", 0, 1)),
        ]);
        let (tb, tn) = (SpanTree::new(&base), SpanTree::new(&now));
        let rc = root_cause(&tn, 2, Some(&tb));
        // display order: roots 1 and 6 both start at 0, ties by index: 1, 2, 4, 5, then 6
        assert_eq!(rc.error_origins, [2, 3, 4]);
        // critical path of root 1: 1 [190,200), 5 [170,190), 1 [160,170), 2 [50,160),
        // 4 [20,50), 2 [10,20), 1 [0,10); root 6: [0,1)
        let owners: Vec<(usize, u64)> = rc
            .critical_owners
            .iter()
            .map(|o| (o.span, o.critical_nanos))
            .collect();
        // ties (spans 1 and 4, 30 each) go in display order
        assert_eq!(owners, [(1, 120), (0, 30)]);
        assert_eq!(rc.critical_owners[0].share, 120.0 / 201.0);
        let slower: Vec<(String, u64)> = rc
            .slower
            .iter()
            .map(|s| {
                let last = s
                    .path
                    .last()
                    .map(|p| p.operation.clone())
                    .unwrap_or_default();
                (last, s.added_self_nanos)
            })
            .collect();
        // be:q self 50 -> 120; be:retry new 30; fe:GET 30 -> 30; x:y new 1 (cut by top 2)
        assert_eq!(slower, vec![("q".into(), 70), ("retry".into(), 30)]);
        assert_eq!(rc.slower[0].path.len(), 2);
        assert!(root_cause(&tn, 5, None).slower.is_empty());
    }

    #[test]
    fn empty_and_zero() {
        let e = trace(vec![]);
        let te = SpanTree::new(&e);
        let rc = root_cause(&te, 3, Some(&te));
        assert!(
            rc.error_origins.is_empty() && rc.critical_owners.is_empty() && rc.slower.is_empty()
        );
        let z = trace(vec![err(sp(1, 0, "a", "b", 5, 0))]);
        let tz = SpanTree::new(&z);
        let rc = root_cause(&tz, 3, None);
        assert_eq!((rc.error_origins, rc.critical_owners), (vec![0], vec![]));
    }
}

//! Structural diff of two traces, as Jaeger UI's trace comparison: spans are merged into nodes
//! keyed by the path of (service, operation) pairs from their root, and every node compares
//! how many spans each trace has there and how long they took on average.
//!
//! O(n log n): one hash lookup per span, then one sort per sibling list of nodes.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashMap;
use serde::Serialize;

use super::duration;
use super::stats::self_times;
use super::tree::SpanTree;

/// How a node differs between trace A and trace B.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffStatus {
    /// Only in B.
    Added,
    /// Only in A.
    Removed,
    /// In both, with a different number of spans.
    Changed,
    /// In both, with the same number of spans.
    Same,
}

/// One step of a node's path: a (service, operation) pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PathStep {
    /// Service name.
    pub service: String,
    /// Operation (span) name.
    pub operation: String,
}

/// One node of the merged tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiffNode {
    /// The parent node (index into [`TraceDiff::nodes`]), `None` at the top.
    pub parent: Option<usize>,
    /// Depth (top nodes are at 0).
    pub depth: usize,
    /// The last step of the node's path.
    pub step: PathStep,
    /// Spans of trace A at this node.
    pub count_a: u64,
    /// Spans of trace B at this node.
    pub count_b: u64,
    /// How the node differs.
    pub status: DiffStatus,
    /// Mean duration of A's spans here (nanoseconds), `None` without any.
    pub mean_a_nanos: Option<f64>,
    /// Mean duration of B's spans here (nanoseconds), `None` without any.
    pub mean_b_nanos: Option<f64>,
    /// `mean_b_nanos - mean_a_nanos` when both exist.
    pub mean_change_nanos: Option<f64>,
    /// Total self time of A's spans here.
    pub self_a_nanos: u64,
    /// Total self time of B's spans here.
    pub self_b_nanos: u64,
}

/// The diff of two traces.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceDiff {
    /// Nodes in display order: top nodes, each followed by its subtree, siblings sorted by
    /// (service, operation). A parent always comes before its children.
    pub nodes: Vec<DiffNode>,
    /// For every span of A, its node.
    pub node_of_a: Vec<usize>,
    /// For every span of B, its node.
    pub node_of_b: Vec<usize>,
}

impl TraceDiff {
    /// The path of node `node` from the top (empty for an index outside the diff).
    pub fn path(&self, node: usize) -> Vec<PathStep> {
        let mut path = Vec::new();
        let mut cur = self.nodes.get(node).map(|_| node);
        while let Some(i) = cur {
            path.push(self.nodes[i].step.clone());
            cur = self.nodes[i].parent;
        }
        path.reverse();
        path
    }
}

#[derive(Default)]
struct Acc {
    count: [u64; 2],
    total: [u64; 2],
    own: [u64; 2],
}

const TOP: usize = usize::MAX;

/// Diffs trace A (`a`, usually the baseline) against trace B (`b`).
pub fn diff_traces(a: &SpanTree, b: &SpanTree) -> TraceDiff {
    // Interned nodes in creation order: (parent, service, operation).
    let mut keys: Vec<(usize, &str, &str)> = Vec::new();
    let mut accs: Vec<Acc> = Vec::new();
    let mut ids: HashMap<(usize, &str, &str), usize> = HashMap::new();
    let mut node_of: [Vec<usize>; 2] = [vec![0; a.len()], vec![0; b.len()]];
    for (side, tree) in [a, b].into_iter().enumerate() {
        let spans = tree.spans();
        let own = self_times(tree);
        for &i in tree.preorder() {
            let parent = tree.parent(i).map_or(TOP, |p| node_of[side][p]);
            let key = (parent, spans[i].service(), spans[i].name.as_str());
            let node = *ids.entry(key).or_insert_with(|| {
                keys.push(key);
                accs.push(Acc::default());
                keys.len() - 1
            });
            node_of[side][i] = node;
            let acc = &mut accs[node];
            acc.count[side] += 1;
            acc.total[side] = acc.total[side].saturating_add(duration(&spans[i]));
            acc.own[side] = acc.own[side].saturating_add(own[i]);
        }
    }

    // Display order: children lists sorted by (service, operation), walked with a stack.
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    let mut tops: Vec<usize> = Vec::new();
    for (n, &(parent, _, _)) in keys.iter().enumerate() {
        match kids.get_mut(parent) {
            Some(k) => k.push(n),
            None => tops.push(n),
        }
    }
    let by_step = |x: &usize| (keys[*x].1, keys[*x].2);
    tops.sort_unstable_by_key(by_step);
    kids.iter_mut()
        .for_each(|k| k.sort_unstable_by_key(by_step));
    let mut order: Vec<usize> = Vec::with_capacity(keys.len());
    let mut new_index = vec![0usize; keys.len()];
    let mut depth = vec![0usize; keys.len()];
    let mut stack: Vec<usize> = tops.iter().rev().copied().collect();
    while let Some(n) = stack.pop() {
        new_index[n] = order.len();
        order.push(n);
        for &k in kids[n].iter().rev() {
            depth[k] = depth[n] + 1;
            stack.push(k);
        }
    }

    let mean = |total: u64, count: u64| (count > 0).then(|| total as f64 / count as f64);
    let nodes = order
        .iter()
        .map(|&n| {
            let (parent, service, operation) = keys[n];
            let acc = &accs[n];
            let [ca, cb] = acc.count;
            let (ma, mb) = (mean(acc.total[0], ca), mean(acc.total[1], cb));
            DiffNode {
                parent: (parent != TOP).then(|| new_index[parent]),
                depth: depth[n],
                step: PathStep {
                    service: service.into(),
                    operation: operation.into(),
                },
                count_a: ca,
                count_b: cb,
                status: match (ca, cb) {
                    (0, _) => DiffStatus::Added,
                    (_, 0) => DiffStatus::Removed,
                    _ if ca != cb => DiffStatus::Changed,
                    _ => DiffStatus::Same,
                },
                mean_a_nanos: ma,
                mean_b_nanos: mb,
                mean_change_nanos: ma.zip(mb).map(|(x, y)| y - x),
                self_a_nanos: acc.own[0],
                self_b_nanos: acc.own[1],
            }
        })
        .collect();
    let [na, nb] = node_of;
    TraceDiff {
        nodes,
        node_of_a: na.into_iter().map(|n| new_index[n]).collect(),
        node_of_b: nb.into_iter().map(|n| new_index[n]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{sp, trace};

    /// Nodes as (path "svc:op/...", count A, count B, status, mean change).
    fn summary(d: &TraceDiff) -> Vec<(String, u64, u64, DiffStatus, Option<f64>)> {
        (0..d.nodes.len())
            .map(|i| {
                let path: Vec<String> = d
                    .path(i)
                    .iter()
                    .map(|s| alloc::format!("{}:{}", s.service, s.operation))
                    .collect();
                let n = &d.nodes[i];
                (
                    path.join("/"),
                    n.count_a,
                    n.count_b,
                    n.status,
                    n.mean_change_nanos,
                )
            })
            .collect()
    }

    #[test]
    fn merged_by_path() {
        use DiffStatus::*;
        let a = trace(vec![
            sp(1, 0, "fe", "GET", 0, 100),
            sp(2, 1, "be", "q", 10, 10),
            sp(3, 1, "be", "q", 30, 30),
            sp(4, 3, "db", "sel", 35, 5),
            sp(5, 1, "cache", "get", 70, 4),
        ]);
        let b = trace(vec![
            sp(1, 0, "fe", "GET", 0, 150),
            sp(2, 1, "be", "q", 10, 60),
            sp(4, 2, "db", "sel", 35, 5),
            sp(6, 2, "db", "ins", 50, 5),
            // same (service, op) under another path is another node
            sp(7, 1, "db", "sel", 100, 1),
            // orphan: its own top node
            sp(8, 99, "be", "q", 0, 1),
        ]);
        let (ta, tb) = (SpanTree::new(&a), SpanTree::new(&b));
        let d = diff_traces(&ta, &tb);
        assert_eq!(
            summary(&d),
            vec![
                ("be:q".into(), 0, 1, Added, None),
                ("fe:GET".into(), 1, 1, Same, Some(50.0)),
                ("fe:GET/be:q".into(), 2, 1, Changed, Some(40.0)),
                ("fe:GET/be:q/db:ins".into(), 0, 1, Added, None),
                ("fe:GET/be:q/db:sel".into(), 1, 1, Same, Some(0.0)),
                ("fe:GET/cache:get".into(), 1, 0, Removed, None),
                ("fe:GET/db:sel".into(), 0, 1, Added, None),
            ]
        );
        assert_eq!(d.node_of_a, [1, 2, 2, 4, 5]);
        assert_eq!(d.nodes[2].parent, Some(1));
        assert_eq!(d.nodes[3].depth, 2);
        // fe:GET self time: A 100 - (10 + 30 + 4), B 150 - 60 - 1
        assert_eq!((d.nodes[1].self_a_nanos, d.nodes[1].self_b_nanos), (56, 89));
        assert!(d.path(99).is_empty());
    }

    #[test]
    fn cycles_and_empty() {
        let a = trace(vec![sp(1, 2, "s", "x", 0, 1), sp(2, 1, "s", "y", 1, 1)]);
        let e = trace(vec![]);
        let (ta, te) = (SpanTree::new(&a), SpanTree::new(&e));
        let d = diff_traces(&ta, &te);
        assert_eq!(
            summary(&d),
            vec![
                ("s:x".into(), 1, 0, DiffStatus::Removed, None),
                ("s:x/s:y".into(), 1, 0, DiffStatus::Removed, None)
            ]
        );
        assert!(diff_traces(&te, &te).nodes.is_empty());
    }
}

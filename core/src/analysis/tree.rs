//! The span tree of a trace, the prepared index every other analysis reads.
//!
//! A span whose parent is in the trace hangs under it; a span without a parent is a root, and so
//! is one whose parent is absent from the trace ([`RootKind::MissingParent`]) or whose parent
//! chain loops back on itself ([`RootKind::Cycle`]: the earliest span of the loop becomes the
//! root). Children are sorted by start time (then by index). When several spans share an id,
//! children attach to the first of them and the others are flagged as duplicates.

use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashMap;
use serde::Serialize;

use crate::model::{Span, SpanId, Trace};

/// Why a span is a root of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// The span has no parent: a true root.
    NoParent,
    /// The span names a parent that is not in the trace.
    MissingParent,
    /// The span's parent chain loops; the loop was cut above this span.
    Cycle,
}

/// The span tree of one trace, with the orders and sizes the analyses need.
///
/// Building it is O(n log n) (a hash map of ids and one sort per sibling list); every accessor
/// is O(1). Accessors given an index outside the trace answer as for a span with no relatives.
#[derive(Clone, Debug)]
pub struct SpanTree<'a> {
    trace: &'a Trace,
    parent: Vec<Option<usize>>,
    root_kind: Vec<Option<RootKind>>,
    duplicate: Vec<bool>,
    /// Children of span `i` are `children[child_start[i]..child_start[i + 1]]`.
    child_start: Vec<usize>,
    children: Vec<usize>,
    roots: Vec<usize>,
    depth: Vec<usize>,
    preorder: Vec<usize>,
    position: Vec<usize>,
    subtree_len: Vec<usize>,
    max_depth: usize,
    start: u64,
    end: u64,
}

const UNSEEN: usize = usize::MAX;

impl<'a> SpanTree<'a> {
    /// Builds the tree of `trace`.
    pub fn new(trace: &'a Trace) -> Self {
        let spans = &trace.spans;
        let n = spans.len();
        let key = |i: usize| (spans[i].start_unix_nanos, i);

        let mut first: HashMap<SpanId, usize> = HashMap::with_capacity(n);
        let mut duplicate = vec![false; n];
        for (i, s) in spans.iter().enumerate() {
            if first.try_insert_or_flag(s.span_id, i) {
                duplicate[i] = true;
            }
        }
        let mut parent: Vec<Option<usize>> = Vec::with_capacity(n);
        let mut root_kind: Vec<Option<RootKind>> = Vec::with_capacity(n);
        for s in spans {
            match s.parent_span_id {
                None => {
                    parent.push(None);
                    root_kind.push(Some(RootKind::NoParent));
                }
                Some(p) => match first.get(&p) {
                    Some(&pi) => {
                        parent.push(Some(pi));
                        root_kind.push(None);
                    }
                    None => {
                        parent.push(None);
                        root_kind.push(Some(RootKind::MissingParent));
                    }
                },
            }
        }

        // Cut parent cycles: walk up from every span not yet known to reach a root; a walk
        // that meets itself has found a loop, whose earliest span becomes a root.
        let mut walk = vec![UNSEEN; n];
        let mut resolved = vec![false; n];
        let mut path: Vec<usize> = Vec::new();
        for i in 0..n {
            path.clear();
            let mut cur = i;
            loop {
                if resolved[cur] {
                    break;
                }
                if walk[cur] == i {
                    // `cur` is on a loop made of the path from `cur` onwards.
                    let from = path.iter().position(|&p| p == cur).unwrap_or(0);
                    if let Some(&cut) = path[from..].iter().min_by_key(|&&p| key(p)) {
                        parent[cut] = None;
                        root_kind[cut] = Some(RootKind::Cycle);
                    }
                    break;
                }
                walk[cur] = i;
                path.push(cur);
                match parent[cur] {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            for &p in &path {
                resolved[p] = true;
            }
        }

        // Children in CSR form, each sibling list sorted by start time.
        let mut child_start = vec![0usize; n + 1];
        for p in parent.iter().flatten() {
            child_start[p + 1] += 1;
        }
        for i in 0..n {
            child_start[i + 1] += child_start[i];
        }
        let mut fill = child_start.clone();
        let mut children = vec![0usize; child_start[n]];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                children[fill[p]] = i;
                fill[p] += 1;
            }
        }
        for i in 0..n {
            children[child_start[i]..child_start[i + 1]].sort_unstable_by_key(|&c| key(c));
        }
        let mut roots: Vec<usize> = (0..n).filter(|&i| parent[i].is_none()).collect();
        roots.sort_unstable_by_key(|&r| key(r));

        // Preorder with an explicit stack.
        let mut depth = vec![0usize; n];
        let mut preorder = Vec::with_capacity(n);
        let mut position = vec![0usize; n];
        let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
        let mut max_depth = 0;
        while let Some(i) = stack.pop() {
            position[i] = preorder.len();
            preorder.push(i);
            if let Some(p) = parent[i] {
                depth[i] = depth[p] + 1;
                max_depth = max_depth.max(depth[i]);
            }
            stack.extend(children[child_start[i]..child_start[i + 1]].iter().rev());
        }
        let mut subtree_len = vec![1usize; n];
        for &i in preorder.iter().rev() {
            if let Some(p) = parent[i] {
                subtree_len[p] += subtree_len[i];
            }
        }

        SpanTree {
            trace,
            parent,
            root_kind,
            duplicate,
            child_start,
            children,
            roots,
            depth,
            preorder,
            position,
            subtree_len,
            max_depth,
            start: trace.start_unix_nanos(),
            end: spans.iter().map(Span::end_unix_nanos).max().unwrap_or(0),
        }
    }

    /// The trace this tree indexes.
    pub fn trace(&self) -> &'a Trace {
        self.trace
    }

    /// The spans, indexed as everywhere in this module.
    pub fn spans(&self) -> &'a [Span] {
        &self.trace.spans
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether the trace has no spans.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The roots, sorted by start time.
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// Why span `i` is a root, or `None` if it has a parent in the tree.
    pub fn root_kind(&self, i: usize) -> Option<RootKind> {
        self.root_kind.get(i).copied().flatten()
    }

    /// The parent of span `i` in the tree.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parent.get(i).copied().flatten()
    }

    /// The children of span `i`, sorted by start time.
    pub fn children(&self, i: usize) -> &[usize] {
        match (self.child_start.get(i), self.child_start.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.children[a..b],
            _ => &[],
        }
    }

    /// Depth of span `i` (roots are at 0).
    pub fn depth(&self, i: usize) -> usize {
        self.depth.get(i).copied().unwrap_or(0)
    }

    /// The greatest depth of any span.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Whether span `i` repeats the id of an earlier span (children attach to the earlier one).
    pub fn is_duplicate(&self, i: usize) -> bool {
        self.duplicate.get(i).copied().unwrap_or(false)
    }

    /// All spans in display order: roots by start time, each followed by its subtree, siblings
    /// by start time.
    pub fn preorder(&self) -> &[usize] {
        &self.preorder
    }

    /// Where span `i` sits in [`preorder`](Self::preorder).
    pub fn position(&self, i: usize) -> usize {
        self.position.get(i).copied().unwrap_or(0)
    }

    /// Number of spans in the subtree of span `i`, itself included; the subtree occupies
    /// `preorder()[position(i)..position(i) + subtree_len(i)]`.
    pub fn subtree_len(&self, i: usize) -> usize {
        self.subtree_len.get(i).copied().unwrap_or(0)
    }

    /// Earliest span start of the trace (0 when empty).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Latest span end of the trace (0 when empty).
    pub fn end(&self) -> u64 {
        self.end
    }
}

trait InsertFirst {
    /// Inserts `id -> i` unless `id` is present; returns whether it was.
    fn try_insert_or_flag(&mut self, id: SpanId, i: usize) -> bool;
}

impl InsertFirst for HashMap<SpanId, usize> {
    fn try_insert_or_flag(&mut self, id: SpanId, i: usize) -> bool {
        match self.entry(id) {
            hashbrown::hash_map::Entry::Occupied(_) => true,
            hashbrown::hash_map::Entry::Vacant(e) => {
                e.insert(i);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{sp, trace};
    use alloc::vec::Vec;

    /// What a tree looks like in a test: (preorder as span ids, depths, root kinds as letters:
    /// `n` no parent, `m` missing parent, `c` cycle, `-` not a root).
    fn shape(t: &SpanTree) -> (Vec<u64>, Vec<usize>, alloc::string::String) {
        let ids = t
            .preorder()
            .iter()
            .map(|&i| t.spans()[i].span_id.0)
            .collect();
        let depths = t.preorder().iter().map(|&i| t.depth(i)).collect();
        let kinds = t
            .preorder()
            .iter()
            .map(|&i| match t.root_kind(i) {
                Some(RootKind::NoParent) => 'n',
                Some(RootKind::MissingParent) => 'm',
                Some(RootKind::Cycle) => 'c',
                None => '-',
            })
            .collect();
        (ids, depths, kinds)
    }

    #[test]
    fn shapes() {
        // (spans as (id, parent, start), preorder ids, depths, root kinds)
        type Case = (Vec<(u64, u64, u64)>, Vec<u64>, Vec<usize>, &'static str);
        let cases: Vec<Case> = vec![
            (vec![], vec![], vec![], ""),
            // children sorted by start, whatever the input order
            (
                vec![(3, 1, 30), (2, 1, 20), (1, 0, 0), (4, 2, 25)],
                vec![1, 2, 4, 3],
                vec![0, 1, 2, 1],
                "n---",
            ),
            // missing parent: a second root, flagged, roots sorted by start
            (
                vec![(1, 0, 10), (2, 9, 5), (3, 2, 6)],
                vec![2, 3, 1],
                vec![0, 1, 0],
                "m-n",
            ),
            // self parent and a two-span loop: the earliest span of each loop becomes a root
            (
                vec![(1, 1, 0), (2, 3, 9), (3, 2, 7), (4, 2, 8)],
                vec![1, 3, 2, 4],
                vec![0, 0, 1, 2],
                "cc--",
            ),
            // a chain hanging off a loop
            (
                vec![(5, 4, 1), (4, 6, 2), (6, 4, 3)],
                vec![4, 5, 6],
                vec![0, 1, 1],
                "c--",
            ),
            // duplicate ids: children attach to the first; the duplicate keeps its own parent
            (
                vec![(1, 0, 0), (2, 1, 1), (2, 1, 2), (3, 2, 3)],
                vec![1, 2, 3, 2],
                vec![0, 1, 2, 1],
                "n---",
            ),
            // equal starts keep input order
            (
                vec![(1, 0, 0), (7, 1, 5), (6, 1, 5)],
                vec![1, 7, 6],
                vec![0, 1, 1],
                "n--",
            ),
        ];
        for (i, (spans, ids, depths, kinds)) in cases.into_iter().enumerate() {
            let tr = trace(
                spans
                    .into_iter()
                    .map(|(id, p, start)| sp(id, p, "s", "op", start, 1))
                    .collect(),
            );
            let t = SpanTree::new(&tr);
            assert_eq!(shape(&t), (ids, depths, kinds.into()), "case {i}");
        }
    }

    #[test]
    fn sizes_positions_and_window() {
        let tr = trace(vec![
            sp(1, 0, "a", "root", 100, 50),
            sp(2, 1, "a", "x", 90, -5),
            sp(3, 2, "a", "y", 95, 200),
            sp(4, 1, "a", "z", 120, 0),
        ]);
        let t = SpanTree::new(&tr);
        assert_eq!(t.preorder(), &[0, 1, 2, 3]);
        assert_eq!(
            (0..4).map(|i| t.subtree_len(i)).collect::<Vec<_>>(),
            [4, 2, 1, 1]
        );
        assert_eq!(
            (0..4).map(|i| t.position(i)).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!((t.start(), t.end(), t.max_depth()), (90, 295, 2));
        assert!(!t.is_duplicate(3) && t.children(9).is_empty() && t.parent(9).is_none());
    }

    #[test]
    fn deep_chain_and_long_loop_do_not_overflow() {
        let n = 200_000u64;
        // span k's parent is k-1; span 1's parent is n: one loop of n spans
        let spans = (1..=n)
            .map(|k| sp(k, if k == 1 { n } else { k - 1 }, "s", "op", k, 1))
            .collect();
        let tr = trace(spans);
        let t = SpanTree::new(&tr);
        assert_eq!(t.roots(), &[0]);
        assert_eq!(t.root_kind(0), Some(RootKind::Cycle));
        assert_eq!(t.max_depth(), n as usize - 1);
        assert_eq!(t.subtree_len(0), n as usize);
    }
}

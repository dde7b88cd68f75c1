//! Timeline layout for the UI: the visible rows of the span tree given the collapsed spans, each
//! placed as fractions of the trace window, and cheap collapse and expand.
//!
//! Visible rows are kept as a list in display order. Changing what is collapsed rebuilds it by
//! walking the display order and jumping over collapsed subtrees, so a change costs O(visible
//! rows), and [`Timeline::rows_in`] costs O(rows asked for).

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use hashbrown::HashSet;
use serde::Serialize;

use super::tree::SpanTree;
use crate::model::SpanId;

/// One visible row of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineRow {
    /// Index of the span in the trace.
    pub span: usize,
    /// Depth in the span tree (roots are at 0).
    pub depth: usize,
    /// Whether the span has children.
    pub has_children: bool,
    /// Whether the span is collapsed (its descendants are hidden).
    pub collapsed: bool,
    /// Start of the span as a fraction of the trace window, in [0, 1].
    pub offset: f64,
    /// Duration of the span as a fraction of the trace window, in [0, 1 - offset].
    pub width: f64,
}

/// The timeline of one trace and its collapse state.
#[derive(Clone, Debug)]
pub struct Timeline<'t, 'a> {
    tree: &'t SpanTree<'a>,
    collapsed: Vec<bool>,
    rows: Vec<usize>,
}

impl<'t, 'a> Timeline<'t, 'a> {
    /// The timeline with everything expanded.
    pub fn new(tree: &'t SpanTree<'a>) -> Self {
        let mut t = Timeline {
            tree,
            collapsed: vec![false; tree.len()],
            rows: Vec::new(),
        };
        t.rebuild();
        t
    }

    /// The timeline with the spans of these ids collapsed (every span of a repeated id).
    pub fn with_collapsed_ids(tree: &'t SpanTree<'a>, ids: &[SpanId]) -> Self {
        let ids: HashSet<SpanId> = ids.iter().copied().collect();
        let mut t = Timeline {
            tree,
            collapsed: tree
                .spans()
                .iter()
                .map(|s| ids.contains(&s.span_id))
                .collect(),
            rows: Vec::new(),
        };
        t.rebuild();
        t
    }

    /// Start of the trace window (earliest span start), nanoseconds since the epoch.
    pub fn start(&self) -> u64 {
        self.tree.start()
    }

    /// End of the trace window (latest span end), nanoseconds since the epoch.
    pub fn end(&self) -> u64 {
        self.tree.end()
    }

    /// Number of visible rows.
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// The visible rows in `range` (clamped to the rows there are).
    pub fn rows_in(&self, range: Range<usize>) -> Vec<TimelineRow> {
        let end = range.end.min(self.rows.len());
        let start = range.start.min(end);
        self.rows[start..end].iter().map(|&i| self.row(i)).collect()
    }

    /// The visible row showing span `span`, if it is visible.
    pub fn row_of(&self, span: usize) -> Option<usize> {
        if span >= self.tree.len() {
            return None;
        }
        let pos = self.tree.position(span);
        self.rows
            .binary_search_by_key(&pos, |&i| self.tree.position(i))
            .ok()
    }

    /// Whether span `span` is collapsed.
    pub fn is_collapsed(&self, span: usize) -> bool {
        self.collapsed.get(span).copied().unwrap_or(false)
    }

    /// The collapsed spans with children, in display order.
    pub fn collapsed_spans(&self) -> Vec<usize> {
        self.tree
            .preorder()
            .iter()
            .copied()
            .filter(|&i| self.collapsed[i] && !self.tree.children(i).is_empty())
            .collect()
    }

    /// Collapses or expands span `span`; an index outside the trace changes nothing.
    pub fn set_collapsed(&mut self, span: usize, collapsed: bool) {
        if let Some(c) = self.collapsed.get_mut(span) {
            if *c != collapsed {
                *c = collapsed;
                self.rebuild();
            }
        }
    }

    /// Flips the collapse state of span `span`.
    pub fn toggle(&mut self, span: usize) {
        let now = self.is_collapsed(span);
        self.set_collapsed(span, !now);
    }

    /// Expands every span.
    pub fn expand_all(&mut self) {
        self.collapsed.iter_mut().for_each(|c| *c = false);
        self.rebuild();
    }

    /// Shows the spans down to depth `depth` and collapses those at `depth` that have
    /// children; everything above is expanded. `collapse_below_depth(0)` shows only roots.
    pub fn collapse_below_depth(&mut self, depth: usize) {
        for i in 0..self.collapsed.len() {
            self.collapsed[i] = self.tree.depth(i) >= depth;
        }
        self.rebuild();
    }

    fn row(&self, i: usize) -> TimelineRow {
        let spans = self.tree.spans();
        let window = self.tree.end() - self.tree.start();
        let (offset, width) = match spans.get(i) {
            Some(s) if window > 0 => {
                let offset = (s.start_unix_nanos - self.tree.start()) as f64 / window as f64;
                let width = super::duration(s) as f64 / window as f64;
                (offset, width)
            }
            _ => (0.0, 0.0),
        };
        TimelineRow {
            span: i,
            depth: self.tree.depth(i),
            has_children: !self.tree.children(i).is_empty(),
            collapsed: self.is_collapsed(i),
            offset,
            width,
        }
    }

    fn rebuild(&mut self) {
        self.rows.clear();
        let order = self.tree.preorder();
        let mut pos = 0;
        while let Some(&i) = order.get(pos) {
            self.rows.push(i);
            pos += if self.collapsed[i] {
                self.tree.subtree_len(i)
            } else {
                1
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{sp, trace};

    #[test]
    fn rows_follow_collapse_state() {
        // 1 [0,100) -> 2 [0,50) -> 3 [10,20); 1 -> 4 [50,100); 9 has a missing parent
        let tr = trace(vec![
            sp(1, 0, "a", "r", 1000, 100),
            sp(2, 1, "a", "x", 1000, 50),
            sp(3, 2, "a", "y", 1010, 10),
            sp(4, 1, "a", "z", 1050, 50),
            sp(9, 8, "b", "w", 1100, -3),
        ]);
        let tree = SpanTree::new(&tr);
        let mut tl = Timeline::new(&tree);
        let visible = |tl: &Timeline| -> Vec<usize> {
            tl.rows_in(0..usize::MAX).iter().map(|r| r.span).collect()
        };
        // (action, visible spans)
        assert_eq!(visible(&tl), [0, 1, 2, 3, 4]);
        tl.set_collapsed(1, true);
        assert_eq!(visible(&tl), [0, 1, 3, 4]);
        tl.toggle(0);
        assert_eq!(visible(&tl), [0, 4]);
        assert_eq!(tl.collapsed_spans(), [0, 1]);
        tl.expand_all();
        assert_eq!(visible(&tl), [0, 1, 2, 3, 4]);
        tl.collapse_below_depth(1);
        assert_eq!(visible(&tl), [0, 1, 3, 4]);
        tl.collapse_below_depth(0);
        assert_eq!(visible(&tl), [0, 4]);
        tl.set_collapsed(99, true);
        assert_eq!(tl.row_count(), 2);
        assert_eq!(
            (tl.row_of(4), tl.row_of(2), tl.row_of(99)),
            (Some(1), None, None)
        );

        let tl = Timeline::with_collapsed_ids(&tree, &[SpanId(2), SpanId(77)]);
        assert_eq!(visible(&tl), [0, 1, 3, 4]);
        assert_eq!((tl.start(), tl.end()), (1000, 1100));
        // (span, depth, has_children, collapsed, offset, width)
        let rows: Vec<_> = tl
            .rows_in(1..3)
            .into_iter()
            .map(|r| {
                (
                    r.span,
                    r.depth,
                    r.has_children,
                    r.collapsed,
                    r.offset,
                    r.width,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [(1, 1, true, true, 0.0, 0.5), (3, 1, false, false, 0.5, 0.5)]
        );
        let last = tl.rows_in(3..10);
        assert_eq!(
            (last[0].span, last[0].depth, last[0].offset, last[0].width),
            (4, 0, 1.0, 0.0)
        );
        assert!(tl.rows_in(Range { start: 7, end: 3 }).is_empty());
    }

    #[test]
    fn zero_window_and_empty_trace() {
        let tr = trace(vec![sp(1, 0, "a", "r", 5, 0)]);
        let tree = SpanTree::new(&tr);
        let rows = Timeline::new(&tree).rows_in(0..1);
        assert_eq!((rows[0].offset, rows[0].width), (0.0, 0.0));
        let empty = trace(vec![]);
        let tree = SpanTree::new(&empty);
        let tl = Timeline::new(&tree);
        assert_eq!((tl.row_count(), tl.rows_in(0..5).len()), (0, 0));
    }
}

//! Search within one trace: a case-insensitive substring match over each span's service,
//! operation, span id (16 hex digits), attribute keys and text values (span and resource
//! attributes), and event names and attributes.
//!
//! O(total text of the trace × query length) at worst, without allocating for ASCII text.

use alloc::string::String;
use alloc::vec::Vec;

use super::tree::SpanTree;
use super::write_value_text;
use crate::model::{KeyValue, Span};

/// The spans matching `query`, in display order; an empty (or all-blank) query matches none.
pub fn search(tree: &SpanTree, query: &str) -> Vec<usize> {
    let query = query.trim();
    if query.is_empty() {
        return Vec::new();
    }
    let needle = Needle::new(query);
    let mut text = String::new();
    tree.preorder()
        .iter()
        .copied()
        .filter(|&i| span_matches(&tree.spans()[i], &needle, &mut text))
        .collect()
}

struct Needle {
    lower: String,
    ascii: bool,
}

impl Needle {
    fn new(query: &str) -> Self {
        Needle {
            lower: query.to_lowercase(),
            ascii: query.is_ascii(),
        }
    }

    fn found_in(&self, hay: &str) -> bool {
        if self.ascii && hay.is_ascii() {
            let (h, n) = (hay.as_bytes(), self.lower.as_bytes());
            n.len() <= h.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
        } else {
            hay.to_lowercase().contains(self.lower.as_str())
        }
    }
}

fn attrs_match(attrs: &[KeyValue], needle: &Needle, text: &mut String) -> bool {
    attrs.iter().any(|kv| {
        if needle.found_in(&kv.key) {
            return true;
        }
        text.clear();
        write_value_text(&kv.value, text);
        needle.found_in(text)
    })
}

fn span_matches(span: &Span, needle: &Needle, text: &mut String) -> bool {
    needle.found_in(span.service())
        || needle.found_in(&span.name)
        || needle.found_in(span.span_id.to_hex().as_str())
        || attrs_match(&span.attributes, needle, text)
        || attrs_match(&span.resource.attributes, needle, text)
        || span
            .events
            .iter()
            .any(|e| needle.found_in(&e.name) || attrs_match(&e.attributes, needle, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{attr, event, sp, trace};
    use crate::model::{AnyValue, KeyValue, Resource};
    use alloc::sync::Arc;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn finds_in_every_field() {
        let mut with_resource = sp(0x77, 1, "svc", "op", 9, 1);
        with_resource.resource = Arc::new(Resource {
            service_name: "svc".into(),
            attributes: vec![KeyValue::string("host.name", "Box-7")],
            ..Default::default()
        });
        let tr = trace(vec![
            sp(0xabc, 0, "Frontend", "GET /Cart", 0, 10),
            attr(
                sp(2, 0xabc, "db", "select", 1, 1),
                "db.rows",
                AnyValue::Int(1234),
            ),
            event(
                sp(3, 0xabc, "db", "insert", 2, 1),
                "Retry",
                vec![KeyValue::new("attempt", AnyValue::Bool(true))],
            ),
            attr(
                sp(4, 0xabc, "ünï", "Größe", 3, 1),
                "k",
                AnyValue::Bytes(vec![0xbe, 0xef]),
            ),
            with_resource,
            // a cycle and a duplicate id are still searched
            sp(6, 6, "loop", "x", 5, 1),
            sp(6, 0, "dup", "x", 6, 1),
        ]);
        let tree = SpanTree::new(&tr);
        // (query, matching span indices in display order)
        let cases: Vec<(&str, Vec<usize>)> = vec![
            ("", vec![]),
            ("   ", vec![]),
            ("frontend", vec![0]),
            ("/cart", vec![0]),
            ("0000000000000abc", vec![0]),
            ("ABC", vec![0]),
            ("ROWS", vec![1]),
            ("123", vec![1]),
            ("retry", vec![2]),
            ("TRUE", vec![2]),
            ("GRÖSSE", vec![]),
            ("größe", vec![3]),
            ("ÜNÏ", vec![3]),
            ("BEEF", vec![3]),
            ("box-7", vec![4]),
            ("x", vec![5, 6, 4]),
            ("nothing like it", vec![]),
        ];
        for (q, want) in cases {
            assert_eq!(search(&tree, q), want, "query {q:?}");
        }
    }
}

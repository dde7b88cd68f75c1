//! The service dependency graph of a set of traces: every service with its span and error
//! counts, and parent service → child service edges with call counts, counted per trace as
//! [`trace_links`] counts them (same trace, different services).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use crate::deps::trace_links;
use crate::model::{DependencyLink, Trace};

/// A service of the graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceNode {
    /// Service name.
    pub service: String,
    /// Its spans over all traces.
    pub span_count: u64,
    /// Its failed spans.
    pub error_count: u64,
}

/// The dependency graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceGraph {
    /// Services, sorted by name.
    pub nodes: Vec<ServiceNode>,
    /// Edges, sorted by (parent, child).
    pub edges: Vec<DependencyLink>,
}

/// The graph of `traces`: O(n log s) for n spans and s services.
pub fn service_graph<'a>(traces: impl IntoIterator<Item = &'a Trace>) -> ServiceGraph {
    let mut nodes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut edges: BTreeMap<(String, String), u64> = BTreeMap::new();
    for trace in traces {
        for s in &trace.spans {
            let node = match nodes.get_mut(s.service()) {
                Some(node) => node,
                None => nodes.entry(String::from(s.service())).or_default(),
            };
            node.0 += 1;
            node.1 += u64::from(s.is_error());
        }
        for link in trace_links(trace) {
            *edges.entry((link.parent, link.child)).or_default() += link.call_count;
        }
    }
    ServiceGraph {
        nodes: nodes
            .into_iter()
            .map(|(service, (span_count, error_count))| ServiceNode {
                service,
                span_count,
                error_count,
            })
            .collect(),
        edges: edges
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent,
                child,
                call_count,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{err, sp, trace};
    use alloc::vec;

    #[test]
    fn merges_traces() {
        let t1 = trace(vec![
            sp(1, 0, "fe", "GET", 0, 10),
            sp(2, 1, "be", "q", 1, 5),
            err(sp(3, 2, "db", "sel", 2, 1)),
            sp(4, 2, "be", "local", 3, 1),
        ]);
        let t2 = trace(vec![
            sp(1, 0, "fe", "GET", 0, 10),
            sp(2, 1, "be", "q", 1, 5),
            // missing parent: counted as a node, no edge
            err(sp(3, 9, "db", "sel", 2, 1)),
            // self-parent loop: no edge
            sp(5, 5, "fe", "x", 0, 1),
        ]);
        let l = |p: &str, c: &str, n| DependencyLink {
            parent: p.into(),
            child: c.into(),
            call_count: n,
        };
        let n = |s: &str, spans, errors| ServiceNode {
            service: s.into(),
            span_count: spans,
            error_count: errors,
        };
        assert_eq!(
            service_graph([&t1, &t2]),
            ServiceGraph {
                nodes: vec![n("be", 3, 0), n("db", 2, 2), n("fe", 3, 0)],
                edges: vec![l("be", "db", 1), l("fe", "be", 2)],
            }
        );
        assert_eq!(
            service_graph(core::iter::empty()),
            ServiceGraph {
                nodes: vec![],
                edges: vec![]
            }
        );
    }
}

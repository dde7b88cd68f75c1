//! Test helpers: spans and traces written as one line of data each, and the deterministic
//! 100 000-span trace every analysis is run on.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::model::{
    AnyValue, Event, KeyValue, Resource, Span, SpanId, SpanKind, Status, StatusCode, Trace, TraceId,
};

/// A span: id, parent id (0 for none), service, operation, start, duration.
pub fn sp(id: u64, parent: u64, service: &str, op: &str, start: u64, dur: i64) -> Span {
    Span {
        trace_id: TraceId(1),
        span_id: SpanId(id),
        parent_span_id: (parent != 0).then_some(SpanId(parent)),
        name: op.into(),
        start_unix_nanos: start,
        duration_nanos: dur,
        resource: Arc::new(Resource {
            service_name: service.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The same span, failed.
pub fn err(mut s: Span) -> Span {
    s.status = Status {
        code: StatusCode::Error,
        message: String::new(),
    };
    s
}

/// The same span with a kind.
pub fn kind(mut s: Span, k: SpanKind) -> Span {
    s.kind = k;
    s
}

/// The same span with an attribute.
pub fn attr(mut s: Span, key: &str, value: AnyValue) -> Span {
    s.attributes.push(KeyValue::new(key, value));
    s
}

/// The same span with an event.
pub fn event(mut s: Span, name: &str, attrs: Vec<KeyValue>) -> Span {
    s.events.push(Event {
        name: name.into(),
        attributes: attrs,
        ..Default::default()
    });
    s
}

/// A trace of these spans.
pub fn trace(spans: Vec<Span>) -> Trace {
    Trace {
        trace_id: TraceId(1),
        spans,
    }
}

/// Spans in the big generated trace.
pub const BIG: usize = 100_000;

/// Services of the big trace, by `id % 7`.
pub const BIG_SERVICES: [&str; 7] = ["api", "auth", "cart", "db", "cache", "queue", "search"];

/// A deterministic 100 000-span trace: one root of 10 s; the even spans below 20 000 form a
/// chain 10 000 deep (each takes almost all its parent's room); every other span hangs under a
/// parent chosen by a fixed linear congruential sequence among the earlier spans and takes a
/// third of the room its parent has left. Siblings follow each other inside their parent, so
/// nothing overlaps and nothing sticks out. Every 97th span fails; every span carries
/// `shard = id % 5` and every 1000th an event `retry`. Span `k` has id `k + 1`.
pub fn big_trace() -> Trace {
    let mut spans: Vec<Span> = Vec::with_capacity(BIG);
    // (start, end, next free child start) of every span
    let mut room: Vec<(u64, u64, u64)> = Vec::with_capacity(BIG);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    spans.push(sp(1, 0, "api", "GET /", 1_000_000_000, 10_000_000_000));
    room.push((1_000_000_000, 11_000_000_000, 1_000_000_000));
    for k in 1..BIG {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let chain = k < 20_000 && k % 2 == 0;
        let parent = if chain {
            k - 2
        } else {
            (state >> 33) as usize % k
        };
        let (_, pend, free) = room[parent];
        let left = pend.saturating_sub(free);
        let dur = if chain {
            left.saturating_sub(left / 1000 + 1)
        } else {
            left / 3
        };
        let start = free.min(pend);
        room[parent].2 = start + dur;
        room.push((start, start + dur, start));
        let id = k as u64 + 1;
        let mut s = sp(
            id,
            parent as u64 + 1,
            BIG_SERVICES[(id % 7) as usize],
            ["get", "put", "scan"][(id % 3) as usize],
            start,
            dur as i64,
        );
        s = attr(s, "shard", AnyValue::Int((id % 5) as i64));
        if id % 97 == 0 {
            s = err(s);
        }
        if id % 1000 == 0 {
            s = event(s, "retry", Vec::new());
        }
        spans.push(s);
    }
    trace(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::*;
    use crate::deps::trace_links;
    use hashbrown::HashSet;

    #[test]
    fn every_analysis_on_100k_spans() {
        let tr = big_trace();
        let spans = &tr.spans;
        let n = BIG;
        let root_dur = 10_000_000_000u64;
        let tree = SpanTree::new(&tr);

        // tree: one root, the chain, a preorder where every subtree is one contiguous run
        assert_eq!((tree.len(), tree.roots()), (n, &[0usize][..]));
        assert_eq!(tree.depth(19_998), 9_999);
        assert!(tree.max_depth() >= 9_999);
        let mut seen = tree.preorder().to_vec();
        seen.sort_unstable();
        assert!(seen.iter().copied().eq(0..n));
        for i in 1..n {
            let p = tree
                .parent(i)
                .expect("every span but the root has its parent");
            assert_eq!(spans[p].span_id, spans[i].parent_span_id.unwrap());
            let (pp, pi) = (tree.position(p), tree.position(i));
            assert!(pp < pi && pi + tree.subtree_len(i) <= pp + tree.subtree_len(p));
        }

        // timeline
        let mut tl = Timeline::new(&tree);
        assert_eq!(tl.row_count(), n);
        let root_children = spans
            .iter()
            .filter(|s| s.parent_span_id == Some(SpanId(1)))
            .count();
        tl.collapse_below_depth(1);
        assert_eq!(tl.row_count(), 1 + root_children);
        tl.set_collapsed(0, true);
        assert_eq!(tl.row_count(), 1);
        tl.expand_all();
        let rows = tl.rows_in(n - 10..n + 10);
        assert_eq!(rows.len(), 10);
        assert!(rows
            .iter()
            .all(|r| r.offset >= 0.0 && r.offset + r.width <= 1.0 + 1e-9));

        // critical path: tiles the root's window, backwards, each segment inside its span
        let cp = critical_path(&tree);
        let mut at = root_dur + 1_000_000_000;
        for seg in &cp.segments {
            assert_eq!(seg.end, at);
            let s = &spans[seg.span];
            assert!(s.start_unix_nanos <= seg.start && seg.end <= s.end_unix_nanos());
            at = seg.start;
        }
        assert_eq!(at, 1_000_000_000);
        assert_eq!(cp.span_nanos.iter().sum::<u64>(), root_dur);

        // stats: nothing overlaps, so self times add up to the root's duration
        let st = trace_stats(&tree);
        assert_eq!((st.all.count, st.all.self_nanos), (n as u64, root_dur));
        assert_eq!(st.all.errors, (n / 97) as u64);
        assert_eq!(st.all.max_nanos, root_dur);
        for g in &st.by_service {
            let want = spans.iter().filter(|s| s.service() == g.key).count();
            assert_eq!(g.stat.count, want as u64, "{}", g.key);
        }
        let shards = stats_by_attribute(&tree, "shard");
        let keys: Vec<Option<&str>> = shards.iter().map(|g| g.key.as_deref()).collect();
        assert_eq!(
            keys,
            [None, Some("0"), Some("1"), Some("2"), Some("3"), Some("4")]
        );
        assert_eq!(shards[0].stat.count, 1);
        assert_eq!(shards[1].stat.count, (n / 5) as u64);

        // diff with itself: all the same
        let d = diff_traces(&tree, &tree);
        assert!(d
            .nodes
            .iter()
            .all(|x| x.status == DiffStatus::Same && x.mean_change_nanos == Some(0.0)));
        assert_eq!(d.nodes.iter().map(|x| x.count_a).sum::<u64>(), n as u64);
        assert_eq!(d.node_of_a, d.node_of_b);

        // root cause, against itself as baseline
        let rc = root_cause(&tree, 5, Some(&tree));
        let failing_parents: HashSet<SpanId> = spans
            .iter()
            .filter(|s| s.is_error())
            .filter_map(|s| s.parent_span_id)
            .collect();
        let mut origins: Vec<usize> = (0..n)
            .filter(|&i| spans[i].is_error() && !failing_parents.contains(&spans[i].span_id))
            .collect();
        origins.sort_by_key(|&i| tree.position(i));
        assert_eq!(rc.error_origins, origins);
        assert!(rc.slower.is_empty());
        assert_eq!(rc.critical_owners.len(), 5);
        let mut times = cp.span_nanos.clone();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let got: Vec<u64> = rc
            .critical_owners
            .iter()
            .map(|o| o.critical_nanos)
            .collect();
        assert_eq!(got, times[..5]);

        // search
        let retry = search(&tree, "RETRY");
        assert_eq!(retry.len(), n / 1000);
        assert!(retry.iter().all(|&i| spans[i].span_id.0 % 1000 == 0));
        let want = spans.iter().filter(|s| s.service() == "search").count();
        assert_eq!(search(&tree, "search").len(), want);

        // graph
        let g = service_graph([&tr]);
        assert_eq!(g.nodes.iter().map(|x| x.span_count).sum::<u64>(), n as u64);
        assert_eq!(g.edges, trace_links(&tr));
    }
}
